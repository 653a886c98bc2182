/*
 * AWS Signature Version 4, as S3 uses it in the Authorization header:
 *
 *   canonical request = method \n path \n query \n headers \n signed-names \n payload-hash
 *   string to sign    = "AWS4-HMAC-SHA256" \n date \n scope \n hex(SHA-256(canonical request))
 *   signing key       = HMAC chain over "AWS4"+secret, yyyymmdd, region, service, "aws4_request"
 *   signature         = hex(HMAC(signing key, string to sign))
 *
 * The caller builds the URL's path and query already encoded and passes
 * the same strings here, so what is signed is byte for byte what is sent
 * (S3 does not normalize paths, so neither do we). tests/unit/test-s3.c
 * checks this file against the worked examples in AWS's documentation.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>

#include "keel/crypto.h"
#include "keel/s3.h"

#define MAX_HEADERS 24
#define MAX_PARAMS 32

void kl_s3_sha256_hex(const void *data, size_t n, char out[65])
{
	struct kl_id d;

	kl_sha256(data, n, &d);
	kl_hex_encode(d.b, sizeof(d.b), out);
}

void kl_s3_md5_base64(const void *data, size_t n, char out[25])
{
	uint8_t d[16];
	unsigned dl = 0;

	EVP_Digest(data, n, d, &dl, EVP_md5(), NULL);
	EVP_EncodeBlock((unsigned char *)out, d, sizeof(d)); /* 24 chars and a NUL */
}

void kl_s3_md5_hex(const void *data, size_t n, char out[33])
{
	uint8_t d[16];
	unsigned dl = 0;

	EVP_Digest(data, n, d, &dl, EVP_md5(), NULL);
	kl_hex_encode(d, sizeof(d), out);
}

static void hmac(const void *key, size_t klen, const void *msg, size_t n, uint8_t out[32])
{
	unsigned ol = 32;

	HMAC(EVP_sha256(), key, (int)klen, msg, n, out, &ol);
}

int kl_s3_signing_key(const char *secret, const char *date8, const char *region,
		      const char *service, uint8_t out[32])
{
	size_t sl = strlen(secret);
	char k[4 + KL_S3_SECRET_MAX];
	uint8_t a[32], b[32];

	if (sl > KL_S3_SECRET_MAX)
		return -EINVAL;
	memcpy(k, "AWS4", 4);
	memcpy(k + 4, secret, sl);
	hmac(k, sl + 4, date8, strlen(date8), a);
	hmac(a, 32, region, strlen(region), b);
	hmac(b, 32, service, strlen(service), a);
	hmac(a, 32, "aws4_request", 12, out);
	kl_wipe(k, sizeof(k));
	kl_wipe(a, sizeof(a));
	kl_wipe(b, sizeof(b));
	return 0;
}

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == '~';
}

int kl_s3_uri_encode(struct kl_buf *out, const char *s, size_t n, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	int r = 0;

	for (size_t i = 0; i < n && r >= 0; i++) {
		unsigned char c = (unsigned char)s[i];

		if (unreserved(c) || (keep_slash && c == '/')) {
			r = kl_buf_addch(out, c);
		} else {
			char e[3] = {'%', hex[c >> 4], hex[c & 15]};

			r = kl_buf_add(out, e, 3);
		}
	}
	return r;
}

struct span {
	const char *p;
	size_t n;
};

static int span_cmp(struct span a, struct span b)
{
	int c = memcmp(a.p, b.p, KL_MIN(a.n, b.n));

	if (c)
		return c;
	return a.n < b.n ? -1 : a.n > b.n;
}

int kl_s3_canonical_query(const char *query, struct kl_buf *out)
{
	struct span k[MAX_PARAMS], v[MAX_PARAMS];
	size_t n = 0;
	const char *p = query ? query : "";
	int r = 0;

	while (*p) {
		const char *amp = strchr(p, '&');
		size_t len = amp ? (size_t)(amp - p) : strlen(p);
		const char *eq = memchr(p, '=', len);

		if (len == 0 || eq == p || n == MAX_PARAMS)
			return -EINVAL;
		k[n] = (struct span){p, eq ? (size_t)(eq - p) : len};
		v[n] = eq ? (struct span){eq + 1, len - (size_t)(eq - p) - 1}
			  : (struct span){"", 0};
		n++;
		p += len + (amp != NULL);
		if (amp && !*p)
			return -EINVAL;
	}
	/* insertion sort: a handful of parameters, by name, then by value */
	for (size_t i = 1; i < n; i++) {
		for (size_t j = i; j > 0; j--) {
			int c = span_cmp(k[j - 1], k[j]);

			if (c < 0 || (c == 0 && span_cmp(v[j - 1], v[j]) <= 0))
				break;
			struct span tk = k[j], tv = v[j];

			k[j] = k[j - 1];
			v[j] = v[j - 1];
			k[j - 1] = tk;
			v[j - 1] = tv;
		}
	}
	for (size_t i = 0; i < n && r >= 0; i++) {
		if (i)
			r = kl_buf_addch(out, '&');
		if (r >= 0)
			r = kl_buf_add(out, k[i].p, k[i].n);
		if (r >= 0)
			r = kl_buf_addch(out, '=');
		if (r >= 0)
			r = kl_buf_add(out, v[i].p, v[i].n);
	}
	return r;
}

/* Header value as SigV4 wants it: outer spaces trimmed, inner runs of spaces made one. */
static int add_trimmed(struct kl_buf *b, const char *s)
{
	bool space = false;
	int r = 0;

	while (*s == ' ' || *s == '\t')
		s++;
	for (; *s && r >= 0; s++) {
		if (*s == ' ' || *s == '\t') {
			space = true;
			continue;
		}
		if (*s == '\r' || *s == '\n')
			return -EINVAL;
		if (space)
			r = kl_buf_addch(b, ' ');
		space = false;
		if (r >= 0)
			r = kl_buf_addch(b, (uint8_t)*s);
	}
	return r;
}

static int add_lower(struct kl_buf *b, const char *s)
{
	int r = 0;

	for (; *s && r >= 0; s++) {
		char c = *s;

		if (c <= ' ' || c == ':' || (unsigned char)c >= 0x7f)
			return -EINVAL;
		r = kl_buf_addch(b, (uint8_t)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c));
	}
	return r;
}

static int strcasecmp_ascii(const char *a, const char *b)
{
	for (;; a++, b++) {
		int x = (unsigned char)*a, y = (unsigned char)*b;

		x = x >= 'A' && x <= 'Z' ? x - 'A' + 'a' : x;
		y = y >= 'A' && y <= 'Z' ? y - 'A' + 'a' : y;
		if (x != y || !x)
			return x - y;
	}
}

int kl_s3_sign(const struct kl_s3_sign_input *in, struct kl_buf *auth, struct kl_buf *creq)
{
	_cleanup_buf_ struct kl_buf cr = KL_BUF_INIT((size_t)1 << 20);
	_cleanup_buf_ struct kl_buf names = KL_BUF_INIT((size_t)1 << 16);
	_cleanup_buf_ struct kl_buf sts = KL_BUF_INIT((size_t)1 << 16);
	size_t order[MAX_HEADERS];
	char date8[9], hash[65], sig[65];
	uint8_t key[32], mac[32];
	int r;

	if (in->n_headers > MAX_HEADERS || strlen(in->amz_date) != 16)
		return -EINVAL;
	memcpy(date8, in->amz_date, 8);
	date8[8] = 0;
	for (size_t i = 0; i < in->n_headers; i++) {
		size_t j = i;

		while (j > 0 &&
		       strcasecmp_ascii(in->headers[order[j - 1]].name, in->headers[i].name) > 0) {
			order[j] = order[j - 1];
			j--;
		}
		order[j] = i;
	}
	for (size_t i = 1; i < in->n_headers; i++)
		if (!strcasecmp_ascii(in->headers[order[i - 1]].name, in->headers[order[i]].name))
			return -EINVAL;

	r = kl_buf_addf(&cr, "%s\n%s\n", in->method, in->path);
	if (r >= 0)
		r = kl_s3_canonical_query(in->query, &cr);
	if (r >= 0)
		r = kl_buf_addch(&cr, '\n');
	for (size_t i = 0; i < in->n_headers && r >= 0; i++) {
		const struct kl_s3_header *h = &in->headers[order[i]];

		r = add_lower(&cr, h->name);
		if (r >= 0)
			r = kl_buf_addch(&cr, ':');
		if (r >= 0)
			r = add_trimmed(&cr, h->value);
		if (r >= 0)
			r = kl_buf_addch(&cr, '\n');
		if (r >= 0 && i)
			r = kl_buf_addch(&names, ';');
		if (r >= 0)
			r = add_lower(&names, h->name);
	}
	if (r >= 0)
		r = kl_buf_addf(&cr, "\n%s\n%s", (const char *)names.data, in->payload_hash);
	if (r < 0)
		return r;

	kl_s3_sha256_hex(cr.data, cr.len, hash);
	r = kl_buf_addf(&sts, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", in->amz_date,
			date8, in->region, in->service, hash);
	if (r < 0)
		return r;
	r = kl_s3_signing_key(in->secret_key, date8, in->region, in->service, key);
	if (r < 0)
		return r;
	hmac(key, sizeof(key), sts.data, sts.len, mac);
	kl_wipe(key, sizeof(key));
	kl_hex_encode(mac, sizeof(mac), sig);

	r = kl_buf_addf(auth,
			"AWS4-HMAC-SHA256 "
			"Credential=%s/%s/%s/%s/aws4_request,SignedHeaders=%s,Signature=%s",
			in->access_key, date8, in->region, in->service, (const char *)names.data,
			sig);
	if (r >= 0 && creq)
		r = kl_buf_add(creq, cr.data, cr.len);
	return r;
}
