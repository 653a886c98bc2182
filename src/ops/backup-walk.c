/*
 * The walk: directories become tree blobs once everything below them is
 * done; changed files are read and cut into chunks for the pipeline.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>

#include "keel/fs.h"
#include "backup-internal.h"

#define CACHEDIR_SIG "Signature: 8a477f597d28d172789f06886806bc55"

void kl_bk_warn(struct backup *b, const char *path, int err, const char *what)
{
	b->st.errors++;
	b->prog.errors++;
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
	b->next_progress_ns = now + 100000000;
	b->prog.current = current;
	b->prog.files_total = atomic_load(&b->scan_files);
	b->prog.bytes_total = atomic_load(&b->scan_bytes);
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

struct dir_job *kl_bk_dir_new(struct backup *b, struct dir_job *parent, size_t slot,
			      const char *path)
{
	struct dir_job *d = kl_calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->path = kl_strdup(path);
	if (!d->path) {
		kl_free(d);
		return NULL;
	}
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
	kl_free(d->path);
	kl_free(d);
}

static int finalize_dir(struct backup *b, struct dir_job *d);

int kl_bk_child_done(struct backup *b, struct dir_job *d)
{
	if (--d->pending == 0)
		return finalize_dir(b, d);
	return 0;
}

static int finalize_dir(struct backup *b, struct dir_job *d)
{
	_cleanup_buf_ struct kl_buf enc = KL_BUF_INIT((size_t)64 << 20);
	struct dir_job *parent = d->parent;
	size_t d_slot = d->parent_slot;
	struct kl_id id = {{0}};
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
	rc = kl_tree_encode(&d->tree, &enc);
	if (rc >= 0 && !(b->o->flags & KL_BACKUP_DRY_RUN))
		rc = kl_packer_store(b->trees, KL_BLOB_TREE, enc.data, enc.len, &id);
	else if (rc >= 0)
		kl_tree_blob_id(b->r->keys, enc.data, enc.len, &id);
	if (rc < 0) {
		kl_fail(&b->r->err, rc, "cannot store directory '%s'", d->path);
		b->error = rc;
	}
	kl_bk_dir_free(b, d);
	if (rc < 0)
		return rc;
	if (parent) {
		struct kl_node *n = &parent->tree.nodes[d_slot];

		n->subtree = id;
		n->has_subtree = true;
		return kl_bk_child_done(b, parent);
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
			b->error = -ENOMEM;
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
		kl_file_job_free(f);
		if (rc >= 0)
			rc = kl_bk_child_done(b, d);
		f = next;
	}
	return rc;
}

static int open_file(struct backup *b, int dfd, const char *name)
{
	int fd = -1;

	if (!b->no_noatime) {
		fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME | O_NONBLOCK);
		if (fd < 0 && errno == EPERM)
			b->no_noatime = true;
	}
	if (fd < 0 && b->no_noatime)
		fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	return fd < 0 ? -errno : fd;
}

/*
 * Reads fd to the end, submitting chunks for f. Returns bytes read or a
 * negative error; on a read error after some data, the chunks so far stay
 * submitted and *read_err is set.
 */
int kl_bk_read_chunks(struct backup *b, int fd, struct kl_file_job *f, uint64_t *total,
		      int *read_err)
{
	const struct kl_cdc *cdc = &b->r->cdc;
	size_t len = 0, off;
	bool eof = false;
	int rc;

	*total = 0;
	*read_err = 0;
	for (;;) {
		while (!eof && len < b->rbuf_cap) {
			ssize_t n = read(fd, b->rbuf + len, b->rbuf_cap - len);

			if (n < 0) {
				if (errno == EINTR)
					continue;
				*read_err = -errno;
				eof = true;
				break;
			}
			if (n == 0)
				eof = true;
			len += (size_t)n;
			*total += (uint64_t)n;
		}
		off = 0;
		while (len - off >= cdc->max || (eof && off < len)) {
			size_t cut = kl_cdc_next(cdc, b->rbuf + off, len - off);
			uint8_t *chunk = kl_memdup(b->rbuf + off, cut);

			if (!chunk)
				return -ENOMEM;
			rc = kl_pipeline_submit(&b->pl, f, chunk, cut);
			if (rc < 0)
				return rc;
			off += cut;
			b->prog.bytes_done += cut;
			kl_bk_progress(b, NULL, false);
		}
		if (eof)
			return 0;
		memmove(b->rbuf, b->rbuf + off, len - off);
		len -= off;
	}
}

static int backup_file(struct backup *b, struct dir_job *d, size_t slot, int dfd, const char *name,
		       const char *path)
{
	struct kl_node *n = &d->tree.nodes[slot];
	struct kl_file_job *f;
	_cleanup_close_ int fd = -1;
	struct stat before, after;
	uint64_t total;
	int rc, read_err;

	fd = open_file(b, dfd, name);
	if (fd < 0) {
		kl_bk_warn(b, path, fd, "cannot open");
		return fd;
	}
	if (fstat(fd, &before) < 0 || !S_ISREG(before.st_mode)) {
		kl_bk_warn(b, path, -EINVAL, "replaced while being backed up");
		return -EINVAL;
	}
	/* the O_NONBLOCK was only for opening (a FIFO swapped in must not hang us) */
	fcntl(fd, F_SETFL, 0);
	f = kl_calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	atomic_init(&f->pending, 1);
	f->owner = d;
	f->slot = slot;
	d->pending++;
	rc = kl_bk_read_chunks(b, fd, f, &total, &read_err);
	kl_pipeline_file_sealed(&b->pl, f);
	if (rc < 0) {
		b->error = rc;
		return rc;
	}
	b->st.bytes_read += total;
	n->size = total;
	if (read_err) {
		n->flags |= KL_NODE_PARTIAL;
		kl_bk_warn(b, path, read_err, "read error; file saved up to the error");
	} else if (fstat(fd, &after) == 0 && (after.st_size != before.st_size ||
					      after.st_mtim.tv_sec != before.st_mtim.tv_sec ||
					      after.st_mtim.tv_nsec != before.st_mtim.tv_nsec ||
					      after.st_ctim.tv_sec != before.st_ctim.tv_sec ||
					      after.st_ctim.tv_nsec != before.st_ctim.tv_nsec ||
					      total != (uint64_t)before.st_size)) {
		n->flags |= KL_NODE_CHANGED;
		kl_bk_warn(b, path, 0, "file changed while it was read");
	}
	/* the node keeps the metadata seen before reading, when it matched the content */
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;

	return kl_name_cmp((const uint8_t *)x, strlen(x), (const uint8_t *)y, strlen(y));
}

static bool is_cachedir_tag(int dfd)
{
	char buf[sizeof(CACHEDIR_SIG) - 1];
	_cleanup_close_ int fd = openat(dfd, "CACHEDIR.TAG", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	size_t got;

	if (fd < 0)
		return false;
	if (kl_fs_read_full(fd, buf, sizeof(buf), &got) < 0 || got != sizeof(buf))
		return false;
	return !memcmp(buf, CACHEDIR_SIG, sizeof(buf));
}

/*
 * An unchanged file reuses its parent's chunk ids only if they are all
 * still stored: after a pack was lost, reading the file again heals the
 * repository instead of carrying the damage into every new snapshot.
 */
static bool all_stored(struct backup *b, const struct kl_node *oldn)
{
	for (size_t i = 0; i < oldn->n_content; i++)
		if (kl_repo_lookup(b->r, &oldn->content[i], NULL) != 1)
			return false;
	return true;
}

/* Handles a node already added to d: reads a file, descends into a directory. */
int kl_bk_handle_node(struct backup *b, struct dir_job *d, size_t slot, int dfd,
		      const struct kl_node *oldn, const char *path, const struct stat *st)
{
	struct kl_node *n = &d->tree.nodes[slot];
	/* kl_bk_add_entry allocates names with a NUL after them: no copy on the stack, deep trees
	 * recurse */
	const char *name = (const char *)n->name;
	int rc = 0;
	if (n->type == KL_NODE_FILE) {
		b->st.bytes_total += n->size;
		if (oldn && !(b->o->flags & KL_BACKUP_FORCE) && kl_node_unchanged(oldn, st) &&
		    all_stored(b, oldn)) {
			if (oldn->n_content) {
				n->content = kl_memdup(oldn->content,
						       oldn->n_content * sizeof(struct kl_id));
				if (!n->content)
					return -ENOMEM;
			}
			n->n_content = oldn->n_content;
			b->st.files_unmodified++;
			b->prog.files_done++;
			b->prog.bytes_done += n->size;
			kl_bk_progress(b, path, false);
			return 0;
		}
		if (oldn && oldn->type == KL_NODE_FILE)
			b->st.files_changed++;
		else
			b->st.files_new++;
		rc = backup_file(b, d, slot, dfd, name, path);
		kl_bk_progress(b, path, false);
		if (rc < 0 && !b->error) {
			/* unreadable: leave it out rather than restore an empty file */
			n->type = 0;
			return 0;
		}
		return rc;
	}
	if (n->type == KL_NODE_DIR) {
		struct kl_tree oldt = {0};
		struct dir_job *c;
		_cleanup_close_ int cfd = -1;

		b->st.dirs++;
		c = kl_bk_dir_new(b, d, slot, path);
		if (!c)
			return -ENOMEM;
		if ((b->o->flags & KL_BACKUP_ONE_FS) && st->st_dev != b->root_dev)
			return kl_bk_child_done(b, c); /* a mount point: keep it, empty */
		cfd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (cfd < 0) {
			kl_bk_warn(b, path, -errno, "cannot open directory");
			return kl_bk_child_done(b, c);
		}
		if (oldn && oldn->type == KL_NODE_DIR && oldn->has_subtree &&
		    !(b->o->flags & KL_BACKUP_FORCE)) {
			rc = kl_repo_read_tree(b->r, &oldn->subtree, &oldt);
			if (rc < 0) {
				/* a damaged parent only costs speed: read everything again */
				memset(&oldt, 0, sizeof(oldt));
				rc = 0;
			}
		}
		rc = kl_bk_process_dir(b, c, cfd, oldt.n ? &oldt : NULL);
		kl_tree_release(&oldt);
		return rc;
	}
	return 0;
}

/*
 * must_exist: a path the user named (or a directory above one), whose
 * absence is an error; an entry that vanished after it was listed is not.
 */
int kl_bk_add_entry(struct backup *b, struct dir_job *d, int dfd, const char *name,
		    const char *path, struct stat *st, bool must_exist, bool *added)
{
	struct kl_node n = {0};
	int rc;

	*added = false;
	if (fstatat(dfd, name, st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT && !must_exist)
			return 0; /* vanished since it was listed: nothing to save */
		kl_bk_warn(b, path, -errno, errno == ENOENT ? "does not exist" : "cannot stat");
		return 0;
	}
	if (S_ISREG(st->st_mode) && b->o->exclude_larger_than &&
	    (uint64_t)st->st_size > b->o->exclude_larger_than)
		return 0;
	n.name_len = strlen(name);
	n.name = kl_memdup(name, n.name_len + 1);
	if (!n.name)
		return -ENOMEM;
	rc = kl_node_from_stat(dfd, name, st, b->ids, &n);
	if (rc == -ENOMEM) {
		kl_node_release(&n);
		return rc;
	}
	if (rc < 0)
		kl_bk_warn(b, path, rc, "cannot read attributes");
	rc = kl_tree_add(&d->tree, &n);
	if (rc < 0) {
		kl_node_release(&n);
		return rc;
	}
	*added = true;
	return 0;
}

int kl_bk_process_dir(struct backup *b, struct dir_job *d, int dfd, const struct kl_tree *old)
{
	_cleanup_close_ int dupfd = dup(dfd);
	char **names = NULL;
	size_t n_names = 0, cap = 0;
	struct stat *sts = NULL;
	DIR *dir;
	struct dirent *de;
	bool caches = false;
	int rc = 0;

	if (dupfd < 0)
		return -errno;
	dir = fdopendir(dupfd);
	if (!dir)
		return -errno;
	dupfd = -1;
	while ((errno = 0, de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (n_names == cap) {
			size_t ncap = cap ? cap * 2 : 32;
			char **v = kl_realloc(names, ncap * sizeof(*v));

			if (!v) {
				rc = -ENOMEM;
				break;
			}
			names = v;
			cap = ncap;
		}
		names[n_names] = kl_strdup(de->d_name);
		if (!names[n_names]) {
			rc = -ENOMEM;
			break;
		}
		n_names++;
	}
	if (!de && errno && rc >= 0)
		kl_bk_warn(b, d->path, -errno, "cannot list directory completely");
	closedir(dir);
	if (rc >= 0 && n_names)
		qsort(names, n_names, sizeof(*names), cmp_names);
	if (rc >= 0 && (b->o->flags & KL_BACKUP_EXCLUDE_CACHES) && is_cachedir_tag(dfd))
		caches = true;
	sts = kl_calloc(n_names ? n_names : 1, sizeof(*sts));
	if (!sts)
		rc = -ENOMEM;
	/* first all metadata, so the tree's node array is final before files go in flight */
	size_t *slot_of = kl_calloc(n_names ? n_names : 1, sizeof(size_t));
	if (!slot_of)
		rc = -ENOMEM;
	for (size_t i = 0; rc >= 0 && i < n_names; i++) {
		_cleanup_free_ char *path = kl_bk_join_path(d->path, names[i]);
		bool added;

		slot_of[i] = SIZE_MAX;
		if (!path) {
			rc = -ENOMEM;
			break;
		}
		if (caches && strcmp(names[i], "CACHEDIR.TAG"))
			continue;
		if (b->o->excludes.n && kl_patterns_match(&b->o->excludes, path))
			continue;
		rc = kl_bk_add_entry(b, d, dfd, names[i], path, &sts[i], false, &added);
		if (added)
			slot_of[i] = d->tree.n - 1;
	}
	for (size_t i = 0; rc >= 0 && !b->error && i < n_names; i++) {
		const struct kl_node *oldn = NULL;
		size_t slot = slot_of[i];
		_cleanup_free_ char *path = NULL;

		if (slot == SIZE_MAX)
			continue;
		path = kl_bk_join_path(d->path, names[i]);
		if (!path) {
			rc = -ENOMEM;
			break;
		}
		if (old)
			oldn = kl_tree_find(old, (const uint8_t *)names[i], strlen(names[i]));
		rc = kl_bk_handle_node(b, d, slot, dfd, oldn, path, &sts[i]);
		if (rc >= 0)
			rc = kl_bk_collect(b, false);
	}
	for (size_t i = 0; i < n_names; i++)
		kl_free(names[i]);
	kl_free(names);
	kl_free(sts);
	kl_free(slot_of);
	if (rc < 0)
		return rc;
	return kl_bk_child_done(b, d);
}

/* ---- sources: the tree of path components above the given paths ---- */
