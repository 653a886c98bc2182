/*
 * Protobuf wire format, the subset keel uses: varints, zigzag, length-
 * delimited fields, and skipping of fixed 32/64-bit fields we do not know.
 *
 * The reader is stricter than protobuf requires, because only keel writes
 * these bytes and every accepted oddity is one more thing to reason
 * about: varints must be minimal (no trailing 0x80 ... 0x00 padding), tags
 * must fit 32 bits, field number 0 and the group wire types 3 and 4 are
 * rejected.
 */
#include "keel/pb.h"

#define PB_FIELD_MAX ((1u << 29) - 1)

/* ---- writing ---------------------------------------------------------- */

/*
 * Tag and value go through a small stack buffer and one kl_buf_add(): the
 * tree encoder writes some twenty fields per file, so this is hot.
 */
#define PB_VARINT_MAX 10

static size_t varint_write(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

static int tag_write(uint8_t *p, uint32_t field, enum kl_pb_wire wire, size_t *n_ret)
{
	if (KL_NEVER(field == 0 || field > PB_FIELD_MAX))
		return -EINVAL;
	*n_ret = varint_write(p, (uint64_t)field << 3 | (uint64_t)wire);
	return 0;
}

int kl_pb_put_uint(struct kl_buf *b, uint32_t field, uint64_t v)
{
	uint8_t tmp[2 * PB_VARINT_MAX];
	size_t n;
	int r;

	r = tag_write(tmp, field, KL_PB_VARINT, &n);
	if (r < 0)
		return r;
	n += varint_write(tmp + n, v);
	return kl_buf_add(b, tmp, n);
}

int kl_pb_put_sint(struct kl_buf *b, uint32_t field, int64_t v)
{
	/* zigzag: 0, -1, 1, -2 ... -> 0, 1, 2, 3 ...; the shift is done unsigned */
	uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);

	return kl_pb_put_uint(b, field, z);
}

int kl_pb_put_bytes(struct kl_buf *b, uint32_t field, const void *p, size_t n)
{
	uint8_t tmp[2 * PB_VARINT_MAX];
	size_t k;
	int r;

	r = tag_write(tmp, field, KL_PB_LEN, &k);
	if (r < 0)
		return r;
	k += varint_write(tmp + k, n);
	if (n > SIZE_MAX - k)
		return -E2BIG;
	r = kl_buf_grow(b, k + n);
	if (r < 0)
		return r;
	memcpy(b->data + b->len, tmp, k);
	if (n)
		memcpy(b->data + b->len + k, p, n);
	b->len += k + n;
	b->data[b->len] = 0;
	return 0;
}

int kl_pb_put_str(struct kl_buf *b, uint32_t field, const char *s)
{
	if (!s)
		return 0;
	return kl_pb_put_bytes(b, field, s, strlen(s));
}

int kl_pb_put_uint_nz(struct kl_buf *b, uint32_t field, uint64_t v)
{
	return v ? kl_pb_put_uint(b, field, v) : 0;
}

int kl_pb_put_sint_nz(struct kl_buf *b, uint32_t field, int64_t v)
{
	return v ? kl_pb_put_sint(b, field, v) : 0;
}

int kl_pb_put_bytes_nz(struct kl_buf *b, uint32_t field, const void *p, size_t n)
{
	return n ? kl_pb_put_bytes(b, field, p, n) : 0;
}

int kl_pb_begin(struct kl_buf *b, uint32_t field, size_t *mark_ret)
{
	uint8_t tmp[PB_VARINT_MAX + 1];
	size_t n;
	int r;

	r = tag_write(tmp, field, KL_PB_LEN, &n);
	if (r < 0)
		return r;
	tmp[n++] = 0; /* the length, fixed up by kl_pb_end() */
	r = kl_buf_add(b, tmp, n);
	if (r < 0)
		return r;
	*mark_ret = b->len;
	return 0;
}

int kl_pb_end(struct kl_buf *b, size_t mark)
{
	size_t len = b->len - mark, k = 1, i;
	uint64_t v;
	int r;

	for (v = len; v >= 0x80; v >>= 7)
		k++;
	if (k > 1) {
		r = kl_buf_grow(b, k - 1);
		if (r < 0)
			return r;
		memmove(b->data + mark + k - 1, b->data + mark, len);
		b->len += k - 1;
		b->data[b->len] = 0;
	}
	v = len;
	for (i = 0; i < k; i++, v >>= 7)
		b->data[mark - 1 + i] = (uint8_t)((v & 0x7f) | (i + 1 < k ? 0x80 : 0));
	return 0;
}

/* ---- reading ---------------------------------------------------------- */

/* Minimal-length varint at p[0..n); returns bytes used or -KL_ECORRUPT. */
static int get_varint(const uint8_t *p, size_t n, uint64_t *ret)
{
	uint64_t v = 0;
	size_t i;

	/* one-byte varints are by far the most common: tags, small values */
	if (n && p[0] < 0x80) {
		*ret = p[0];
		return 1;
	}
	for (i = 0; i < n && i < PB_VARINT_MAX; i++) {
		v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
		if (p[i] & 0x80)
			continue;
		/*
		 * A last byte of 0 adds nothing: a longer spelling of a shorter
		 * varint. The tenth byte holds only bit 63.
		 */
		if (p[i] == 0 || (i == PB_VARINT_MAX - 1 && p[i] > 1))
			return -KL_ECORRUPT;
		*ret = v;
		return (int)i + 1;
	}
	return -KL_ECORRUPT;
}

int kl_pb_next(struct kl_pb_reader *r, struct kl_pb_field *f)
{
	uint64_t tag, v;
	int k;

	if (r->n == 0)
		return 0;
	k = get_varint(r->p, r->n, &tag);
	if (k < 0)
		return k;
	r->p += k;
	r->n -= k;
	if (tag > UINT32_MAX || (tag >> 3) == 0)
		return -KL_ECORRUPT;
	f->num = (uint32_t)(tag >> 3);
	f->v = 0;
	f->p = NULL;
	f->len = 0;
	switch (tag & 7) {
	case KL_PB_VARINT:
		k = get_varint(r->p, r->n, &f->v);
		if (k < 0)
			return k;
		break;
	case KL_PB_I64:
		if (r->n < 8)
			return -KL_ECORRUPT;
		f->v = kl_get_le64(r->p);
		k = 8;
		break;
	case KL_PB_I32:
		if (r->n < 4)
			return -KL_ECORRUPT;
		f->v = kl_get_le32(r->p);
		k = 4;
		break;
	case KL_PB_LEN:
		k = get_varint(r->p, r->n, &v);
		if (k < 0)
			return k;
		if (v > r->n - (size_t)k)
			return -KL_ECORRUPT;
		f->p = r->p + k;
		f->len = (size_t)v;
		r->p += k + v;
		r->n -= k + v;
		f->wire = KL_PB_LEN;
		return 1;
	default: /* 3 and 4 are deprecated groups, 6 and 7 do not exist */
		return -KL_ECORRUPT;
	}
	f->wire = (enum kl_pb_wire)(tag & 7);
	r->p += k;
	r->n -= k;
	return 1;
}

int64_t kl_pb_unzigzag(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

int kl_pb_strdup(const struct kl_pb_field *f, char **ret)
{
	char *s;

	if (f->wire != KL_PB_LEN)
		return -KL_ECORRUPT;
	if (f->len && memchr(f->p, 0, f->len))
		return -KL_ECORRUPT;
	s = kl_malloc(f->len + 1);
	if (!s)
		return -ENOMEM;
	if (f->len)
		memcpy(s, f->p, f->len);
	s[f->len] = 0;
	*ret = s;
	return 0;
}

int kl_pb_get_u64(const struct kl_pb_field *f, uint64_t *ret)
{
	if (f->wire != KL_PB_VARINT)
		return -KL_ECORRUPT;
	*ret = f->v;
	return 0;
}

int kl_pb_get_u32(const struct kl_pb_field *f, uint32_t *ret)
{
	if (f->wire != KL_PB_VARINT || f->v > UINT32_MAX)
		return -KL_ECORRUPT;
	*ret = (uint32_t)f->v;
	return 0;
}

int kl_pb_get_s64(const struct kl_pb_field *f, int64_t *ret)
{
	if (f->wire != KL_PB_VARINT)
		return -KL_ECORRUPT;
	*ret = kl_pb_unzigzag(f->v);
	return 0;
}

int kl_pb_get_s32(const struct kl_pb_field *f, int32_t *ret)
{
	int64_t v;

	if (f->wire != KL_PB_VARINT)
		return -KL_ECORRUPT;
	v = kl_pb_unzigzag(f->v);
	if (v < INT32_MIN || v > INT32_MAX)
		return -KL_ECORRUPT;
	*ret = (int32_t)v;
	return 0;
}

int kl_pb_get_bool(const struct kl_pb_field *f, bool *ret)
{
	if (f->wire != KL_PB_VARINT || f->v > 1)
		return -KL_ECORRUPT;
	*ret = f->v;
	return 0;
}

int kl_pb_get_id(const struct kl_pb_field *f, struct kl_id *ret)
{
	if (f->wire != KL_PB_LEN || f->len != KL_ID_LEN)
		return -KL_ECORRUPT;
	memcpy(ret->b, f->p, KL_ID_LEN);
	return 0;
}

int kl_pb_get_bytes(const struct kl_pb_field *f, uint8_t **ret, size_t *len_ret)
{
	uint8_t *p = NULL;

	if (f->wire != KL_PB_LEN)
		return -KL_ECORRUPT;
	if (f->len) {
		p = kl_memdup(f->p, f->len);
		if (!p)
			return -ENOMEM;
	}
	*ret = p;
	*len_ret = f->len;
	return 0;
}

int kl_pb_scan(const uint8_t *p, size_t n, struct kl_pb_scan *ret)
{
	struct kl_pb_reader rd = {p, n};
	struct kl_pb_field f;
	int r;

	memset(ret, 0, sizeof(*ret));
	while ((r = kl_pb_next(&rd, &f)) > 0) {
		if (f.num >= KL_PB_SCAN_FIELDS)
			continue;
		ret->count[f.num]++;
		if (f.num == 1 && f.wire == KL_PB_VARINT) {
			ret->v1 = f.v;
			ret->v1_varint = true;
		}
	}
	return r;
}

int kl_pb_check_version(const struct kl_pb_scan *s, uint32_t want)
{
	if (s->count[1] != 1 || !s->v1_varint || s->v1 == 0)
		return -KL_ECORRUPT;
	if (s->v1 > want)
		return -KL_EVERSION;
	if (s->v1 != want)
		return -KL_ECORRUPT;
	return 0;
}
