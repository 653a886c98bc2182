/*
 * Restore: a snapshot's tree back into files.
 *
 * The main thread walks the trees depth first and creates every directory,
 * symlink, FIFO, device and hard link itself; regular files go to a pool
 * of workers, which create them (creating inodes is most of the time of a
 * restore of many small files, and one thread would do it one at a time),
 * read the file's blobs, write them in order and apply the file's metadata
 * through the descriptor. A directory's own metadata waits for the last
 * file created in it (struct rdir). The walk creates a file itself when
 * its descriptor is needed at once: a file with other names, which are
 * linked to it next, and a large file, which is cut into parts by blob
 * ranges so that every worker can write into it (the worker that finishes
 * its last part closes it). The queue is bounded, so memory and open
 * descriptors stay bounded however large the tree is.
 *
 * Safety. Every system call works relative to a directory descriptor with
 * a single name from a decoded tree (the decoder rejects "", ".", "..",
 * '/' and NUL, and we check again), directories are opened with
 * O_NOFOLLOW | O_DIRECTORY and files created with O_CREAT | O_EXCL |
 * O_NOFOLLOW, so nothing a restore creates, and nothing that was in the
 * target before, can redirect a write outside the target. Full paths are
 * only kept for messages, so paths longer than PATH_MAX work. What is in
 * the way of a node is replaced: a file, symlink or empty directory is
 * removed first (unlink, then create: never truncating in place, which
 * would write through a hard link into a file outside the target); a
 * directory that holds something is kept and the node is reported.
 * An existing directory where a directory belongs is reused.
 *
 * Metadata, in this order, because each step can undo an earlier one:
 *   1. owner: numeric uid/gid, as root only. We keep the ids rather than
 *      mapping the recorded user and group names to local ids (tar
 *      --numeric-owner, restic): a restore onto the machine that was
 *      backed up is exact, and a name lookup could silently give files to
 *      a different local account. chown also drops file capabilities and
 *      setuid/setgid bits, so it goes first;
 *   2. xattrs, POSIX ACLs (system.posix_acl_*) and capabilities included;
 *   3. mode (not for symlinks), after chown and the ACLs, which touch it;
 *   4. atime and mtime with nanoseconds, last, since everything above
 *      changes ctime only but writing content changes mtime.
 * A directory gets its metadata after all its children exist (post-order),
 * so a read-only or 0000 directory, or its mtime, is restored exactly.
 *
 * Sparse files (KL_NODE_SPARSE): all-zero pieces of each 4 KiB block are
 * not written and the file is extended with ftruncate at the end, so a
 * block stays a hole unless it holds data. Files not marked sparse are
 * written in full: turning their zero runs into holes would change how
 * they are stored, and some files (swap, preallocated images) must not
 * have holes.
 *
 * Sockets are skipped without a warning: a socket file is only a name
 * until a process binds it, and restic skips them too.
 *
 * Errors with one file are reported through warn() and the restore goes
 * on; kl_restore returns the most serious one. Running out of space (or
 * quota, or memory, or a read-only target) stops the whole restore. Some
 * problems are reported without counting as errors, because they are the
 * expected result of restoring as an ordinary user or onto a file system
 * without xattrs: devices that need privilege, xattrs the file system or
 * the user cannot set.
 */
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>

#include "keel/fs.h"
#include "keel/ops.h"
#include "link-hash.h"

#define QUEUE_CAP 64 /* parts waiting; each holds its file's fd */
#define MAX_THREADS 64
#define SPLIT_MIN ((uint64_t)64 << 20)	/* files this large are written by several workers */
#define PART_BYTES ((uint64_t)32 << 20) /* the size of one part of such a file */
#define FD_DEPTH 128			/* deeper than this, parent dirs are closed and reopened */
#define HOLE_BLOCK 4096
#define PROGRESS_NS (250 * 1000 * 1000)
#define PATH_BUF_MAX ((size_t)1 << 30)
#define BLOB_BUF_MAX ((size_t)128 << 20)

static const uint8_t zero_block[HOLE_BLOCK];

/*
 * A directory that files are still being created in after the walk left
 * it: the last creation applies its metadata (a read-only mode or its
 * mtime would otherwise stop or undo the creations).
 */
struct rdir {
	int fd;		     /* owned once the walk has left the directory */
	unsigned pending;    /* files queued to be created in it; under rctx.lock */
	bool left;	     /* the walk is done with it; under rctx.lock */
	struct kl_node node; /* owned, taken from its tree when the walk leaves */
	char *path;	     /* for messages; may be NULL */
};

/* A regular file being written by the workers. */
struct rfile {
	struct kl_node node; /* owned: taken from its tree */
	char *path;	     /* snapshot path, for messages */
	int fd;		     /* -1 until a worker creates the file */
	/* where a worker creates it: a descriptor of its own, since the walk
	 * may close the directory's (FD_DEPTH) before the file is created */
	int dirfd;
	char name[NAME_MAX + 1];
	struct rdir *dir; /* NULL: nothing waits for the creation */
	/* under rctx.lock */
	unsigned parts; /* parts not finished yet */
	int err;	/* first error reported for this file */
	bool verify_bad;
	/* length of the content when every blob's length is known */
	uint64_t end;
	bool known_end;
};

struct part {
	struct rfile *f;
	size_t first, last; /* blobs [first, last) */
	uint64_t off;	    /* where blob first starts */
};

/* A directory on the current path of the walk. */
struct dirh {
	struct dirh *parent;
	const uint8_t *name; /* in its node, which outlives the dirh */
	size_t name_len;
	int fd;	     /* -1: not created yet, or closed to save descriptors */
	bool exists; /* created or opened in the target */
	dev_t dev;
	ino_t ino;
	size_t depth;
	struct rdir *pend; /* files queued to be created in it, if any */
};

/* The first restored name of a multiply linked inode. */
struct link_ent {
	uint64_t dev, ino;
	char *rel; /* relative to the target, '/'-separated; NULL: empty slot */
};

struct rctx {
	struct kl_repo *r;
	const struct kl_restore_opts *o;
	bool do_owner;
	bool all; /* no include patterns: everything is included */
	int rootfd;
	unsigned nthreads;

	/* main thread only */
	struct kl_buf path; /* snapshot path of the current node */
	size_t rel_off;	    /* path.data + rel_off is its path below the target */
	struct link_ent *links;
	size_t n_links, cap_links;
	uint64_t files_seen, bytes_seen;

	pthread_mutex_t lock; /* everything below */
	pthread_cond_t nonempty, nonfull;
	struct part q[QUEUE_CAP];
	size_t q_head, q_len;
	bool walk_done;
	bool stop; /* also read without the lock, atomically */
	bool noted_xattr_unsupported;
	int worst;
	struct kl_restore_stats st;
	struct kl_progress prog;
	int64_t last_progress;
};

/* ---- errors and progress ---------------------------------------------------- */

static bool is_fatal(int rc)
{
	/* nothing more will fit, or the target cannot be written at all */
	return rc == -ENOSPC || rc == -EDQUOT || rc == -EROFS || rc == -ENOMEM || rc == -ESTALE;
}

static int severity(int rc)
{
	if (rc >= 0)
		return 0;
	if (is_fatal(rc))
		return 4;
	if (rc == -KL_ECORRUPT)
		return 3;
	if (rc == -KL_EVERIFY)
		return 2;
	return 1;
}

static bool stopped(struct rctx *c)
{
	return __atomic_load_n(&c->stop, __ATOMIC_RELAXED);
}

static const char *shown(const char *path)
{
	return path && *path ? path : "/";
}

/* Raises the result code and stops on fatal errors. Lock held. */
static void record_locked(struct rctx *c, int rc)
{
	if (severity(rc) > severity(c->worst))
		c->worst = rc;
	if (is_fatal(rc))
		__atomic_store_n(&c->stop, true, __ATOMIC_RELAXED);
}

static void warn_locked(struct rctx *c, const char *path, int rc, const char *what)
{
	if (c->o->report.warn)
		c->o->report.warn(c->o->report.ud, shown(path), rc, what);
}

/* One error with one node: reported, counted, and the restore goes on. */
static void fail(struct rctx *c, const char *path, int rc, const char *what)
{
	pthread_mutex_lock(&c->lock);
	c->st.errors++;
	c->prog.errors++;
	record_locked(c, rc);
	warn_locked(c, path, rc, what);
	pthread_mutex_unlock(&c->lock);
}

/* Something the user should know that is not an error of the restore. */
static void note(struct rctx *c, const char *path, int rc, const char *what)
{
	pthread_mutex_lock(&c->lock);
	warn_locked(c, path, rc, what);
	pthread_mutex_unlock(&c->lock);
}

/* An error with a file the workers write: reported once per file. */
static void file_fail(struct rctx *c, struct rfile *f, int rc, const char *what)
{
	pthread_mutex_lock(&c->lock);
	record_locked(c, rc);
	if (!f->err) {
		f->err = rc;
		c->st.errors++;
		c->prog.errors++;
		warn_locked(c, f->path, rc, what);
	}
	pthread_mutex_unlock(&c->lock);
}

static void progress_locked(struct rctx *c, const char *current, bool force)
{
	int64_t now;

	if (!c->o->report.progress)
		return;
	now = kl_time_mono_ns();
	if (!force && now - c->last_progress < PROGRESS_NS)
		return;
	c->last_progress = now;
	c->prog.current = current;
	c->o->report.progress(c->o->report.ud, &c->prog);
	c->prog.current = NULL;
}

/* ---- small system call helpers ---------------------------------------------- */

static int name_copy(char out[NAME_MAX + 1], const uint8_t *name, size_t len)
{
	if (len > NAME_MAX)
		return -ENAMETOOLONG;
	/* the tree decoder guarantees this; a restore must not trust that alone */
	if (KL_NEVER(!len || memchr(name, '/', len) || memchr(name, 0, len) ||
		     (name[0] == '.' && (len == 1 || (len == 2 && name[1] == '.')))))
		return -KL_ECORRUPT;
	memcpy(out, name, len);
	out[len] = 0;
	return 0;
}

static int pwrite_full(int fd, const uint8_t *p, size_t n, uint64_t off)
{
	while (n) {
		ssize_t w = pwrite(fd, p, n, (off_t)off);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (w == 0)
			return -EIO;
		p += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

/*
 * Writes n bytes at off. In a sparse file, pieces of 4 KiB blocks that
 * are all zero are skipped: the file is new, so what is not written
 * reads as zero, and a block none of whose bytes are written stays a
 * hole. Non-zero runs go out in one pwrite each.
 */
static int write_at(int fd, const uint8_t *p, size_t n, uint64_t off, bool sparse)
{
	size_t i = 0;

	if (!sparse)
		return pwrite_full(fd, p, n, off);
	while (i < n) {
		size_t start = i;
		int rc;

		for (;;) {
			size_t k = KL_MIN(HOLE_BLOCK - (size_t)((off + i) % HOLE_BLOCK), n - i);
			bool zero = !memcmp(p + i, zero_block, k);

			if (zero && i > start)
				break; /* write the run so far, then skip zeros */
			i += k;
			if (zero)
				start = i;
			if (i == n)
				break;
		}
		if (i > start) {
			rc = pwrite_full(fd, p + start, i - start, off + start);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

/*
 * Removes what is in the way of a new node: a file, a symlink, a device
 * or an empty directory. A directory with content is kept (-EISDIR).
 */
static int clear_way(int dirfd, const char *name)
{
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode)) {
		if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0)
			return errno == ENOTEMPTY || errno == EEXIST ? -EISDIR : -errno;
		return 0;
	}
	return unlinkat(dirfd, name, 0) < 0 ? -errno : 0;
}

/* ---- metadata ------------------------------------------------------------- */

/*
 * Applies owner, xattrs, mode and times, through fd when the node has one
 * open (files, directories), else by name in dirfd (symlinks, FIFOs,
 * devices), never following a symlink.
 */
static void apply_meta(struct rctx *c, const char *path, int fd, int dirfd, const char *name,
		       const struct kl_node *nd)
{
	struct timespec ts[2] = {
		{.tv_sec = (time_t)nd->atime_sec, .tv_nsec = nd->atime_nsec},
		{.tv_sec = (time_t)nd->mtime_sec, .tv_nsec = nd->mtime_nsec},
	};
	char proc[64 + NAME_MAX];
	int rc;

	if (c->do_owner) {
		rc = fd >= 0 ? fchown(fd, nd->uid, nd->gid)
			     : fchownat(dirfd, name, nd->uid, nd->gid, AT_SYMLINK_NOFOLLOW);
		if (rc < 0)
			fail(c, path, -errno, "cannot restore owner");
	}
	if (fd < 0 && nd->n_xattrs)
		/* no lsetxattrat(): name the node through the directory's descriptor */
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d/%s", dirfd, name);
	for (size_t i = 0; i < nd->n_xattrs; i++) {
		const struct kl_xattr *x = &nd->xattrs[i];

		rc = fd >= 0 ? fsetxattr(fd, x->name, x->value, x->value_len, 0)
			     : lsetxattr(proc, x->name, x->value, x->value_len, 0);
		if (rc >= 0)
			continue;
		rc = -errno;
		if (rc == -EOPNOTSUPP) {
			bool first;

			pthread_mutex_lock(&c->lock);
			first = !c->noted_xattr_unsupported;
			c->noted_xattr_unsupported = true;
			pthread_mutex_unlock(&c->lock);
			if (first)
				note(c, path, rc,
				     "the target does not support some extended "
				     "attributes (or ACLs); they are not restored");
			continue;
		}
		if (rc == -EPERM && strncmp(x->name, "user.", 5))
			note(c, path, rc, "extended attribute not restored (needs privilege)");
		else
			fail(c, path, rc, "cannot restore an extended attribute");
	}
	if (nd->type != KL_NODE_SYMLINK) {
		if (fd >= 0) {
			rc = fchmod(fd, nd->mode);
		} else {
			rc = fchmodat(dirfd, name, nd->mode, AT_SYMLINK_NOFOLLOW);
			/* glibc emulates the flag through /proc; without it, the node is ours
			 * anyway */
			if (rc < 0 && (errno == EOPNOTSUPP || errno == ENOSYS))
				rc = fchmodat(dirfd, name, nd->mode, 0);
		}
		if (rc < 0)
			fail(c, path, -errno, "cannot restore permissions");
	}
	rc = fd >= 0 ? futimens(fd, ts) : utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW);
	if (rc < 0)
		fail(c, path, -errno, "cannot restore timestamps");
}

/* ---- hard links ----------------------------------------------------------- */

static struct link_ent *link_slot(struct link_ent *v, size_t cap, uint64_t dev, uint64_t ino)
{
	size_t mask = cap - 1, i;

	for (i = kl_link_hash(dev, ino, mask);; i = (i + 1) & mask)
		if (!v[i].rel || (v[i].dev == dev && v[i].ino == ino))
			return &v[i];
}

static const char *link_find(struct rctx *c, const struct kl_node *nd)
{
	if (!c->cap_links)
		return NULL;
	return link_slot(c->links, c->cap_links, nd->dev, nd->inode)->rel;
}

/* Remembers where the first name of a multiply linked inode went. */
static int link_add(struct rctx *c, const struct kl_node *nd)
{
	struct link_ent *e;

	if ((c->n_links + 1) * 2 > c->cap_links) {
		size_t ncap = c->cap_links ? c->cap_links * 2 : 256;
		struct link_ent *v = kl_calloc(ncap, sizeof(*v));

		if (!v)
			return -ENOMEM;
		for (size_t i = 0; i < c->cap_links; i++)
			if (c->links[i].rel)
				*link_slot(v, ncap, c->links[i].dev, c->links[i].ino) = c->links[i];
		kl_free(c->links);
		c->links = v;
		c->cap_links = ncap;
	}
	e = link_slot(c->links, c->cap_links, nd->dev, nd->inode);
	if (e->rel)
		return 0;
	e->rel = kl_strdup((const char *)c->path.data + c->rel_off);
	if (!e->rel)
		return -ENOMEM;
	e->dev = nd->dev;
	e->ino = nd->inode;
	c->n_links++;
	return 0;
}

static void links_release(struct rctx *c)
{
	for (size_t i = 0; i < c->cap_links; i++)
		kl_free(c->links[i].rel);
	kl_free(c->links);
}

/*
 * Links dirfd/name to the earlier name rel (below the target). The walk
 * from the target goes one directory at a time with O_NOFOLLOW, so it
 * works for any depth and cannot leave the target.
 */
static int link_to(struct rctx *c, const char *rel, int dirfd, const char *name)
{
	_cleanup_close_ int cur = -1;
	const char *s = rel, *e;
	char comp[NAME_MAX + 1];
	int from = c->rootfd, next, rc;

	for (;;) {
		e = strchrnul(s, '/');
		if ((size_t)(e - s) > NAME_MAX)
			return -ENAMETOOLONG;
		memcpy(comp, s, (size_t)(e - s));
		comp[e - s] = 0;
		if (!*e)
			break;
		next = openat(from, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0)
			return -errno;
		if (cur >= 0)
			close(cur);
		from = cur = next;
		s = e + 1;
	}
	if (linkat(from, comp, dirfd, name, 0) == 0)
		return 0;
	if (errno != EEXIST)
		return -errno;
	rc = clear_way(dirfd, name);
	if (rc < 0)
		return rc;
	return linkat(from, comp, dirfd, name, 0) < 0 ? -errno : 0;
}

/*
 * A later name of an inode restored before: link it. Returns true when
 * done (or reported); false to restore the node as a node of its own.
 */
static bool restore_as_link(struct rctx *c, struct dirh *d, const struct kl_node *nd,
			    const char *name)
{
	const char *path = (const char *)c->path.data;
	const char *rel;
	int rc;

	if (nd->nlink < 2 || nd->type == KL_NODE_DIR)
		return false;
	rel = link_find(c, nd);
	if (!rel)
		return false;
	rc = link_to(c, rel, d->fd, name);
	if (rc < 0) {
		/* the first name is gone or unreachable: a copy keeps the data */
		fail(c, path, rc, "cannot create hard link; restoring it as a separate copy");
		return false;
	}
	pthread_mutex_lock(&c->lock);
	if (nd->type == KL_NODE_FILE)
		c->st.files++;
	else
		c->st.others++;
	pthread_mutex_unlock(&c->lock);
	return true;
}

/* ---- directories --------------------------------------------------------- */

/* Opens dirfd/name as a directory, creating it, or replacing a non-directory in the way. */
static int open_dir(int dirfd, const char *name, bool *created)
{
	int fd, rc;

	*created = mkdirat(dirfd, name, 0700) == 0;
	if (!*created && errno != EEXIST)
		return -errno;
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == EACCES) {
		/* ours but closed (a 0000 directory from an earlier restore): it gets its mode back
		 */
		if (fchmodat(dirfd, name, 0700, AT_SYMLINK_NOFOLLOW) < 0)
			return -EACCES;
		fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd >= 0 || (errno != ENOTDIR && errno != ELOOP))
		return fd >= 0 ? fd : -errno;
	rc = clear_way(dirfd, name);
	if (rc < 0)
		return rc;
	if (mkdirat(dirfd, name, 0700) < 0)
		return -errno;
	*created = true;
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return fd >= 0 ? fd : -errno;
}

/* Opens d, whose parent is open, creating it if needed. */
static int dir_open_one(struct rctx *c, struct dirh *d)
{
	struct dirh *p = d->parent;
	char name[NAME_MAX + 1];
	struct stat st;
	bool created;
	int fd, rc;

	rc = name_copy(name, d->name, d->name_len);
	if (rc < 0)
		return rc;
	fd = open_dir(p->fd, name, &created);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	/* a directory that was there already: make sure we can write into it */
	if (!created && st.st_uid == geteuid() && (st.st_mode & 0700) != 0700)
		fchmod(fd, (st.st_mode & 07777) | 0700);
	d->fd = fd;
	d->exists = true;
	d->dev = st.st_dev;
	d->ino = st.st_ino;
	c->st.dirs++;
	if (d->depth > FD_DEPTH) {
		/* reopened through ".." when d is done: see dir_finish */
		close(p->fd);
		p->fd = -1;
	}
	return 0;
}

/*
 * Makes sure d exists in the target and d->fd is open, creating the
 * directories above it first: with include patterns, a directory is only
 * created when something below it is restored. A loop from the highest
 * missing one down, not recursion, for trees of any depth.
 */
static int dir_ensure(struct rctx *c, struct dirh *d)
{
	while (d->fd < 0) {
		struct dirh *a = d;
		int rc;

		while (a->parent && a->parent->fd < 0 && !a->parent->exists)
			a = a->parent;
		if (KL_NEVER(!a->parent || a->exists || a->parent->fd < 0))
			return -EBADF; /* only open children close their parent's fd */
		rc = dir_open_one(c, a);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static void rdir_finish(struct rctx *c, struct rdir *dir)
{
	if (dir->fd >= 0 && !stopped(c))
		apply_meta(c, dir->path, dir->fd, -1, NULL, &dir->node);
	if (dir->fd >= 0)
		close(dir->fd);
	kl_node_release(&dir->node);
	kl_free(dir->path);
	kl_free(dir);
}

/* A file queued to be created in dir has been (or failed to be). */
static void rdir_created(struct rctx *c, struct rdir *dir)
{
	bool last;

	if (!dir)
		return;
	pthread_mutex_lock(&c->lock);
	last = --dir->pending == 0 && dir->left;
	pthread_mutex_unlock(&c->lock);
	if (last)
		rdir_finish(c, dir);
}

/*
 * The walk has left d but workers still have files to create in it: hand
 * d's descriptor and node to its rdir. Returns false when nothing is
 * pending (any more), and d is finished as usual.
 */
static bool dir_defer(struct rctx *c, struct dirh *d, struct kl_node *nd)
{
	struct rdir *dir = KL_TAKE_PTR(d->pend);
	bool deferred;

	if (!dir)
		return false;
	pthread_mutex_lock(&c->lock);
	deferred = dir->pending > 0;
	if (deferred) {
		dir->left = true;
		dir->fd = KL_TAKE_FD(d->fd);
		dir->node = *nd;
		memset(nd, 0, sizeof(*nd));
		dir->path = kl_strdup((const char *)c->path.data);
	}
	pthread_mutex_unlock(&c->lock);
	if (!deferred)
		kl_free(dir);
	return deferred;
}

/*
 * A directory's children are done: reopen its parent if needed, apply its
 * metadata (now, or after the last of its files is created) and close it.
 */
static void dir_finish(struct rctx *c, struct dirh *d, struct kl_node *nd)
{
	struct dirh *p = d->parent;
	const char *path = (const char *)c->path.data;

	if (!d->exists || d->fd < 0) {
		dir_defer(c, d, nd); /* without a descriptor: its files only */
		return;
	}
	if (p && p->exists && p->fd < 0) {
		struct stat st;
		int fd = openat(d->fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (fd < 0 || fstat(fd, &st) < 0 || st.st_dev != p->dev || st.st_ino != p->ino) {
			/* someone moved directories while we restored: stop rather than write
			 * elsewhere */
			if (fd >= 0)
				close(fd);
			fail(c, path, -ESTALE, "directory was moved during the restore");
		} else {
			p->fd = fd;
		}
	}
	if (dir_defer(c, d, nd))
		return;
	if (!stopped(c))
		apply_meta(c, path, d->fd, -1, NULL, nd);
	close(d->fd);
	d->fd = -1;
}

/* ---- the workers ------------------------------------------------------------ */

/*
 * Blobs found to hold only zeros, by id: disk and VM images repeat the
 * same zero chunk thousands of times (the chunker cuts zero runs into
 * chunks of one size), and a worker need not fetch, decrypt, decompress
 * and hash it again each time. The id was verified when it was first read.
 */
#define ZERO_IDS 8

struct zero_blob {
	struct kl_id id;
	size_t len;
};

struct worker {
	struct rctx *c;
	struct kl_buf blob;
	struct kl_buf check;
	pthread_t tid;
	struct zero_blob zeros[ZERO_IDS];
	size_t n_zeros, next_zero;
};

/* Fills w->blob with the zeros of a blob known to be all zero; 1 if it was known. */
static int zero_blob_fill(struct worker *w, const struct kl_id *id)
{
	for (size_t i = 0; i < w->n_zeros; i++) {
		if (!kl_id_eq(&w->zeros[i].id, id))
			continue;
		kl_buf_clear(&w->blob);
		if (kl_buf_grow(&w->blob, w->zeros[i].len) < 0)
			return -ENOMEM;
		memset(w->blob.data, 0, w->zeros[i].len);
		kl_buf_setlen(&w->blob, w->zeros[i].len);
		return 1;
	}
	return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	return n && !p[0] && !memcmp(p, p + 1, n - 1);
}

static void zero_blob_note(struct worker *w, const struct kl_id *id)
{
	/* small ones are not worth a slot */
	if (w->blob.len < 4096 || !all_zero(w->blob.data, w->blob.len))
		return;
	w->zeros[w->next_zero].id = *id;
	w->zeros[w->next_zero].len = w->blob.len;
	w->next_zero = (w->next_zero + 1) % ZERO_IDS;
	if (w->n_zeros < ZERO_IDS)
		w->n_zeros++;
}

/* Reads back what was just written and checks it against the blob id. */
static bool verify_blob(struct worker *w, struct rfile *f, const struct kl_id *id, uint64_t off,
			size_t n)
{
	struct kl_id got;

	kl_buf_clear(&w->check);
	if (kl_buf_grow(&w->check, n) < 0 || kl_fs_pread_full(f->fd, w->check.data, n, off) < 0)
		return false;
	kl_blob_id(kl_repo_keys(w->c->r), w->check.data, n, &got);
	return kl_id_eq(&got, id);
}

/*
 * Creates dirfd/name for writing: O_EXCL and O_NOFOLLOW, after removing
 * what is in the way. Returns the descriptor or a negative error.
 */
static int create_file(struct rctx *c, const char *path, int dirfd, const char *name,
		       const struct kl_node *nd)
{
	int fd, rc;

	fd = openat(dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 && errno == EEXIST) {
		rc = clear_way(dirfd, name);
		if (rc < 0) {
			fail(c, path, rc, "cannot replace what is in the way");
			return rc;
		}
		fd = openat(dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	}
	if (fd < 0) {
		rc = -errno;
		fail(c, path, rc, "cannot create file");
		return rc;
	}
	/* a sparse file is all hole at first: its zeros are never written, and verify reads them */
	if ((nd->flags & KL_NODE_SPARSE) && ftruncate(fd, (off_t)nd->size) < 0) {
		rc = -errno;
		fail(c, path, rc, "cannot set file length");
		close(fd);
		return rc;
	}
	return fd;
}

/*
 * A file the walk left to the workers to create (its only part): creating
 * 10^5 files is most of a restore's time on ext4, and the workers create
 * them in parallel, where the walk could only do it one at a time.
 */
static bool create_queued(struct rctx *c, struct rfile *f)
{
	int fd = -1;

	if (!stopped(c))
		fd = create_file(c, f->path, f->dirfd, f->name, &f->node);
	close(KL_TAKE_FD(f->dirfd));
	rdir_created(c, KL_TAKE_PTR(f->dir));
	if (fd < 0) {
		pthread_mutex_lock(&c->lock);
		f->err = fd; /* reported by create_file */
		pthread_mutex_unlock(&c->lock);
		return false;
	}
	f->fd = fd;
	return true;
}

static void run_part(struct worker *w, const struct part *pt)
{
	struct rctx *c = w->c;
	struct rfile *f = pt->f;
	const struct kl_node *nd = &f->node;
	bool sparse = nd->flags & KL_NODE_SPARSE;
	uint64_t off = pt->off;
	size_t i;
	int rc;

	if (f->fd < 0 && !create_queued(c, f))
		return;
	for (i = pt->first; i < pt->last && !stopped(c); i++) {
		const struct kl_id *id = &nd->content[i];
		struct kl_blob_loc loc;

		rc = zero_blob_fill(w, id);
		if (rc == 0) {
			rc = kl_repo_read_blob(c->r, id, &w->blob);
			if (rc >= 0)
				zero_blob_note(w, id);
		}
		if (rc < 0) {
			if (rc == -KL_ENOTFOUND)
				rc = -KL_ECORRUPT; /* the snapshot needs a blob the repository lacks
						    */
			file_fail(c, f, rc,
				  rc == -KL_ECORRUPT
					  ? "data is damaged or missing; the file is incomplete"
					  : "cannot read the file's data");
			if (!kl_repo_lookup(c->r, id, &loc))
				break; /* where the rest goes is unknown: keep what is written */
			off += loc.e.raw_length; /* leave a gap and go on */
			continue;
		}
		rc = write_at(f->fd, w->blob.data, w->blob.len, off, sparse);
		if (rc < 0) {
			file_fail(c, f, rc, "cannot write file");
			break;
		}
		if (c->o->verify && !verify_blob(w, f, id, off, w->blob.len)) {
			pthread_mutex_lock(&c->lock);
			f->verify_bad = true;
			pthread_mutex_unlock(&c->lock);
		}
		off += w->blob.len;
		pthread_mutex_lock(&c->lock);
		c->prog.bytes_done += w->blob.len;
		progress_locked(c, f->path, false);
		pthread_mutex_unlock(&c->lock);
	}
	if (i == pt->last && pt->first == 0 && pt->last == nd->n_content) {
		/* the only part: now the length is known */
		f->end = off;
		f->known_end = true;
	}
}

static void rfile_free(struct rfile *f)
{
	if (f->fd >= 0)
		close(f->fd);
	if (f->dirfd >= 0)
		close(f->dirfd);
	kl_node_release(&f->node);
	kl_free(f->path);
	kl_free(f);
}

/* All parts are written: check the length, verify, apply metadata, close. */
static void finish_file(struct rctx *c, struct rfile *f)
{
	const struct kl_node *nd = &f->node;
	int rc;

	if (stopped(c) || f->fd < 0) {
		rfile_free(f);
		return;
	}
	if (f->known_end) {
		if (f->end != nd->size && !(nd->flags & KL_NODE_PARTIAL))
			file_fail(c, f, -KL_ECORRUPT, "restored length differs from the snapshot");
		/* holes at the end, or damaged blobs skipped there, are not written */
		if (((nd->flags & KL_NODE_SPARSE) || f->err) && ftruncate(f->fd, (off_t)f->end) < 0)
			file_fail(c, f, -errno, "cannot set file length");
	}
	if (nd->flags & KL_NODE_PARTIAL)
		note(c, f->path, -KL_EPARTIAL,
		     "the file could not be read completely when it was backed up");
	pthread_mutex_lock(&c->lock);
	if (f->verify_bad) {
		c->st.verify_failures++;
		record_locked(c, -KL_EVERIFY);
		warn_locked(c, f->path, -KL_EVERIFY, "restored content differs from the snapshot");
	}
	pthread_mutex_unlock(&c->lock);
	apply_meta(c, f->path, f->fd, -1, NULL, nd);
	rc = close(KL_TAKE_FD(f->fd));
	if (rc < 0)
		file_fail(c, f, -errno, "cannot write file");
	pthread_mutex_lock(&c->lock);
	c->st.files++;
	c->st.bytes += nd->size;
	c->prog.files_done++;
	progress_locked(c, f->path, false);
	pthread_mutex_unlock(&c->lock);
	kl_test_point("restore-file-done"); /* a restore with files yet to write: t4003 */
	rfile_free(f);
}

static void part_done(struct rctx *c, struct rfile *f)
{
	bool last;

	pthread_mutex_lock(&c->lock);
	last = --f->parts == 0;
	pthread_mutex_unlock(&c->lock);
	if (last)
		finish_file(c, f);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct rctx *c = w->c;

	for (;;) {
		struct part pt;

		pthread_mutex_lock(&c->lock);
		while (!c->q_len && !c->walk_done)
			pthread_cond_wait(&c->nonempty, &c->lock);
		if (!c->q_len) {
			pthread_mutex_unlock(&c->lock);
			break;
		}
		pt = c->q[c->q_head];
		c->q_head = (c->q_head + 1) % QUEUE_CAP;
		c->q_len--;
		pthread_cond_signal(&c->nonfull);
		pthread_mutex_unlock(&c->lock);
		run_part(w, &pt);
		part_done(c, pt.f);
	}
	return NULL;
}

static void enqueue(struct rctx *c, struct worker *inline_w, const struct part *pt)
{
	if (!c->nthreads) {
		/* no worker threads: do it here */
		run_part(inline_w, pt);
		part_done(c, pt->f);
		return;
	}
	pthread_mutex_lock(&c->lock);
	while (c->q_len == QUEUE_CAP)
		pthread_cond_wait(&c->nonfull, &c->lock);
	c->q[(c->q_head + c->q_len) % QUEUE_CAP] = *pt;
	c->q_len++;
	pthread_cond_signal(&c->nonempty);
	pthread_mutex_unlock(&c->lock);
}

/* Whether several workers write the file, each a part of it. */
static bool is_split(const struct rctx *c, const struct kl_node *nd)
{
	return c->nthreads > 1 && nd->size >= SPLIT_MIN && nd->n_content > 1;
}

/* The blob after the part that starts with blob first. */
static size_t part_end(const uint64_t *offs, size_t n, size_t first)
{
	size_t i = first + 1;

	while (i < n && offs[i] - offs[first] < PART_BYTES)
		i++;
	return i;
}

/*
 * Cuts a large file into parts of about PART_BYTES by blob ranges, so all
 * workers can write it; blob offsets are the running sum of their lengths
 * from the index. Falls back to one part when a blob is not indexed (the
 * worker then reports it).
 */
static void queue_file(struct rctx *c, struct worker *inline_w, struct rfile *f)
{
	const struct kl_node *nd = &f->node;
	_cleanup_free_ uint64_t *offs = NULL;
	struct part pt = {.f = f, .first = 0, .last = nd->n_content, .off = 0};
	size_t i, nparts = 0;

	if (is_split(c, nd))
		offs = kl_malloc((nd->n_content + 1) * sizeof(*offs));
	if (offs) {
		offs[0] = 0;
		for (i = 0; i < nd->n_content; i++) {
			struct kl_blob_loc loc;

			if (!kl_repo_lookup(c->r, &nd->content[i], &loc))
				break;
			offs[i + 1] = offs[i] + loc.e.raw_length;
		}
		if (i < nd->n_content) {
			kl_free(offs);
			offs = NULL;
		}
	}
	if (!offs) {
		f->parts = 1;
		enqueue(c, inline_w, &pt);
		return;
	}
	/* count first: a part may finish before the next one is queued */
	for (i = 0; i < nd->n_content; i = part_end(offs, nd->n_content, i))
		nparts++;
	f->parts = (unsigned)nparts;
	f->end = offs[nd->n_content];
	f->known_end = true;
	for (i = 0; i < nd->n_content; i = pt.last) {
		pt.first = i;
		pt.off = offs[i];
		pt.last = part_end(offs, nd->n_content, i);
		enqueue(c, inline_w, &pt);
	}
}

/* ---- the walk ------------------------------------------------------------------- */

/*
 * Whether a worker may create the file rather than the walk: not when it
 * has other names (the walk links them to it right away), nor when several
 * workers write it (every part needs the descriptor).
 */
static bool worker_creates(const struct rctx *c, const struct kl_node *nd)
{
	return c->nthreads > 0 && nd->nlink < 2 && !is_split(c, nd);
}

/* Leaves the creation of f, named name in d, to the worker that writes it. */
static int defer_creation(struct rctx *c, struct dirh *d, struct rfile *f, const char *name)
{
	f->dirfd = fcntl(d->fd, F_DUPFD_CLOEXEC, 0);
	if (f->dirfd < 0)
		return -errno;
	/* the target's root gets no metadata, so nothing waits for its files */
	if (d->depth && !d->pend) {
		d->pend = kl_calloc(1, sizeof(*d->pend));
		if (!d->pend) {
			close(KL_TAKE_FD(f->dirfd));
			return -ENOMEM;
		}
		d->pend->fd = -1;
	}
	/* name_copy bounded it by NAME_MAX, the size of f->name less one */
	memcpy(f->name, name, strlen(name) + 1);
	f->dir = d->pend;
	if (f->dir) {
		pthread_mutex_lock(&c->lock);
		f->dir->pending++;
		pthread_mutex_unlock(&c->lock);
	}
	return 0;
}

/* Hands a regular file to the workers, creating it first if they cannot. */
static void restore_file(struct rctx *c, struct worker *inline_w, struct dirh *d,
			 struct kl_node *nd, const char *name)
{
	const char *path = (const char *)c->path.data;
	struct rfile *f;
	int rc;

	f = kl_calloc(1, sizeof(*f));
	if (f) {
		f->fd = -1;
		f->dirfd = -1;
		f->path = kl_strdup(path);
	}
	if (!f || !f->path) {
		kl_free(f);
		fail(c, path, -ENOMEM, "cannot restore file");
		return;
	}
	if (!worker_creates(c, nd) || defer_creation(c, d, f, name) < 0) {
		f->fd = create_file(c, path, d->fd, name, nd);
		if (f->fd < 0) {
			rfile_free(f);
			return;
		}
		if (nd->nlink > 1 && (rc = link_add(c, nd)) < 0)
			fail(c, path, rc, "cannot remember hard link");
	}
	f->node = *nd; /* take the node out of its tree: the workers own it now */
	memset(nd, 0, sizeof(*nd));
	c->files_seen++;
	c->bytes_seen += f->node.size;
	if (!f->node.n_content && f->fd >= 0) {
		f->known_end = true;
		finish_file(c, f);
		return;
	}
	queue_file(c, inline_w, f);
}

static int create_special(struct rctx *c, struct dirh *d, const struct kl_node *nd,
			  const char *name)
{
	_cleanup_free_ char *target = NULL;
	mode_t kind;

	for (int attempt = 0;; attempt++) {
		int rc;

		switch (nd->type) {
		case KL_NODE_SYMLINK:
			if (!target) {
				if (!nd->link_len || memchr(nd->link, 0, nd->link_len))
					return -KL_ECORRUPT;
				target = kl_strndup((const char *)nd->link, nd->link_len);
				if (!target)
					return -ENOMEM;
			}
			rc = symlinkat(target, d->fd, name);
			break;
		case KL_NODE_FIFO:
			rc = mkfifoat(d->fd, name, 0600);
			break;
		default:
			kind = nd->type == KL_NODE_CHR ? S_IFCHR : S_IFBLK;
			rc = mknodat(d->fd, name, kind | 0600, (dev_t)nd->rdev);
			break;
		}
		if (rc == 0)
			return 0;
		if (errno != EEXIST || attempt)
			return -errno;
		rc = clear_way(d->fd, name);
		if (rc < 0)
			return rc;
	}
}

/* Symlinks, FIFOs and devices: created and finished here, by name. */
static void restore_special(struct rctx *c, struct dirh *d, const struct kl_node *nd,
			    const char *name)
{
	const char *path = (const char *)c->path.data;
	int rc;

	rc = create_special(c, d, nd, name);
	if (rc == -EPERM && (nd->type == KL_NODE_CHR || nd->type == KL_NODE_BLK)) {
		note(c, path, rc, "device not restored: creating devices needs privilege");
		return;
	}
	if (rc < 0) {
		fail(c, path, rc,
		     nd->type == KL_NODE_SYMLINK ? "cannot create symlink"
						 : "cannot create special file");
		return;
	}
	if (nd->nlink > 1 && (rc = link_add(c, nd)) < 0)
		fail(c, path, rc, "cannot remember hard link");
	apply_meta(c, path, -1, d->fd, name, nd);
	c->st.others++;
}

/*
 * A directory being restored: the walk keeps these on a stack of its own,
 * not the thread's, so a tree of any depth can be restored.
 */
struct rframe {
	struct rframe *up;
	struct dirh d;
	struct kl_node *nd; /* its node, in the tree of the frame above (or the top) */
	struct kl_tree t;   /* its children */
	size_t next;	    /* the next child to restore */
	size_t base;	    /* c->path.len of its own path */
	bool all;
};

/*
 * Starts the directory node nd below d (c->path is its path): creates it
 * unless all is false (then it is only on the way to included nodes and
 * is created when the first of them is), and reads its children.
 */
static struct rframe *dir_begin(struct rctx *c, struct rframe *up, struct dirh *parent,
				struct kl_node *nd, bool all)
{
	struct rframe *f = kl_calloc(1, sizeof(*f));
	int rc;

	if (!f) {
		fail(c, (const char *)c->path.data, -ENOMEM, "cannot restore directory");
		return NULL;
	}
	f->up = up;
	f->d.parent = parent;
	f->d.name = nd->name;
	f->d.name_len = nd->name_len;
	f->d.fd = -1;
	f->d.depth = parent->depth + 1;
	f->nd = nd;
	f->base = c->path.len;
	f->all = all;
	if (all) {
		rc = dir_ensure(c, &f->d);
		if (rc < 0) {
			fail(c, (const char *)c->path.data, rc, "cannot create directory");
			kl_free(f);
			return NULL;
		}
	}
	rc = nd->has_subtree ? kl_repo_read_tree(c->r, &nd->subtree, &f->t) : -KL_ECORRUPT;
	if (rc < 0) {
		if (rc == -KL_ENOTFOUND)
			rc = -KL_ECORRUPT;
		fail(c, (const char *)c->path.data, rc,
		     "directory listing is damaged; what is below is not restored");
	}
	return f;
}

/* All of f's children are done: its metadata, then back to its parent. */
static struct rframe *dir_end(struct rctx *c, struct rframe *f)
{
	struct rframe *up = f->up;

	kl_buf_setlen(&c->path, f->base);
	dir_finish(c, &f->d, f->nd);
	kl_tree_release(&f->t);
	kl_free(f);
	return up;
}

/*
 * Restores nd below d (c->path holds its snapshot path). Returns the
 * frame of a directory whose children are to be restored next, or NULL.
 */
static struct rframe *restore_node(struct rctx *c, struct worker *inline_w, struct rframe *up,
				   struct dirh *d, struct kl_node *nd, bool all)
{
	const char *path = (const char *)c->path.data;
	char name[NAME_MAX + 1];
	int rc;

	if (c->o->excludes.n && kl_patterns_match(&c->o->excludes, path))
		return NULL; /* an excluded directory is skipped whole */
	if (!all && kl_patterns_match(&c->o->includes, path))
		all = true; /* a directory that matches covers what is below it */
	if (nd->type == KL_NODE_DIR) {
		if (all || kl_patterns_may_match_below(&c->o->includes, path))
			return dir_begin(c, up, d, nd, all);
		return NULL;
	}
	if (!all || nd->type == KL_NODE_SOCK)
		return NULL;
	rc = name_copy(name, nd->name, nd->name_len);
	if (rc >= 0)
		rc = dir_ensure(c, d);
	if (rc < 0) {
		fail(c, path, rc, "cannot restore");
		return NULL;
	}
	if (restore_as_link(c, d, nd, name))
		return NULL;
	if (nd->type == KL_NODE_FILE)
		restore_file(c, inline_w, d, nd, name);
	else
		restore_special(c, d, nd, name);
	return NULL;
}

/* Restores nd below d and, for a directory, everything below it, depth first. */
static void restore_tree(struct rctx *c, struct worker *inline_w, struct dirh *d,
			 struct kl_node *nd, bool all)
{
	struct rframe *f = restore_node(c, inline_w, NULL, d, nd, all);

	while (f) {
		struct kl_node *k;
		struct rframe *kf;
		int rc;

		if (f->next >= f->t.n || stopped(c)) {
			f = dir_end(c, f);
			continue;
		}
		k = &f->t.nodes[f->next++];
		kl_buf_setlen(&c->path, f->base);
		rc = kl_buf_addch(&c->path, '/');
		if (rc >= 0)
			rc = kl_buf_add(&c->path, k->name, k->name_len);
		if (rc < 0) {
			fail(c, (const char *)c->path.data, rc, "cannot restore");
			f->next = f->t.n;
			continue;
		}
		kf = restore_node(c, inline_w, f, &f->d, k, f->all);
		if (kf)
			f = kf;
	}
}

/* ---- entry points ------------------------------------------------------------- */

/* "a//b/" -> "/a/b", "" and "/" -> "" (the root). */
static int normalise_path(const char *in, struct kl_buf *out)
{
	const char *s = in ? in : "";
	int rc = 0;

	while (*s && rc >= 0) {
		const char *e;

		while (*s == '/')
			s++;
		e = strchrnul(s, '/');
		if (e > s && !(e - s == 1 && s[0] == '.')) {
			rc = kl_buf_addch(out, '/');
			if (rc >= 0)
				rc = kl_buf_add(out, s, (size_t)(e - s));
		}
		s = e;
	}
	return rc;
}

static unsigned thread_count(const struct kl_restore_opts *o)
{
	long n = o->threads ? (long)o->threads : sysconf(_SC_NPROCESSORS_ONLN);

	return (unsigned)KL_MAX(1, KL_MIN(n, MAX_THREADS));
}

int kl_restore(struct kl_repo *r, const struct kl_id *tree, const char *path,
	       const struct kl_restore_opts *o, struct kl_restore_stats *ret)
{
	struct rctx c = {
		.r = r,
		.o = o,
		.rootfd = -1,
		.path = KL_BUF_INIT(PATH_BUF_MAX),
		.lock = PTHREAD_MUTEX_INITIALIZER,
		.nonempty = PTHREAD_COND_INITIALIZER,
		.nonfull = PTHREAD_COND_INITIALIZER,
	};
	struct worker ws[MAX_THREADS];
	struct worker inline_w = {.c = &c};
	struct kl_node top;
	struct dirh root = {.exists = true};
	unsigned want;
	int rc;

	if (ret)
		memset(ret, 0, sizeof(*ret));
	if (!o->target || !*o->target)
		return kl_repo_fail(r, -KL_EUSAGE, "no restore target given");
	rc = normalise_path(path, &c.path);
	if (rc < 0)
		return rc;
	rc = kl_tree_lookup(r, tree, (const char *)c.path.data, &top);
	if (rc < 0) {
		kl_buf_release(&c.path);
		return rc;
	}
	rc = kl_fs_mkdir_p(AT_FDCWD, o->target, 0700);
	if (rc >= 0) {
		c.rootfd = open(o->target, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (c.rootfd < 0)
			rc = -errno;
	}
	if (rc < 0) {
		kl_node_release(&top);
		kl_buf_release(&c.path);
		return kl_repo_fail(r, rc, "cannot open restore target '%s'", o->target);
	}
	root.fd = c.rootfd;
	c.do_owner = !o->no_owner && geteuid() == 0;
	c.all = !o->includes.n;
	/* names below the target start after the last '/' of the restored path */
	c.rel_off = c.path.len
			    ? (size_t)(strrchr((char *)c.path.data, '/') - (char *)c.path.data) + 1
			    : 1;
	kl_buf_init(&inline_w.blob, BLOB_BUF_MAX);
	kl_buf_init(&inline_w.check, BLOB_BUF_MAX);

	want = thread_count(o);
	for (c.nthreads = 0; c.nthreads < want; c.nthreads++) {
		struct worker *w = &ws[c.nthreads];

		memset(w, 0, sizeof(*w));
		w->c = &c;
		kl_buf_init(&w->blob, BLOB_BUF_MAX);
		kl_buf_init(&w->check, BLOB_BUF_MAX);
		if (pthread_create(&w->tid, NULL, worker_main, w))
			break; /* fewer workers, or none: then the walk writes files itself */
	}

	if (!c.path.len) {
		/* the whole snapshot: the root's children go into the target */
		struct kl_tree t = {0};

		rc = kl_repo_read_tree(r, &top.subtree, &t);
		if (rc < 0)
			fail(&c, "/", rc == -KL_ENOTFOUND ? -KL_ECORRUPT : rc,
			     "the snapshot's root directory is damaged");
		for (size_t i = 0; i < t.n && !stopped(&c); i++) {
			kl_buf_setlen(&c.path, 0);
			rc = kl_buf_addch(&c.path, '/');
			if (rc >= 0)
				rc = kl_buf_add(&c.path, t.nodes[i].name, t.nodes[i].name_len);
			if (rc < 0) {
				fail(&c, "/", rc, "cannot restore");
				break;
			}
			restore_tree(&c, &inline_w, &root, &t.nodes[i], c.all);
		}
		kl_tree_release(&t);
	} else {
		/* a subtree: its node becomes target/<name> */
		restore_tree(&c, &inline_w, &root, &top, c.all);
	}

	pthread_mutex_lock(&c.lock);
	c.walk_done = true;
	c.prog.files_total = c.files_seen;
	c.prog.bytes_total = c.bytes_seen;
	pthread_cond_broadcast(&c.nonempty);
	pthread_mutex_unlock(&c.lock);
	for (unsigned i = 0; i < c.nthreads; i++) {
		pthread_join(ws[i].tid, NULL);
		kl_buf_release(&ws[i].blob);
		kl_buf_release(&ws[i].check);
	}
	if (c.nthreads < want) {
		kl_buf_release(&ws[c.nthreads].blob);
		kl_buf_release(&ws[c.nthreads].check);
	}
	pthread_mutex_lock(&c.lock);
	progress_locked(&c, NULL, true);
	pthread_mutex_unlock(&c.lock);

	kl_buf_release(&inline_w.blob);
	kl_buf_release(&inline_w.check);
	kl_node_release(&top);
	kl_buf_release(&c.path);
	links_release(&c);
	close(c.rootfd);
	pthread_mutex_destroy(&c.lock);
	pthread_cond_destroy(&c.nonempty);
	pthread_cond_destroy(&c.nonfull);
	if (ret)
		*ret = c.st;
	return c.worst;
}

int kl_dump_node(struct kl_repo *r, const struct kl_node *n, int fd)
{
	_cleanup_buf_ struct kl_buf blob = KL_BUF_INIT(BLOB_BUF_MAX);
	uint64_t total = 0;
	int rc;

	if (n->type == KL_NODE_DIR)
		return -EISDIR;
	if (n->type != KL_NODE_FILE)
		return -EINVAL;
	for (size_t i = 0; i < n->n_content; i++) {
		rc = kl_repo_read_blob(r, &n->content[i], &blob);
		if (rc == -KL_ENOTFOUND)
			rc = -KL_ECORRUPT;
		if (rc >= 0)
			rc = kl_fs_write_full(fd, blob.data, blob.len);
		if (rc < 0)
			return rc;
		total += blob.len;
	}
	if (total != n->size && !(n->flags & KL_NODE_PARTIAL))
		return kl_repo_fail(r, -KL_ECORRUPT,
				    "content is %llu bytes, the snapshot says %llu",
				    (unsigned long long)total, (unsigned long long)n->size);
	return 0;
}
