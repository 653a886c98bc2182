/*
 * What the backup leaves out on purpose and what it tells -v about: the
 * exclude patterns, directories marked by --exclude-if-present, the
 * repository and the cache inside a source, and each file's status.
 */
#include <fcntl.h>

#include "backup-internal.h"
#include "keel/fs.h"

int kl_backup_source_exists(const char *path)
{
	struct stat st;

	if (lstat(path, &st) == 0)
		return 1;
	return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
}

bool kl_bk_excluded(const struct backup *b, const char *path)
{
	const struct kl_backup_opts *o = b->o;

	return (o->excludes.n && kl_patterns_match(&o->excludes, path)) ||
	       (o->iexcludes.n && kl_patterns_match(&o->iexcludes, path));
}

/*
 * Is the marker "NAME" or "NAME:HEADER" (restic's form) in the directory
 * dfd: an entry NAME, whose content begins with HEADER if one is given?
 */
static bool marker_in(int dfd, const char *marker)
{
	const char *colon = strchr(marker, ':');
	_cleanup_free_ char *name = NULL;
	_cleanup_free_ uint8_t *buf = NULL;
	_cleanup_close_ int fd = -1;
	size_t hlen, got = 0;
	struct stat st;

	if (!colon)
		return fstatat(dfd, marker, &st, AT_SYMLINK_NOFOLLOW) == 0;
	hlen = strlen(colon + 1);
	name = kl_strndup(marker, (size_t)(colon - marker));
	buf = kl_malloc(hlen + 1);
	if (!name || !buf)
		return false;
	fd = kl_bk_open_noatime(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return false;
	return kl_fs_read_full(fd, buf, hlen, &got) >= 0 && got == hlen &&
	       !memcmp(buf, colon + 1, hlen);
}

/* Does the directory name in dfd hold one of --exclude-if-present's markers? */
static bool has_marker(const struct backup *b, int dfd, const char *name)
{
	_cleanup_close_ int fd = -1;

	fd = kl_bk_open_noatime(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return false; /* the walk reports it */
	for (size_t i = 0; i < b->o->n_if_present; i++)
		if (marker_in(fd, b->o->if_present[i]))
			return true;
	return false;
}

int kl_bk_skip_dir(const struct backup *b, int dfd, const char *name, const struct stat *st,
		   const char **why)
{
	const struct kl_backup_opts *o = b->o;

	*why = NULL;
	if (!S_ISDIR(st->st_mode))
		return 0;
	for (size_t i = 0; i < o->n_skip; i++) {
		if (o->skip[i].dev == (uint64_t)st->st_dev &&
		    o->skip[i].ino == (uint64_t)st->st_ino) {
			*why = o->skip[i].what;
			return 2;
		}
	}
	return o->n_if_present && has_marker(b, dfd, name) ? 1 : 0;
}

void kl_bk_note(struct backup *b, const char *path, const char *what)
{
	if (b->o->listen.note)
		b->o->listen.note(b->o->listen.ud, path, what);
}

void kl_bk_item(struct backup *b, enum kl_backup_item what, const char *path, uint64_t size)
{
	const struct kl_backup_listener *l = &b->o->listen;

	if (!l->item || l->item_level < (what == KL_BACKUP_ITEM_UNMODIFIED ? 2 : 1))
		return;
	l->item(l->ud, what, path, size);
}
