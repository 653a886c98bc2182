/*
 * A snapshot built from entries that arrive in a stream (a database
 * server's tar archives) rather than from a walk: each entry names its
 * path below the snapshot's root, in any order; a file's content follows
 * it and is chunked and stored by the same pipeline as a file backup's,
 * so it deduplicates against everything in the repository. Directories
 * stay open (each holds itself pending) until the commit, then are
 * stored bottom-up, their nodes sorted.
 */
#include <stdio.h>

#include "backup-internal.h"

struct entry_dir {
	char *path; /* "" for the root, else "a/b" */
	struct dir_job *d;
};

struct kl_entry_backup {
	struct backup b;
	struct kl_backup_opts o;
	struct dir_job *root;
	struct entry_dir *dirs; /* in creation order: parents before children */
	size_t n_dirs, cap_dirs;
	size_t last_dir;
	struct kl_file_job *file; /* the file whose content is arriving */
	struct dir_job *file_dir;
	uint64_t file_size, file_got;
	size_t len;	/* bytes in b.rbuf not yet cut */
	uint32_t fixed; /* cut content in chunks of this size; 0: content-defined */
	int64_t start_ns;
	char hostbuf[256], userbuf[256];
	bool finished;
};

int kl_entry_backup_new(struct kl_repo *r, const struct kl_backup_opts *o,
			struct kl_entry_backup **ret)
{
	struct kl_entry_backup *e = kl_calloc(1, sizeof(*e));
	int rc;

	*ret = NULL;
	if (!e)
		return -ENOMEM;
	e->o = *o;
	e->b.r = r;
	e->b.o = &e->o;
	e->b.sort_trees = true;
	e->start_ns = kl_time_now_ns();
	kl_bk_who_am_i(o, e->hostbuf, sizeof(e->hostbuf), e->userbuf, sizeof(e->userbuf));
	rc = kl_idcache_new(&e->b.ids);
	if (rc >= 0) {
		/* reuse what a killed backup left behind */
		int adopted = kl_repo_adopt_orphans(r);

		if (adopted < 0)
			rc = adopted;
	}
	if (rc >= 0)
		rc = kl_bk_start_walk(&e->b, NULL, 0, true, &e->root);
	if (rc >= 0) {
		e->dirs = kl_calloc(16, sizeof(*e->dirs));
		e->cap_dirs = 16;
		if (!e->dirs || !(e->dirs[0].path = kl_strdup("")))
			rc = -ENOMEM;
		else
			e->dirs[e->n_dirs++].d = e->root;
	}
	if (rc < 0) {
		kl_entry_backup_free(e);
		return rc;
	}
	*ret = e;
	return 0;
}

void kl_entry_backup_free(struct kl_entry_backup *e)
{
	if (!e)
		return;
	if (e->file) {
		/* a file cut off mid-way: the pipeline completes it, finish frees it */
		kl_pipeline_file_sealed(&e->b.pl, e->file);
		e->file = NULL;
	}
	if (!e->finished) {
		struct kl_write_stats ws;

		e->b.error = e->b.error ? e->b.error : -ECANCELED;
		kl_bk_finish_walk(&e->b, e->b.error, &ws);
	}
	kl_bk_release(&e->b);
	for (size_t i = 0; i < e->n_dirs; i++)
		kl_free(e->dirs[i].path);
	kl_free(e->dirs);
	kl_free(e);
}

static struct dir_job *find_dir(struct kl_entry_backup *e, const char *path, size_t len)
{
	struct entry_dir *x = &e->dirs[e->last_dir];

	if (strlen(x->path) == len && !memcmp(x->path, path, len))
		return x->d;
	for (size_t i = e->n_dirs; i-- > 0;) {
		x = &e->dirs[i];
		if (strlen(x->path) == len && !memcmp(x->path, path, len)) {
			e->last_dir = i;
			return x->d;
		}
	}
	return NULL;
}

static int add_node(struct dir_job *d, const char *name, const struct kl_node *meta, size_t *slot)
{
	struct kl_node n = *meta;
	size_t len = strlen(name);
	int rc;

	n.name = kl_memdup(name, len);
	n.name_len = len;
	n.user = meta->user ? kl_strdup(meta->user) : NULL;
	n.group = meta->group ? kl_strdup(meta->group) : NULL;
	n.link = meta->link_len ? kl_memdup(meta->link, meta->link_len) : NULL;
	n.content = NULL;
	n.n_content = 0;
	n.xattrs = NULL;
	n.n_xattrs = 0;
	if (!n.name || (meta->user && !n.user) || (meta->group && !n.group) ||
	    (meta->link_len && !n.link)) {
		kl_node_release(&n);
		return -ENOMEM;
	}
	*slot = d->tree.n;
	rc = kl_tree_add(&d->tree, &n);
	if (rc < 0)
		kl_node_release(&n);
	return rc;
}

/* The directory at path (its first len bytes), made with meta (or defaults) if missing. */
static int get_dir(struct kl_entry_backup *e, const char *path, size_t len,
		   const struct kl_node *meta, struct dir_job **ret)
{
	struct kl_node dflt = {.type = KL_NODE_DIR, .mode = 0700};
	struct dir_job *parent, *d;
	const char *slash;
	size_t plen, slot;
	char name[256];
	int rc;

	d = find_dir(e, path, len);
	if (d) {
		*ret = d;
		return 0;
	}
	slash = memrchr(path, '/', len);
	plen = slash ? (size_t)(slash - path) : 0;
	rc = get_dir(e, path, plen, NULL, &parent);
	if (rc < 0)
		return rc;
	if (len - (slash ? plen + 1 : 0) >= sizeof(name))
		return -ENAMETOOLONG;
	snprintf(name, sizeof(name), "%.*s", (int)(len - (slash ? plen + 1 : 0)),
		 slash ? slash + 1 : path);
	dflt.uid = (uint32_t)geteuid();
	dflt.gid = (uint32_t)getegid();
	dflt.mtime_sec = dflt.ctime_sec = dflt.atime_sec = e->start_ns / KL_NSEC_PER_SEC;
	rc = add_node(parent, name, meta ? meta : &dflt, &slot);
	if (rc < 0)
		return rc;
	if (e->n_dirs == e->cap_dirs) {
		struct entry_dir *v = kl_realloc(e->dirs, 2 * e->cap_dirs * sizeof(*v));

		if (!v)
			return -ENOMEM;
		e->dirs = v;
		e->cap_dirs *= 2;
	}
	d = kl_bk_dir_new(&e->b, parent, slot);
	if (!d)
		return -ENOMEM;
	e->dirs[e->n_dirs].d = d;
	if (!(e->dirs[e->n_dirs].path = kl_memdup(path, len + 1)))
		return -ENOMEM;
	e->dirs[e->n_dirs].path[len] = 0;
	e->last_dir = e->n_dirs++;
	e->b.st.dirs++;
	*ret = d;
	return 0;
}

static void copy_meta(struct kl_node *dst, const struct kl_node *src)
{
	dst->mode = src->mode;
	dst->uid = src->uid;
	dst->gid = src->gid;
	dst->mtime_sec = src->mtime_sec;
	dst->mtime_nsec = src->mtime_nsec;
	dst->atime_sec = src->atime_sec;
	dst->ctime_sec = src->ctime_sec;
	if (src->user && !dst->user)
		dst->user = kl_strdup(src->user);
	if (src->group && !dst->group)
		dst->group = kl_strdup(src->group);
}

int kl_entry_backup_add(struct kl_entry_backup *e, const char *path, const struct kl_node *meta)
{
	const char *slash = strrchr(path, '/');
	size_t plen = slash ? (size_t)(slash - path) : 0, slot;
	const char *name = slash ? slash + 1 : path;
	struct dir_job *parent, *d;
	int rc;

	if (e->file || e->b.error)
		return e->b.error ? e->b.error : -EINVAL;
	if (!*name || !strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	if (meta->type == KL_NODE_DIR) {
		d = find_dir(e, path, strlen(path));
		if (d && d->parent) {
			/* made earlier as the parent of an entry: now it has its own metadata */
			copy_meta(&d->parent->tree.nodes[d->parent_slot], meta);
			return 0;
		}
		return get_dir(e, path, strlen(path), meta, &d);
	}
	rc = get_dir(e, path, plen, NULL, &parent);
	if (rc < 0)
		return rc;
	rc = add_node(parent, name, meta, &slot);
	if (rc < 0 || meta->type != KL_NODE_FILE)
		return rc;
	e->file = kl_calloc(1, sizeof(*e->file));
	if (!e->file)
		return -ENOMEM;
	atomic_init(&e->file->pending, 1);
	e->file->owner = parent;
	e->file->slot = slot;
	parent->pending++;
	e->file_dir = parent;
	e->file_size = meta->size;
	e->file_got = 0;
	e->len = 0;
	return 0;
}

/* Cuts the buffered bytes into chunks; all of them when eof. */
static int cut(struct kl_entry_backup *e, bool eof)
{
	const struct kl_cdc *cdc = kl_repo_cdc(e->b.r);
	size_t off = 0, max = e->fixed ? e->fixed : cdc->max;

	while (e->len - off >= max || (eof && off < e->len)) {
		size_t n = e->fixed ? (e->len - off < max ? e->len - off : max)
				    : kl_cdc_next(cdc, e->b.rbuf + off, e->len - off);
		uint8_t *chunk = kl_memdup(e->b.rbuf + off, n);
		int rc;

		if (!chunk)
			return -ENOMEM;
		rc = kl_pipeline_submit(&e->b.pl, e->file, chunk, n);
		if (rc < 0)
			return rc;
		off += n;
	}
	memmove(e->b.rbuf, e->b.rbuf + off, e->len - off);
	e->len -= off;
	return 0;
}

void kl_entry_backup_fixed(struct kl_entry_backup *e, uint32_t size)
{
	/* a chunk must fit the read buffer (four of the chunker's largest) */
	e->fixed = size < e->b.rbuf_cap ? size : (uint32_t)e->b.rbuf_cap;
}

int kl_entry_backup_write(struct kl_entry_backup *e, const void *p, size_t n)
{
	const uint8_t *q = p;

	if (!e->file)
		return -EINVAL;
	if (e->file_size != KL_ENTRY_SIZE_UNKNOWN && n > e->file_size - e->file_got)
		return -EFBIG;
	e->file_got += n;
	e->b.st.bytes_read += n;
	while (n) {
		size_t k = e->b.rbuf_cap - e->len;
		int rc;

		if (k > n)
			k = n;
		memcpy(e->b.rbuf + e->len, q, k);
		e->len += k;
		q += k;
		n -= k;
		rc = cut(e, false);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int kl_entry_backup_end(struct kl_entry_backup *e)
{
	struct kl_file_job *f = e->file;
	int rc;

	if (!f)
		return -EINVAL;
	if (e->file_size == KL_ENTRY_SIZE_UNKNOWN) {
		/* a stream that tells a file's size only at its end (mariabackup's) */
		e->file_size = e->file_got;
		e->file_dir->tree.nodes[f->slot].size = e->file_got;
	}
	if (e->file_got != e->file_size)
		return -EINVAL;
	rc = cut(e, true);
	e->file = NULL;
	kl_pipeline_file_sealed(&e->b.pl, f);
	e->b.st.files_new++;
	e->b.st.bytes_total += e->file_size;
	if (rc >= 0)
		rc = kl_bk_collect(&e->b, false);
	if (rc < 0 && !e->b.error)
		e->b.error = rc;
	return rc;
}

void kl_entry_backup_set_time(struct kl_entry_backup *e, int64_t time_ns)
{
	e->start_ns = time_ns;
}

int kl_entry_backup_commit(struct kl_entry_backup *e, struct kl_snapshot *snap,
			   struct kl_backup_result *ret)
{
	struct kl_write_stats ws = {0};
	int rc = e->file ? -EINVAL : e->b.error;

	memset(ret, 0, sizeof(*ret));
	if (e->file) {
		kl_pipeline_file_sealed(&e->b.pl, e->file);
		e->file = NULL;
	}
	/* every directory drops its own hold, children (made later) first */
	for (size_t i = e->n_dirs; rc >= 0 && i-- > 0;)
		rc = kl_bk_child_done(&e->b, e->dirs[i].d);
	rc = kl_bk_finish_walk(&e->b, rc, &ws);
	e->finished = true;
	if (rc < 0)
		return rc;
	snap->time_ns = snap->read_start_ns = e->start_ns;
	snap->host = e->hostbuf;
	snap->user = e->userbuf;
	return kl_bk_save_snapshot(&e->b, snap, &ws, NULL, false, ret);
}
