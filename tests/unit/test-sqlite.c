/*
 * src/db's SQLite WAL decoders without a database: a header that SQLite
 * 3.40 wrote (its checksum computed by SQLite, not by keel), frames sealed
 * by keel accepted along the chain and refused when a byte, a salt or the
 * order changes, and commit lists.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "keel/db.h"

/* the first 32 bytes of a WAL of a 512-byte-page database, as sqlite3 3.40.1 wrote them */
static const uint8_t sqlite_hdr[32] = {
	0x37, 0x7f, 0x06, 0x82, 0x00, 0x2d, 0xe2, 0x18, 0x00, 0x00, 0x02,
	0x00, 0x00, 0x00, 0x00, 0x00, 0xdd, 0x1d, 0x02, 0x83, 0x09, 0xed,
	0xaf, 0x12, 0x57, 0xcd, 0x20, 0xf0, 0x22, 0x56, 0xe5, 0x9e,
};

static void header_from_sqlite(void **state)
{
	struct kl_sqlite_wal_hdr h;
	uint8_t out[32], bad[32];

	assert_int_equal(kl_sqlite_wal_hdr_decode(sqlite_hdr, sizeof(sqlite_hdr), &h), 0);
	assert_int_equal(h.page_size, 512);
	assert_false(h.big_endian);
	assert_int_equal(h.salt1, 0xdd1d0283);
	kl_sqlite_wal_hdr_encode(&h, out);
	assert_memory_equal(out, sqlite_hdr, 32);
	for (size_t i = 0; i < 32; i++) {
		memcpy(bad, sqlite_hdr, 32);
		bad[i] ^= 0x10;
		assert_int_equal(kl_sqlite_wal_hdr_decode(bad, 32, &h), -KL_ECORRUPT);
	}
	assert_int_equal(kl_sqlite_wal_hdr_decode(sqlite_hdr, 31, &h), -KL_ECORRUPT);
}

#define PS 512
#define FSZ (KL_SQLITE_FRAME_HDR + PS)

static void frame(uint8_t *f, uint32_t pgno, uint32_t commit, uint8_t fill)
{
	memset(f, 0, FSZ);
	f[3] = (uint8_t)pgno;
	f[7] = (uint8_t)commit;
	memset(f + KL_SQLITE_FRAME_HDR, fill, PS);
}

static void frames_chain(void **state)
{
	struct kl_sqlite_wal_hdr h = {.page_size = PS, .salt1 = 7, .salt2 = 9}, other;
	uint8_t hdr[32], f[3][FSZ];
	uint32_t s[2], c[2];
	struct kl_sqlite_frame fr;

	kl_sqlite_wal_hdr_encode(&h, hdr);
	s[0] = h.s0;
	s[1] = h.s1;
	for (int i = 0; i < 3; i++) {
		frame(f[i], (uint32_t)i + 1, i == 2 ? 3 : 0, (uint8_t)i);
		kl_sqlite_frame_seal(&h, f[i], s);
	}
	c[0] = h.s0;
	c[1] = h.s1;
	for (int i = 0; i < 3; i++)
		assert_int_equal(kl_sqlite_frame_check(&h, f[i], c, &fr), 1);
	assert_int_equal(fr.pgno, 3);
	assert_int_equal(fr.db_pages, 3);
	assert_memory_equal(c, s, sizeof(c));
	/* out of order: the chain breaks */
	c[0] = h.s0;
	c[1] = h.s1;
	assert_int_equal(kl_sqlite_frame_check(&h, f[1], c, &fr), 0);
	assert_int_equal(c[0], h.s0); /* a refused frame leaves the chain as it was */
	/* a changed page byte, and another generation's salts */
	f[0][KL_SQLITE_FRAME_HDR + 100] ^= 1;
	assert_int_equal(kl_sqlite_frame_check(&h, f[0], c, &fr), 0);
	f[0][KL_SQLITE_FRAME_HDR + 100] ^= 1;
	other = h;
	other.salt1++;
	assert_int_equal(kl_sqlite_frame_check(&other, f[0], c, &fr), 0);
	/* sealed again for another header (a restore's WAL): valid there */
	kl_sqlite_wal_hdr_encode(&other, hdr);
	c[0] = other.s0;
	c[1] = other.s1;
	kl_sqlite_frame_seal(&other, f[0], c);
	c[0] = other.s0;
	c[1] = other.s1;
	assert_int_equal(kl_sqlite_frame_check(&other, f[0], c, &fr), 1);
}

static void commits(void **state)
{
	static const char good[] = "3 100\n5 200\n9 9223372036854775807\n";
	static const char *bad[] = {
		"3 100\n3 200\n", "5 100\n3 200\n", "2 100\n",
		"10 100\n",	  "3 100",	    "3  100\n",
		"x 1\n",	  "3 -1\n",	    "3 9223372036854775808\n",
	};
	struct kl_sqlite_commit *v;
	size_t n;

	assert_int_equal(kl_sqlite_commits_parse((const uint8_t *)good, strlen(good), 3, 9, &v, &n),
			 0);
	assert_int_equal(n, 3);
	assert_int_equal(v[1].frame, 5);
	assert_true(v[2].time_ns == INT64_MAX);
	kl_free(v);
	assert_int_equal(kl_sqlite_commits_parse((const uint8_t *)"", 0, 1, 1, &v, &n), 0);
	assert_int_equal(n, 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(kl_sqlite_commits_parse((const uint8_t *)bad[i], strlen(bad[i]), 3,
							 9, &v, &n),
				 -KL_ECORRUPT);
		assert_null(v);
	}
}

/* ---- the chain db check follows (kl_db_sqlite_gaps) ---- */

#define POS(g, f) ((uint64_t)(g) << 32 | (f))

static void ref(struct kl_snapshot_ref *r, uint32_t role, uint64_t start, uint64_t stop,
		uint32_t salt1, uint32_t ckpt)
{
	memset(r, 0, sizeof(*r));
	r->s.has_db = true;
	r->s.db.engine = KL_DB_SQLITE;
	r->s.db.role = role;
	r->s.db.timeline = (uint32_t)(stop >> 32);
	r->s.db.start_lsn = start;
	r->s.db.stop_lsn = stop;
	r->s.db.wal_salt1 = salt1;
	r->s.db.wal_salt2 = 7;
	r->s.db.wal_ckpt_seq = ckpt;
}

static size_t gaps(struct kl_snapshot_ref *bases, size_t nb, struct kl_snapshot_ref *logs,
		   size_t nl)
{
	struct kl_db_info d = {.engine = KL_DB_SQLITE};
	size_t n = 0;

	d.bases = bases;
	d.n_bases = nb;
	d.logs = logs;
	d.n_logs = nl;
	assert_int_equal(kl_db_sqlite_gaps(&d, NULL, &n), 0);
	return n;
}

static void chain_gaps(void **state)
{
	struct kl_snapshot_ref b[2], l[4];

	/* base at 1/5, records 1/5..1/9, a reset (salt-1 and ckpt + 1) 1/9..2/3, 2/3..2/8 */
	ref(&b[0], KL_DB_BASE, POS(1, 5), POS(1, 5), 100, 4);
	ref(&l[0], KL_DB_LOG, POS(1, 5), POS(1, 9), 100, 4);
	ref(&l[1], KL_DB_LOG, POS(1, 9), POS(2, 3), 101, 5);
	ref(&l[2], KL_DB_LOG, POS(2, 3), POS(2, 8), 101, 5);
	assert_int_equal(gaps(b, 1, l, 3), 0);
	/* the new generation is not the next one of the WAL (another salt-1): a break */
	l[1].s.db.wal_salt1 = 300;
	l[2].s.db.wal_salt1 = 300;
	assert_int_equal(gaps(b, 1, l, 3), 1);
	l[1].s.db.wal_salt1 = 101;
	l[2].s.db.wal_salt1 = 101;
	/* same generation, other salts: the WAL was replaced */
	l[0].s.db.wal_salt2 = 8;
	assert_int_equal(gaps(b, 1, l, 3), 1);
	l[0].s.db.wal_salt2 = 7;
	/* a record missing in the middle */
	assert_int_equal(gaps(b, 1, (struct kl_snapshot_ref[]){l[0], l[2]}, 2), 1);
	/* a record starting inside the one before (a fold killed halfway): no gap */
	ref(&l[3], KL_DB_LOG, POS(1, 7), POS(1, 9), 100, 4);
	assert_int_equal(gaps(b, 1, (struct kl_snapshot_ref[]){l[0], l[3], l[1], l[2]}, 4), 0);
	/* a new base copy in a later generation after the chain ended: the hole between */
	ref(&b[1], KL_DB_BASE, POS(4, 2), POS(4, 2), 900, 1);
	assert_int_equal(gaps(b, 2, l, 3), 1);
	/* records older than the oldest base copy are not a gap */
	ref(&l[3], KL_DB_LOG, POS(1, 1), POS(1, 3), 100, 4);
	assert_int_equal(gaps(b, 1, (struct kl_snapshot_ref[]){l[3], l[0], l[1], l[2]}, 4), 0);
	/* a base copy taken before the WAL had a header: any first generation */
	ref(&b[0], KL_DB_BASE, POS(1, 0), POS(1, 0), 0, 0);
	b[0].s.db.wal_salt2 = 0;
	ref(&l[0], KL_DB_LOG, POS(1, 0), POS(1, 9), 100, 4);
	assert_int_equal(gaps(b, 1, l, 3), 0);
}

static void chain_bridge(void **state)
{
	struct kl_snapshot_ref b[1], l[3];

	/* the WAL removed after 1/9 and the file found equal: a record of no frames to 3/0, salts 0
	 */
	ref(&b[0], KL_DB_BASE, POS(1, 5), POS(1, 5), 100, 4);
	ref(&l[0], KL_DB_LOG, POS(1, 5), POS(1, 9), 100, 4);
	ref(&l[1], KL_DB_LOG, POS(1, 9), POS(3, 0), 0, 0);
	l[1].s.db.wal_salt2 = 0;
	/* then a new WAL of any salts from its first frame */
	ref(&l[2], KL_DB_LOG, POS(3, 0), POS(3, 6), 5555, 0);
	assert_int_equal(gaps(b, 1, l, 3), 0);
	/* a record that ends at frame 0 but names salts is no bridge: a break */
	l[1].s.db.wal_salt1 = 42;
	assert_int_equal(gaps(b, 1, l, 3), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(header_from_sqlite),
		cmocka_unit_test(frames_chain),
		cmocka_unit_test(commits),
		cmocka_unit_test(chain_gaps),
		cmocka_unit_test(chain_bridge),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
