/*
 * Fuzzes kl_s3_conf_parse, keel's configuration file (docs/S3.md). The
 * first byte picks the repository location. Oracles: only -KL_EUSAGE
 * (with a "line N: " message) or -ENOMEM are failures; a file is valid
 * or not whatever the location (matching never changes validation);
 * parsing is deterministic; what is accepted keeps the invariants the
 * backend relies on (a whole key pair or none, bounded, no control
 * characters, settings within their ranges).
 */
#include <stdio.h>
#include <stdlib.h>

#include "keel/s3.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const locations[] = {
	"s3:https://rgw.example.net/backup/web1",
	"s3:http://127.0.0.1:7480/bucket",
	"s3:h/b",
	"s3:https://S3.Example.NET:8443/Bucket/a/b/c",
};

static bool clean(const char *s)
{
	if (!s)
		return true;
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 && *s != '\t')
			return false;
	return true;
}

static bool str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

static bool conf_eq(const struct kl_s3_conf *a, const struct kl_s3_conf *b)
{
	return str_eq(a->creds.access_key, b->creds.access_key) &&
	       str_eq(a->creds.secret_key, b->creds.secret_key) &&
	       str_eq(a->creds.token, b->creds.token) &&
	       str_eq(a->creds_section, b->creds_section) && a->creds_line == b->creds_line &&
	       str_eq(a->region, b->region) && str_eq(a->storage_class, b->storage_class) &&
	       str_eq(a->ca_file, b->ca_file) && a->virtual_host == b->virtual_host &&
	       a->connections == b->connections && a->retries == b->retries &&
	       a->timeout == b->timeout && a->has_secret == b->has_secret;
}

static void check_accepted(const struct kl_s3_conf *c)
{
	const struct kl_s3_creds *k = &c->creds;

	if (!!k->access_key != !!k->secret_key || (k->token && !k->access_key) ||
	    !!k->access_key != !!c->creds_section || (k->access_key && c->creds_line == 0))
		abort();
	if (k->secret_key && (strlen(k->secret_key) > KL_S3_SECRET_MAX || !*k->secret_key))
		abort();
	if (k->access_key && (strchr(k->access_key, '/') || !*k->access_key))
		abort();
	if (!clean(k->access_key) || !clean(k->secret_key) || !clean(k->token) ||
	    !clean(c->region) || !clean(c->storage_class) || !clean(c->ca_file) ||
	    !clean(c->creds_section))
		abort();
	if (c->virtual_host < -1 || c->virtual_host > 1 || c->connections > 256 ||
	    c->retries > 100 || c->timeout > 86400)
		abort();
	if ((k->secret_key || k->token) && !c->has_secret)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kl_s3_conf a, b, n;
	struct kl_err ea = {0}, eb = {0}, en = {0};
	const char *loc;
	int ra, rb, rn;

	if (size < 1)
		return 0;
	loc = locations[data[0] % KL_ARRAY_SIZE(locations)];
	data++;
	size--;
	ra = kl_s3_conf_parse((const char *)data, size, loc, &a, &ea);
	rb = kl_s3_conf_parse((const char *)data, size, loc, &b, &eb);
	rn = kl_s3_conf_parse((const char *)data, size, NULL, &n, &en);
	if (ra == -ENOMEM || rb == -ENOMEM || rn == -ENOMEM)
		goto out;
	if (ra != rb || ra != rn)
		abort();
	if (ra == 0) {
		check_accepted(&a);
		if (!conf_eq(&a, &b))
			abort();
		/* no location: nothing applies */
		if (n.creds.access_key || n.region || n.ca_file || n.storage_class ||
		    n.virtual_host != -1 || n.connections || n.retries || n.timeout ||
		    n.has_secret != a.has_secret)
			abort();
	} else {
		if (ra != -KL_EUSAGE || strncmp(ea.msg, "line ", 5) || strcmp(ea.msg, eb.msg) ||
		    strcmp(ea.msg, en.msg))
			abort();
	}
out:
	kl_s3_conf_release(&a);
	kl_s3_conf_release(&b);
	kl_s3_conf_release(&n);
	return 0;
}
