/*
 * The S3 backend's settings when it opens: each from the environment,
 * else keel's configuration file, else its default; and the key pair, from
 * the environment, the configuration file or the shared credentials file.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "keel/crypto.h"
#include "keel/fs.h"
#include "s3-internal.h"

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
int kl_s3_load_creds_(struct s3 *s, struct kl_s3_conf *conf, const char *conf_path)
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
int kl_s3_load_settings_(struct s3 *s, const struct kl_s3_conf *conf)
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
