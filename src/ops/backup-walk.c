/*
 * The walk: directories become tree blobs once everything below them is
 * done; changed files are read and cut into chunks for the pipeline.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/vfs.h>

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
	b->next_progress_ns = now + KL_NSEC_PER_SEC / 10;
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
		if (rc >= 0 && n->content)
			rc = kl_bk_link_done(b, d, f->slot);
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
	const struct kl_cdc *cdc = kl_repo_cdc(b->r);
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

/*
 * Opens the directory node at slot of d for its walk: c is its job, *cfd_ret
 * its descriptor (-1 when there is nothing to walk: a mount point left
 * empty, or a directory we cannot open; c is then done already) and
 * *oldt_ret the parent snapshot's listing of it (empty when there is none).
 */
static int dir_open(struct backup *b, struct dir_job *d, size_t slot, int dfd,
		    const struct kl_node *oldn, const char *path, const struct stat *st,
		    struct dir_job **c_ret, int *cfd_ret, struct kl_tree *oldt_ret)
{
	const char *name = (const char *)d->tree.nodes[slot].name;
	struct dir_job *c;
	int cfd;

	*cfd_ret = -1;
	memset(oldt_ret, 0, sizeof(*oldt_ret));
	b->st.dirs++;
	c = kl_bk_dir_new(b, d, slot);
	if (!c)
		return -ENOMEM;
	*c_ret = c;
	if ((b->o->flags & KL_BACKUP_ONE_FS) && st->st_dev != b->root_dev)
		return kl_bk_child_done(b, c); /* a mount point: keep it, empty */
	cfd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (cfd < 0) {
		kl_bk_warn(b, path, -errno, "cannot open directory");
		return kl_bk_child_done(b, c);
	}
	*cfd_ret = cfd;
	if (oldn && oldn->type == KL_NODE_DIR && oldn->has_subtree &&
	    !(b->o->flags & KL_BACKUP_FORCE) &&
	    kl_repo_read_tree(b->r, &oldn->subtree, oldt_ret) < 0)
		memset(oldt_ret, 0, sizeof(*oldt_ret)); /* a damaged parent only costs speed */
	return 0;
}

/* Handles a node already added to d: reads a file, walks a directory. */
int kl_bk_handle_node(struct backup *b, struct dir_job *d, size_t slot, int dfd,
		      const struct kl_node *oldn, const char *path, const struct stat *st)
{
	struct kl_node *n = &d->tree.nodes[slot];
	/* kl_bk_add_entry allocates names with a NUL after them */
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
			return kl_bk_link_add(b, d, slot, st, true);
		}
		if (oldn && oldn->type == KL_NODE_FILE)
			b->st.files_changed++;
		else
			b->st.files_new++;
		rc = kl_bk_link_reuse(b, d, slot, st);
		if (rc != 0) {
			kl_bk_progress(b, path, false);
			return rc < 0 ? rc : 0;
		}
		rc = backup_file(b, d, slot, dfd, name, path);
		kl_bk_progress(b, path, false);
		if (rc < 0 && !b->error) {
			/* unreadable: leave it out rather than restore an empty file */
			n->type = 0;
			return 0;
		}
		if (rc >= 0)
			rc = kl_bk_link_add(b, d, slot, st, false);
		return rc;
	}
	if (n->type == KL_NODE_DIR) {
		struct kl_tree oldt;
		struct dir_job *c;
		_cleanup_close_ int cfd = -1;

		rc = dir_open(b, d, slot, dfd, oldn, path, st, &c, &cfd, &oldt);
		if (rc >= 0 && cfd >= 0)
			rc = kl_bk_process_dir(b, c, cfd, oldt.n ? &oldt : NULL);
		kl_tree_release(&oldt);
		return rc;
	}
	return 0;
}

/*
 * prev, the parent snapshot's node of the entry, can stand in for what only
 * a ctime change changes (kl_node_from_stat) if it was recorded after its
 * ctime had passed: that ctime is older than the parent backup's start, by
 * more than the coarsest file system clock (2 s, FAT). Else a change made
 * in the clock tick after the parent backup read the entry could leave the
 * ctime as it was. And only on a file system known to set the ctime on
 * every xattr change: a FUSE daemon or an SMB server may not.
 */
static const struct kl_node *settled(struct backup *b, int dfd, const char *name,
				     const struct stat *st, const struct kl_node *prev)
{
	if (!prev || !b->prev_settled_ns || (b->o->flags & KL_BACKUP_FORCE))
		return NULL;
	if (prev->ctime_sec > (b->prev_settled_ns / KL_NSEC_PER_SEC) ||
	    (prev->ctime_sec == b->prev_settled_ns / KL_NSEC_PER_SEC &&
	     prev->ctime_nsec >= (uint32_t)(b->prev_settled_ns % KL_NSEC_PER_SEC)))
		return NULL;
	/*
	 * Only where the ctime is the kernel's own: asked once per device (the
	 * entry itself, which may be a mount point), when it changes.
	 */
	if (!b->ctime_dev_known || b->ctime_dev != st->st_dev) {
		int fd = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		struct statfs sf;
		bool ok = fd >= 0 && fstatfs(fd, &sf) == 0;

		if (fd >= 0)
			close(fd);
		if (!ok)
			return NULL; /* gone, say: ask again for the next entry */
		b->ctime_dev = st->st_dev;
		b->ctime_dev_known = true;
		b->ctime_dev_keeps = kl_node_fs_keeps_ctime((unsigned long)sf.f_type);
	}
	return b->ctime_dev_keeps ? prev : NULL;
}

/*
 * must_exist: a path the user named (or a directory above one), whose
 * absence is an error; an entry that vanished after it was listed is not.
 * prev: the parent snapshot's node for it, or NULL.
 */
int kl_bk_add_entry(struct backup *b, struct dir_job *d, int dfd, const char *name,
		    const char *path, const struct kl_node *prev, struct stat *st, bool must_exist,
		    bool *added)
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
	rc = kl_node_from_stat(dfd, name, st, b->ids, settled(b, dfd, name, st, prev), &n);
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

/*
 * One directory of the walk. kl_bk_process_dir keeps these on a stack of
 * its own rather than recursing, so a tree of any depth needs no more
 * than a fixed amount of the thread's stack.
 */
struct frame {
	struct frame *up;
	struct dir_job *d;
	int dfd;
	bool own_fd;
	dev_t dev; /* of the directory, to check it again after reopening it */
	ino_t ino;
	size_t depth;		   /* below the first frame */
	size_t base;		   /* length of the directory's path in the walk's buffer */
	const struct kl_tree *old; /* the parent snapshot's listing, or NULL */
	struct kl_tree old_own;	   /* what old points to, when this frame read it */
	char **names;		   /* sorted, with their stat results and tree slots */
	struct stat *sts;
	size_t *slot_of;
	const struct kl_node **prev; /* each name's node in old, or NULL */
	size_t n_names, next;
};

static void frame_free(struct frame *f)
{
	if (f->own_fd && f->dfd >= 0)
		close(f->dfd);
	kl_tree_release(&f->old_own);
	for (size_t i = 0; i < f->n_names; i++)
		kl_free(f->names[i]);
	kl_free(f->names);
	kl_free(f->sts);
	kl_free(f->slot_of);
	kl_free(f->prev);
	kl_free(f);
}

/*
 * The walk's one path buffer: it holds f's directory (base bytes) and,
 * while an entry is handled, "/" and the entry's name after it. Paths
 * cost the length of one path, however deep the walk, and no allocation
 * per entry.
 */
static int path_at(struct kl_buf *path, const struct frame *f, const char *name)
{
	(void)kl_buf_setlen(path, f->base); /* shorter: cannot fail */
	return name ? kl_bk_path_add(path, name, strlen(name)) : 0;
}

/* Lists f's directory and adds a node for each entry, in name order. */
static int frame_list(struct backup *b, struct frame *f, struct kl_buf *path)
{
	struct dir_job *d = f->d;
	_cleanup_close_ int dupfd = dup(f->dfd);
	size_t cap = 0;
	struct stat st;
	DIR *dir;
	struct dirent *de;
	bool caches = false;
	int rc = 0;

	if (dupfd < 0 || fstat(f->dfd, &st) < 0)
		return -errno;
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	dir = fdopendir(dupfd);
	if (!dir)
		return -errno;
	dupfd = -1;
	while ((errno = 0, de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (f->n_names == cap) {
			size_t ncap = cap ? cap * 2 : 32;
			char **v = kl_realloc(f->names, ncap * sizeof(*v));

			if (!v) {
				rc = -ENOMEM;
				break;
			}
			f->names = v;
			cap = ncap;
		}
		f->names[f->n_names] = kl_strdup(de->d_name);
		if (!f->names[f->n_names]) {
			rc = -ENOMEM;
			break;
		}
		f->n_names++;
	}
	if (!de && errno && rc >= 0) {
		int err = -errno;

		(void)path_at(path, f, NULL);
		kl_bk_warn(b, (const char *)path->data, err, "cannot list directory completely");
	}
	closedir(dir);
	if (rc < 0)
		return rc;
	if (f->n_names)
		qsort(f->names, f->n_names, sizeof(*f->names), cmp_names);
	if ((b->o->flags & KL_BACKUP_EXCLUDE_CACHES) && is_cachedir_tag(f->dfd))
		caches = true;
	f->sts = kl_calloc(f->n_names ? f->n_names : 1, sizeof(*f->sts));
	f->slot_of = kl_calloc(f->n_names ? f->n_names : 1, sizeof(*f->slot_of));
	f->prev = kl_calloc(f->n_names ? f->n_names : 1, sizeof(*f->prev));
	if (!f->sts || !f->slot_of || !f->prev)
		return -ENOMEM;
	/* first all metadata, so the tree's node array is final before files go in flight */
	for (size_t i = 0; i < f->n_names; i++) {
		bool added;

		f->slot_of[i] = SIZE_MAX;
		if (caches && strcmp(f->names[i], "CACHEDIR.TAG"))
			continue;
		rc = path_at(path, f, f->names[i]);
		if (rc < 0)
			return rc;
		if (b->o->excludes.n &&
		    kl_patterns_match(&b->o->excludes, (const char *)path->data))
			continue;
		if (f->old)
			f->prev[i] = kl_tree_find(f->old, (const uint8_t *)f->names[i],
						  strlen(f->names[i]));
		rc = kl_bk_add_entry(b, d, f->dfd, f->names[i], (const char *)path->data,
				     f->prev[i], &f->sts[i], false, &added);
		if (rc < 0)
			return rc;
		if (added)
			f->slot_of[i] = d->tree.n - 1;
	}
	return 0;
}

static struct frame *frame_new(struct frame *up, struct dir_job *d, int dfd, bool own_fd)
{
	struct frame *f = kl_calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->up = up;
	f->d = d;
	f->dfd = dfd;
	f->own_fd = own_fd;
	f->depth = up ? up->depth + 1 : 0;
	return f;
}

/*
 * Enters the directory node at f's entry i. *ret is its frame, listed, or
 * NULL when the directory was finished without a walk.
 */
static int frame_enter(struct backup *b, struct frame *f, size_t i, struct kl_buf *path,
		       struct frame **ret)
{
	struct dir_job *c;
	struct frame *k;
	struct kl_tree oldt;
	int cfd, rc;

	*ret = NULL;
	rc = dir_open(b, f->d, f->slot_of[i], f->dfd, f->prev[i], (const char *)path->data,
		      &f->sts[i], &c, &cfd, &oldt);
	if (rc < 0 || cfd < 0) {
		kl_tree_release(&oldt);
		return rc;
	}
	k = frame_new(f, c, cfd, true);
	if (!k) {
		close(cfd);
		kl_tree_release(&oldt);
		return -ENOMEM;
	}
	k->old_own = oldt;
	k->old = oldt.n ? &k->old_own : NULL;
	k->base = path->len;
	rc = frame_list(b, k, path);
	if (rc < 0) {
		frame_free(k);
		return rc;
	}
	*ret = k;
	return 0;
}

/*
 * Below WALK_FD_DEPTH, a frame's directory is closed while its children
 * are walked, so a deep tree does not run out of descriptors; it is
 * reopened through the child's "..", or else by name from the nearest
 * open directory above it, and must still be the directory we were
 * walking. If it is not (someone moved directories), the rest of it is
 * left out: reading on through another path could mix two trees.
 */
#define WALK_FD_DEPTH 64

static bool same_dir(int fd, const struct frame *f)
{
	struct stat st;

	return fstat(fd, &st) == 0 && st.st_dev == f->dev && st.st_ino == f->ino;
}

static int reopen_by_name(struct frame *f)
{
	while (f->dfd < 0) {
		struct frame *g = f;
		int fd;

		while (g->up && g->up->dfd < 0)
			g = g->up;
		if (!g->up)
			return -EBADF;
		fd = openat(g->up->dfd, g->up->names[g->up->next - 1],
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		if (!same_dir(fd, g)) {
			close(fd);
			return -ESTALE;
		}
		g->dfd = fd;
		g->own_fd = true;
		if (g->depth > WALK_FD_DEPTH && g->up->own_fd) {
			close(g->up->dfd);
			g->up->dfd = -1;
		}
	}
	return 0;
}

static void frame_reopen(struct backup *b, struct frame *up, int child_fd, struct kl_buf *path)
{
	int fd = openat(child_fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0 && same_dir(fd, up)) {
		up->dfd = fd;
		up->own_fd = true;
		return;
	}
	if (fd >= 0)
		close(fd);
	if (reopen_by_name(up) == 0)
		return;
	(void)path_at(path, up, NULL);
	kl_bk_warn(b, (const char *)path->data, -ESTALE,
		   "directory was moved while it was backed up; the rest of it is left out");
	for (size_t i = up->next; i < up->n_names; i++)
		if (up->slot_of[i] != SIZE_MAX)
			up->d->tree.nodes[up->slot_of[i]].type = 0;
	up->next = up->n_names;
}

int kl_bk_process_dir(struct backup *b, struct dir_job *d, int dfd, const struct kl_tree *old)
{
	_cleanup_buf_ struct kl_buf path = KL_BUF_INIT(SIZE_MAX);
	struct frame *f = frame_new(NULL, d, dfd, false);
	struct frame *up;
	int rc;

	if (!f)
		return -ENOMEM;
	f->old = old;
	rc = kl_bk_dir_path(d, &path);
	f->base = path.len;
	if (rc >= 0)
		rc = frame_list(b, f, &path);
	while (f) {
		if (rc >= 0 && !b->error && f->next < f->n_names) {
			size_t i = f->next++;
			size_t slot = f->slot_of[i];
			struct frame *k = NULL;

			if (slot == SIZE_MAX)
				continue;
			rc = path_at(&path, f, f->names[i]);
			if (rc < 0)
				continue;
			if (f->d->tree.nodes[slot].type == KL_NODE_DIR) {
				rc = frame_enter(b, f, i, &path, &k);
			} else {
				rc = kl_bk_handle_node(b, f->d, slot, f->dfd, f->prev[i],
						       (const char *)path.data, &f->sts[i]);
			}
			if (rc >= 0)
				rc = kl_bk_collect(b, false);
			if (k) {
				if (k->depth > WALK_FD_DEPTH && f->own_fd) {
					close(f->dfd);
					f->dfd = -1;
				}
				f = k;
			}
			continue;
		}
		/* f is done (or the backup failed): finish its directory, go back up */
		up = f->up;
		if (rc >= 0)
			rc = kl_bk_child_done(b, f->d);
		if (rc >= 0)
			rc = kl_bk_collect(b, false);
		if (rc >= 0 && up && up->dfd < 0)
			frame_reopen(b, up, f->dfd, &path);
		frame_free(f);
		f = up;
	}
	return rc;
}
