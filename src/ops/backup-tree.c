/*
 * Directories of the backup: a directory's job holds its tree until every
 * file and subdirectory below it is done, then becomes a tree blob; also
 * the warnings, progress and paths the whole walk shares.
 */
#include <stdio.h>
#include <stdlib.h>

#include "backup-internal.h"

void kl_bk_warn(struct backup *b, const char *path, int err, const char *what)
{
	b->st.errors++;
	b->prog.errors++;
	if (err < 0 && !b->first_err)
		b->first_err = err;
	if (b->o->report.warn)
		b->o->report.warn(b->o->report.ud, path, err, what);
}

void kl_bk_progress(struct backup *b, const char *current, bool force)
{
	int64_t now;

	if (!b->o->report.progress)
		return;
	now = kl_time_mono_ns();
	if (!force && now < b->next_progress_ns)
		return;
	b->next_progress_ns = now + KL_NSEC_PER_SEC / 10;
	b->prog.current = current;
	b->prog.files_total = atomic_load(&b->scan_files);
	b->prog.bytes_total = atomic_load(&b->scan_bytes);
	b->prog.totals_final = atomic_load(&b->scan_done);
	if (b->prog.last) {
		/* the end: what was done is the total, whatever the scan saw */
		b->prog.files_total = b->prog.files_done;
		b->prog.bytes_total = b->prog.bytes_done;
		b->prog.totals_final = true;
	}
	b->o->report.progress(b->o->report.ud, &b->prog);
}

char *kl_bk_join_path(const char *dir, const char *name)
{
	size_t a = strlen(dir), n = strlen(name);
	char *p = kl_malloc(a + n + 2);

	if (!p)
		return NULL;
	memcpy(p, dir, a);
	if (!a || dir[a - 1] != '/')
		p[a++] = '/';
	memcpy(p + a, name, n + 1);
	return p;
}

int kl_bk_path_add(struct kl_buf *p, const char *name, size_t len)
{
	int rc = 0;

	if (!p->len || p->data[p->len - 1] != '/')
		rc = kl_buf_addch(p, '/');
	return rc < 0 ? rc : kl_buf_add(p, name, len);
}

int kl_bk_dir_path(const struct dir_job *d, struct kl_buf *out)
{
	size_t len = 0, o;
	int rc;

	for (const struct dir_job *e = d; e->parent; e = e->parent)
		len += 1 + e->parent->tree.nodes[e->parent_slot].name_len;
	if (!len)
		return kl_buf_addch(out, '/');
	/* filled from the end: the walk up meets the names last first */
	o = out->len + len;
	rc = kl_buf_setlen(out, o);
	if (rc < 0)
		return rc;
	for (const struct dir_job *e = d; e->parent; e = e->parent) {
		const struct kl_node *n = &e->parent->tree.nodes[e->parent_slot];

		o -= n->name_len;
		memcpy(out->data + o, n->name, n->name_len);
		out->data[--o] = '/';
	}
	return 0;
}

struct dir_job *kl_bk_dir_new(struct backup *b, struct dir_job *parent, size_t slot)
{
	struct dir_job *d = kl_calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->parent = parent;
	d->parent_slot = slot;
	d->pending = 1;
	if (parent)
		parent->pending++;
	d->next = b->live;
	if (b->live)
		b->live->prev = d;
	b->live = d;
	return d;
}

void kl_bk_dir_free(struct backup *b, struct dir_job *d)
{
	if (d->prev)
		d->prev->next = d->next;
	else
		b->live = d->next;
	if (d->next)
		d->next->prev = d->prev;
	kl_tree_release(&d->tree);
	kl_free(d);
}

static int finalize_dir(struct backup *b, struct dir_job *d, struct dir_job **parent_ret);

/*
 * A loop, not recursion: the last file of the deepest directory can
 * finish every directory above it, however deep the tree is.
 */
int kl_bk_child_done(struct backup *b, struct dir_job *d)
{
	while (d && --d->pending == 0) {
		int rc = finalize_dir(b, d, &d);

		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Stores one tree blob, or only computes its id in a dry run. */
static int store_tree_blob(void *ud, const uint8_t *p, size_t n, struct kl_id *ret)
{
	struct backup *b = ud;

	if (b->o->flags & KL_BACKUP_DRY_RUN) {
		kl_tree_blob_id(kl_repo_keys(b->r), p, n, ret);
		return 0;
	}
	return kl_packer_store(b->trees, KL_BLOB_TREE, p, n, ret);
}

/*
 * Nodes per tree blob before a directory is split. Tests lower it
 * (KEEL_TEST_TREE_SPLIT=N in KL_TESTING builds) to split directories of a
 * few thousand entries instead of a million.
 */
static size_t split_nodes(void)
{
#ifdef KL_TESTING
	const char *v = getenv("KEEL_TEST_TREE_SPLIT");
	char *end;
	unsigned long long n;

	if (v && *v) {
		n = strtoull(v, &end, 10);
		if (!*end && n > 0 && n < KL_TREE_BLOB_NODES)
			return (size_t)n;
	}
#endif
	return KL_TREE_BLOB_NODES;
}

/* Stores d's tree and frees d; *parent_ret is the directory that lost a pending child. */
static int finalize_dir(struct backup *b, struct dir_job *d, struct dir_job **parent_ret)
{
	struct dir_job *parent = d->parent;
	size_t d_slot = d->parent_slot;
	struct kl_id id = {{0}};
	_cleanup_buf_ struct kl_buf path = KL_BUF_INIT(SIZE_MAX);
	size_t kept = 0;
	int rc;

	/* drop the nodes of files that turned out unreadable (type 0) */
	for (size_t i = 0; i < d->tree.n; i++) {
		if (d->tree.nodes[i].type)
			d->tree.nodes[kept++] = d->tree.nodes[i];
		else
			kl_node_release(&d->tree.nodes[i]);
	}
	d->tree.n = kept;
	/* every child is done: no slot of this tree is used any more */
	if (b->sort_trees)
		kl_tree_sort(&d->tree);
	rc = kl_tree_store(&d->tree, split_nodes(), store_tree_blob, b, &id);
	if (rc < 0 && kl_bk_dir_path(d, &path) < 0)
		kl_buf_clear(&path); /* the message says less, the error is the same */
	if (rc == -E2BIG) {
		kl_repo_fail(b->r, rc,
			     "directory '%s' is too big to back up (%zu entries; at most %zu, and "
			     "at most 64 MiB of metadata per entry)",
			     (const char *)path.data, d->tree.n, KL_TREE_MAX_TOTAL_NODES);
		b->error = rc;
	} else if (rc < 0) {
		kl_repo_fail(b->r, rc, "cannot store directory '%s'", (const char *)path.data);
		b->error = rc;
	}
	kl_bk_dir_free(b, d);
	*parent_ret = NULL;
	if (rc < 0)
		return rc;
	if (parent) {
		struct kl_node *n = &parent->tree.nodes[d_slot];

		n->subtree = id;
		n->has_subtree = true;
		*parent_ret = parent;
		return 0;
	}
	b->root = id;
	b->root_done = true;
	return 0;
}

/* Moves finished files' chunk ids into their nodes. */
int kl_bk_collect(struct backup *b, bool wait)
{
	struct kl_file_job *f = kl_pipeline_take_done(&b->pl, wait);
	int rc = 0;

	while (f) {
		struct kl_file_job *next = f->next_done;
		struct dir_job *d = f->owner;
		struct kl_node *n = &d->tree.nodes[f->slot];

		n->content = kl_calloc(f->n_chunks ? f->n_chunks : 1, sizeof(struct kl_id));
		if (!n->content) {
			/* the directory must not be stored without the file's data */
			rc = -ENOMEM;
			b->error = rc;
		} else {
			n->n_content = f->n_chunks;
			for (size_t i = 0; i < f->n_chunks; i++) {
				n->content[i] = f->chunks[i]->id;
				if (f->chunks[i]->is_new) {
					b->st.blobs_new++;
					b->st.bytes_added += f->chunks[i]->len;
				}
			}
		}
		b->prog.files_done++;
		if (rc >= 0 && n->content)
			rc = kl_bk_link_done(b, d, f->slot);
		kl_file_job_free(f);
		if (rc >= 0)
			rc = kl_bk_child_done(b, d);
		f = next;
	}
	return rc;
}
