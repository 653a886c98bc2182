/*
 * Restore's small system call helpers: checked names, full and sparse
 * writes, and clearing what is in the way of a new node.
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "keel/fs.h"
#include "restore-internal.h"

#define HOLE_BLOCK 4096

static const uint8_t zero_block[HOLE_BLOCK];

int kl_rs_name_copy(char out[NAME_MAX + 1], const uint8_t *name, size_t len)
{
	if (len > NAME_MAX)
		return -ENAMETOOLONG;
	/* the tree decoder guarantees this; a restore must not trust that alone */
	if (KL_NEVER(!len || memchr(name, '/', len) || memchr(name, 0, len) ||
		     (name[0] == '.' && (len == 1 || (len == 2 && name[1] == '.')))))
		return -KL_ECORRUPT;
	memcpy(out, name, len);
	out[len] = 0;
	return 0;
}

/*
 * Writes n bytes at off. In a sparse file, pieces of 4 KiB blocks that
 * are all zero are skipped: the file is new, so what is not written
 * reads as zero, and a block none of whose bytes are written stays a
 * hole. Non-zero runs go out in one pwrite each.
 */
int kl_rs_write_at(int fd, const uint8_t *p, size_t n, uint64_t off, bool sparse)
{
	size_t i = 0;

	if (!sparse)
		return kl_fs_pwrite_full(fd, p, n, off);
	while (i < n) {
		size_t start = i;
		int rc;

		for (;;) {
			size_t k = KL_MIN(HOLE_BLOCK - (size_t)((off + i) % HOLE_BLOCK), n - i);
			bool zero = !memcmp(p + i, zero_block, k);

			if (zero && i > start)
				break; /* write the run so far, then skip zeros */
			i += k;
			if (zero)
				start = i;
			if (i == n)
				break;
		}
		if (i > start) {
			rc = kl_fs_pwrite_full(fd, p + start, i - start, off + start);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

/*
 * Removes what is in the way of a new node: a file, a symlink, a device
 * or an empty directory. A directory with content is kept (-EISDIR).
 */
int kl_rs_clear_way(int dirfd, const char *name)
{
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode)) {
		if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0)
			return errno == ENOTEMPTY || errno == EEXIST ? -EISDIR : -errno;
		return 0;
	}
	return unlinkat(dirfd, name, 0) < 0 ? -errno : 0;
}
