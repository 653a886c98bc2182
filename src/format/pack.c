/*
 * Pack headers: the table of contents at the end of a pack, one BlobEntry
 * per sealed blob. Entries are kept in pack order (increasing offset),
 * which is the order a pack writer appends them in; requiring it makes
 * the encoding canonical and the overlap check linear.
 */
#include "keel/format.h"
#include "format-internal.h"

enum { F_PACK_VERSION = 1, F_PACK_BLOBS = 2 };
enum { F_ID = 1, F_TYPE, F_COMPRESSION, F_OFFSET, F_LENGTH, F_RAW_LENGTH };

bool kl_blob_entry_valid(const struct kl_blob_entry *e)
{
	if (e->type < KL_BLOB_DATA || e->type > KL_BLOB_TREE)
		return false;
	if (e->compression > KL_COMP_ZSTD)
		return false;
	if (e->length < KL_FORMAT_SEAL_OVERHEAD || e->raw_length > KL_BLOB_RAW_MAX)
		return false;
	/* sealing adds exactly KL_FORMAT_SEAL_OVERHEAD bytes to the stored plaintext */
	if (e->compression == KL_COMP_NONE && e->raw_length != e->length - KL_FORMAT_SEAL_OVERHEAD)
		return false;
	return true;
}

bool kl_blob_entries_valid(const struct kl_blob_entry *e, size_t n, uint64_t data_len)
{
	uint64_t end = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (!kl_blob_entry_valid(&e[i]) || e[i].offset < end)
			return false;
		end = (uint64_t)e[i].offset + e[i].length;
		if (end > data_len)
			return false;
	}
	return true;
}

int kl_blob_entry_encode(const struct kl_blob_entry *e, uint32_t field, struct kl_buf *out)
{
	size_t mark;
	int r;

	r = kl_pb_begin(out, field, &mark);
	if (r >= 0)
		r = kl_pb_put_bytes(out, F_ID, e->id.b, KL_ID_LEN);
	if (r >= 0)
		r = kl_pb_put_uint(out, F_TYPE, e->type);
	if (r >= 0)
		r = kl_pb_put_uint_nz(out, F_COMPRESSION, e->compression);
	if (r >= 0)
		r = kl_pb_put_uint_nz(out, F_OFFSET, e->offset);
	if (r >= 0)
		r = kl_pb_put_uint(out, F_LENGTH, e->length);
	if (r >= 0)
		r = kl_pb_put_uint_nz(out, F_RAW_LENGTH, e->raw_length);
	if (r >= 0)
		r = kl_pb_end(out, mark);
	return r;
}

int kl_blob_entry_decode(const uint8_t *p, size_t n, struct kl_blob_entry *ret)
{
	struct kl_pb_reader rd = {p, n};
	struct kl_pb_field f;
	struct kl_blob_entry e = {0};
	uint64_t seen = 0;
	uint32_t u = 0;
	int r;

	while ((r = kl_pb_next(&rd, &f)) > 0) {
		if (f.num > F_RAW_LENGTH)
			continue;
		r = kl_pb_once(&seen, f.num);
		if (r < 0)
			return r;
		if (f.num == F_ID) {
			r = kl_pb_get_id(&f, &e.id);
			if (r < 0)
				return r;
			continue;
		}
		r = kl_pb_get_u32(&f, &u);
		if (r < 0)
			return r;
		switch (f.num) {
		case F_TYPE:
		case F_COMPRESSION:
			if (u > UINT8_MAX)
				return -KL_ECORRUPT;
			if (f.num == F_TYPE)
				e.type = (uint8_t)u;
			else
				e.compression = (uint8_t)u;
			break;
		case F_OFFSET:
			e.offset = u;
			break;
		case F_LENGTH:
			e.length = u;
			break;
		case F_RAW_LENGTH:
			e.raw_length = u;
			break;
		}
	}
	if (r < 0)
		return r;
	if (!(seen & (1u << F_ID)) || !kl_blob_entry_valid(&e))
		return -KL_ECORRUPT;
	*ret = e;
	return 0;
}

int kl_blob_entries_decode(const uint8_t *p, size_t n, uint32_t field, size_t count,
			   struct kl_pack_header *h)
{
	struct kl_pb_reader rd = {p, n};
	struct kl_pb_field f;
	int r;

	if (count > KL_PACK_MAX_BLOBS || count > n / KL_PB_MIN_BLOB)
		return -KL_ECORRUPT;
	if (!count)
		return 0;
	h->blobs = kl_calloc(count, sizeof(*h->blobs));
	if (!h->blobs)
		return -ENOMEM;
	h->cap = count;
	while ((r = kl_pb_next(&rd, &f)) > 0) {
		if (f.num != field)
			continue;
		if (f.wire != KL_PB_LEN || KL_NEVER(h->n >= count))
			return -KL_ECORRUPT;
		r = kl_blob_entry_decode(f.p, f.len, &h->blobs[h->n]);
		if (r < 0)
			return r;
		h->n++;
	}
	return r;
}

int kl_pack_header_add(struct kl_pack_header *h, const struct kl_blob_entry *e)
{
	if (kl_array_grow(&h->blobs, &h->cap, h->n, sizeof(*h->blobs), 64) < 0)
		return -ENOMEM;
	h->blobs[h->n++] = *e;
	return 0;
}

void kl_pack_header_release(struct kl_pack_header *h)
{
	if (!h)
		return;
	kl_free(h->blobs);
	memset(h, 0, sizeof(*h));
}

int kl_pack_header_encode(const struct kl_pack_header *h, struct kl_buf *out)
{
	size_t start = out->len, i;
	int r;

	if (h->n > KL_PACK_MAX_BLOBS)
		return -E2BIG;
	if (!kl_blob_entries_valid(h->blobs, h->n, UINT64_MAX))
		return -EINVAL;
	r = kl_pb_put_uint(out, F_PACK_VERSION, KL_FORMAT_VERSION);
	for (i = 0; r >= 0 && i < h->n; i++)
		r = kl_blob_entry_encode(&h->blobs[i], F_PACK_BLOBS, out);
	if (r < 0) {
		kl_buf_setlen(out, start);
		return r;
	}
	return 0;
}

int kl_pack_header_decode(const uint8_t *p, size_t n, uint64_t data_len, struct kl_pack_header *ret)
{
	struct kl_pack_header h = {0};
	struct kl_pb_scan s;
	int r;

	memset(ret, 0, sizeof(*ret));
	r = kl_pb_scan(p, n, &s);
	if (r >= 0)
		r = kl_pb_check_version(&s, KL_FORMAT_VERSION);
	if (r >= 0)
		r = kl_blob_entries_decode(p, n, F_PACK_BLOBS, s.count[F_PACK_BLOBS], &h);
	if (r >= 0 && !kl_blob_entries_valid(h.blobs, h.n, data_len))
		r = -KL_ECORRUPT;
	if (r < 0) {
		kl_pack_header_release(&h);
		return r;
	}
	*ret = h;
	return 0;
}

int kl_pack_trailer_parse(const uint8_t *tail, size_t n, uint64_t size, struct kl_pack_trailer *ret)
{
	uint32_t hlen;

	memset(ret, 0, sizeof(*ret));
	if (size < KL_PACK_MIN_SIZE || n < 4 || n > size) {
		ret->why = "too short to be a pack";
		return -KL_ECORRUPT;
	}
	hlen = kl_get_le32(tail + n - 4);
	/* a sealed header holds at least the seal's own bytes, and fits before its length */
	if (hlen < KL_FORMAT_SEAL_OVERHEAD || hlen > size - 4) {
		ret->why = "bad header length: truncated?";
		return -KL_ECORRUPT;
	}
	ret->header_len = hlen;
	ret->header_off = size - 4 - hlen;
	ret->tail_len = (uint64_t)hlen + 4;
	return 0;
}
