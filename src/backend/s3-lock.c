/*
 * Object Lock on the S3 backend: preparing a bucket for it, the mode and
 * retention every PUT carries from then on, and the retention an object
 * is under.
 */
#include "s3-internal.h"

static struct s3 *as_s3(struct kl_backend *b)
{
	b = kl_backend_unwrap(b); /* under the metadata cache */
	return b && b->ops && !strcmp(b->ops->scheme, "s3") ? (struct s3 *)b : NULL;
}

/*
 * Reached through kl_backend_prepare_object_lock() (backend.h). Creates a
 * missing bucket with Object Lock enabled (which turns on versioning);
 * for an existing one asks GetObjectLockConfiguration, and a bucket
 * without Object Lock is -KL_EUSAGE: S3 cannot turn it on later, so the
 * repository needs another bucket.
 */
int kl_s3_prepare_object_lock_(struct kl_backend *b)
{
	_cleanup_buf_ struct kl_buf body = KL_BUF_INIT(64u << 10);
	struct s3 *s = (struct s3 *)b;
	struct kl_s3_lock_config lc;
	struct s3_req q;
	int r;

	r = kl_s3_head_(s, NULL, &q);
	if (r < 0)
		return r;
	if (q.status == 404)
		return kl_s3_make_bucket_(s, true);
	if (q.status != 200)
		return kl_s3_http_error_(s, &q, s->loc.bucket);
	memset(&q, 0, sizeof(q));
	q.method = "GET";
	q.query = "object-lock";
	q.out = &body;
	r = kl_s3_request_(s, &q);
	kl_s3_req_release_(&q);
	if (r < 0)
		return r == -E2BIG ? -KL_EREMOTE : r;
	if (q.status == 404 ||
	    (q.status == 200 && kl_s3_lock_config_parse(body.data, body.len, &lc) >= 0 &&
	     !lc.enabled)) {
		return kl_backend_fail(
			&s->b, -KL_EUSAGE,
			"bucket '%s' does not have Object Lock enabled, and it cannot be "
			"turned on later: use a new bucket (keel init creates it with "
			"Object Lock)",
			s->loc.bucket);
	}
	if (q.status != 200)
		return kl_s3_http_error_(s, &q, s->loc.bucket);
	if (!lc.enabled) {
		return kl_backend_fail(&s->b, -KL_EREMOTE,
				       "bucket '%s': the Object Lock configuration is unreadable",
				       s->loc.bucket);
	}
	return 0;
}

/*
 * Reached through kl_backend_set_object_lock(), which checked mode and
 * days: each PUT from now on carries x-amz-object-lock-mode (GOVERNANCE
 * or COMPLIANCE) and x-amz-object-lock-retain-until-date (now + days).
 * Lock files (KL_OBJ_LOCK) and mirror states (KL_OBJ_MIRROR) are never
 * locked: they must go when an operation ends or the next run replaces them.
 * With a mode, del() removes an object's version for
 * good, and refuses with -KL_EOBJLOCKED, before asking the server, an
 * object whose retention has not ended (or that has a legal hold); the
 * server would refuse it too (403).
 */
void kl_s3_set_object_lock_(struct kl_backend *b, enum kl_lock_mode mode, uint32_t days)
{
	struct s3 *s = (struct s3 *)b;

	s->lock_mode = mode;
	s->lock_days = days;
}

int kl_backend_s3_retain_until(struct kl_backend *b, enum kl_obj_type t, const char *name,
			       int64_t *ret_ns)
{
	struct s3 *s = as_s3(b);
	char key[KL_S3_KEY_MAX + 1];
	struct s3_req q;
	int r;

	if (!s)
		return -EOPNOTSUPP;
	r = kl_s3_obj_key_(s, t, name, key, sizeof(key));
	if (r < 0)
		return r;
	r = kl_s3_head_(s, key, &q);
	if (r < 0)
		return r;
	if (q.status != 200)
		return kl_s3_http_error_(s, &q, name ? name : "config");
	*ret_ns = q.legal_hold ? INT64_MAX : q.retain_until_ns;
	return 0;
}
