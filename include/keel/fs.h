/* Durable file operations. */
#ifndef KEEL_FS_H
#define KEEL_FS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum kl_fs_write_flags {
	KL_FS_NOREPLACE = 1 << 0, /* fail with -EEXIST if name exists (content-addressed objects) */
	KL_FS_NOSYNC = 1 << 1,	  /* skip fsync (only for caches) */
};

/*
 * Writes data to dirfd/name atomically: a temporary file created with
 * O_EXCL, fsync, rename (RENAME_NOREPLACE with KL_FS_NOREPLACE), fsync of
 * the directory. A crash leaves either no file or the complete file; a
 * stale "name.tmp.*" may remain and is ignored by readers.
 * Returns 0 or -errno.
 */
int kl_fs_write_atomic(int dirfd, const char *name, const void *data, size_t len, unsigned mode,
		       unsigned flags);

/* Reads a whole file (at most max bytes, else -E2BIG). */
struct kl_buf;
int kl_fs_read_all(int dirfd, const char *name, size_t max, struct kl_buf *out);

/* pread/pwrite loops that retry on EINTR and short transfers. */
int kl_fs_pread_full(int fd, void *buf, size_t n, uint64_t off);
/* Writes all n bytes at off (EINTR and short writes retried); -EIO if the file takes none. */
int kl_fs_pwrite_full(int fd, const void *buf, size_t n, uint64_t off);
int kl_fs_write_full(int fd, const void *buf, size_t n);
int kl_fs_read_full(int fd, void *buf, size_t n, size_t *got); /* until EOF or n */

/* Opens a directory by a path of any length (even PATH_MAX or more); fd or -errno. */
int kl_fs_open_dir(const char *path);

/* mkdir -p relative to dirfd; 0 or -errno */
int kl_fs_mkdir_p(int dirfd, const char *path, unsigned mode);
int kl_fs_fsync_dir(int dirfd);

/*
 * Starts argv (searched in PATH) with its standard output on a pipe.
 * Returns the pipe's read end (the caller closes it and reaps *pid_ret)
 * or -errno.
 */
int kl_spawn_reader(char *const argv[], pid_t *pid_ret);

/*
 * A copy of env (environ-like, NULL-terminated) with each "NAME=value" of
 * set (NULL-terminated) in place of env's NAME, or added, for execve() or
 * execvpe(). Built before fork(): between fork() and exec() a threaded
 * process may call only async-signal-safe functions, and setenv() takes
 * the environment lock and mallocs, which another thread may have held
 * at the fork. One allocation for kl_free(); its strings stay env's and
 * set's, which must outlive it. Returns: 0 or -ENOMEM.
 */
int kl_env_with(char *const env[], char *const set[], char ***ret);

#endif
