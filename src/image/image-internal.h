/* Shared by the files of src/image: device.c, backup.c, restore.c. */
#ifndef KEEL_IMAGE_INTERNAL_H
#define KEEL_IMAGE_INTERNAL_H

#include "keel/crypto.h"
#include "keel/fs.h"
#include "keel/image.h"

/*
 * Ids of all-zero chunks: the chunk size's and the last shorter one's,
 * computed once each.
 */
struct kl_img_zero {
	struct {
		size_t len;
		struct kl_id id;
		bool known;
	} e[2];
};

bool kl_img_is_zero(const uint8_t *p, size_t n);
/* The id of len zero bytes (len <= KL_IMAGE_CHUNK_MAX); *fresh: computed now. */
int kl_img_zero_id(struct kl_img_zero *z, const struct kl_keys *k, size_t len,
		   const struct kl_id **ret, bool *fresh);
/*
 * 1 when [off, off + len) of fd holds no allocated byte (SEEK_DATA), 0 when
 * it may hold some or the file system cannot say.
 */
int kl_img_range_is_hole(int fd, uint64_t off, uint64_t len);

/* The overlay, for export.c (overlay.c); offsets are image offsets. */
uint32_t kl_img_overlay_block(const struct kl_image_overlay *o);
bool kl_img_overlay_has(const struct kl_image_overlay *o, uint64_t block);
/* Blocks it holds; *written_ret: of those, first written by this process. */
uint64_t kl_img_overlay_blocks(const struct kl_image_overlay *o, uint64_t *written_ret);
int kl_img_overlay_read(struct kl_image_overlay *o, void *buf, size_t len, uint64_t off);
/* Whole blocks; the caller serialises writes and flushes. */
int kl_img_overlay_write(struct kl_image_overlay *o, const void *buf, size_t len, uint64_t off);
int kl_img_overlay_flush(struct kl_image_overlay *o);

/* NBD sources (nbdsrc.c): an nbd URI, or a qcow2 file through qemu-nbd. */
struct kl_img_nbd;
bool kl_img_is_nbd_uri(const char *s);
bool kl_img_is_qcow2(const char *path);
/* bitmap: the dirty bitmap to read (NULL: none). Detail in err. */
int kl_img_nbd_open(const char *src, bool qcow2, const char *bitmap, struct kl_img_nbd **ret,
		    uint64_t *size_ret, struct kl_err *err);
void kl_img_nbd_free(struct kl_img_nbd *n);
int kl_img_nbd_read(struct kl_img_nbd *n, void *buf, size_t len, uint64_t off);
/* 1: the range reads as zeros (base:allocation); 0: it may not */
int kl_img_nbd_is_zero(struct kl_img_nbd *n, uint64_t off, uint64_t len);
/* 1: some of the range is dirty (or there is no bitmap); 0: clean */
int kl_img_nbd_is_dirty(struct kl_img_nbd *n, uint64_t off, uint64_t len);
/*
 * Read-ahead: starts reading [off, off + len) (len <= KL_IMAGE_CHUNK_MAX)
 * while the window of reads in flight has room. Returns 1 when started,
 * 0 when the window is full (take the oldest first), < 0 on error. The
 * answers to is_zero/is_dirty move forward through the image: ask them
 * in increasing order (going back costs a block status request).
 */
int kl_img_nbd_start_read(struct kl_img_nbd *n, uint64_t off, size_t len);
/*
 * The oldest read started (which must be [off, off + len)), waited for:
 * *ret is its bytes, the caller's to free. A failed read (the server's
 * error, the connection lost) ends the use of n: only kl_img_nbd_free().
 */
int kl_img_nbd_take_read(struct kl_img_nbd *n, uint64_t off, size_t len, uint8_t **ret);

/* --dirty-bitmap's parent (bitmap.c) */
struct kl_img_bitmap_parent {
	struct kl_repo *r;
	const struct kl_snapshot *snap; /* the parent, of the same sources and chunk size */
	const struct kl_tree *tree;	/* its images */
	uint32_t chunk;
	size_t n_sources;
	const char *ident;  /* kl_image_ident() of the source now */
	const char *bitmap; /* --dirty-bitmap NAME */
	char *note;	    /* why not, when not ("" before: the first note is kept) */
	size_t note_len;
};
/*
 * The parent's image whose chunk ids the clean chunks of n (source idx,
 * read through nbd) may keep, in *ret; NULL, with a note, when the bitmap
 * may not describe the changes since it. The snapshot records the bitmap's
 * name (image_bitmap) but no identity of the disk (NEEDSWORK, issue 18: a
 * snapshot field for it), so this checks what it can: the image's name,
 * size and chunk count; that the parent read the disk (its method); that
 * a parent taken with a bitmap was taken with this one; what the disk's
 * first bytes say it holds (ident); and a sample of clean chunks, read and
 * compared with the parent's.
 */
int kl_img_bitmap_parent(const struct kl_img_bitmap_parent *bp, struct kl_img_nbd *nbd,
			 const char *path, const struct kl_node *n, size_t idx,
			 const struct kl_node **ret);

/* --from-overlay sources (ovsrc.c): an overlay file over its snapshot's image. */
struct kl_img_ovsrc;
int kl_img_ovsrc_open(struct kl_repo *r, const char *path, struct kl_img_ovsrc **ret);
void kl_img_ovsrc_free(struct kl_img_ovsrc *s);
const struct kl_node *kl_img_ovsrc_node(const struct kl_img_ovsrc *s);
uint32_t kl_img_ovsrc_chunk_size(const struct kl_img_ovsrc *s);
struct kl_image_export *kl_img_ovsrc_export(struct kl_img_ovsrc *s);

#endif
