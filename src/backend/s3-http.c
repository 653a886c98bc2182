/*
 * Signed S3 requests over libcurl: a small pool of easy handles (each
 * keeps its connection alive between requests), SigV4 on every attempt,
 * retries with exponential back-off and jitter, and the mapping of what
 * came back to keel's error codes.
 *
 * Threads: the repository calls the backend from its pack writers and
 * readers at once. Each request takes a handle from the pool for its
 * duration, so handles are never shared; the pool's size bounds the
 * connections in flight (KEEL_S3_CONNECTIONS).
 *
 * Memory: a request body is the caller's buffer, read in place; a
 * response body goes straight into the caller's kl_buf, whose cap bounds
 * it; an error body is kept up to 64 KiB.
 */
#include <stdio.h>
#include <strings.h>
#include <time.h>

#include "keel/crypto.h"
#include "s3-internal.h"

#define ERRBODY_MAX (64u << 10)
#define RETRY_DELAY_CAP_MS 20000u

struct s3_conn {
	CURL *h;
	struct s3_conn *next;
};

/* ---- the handle pool ------------------------------------------------- */

static int conn_get(struct s3 *s, struct s3_conn **ret)
{
	struct s3_conn *c;

	pthread_mutex_lock(&s->lock);
	while (!s->idle && s->n_conns >= s->max_conns)
		pthread_cond_wait(&s->cv, &s->lock);
	if (s->idle) {
		c = s->idle;
		s->idle = c->next;
		pthread_mutex_unlock(&s->lock);
		*ret = c;
		return 0;
	}
	s->n_conns++;
	pthread_mutex_unlock(&s->lock);

	c = kl_calloc(1, sizeof(*c));
	if (c)
		c->h = curl_easy_init();
	if (!c || !c->h) {
		kl_free(c);
		pthread_mutex_lock(&s->lock);
		s->n_conns--;
		pthread_cond_signal(&s->cv);
		pthread_mutex_unlock(&s->lock);
		return -ENOMEM;
	}
	*ret = c;
	return 0;
}

static void conn_put(struct s3 *s, struct s3_conn *c)
{
	pthread_mutex_lock(&s->lock);
	c->next = s->idle;
	s->idle = c;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->lock);
}

void kl_s3_pool_free_(struct s3 *s)
{
	while (s->idle) {
		struct s3_conn *c = s->idle;

		s->idle = c->next;
		curl_easy_cleanup(c->h);
		kl_free(c);
	}
	s->n_conns = 0;
}

/* ---- reporting ---------------------------------------------------------- */

static void debug(struct s3 *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void debug(struct s3 *s, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (!s->debug)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "keel: s3: debug: %s\n", msg);
}

/* ---- callbacks ------------------------------------------------------------ */

static size_t on_read(char *buf, size_t size, size_t nmemb, void *ud)
{
	struct s3_req *q = ud;
	size_t n = KL_MIN(size * nmemb, q->body_len - q->sent);

	if (n)
		memcpy(buf, (const uint8_t *)q->body + q->sent, n);
	q->sent += n;
	return n;
}

/* curl rewinds an upload when it must send it again (a redirect, a 100-continue refusal) */
static int on_seek(void *ud, curl_off_t off, int origin)
{
	struct s3_req *q = ud;

	if (origin != SEEK_SET || off < 0 || (uint64_t)off > q->body_len)
		return CURL_SEEKFUNC_FAIL;
	q->sent = (size_t)off;
	return CURL_SEEKFUNC_OK;
}

static bool header_is(const char *line, size_t n, const char *name, const char **val, size_t *vlen)
{
	size_t nl = strlen(name);

	if (n <= nl || line[nl] != ':' || strncasecmp(line, name, nl))
		return false;
	*val = line + nl + 1;
	*vlen = n - nl - 1;
	while (*vlen && (**val == ' ' || **val == '\t')) {
		(*val)++;
		(*vlen)--;
	}
	while (*vlen &&
	       ((*val)[*vlen - 1] == '\r' || (*val)[*vlen - 1] == '\n' || (*val)[*vlen - 1] == ' '))
		(*vlen)--;
	return true;
}

static void copy_field(char *dst, size_t cap, const char *v, size_t n)
{
	n = KL_MIN(n, cap - 1);
	for (size_t i = 0; i < n; i++)
		dst[i] = (unsigned char)v[i] < 0x20 || v[i] == 0x7f ? '?' : v[i];
	dst[n] = 0;
}

/* "bytes FIRST-LAST/TOTAL" (TOTAL may be "*"); anything else is ignored */
static void parse_content_range(struct s3_req *q, const char *v, size_t n)
{
	uint64_t x[2] = {0, 0};
	size_t i = 6, k;

	if (n < 9 || strncasecmp(v, "bytes ", 6))
		return;
	for (k = 0; k < 2; k++) {
		size_t start = i;

		for (; i < n && i - start < 19 && v[i] >= '0' && v[i] <= '9'; i++)
			x[k] = x[k] * 10 + (uint64_t)(v[i] - '0');
		if (i == start || i >= n || v[i] != (k ? '/' : '-'))
			return;
		i++;
	}
	if (x[1] < x[0])
		return;
	q->has_range = true;
	q->range_first = x[0];
	q->range_last = x[1];
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *ud)
{
	struct s3_req *q = ud;
	size_t n = size * nmemb;
	const char *v;
	size_t vl;

	if (n >= 5 && !memcmp(line, "HTTP/", 5)) {
		/* a new response (after "100 Continue"): forget the last one's headers */
		q->has_length = false;
		q->has_range = false;
		q->etag[0] = 0;
		q->bucket_region[0] = 0;
		q->version_id[0] = 0;
		q->locked_mode = q->legal_hold = false;
		q->retain_until_ns = 0;
	} else if (header_is(line, n, "content-length", &v, &vl)) {
		uint64_t len = 0;
		size_t i;

		for (i = 0; i < vl && i < 20 && v[i] >= '0' && v[i] <= '9'; i++)
			len = len * 10 + (uint64_t)(v[i] - '0');
		q->has_length = i == vl && vl > 0 && vl < 20;
		q->length = len;
	} else if (header_is(line, n, "content-range", &v, &vl)) {
		parse_content_range(q, v, vl);
	} else if (header_is(line, n, "etag", &v, &vl)) {
		if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
			v++;
			vl -= 2;
		}
		copy_field(q->etag, sizeof(q->etag), v, vl);
	} else if (header_is(line, n, "x-amz-bucket-region", &v, &vl)) {
		copy_field(q->bucket_region, sizeof(q->bucket_region), v, vl);
	} else if (header_is(line, n, "x-amz-version-id", &v, &vl)) {
		copy_field(q->version_id, sizeof(q->version_id), v, vl);
	} else if (header_is(line, n, "x-amz-object-lock-mode", &v, &vl)) {
		q->locked_mode = vl > 0;
	} else if (header_is(line, n, "x-amz-object-lock-retain-until-date", &v, &vl)) {
		/* unreadable: treat as locked for good rather than deletable */
		if (kl_s3_parse_time(v, vl, &q->retain_until_ns) < 0)
			q->retain_until_ns = INT64_MAX;
	} else if (header_is(line, n, "x-amz-object-lock-legal-hold", &v, &vl)) {
		q->legal_hold = vl == 2 && !strncasecmp(v, "ON", 2);
	}
	return n;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
	struct s3_req *q = ud;
	size_t n = size * nmemb;
	long code = 0;
	uint64_t from, to;
	int r;

	curl_easy_getinfo(q->h, CURLINFO_RESPONSE_CODE, &code);
	if (code < 200 || code > 299) {
		if (q->errbody.len < ERRBODY_MAX)
			kl_buf_add(&q->errbody, p, KL_MIN(n, ERRBODY_MAX - q->errbody.len));
		return n;
	}
	if (!q->out)
		return n;
	if (q->seen == 0 && q->has_length) {
		/* one allocation for the whole body; past the caller's cap it is -E2BIG */
		uint64_t want = q->length;

		if (code == 200 && q->range)
			want = q->len ? q->len : (q->length > q->off ? q->length - q->off : 0);
		r = want > SIZE_MAX / 2 ? -E2BIG : kl_buf_grow(q->out, (size_t)want);
		if (r < 0) {
			q->cb_err = r;
			return 0;
		}
	}
	/*
	 * A 200 to a range request is the whole object: keep the window only.
	 * (S3 and Ceph answer 206, but a proxy may drop the Range header.)
	 */
	from = 0;
	to = n;
	if (code == 200 && q->range) {
		uint64_t lo = q->off, hi = q->len ? q->off + q->len : UINT64_MAX;

		from = lo > q->seen ? KL_MIN(lo - q->seen, (uint64_t)n) : 0;
		to = hi > q->seen ? KL_MIN(hi - q->seen, (uint64_t)n) : 0;
		if (to < from)
			to = from;
	}
	q->seen += n;
	r = kl_buf_add(q->out, p + from, (size_t)(to - from));
	if (r < 0) {
		q->cb_err = r;
		return 0;
	}
	return n;
}

/* ---- one attempt ------------------------------------------------------- */

static void amz_date(char out[17])
{
	struct tm tm;
	time_t now = time(NULL);

	gmtime_r(&now, &tm);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

static int add_header(struct curl_slist **list, const char *name, const char *value)
{
	char line[4096 + 64];
	struct curl_slist *n;

	if ((size_t)snprintf(line, sizeof(line), "%s: %s", name, value) >= sizeof(line))
		return -EINVAL;
	n = curl_slist_append(*list, line);
	if (!n)
		return -ENOMEM;
	*list = n;
	return 0;
}

static int build_url(struct s3 *s, const struct s3_req *q, struct kl_buf *path, struct kl_buf *url)
{
	int r = kl_buf_addstr(path, s->path_base);

	if (r >= 0 && q->key) {
		r = kl_buf_addch(path, '/');
		if (r >= 0)
			r = kl_s3_uri_encode(path, q->key, strlen(q->key), true);
	} else if (r >= 0 && !*s->path_base) {
		r = kl_buf_addch(path, '/');
	}
	if (r >= 0)
		r = kl_buf_addf(url, "%s%s", s->base_url, (const char *)path->data);
	if (r >= 0 && q->query && *q->query)
		r = kl_buf_addf(url, "?%s", q->query);
	return r;
}

static int attempt(struct s3 *s, struct s3_req *q, CURL *h, CURLcode *cc)
{
	_cleanup_buf_ struct kl_buf path = KL_BUF_INIT(8192);
	_cleanup_buf_ struct kl_buf url = KL_BUF_INIT(16384);
	_cleanup_buf_ struct kl_buf auth = KL_BUF_INIT(4096);
	struct curl_slist *hl = NULL;
	struct kl_s3_header sh[10];
	char date[17], hash[65], md5[25], range[64];
	size_t nh = 0;
	int r;

	r = build_url(s, q, &path, &url);
	if (r < 0)
		return r;
	amz_date(date);
	kl_s3_sha256_hex(q->body ? q->body : "", q->body_len, hash);
	sh[nh++] = (struct kl_s3_header){"host", s->host_header};
	sh[nh++] = (struct kl_s3_header){"x-amz-date", date};
	sh[nh++] = (struct kl_s3_header){"x-amz-content-sha256", hash};
	if (!strcmp(q->method, "PUT")) {
		kl_s3_md5_base64(q->body ? q->body : "", q->body_len, md5);
		sh[nh++] = (struct kl_s3_header){"content-md5", md5};
	}
	if (q->range) {
		if (q->len)
			snprintf(range, sizeof(range), "bytes=%llu-%llu",
				 (unsigned long long)q->off,
				 (unsigned long long)(q->off + q->len - 1));
		else
			snprintf(range, sizeof(range), "bytes=%llu-", (unsigned long long)q->off);
		sh[nh++] = (struct kl_s3_header){"range", range};
	}
	if (q->if_none_match)
		sh[nh++] = (struct kl_s3_header){"if-none-match", "*"};
	if (q->storage_class)
		sh[nh++] = (struct kl_s3_header){"x-amz-storage-class", q->storage_class};
	if (q->bucket_lock)
		sh[nh++] = (struct kl_s3_header){"x-amz-bucket-object-lock-enabled", "true"};
	if (q->lock_mode) {
		sh[nh++] = (struct kl_s3_header){"x-amz-object-lock-mode", q->lock_mode};
		sh[nh++] =
			(struct kl_s3_header){"x-amz-object-lock-retain-until-date", q->lock_until};
	}
	if (s->creds.token)
		sh[nh++] = (struct kl_s3_header){"x-amz-security-token", s->creds.token};

	r = kl_s3_sign(
		&(struct kl_s3_sign_input){
			.method = q->method,
			.path = (const char *)path.data,
			.query = q->query,
			.headers = sh,
			.n_headers = nh,
			.payload_hash = hash,
			.amz_date = date,
			.region = s->region,
			.service = "s3",
			.access_key = s->creds.access_key,
			.secret_key = s->creds.secret_key,
		},
		&auth, NULL);
	for (size_t i = 0; i < nh && r >= 0; i++)
		r = add_header(&hl, sh[i].name, sh[i].value);
	if (r >= 0)
		r = add_header(&hl, "authorization", (const char *)auth.data);
	if (r < 0) {
		curl_slist_free_all(hl);
		return r;
	}

	curl_easy_reset(h);
	q->h = h;
	q->curl_err[0] = 0;
	curl_easy_setopt(h, CURLOPT_URL, (const char *)url.data);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, q->curl_err);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "keel/" KEEL_VERSION);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 15L);
	/* an attempt that moves less than 1 byte/s for timeout_s seconds has hung */
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, s->timeout_s);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	if (s->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, s->ca_file);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, q);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, q);
	if (!strcmp(q->method, "HEAD")) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (!strcmp(q->method, "PUT")) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(h, CURLOPT_READDATA, q);
		curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(h, CURLOPT_SEEKDATA, q);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)q->body_len);
	} else if (strcmp(q->method, "GET")) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, q->method);
	}

	*cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &q->status);
	curl_slist_free_all(hl);
	q->h = NULL;
	return 0;
}

/* ---- retries -------------------------------------------------------------- */

static bool retryable_curl(CURLcode cc)
{
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_READ_ERROR:
		return true;
	default:
		return false;
	}
}

static bool retryable_status(const struct s3_req *q)
{
	/* BadDigest and its kin: the body was damaged on the way, so send it again */
	static const char *const codes[] = {"SlowDown",
					    "RequestTimeout",
					    "InternalError",
					    "ServiceUnavailable",
					    "BadDigest",
					    "IncompleteBody",
					    "XAmzContentSHA256Mismatch"};

	if (q->status == 500 || q->status == 502 || q->status == 503 || q->status == 504 ||
	    q->status == 429)
		return true;
	if (q->status == 400 || q->status == 403)
		for (size_t i = 0; i < KL_ARRAY_SIZE(codes); i++)
			if (!strcmp(q->err.code, codes[i]))
				return true;
	return false;
}

/*
 * A 206 whose body is shorter than its own Content-Range: a middlebox cut
 * it and fixed up Content-Length (curl checks only that). Without this
 * check the short body would pass for a pack that ends early, which
 * readers report as damage.
 */
static bool body_cut(const struct s3_req *q)
{
	return q->status == 206 && q->out && q->has_range &&
	       q->seen != q->range_last - q->range_first + 1;
}

static void backoff(struct s3 *s, unsigned attempt)
{
	uint64_t d = s->retry_delay_ms, jitter;
	struct timespec ts;

	for (unsigned i = 1; i < attempt && d < RETRY_DELAY_CAP_MS; i++)
		d *= 2;
	d = KL_MIN(d, (uint64_t)RETRY_DELAY_CAP_MS);
	/* half fixed, half random: retries of many threads spread out */
	kl_random(&jitter, sizeof(jitter));
	d = d / 2 + (d ? jitter % (d / 2 + 1) : 0);
	ts.tv_sec = (time_t)(d / 1000);
	ts.tv_nsec = (long)(d % 1000) * KL_NSEC_PER_MSEC;
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static const char *obj_name(const struct s3 *s, const struct s3_req *q)
{
	const char *k = q->key;
	size_t pl = strlen(s->loc.prefix);

	if (!k)
		return s->loc.bucket;
	if (pl && !strncmp(k, s->loc.prefix, pl) && k[pl] == '/')
		return k + pl + 1;
	return k;
}

/* The detail goes to the backend's error channel (kl_backend_fail), for the CLI to print. */
static int transport_error(struct s3 *s, struct s3_req *q, CURLcode cc)
{
	const char *detail = q->curl_err[0] ? q->curl_err : curl_easy_strerror(cc);

	switch (cc) {
	case CURLE_COULDNT_RESOLVE_HOST:
		return kl_backend_fail(&s->b, -KL_EREMOTE, "cannot resolve host '%s' (DNS): %s",
				       s->loc.host, detail);
	case CURLE_COULDNT_CONNECT:
		return kl_backend_fail(&s->b, -ECONNREFUSED,
				       "cannot connect to %s after %u attempts: %s", s->base_url,
				       q->attempts, detail);
	case CURLE_OPERATION_TIMEDOUT:
		return kl_backend_fail(&s->b, -ETIMEDOUT,
				       "%s '%s': timed out after %u attempts: %s", q->method,
				       obj_name(s, q), q->attempts, detail);
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
		return kl_backend_fail(
			&s->b, -KL_EREMOTE,
			"TLS certificate of %s not accepted: %s (set KEEL_S3_CA_FILE, "
			"or ca_file in keel's configuration file, to the CA "
			"certificate that signed it)",
			s->base_url, detail);
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	default:
		return kl_backend_fail(&s->b, -KL_EREMOTE, "%s '%s': %s (after %u attempts)",
				       q->method, obj_name(s, q), detail, q->attempts);
	}
}

void kl_s3_req_release_(struct s3_req *q)
{
	kl_buf_release(&q->errbody);
}

int kl_s3_request_(struct s3 *s, struct s3_req *q)
{
	struct s3_conn *c;
	CURLcode cc = CURLE_OK;
	int r;

	q->out_base = q->out ? q->out->len : 0;
	kl_buf_init(&q->errbody, ERRBODY_MAX + 1);
	q->maybe_applied = false;
	for (q->attempts = 1;; q->attempts++) {
		int64_t t0 = kl_time_mono_ns();

		if (q->out) {
			q->out->len = q->out_base;
			if (q->out->cap)
				q->out->data[q->out->len] = 0;
		}
		kl_buf_clear(&q->errbody);
		memset(&q->err, 0, sizeof(q->err));
		q->status = 0;
		q->has_length = q->has_range = false;
		q->etag[0] = q->bucket_region[0] = q->version_id[0] = 0;
		q->locked_mode = q->legal_hold = false;
		q->retain_until_ns = 0;
		q->sent = 0;
		q->seen = 0;
		q->cb_err = 0;

		r = conn_get(s, &c);
		if (r < 0)
			return r;
		r = attempt(s, q, c->h, &cc);
		conn_put(s, c);
		if (r < 0)
			return r;
		if (q->errbody.len)
			kl_s3_error_parse(q->errbody.data, q->errbody.len, &q->err);
		debug(s, "%s %s%s%s -> %ld%s%s%s%s (%.1f ms, attempt %u)", q->method,
		      obj_name(s, q), q->query ? "?" : "", q->query ? q->query : "", q->status,
		      q->err.code[0] ? " " : "", q->err.code, cc != CURLE_OK ? ", " : "",
		      cc != CURLE_OK ? curl_easy_strerror(cc) : "",
		      (double)(kl_time_mono_ns() - t0) / KL_NSEC_PER_MSEC, q->attempts);
		if (q->cb_err)
			return q->cb_err; /* our own refusal: out of memory, over the cap */
		if (cc == CURLE_OK && body_cut(q)) {
			/* counted as a transfer cut short: retried, and never handed on */
			cc = CURLE_PARTIAL_FILE;
			snprintf(q->curl_err, sizeof(q->curl_err),
				 "the answer is shorter than its Content-Range says");
		}
		if (cc == CURLE_OK && !retryable_status(q))
			return 0;
		if (cc != CURLE_OK && !retryable_curl(cc))
			return transport_error(s, q, cc);
		/* the server may have acted on a request whose answer we lost or that failed late
		 */
		if (cc != CURLE_COULDNT_CONNECT && cc != CURLE_COULDNT_RESOLVE_HOST)
			q->maybe_applied = true;
		if (q->attempts >= s->max_attempts)
			return cc != CURLE_OK ? transport_error(s, q, cc) : 0;
		backoff(s, q->attempts);
	}
}

/* ---- errors --------------------------------------------------------------- */

/*
 * The storage is full: a bucket or user quota (Ceph RGW answers 403
 * QuotaExceeded, MinIO 400 XMinioAdminBucketQuotaExceeded) or a server out
 * of disk (507 Insufficient Storage, MinIO's XMinioStorageFull). It is the
 * full disk of a local repository, not a refusal of the credentials.
 */
static bool storage_full(const struct s3_req *q)
{
	return q->status == 507 || !strcmp(q->err.code, "QuotaExceeded") ||
	       !strcmp(q->err.code, "XMinioAdminBucketQuotaExceeded") ||
	       !strcmp(q->err.code, "XMinioStorageFull");
}

int kl_s3_http_error_(struct s3 *s, struct s3_req *q, const char *what)
{
	const char *code = q->err.code, *msg = q->err.message;
	const char *name = what ? what : obj_name(s, q);
	struct kl_backend *b = &s->b;

	if (storage_full(q)) {
		/* no object name: the same detail for all the writes that fail alike */
		return kl_backend_fail(
			b, -ENOSPC,
			"bucket '%s' is full (%ld %s): its quota or the server's "
			"storage has no room for more; raise the quota or free space",
			s->loc.bucket, q->status, *code ? code : "Insufficient Storage");
	}
	switch (q->status) {
	case 301:
	case 307:
	case 400:
		if (q->bucket_region[0] || q->err.region[0] ||
		    !strcmp(code, "AuthorizationHeaderMalformed") ||
		    !strcmp(code, "PermanentRedirect")) {
			const char *right = q->bucket_region[0] ? q->bucket_region : q->err.region;

			if (*right)
				return kl_backend_fail(
					b, -KL_EREMOTE,
					"bucket '%s' is in region '%s', not '%s': set "
					"AWS_REGION=%s or 'region = %s' in keel's "
					"configuration file",
					s->loc.bucket, right, s->region, right, right);
			return kl_backend_fail(
				b, -KL_EREMOTE,
				"bucket '%s' is not at this endpoint or not in region "
				"'%s' (%ld %s); check the region (AWS_REGION or keel's "
				"configuration file) and the location",
				s->loc.bucket, s->region, q->status, code);
		}
		break;
	case 403:
		if (!strcmp(code, "InvalidAccessKeyId"))
			return kl_backend_fail(
				b, -EACCES,
				"%s '%s': 403 InvalidAccessKeyId: the server does not "
				"know access key '%s' (from %s)",
				q->method, name, s->creds.access_key, s->creds_source);
		if (!strcmp(code, "SignatureDoesNotMatch"))
			return kl_backend_fail(b, -EACCES,
					       "%s '%s': 403 SignatureDoesNotMatch: the secret key "
					       "does not belong to access key '%s' (from %s)",
					       q->method, name, s->creds.access_key,
					       s->creds_source);
		if (!strcmp(code, "RequestTimeTooSkewed"))
			return kl_backend_fail(b, -EACCES,
					       "%s '%s': 403 RequestTimeTooSkewed: this machine's "
					       "clock is wrong; set it right (NTP)",
					       q->method, name);
		return kl_backend_fail(
			b, -EACCES, "%s '%s': 403 %s: access denied with access key '%s' (from %s)",
			q->method, name, *code ? code : "Forbidden", s->creds.access_key,
			s->creds_source);
	case 404:
		if (!strcmp(code, "NoSuchBucket"))
			return kl_backend_fail(b, -ENOENT, "bucket '%s' does not exist at %s",
					       s->loc.bucket, s->base_url);
		return -ENOENT;
	case 412:
		return -EEXIST;
	case 416:
		return -KL_ECORRUPT;
	default:
		break;
	}
	if (q->status >= 500 || q->status == 429)
		return kl_backend_fail(
			b, -KL_EREMOTE, "%s '%s': server error %ld %s%s%s after %u attempts",
			q->method, name, q->status, code, *msg ? ": " : "", msg, q->attempts);
	return kl_backend_fail(b, -KL_EREMOTE, "%s '%s': unexpected answer %ld %s%s%s", q->method,
			       name, q->status, code, *msg ? ": " : "", msg);
}
