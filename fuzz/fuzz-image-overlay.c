/*
 * Fuzzes kl_image_overlay_hdr_decode, the header of keel image serve's
 * overlay file (docs/IMAGES.md). Random bytes rarely get past the
 * checksum, so each input is also decoded with its checksum made right,
 * which reaches the checks of every field. Oracle: what the decoder
 * accepts, the encoder writes back byte for byte (the header is canonical).
 */
#include <stdlib.h>

#include "keel/crypto.h"
#include "keel/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const uint8_t *p, size_t n)
{
	struct kl_image_overlay_hdr h;
	uint8_t out[KL_IMAGE_OVERLAY_HDR_LEN];

	if (kl_image_overlay_hdr_decode(p, n, &h) < 0)
		return;
	kl_image_overlay_hdr_encode(&h, out);
	if (memcmp(out, p, sizeof(out)))
		abort(); /* accepted, but not the bytes the encoder writes */
	if (h.data_offset < KL_IMAGE_OVERLAY_HDR_LEN + (h.image_size / h.block_size + 7) / 8)
		abort(); /* the data area would overlap the bitmap */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t fixed[KL_IMAGE_OVERLAY_HDR_LEN];
	struct kl_id sum;

	check(data, size);
	if (size < sizeof(fixed))
		return 0;
	memcpy(fixed, data, sizeof(fixed));
	kl_sha256(fixed, sizeof(fixed) - KL_ID_LEN, &sum);
	memcpy(fixed + sizeof(fixed) - KL_ID_LEN, sum.b, KL_ID_LEN);
	check(fixed, sizeof(fixed));
	return 0;
}
