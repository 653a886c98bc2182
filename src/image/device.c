/* Sources and targets: sizes of files and block devices, holes, zeros. */
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include "image-internal.h"

int kl_image_open(const char *path, int flags, uint64_t *size_ret, bool *is_dev)
{
	struct stat st;
	int fd = open(path, flags | O_CLOEXEC, 0600);

	if (fd < 0 && errno == EPERM && (flags & O_NOATIME))
		fd = open(path, (flags & ~O_NOATIME) | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		goto fail;
	*is_dev = S_ISBLK(st.st_mode);
	if (*is_dev) {
		uint64_t sz;

		if (ioctl(fd, BLKGETSIZE64, &sz) < 0)
			goto fail;
		*size_ret = sz;
	} else if (S_ISREG(st.st_mode)) {
		*size_ret = (uint64_t)st.st_size;
	} else {
		close(fd);
		return -EINVAL;
	}
	return fd;
fail:;
	int e = -errno;

	close(fd);
	return e;
}

bool kl_img_is_zero(const uint8_t *p, size_t n)
{
	static const uint8_t zeros[256];

	while (n >= sizeof(zeros)) {
		if (memcmp(p, zeros, sizeof(zeros)))
			return false;
		p += sizeof(zeros);
		n -= sizeof(zeros);
	}
	return !memcmp(p, zeros, n);
}

int kl_img_zero_id(struct kl_img_zero *z, const struct kl_keys *k, size_t len,
		   const struct kl_id **ret, bool *fresh)
{
	_cleanup_free_ uint8_t *buf = NULL;
	unsigned i;

	*fresh = false;
	for (i = 0; i < 2 && z->e[i].known; i++) {
		if (z->e[i].len == len) {
			*ret = &z->e[i].id;
			return 0;
		}
	}
	if (KL_NEVER(len > KL_IMAGE_CHUNK_MAX))
		return -EINVAL;
	if (i == 2)
		i = 1; /* another image's last chunk: the first entry is the chunk size's */
	buf = kl_calloc(1, len ? len : 1);
	if (!buf)
		return -ENOMEM;
	kl_blob_id(k, buf, len, &z->e[i].id);
	z->e[i].len = len;
	z->e[i].known = true;
	*fresh = true;
	*ret = &z->e[i].id;
	return 0;
}

int kl_img_range_is_hole(int fd, uint64_t off, uint64_t len)
{
	off_t d = lseek(fd, (off_t)off, SEEK_DATA);

	if (d < 0)
		return errno == ENXIO ? 1 : 0; /* ENXIO: no data from off on */
	return (uint64_t)d >= off + len;
}
