/*
 * What the S3 backend learns before it talks to anyone: the location
 * ("s3:https://host/bucket/prefix") and the credentials (the environment,
 * else a profile of ~/.aws/credentials). Pure string handling, no I/O
 * except reading the credentials file, so tests reach it directly.
 */
#include <fcntl.h>
#include <strings.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>

#include "keel/crypto.h"
#include "keel/fs.h"
#include "keel/ini.h"
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

/* ---- keel's configuration file ------------------------------------------ */

/*
 * Normalizes an S3 location or section pattern into out: "s3:" dropped,
 * the short form given "https://", scheme and host in lower case,
 * trailing '/' dropped. Returns 0, -EINVAL when there is no host, -ENOMEM.
 */
static int conf_normalize(const char *s, size_t n, struct kl_buf *out)
{
	const char *auth, *end = s + n, *slash;
	int r;

	if (n >= 3 && !memcmp(s, "s3:", 3)) {
		s += 3;
		n -= 3;
	}
	if (n >= 8 && !strncasecmp(s, "https://", 8)) {
		auth = s + 8;
	} else if (n >= 7 && !strncasecmp(s, "http://", 7)) {
		auth = s + 7;
	} else {
		for (const char *p = s; p + 2 < end; p++)
			if (p[0] == ':' && p[1] == '/' && p[2] == '/')
				return -EINVAL; /* another scheme */
		auth = s;
	}
	r = kl_buf_addstr(out, auth == s ? "https://" : auth - s == 8 ? "https://" : "http://");
	if (r < 0)
		return r;
	slash = memchr(auth, '/', (size_t)(end - auth));
	if (!slash)
		slash = end;
	if (slash == auth)
		return -EINVAL;
	for (const char *p = auth; p < slash; p++) {
		r = kl_buf_addch(out, (uint8_t)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p));
		if (r < 0)
			return r;
	}
	while (end > slash && end[-1] == '/')
		end--;
	return kl_buf_add(out, slash, (size_t)(end - slash));
}

static int conf_match_norm(const struct kl_buf *pat, const struct kl_buf *loc)
{
	if (pat->len > loc->len || memcmp(pat->data, loc->data, pat->len))
		return -1;
	if (pat->len < loc->len && loc->data[pat->len] != '/')
		return -1;
	return (int)KL_MIN(pat->len, (size_t)INT32_MAX);
}

int kl_s3_conf_match(const char *pattern, const char *location)
{
	_cleanup_buf_ struct kl_buf p = KL_BUF_INIT(1u << 16), l = KL_BUF_INIT(1u << 16);

	if (conf_normalize(pattern, strlen(pattern), &p) < 0 ||
	    conf_normalize(location, strlen(location), &l) < 0)
		return -1;
	return conf_match_norm(&p, &l);
}

void kl_s3_conf_release(struct kl_s3_conf *c)
{
	kl_s3_creds_release(&c->creds);
	kl_free(c->creds_section);
	kl_free(c->region);
	kl_free(c->storage_class);
	kl_free(c->ca_file);
	memset(c, 0, sizeof(*c));
	c->virtual_host = -1;
}

enum conf_key {
	CK_ACCESS,
	CK_SECRET,
	CK_TOKEN,
	CK_REGION,
	CK_STORAGE_CLASS,
	CK_CA_FILE,
	CK_ADDRESSING,
	CK_CONNECTIONS,
	CK_RETRIES,
	CK_TIMEOUT,
	CK_N
};

static const char *const conf_keys[CK_N] = {
	[CK_ACCESS] = "access_key_id",
	[CK_SECRET] = "secret_access_key",
	[CK_TOKEN] = "session_token",
	[CK_REGION] = "region",
	[CK_STORAGE_CLASS] = "storage_class",
	[CK_CA_FILE] = "ca_file",
	[CK_ADDRESSING] = "addressing",
	[CK_CONNECTIONS] = "connections",
	[CK_RETRIES] = "retries",
	[CK_TIMEOUT] = "timeout",
};

struct conf_state {
	struct kl_s3_conf *c;
	struct kl_err *err;
	struct kl_buf loc; /* the normalized location; empty: match nothing */
	bool have_loc;
	bool in_section;
	int spec;	      /* the current section's specificity, -1: does not match */
	unsigned sect_line;   /* its header's line */
	char *sect_name;      /* its header, for messages */
	struct kl_s3_creds k; /* its key pair, so far */
	int best[CK_N];	      /* specificity each setting was taken from, -1: unset */
};

static int conf_uint(const char *v, size_t n, unsigned min, unsigned max, unsigned *ret)
{
	unsigned long x = 0;

	if (n == 0 || n > 9)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		x = x * 10 + (unsigned long)(v[i] - '0');
	}
	if (x < min || x > max)
		return -1;
	*ret = (unsigned)x;
	return 0;
}

static bool conf_charset(const char *v, size_t n, const char *extra, bool upper, bool lower)
{
	for (size_t i = 0; i < n; i++) {
		char ch = v[i];

		if (!((ch >= '0' && ch <= '9') || (upper && ch >= 'A' && ch <= 'Z') ||
		      (lower && ch >= 'a' && ch <= 'z') || (ch && strchr(extra, ch))))
			return false;
	}
	return true;
}

/* Closes the current section: its key pair must be whole, and may become the one used. */
static int conf_end_section(struct conf_state *st)
{
	struct kl_s3_creds *k = &st->k;
	int r = 0;

	if (!st->in_section)
		return 0;
	if (!!k->access_key != !!k->secret_key || (k->token && !k->access_key)) {
		r = kl_fail(st->err, -KL_EUSAGE,
			    "line %u: section [%s] needs both access_key_id and "
			    "secret_access_key (and session_token only with them)",
			    st->sect_line, st->sect_name);
	} else if (k->access_key && st->spec >= 0 && st->spec >= st->best[CK_ACCESS]) {
		kl_s3_creds_release(&st->c->creds);
		kl_free(st->c->creds_section);
		st->c->creds = *k;
		memset(k, 0, sizeof(*k));
		st->c->creds_section = KL_TAKE_PTR(st->sect_name);
		st->c->creds_line = st->sect_line;
		st->best[CK_ACCESS] = st->spec;
	}
	kl_s3_creds_release(k);
	kl_free(st->sect_name);
	st->sect_name = NULL;
	st->in_section = false;
	return r;
}

static int conf_header(struct conf_state *st, const struct kl_ini_item *it)
{
	unsigned line = it->line;
	/* the label, if any (no arithmetic on a NULL name) */
	const char *q = it->name, *e = it->name ? it->name + it->name_len : NULL;
	int r;

	r = conf_end_section(st);
	if (r < 0)
		return r;
	if (it->section_len != 2 || memcmp(it->section, "s3", 2))
		return kl_fail(st->err, -KL_EUSAGE,
			       "line %u: unknown section (keel knows [s3] and [s3 \"LOCATION\"])",
			       line);
	if (!it->name) {
		st->sect_name = kl_strdup("s3");
		if (!st->sect_name)
			return -ENOMEM;
		st->in_section = true;
		st->sect_line = line;
		st->spec = st->have_loc ? 0 : -1;
		return 0;
	}
	if (q == e)
		return kl_fail(st->err, -KL_EUSAGE, "line %u: write the location in double quotes",
			       line);
	{
		_cleanup_buf_ struct kl_buf name = KL_BUF_INIT(1u << 16);

		r = kl_buf_addf(&name, "s3 \"%.*s\"", (int)it->name_len, it->name);
		if (r < 0)
			return r == -E2BIG ? kl_fail(st->err, -KL_EUSAGE,
						     "line %u: the location is too long", line)
					   : r;
		st->sect_name = (char *)kl_buf_detach(&name, NULL);
		if (!st->sect_name)
			return -ENOMEM;
	}
	st->in_section = true;
	st->sect_line = line;
	{
		_cleanup_buf_ struct kl_buf pat = KL_BUF_INIT(1u << 16);

		if (memchr(q, '"', (size_t)(e - q)) || memchr(q, '\\', (size_t)(e - q)))
			r = -EINVAL;
		else
			r = conf_normalize(q, (size_t)(e - q), &pat);
		if (r == -ENOMEM)
			return r;
		if (r < 0)
			return kl_fail(st->err, -KL_EUSAGE,
				       "line %u: '%s' is not an S3 location (s3:https://HOST"
				       "[:PORT][/BUCKET[/PREFIX]])",
				       line, st->sect_name);
		st->spec = st->have_loc ? conf_match_norm(&pat, &st->loc) : -1;
		/* the unnamed section ranks below every named one */
		if (st->spec >= 0)
			st->spec++;
	}
	return 0;
}

static int conf_set_str(struct conf_state *st, enum conf_key k, char **dst, const char *v, size_t n)
{
	char *x;

	if (st->spec < 0 || st->spec < st->best[k])
		return 0;
	x = kl_strndup(v, n);
	if (!x)
		return -ENOMEM;
	kl_free(*dst);
	*dst = x;
	st->best[k] = st->spec;
	return 0;
}

static int conf_set_secret(char **dst, const char *v, size_t n)
{
	if (*dst) {
		kl_wipe(*dst, strlen(*dst));
		kl_free(*dst);
	}
	*dst = kl_strndup(v, n);
	return *dst ? 0 : -ENOMEM;
}

static int conf_setting(struct conf_state *st, const struct kl_ini_item *it)
{
	const char *p = it->key, *v = it->value;
	size_t kn = it->key_len, vn = it->value_len;
	unsigned line = it->line;
	enum conf_key k;
	unsigned u = 0;
	int bad = 0;

	for (k = 0; k < CK_N; k++)
		if (strlen(conf_keys[k]) == kn && !memcmp(p, conf_keys[k], kn))
			break;
	if (k == CK_N) {
		/* quoted only when it looks like a name: a pasted secret must not reach stderr */
		if (kn > 32 || !conf_charset(p, kn, "_-", false, true))
			return kl_fail(st->err, -KL_EUSAGE, "line %u: unknown setting", line);
		return kl_fail(st->err, -KL_EUSAGE, "line %u: unknown setting '%.*s'", line,
			       (int)kn, p);
	}
	if (vn == 0)
		return kl_fail(st->err, -KL_EUSAGE, "line %u: %s has no value", line, conf_keys[k]);
	switch (k) {
	case CK_ACCESS:
		bad = vn > 256 || !conf_charset(v, vn, "-_.+=@", true, true);
		if (!bad)
			return conf_set_secret(&st->k.access_key, v, vn);
		break;
	case CK_SECRET:
		st->c->has_secret = true;
		bad = vn > KL_S3_SECRET_MAX;
		if (!bad)
			return conf_set_secret(&st->k.secret_key, v, vn);
		break;
	case CK_TOKEN:
		st->c->has_secret = true;
		bad = vn > 4000; /* what fits a header line (s3-http.c) */
		if (!bad)
			return conf_set_secret(&st->k.token, v, vn);
		break;
	case CK_REGION:
		bad = vn > 63 || !conf_charset(v, vn, "-", false, true);
		if (!bad)
			return conf_set_str(st, k, &st->c->region, v, vn);
		break;
	case CK_STORAGE_CLASS:
		bad = vn > 63 || !conf_charset(v, vn, "_", true, false);
		if (!bad)
			return conf_set_str(st, k, &st->c->storage_class, v, vn);
		break;
	case CK_CA_FILE:
		return conf_set_str(st, k, &st->c->ca_file, v, vn);
	case CK_ADDRESSING:
		if (vn == 4 && !memcmp(v, "path", 4))
			u = 0;
		else if (vn == 12 && !memcmp(v, "virtual-host", 12))
			u = 1;
		else
			return kl_fail(st->err, -KL_EUSAGE,
				       "line %u: addressing is 'path' or 'virtual-host'", line);
		if (st->spec >= 0 && st->spec >= st->best[k]) {
			st->c->virtual_host = (int)u;
			st->best[k] = st->spec;
		}
		return 0;
	case CK_CONNECTIONS:
	case CK_RETRIES:
	case CK_TIMEOUT: {
		static const unsigned lim[][2] = {{1, 256}, {1, 100}, {1, 86400}};
		unsigned *dst[] = {&st->c->connections, &st->c->retries, &st->c->timeout};
		size_t i = (size_t)(k - CK_CONNECTIONS);

		if (conf_uint(v, vn, lim[i][0], lim[i][1], &u) < 0)
			return kl_fail(st->err, -KL_EUSAGE, "line %u: %s is a number from %u to %u",
				       line, conf_keys[k], lim[i][0], lim[i][1]);
		if (st->spec >= 0 && st->spec >= st->best[k]) {
			*dst[i] = u;
			st->best[k] = st->spec;
		}
		return 0;
	}
	default:
		break;
	}
	/* never the value: it may be a secret */
	return kl_fail(st->err, -KL_EUSAGE, "line %u: the value of %s is malformed", line,
		       conf_keys[k]);
}

/* The lines come from keel's INI lexer (keel/ini.h), which the daemon's configuration shares. */
static int conf_item(const struct kl_ini_item *it, void *userdata)
{
	return it->key ? conf_setting(userdata, it) : conf_header(userdata, it);
}

int kl_s3_conf_parse(const char *text, size_t n, const char *location, struct kl_s3_conf *ret,
		     struct kl_err *err)
{
	struct conf_state st = {.c = ret, .err = err, .loc = KL_BUF_INIT(1u << 16), .spec = -1};
	int r = 0;

	memset(ret, 0, sizeof(*ret));
	ret->virtual_host = -1;
	for (size_t i = 0; i < CK_N; i++)
		st.best[i] = -1;
	if (location) {
		r = conf_normalize(location, strlen(location), &st.loc);
		if (r == -ENOMEM)
			goto out;
		st.have_loc = r >= 0;
		r = 0;
	}
	r = kl_ini_parse(text, n, 0, conf_item, &st, err);
	if (r >= 0)
		r = conf_end_section(&st);
out:
	kl_s3_creds_release(&st.k);
	kl_free(st.sect_name);
	kl_buf_release(&st.loc);
	return r < 0 ? r : 0;
}

static int conf_path(char **ret, bool *explicit)
{
	const char *v = getenv("KEEL_CONFIG"), *base;
	const char *suffix = "/keel/config";
	size_t n;

	*ret = NULL;
	*explicit = v && *v;
	if (*explicit) {
		*ret = kl_strdup(v);
		return *ret ? 0 : -ENOMEM;
	}
	base = getenv("XDG_CONFIG_HOME");
	if (!base || base[0] != '/') {
		base = getenv("HOME");
		if (!base || base[0] != '/')
			return 0;
		suffix = "/.config/keel/config";
	}
	n = strlen(base) + strlen(suffix) + 1;
	*ret = kl_malloc(n);
	if (!*ret)
		return -ENOMEM;
	snprintf(*ret, n, "%s%s", base, suffix);
	return 0;
}

int kl_s3_conf_load(const char *location, struct kl_s3_conf *ret, char **path_ret,
		    struct kl_err *err)
{
	_cleanup_buf_ struct kl_buf text = KL_BUF_INIT(1u << 20);
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int fd = -1;
	struct kl_err perr = {0};
	struct stat sb;
	bool explicit;
	size_t got = 0;
	int r;

	memset(ret, 0, sizeof(*ret));
	ret->virtual_host = -1;
	*path_ret = NULL;
	r = conf_path(&path, &explicit);
	if (r < 0 || !path)
		return r;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		r = -errno;
		if (r == -ENOENT && !explicit) {
			*path_ret = KL_TAKE_PTR(path); /* named in messages all the same */
			return 0;
		}
		return kl_fail(err, r == -ENOENT ? -KL_EUSAGE : r,
			       "cannot read the configuration file '%s': %s", path, kl_strerror(r));
	}
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode))
		return kl_fail(err, -KL_EUSAGE, "configuration file '%s' is not a regular file",
			       path);
	if (sb.st_size >= (off_t)text.max)
		return kl_fail(err, -KL_EUSAGE, "configuration file '%s' is larger than 1 MiB",
			       path);
	r = kl_buf_grow(&text, (size_t)sb.st_size + 1);
	if (r >= 0)
		r = kl_fs_read_full(fd, text.data, (size_t)sb.st_size + 1, &got);
	if (r >= 0 && got > (size_t)sb.st_size)
		r = -EAGAIN; /* grew while we read it */
	if (r < 0) {
		kl_wipe(text.data, text.cap);
		return kl_fail(err, r == -ENOMEM ? r : -KL_EUSAGE,
			       "cannot read the configuration file '%s': %s", path, kl_strerror(r));
	}
	text.len = got;
	r = kl_s3_conf_parse((const char *)text.data, text.len, location, ret, &perr);
	kl_wipe(text.data, text.len);
	if (r == -KL_EUSAGE) /* the parser's "line N: ..." gets the file's name in front */
		return kl_fail(err, r, "%s: %s", path, perr.msg);
	if (r < 0)
		return r;
	if (ret->has_secret && ((sb.st_mode & 077) || (sb.st_uid != getuid() && sb.st_uid != 0))) {
		kl_s3_conf_release(ret);
		if (sb.st_mode & 077)
			return kl_fail(err, -KL_EUSAGE,
				       "configuration file '%s' holds secret keys but others may "
				       "read it (mode %04o): chmod 600 '%s'",
				       path, (unsigned)(sb.st_mode & 07777), path);
		return kl_fail(err, -KL_EUSAGE,
			       "configuration file '%s' holds secret keys but belongs to "
			       "another user (uid %u)",
			       path, (unsigned)sb.st_uid);
	}
	*path_ret = KL_TAKE_PTR(path);
	return 0;
}
