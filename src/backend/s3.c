/*
 * The S3 backend: a repository below a prefix of a bucket on any
 * S3-compatible service. Keys mirror the local layout (docs/FORMAT.md):
 * PREFIX/config, PREFIX/keys/<id>, PREFIX/snapshots/<id>, PREFIX/index/<id>,
 * PREFIX/data/<xx>/<id>, PREFIX/locks/<id>.
 *
 * What S3 gives us and how we use it:
 * - A PUT is atomic: readers see the whole object or none, so nothing is
 *   ever half-written. Every PUT carries Content-MD5 (the server refuses a
 *   damaged body with BadDigest, and we send it again) and the real
 *   SHA-256 of the body in the signature.
 * - "Never replace" is If-None-Match: * (412 when the key exists), except
 *   for config. When an earlier attempt of the same PUT may have landed
 *   (its answer was lost), a 412 is checked against the ETag, which for a
 *   single-part PUT is the body's MD5.
 * - Lists are ListObjectsV2 pages, followed by continuation token; a page
 *   is read whole before the callback runs, so a callback may make
 *   requests of its own.
 * - Ranged GETs read single blobs out of packs; the length that comes back
 *   is checked against the length asked for.
 * - With Object Lock (kl_backend_set_object_lock) every PUT but lock
 *   files carries a retention date; del() leaves an object under
 *   retention alone (-KL_EOBJLOCKED) rather than hide it behind a delete
 *   marker, and otherwise deletes its version, which frees the space,
 *   and then any older version that becomes the object (one each).
 *
 * Settings come from the environment (docs/S3.md).
 */
#include <stdio.h>
#include <time.h>

#include "s3-internal.h"

/* ---- keys -------------------------------------------------------------- */

int kl_s3_obj_key_(const struct s3 *s, enum kl_obj_type t, const char *name, char *out, size_t n)
{
	const char *p = s->loc.prefix, *sep = *p ? "/" : "";
	int w;

	if (t == KL_OBJ_CONFIG)
		w = snprintf(out, n, "%s%sconfig", p, sep);
	else if (!name || !*name || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	else if (t == KL_OBJ_DATA)
		w = strlen(name) < 2 ? -1
				     : snprintf(out, n, "%s%sdata/%.2s/%s", p, sep, name, name);
	else if ((unsigned)t < KL_OBJ_TYPES)
		w = snprintf(out, n, "%s%s%s/%s", p, sep, kl_obj_type_name(t), name);
	else
		return -EINVAL;
	if (w < 0 || (size_t)w >= n || (size_t)w > KL_S3_KEY_MAX)
		return -EINVAL;
	return 0;
}

/* ---- head / stat ---------------------------------------------------------- */

int kl_s3_head_(struct s3 *s, const char *key, struct s3_req *q)
{
	struct s3_req g = {0};
	int r;

	memset(q, 0, sizeof(*q));
	q->method = "HEAD";
	q->key = key;
	r = kl_s3_request_(s, q);
	kl_s3_req_release_(q);
	if (r < 0 || (q->status != 400 && q->status != 403))
		return r;
	/*
	 * The answer to a HEAD has no body, so no error code: ask again with
	 * a GET of one byte to learn why (InvalidAccessKeyId or
	 * SignatureDoesNotMatch say which half of the key pair is wrong).
	 */
	g.method = "GET";
	g.key = key;
	g.range = key != NULL;
	g.len = 1;
	if (kl_s3_request_(s, &g) >= 0 && g.status == q->status)
		q->err = g.err;
	kl_s3_req_release_(&g);
	return r;
}

/*
 * A HEAD's 404 carries no body, so a missing bucket looks like a missing
 * object. Ask about the bucket when it matters (opening a repository).
 */
static void explain_missing(struct s3 *s)
{
	struct s3_req q;

	if (kl_s3_head_(s, NULL, &q) < 0)
		return;
	if (q.status == 404)
		kl_backend_fail(&s->b, -ENOENT, "bucket '%s' does not exist at %s", s->loc.bucket,
				s->base_url);
	else if (q.status != 200)
		kl_s3_http_error_(s, &q, s->loc.bucket);
}

int kl_s3_stat_(struct kl_backend *b, enum kl_obj_type t, const char *name, uint64_t *size_ret)
{
	struct s3 *s = (struct s3 *)b;
	char key[KL_S3_KEY_MAX + 1];
	struct s3_req q;
	int r;

	r = kl_s3_obj_key_(s, t, name, key, sizeof(key));
	if (r < 0)
		return r;
	r = kl_s3_head_(s, key, &q);
	if (r < 0)
		return r;
	if (q.status == 200 && q.has_length) {
		*size_ret = q.length;
		return 0;
	}
	if (q.status == 200)
		return -KL_EREMOTE; /* no Content-Length */
	if (q.status == 404 && t == KL_OBJ_CONFIG)
		explain_missing(s);
	return kl_s3_http_error_(s, &q, name ? name : "config");
}

/* ---- get ------------------------------------------------------------------ */

static int s3_get(struct kl_backend *b, enum kl_obj_type t, const char *name, uint64_t off,
		  uint64_t len, struct kl_buf *out)
{
	struct s3 *s = (struct s3 *)b;
	char key[KL_S3_KEY_MAX + 1];
	struct s3_req q = {0};
	size_t base = out->len;
	uint64_t got;
	int r;

	r = kl_s3_obj_key_(s, t, name, key, sizeof(key));
	if (r < 0)
		return r;
	if (len > SIZE_MAX / 2 || off > UINT64_MAX - len)
		return -E2BIG;
	if (t == KL_OBJ_DATA && len > 0 && len <= s->ra_window / 2) {
		r = kl_s3_ra_get_(s, name, key, off, len, out);
		if (r != 0)
			return r < 0 ? r : 0;
	}
	q.method = "GET";
	q.key = key;
	q.range = off > 0 || len > 0;
	q.off = off;
	q.len = len;
	q.out = out;
	r = kl_s3_request_(s, &q);
	kl_s3_req_release_(&q);
	if (r < 0)
		return r;
	if (q.status == 416 && len == 0) {
		/* bytes=off- with off == size: nothing to read, which is fine */
		uint64_t size;

		r = kl_s3_stat_(b, t, name, &size);
		if (r < 0)
			return r;
		return off == size ? 0 : -KL_ECORRUPT;
	}
	if (q.status != 200 && q.status != 206)
		return kl_s3_http_error_(s, &q, name ? name : "config");
	got = out->len - base;
	if (len && got != len) {
		/* a 206 shorter than asked: the object is shorter than its index says */
		kl_buf_setlen(out, base);
		return -KL_ECORRUPT;
	}
	if (!len && q.status == 200 && q.has_length && got != q.length - KL_MIN(off, q.length)) {
		kl_buf_setlen(out, base);
		return -KL_EREMOTE;
	}
	return 0;
}

/* ---- put ------------------------------------------------------------------ */

/*
 * now + lock_days, to the second. The date comes from this machine's
 * clock; a clock far behind would shorten the protection, which is why
 * a wrong clock (RequestTimeTooSkewed) is an error, never ignored.
 */
static int retain_until_date(const struct s3 *s, char out[32])
{
	time_t t = time(NULL) + (time_t)s->lock_days * KL_SEC_PER_DAY;
	struct tm tm;

	if (!gmtime_r(&t, &tm) || !strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
		return -EINVAL;
	return 0;
}

static int s3_put(struct kl_backend *b, enum kl_obj_type t, const char *name, const void *data,
		  size_t len)
{
	struct s3 *s = (struct s3 *)b;
	char key[KL_S3_KEY_MAX + 1], md5[33], until[32];
	struct s3_req q = {0}, h;
	int r;

	r = kl_s3_obj_key_(s, t, name, key, sizeof(key));
	if (r < 0)
		return r;
	/*
	 * Lock files must go when their operation ends, and a mirror's state
	 * is replaced by every run: never under retention.
	 */
	if (s->lock_mode != KL_LOCK_NONE && t != KL_OBJ_LOCK && t != KL_OBJ_MIRROR) {
		r = retain_until_date(s, until);
		if (r < 0)
			return r;
		q.lock_mode = s->lock_mode == KL_LOCK_COMPLIANCE ? "COMPLIANCE" : "GOVERNANCE";
		q.lock_until = until;
	}
	q.method = "PUT";
	q.key = key;
	q.body = data;
	q.body_len = len;
	q.if_none_match = t != KL_OBJ_CONFIG;
	q.storage_class = t == KL_OBJ_DATA ? s->storage_class : NULL;
	r = kl_s3_request_(s, &q);
	kl_s3_req_release_(&q);
	if (r < 0)
		return r;
	if (q.status == 200 || q.status == 201 || q.status == 204)
		return 0;
	if (q.status != 412 || !q.maybe_applied)
		return kl_s3_http_error_(s, &q, name ? name : "config");
	/* 412 after a lost answer: the object may be our own earlier attempt */
	r = kl_s3_head_(s, key, &h);
	if (r < 0)
		return r;
	kl_s3_md5_hex(data, len, md5);
	if (h.status == 200 && h.has_length && h.length == len && !strcmp(h.etag, md5))
		return 0;
	return -EEXIST;
}

/* ---- del ------------------------------------------------------------------ */

static bool under_retention(const struct s3_req *h)
{
	return h->legal_hold || h->retain_until_ns > kl_time_now_ns();
}

/* One DELETE of key: of the version h names in a repository with Object Lock. */
static int del_once(struct s3 *s, const char *key, const char *name, const struct s3_req *h)
{
	_cleanup_buf_ struct kl_buf query = KL_BUF_INIT(512);
	struct s3_req q = {0};
	int r;

	/* in a repository with Object Lock, delete the version itself, to free its space */
	if (s->lock_mode != KL_LOCK_NONE && h->version_id[0]) {
		r = kl_buf_addstr(&query, "versionId=");
		if (r >= 0)
			r = kl_s3_uri_encode(&query, h->version_id, strlen(h->version_id), false);
		if (r < 0)
			return r;
		q.query = (const char *)query.data;
	}
	q.method = "DELETE";
	q.key = key;
	r = kl_s3_request_(s, &q);
	kl_s3_req_release_(&q);
	if (r < 0)
		return r;
	if (q.status == 204 || q.status == 200 || q.status == 404)
		return 0;
	/* the server's own refusal ("forbidden by object lock") */
	if (q.status == 403 && !strcmp(q.err.code, "AccessDenied") && h->locked_mode)
		return -KL_EOBJLOCKED;
	return kl_s3_http_error_(s, &q, name ? name : "config");
}

/* versions of one key deleted at most: a store that keeps making them is refused */
#define DEL_VERSIONS_MAX 64

static int s3_del(struct kl_backend *b, enum kl_obj_type t, const char *name)
{
	struct s3 *s = (struct s3 *)b;
	char key[KL_S3_KEY_MAX + 1], gone[sizeof(((struct s3_req *)0)->version_id)];
	struct s3_req h;
	int r;

	r = kl_s3_obj_key_(s, t, name, key, sizeof(key));
	if (r < 0)
		return r;
	/* S3 deletes a missing key without complaint; the vtable promises -ENOENT */
	r = kl_s3_head_(s, key, &h);
	if (r < 0)
		return r;
	if (h.status != 200)
		return kl_s3_http_error_(s, &h, name ? name : "config");
	for (int i = 0;; i++) {
		/*
		 * A plain DELETE of a locked object "succeeds" in a versioned
		 * bucket: it hides the object behind a delete marker, and keel
		 * would lose sight of data the lock still keeps. So keel leaves
		 * it alone.
		 */
		if (under_retention(&h))
			return -KL_EOBJLOCKED;
		r = del_once(s, key, name, &h);
		if (r < 0 || s->lock_mode == KL_LOCK_NONE || !h.version_id[0])
			return r;
		/*
		 * An older version of the key becomes the object now: the same
		 * PUT twice (a retry, two writers) makes two versions where the
		 * store ignores If-None-Match, as Ceph RGW does. It goes too, or
		 * the object would be back, its space still used.
		 */
		snprintf(gone, sizeof(gone), "%s", h.version_id);
		r = kl_s3_head_(s, key, &h);
		if (r < 0)
			return r;
		if (h.status == 404 || !h.version_id[0] || !strcmp(h.version_id, gone))
			return 0;
		if (h.status != 200)
			return kl_s3_http_error_(s, &h, name ? name : "config");
		if (i == DEL_VERSIONS_MAX)
			return kl_backend_fail(&s->b, -KL_EREMOTE,
					       "'%s' still has versions after %d were deleted", key,
					       DEL_VERSIONS_MAX);
	}
}

/* ---- create --------------------------------------------------------------- */

int kl_s3_make_bucket_(struct s3 *s, bool lock)
{
	_cleanup_buf_ struct kl_buf body = KL_BUF_INIT(4096);
	struct s3_req q = {0};
	int r = 0;

	/* us-east-1 is the default and must not be named */
	if (strcmp(s->region, "us-east-1"))
		r = kl_buf_addf(&body,
				"<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/"
				"2006-03-01/\"><LocationConstraint>%s</LocationConstraint>"
				"</CreateBucketConfiguration>",
				s->region);
	if (r < 0)
		return r;
	q.method = "PUT";
	q.bucket_lock = lock;
	q.body = body.len ? body.data : NULL;
	q.body_len = body.len;
	r = kl_s3_request_(s, &q);
	kl_s3_req_release_(&q);
	if (r < 0)
		return r;
	if (q.status == 200 || (q.status == 409 && !strcmp(q.err.code, "BucketAlreadyOwnedByYou")))
		return 0;
	if (q.status == 409 || !strcmp(q.err.code, "InvalidLocationConstraint")) {
		return kl_backend_fail(
			&s->b, -KL_EREMOTE,
			"cannot create bucket '%s' in region '%s': %ld %s%s%s%s", s->loc.bucket,
			s->region, q.status, q.err.code, q.err.message[0] ? ": " : "",
			q.err.message,
			q.status == 409 ? "" : " (set AWS_REGION to the server's region)");
	}
	return kl_s3_http_error_(s, &q, s->loc.bucket);
}

static int s3_create(struct kl_backend *b)
{
	struct s3 *s = (struct s3 *)b;
	char key[KL_S3_KEY_MAX + 1];
	struct s3_req q;
	int r;

	r = kl_s3_head_(s, NULL, &q);
	if (r < 0)
		return r;
	if (q.status == 404)
		r = kl_s3_make_bucket_(s, false);
	else if (q.status != 200)
		r = kl_s3_http_error_(s, &q, s->loc.bucket);
	if (r < 0)
		return r;
	r = kl_s3_obj_key_(s, KL_OBJ_CONFIG, NULL, key, sizeof(key));
	if (r >= 0)
		r = kl_s3_head_(s, key, &q);
	if (r < 0)
		return r;
	if (q.status == 200)
		return -EEXIST;
	return q.status == 404 ? 0 : kl_s3_http_error_(s, &q, "config");
}

/* ---- open and free -------------------------------------------------------- */

static void s3_free(struct kl_backend *b)
{
	struct s3 *s = (struct s3 *)b;

	kl_s3_pool_free_(s);
	kl_s3_ra_free_(s);
	pthread_mutex_destroy(&s->ra.lock);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cv);
	kl_s3_location_release(&s->loc);
	kl_s3_creds_release(&s->creds);
	kl_free(s->region);
	kl_free(s->ca_file);
	kl_free(s->storage_class);
	kl_free(s->base_url);
	kl_free(s->host_header);
	kl_free(s->path_base);
	kl_free(s->endpoint);
	kl_free(s->creds_source);
	kl_free(s->b.location);
	kl_free(s);
}

static const struct kl_backend_ops s3_ops = {
	.scheme = "s3",
	.list = kl_s3_list_,
	.get = s3_get,
	.put = s3_put,
	.del = s3_del,
	.stat = kl_s3_stat_,
	.create = s3_create,
	.prepare_object_lock = kl_s3_prepare_object_lock_,
	.set_object_lock = kl_s3_set_object_lock_,
	.list_mtime = kl_s3_list_mtime_,
	.free = s3_free,
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

static void curl_init(void)
{
	curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int kl_backend_s3_open(const char *location, struct kl_err *err, struct kl_backend **ret)
{
	struct kl_s3_conf conf = {.virtual_host = -1};
	char *conf_path = NULL;
	struct s3 *s;
	int r;

	if (strncmp(location, "s3:", 3))
		return -KL_EUSAGE;
	pthread_once(&curl_once, curl_init);
	if (curl_init_result != CURLE_OK)
		return -ENOMEM;
	s = kl_calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->ra.lock, NULL);
	pthread_cond_init(&s->cv, NULL);
	s->b.ops = &s3_ops;
	s->b.location = kl_strdup(location);
	if (!s->b.location) {
		s3_free(&s->b);
		return -ENOMEM;
	}
	r = kl_s3_location_parse(location + 3, &s->loc);
	if (r == -KL_EUSAGE)
		kl_backend_fail(
			&s->b, r,
			"'%s' is not an S3 location: use s3:https://HOST[:PORT]/BUCKET[/PREFIX]",
			location);
	if (r >= 0) {
		struct kl_err cerr = {0};

		r = kl_s3_conf_load(location, &conf, &conf_path, &cerr);
		if (r < 0 && cerr.msg[0])
			kl_backend_fail(&s->b, r, "%s", cerr.msg);
	}
	if (r >= 0)
		r = kl_s3_load_settings_(s, &conf);
	if (r >= 0)
		r = kl_s3_load_creds_(s, &conf, conf_path);
	kl_s3_conf_release(&conf);
	kl_free(conf_path);
	if (r < 0) {
		kl_backend_take_err(&s->b, err);
		s3_free(&s->b);
		return r;
	}
	*ret = &s->b;
	return 0;
}
