/*
 * keel mount (docs/MOUNT.md): every snapshot of a repository as a
 * read-only file system through FUSE (libfuse3), in restic's layout:
 * snapshots/TIME/..., ids/SHORTID/..., hosts/HOST/TIME/...,
 * tags/TAG/TIME/..., and a "latest" symlink in each list. Files are read
 * on demand, blob by blob, through a cache of recently read blobs.
 */
#ifndef KEEL_MOUNT_H
#define KEEL_MOUNT_H

#include <stdbool.h>
#include <stdint.h>

#include "keel/ops.h"
#include "keel/repo.h"

#define KL_MOUNT_CACHE_DEFAULT ((uint64_t)128 << 20)
/* the snapshot list is read again at most this often (when a listing asks for it) */
#define KL_MOUNT_REFRESH_NS (3 * KL_NSEC_PER_SEC)

struct kl_mount_opts {
	const char *mountpoint;
	const struct kl_snap_filter *filter; /* NULL: every snapshot */
	bool allow_other;		     /* other users may read it (FUSE allow_other) */
	uint64_t cache_bytes;		     /* blob cache; 0: KL_MOUNT_CACHE_DEFAULT */
	/*
	 * Readable when the mount should end (the CLI's signal notification),
	 * or -1. The file system is then unmounted as fusermount3 -u does.
	 */
	int stop_fd;
	/* called once the file system is mounted, with how many snapshots it shows; may be NULL */
	void (*ready)(void *ud, size_t n_snapshots);
	void *ud;
};

/*
 * Mounts the repository's snapshots read-only at o->mountpoint and serves
 * them until the file system is unmounted (fusermount3 -u, umount, or
 * stop_fd). r is unlocked with its index loaded; reads may come from
 * several threads at once (the repository's read paths are thread-safe).
 * Returns 0 after a clean unmount, -ENODEV when /dev/fuse cannot be used,
 * -EIO when the mount itself failed (libfuse printed why), or another
 * negative code.
 */
int kl_mount(struct kl_repo *r, const struct kl_mount_opts *o);

#endif
