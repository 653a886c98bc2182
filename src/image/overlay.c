/*
 * The overlay of a writable `keel image serve` (docs/IMAGES.md, "Overlay
 * file"): a local sparse file that keeps every block written to the export,
 * so that the repository is never written and nothing written during an
 * instant recovery is lost. A header, a bitmap of the blocks it holds, and
 * the blocks at their image offset in a data area.
 *
 * The bitmap on disk changes only at a flush, after the data it covers is
 * synced: after a crash a block the bitmap names holds what was written
 * before the last flush or later, never bytes that were not written, and a
 * write after the last flush may be lost, as on a disk with a write cache.
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "image-internal.h"

static const uint8_t overlay_magic[8] = {'K', 'E', 'E', 'L', 'O', 'V', 'L', '1'};

#define HDR_SUM_OFF (KL_IMAGE_OVERLAY_HDR_LEN - KL_ID_LEN)
#define HDR_NAME_OFF 74

struct kl_image_overlay {
	int fd;
	struct kl_image_overlay_hdr h;
	uint64_t n_blocks;
	uint8_t *bitmap; /* bit b set: block b is in the data area; atomic bytes */
	size_t bitmap_len;
	size_t dirty_lo, dirty_hi; /* bytes of bitmap not written to the file yet */
	uint64_t blocks_written;   /* set for the first time in this process */
};

static uint64_t bitmap_len_for(uint64_t size, uint32_t block)
{
	return ((size + block - 1) / block + 7) / 8;
}

static uint64_t data_offset_for(uint64_t size, uint32_t block)
{
	uint64_t end = KL_IMAGE_OVERLAY_HDR_LEN + bitmap_len_for(size, block);
	uint64_t align = block > KL_IMAGE_OVERLAY_HDR_LEN ? block : KL_IMAGE_OVERLAY_HDR_LEN;

	return (end + align - 1) / align * align;
}

void kl_image_overlay_hdr_encode(const struct kl_image_overlay_hdr *h,
				 uint8_t out[KL_IMAGE_OVERLAY_HDR_LEN])
{
	struct kl_id sum;
	size_t name_len = strnlen(h->name, sizeof(h->name) - 1);

	memset(out, 0, KL_IMAGE_OVERLAY_HDR_LEN);
	memcpy(out, overlay_magic, sizeof(overlay_magic));
	kl_put_le32(out + 8, KL_IMAGE_OVERLAY_VERSION);
	kl_put_le32(out + 12, h->block_size);
	kl_put_le64(out + 16, h->image_size);
	kl_put_le64(out + 24, KL_IMAGE_OVERLAY_HDR_LEN); /* the bitmap's offset */
	kl_put_le64(out + 32, data_offset_for(h->image_size, h->block_size));
	memcpy(out + 40, h->snapshot.b, KL_ID_LEN);
	out[72] = (uint8_t)name_len;
	out[73] = 0;
	memcpy(out + HDR_NAME_OFF, h->name, name_len);
	kl_sha256(out, HDR_SUM_OFF, &sum);
	memcpy(out + HDR_SUM_OFF, sum.b, KL_ID_LEN);
}

int kl_image_overlay_hdr_decode(const uint8_t *p, size_t n, struct kl_image_overlay_hdr *ret)
{
	struct kl_id sum;
	size_t name_len;

	memset(ret, 0, sizeof(*ret));
	if (n < KL_IMAGE_OVERLAY_HDR_LEN || memcmp(p, overlay_magic, sizeof(overlay_magic)))
		return -KL_ECORRUPT;
	kl_sha256(p, HDR_SUM_OFF, &sum);
	if (memcmp(sum.b, p + HDR_SUM_OFF, KL_ID_LEN))
		return -KL_ECORRUPT;
	if (kl_get_le32(p + 8) != KL_IMAGE_OVERLAY_VERSION)
		return -KL_EVERSION;
	ret->block_size = kl_get_le32(p + 12);
	ret->image_size = kl_get_le64(p + 16);
	if (ret->block_size < KL_IMAGE_OVERLAY_BLOCK_MIN || ret->block_size > KL_IMAGE_CHUNK_MAX ||
	    (ret->block_size & (ret->block_size - 1)) ||
	    ret->image_size > KL_IMAGE_OVERLAY_SIZE_MAX)
		return -KL_ECORRUPT;
	/* the layout follows from size and block size: anything else is damage */
	if (kl_get_le64(p + 24) != KL_IMAGE_OVERLAY_HDR_LEN ||
	    kl_get_le64(p + 32) != data_offset_for(ret->image_size, ret->block_size))
		return -KL_ECORRUPT;
	ret->data_offset = kl_get_le64(p + 32);
	memcpy(ret->snapshot.b, p + 40, KL_ID_LEN);
	name_len = p[72];
	if (!name_len || p[73] || memchr(p + HDR_NAME_OFF, 0, name_len) ||
	    memchr(p + HDR_NAME_OFF, '/', name_len))
		return -KL_ECORRUPT;
	for (size_t i = HDR_NAME_OFF + name_len; i < HDR_SUM_OFF; i++)
		if (p[i])
			return -KL_ECORRUPT;
	memcpy(ret->name, p + HDR_NAME_OFF, name_len);
	return 0;
}

static bool bit_get(const struct kl_image_overlay *o, uint64_t b)
{
	return __atomic_load_n(&o->bitmap[b / 8], __ATOMIC_ACQUIRE) & (1u << (b % 8));
}

static void bit_set(struct kl_image_overlay *o, uint64_t b)
{
	size_t i = (size_t)(b / 8);

	__atomic_fetch_or(&o->bitmap[i], (uint8_t)(1u << (b % 8)), __ATOMIC_RELEASE);
	if (o->dirty_hi <= o->dirty_lo) {
		o->dirty_lo = i;
		o->dirty_hi = i + 1;
	} else {
		o->dirty_lo = i < o->dirty_lo ? i : o->dirty_lo;
		o->dirty_hi = i + 1 > o->dirty_hi ? i + 1 : o->dirty_hi;
	}
}

static int overlay_create(struct kl_image_overlay *o, const char *path, struct kl_err *err)
{
	uint8_t hdr[KL_IMAGE_OVERLAY_HDR_LEN];
	int rc;

	o->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (o->fd < 0)
		return kl_fail(err, -errno, "cannot create the overlay '%s'", path);
	kl_image_overlay_hdr_encode(&o->h, hdr);
	/* the file's size covers the data area: a reader can tell a cut file */
	rc = ftruncate(o->fd, (off_t)(o->h.data_offset + o->h.image_size)) < 0 ? -errno : 0;
	if (rc >= 0)
		rc = kl_fs_pwrite_full(o->fd, hdr, sizeof(hdr), 0);
	if (rc >= 0 && fsync(o->fd) < 0)
		rc = -errno;
	if (rc < 0)
		return kl_fail(err, rc, "cannot write the overlay '%s'", path);
	return 0;
}

static int overlay_load(struct kl_image_overlay *o, const char *path, struct kl_err *err)
{
	uint8_t hdr[KL_IMAGE_OVERLAY_HDR_LEN];
	struct kl_image_overlay_hdr h;
	struct stat st;
	int rc = kl_fs_pread_full(o->fd, hdr, sizeof(hdr), 0);

	if (rc == -ENODATA || rc == -EIO)
		rc = -KL_ECORRUPT;
	if (rc >= 0)
		rc = kl_image_overlay_hdr_decode(hdr, sizeof(hdr), &h);
	if (rc < 0)
		return kl_fail(err, rc, "'%s' is not a keel overlay file", path);
	if (memcmp(h.snapshot.b, o->h.snapshot.b, KL_ID_LEN) || strcmp(h.name, o->h.name) ||
	    h.image_size != o->h.image_size) {
		char hex[2 * KL_ID_LEN + 1];

		kl_id_hex(&h.snapshot, hex);
		return kl_fail(
			err, -KL_EUSAGE,
			"the overlay '%s' belongs to image '%s' of snapshot %.8s, not this one",
			path, h.name, hex);
	}
	/* the bitmap is sized for the blocks asked for: other blocks would index past it */
	if (h.block_size != o->h.block_size)
		return kl_fail(err, -KL_EUSAGE, "the overlay '%s' has blocks of %u bytes, not %u",
			       path, h.block_size, o->h.block_size);
	if (fstat(o->fd, &st) < 0)
		return kl_fail(err, -errno, "cannot stat the overlay '%s'", path);
	if ((uint64_t)st.st_size < KL_IMAGE_OVERLAY_HDR_LEN + o->bitmap_len)
		return kl_fail(err, -KL_ECORRUPT, "the overlay '%s' is cut short", path);
	o->h = h;
	rc = kl_fs_pread_full(o->fd, o->bitmap, o->bitmap_len, KL_IMAGE_OVERLAY_HDR_LEN);
	if (rc < 0)
		return kl_fail(err, rc, "cannot read the overlay '%s'", path);
	/* bits past the last block would make reads go past the data area */
	if (o->n_blocks % 8 && (o->bitmap[o->bitmap_len - 1] >> (o->n_blocks % 8)))
		return kl_fail(err, -KL_ECORRUPT, "the overlay '%s' has a damaged bitmap", path);
	return 0;
}

int kl_image_overlay_open(const char *path, const struct kl_image_overlay_hdr *want,
			  struct kl_image_overlay **ret, struct kl_err *err)
{
	struct kl_image_overlay *o;
	int rc;

	*ret = NULL;
	if (want->image_size > KL_IMAGE_OVERLAY_SIZE_MAX)
		return kl_fail(err, -EFBIG, "the image is too large for an overlay");
	o = kl_calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	o->h = *want;
	o->h.data_offset = data_offset_for(want->image_size, want->block_size);
	o->n_blocks = (want->image_size + want->block_size - 1) / want->block_size;
	o->bitmap_len = (size_t)bitmap_len_for(want->image_size, want->block_size);
	o->bitmap = kl_calloc(o->bitmap_len ? o->bitmap_len : 1, 1);
	if (!o->bitmap) {
		kl_free(o);
		return -ENOMEM;
	}
	o->fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (o->fd < 0 && errno == ENOENT)
		rc = overlay_create(o, path, err);
	else if (o->fd < 0)
		rc = kl_fail(err, -errno, "cannot open the overlay '%s'", path);
	else
		rc = overlay_load(o, path, err);
	if (rc < 0) {
		kl_image_overlay_free(o);
		return rc;
	}
	*ret = o;
	return 0;
}

void kl_image_overlay_free(struct kl_image_overlay *o)
{
	if (!o)
		return;
	if (o->fd >= 0)
		close(o->fd);
	kl_free(o->bitmap);
	kl_free(o);
}

uint32_t kl_img_overlay_block(const struct kl_image_overlay *o)
{
	return o->h.block_size;
}

bool kl_img_overlay_has(const struct kl_image_overlay *o, uint64_t block)
{
	return block < o->n_blocks && bit_get(o, block);
}

uint64_t kl_img_overlay_blocks(const struct kl_image_overlay *o, uint64_t *written_ret)
{
	uint64_t n = 0;

	for (size_t i = 0; i < o->bitmap_len; i++)
		n += (uint64_t)__builtin_popcount(o->bitmap[i]);
	if (written_ret)
		*written_ret = o->blocks_written;
	return n;
}

int kl_img_overlay_read(struct kl_image_overlay *o, void *buf, size_t len, uint64_t off)
{
	return kl_fs_pread_full(o->fd, buf, len, o->h.data_offset + off);
}

/* The caller serialises writes and has merged partial blocks: [off, off+len) is whole blocks */
int kl_img_overlay_write(struct kl_image_overlay *o, const void *buf, size_t len, uint64_t off)
{
	uint64_t bs = o->h.block_size;
	int rc = kl_fs_pwrite_full(o->fd, buf, len, o->h.data_offset + off);

	if (rc < 0)
		return rc;
	for (uint64_t b = off / bs; b < (off + len + bs - 1) / bs; b++) {
		if (!bit_get(o, b)) {
			bit_set(o, b);
			o->blocks_written++;
		}
	}
	return 0;
}

/* Data first, then the bitmap that names it (see the top of the file). */
int kl_img_overlay_flush(struct kl_image_overlay *o)
{
	int rc;

	if (fdatasync(o->fd) < 0)
		return -errno;
	if (o->dirty_hi <= o->dirty_lo)
		return 0;
	rc = kl_fs_pwrite_full(o->fd, o->bitmap + o->dirty_lo, o->dirty_hi - o->dirty_lo,
			       KL_IMAGE_OVERLAY_HDR_LEN + o->dirty_lo);
	if (rc >= 0 && fdatasync(o->fd) < 0)
		rc = -errno;
	if (rc >= 0)
		o->dirty_lo = o->dirty_hi = 0;
	return rc;
}
