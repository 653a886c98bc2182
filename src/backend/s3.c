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
 *   marker, and otherwise deletes its version, which frees the space.
 *
 * Settings come from the environment (docs/S3.md).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "keel/crypto.h"
#include "keel/fs.h"
#include "s3-internal.h"

#define LIST_MAX (16u << 20) /* bytes of one ListObjectsV2 page */

/* ---- keys -------------------------------------------------------------- */

static int obj_key(const struct s3 *s, enum kl_obj_type t, const char *name, char *out, size_t n)
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

static bool is_object_name(const char *n)
{
	return *n && n[0] != '.' && !strstr(n, ".tmp.") && !strchr(n, '/');
}

/* ---- head / stat ---------------------------------------------------------- */

static int head(struct s3 *s, const char *key, struct s3_req *q)
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

	if (head(s, NULL, &q) < 0)
		return;
	if (q.status == 404)
		kl_backend_fail(&s->b, -ENOENT, "bucket '%s' does not exist at %s", s->loc.bucket,
				s->base_url);
	else if (q.status != 200)
		kl_s3_http_error_(s, &q, s->loc.bucket);
}

static int s3_stat(struct kl_backend *b, enum kl_obj_type t, const char *name, uint64_t *size_ret)
{
	struct s3 *s = (struct s3 *)b;
	char key[KL_S3_KEY_MAX + 1];
	struct s3_req q;
	int r;

	r = obj_key(s, t, name, key, sizeof(key));
	if (r < 0)
		return r;
	r = head(s, key, &q);
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

/* ---- list ----------------------------------------------------------------- */

static int list_page(struct s3 *s, const char *prefix, const char *token, struct kl_s3_list *page)
{
	_cleanup_buf_ struct kl_buf query = KL_BUF_INIT(16384);
	_cleanup_buf_ struct kl_buf body = KL_BUF_INIT(LIST_MAX);
	struct s3_req q = {0};
	int r = 0;

	/* parameters in canonical (sorted) order */
	if (token) {
		r = kl_buf_addstr(&query, "continuation-token=");
		if (r >= 0)
			r = kl_s3_uri_encode(&query, token, strlen(token), false);
		if (r >= 0)
			r = kl_buf_addch(&query, '&');
	}
	if (r >= 0)
		r = kl_buf_addf(&query, "list-type=2&max-keys=%u&prefix=", s->max_keys);
	if (r >= 0)
		r = kl_s3_uri_encode(&query, prefix, strlen(prefix), false);
	if (r < 0)
		return r;
	q.method = "GET";
	q.query = (const char *)query.data;
	q.out = &body;
	r = kl_s3_request_(s, &q);
	if (r >= 0 && q.status != 200)
		r = kl_s3_http_error_(s, &q, prefix);
	kl_s3_req_release_(&q);
	if (r < 0)
		return r == -E2BIG ? -KL_EREMOTE : r;
	r = kl_s3_list_parse(body.data, body.len, page);
	if (r == -KL_ECORRUPT) {
		return kl_backend_fail(
			&s->b, -KL_EREMOTE,
			"listing '%s': the server's answer is not a valid ListObjectsV2 page",
			prefix);
	}
	return r;
}

/* one of the two callbacks: the vtable's, or one with the mtime */
struct list_cb {
	kl_list_cb plain;
	kl_list_mtime_cb with_mtime;
	void *ud;
};

static int call_list_cb(const struct list_cb *c, const char *name, uint64_t size, int64_t mtime)
{
	return c->plain ? c->plain(name, size, c->ud) : c->with_mtime(name, size, mtime, c->ud);
}

static int list_objects(struct kl_backend *b, enum kl_obj_type t, const struct list_cb *cbs)
{
	struct s3 *s = (struct s3 *)b;
	_cleanup_free_ char *token = NULL;
	char prefix[KL_S3_KEY_MAX + 1];
	size_t pl;
	int r;

	if (t == KL_OBJ_CONFIG) {
		uint64_t size;

		r = s3_stat(b, t, NULL, &size);
		if (r == -ENOENT)
			return 0;
		return r < 0 ? r : call_list_cb(cbs, "config", size, 0);
	}
	if ((unsigned)t >= KL_OBJ_TYPES)
		return -EINVAL;
	pl = (size_t)snprintf(prefix, sizeof(prefix), "%s%s%s/", s->loc.prefix,
			      *s->loc.prefix ? "/" : "", kl_obj_type_name(t));
	if (pl >= sizeof(prefix))
		return -EINVAL;
	for (;;) {
		struct kl_s3_list page;

		r = list_page(s, prefix, token, &page);
		if (r < 0)
			return r;
		for (size_t i = 0; i < page.n && r >= 0; i++) {
			const char *k = page.objs[i].key, *name;

			if (strncmp(k, prefix, pl))
				continue; /* not ours: the server ignored the prefix */
			name = k + pl;
			if (t == KL_OBJ_DATA) {
				/* data/<xx>/<name>, xx the name's first two characters */
				if (strlen(name) < 5 || name[2] != '/' ||
				    strncmp(name, name + 3, 2))
					continue;
				name += 3;
			}
			if (!is_object_name(name))
				continue;
			r = call_list_cb(cbs, name, page.objs[i].size, page.objs[i].mtime_ns);
		}
		if (r >= 0 && page.truncated) {
			/* a page without a way on, or the same way again, would never end */
			if (!page.next_token || (token && !strcmp(token, page.next_token))) {
				r = kl_backend_fail(&s->b, -KL_EREMOTE,
						    "listing '%s': the server says there is more "
						    "but gives no new continuation token",
						    prefix);
			} else {
				kl_free(token);
				token = KL_TAKE_PTR(page.next_token);
			}
		}
		bool more = r >= 0 && page.truncated;

		kl_s3_list_release(&page);
		if (!more)
			return r < 0 ? r : 0;
	}
}

static int s3_list(struct kl_backend *b, enum kl_obj_type t, kl_list_cb cb, void *ud)
{
	return list_objects(b, t, &(struct list_cb){.plain = cb, .ud = ud});
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

	r = obj_key(s, t, name, key, sizeof(key));
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

		r = s3_stat(b, t, name, &size);
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

	r = obj_key(s, t, name, key, sizeof(key));
	if (r < 0)
		return r;
	/* lock files must go when their operation ends: never under retention */
	if (s->lock_mode != KL_LOCK_NONE && t != KL_OBJ_LOCK) {
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
	r = head(s, key, &h);
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

static int s3_del(struct kl_backend *b, enum kl_obj_type t, const char *name)
{
	struct s3 *s = (struct s3 *)b;
	_cleanup_buf_ struct kl_buf query = KL_BUF_INIT(512);
	char key[KL_S3_KEY_MAX + 1];
	struct s3_req h, q = {0};
	int r;

	r = obj_key(s, t, name, key, sizeof(key));
	if (r < 0)
		return r;
	/* S3 deletes a missing key without complaint; the vtable promises -ENOENT */
	r = head(s, key, &h);
	if (r < 0)
		return r;
	if (h.status != 200)
		return kl_s3_http_error_(s, &h, name ? name : "config");
	/*
	 * A plain DELETE of a locked object "succeeds" in a versioned bucket:
	 * it hides the object behind a delete marker, and keel would lose
	 * sight of data the lock still keeps. So keel leaves it alone.
	 */
	if (under_retention(&h))
		return -KL_EOBJLOCKED;
	/* in a repository with Object Lock, delete the version itself, to free its space */
	if (s->lock_mode != KL_LOCK_NONE && h.version_id[0]) {
		r = kl_buf_addstr(&query, "versionId=");
		if (r >= 0)
			r = kl_s3_uri_encode(&query, h.version_id, strlen(h.version_id), false);
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
	if (q.status == 403 && !strcmp(q.err.code, "AccessDenied") && h.locked_mode)
		return -KL_EOBJLOCKED;
	return kl_s3_http_error_(s, &q, name ? name : "config");
}

/* ---- create --------------------------------------------------------------- */

static int make_bucket(struct s3 *s, bool lock)
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

	r = head(s, NULL, &q);
	if (r < 0)
		return r;
	if (q.status == 404)
		r = make_bucket(s, false);
	else if (q.status != 200)
		r = kl_s3_http_error_(s, &q, s->loc.bucket);
	if (r < 0)
		return r;
	r = obj_key(s, KL_OBJ_CONFIG, NULL, key, sizeof(key));
	if (r >= 0)
		r = head(s, key, &q);
	if (r < 0)
		return r;
	if (q.status == 200)
		return -EEXIST;
	return q.status == 404 ? 0 : kl_s3_http_error_(s, &q, "config");
}

/* ---- Object Lock ------------------------------------------------------ */

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
static int s3_prepare_object_lock(struct kl_backend *b)
{
	_cleanup_buf_ struct kl_buf body = KL_BUF_INIT(64u << 10);
	struct s3 *s = (struct s3 *)b;
	struct kl_s3_lock_config lc;
	struct s3_req q;
	int r;

	r = head(s, NULL, &q);
	if (r < 0)
		return r;
	if (q.status == 404)
		return make_bucket(s, true);
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
 * Lock files (KL_OBJ_LOCK) are never locked: they must go when an
 * operation ends. With a mode, del() removes an object's version for
 * good, and refuses with -KL_EOBJLOCKED, before asking the server, an
 * object whose retention has not ended (or that has a legal hold); the
 * server would refuse it too (403).
 */
static void s3_set_object_lock(struct kl_backend *b, enum kl_lock_mode mode, uint32_t days)
{
	struct s3 *s = (struct s3 *)b;

	s->lock_mode = mode;
	s->lock_days = days;
}

/* Reached through kl_backend_list_mtime(), on the S3 backend itself, not the cache. */
static int s3_list_mtime(struct kl_backend *b, enum kl_obj_type t, kl_list_mtime_cb cb,
			 void *userdata)
{
	return list_objects(b, t, &(struct list_cb){.with_mtime = cb, .ud = userdata});
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
	r = obj_key(s, t, name, key, sizeof(key));
	if (r < 0)
		return r;
	r = head(s, key, &q);
	if (r < 0)
		return r;
	if (q.status != 200)
		return kl_s3_http_error_(s, &q, name ? name : "config");
	*ret_ns = q.legal_hold ? INT64_MAX : q.retain_until_ns;
	return 0;
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
	.list = s3_list,
	.get = s3_get,
	.put = s3_put,
	.del = s3_del,
	.stat = s3_stat,
	.create = s3_create,
	.prepare_object_lock = s3_prepare_object_lock,
	.set_object_lock = s3_set_object_lock,
	.list_mtime = s3_list_mtime,
	.free = s3_free,
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

static void curl_init(void)
{
	curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static const char *env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

/* An unsigned setting from the environment; a bad value is a usage error, not ignored. */
static int env_uint(struct s3 *s, const char *name, unsigned min, unsigned max, unsigned *ret)
{
	const char *v = env(name);
	char *end;
	unsigned long x;

	if (!v)
		return 0;
	errno = 0;
	x = strtoul(v, &end, 10);
	if (errno || *end || v[0] == '-' || x < min || x > max) {
		return kl_backend_fail(&s->b, -KL_EUSAGE, "%s='%s' is not a number from %u to %u",
				       name, v, min, max);
	}
	*ret = (unsigned)x;
	return 0;
}

static int dup_env(const char *name, char **ret)
{
	const char *v = env(name);

	if (!v)
		return 0;
	*ret = kl_strdup(v);
	return *ret ? 0 : -ENOMEM;
}

static char *fmt_dup(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *fmt_dup(const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	return kl_strdup(tmp);
}

/*
 * The key pair, from the first of: AWS_ACCESS_KEY_ID and
 * AWS_SECRET_ACCESS_KEY (with AWS_SESSION_TOKEN), the most specific
 * section of keel's configuration file that has one, the AWS_PROFILE
 * (default: "default") profile of the shared credentials file.
 */
static int load_creds(struct s3 *s, struct kl_s3_conf *conf, const char *conf_path)
{
	_cleanup_buf_ struct kl_buf text = KL_BUF_INIT(1u << 20);
	_cleanup_free_ char *path = NULL;
	const char *ak = env("AWS_ACCESS_KEY_ID"), *sk = env("AWS_SECRET_ACCESS_KEY");
	const char *profile = env("AWS_PROFILE") ? env("AWS_PROFILE") : "default";
	const char *file = env("AWS_SHARED_CREDENTIALS_FILE"), *home = env("HOME");
	int r;

	if (ak && sk) {
		s->creds.access_key = kl_strdup(ak);
		s->creds.secret_key = kl_strdup(sk);
		if (!s->creds.access_key || !s->creds.secret_key)
			return -ENOMEM;
		r = dup_env("AWS_SESSION_TOKEN", &s->creds.token);
		if (r < 0)
			return r;
		s->creds_source = kl_strdup("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
	} else if (conf->creds.access_key) {
		s->creds = conf->creds;
		memset(&conf->creds, 0, sizeof(conf->creds));
		s->creds_source = fmt_dup("section [%s] (line %u) of %s", conf->creds_section,
					  conf->creds_line, conf_path);
	} else {
		if (!file && home) {
			size_t n = strlen(home) + 20;

			path = kl_malloc(n);
			if (!path)
				return -ENOMEM;
			snprintf(path, n, "%s/.aws/credentials", home);
			file = path;
		}
		r = file ? kl_fs_read_all(AT_FDCWD, file, text.max, &text) : -ENOENT;
		if (r >= 0) {
			r = kl_s3_creds_parse((const char *)text.data, text.len, profile,
					      &s->creds);
			kl_wipe(text.data, text.len);
		}
		if (r == -ENOMEM)
			return r;
		if (r < 0) {
			return kl_backend_fail(
				&s->b, -KL_EUSAGE,
				"no credentials: set AWS_ACCESS_KEY_ID and "
				"AWS_SECRET_ACCESS_KEY, add them to a section for this "
				"location in %s, or put profile '%s' into %s",
				conf_path ? conf_path : "~/.config/keel/config", profile,
				file ? file : "~/.aws/credentials");
		}
		s->creds_source = fmt_dup("profile '%s' of %s", profile, file);
	}
	if (!s->creds_source)
		return -ENOMEM;
	if (strlen(s->creds.secret_key) > KL_S3_SECRET_MAX || strchr(s->creds.access_key, '/') ||
	    strpbrk(s->creds.access_key, "\r\n") || strpbrk(s->creds.secret_key, "\r\n") ||
	    (s->creds.token && strpbrk(s->creds.token, "\r\n"))) {
		return kl_backend_fail(
			&s->b, -KL_EUSAGE,
			"the access key, secret key or session token from %s is malformed",
			s->creds_source);
	}
	return 0;
}

static bool dns_bucket(const char *b)
{
	for (const char *p = b; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
		      *p == '.'))
			return false;
	return true;
}

/* Each setting from the environment, else keel's configuration file, else its default. */
static int load_settings(struct s3 *s, const struct kl_s3_conf *conf)
{
	const char *region = env("AWS_REGION") ? env("AWS_REGION") : env("AWS_DEFAULT_REGION");
	const char *vh = env("KEEL_S3_VIRTUAL_HOST");
	const char *scheme = s->loc.https ? "https" : "http";
	const char *port = s->loc.port;
	unsigned timeout = 120, readahead_mb = 4;
	int r;

	if (!region)
		region = conf->region ? conf->region : "us-east-1";
	s->region = kl_strdup(region);
	if (!s->region)
		return -ENOMEM;
	for (const char *p = s->region; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-')) {
			return kl_backend_fail(&s->b, -KL_EUSAGE, "region '%s' is malformed",
					       s->region);
		}
	r = dup_env("KEEL_S3_CA_FILE", &s->ca_file);
	if (r >= 0 && !s->ca_file)
		r = dup_env("AWS_CA_BUNDLE", &s->ca_file);
	if (r >= 0 && !s->ca_file && conf->ca_file && !(s->ca_file = kl_strdup(conf->ca_file)))
		r = -ENOMEM;
	if (r >= 0)
		r = dup_env("KEEL_S3_STORAGE_CLASS", &s->storage_class);
	if (r >= 0 && !s->storage_class && conf->storage_class &&
	    !(s->storage_class = kl_strdup(conf->storage_class)))
		r = -ENOMEM;
	if (r < 0)
		return r;
	if (s->storage_class && strpbrk(s->storage_class, "\r\n")) {
		return kl_backend_fail(&s->b, -KL_EUSAGE, "KEEL_S3_STORAGE_CLASS is malformed");
	}
	s->virtual_host = vh ? strcmp(vh, "0") != 0 : conf->virtual_host == 1;
	s->debug = env("KEEL_S3_DEBUG") && strcmp(env("KEEL_S3_DEBUG"), "0");
	s->max_attempts = conf->retries ? conf->retries : 6;
	s->retry_delay_ms = 200;
	s->max_keys = 1000;
	s->max_conns = conf->connections ? conf->connections : 8;
	if (conf->timeout)
		timeout = conf->timeout;
	r = env_uint(s, "KEEL_S3_RETRIES", 1, 100, &s->max_attempts);
	if (r >= 0)
		r = env_uint(s, "KEEL_S3_RETRY_DELAY_MS", 0, 60000, &s->retry_delay_ms);
	if (r >= 0)
		r = env_uint(s, "KEEL_S3_LIST_MAX_KEYS", 1, 1000, &s->max_keys);
	if (r >= 0)
		r = env_uint(s, "KEEL_S3_CONNECTIONS", 1, 256, &s->max_conns);
	if (r >= 0)
		r = env_uint(s, "KEEL_S3_TIMEOUT", 1, 86400, &timeout);
	if (r >= 0)
		r = env_uint(s, "KEEL_S3_READAHEAD_MB", 0, 64, &readahead_mb);
	if (r < 0)
		return r;
	s->timeout_s = (long)timeout;
	s->ra_window = (size_t)readahead_mb << 20;

	if (s->virtual_host && !dns_bucket(s->loc.bucket)) {
		return kl_backend_fail(
			&s->b, -KL_EUSAGE,
			"bucket '%s' cannot be a host name (virtual-hosted addressing: "
			"KEEL_S3_VIRTUAL_HOST or 'addressing' in the configuration file)",
			s->loc.bucket);
	}
	{
		_cleanup_buf_ struct kl_buf host = KL_BUF_INIT(4096);
		_cleanup_buf_ struct kl_buf path = KL_BUF_INIT(4096);

		if (s->virtual_host)
			r = kl_buf_addf(&host, "%s.%s", s->loc.bucket, s->loc.host);
		else
			r = kl_buf_addstr(&host, s->loc.host);
		if (r >= 0 && port)
			r = kl_buf_addf(&host, ":%s", port);
		if (r >= 0 && !s->virtual_host) {
			r = kl_buf_addch(&path, '/');
			if (r >= 0)
				r = kl_s3_uri_encode(&path, s->loc.bucket, strlen(s->loc.bucket),
						     false);
		}
		if (r < 0)
			return r;
		s->host_header = kl_strdup((const char *)host.data);
		s->path_base = kl_strdup((const char *)path.data);
		s->base_url = kl_malloc(host.len + 16);
		s->endpoint = kl_malloc(host.len + path.len + 16);
		if (!s->host_header || !s->path_base || !s->base_url || !s->endpoint)
			return -ENOMEM;
		snprintf(s->base_url, host.len + 16, "%s://%s", scheme, (const char *)host.data);
		snprintf(s->endpoint, host.len + path.len + 16, "%s://%s%s", scheme,
			 (const char *)host.data, (const char *)path.data);
	}
	return 0;
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
		r = load_settings(s, &conf);
	if (r >= 0)
		r = load_creds(s, &conf, conf_path);
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
