/*
 * restore --delete: what the snapshot does not have is removed from the
 * directories the restore fills, so that the target ends up as the
 * snapshot (restic's --delete).
 *
 * Only below the target: every directory is one the walk opened from the
 * target with O_NOFOLLOW, every removal is unlinkat() of a single name in
 * it, and a directory being removed is opened with O_NOFOLLOW |
 * O_DIRECTORY and emptied the same way, so a symlink is removed as a
 * symlink and never followed. Only directories restored whole are
 * cleaned (with include patterns, those they match and what is below),
 * and a path an exclude pattern matches is kept: the user said not to
 * touch it.
 */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "restore-internal.h"

struct dpath {
	struct kl_buf snap; /* snapshot-style path, for the patterns */
	struct kl_buf rel;  /* below the target, for reports */
};

/* Removes (or with dry_run, reports) dirfd/name and what is below it. */
static void remove_entry(struct rctx *c, int at, const char *name, struct dpath *p)
{
	size_t snap_len = p->snap.len, rel_len = p->rel.len;
	struct stat st;
	bool dir;
	int rc = 0;

	if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno != ENOENT)
			kl_rs_fail(c, (const char *)p->snap.data, -errno, "cannot delete");
		return;
	}
	dir = S_ISDIR(st.st_mode);
	if (dir) {
		int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		DIR *dp = fd >= 0 ? fdopendir(fd) : NULL;
		struct dirent *e;

		if (!dp) {
			rc = -errno;
			if (fd >= 0)
				close(fd);
			kl_rs_fail(c, (const char *)p->snap.data, rc, "cannot delete directory");
			return;
		}
		while (!kl_rs_stopped(c) && (e = readdir(dp))) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			rc = kl_buf_addf(&p->snap, "/%s", e->d_name);
			if (rc >= 0)
				rc = kl_buf_addf(&p->rel, "/%s", e->d_name);
			if (rc < 0) {
				kl_rs_fail(c, (const char *)p->snap.data, rc, "cannot delete");
				break;
			}
			remove_entry(c, dirfd(dp), e->d_name, p);
			kl_buf_setlen(&p->snap, snap_len);
			kl_buf_setlen(&p->rel, rel_len);
		}
		closedir(dp);
	}
	if (!c->o->dry_run && unlinkat(at, name, dir ? AT_REMOVEDIR : 0) < 0) {
		kl_rs_fail(c, (const char *)p->snap.data, -errno, "cannot delete");
		return;
	}
	pthread_mutex_lock(&c->lock);
	c->st.deleted++;
	if (c->o->action)
		c->o->action(c->o->action_ud, KL_RESTORE_DELETE, (const char *)p->rel.data, dir);
	pthread_mutex_unlock(&c->lock);
}

void kl_rs_delete_extra(struct rctx *c, int dirfd, const struct kl_tree *t)
{
	struct dpath p = {KL_BUF_INIT((size_t)1 << 30), KL_BUF_INIT((size_t)1 << 30)};
	const char *dir = (const char *)c->path.data;
	const char *rel = kl_rs_rel(c, dir);
	struct dirent *e;
	DIR *dp;
	int fd, rc;

	if (dirfd < 0 || kl_rs_stopped(c))
		return;
	fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	dp = fd >= 0 ? fdopendir(fd) : NULL;
	if (!dp) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		kl_rs_fail(c, dir, rc,
			   "cannot list the directory to delete what is not in the snapshot");
		return;
	}
	while (!kl_rs_stopped(c) && (e = readdir(dp))) {
		size_t len = strlen(e->d_name);

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (kl_tree_find(t, (const uint8_t *)e->d_name, len))
			continue; /* in the snapshot */
		kl_buf_clear(&p.snap);
		kl_buf_clear(&p.rel);
		rc = kl_buf_addf(&p.snap, "%s/%s", dir, e->d_name);
		if (rc >= 0)
			rc = *rel ? kl_buf_addf(&p.rel, "%s/%s", rel, e->d_name)
				  : kl_buf_addf(&p.rel, "%s", e->d_name);
		if (rc < 0) {
			kl_rs_fail(c, dir, rc, "cannot delete");
			break;
		}
		if (c->o->excludes.n &&
		    kl_patterns_match(&c->o->excludes, (const char *)p.snap.data))
			continue;
		/* our own readdir goes on: remove_entry works on another descriptor */
		remove_entry(c, dirfd, e->d_name, &p);
	}
	closedir(dp);
	kl_buf_release(&p.snap);
	kl_buf_release(&p.rel);
}
