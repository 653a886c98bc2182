/*
 * What the backup leaves out on purpose and what it tells -v about: the
 * exclude patterns, directories marked by --exclude-if-present, the
 * repository and the cache inside a source, and each file's status.
 */
#include <fcntl.h>

#include "backup-internal.h"

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

/* Does the directory name in dfd hold an entry named one of --exclude-if-present's? */
static bool has_marker(const struct backup *b, int dfd, const char *name)
{
	_cleanup_close_ int fd = -1;
	struct stat st;

	fd = kl_bk_open_noatime(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return false; /* the walk reports it */
	for (size_t i = 0; i < b->o->n_if_present; i++)
		if (fstatat(fd, b->o->if_present[i], &st, AT_SYMLINK_NOFOLLOW) == 0)
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
