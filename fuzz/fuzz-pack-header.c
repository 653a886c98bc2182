/*
 * Fuzzes kl_pack_header_decode. Input: an 8-byte little-endian data_len
 * (the pack's size minus its header), then the header bytes. Oracle as
 * for the other decoders: accepted input re-encodes, and the re-encoding
 * is a fixed point under the same data_len.
 *
 * The same bytes are also the tail of a pack of data_len bytes for
 * kl_pack_trailer_parse: an accepted trailer must describe a sealed
 * header that fits in that pack and ends at its length.
 */
#include <stdlib.h>

#include "keel/format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_trailer(const uint8_t *tail, size_t n, uint64_t pack_size)
{
	struct kl_pack_trailer tr;

	if (kl_pack_trailer_parse(tail, n, pack_size, &tr) < 0) {
		if (!tr.why)
			abort();
		return;
	}
	if (n < 4 || n > pack_size || tr.header_len != kl_get_le32(tail + n - 4))
		abort();
	if (tr.header_len < KL_FORMAT_SEAL_OVERHEAD || tr.tail_len != (uint64_t)tr.header_len + 4)
		abort();
	if (tr.header_off + tr.tail_len != pack_size)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kl_buf a = KL_BUF_INIT(KL_BUF_MAX_DEFAULT), b = KL_BUF_INIT(KL_BUF_MAX_DEFAULT);
	struct kl_pack_header t, u;
	uint64_t data_len;
	int r;

	if (size < 8)
		return 0;
	data_len = kl_get_le64(data);
	data += 8;
	size -= 8;
	check_trailer(data, size, data_len);
	if (kl_pack_header_decode(data, size, data_len, &t) < 0)
		return 0;
	r = kl_pack_header_encode(&t, &a);
	if (r == -ENOMEM)
		goto out;
	if (r < 0)
		abort(); /* accepted on input but refused on output */
	r = kl_pack_header_decode(a.data, a.len, data_len, &u);
	if (r == -ENOMEM)
		goto out;
	if (r < 0)
		abort();
	r = kl_pack_header_encode(&u, &b);
	if (r < 0 && r != -ENOMEM)
		abort();
	if (r == 0 && (a.len != b.len || memcmp(a.data, b.data, a.len) != 0))
		abort();
	kl_pack_header_release(&u);
out:
	kl_pack_header_release(&t);
	kl_buf_release(&a);
	kl_buf_release(&b);
	return 0;
}
