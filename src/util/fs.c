/*
 * The one place that makes files durable. A content-addressed object is
 * written to a unique temporary name, fsynced, renamed into place without
 * replacing anything, and the directory is fsynced: after a crash the name
 * either does not exist or holds complete, synced bytes.
 */
#include <fcntl.h>
#include <signal.h>
#include <limits.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "keel/fs.h"
#include "keel/util.h"

int kl_fs_write_full(int fd, const void *buf, size_t n)
{
	const uint8_t *p = buf;

	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (w == 0)
			return -EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int kl_fs_read_full(int fd, void *buf, size_t n, size_t *got)
{
	uint8_t *p = buf;
	size_t done = 0;

	while (done < n) {
		ssize_t r = read(fd, p + done, n - done);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			*got = done;
			return -errno;
		}
		if (r == 0)
			break;
		done += (size_t)r;
	}
	*got = done;
	return 0;
}

int kl_fs_pread_full(int fd, void *buf, size_t n, uint64_t off)
{
	uint8_t *p = buf;

	while (n) {
		ssize_t r = pread(fd, p, n, (off_t)off);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -KL_ECORRUPT; /* shorter than its index says */
		p += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

int kl_fs_pwrite_full(int fd, const void *buf, size_t n, uint64_t off)
{
	const uint8_t *p = buf;

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

int kl_fs_fsync_dir(int dirfd)
{
	if (fsync(dirfd) < 0 && errno != EINVAL)
		return -errno;
	return 0;
}

/* Splits "a/b/name" into the directory fd to use and the last component. */
static int open_parent(int dirfd, const char *name, int *pfd, const char **base)
{
	const char *slash = strrchr(name, '/');
	char *dir;

	if (!slash) {
		*pfd = -1;
		*base = name;
		return 0;
	}
	dir = kl_strndup(name, (size_t)(slash - name));
	if (!dir)
		return -ENOMEM;
	*pfd = openat(dirfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	kl_free(dir);
	if (*pfd < 0)
		return -errno;
	*base = slash + 1;
	return 0;
}

/*
 * Random bytes for a temporary name: only uniqueness matters (O_EXCL
 * catches a clash), so the kernel's generator serves and util needs no
 * crypto.
 */
static int tmp_suffix(uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t got = getrandom(p, n, 0);

		if (got < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += got;
		n -= (size_t)got;
	}
	return 0;
}

int kl_fs_write_atomic(int dirfd, const char *name, const void *data, size_t len, unsigned mode,
		       unsigned flags)
{
	_cleanup_close_ int pfd = -1;
	_cleanup_close_ int fd = -1;
	const char *base = NULL;
	char tmp[300];
	uint8_t rnd[8];
	char rhex[17];
	int d, r;

	r = open_parent(dirfd, name, &pfd, &base);
	if (r < 0)
		return r;
	d = pfd >= 0 ? pfd : dirfd;
	r = tmp_suffix(rnd, sizeof(rnd));
	if (r < 0)
		return r;
	kl_hex_encode(rnd, sizeof(rnd), rhex);
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%s", base, rhex) >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = openat(d, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return -errno;
	r = kl_fs_write_full(fd, data, len);
	if (r >= 0 && !(flags & KL_FS_NOSYNC) && fsync(fd) < 0)
		r = -errno;
	if (r >= 0 && close(KL_TAKE_FD(fd)) < 0)
		r = -errno;
	if (r >= 0) {
		if (flags & KL_FS_NOREPLACE)
			r = renameat2(d, tmp, d, base, RENAME_NOREPLACE) < 0 ? -errno : 0;
		else
			r = renameat(d, tmp, d, base) < 0 ? -errno : 0;
	}
	if (r < 0) {
		unlinkat(d, tmp, 0);
		return r;
	}
	if (!(flags & KL_FS_NOSYNC))
		return kl_fs_fsync_dir(d);
	return 0;
}

int kl_fs_read_all(int dirfd, const char *name, size_t max, struct kl_buf *out)
{
	_cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	struct stat st;
	size_t got;
	int r;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if ((uint64_t)st.st_size > max)
		return -E2BIG;
	r = kl_buf_grow(out, (size_t)st.st_size);
	if (r < 0)
		return r;
	r = kl_fs_read_full(fd, out->data + out->len, (size_t)st.st_size, &got);
	if (r < 0)
		return r;
	out->len += got;
	out->data[out->len] = 0;
	return 0;
}

/*
 * open(2) refuses paths of PATH_MAX bytes or more; a backup source may be
 * that deep. Such a path is opened a piece at a time, each piece shorter
 * than PATH_MAX and cut at a '/', so symlinks and ".." resolve as open(2)
 * would resolve them.
 */
int kl_fs_open_dir(const char *path)
{
	_cleanup_free_ char *piece = NULL;
	size_t n = strlen(path), pos = 0;
	int fd = AT_FDCWD;

	if (n < PATH_MAX) {
		fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		return fd < 0 ? -errno : fd;
	}
	piece = kl_malloc(PATH_MAX);
	if (!piece)
		return -ENOMEM;
	while (pos < n) {
		size_t len = n - pos;
		int next;

		if (len >= PATH_MAX) {
			len = PATH_MAX - 1;
			while (len > 0 && path[pos + len] != '/')
				len--;
			if (len == 0) {
				if (fd != AT_FDCWD)
					close(fd);
				return -ENAMETOOLONG; /* one name longer than any can be */
			}
		}
		memcpy(piece, path + pos, len);
		piece[len] = 0;
		next = openat(fd, piece, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd != AT_FDCWD)
			close(fd);
		if (next < 0)
			return -errno;
		fd = next;
		pos += len;
		while (pos < n && path[pos] == '/')
			pos++; /* the next piece is relative to this one */
	}
	return fd;
}

int kl_fs_mkdir_p(int dirfd, const char *path, unsigned mode)
{
	char buf[4096];
	size_t n = strlen(path), i;

	if (n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != 0)
			continue;
		buf[i] = 0;
		if (mkdirat(dirfd, buf, mode) < 0 && errno != EEXIST)
			return -errno;
		buf[i] = i < n ? '/' : 0;
	}
	return 0;
}

int kl_spawn_reader(char *const argv[], pid_t *pid_ret)
{
	int pfd[2];
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return -errno;
	}
	if (pid == 0) {
		sigset_t none;

		/* keel blocks SIGINT and SIGTERM for its signal thread: not for the command */
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		dup2(pfd[1], STDOUT_FILENO);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(pfd[1]);
	*pid_ret = pid;
	return pfd[0];
}

/* Whether "NAME=value" a names the variable "NAME=..." b does. */
static bool same_name(const char *a, const char *b)
{
	size_t n = strcspn(b, "=");

	return !strncmp(a, b, n) && a[n] == '=';
}

int kl_env_with(char *const env[], char *const set[], char ***ret)
{
	size_t n_env = 0, n_set = 0, k = 0;
	char **v;

	while (env && env[n_env])
		n_env++;
	while (set[n_set])
		n_set++;
	v = kl_malloc((n_env + n_set + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n_env; i++) {
		bool replaced = false;

		for (size_t j = 0; j < n_set && !replaced; j++)
			replaced = same_name(env[i], set[j]);
		if (!replaced)
			v[k++] = env[i];
	}
	for (size_t j = 0; j < n_set; j++)
		v[k++] = set[j];
	v[k] = NULL;
	*ret = v;
	return 0;
}
