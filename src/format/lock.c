/*
 * Lock objects (locks/<id>): who holds the repository and since when.
 * They are advisory between cooperating keel processes; what makes
 * concurrent prune safe is described in docs/FORMAT.md section 7.
 */
#include "keel/format.h"
#include "format-internal.h"

enum {
	F_VERSION = 1,
	F_SESSION,
	F_KIND,
	F_HOST,
	F_USER,
	F_PID,
	F_CREATED_NS,
	F_REFRESHED_NS,
	F_COMMAND,
};

static bool lock_valid(const struct kl_lock_info *l)
{
	return l->kind >= KL_LOCK_SHARED && l->kind <= KL_LOCK_EXCLUSIVE &&
	       l->refreshed_ns >= l->created_ns;
}

void kl_lock_info_release(struct kl_lock_info *l)
{
	if (!l)
		return;
	kl_free(l->host);
	kl_free(l->user);
	kl_free(l->command);
	memset(l, 0, sizeof(*l));
}

int kl_lock_info_encode(const struct kl_lock_info *l, struct kl_buf *out)
{
	size_t start = out->len;
	int r;

	if (!lock_valid(l))
		return -EINVAL;
	r = kl_pb_put_uint(out, F_VERSION, KL_FORMAT_VERSION);
	if (r >= 0)
		r = kl_pb_put_bytes(out, F_SESSION, l->session.b, KL_ID_LEN);
	if (r >= 0)
		r = kl_pb_put_uint(out, F_KIND, l->kind);
	if (r >= 0)
		r = kl_pb_put_str(out, F_HOST, l->host);
	if (r >= 0)
		r = kl_pb_put_str(out, F_USER, l->user);
	if (r >= 0)
		r = kl_pb_put_uint_nz(out, F_PID, l->pid);
	if (r >= 0)
		r = kl_pb_put_sint_nz(out, F_CREATED_NS, l->created_ns);
	if (r >= 0)
		r = kl_pb_put_sint_nz(out, F_REFRESHED_NS, l->refreshed_ns);
	if (r >= 0)
		r = kl_pb_put_str(out, F_COMMAND, l->command);
	if (r < 0) {
		kl_buf_setlen(out, start);
		return r;
	}
	return 0;
}

static int lock_decode(const uint8_t *p, size_t n, struct kl_lock_info *l)
{
	struct kl_pb_reader rd = {p, n};
	struct kl_pb_field f;
	struct kl_pb_scan s;
	uint64_t seen = 0;
	int r;

	r = kl_pb_scan(p, n, &s);
	if (r < 0)
		return r;
	r = kl_pb_check_version(&s, KL_FORMAT_VERSION);
	if (r < 0)
		return r;
	while ((r = kl_pb_next(&rd, &f)) > 0) {
		if (f.num > F_COMMAND)
			continue;
		r = kl_pb_once(&seen, f.num);
		if (r < 0)
			return r;
		switch (f.num) {
		case F_SESSION:
			r = kl_pb_get_id(&f, &l->session);
			break;
		case F_KIND:
			r = kl_pb_get_u32(&f, &l->kind);
			break;
		case F_HOST:
			r = kl_pb_strdup(&f, &l->host);
			break;
		case F_USER:
			r = kl_pb_strdup(&f, &l->user);
			break;
		case F_PID:
			r = kl_pb_get_u32(&f, &l->pid);
			break;
		case F_CREATED_NS:
			r = kl_pb_get_s64(&f, &l->created_ns);
			break;
		case F_REFRESHED_NS:
			r = kl_pb_get_s64(&f, &l->refreshed_ns);
			break;
		case F_COMMAND:
			r = kl_pb_strdup(&f, &l->command);
			break;
		default:
			break; /* the version was checked by the scan */
		}
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	if (!(seen & (1u << F_SESSION)) || !lock_valid(l))
		return -KL_ECORRUPT;
	return 0;
}

int kl_lock_info_decode(const uint8_t *p, size_t n, struct kl_lock_info *ret)
{
	struct kl_lock_info l = {0};
	int r;

	memset(ret, 0, sizeof(*ret));
	r = lock_decode(p, n, &l);
	if (r < 0) {
		kl_lock_info_release(&l);
		return r;
	}
	*ret = l;
	return 0;
}
