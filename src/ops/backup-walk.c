/*
 * The walk: lists each directory, adds a node per entry and hands files
 * to backup-file.c and finished directories to backup-tree.c, depth first
 * on a stack of its own.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/vfs.h>

#include "keel/fs.h"
#include "backup-internal.h"

#define CACHEDIR_SIG "Signature: 8a477f597d28d172789f06886806bc55"

static int cmp_names(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;

	return kl_name_cmp((const uint8_t *)x, strlen(x), (const uint8_t *)y, strlen(y));
}

static bool is_cachedir_tag(int dfd)
{
	char buf[sizeof(CACHEDIR_SIG) - 1];
	_cleanup_close_ int fd =
		kl_bk_open_noatime(dfd, "CACHEDIR.TAG", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	size_t got;

	if (fd < 0)
		return false;
	if (kl_fs_read_full(fd, buf, sizeof(buf), &got) < 0 || got != sizeof(buf))
		return false;
	return !memcmp(buf, CACHEDIR_SIG, sizeof(buf));
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
	/* O_NOATIME: listing a directory sets its atime too */
	cfd = kl_bk_open_noatime(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (cfd < 0) {
		kl_bk_warn(b, path, cfd, "cannot open directory");
		return kl_bk_child_done(b, c);
	}
	*cfd_ret = cfd;
	if (oldn && oldn->type == KL_NODE_DIR && oldn->has_subtree &&
	    !(b->o->flags & KL_BACKUP_FORCE) &&
	    kl_repo_read_tree(b->r, &oldn->subtree, oldt_ret) < 0)
		memset(oldt_ret, 0, sizeof(*oldt_ret)); /* a damaged parent only costs speed */
	return 0;
}

/*
 * Counts a file whose content is stored (or is on its way): a file that
 * could not be read is left out of the snapshot, and so of its counts.
 */
static void count_file(struct backup *b, const struct kl_node *oldn, const char *path,
		       uint64_t size)
{
	b->st.bytes_total += size;
	if (oldn && oldn->type == KL_NODE_FILE) {
		b->st.files_changed++;
		kl_bk_item(b, KL_BACKUP_ITEM_CHANGED, path, size);
	} else {
		b->st.files_new++;
		kl_bk_item(b, KL_BACKUP_ITEM_NEW, path, size);
	}
}

/* Handles a node already added to d: reads a file, walks a directory. */
int kl_bk_handle_node(struct backup *b, struct dir_job *d, size_t slot, int dfd,
		      const struct kl_node *oldn, const char *path, const struct stat *st)
{
	struct kl_node *n = &d->tree.nodes[slot];
	/* kl_bk_add_entry allocates names with a NUL after them */
	const char *name = (const char *)n->name;
	int rc = kl_repo_cancelled(b->r); /* SIGINT, SIGTERM: stop between entries */

	if (rc < 0)
		return rc;
	if (n->type == KL_NODE_FILE) {
		if (oldn && !(b->o->flags & KL_BACKUP_FORCE) && kl_node_unchanged(oldn, st) &&
		    kl_bk_all_stored(b, oldn)) {
			if (oldn->n_content) {
				n->content = kl_memdup(oldn->content,
						       oldn->n_content * sizeof(struct kl_id));
				if (!n->content)
					return -ENOMEM;
			}
			n->n_content = oldn->n_content;
			b->st.bytes_total += n->size;
			b->st.files_unmodified++;
			kl_bk_item(b, KL_BACKUP_ITEM_UNMODIFIED, path, n->size);
			b->prog.files_done++;
			b->prog.bytes_done += n->size;
			kl_bk_progress(b, path, false);
			return kl_bk_link_add(b, d, slot, st, true);
		}
		rc = kl_bk_link_reuse(b, d, slot, st);
		if (rc != 0) {
			if (rc > 0)
				count_file(b, oldn, path, n->size);
			kl_bk_progress(b, path, false);
			return rc < 0 ? rc : 0;
		}
		rc = kl_bk_backup_file(b, d, slot, dfd, name, path);
		kl_bk_progress(b, path, false);
		if (rc < 0 && !b->error) {
			/* unreadable: leave it out rather than restore an empty file */
			n->type = 0;
			return 0;
		}
		if (rc >= 0) {
			count_file(b, oldn, path,
				   n->size); /* the bytes read, stored up to an error */
			rc = kl_bk_link_add(b, d, slot, st, false);
		}
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
 * Reading an entry sets its atime and nothing else; every other change
 * (content, metadata, an atime set on purpose) sets its ctime. With the
 * same inode and ctime as in the parent snapshot, the node keeps the
 * parent's atime: a tree that was only read since stores nothing new,
 * where its new atimes would make new tree blobs up to the root on every
 * backup (docs/FORMAT.md, Node.atime_sec).
 */
static void keep_atime(const struct kl_node *prev, struct kl_node *n)
{
	if (prev && prev->type == n->type && prev->inode == n->inode && prev->dev == n->dev &&
	    prev->ctime_sec == n->ctime_sec && prev->ctime_nsec == n->ctime_nsec) {
		n->atime_sec = prev->atime_sec;
		n->atime_nsec = prev->atime_nsec;
	}
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
	if ((b->o->n_skip || b->o->n_if_present) && S_ISDIR(st->st_mode)) {
		const char *why;
		int skip = kl_bk_skip_dir(b, dfd, name, st, &why);

		if (skip == 2)
			kl_bk_note(b, path, why);
		if (skip)
			return 0;
	}
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
	keep_atime(prev, &n);
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
		if (kl_bk_excluded(b, (const char *)path->data))
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
