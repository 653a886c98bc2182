/*
 * Restore's damaged files. A file whose content could not be restored
 * completely (a blob damaged or missing in the repository, a write that
 * failed) must not stand under its own name with its own metadata: with
 * its full length, its mtime and a run of zeros inside, rsync, make and
 * backup tools would take it for the real thing. So the worker that
 * finishes it applies no metadata (it keeps the mode 0600, the restoring
 * user as owner and the time of the restore as mtime; a damaged program
 * must not keep setuid bits or capabilities either), and once all workers
 * are done it is renamed to NAME.keel-damaged, where what could be read
 * is kept for salvage. Every other name of a damaged multiply linked file
 * goes the same way.
 *
 * The rename happens after the directories got their metadata, so the
 * directory's times are put back, and a directory without write
 * permission that we own is opened for the rename and closed again.
 * A NAME.keel-damaged in the way that is older than this restore (left by
 * an earlier one) is replaced; one this restore made (the snapshot has a
 * file of that name) is kept, and the damaged file is removed instead.
 * Where NAME is too long for the suffix (NAME_MAX is 255 bytes), NAME is
 * cut at a character boundary so that NAME.keel-damaged fits.
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#include "restore-internal.h"

#define SUFFIX ".keel-damaged"

/* Adds a name to a list of rs_name; path is copied, rel points into it at rel_off. */
int kl_rs_name_add(struct rs_name **v, size_t *n, size_t *cap, const char *path, size_t rel_off,
		   const struct kl_node *nd)
{
	struct rs_name *e;

	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		struct rs_name *nv = kl_realloc(*v, ncap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = ncap;
	}
	e = &(*v)[*n];
	e->path = kl_strdup(path);
	if (!e->path)
		return -ENOMEM;
	e->rel = e->path + KL_MIN(rel_off, strlen(path));
	e->dev = nd->dev;
	e->ino = nd->inode;
	e->linked = nd->nlink > 1;
	(*n)++;
	return 0;
}

void kl_rs_names_release(struct rs_name *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		kl_free(v[i].path);
	kl_free(v);
}

/* NAME.keel-damaged; NAME cut at a UTF-8 character boundary where both would not fit. */
static void damaged_name(const char *name, char out[NAME_MAX + 1])
{
	size_t n = strlen(name), max = NAME_MAX - (sizeof(SUFFIX) - 1);

	if (n > max) {
		n = max;
		while (n && ((unsigned char)name[n] & 0xc0) == 0x80)
			n--;
	}
	memcpy(out, name, n);
	memcpy(out + n, SUFFIX, sizeof(SUFFIX));
}

static int rename_noreplace(int dirfd, const char *from, const char *to)
{
	struct stat st;

	if (renameat2(dirfd, from, dirfd, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL)
		return -errno;
	/* a file system without the flag (NFS): check, then rename */
	if (fstatat(dirfd, to, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return -EEXIST;
	return renameat(dirfd, from, dirfd, to) < 0 ? -errno : 0;
}

/* Renames dirfd/name to to; what is in the way is replaced if an earlier restore left it. */
static int move_aside(struct rctx *c, int dirfd, const char *name, const char *to)
{
	struct stat st;
	int rc;

	rc = rename_noreplace(dirfd, name, to);
	if (rc != -EEXIST)
		return rc;
	if (fstatat(dirfd, to, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if ((int64_t)st.st_ctim.tv_sec * KL_NSEC_PER_SEC + st.st_ctim.tv_nsec >= c->start_ns)
		return -EEXIST; /* restored by this restore: the snapshot has a file of that name */
	rc = kl_rs_clear_way(dirfd, to);
	return rc < 0 ? rc : rename_noreplace(dirfd, name, to);
}

/* Renames, or removes when the name is taken (-EEXIST then too): never under its own name. */
static int move_or_remove(struct rctx *c, int dirfd, const char *name, const char *to)
{
	int rc = move_aside(c, dirfd, name, to);

	if (rc == -EEXIST && unlinkat(dirfd, name, 0) < 0)
		rc = -errno;
	return rc;
}

/*
 * Renames rel (below the target) to its damaged name, keeping its
 * directory's times. The walk goes one directory at a time with
 * O_NOFOLLOW, so it cannot leave the target.
 */
static int rename_one(struct rctx *c, const char *rel, char to[NAME_MAX + 1])
{
	_cleanup_close_ int gp = -1, p = -1;
	char comp[NAME_MAX + 1], pname[NAME_MAX + 1] = "";
	const char *s = rel, *e;
	struct stat st;
	int dirfd, gpfd, rc;

	for (;;) {
		int next;

		e = strchrnul(s, '/');
		if ((size_t)(e - s) > NAME_MAX)
			return -ENAMETOOLONG;
		memcpy(comp, s, (size_t)(e - s));
		comp[e - s] = 0;
		if (!*e)
			break;
		next = openat(p >= 0 ? p : c->rootfd, comp,
			      O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0)
			return -errno;
		if (gp >= 0)
			close(gp);
		gp = KL_TAKE_FD(p);
		p = next;
		memcpy(pname, comp, (size_t)(e - s) + 1);
		s = e + 1;
	}
	damaged_name(comp, to);
	dirfd = p >= 0 ? p : c->rootfd;
	gpfd = gp >= 0 ? gp : c->rootfd;
	if (fstat(dirfd, &st) < 0)
		return -errno;
	rc = move_or_remove(c, dirfd, comp, to);
	if (rc == -EACCES && p >= 0 && st.st_uid == geteuid() &&
	    fchmodat(gpfd, pname, (st.st_mode & 07777) | 0300, 0) == 0) {
		/* a read-only directory of ours: opened for the rename only */
		rc = move_or_remove(c, dirfd, comp, to);
		if (fchmodat(gpfd, pname, st.st_mode & 07777, 0) < 0 && rc >= 0)
			rc = -errno; /* left writable: say so rather than hide it */
	}
	if (p >= 0) {
		struct timespec ts[2] = {st.st_atim, st.st_mtim};

		utimensat(gpfd, pname, ts, AT_SYMLINK_NOFOLLOW);
	}
	return rc;
}

static void rename_report(struct rctx *c, const struct rs_name *e)
{
	char to[NAME_MAX + 1], what[NAME_MAX + 128];
	int rc = rename_one(c, e->rel, to);

	if (rc == 0) {
		snprintf(what, sizeof(what),
			 "restored as '%s' (what could be read, without its metadata)", to);
		kl_rs_note(c, e->path, 0, what);
	} else if (rc == -EEXIST) {
		snprintf(what, sizeof(what), "removed: '%s' is taken by a restored file", to);
		kl_rs_note(c, e->path, 0, what);
	} else {
		kl_rs_fail(c, e->path, rc, "damaged file cannot be renamed to NAME" SUFFIX);
	}
}

/*
 * After the workers: every damaged file, and every other name of a
 * damaged multiply linked file, goes to NAME.keel-damaged.
 */
void kl_rs_damaged_rename(struct rctx *c)
{
	for (size_t i = 0; i < c->n_damaged && !kl_rs_stopped(c); i++) {
		const struct rs_name *d = &c->damaged[i];

		rename_report(c, d);
		if (!d->linked)
			continue;
		for (size_t j = 0; j < c->n_lnames; j++)
			if (c->lnames[j].dev == d->dev && c->lnames[j].ino == d->ino)
				rename_report(c, &c->lnames[j]);
	}
	c->st.damaged = c->n_damaged;
}
