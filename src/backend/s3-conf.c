/*
 * What the S3 backend learns before it talks to anyone: the location
 * ("s3:https://host/bucket/prefix") and the credentials (the environment,
 * else a profile of ~/.aws/credentials). Pure string handling, no I/O
 * except reading the credentials file, so tests reach it directly.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>

#include "keel/crypto.h"
#include "keel/fs.h"
#include "keel/s3.h"

void kl_s3_location_release(struct kl_s3_location *l)
{
	kl_free(l->host);
	kl_free(l->port);
	kl_free(l->bucket);
	kl_free(l->prefix);
	memset(l, 0, sizeof(*l));
}

static bool host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_';
}

static int parse_authority(const char *s, size_t n, struct kl_s3_location *l)
{
	const char *colon = NULL, *host_end;
	size_t i;

	if (n == 0)
		return -KL_EUSAGE;
	if (s[0] == '[') {
		const char *close = memchr(s, ']', n);

		if (!close || close == s + 1)
			return -KL_EUSAGE;
		for (const char *p = s + 1; p < close; p++)
			if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') ||
			      (*p >= 'A' && *p <= 'F') || *p == ':' || *p == '.'))
				return -KL_EUSAGE;
		host_end = close + 1;
		if (host_end < s + n) {
			if (*host_end != ':')
				return -KL_EUSAGE;
			colon = host_end;
		}
	} else {
		colon = memchr(s, ':', n);
		host_end = colon ? colon : s + n;
		if (host_end == s)
			return -KL_EUSAGE;
		for (const char *p = s; p < host_end; p++)
			if (!host_char(*p))
				return -KL_EUSAGE;
	}
	if (colon) {
		size_t pn = (size_t)(s + n - colon - 1);
		unsigned long port = 0;

		if (pn == 0 || pn > 5)
			return -KL_EUSAGE;
		for (i = 1; i <= pn; i++) {
			if (colon[i] < '0' || colon[i] > '9')
				return -KL_EUSAGE;
			port = port * 10 + (unsigned long)(colon[i] - '0');
		}
		if (port == 0 || port > 65535)
			return -KL_EUSAGE;
		l->port = kl_strndup(colon + 1, pn);
		if (!l->port)
			return -ENOMEM;
	}
	l->host = kl_strndup(s, (size_t)(host_end - s));
	return l->host ? 0 : -ENOMEM;
}

/* S3's rules, widened to what Ceph accepts: letters, digits, '.', '-', '_'. */
static bool valid_bucket(const char *s, size_t n)
{
	if (n < 3 || n > 255)
		return false;
	if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') ||
	      (s[0] >= '0' && s[0] <= '9')))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!host_char(s[i]))
			return false;
	return true;
}

int kl_s3_location_parse(const char *s, struct kl_s3_location *ret)
{
	struct kl_s3_location l = {0};
	_cleanup_buf_ struct kl_buf prefix = KL_BUF_INIT(KL_S3_KEY_MAX);
	const char *auth, *slash, *p;
	int r;

	memset(ret, 0, sizeof(*ret));
	if (!strncmp(s, "https://", 8)) {
		l.https = true;
		auth = s + 8;
	} else if (!strncmp(s, "http://", 7)) {
		auth = s + 7;
	} else if (strstr(s, "://")) {
		return -KL_EUSAGE;
	} else {
		l.https = true; /* "s3:host/bucket": restic's short form */
		auth = s;
	}
	slash = strchr(auth, '/');
	if (!slash)
		return -KL_EUSAGE;
	r = parse_authority(auth, (size_t)(slash - auth), &l);
	if (r < 0)
		goto fail;

	/* bucket, then the prefix's components */
	p = slash + 1;
	r = -KL_EUSAGE;
	for (bool first = true; *p; first = false) {
		const char *e = strchrnul(p, '/');
		size_t n = (size_t)(e - p);

		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			goto fail;
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f || p[i] == '?' ||
			    p[i] == '#' || p[i] == '\\')
				goto fail;
		if (first) {
			if (!valid_bucket(p, n))
				goto fail;
			l.bucket = kl_strndup(p, n);
			if (!l.bucket) {
				r = -ENOMEM;
				goto fail;
			}
		} else {
			int a = prefix.len ? kl_buf_addch(&prefix, '/') : 0;

			if (a >= 0)
				a = kl_buf_add(&prefix, p, n);
			if (a < 0) {
				r = a == -E2BIG ? -KL_EUSAGE : a;
				goto fail;
			}
		}
		p = *e ? e + 1 : e;
	}
	if (!l.bucket)
		goto fail;
	l.prefix = kl_strndup((const char *)prefix.data, prefix.len);
	if (!l.prefix) {
		r = -ENOMEM;
		goto fail;
	}
	*ret = l;
	return 0;
fail:
	kl_s3_location_release(&l);
	return r;
}

void kl_s3_creds_release(struct kl_s3_creds *c)
{
	if (c->secret_key)
		kl_wipe(c->secret_key, strlen(c->secret_key));
	if (c->token)
		kl_wipe(c->token, strlen(c->token));
	kl_free(c->access_key);
	kl_free(c->secret_key);
	kl_free(c->token);
	memset(c, 0, sizeof(*c));
}

static bool blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* "[name]" or "[profile name]" (the config file's spelling) */
static bool section_is(const char *p, size_t n, const char *profile)
{
	size_t pl = strlen(profile);

	if (n < 2 || p[0] != '[' || p[n - 1] != ']')
		return false;
	p++;
	n -= 2;
	while (n && blank(*p)) {
		p++;
		n--;
	}
	while (n && blank(p[n - 1]))
		n--;
	if (n > 8 && !memcmp(p, "profile", 7) && blank(p[7])) {
		p += 8;
		n -= 8;
		while (n && blank(*p)) {
			p++;
			n--;
		}
	}
	return n == pl && !memcmp(p, profile, n);
}

int kl_s3_creds_parse(const char *text, size_t n, const char *profile, struct kl_s3_creds *ret)
{
	struct kl_s3_creds c = {0};
	const char *p = text, *end = text + n;
	bool in = false;

	memset(ret, 0, sizeof(*ret));
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end, *eq;
		char **dst = NULL;
		size_t kn;

		while (p < e && blank(*p))
			p++;
		while (e > p && blank(e[-1]))
			e--;
		if (p < e && *p == '[') {
			in = section_is(p, (size_t)(e - p), profile);
		} else if (in && p < e && *p != '#' && *p != ';' &&
			   (eq = memchr(p, '=', (size_t)(e - p)))) {
			const char *v = eq + 1;

			kn = (size_t)(eq - p);
			while (kn && blank(p[kn - 1]))
				kn--;
			while (v < e && blank(*v))
				v++;
			if (kn == 17 && !memcmp(p, "aws_access_key_id", 17))
				dst = &c.access_key;
			else if (kn == 21 && !memcmp(p, "aws_secret_access_key", 21))
				dst = &c.secret_key;
			else if (kn == 17 && !memcmp(p, "aws_session_token", 17))
				dst = &c.token;
			if (dst && v < e) {
				if (*dst) {
					kl_wipe(*dst, strlen(*dst));
					kl_free(*dst);
				}
				*dst = kl_strndup(v, (size_t)(e - v));
				if (!*dst) {
					kl_s3_creds_release(&c);
					return -ENOMEM;
				}
			}
		}
		p = nl ? nl + 1 : end;
	}
	if (!c.access_key || !c.secret_key) {
		kl_s3_creds_release(&c);
		return -ENOENT;
	}
	*ret = c;
	return 0;
}
