/* keel backup: the paths to back up, and the directories never to back up. */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "cmd-backup.h"
#include "keel/backend.h"
#include "keel/fs.h"

/* a list of paths larger than this is a mistake (a binary file given) */
#define FILES_FROM_MAX ((size_t)256 << 20)

static int read_fd(int fd, struct kl_buf *b)
{
	for (;;) {
		uint8_t chunk[65536];
		size_t got = 0;
		int rc = kl_fs_read_full(fd, chunk, sizeof(chunk), &got);

		if (rc < 0)
			return rc;
		rc = kl_buf_add(b, chunk, got);
		if (rc < 0)
			return rc == -E2BIG ? -EFBIG : rc;
		if (got < sizeof(chunk))
			return 0;
	}
}

/* Adds the entry s..e of a list to *v (lines: without comments, blanks, CR). */
static int add_entry(char *s, char *e, bool raw, char ***v, size_t *n)
{
	if (!raw) {
		if (e > s && e[-1] == '\r')
			e--;
		if (e == s || s[0] == '#')
			return 0;
		for (const char *p = s; p < e; p++)
			if (*p != ' ' && *p != '\t')
				goto nonblank;
		return 0;
	}
	if (e == s)
		return 0;
nonblank:
	*e = 0;
	return kl_strv_push(v, n, s);
}

int kl_cli_files_from(struct kl_cli *cli, const char *file, bool raw, char ***v, size_t *n)
{
	_cleanup_buf_ struct kl_buf b = KL_BUF_INIT(FILES_FROM_MAX);
	char sep = raw ? '\0' : '\n';
	int rc;

	if (!strcmp(file, "-")) {
		rc = read_fd(STDIN_FILENO, &b);
	} else {
		_cleanup_close_ int fd = open(file, O_RDONLY | O_CLOEXEC);

		rc = fd < 0 ? -errno : read_fd(fd, &b);
	}
	if (rc >= 0 && !raw && memchr(b.data, 0, b.len))
		rc = -KL_EUSAGE; /* NUL bytes: --files-from-raw was meant */
	if (rc < 0) {
		kl_cli_error(cli, rc, "cannot read the list of paths '%s'", file);
		return rc == -KL_EUSAGE || rc == -ENOENT ? -KL_EUSAGE : rc;
	}
	rc = kl_buf_addch(&b, 0); /* room for the last entry's terminator */
	for (char *s = (char *)b.data, *end = s + b.len - 1; rc >= 0 && s < end;) {
		char *e = memchr(s, sep, (size_t)(end - s));

		if (!e)
			e = end;
		rc = add_entry(s, e, raw, v, n);
		s = e + 1;
	}
	return rc;
}

int kl_cli_check_sources(struct kl_cli *cli, bool ignore, char **v, size_t *n)
{
	size_t k = 0;

	for (size_t i = 0; i < *n; i++) {
		if (kl_backup_source_exists(v[i]) != 0) {
			v[k++] = v[i];
			continue;
		}
		if (!ignore) {
			fprintf(stderr,
				"keel: backup: source path '%s' does not exist; nothing was "
				"written (--ignore-missing leaves it out)\n",
				v[i]);
			return -KL_EUSAGE;
		}
		kl_cli_warn(cli, "source path '%s' does not exist: left out", v[i]);
		kl_free(v[i]);
	}
	*n = k;
	if (!k) {
		fprintf(stderr, "keel: backup: none of the given paths exist; nothing was "
				"written\n");
		return -KL_EUSAGE;
	}
	return 0;
}

/* A local repository's directory; NULL for S3 and ssh:// */
static const char *local_dir(const char *location)
{
	if (!location)
		return NULL;
	if (!strncmp(location, "local:", 6))
		return location + 6;
	if (!strncmp(location, "s3:", 3) || strstr(location, "://"))
		return NULL;
	return location;
}

static size_t add_skip(struct kl_backup_skip *skip, size_t n, const char *dir, const char *what)
{
	struct stat st;

	if (!dir || stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return n;
	for (size_t i = 0; i < n; i++)
		if (skip[i].dev == (uint64_t)st.st_dev && skip[i].ino == (uint64_t)st.st_ino)
			return n;
	skip[n].dev = (uint64_t)st.st_dev;
	skip[n].ino = (uint64_t)st.st_ino;
	skip[n].what = what;
	return n + 1;
}

size_t kl_cli_backup_skips(struct kl_cli *cli, struct kl_backup_skip *skip)
{
	_cleanup_free_ char *cache = NULL;
	size_t n = add_skip(skip, 0, local_dir(cli->repo_location), "the repository");

	if (kl_backend_cache_base(&cache) >= 0 && cache)
		n = add_skip(skip, n, cache, "keel's cache");
	return n;
}
