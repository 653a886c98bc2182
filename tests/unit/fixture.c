/* Set-up shared by the unit tests (fixture.h). */
#include "fixture.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fixture_tmpdir(const char *name, char *ret, size_t size)
{
	int n = snprintf(ret, size, "/tmp/keel-test-%s.XXXXXX", name);

	if (n < 0 || (size_t)n >= size)
		return -1;
	return mkdtemp(ret) ? 0 : -1;
}

/*
 * Empties the directory dfd and closes it. Names are relative to their
 * directory's descriptor: restores make trees deeper than PATH_MAX.
 */
static void rm_below(int dfd)
{
	DIR *d = fdopendir(dfd);
	struct dirent *de;
	bool removed = true;

	if (!d) {
		close(dfd);
		return;
	}
	/* a directory changed while it is read may skip names: read it again */
	while (removed) {
		removed = false;
		rewinddir(d);
		while ((de = readdir(d))) {
			struct stat st;
			int sub;

			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
				continue;
			if (S_ISDIR(st.st_mode)) {
				/* restores leave 0000 and 0555 directories behind */
				if (fchmodat(dirfd(d), de->d_name, 0700, 0) < 0) {
					/* best effort: it may open all the same */
				}
				sub = openat(dirfd(d), de->d_name,
					     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
				if (sub >= 0)
					rm_below(sub);
			}
			if (unlinkat(dirfd(d), de->d_name,
				     S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) == 0)
				removed = true;
		}
	}
	closedir(d);
}

void fixture_rm_rf(const char *path)
{
	struct stat st;
	int fd;

	if (lstat(path, &st) < 0)
		return;
	if (!S_ISDIR(st.st_mode)) {
		unlink(path);
		return;
	}
	chmod(path, 0700);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0)
		rm_below(fd);
	rmdir(path);
}

void fixture_init_opts(struct kl_init_opts *o)
{
	kl_init_opts_default(o);
	o->kdf.ops = 1;
	o->kdf.mem = 8u << 20;
}

int fixture_repo_create(const char *dir, const struct kl_init_opts *o, struct kl_pass **pass_ret,
			struct kl_repo **ret)
{
	struct kl_init_opts fast;
	struct kl_pass *pass = NULL;
	int r;

	if (pass_ret)
		*pass_ret = NULL;
	if (!o) {
		fixture_init_opts(&fast);
		o = &fast;
	}
	r = kl_pass_new(FIXTURE_PASSWORD, strlen(FIXTURE_PASSWORD), &pass);
	if (r < 0)
		return r;
	r = kl_repo_create(dir, pass, o, ret);
	if (r < 0 || !pass_ret)
		kl_pass_free(pass);
	else
		*pass_ret = pass;
	return r;
}
