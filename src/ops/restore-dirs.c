/*
 * Restore's directories: opening or creating them on the walk's path,
 * and their metadata once all their children exist, now or after the
 * last of their files is created by a worker.
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "restore-internal.h"

#define FD_DEPTH 128 /* deeper than this, parent dirs are closed and reopened */

/*
 * Opens dirfd/name as a directory, creating it, or replacing a
 * non-directory in the way (*replaced), which --overwrite never and
 * if-newer keep (KL_RS_KEPT).
 */
static int open_dir(struct rctx *c, int dirfd, const char *name, bool *created, bool *replaced)
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
	if (c->o->overwrite == KL_OVERWRITE_NEVER || c->o->overwrite == KL_OVERWRITE_IF_NEWER)
		return KL_RS_KEPT;
	rc = kl_rs_clear_way(dirfd, name);
	if (rc < 0)
		return rc;
	if (mkdirat(dirfd, name, 0700) < 0)
		return -errno;
	*created = true;
	*replaced = true;
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return fd >= 0 ? fd : -errno;
}

/* Opens d, whose parent is open, creating it if needed. */
static int dir_open_one(struct rctx *c, struct dirh *d)
{
	struct dirh *p = d->parent;
	char name[NAME_MAX + 1];
	_cleanup_free_ char *path = NULL;
	struct stat st;
	bool created, replaced = false;
	int fd, rc;

	rc = kl_rs_name_copy(name, d->name, d->name_len);
	if (rc < 0)
		return rc;
	fd = open_dir(c, p->fd, name, &created, &replaced);
	if (fd == KL_RS_KEPT || replaced) {
		path = kl_strndup((const char *)c->path.data, KL_MIN(d->path_len, c->path.len));
		if (!path) {
			if (fd >= 0)
				close(fd);
			return -ENOMEM;
		}
	}
	if (fd == KL_RS_KEPT) {
		pthread_mutex_lock(&c->lock);
		c->st.skipped++;
		kl_rs_warn_locked(
			c, path, 0,
			"not a directory, kept (--overwrite): nothing below it is restored");
		pthread_mutex_unlock(&c->lock);
		return fd;
	}
	if (fd < 0)
		return fd;
	if (replaced) {
		pthread_mutex_lock(&c->lock);
		c->st.replaced++;
		if (c->o->action)
			c->o->action(c->o->action_ud, KL_RESTORE_REPLACE, kl_rs_rel(c, path), true);
		pthread_mutex_unlock(&c->lock);
	}
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
		/* reopened through ".." when d is done: see kl_rs_dir_finish */
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
int kl_rs_dir_ensure(struct rctx *c, struct dirh *d)
{
	for (struct dirh *k = d; d->fd < 0 && k; k = k->parent)
		if (k->kept)
			return KL_RS_KEPT;
	while (d->fd < 0) {
		struct dirh *a = d;
		int rc;

		while (a->parent && a->parent->fd < 0 && !a->parent->exists)
			a = a->parent;
		if (KL_NEVER(!a->parent || a->exists || a->parent->fd < 0))
			return -EBADF; /* only open children close their parent's fd */
		rc = dir_open_one(c, a);
		if (rc == KL_RS_KEPT)
			a->kept = true;
		if (rc < 0)
			return rc;
	}
	return 0;
}

static void rdir_finish(struct rctx *c, struct rdir *dir)
{
	if (dir->fd >= 0 && !kl_rs_stopped(c))
		kl_rs_apply_meta(c, dir->path, dir->fd, -1, NULL, &dir->node);
	if (dir->fd >= 0)
		close(dir->fd);
	kl_node_release(&dir->node);
	kl_free(dir->path);
	kl_free(dir);
}

/* A file queued to be created in dir has been (or failed to be). */
void kl_rs_rdir_created(struct rctx *c, struct rdir *dir)
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
void kl_rs_dir_finish(struct rctx *c, struct dirh *d, struct kl_node *nd)
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
			kl_rs_fail(c, path, -ESTALE, "directory was moved during the restore");
		} else {
			p->fd = fd;
		}
	}
	if (dir_defer(c, d, nd))
		return;
	if (!kl_rs_stopped(c))
		kl_rs_apply_meta(c, path, d->fd, -1, NULL, nd);
	close(d->fd);
	d->fd = -1;
}
