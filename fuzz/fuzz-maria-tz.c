/*
 * Fuzzes the time zone and --time parsers of MariaDB restores
 * (src/db/maria-tz.c): a zone comes from --time-zone or from a base
 * backup's Database field 30 (repository data), a time from --time.
 * The first byte chooses. Zones: an accepted one, written out by
 * kl_maria_tz_format, parses to the same zone, and its TZ value is not
 * empty. Times, read in UTC and in +01:30 (fixed offsets: no child
 * process): both accept or both refuse (but at the range's ends), and
 * give the same moment (an offset or Z in the text) or one 5400 s earlier
 * in +01:30 (a local time).
 */
#include <stdlib.h>
#include <string.h>

#include "keel/db.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void zone(const char *s)
{
	struct kl_maria_tz z, z2;
	char text[KL_MARIA_TZ_MAX + 32];

	if (kl_maria_tz_parse(s, &z) < 0)
		return;
	kl_maria_tz_format(&z, text, sizeof(text));
	if (kl_maria_tz_parse(text, &z2) < 0 || strcmp(z.name, z2.name) || z.offset != z2.offset)
		abort();
	kl_maria_tz_env(&z, text, sizeof(text));
	if (!*text)
		abort();
}

/* Within a day of 1970 or of the end of 2199, where kl_maria_parse_time's range ends. */
static bool edge(int64_t ns)
{
	int64_t t = ns / KL_NSEC_PER_SEC;

	return t < 86400 || t > INT64_C(7258118399) - 86400;
}

static void moment(const char *s)
{
	struct kl_maria_tz utc = {0}, plus = {.offset = 5400};
	int64_t a, b;
	int ra = kl_maria_parse_time(s, &utc, &a), rb = kl_maria_parse_time(s, &plus, &b);

	if ((ra < 0) != (rb < 0)) {
		/* a local time near either end of the range may fall out of it in one zone only */
		if ((ra >= 0 && edge(a)) || (rb >= 0 && edge(b)))
			return;
		abort();
	}
	if (ra < 0)
		return;
	/* a local time (5400 s apart) or a moment (the same in both) */
	if (a != b && a - b != 5400 * KL_NSEC_PER_SEC)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;

	if (size < 1 || size > 512)
		return 0;
	s = kl_strndup((const char *)data + 1, size - 1);
	if (!s)
		return 0;
	if (data[0] & 1)
		moment(s);
	else
		zone(s);
	kl_free(s);
	return 0;
}
