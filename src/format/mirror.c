/*
 * The state keel mirror keeps in a copy of a repository (mirror/<id>): a
 * plain protobuf MirrorState, keyless, so that a mirror that never holds
 * the key can read and write it (docs/MIRROR.md, docs/FORMAT.md § 11).
 */
#include "keel/format.h"
#include "format-internal.h"

enum {
	F_VERSION = 1,
	F_TIME_NS,
	F_LISTED_NS,
	F_COMPLETE_NS,
	F_COMPLETE_LISTED_NS,
	F_MISSING,
	F_LOCK_MODE,
	F_LOCK_DAYS,
};

enum {
	F_M_TYPE = 1,
	F_M_ID,
	F_M_SINCE_NS,
};

#define MIRROR_STATE_VERSION 1
#define KL_PB_MIN_MISSING 38 /* tag, len, type (2), id (34) */

void kl_mirror_state_release(struct kl_mirror_state *s)
{
	if (!s)
		return;
	kl_free(s->missing);
	memset(s, 0, sizeof(*s));
}

static bool missing_valid(const struct kl_mirror_missing *m)
{
	return m->type >= KL_MIRROR_TYPE_MIN && m->type <= KL_MIRROR_TYPE_MAX;
}

static int missing_encode(const struct kl_mirror_missing *m, struct kl_buf *out)
{
	_cleanup_buf_ struct kl_buf sub = KL_BUF_INIT(256);
	int r;

	r = kl_pb_put_uint(&sub, F_M_TYPE, m->type);
	if (r >= 0)
		r = kl_pb_put_bytes(&sub, F_M_ID, m->id.b, KL_ID_LEN);
	if (r >= 0)
		r = kl_pb_put_sint_nz(&sub, F_M_SINCE_NS, m->since_ns);
	if (r >= 0)
		r = kl_pb_put_bytes(out, F_MISSING, sub.data, sub.len);
	return r;
}

/* a mode needs its days and days their mode, as in Config */
static bool lock_valid(const struct kl_mirror_state *s)
{
	if (s->lock_mode > KL_LOCK_COMPLIANCE || s->lock_days > KL_LOCK_DAYS_MAX)
		return false;
	return (s->lock_mode == KL_LOCK_NONE) == (s->lock_days == 0);
}

int kl_mirror_state_encode(const struct kl_mirror_state *s, struct kl_buf *out)
{
	size_t start = out->len;
	int r;

	if (s->n_missing > KL_MIRROR_MAX_MISSING)
		return -EINVAL;
	for (size_t i = 0; i < s->n_missing; i++)
		if (!missing_valid(&s->missing[i]))
			return -EINVAL;
	if (!lock_valid(s))
		return -EINVAL;
	r = kl_pb_put_uint(out, F_VERSION, MIRROR_STATE_VERSION);
	if (r >= 0)
		r = kl_pb_put_sint_nz(out, F_TIME_NS, s->time_ns);
	if (r >= 0)
		r = kl_pb_put_sint_nz(out, F_LISTED_NS, s->listed_ns);
	if (r >= 0)
		r = kl_pb_put_sint_nz(out, F_COMPLETE_NS, s->complete_ns);
	if (r >= 0)
		r = kl_pb_put_sint_nz(out, F_COMPLETE_LISTED_NS, s->complete_listed_ns);
	for (size_t i = 0; r >= 0 && i < s->n_missing; i++)
		r = missing_encode(&s->missing[i], out);
	if (r >= 0)
		r = kl_pb_put_uint_nz(out, F_LOCK_MODE, s->lock_mode);
	if (r >= 0)
		r = kl_pb_put_uint_nz(out, F_LOCK_DAYS, s->lock_days);
	if (r < 0) {
		kl_buf_setlen(out, start);
		return r;
	}
	return 0;
}

static int missing_decode(const uint8_t *p, size_t n, struct kl_mirror_missing *m)
{
	struct kl_pb_reader rd = {p, n};
	struct kl_pb_field f;
	uint64_t seen = 0;
	int r;

	memset(m, 0, sizeof(*m));
	while ((r = kl_pb_next(&rd, &f)) > 0) {
		if (f.num > F_M_SINCE_NS)
			continue;
		r = kl_pb_once(&seen, f.num);
		if (r < 0)
			return r;
		switch (f.num) {
		case F_M_TYPE:
			r = kl_pb_get_u32(&f, &m->type);
			break;
		case F_M_ID:
			r = kl_pb_get_id(&f, &m->id);
			break;
		case F_M_SINCE_NS:
			r = kl_pb_get_s64(&f, &m->since_ns);
			break;
		default:
			break;
		}
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	if (!(seen & (1u << F_M_ID)) || !missing_valid(m))
		return -KL_ECORRUPT;
	return 0;
}

static int state_field(const struct kl_pb_field *f, struct kl_mirror_state *s)
{
	switch (f->num) {
	case F_TIME_NS:
		return kl_pb_get_s64(f, &s->time_ns);
	case F_LISTED_NS:
		return kl_pb_get_s64(f, &s->listed_ns);
	case F_COMPLETE_NS:
		return kl_pb_get_s64(f, &s->complete_ns);
	case F_COMPLETE_LISTED_NS:
		return kl_pb_get_s64(f, &s->complete_listed_ns);
	case F_MISSING:
		if (f->wire != KL_PB_LEN)
			return -KL_ECORRUPT;
		return missing_decode(f->p, f->len, &s->missing[s->n_missing++]);
	case F_LOCK_MODE:
		return kl_pb_get_u32(f, &s->lock_mode);
	case F_LOCK_DAYS:
		return kl_pb_get_u32(f, &s->lock_days);
	default:
		return 0; /* the version was checked by the scan */
	}
}

static int state_decode(const uint8_t *p, size_t n, struct kl_mirror_state *s)
{
	struct kl_pb_reader rd = {p, n};
	struct kl_pb_field f;
	struct kl_pb_scan scan;
	uint64_t seen = 0;
	size_t want;
	int r;

	r = kl_pb_scan(p, n, &scan);
	if (r < 0)
		return r;
	r = kl_pb_check_version(&scan, MIRROR_STATE_VERSION);
	if (r < 0)
		return r;
	want = scan.count[F_MISSING];
	if (want > KL_MIRROR_MAX_MISSING || want > n / KL_PB_MIN_MISSING)
		return -KL_ECORRUPT;
	if (want) {
		s->missing = kl_calloc(want, sizeof(*s->missing));
		if (!s->missing)
			return -ENOMEM;
	}
	while ((r = kl_pb_next(&rd, &f)) > 0) {
		if (f.num > F_LOCK_DAYS)
			continue;
		if (f.num != F_MISSING) {
			r = kl_pb_once(&seen, f.num);
			if (r < 0)
				return r;
		}
		r = state_field(&f, s);
		if (r < 0)
			return r;
	}
	if (r >= 0 && !lock_valid(s))
		return -KL_ECORRUPT;
	return r;
}

int kl_mirror_state_decode(const uint8_t *p, size_t n, struct kl_mirror_state *ret)
{
	struct kl_mirror_state s = {0};
	int r;

	memset(ret, 0, sizeof(*ret));
	r = state_decode(p, n, &s);
	if (r < 0) {
		kl_mirror_state_release(&s);
		return r;
	}
	*ret = s;
	return 0;
}
