#include <dirent.h>
#include <fcntl.h>

#include "backup-internal.h"
#include "keel/fs.h"

static void scan_dir(struct backup *b, int dfd, const char *path, dev_t dev, int depth)
{
	DIR *d;
	struct dirent *de;

	if (depth > 256 || !(d = fdopendir(dfd))) {
		close(dfd);
		return;
	}
	while (!atomic_load(&b->scan_stop) && (de = readdir(d))) {
		struct stat st;
		char *sub;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		sub = kl_bk_join_path(path, de->d_name);
		if (!sub)
			break;
		if (kl_bk_excluded(b, sub)) {
			kl_free(sub);
			continue;
		}
		if (S_ISDIR(st.st_mode) && (b->o->n_skip || b->o->n_if_present)) {
			const char *why;

			if (kl_bk_skip_dir(b, dirfd(d), de->d_name, &st, &why)) {
				kl_free(sub);
				continue;
			}
		}
		if (S_ISREG(st.st_mode) && !(b->o->exclude_larger_than &&
					     (uint64_t)st.st_size > b->o->exclude_larger_than)) {
			atomic_fetch_add(&b->scan_files, 1);
			atomic_fetch_add(&b->scan_bytes, (uint64_t)st.st_size);
		} else if (S_ISDIR(st.st_mode) &&
			   !((b->o->flags & KL_BACKUP_ONE_FS) && st.st_dev != dev)) {
			int fd =
				kl_bk_open_noatime(dirfd(d), de->d_name,
						   O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (fd >= 0)
				scan_dir(b, fd, sub, dev, depth + 1);
		}
		kl_free(sub);
	}
	closedir(d);
}

void *kl_bk_scanner(void *arg)
{
	struct backup *b = arg;

	for (size_t i = 0; i < b->n_scan_paths && !atomic_load(&b->scan_stop); i++) {
		const char *path = b->scan_paths[i];
		const char *base = strrchr(path, '/');
		_cleanup_free_ char *parent = NULL;
		_cleanup_close_ int pfd = -1;
		struct stat st;
		int fd;

		/* through the parent: a source path may be longer than PATH_MAX */
		if (!base || !base[1]) {
			pfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC); /* "/" */
			base = ".";
		} else {
			parent = kl_strndup(path, base > path ? (size_t)(base - path) : 1);
			pfd = parent ? kl_fs_open_dir(parent) : -ENOMEM;
			base++;
		}
		if (pfd < 0 || fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISREG(st.st_mode)) {
			atomic_fetch_add(&b->scan_files, 1);
			atomic_fetch_add(&b->scan_bytes, (uint64_t)st.st_size);
			continue;
		}
		if (!S_ISDIR(st.st_mode))
			continue;
		if (b->o->n_skip || b->o->n_if_present) {
			const char *why;

			if (kl_bk_skip_dir(b, pfd, base, &st, &why))
				continue; /* the walk leaves it out too */
		}
		/* O_NOATIME: counting must not set the atimes the walk keeps */
		fd = kl_bk_open_noatime(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0)
			scan_dir(b, fd, path, st.st_dev, 0);
	}
	/* stopped early, the counts are short */
	atomic_store(&b->scan_done, !atomic_load(&b->scan_stop));
	return NULL;
}

/* ---- streams: stdin or a command's standard output ---- */
