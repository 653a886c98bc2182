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

#endif
