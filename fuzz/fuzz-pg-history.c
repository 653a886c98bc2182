/*
 * Fuzzes the parser of PostgreSQL timeline history files
 * (kl_pgm_history_parse in src/db/pg-msg.c), which reads what a server
 * sends for TIMELINE_HISTORY and what a repository's log records hold.
 * Oracles: an accepted file has at most max entries, timelines strictly
 * increasing and switch LSNs never going back; written out again as
 * "tli<tab>X/Y" lines, it parses to the same entries.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keel/db.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct kl_pg_switch v[8], w[8];
	static char text[8 * 40];
	size_t n = 0, m = 0, len = 0;
	/* a small max, so the "too many" path is reached too */
	size_t max = size ? (data[0] & 7) + 1 : 8;

	if (kl_pgm_history_parse((const char *)data, size, v, max, &n) < 0)
		return 0;
	if (n > max)
		abort();
	for (size_t i = 0; i < n; i++) {
		if (i && (v[i].tli <= v[i - 1].tli || v[i].end_lsn < v[i - 1].end_lsn))
			abort();
		len += (size_t)snprintf(text + len, sizeof(text) - len, "%" PRIu32 "\t%X/%X\n",
					v[i].tli, (unsigned)(v[i].end_lsn >> 32),
					(unsigned)v[i].end_lsn);
	}
	if (kl_pgm_history_parse(text, len, w, max, &m) < 0 || m != n ||
	    (n && memcmp(v, w, n * sizeof(*v))))
		abort();
	return 0;
}
