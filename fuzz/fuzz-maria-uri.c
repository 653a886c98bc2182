/*
 * Fuzzes the mariadb:// URI parser (kl_maria_uri_parse in
 * src/db/maria-conn.c), which reads what a user or a daemon configuration
 * gives keel. Oracles: an accepted URI names a host or a socket, a port in
 * 1..65535, and written out again by kl_maria_uri_format it parses to the
 * same fields (unless escaping made it longer than
 * KL_MARIA_URI_MAX, which format refuses); a rejected one always says why.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "keel/db.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kl_maria_uri u, v;
	const char *why = NULL;
	static char text[KL_MARIA_URI_MAX * 3 + 64];
	char *s = kl_strndup((const char *)data, size);
	int rc;

	if (!s)
		return 0;
	rc = kl_maria_uri_parse(s, &u, &why);
	if (rc < 0) {
		if (rc == -KL_EUSAGE && !why)
			abort();
		kl_maria_uri_release(&u);
		kl_free(s);
		return 0;
	}
	if ((!u.host && !u.socket) || u.port > 65535)
		abort();
	rc = kl_maria_uri_format(&u, text, sizeof(text));
	if (rc == -E2BIG) /* escaped, longer than a URI may be */
		goto out;
	if (rc < 0)
		abort();
	if (kl_maria_uri_parse(text, &v, &why) < 0 || !same(u.user, v.user) ||
	    !same(u.host, v.host) || u.port != v.port || !same(u.socket, v.socket) ||
	    !same(u.defaults_file, v.defaults_file))
		abort();
	kl_maria_uri_release(&v);
out:
	kl_maria_uri_release(&u);
	kl_free(s);
	return 0;
}
