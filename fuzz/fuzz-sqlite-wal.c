/*
 * Fuzzes the SQLite WAL decoders (src/db/sqlite-wal.c), which read a WAL
 * file other processes write and, in a restore, a log record's commit
 * list. The first byte chooses: even, the rest is a WAL file (a header,
 * then frames followed along their checksum chain as the stream does);
 * odd, a commit list whose bounds come from the next two bytes. Oracles:
 * a valid header encodes back to the same 32 bytes; each valid frame
 * sealed again with the same header and chain gives the same bytes (so
 * restores rewrite frames exactly); a commit list is accepted only with
 * frames strictly increasing inside its bounds.
 */
#include <stdlib.h>
#include <string.h>

#include "keel/db.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void wal(const uint8_t *p, size_t n)
{
	struct kl_sqlite_wal_hdr h, h2;
	uint8_t hdr[KL_SQLITE_WAL_HDR], *copy;
	uint32_t s[2], s2[2];
	size_t fsz;

	if (kl_sqlite_wal_hdr_decode(p, n, &h) < 0)
		return;
	h2 = h;
	kl_sqlite_wal_hdr_encode(&h2, hdr);
	if (memcmp(hdr, p, sizeof(hdr)) || h2.s0 != h.s0 || h2.s1 != h.s1)
		abort();
	fsz = KL_SQLITE_FRAME_HDR + h.page_size;
	copy = malloc(fsz);
	if (!copy)
		return;
	s[0] = s2[0] = h.s0;
	s[1] = s2[1] = h.s1;
	for (size_t off = KL_SQLITE_WAL_HDR; off + fsz <= n; off += fsz) {
		struct kl_sqlite_frame fr;

		if (!kl_sqlite_frame_check(&h, p + off, s, &fr))
			break;
		if (!fr.pgno)
			abort();
		memcpy(copy, p + off, fsz);
		kl_sqlite_frame_seal(&h, copy, s2);
		if (memcmp(copy, p + off, fsz) || s[0] != s2[0] || s[1] != s2[1])
			abort();
	}
	free(copy);
}

static void commits(const uint8_t *p, size_t n)
{
	struct kl_sqlite_commit *v;
	uint32_t first, last;
	size_t cnt;

	if (n < 2)
		return;
	first = p[0];
	last = first + p[1] * 64u;
	if (kl_sqlite_commits_parse(p + 2, n - 2, first, last, &v, &cnt) < 0) {
		if (v || cnt)
			abort();
		return;
	}
	for (size_t i = 0; i < cnt; i++)
		if (v[i].frame < first || v[i].frame > last || v[i].time_ns < 0 ||
		    (i && v[i].frame <= v[i - 1].frame))
			abort();
	kl_free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!size)
		return 0;
	if (data[0] & 1)
		commits(data + 1, size - 1);
	else
		wal(data + 1, size - 1);
	return 0;
}
