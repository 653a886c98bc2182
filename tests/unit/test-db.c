/*
 * src/db without a server: the tar stream parser (every header form the
 * writers use, paths cleaned, damage refused, any split of the input),
 * LSNs, the replication protocol's messages, timeline history files and
 * the log's retention rule.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "db/pg-internal.h"
#include "keel/db.h"

/* ---- writing archives ---- */

static void octal(uint8_t *f, size_t n, uint64_t v)
{
	f[n - 1] = 0;
	for (size_t i = n - 1; i-- > 0; v >>= 3)
		f[i] = (uint8_t)('0' + (v & 7));
}

static void header(struct kl_buf *out, const char *name, int type, uint64_t size, const char *link,
		   const char *prefix)
{
	uint8_t h[512] = {0};
	unsigned sum = 0;

	memcpy(h, name, strnlen(name, 100));
	octal(h + 100, 8, type == '5' ? 0700 : 0640);
	octal(h + 108, 8, 101);
	octal(h + 116, 8, 104);
	octal(h + 124, 12, size);
	octal(h + 136, 12, 1700000000);
	h[156] = (uint8_t)type;
	if (link)
		memcpy(h + 157, link, strnlen(link, 100));
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	memcpy(h + 265, "postgres", 8);
	memcpy(h + 297, "pgroup", 6);
	if (prefix)
		memcpy(h + 345, prefix, strlen(prefix));
	memset(h + 148, ' ', 8);
	for (size_t i = 0; i < 512; i++)
		sum += h[i];
	octal(h + 148, 7, sum);
	assert_int_equal(kl_buf_add(out, h, 512), 0);
}

static void body(struct kl_buf *out, const void *p, size_t n)
{
	static const uint8_t zeros[512];

	assert_int_equal(kl_buf_add(out, p, n), 0);
	if (n % 512)
		assert_int_equal(kl_buf_add(out, zeros, 512 - n % 512), 0);
}

static void member(struct kl_buf *out, const char *name, int type, const char *data,
		   const char *link)
{
	size_t n = data ? strlen(data) : 0;

	header(out, name, type, n, link, NULL);
	body(out, data, n);
}

static void trailer(struct kl_buf *out)
{
	static const uint8_t zeros[1024];

	assert_int_equal(kl_buf_add(out, zeros, sizeof(zeros)), 0);
}

/* ---- reading them: every event as a line of text ---- */

struct events {
	struct kl_buf log;
};

static int on_entry(void *ud, const struct kl_tar_entry *e)
{
	struct events *ev = ud;

	return kl_buf_addf(&ev->log, "E %u %s %o %u:%u %s:%s %lld %llu [%s]\n", e->type, e->path,
			   e->mode, e->uid, e->gid, e->user, e->group, (long long)e->mtime,
			   (unsigned long long)e->size, e->link);
}

static int on_data(void *ud, const uint8_t *p, size_t n)
{
	struct events *ev = ud;

	return kl_buf_add(&ev->log, p, n);
}

static int on_end(void *ud)
{
	struct events *ev = ud;

	return kl_buf_addstr(&ev->log, "\nZ\n");
}

static const struct kl_tar_ops ops = {on_entry, on_data, on_end};

/* Parses in pieces of piece bytes; returns the result, *log_ret the events. */
static int parse(const struct kl_buf *in, size_t piece, char **log_ret)
{
	struct events ev;
	struct kl_tar t;
	int r = 0;

	kl_buf_init(&ev.log, 1 << 24);
	kl_tar_init(&t, &ops, &ev);
	for (size_t o = 0; r >= 0 && o < in->len; o += piece)
		r = kl_tar_feed(&t, in->data + o, in->len - o < piece ? in->len - o : piece);
	if (r >= 0)
		r = kl_tar_finish(&t);
	kl_tar_release(&t);
	*log_ret = (char *)kl_buf_detach(&ev.log, NULL);
	return r;
}

/* Parses whole and in pieces of 1, 7, 511 and 513 bytes: the same each time. */
static int parse_all(const struct kl_buf *in, char **log_ret)
{
	static const size_t pieces[] = {1, 7, 511, 513};
	int r = parse(in, in->len ? in->len : 1, log_ret);

	for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
		char *log;

		assert_int_equal(parse(in, pieces[i], &log), r);
		assert_string_equal(log, *log_ret);
		kl_free(log);
	}
	return r;
}

static void tar_ustar(void **state)
{
	struct kl_buf in = KL_BUF_INIT(1 << 24);
	char big[1201], *log;

	memset(big, 'x', 1200);
	big[1200] = 0;
	member(&in, "./", '5', NULL, NULL); /* the top: no event */
	member(&in, "global/", '5', NULL, NULL);
	member(&in, "global/1262", '0', big, NULL);
	member(&in, "PG_VERSION", 0, "15\n", NULL); /* old-style type NUL */
	member(&in, "pg_tblspc/16384", '2', NULL, "/srv/ts");
	member(&in, "empty", '0', NULL, NULL);
	header(&in, "name", '0', 2, NULL, "the/prefix");
	body(&in, "pf", 2);
	trailer(&in);
	assert_int_equal(parse_all(&in, &log), 0);
	char want[4096];
	snprintf(want, sizeof(want),
		 "E 2 global 700 101:104 postgres:pgroup 1700000000 0 []\n\nZ\n"
		 "E 1 global/1262 640 101:104 postgres:pgroup 1700000000 1200 []\n%s\nZ\n"
		 "E 1 PG_VERSION 640 101:104 postgres:pgroup 1700000000 3 []\n15\n\nZ\n"
		 "E 3 pg_tblspc/16384 640 101:104 postgres:pgroup 1700000000 0 [/srv/ts]\n\nZ\n"
		 "E 1 empty 640 101:104 postgres:pgroup 1700000000 0 []\n\nZ\n"
		 "E 1 the/prefix/name 640 101:104 postgres:pgroup 1700000000 2 []\npf\nZ\n",
		 big);
	assert_string_equal(log, want);
	kl_free(log);
	kl_buf_release(&in);
}

static void tar_long_names(void **state)
{
	struct kl_buf in = KL_BUF_INIT(1 << 24);
	char name[301], pax[400], *log, want[2048];

	memset(name, 'n', 300);
	name[0] = 'a';
	name[1] = '/';
	name[300] = 0;
	/* GNU: an 'L' member holds the next member's name */
	header(&in, "././@LongLink", 'L', 301, NULL, NULL);
	body(&in, name, 301);
	member(&in, "cut-short", '0', "gnu", NULL);
	/* pax: path and size override the header's */
	snprintf(pax, sizeof(pax), "%zu path=p/%s\n", strlen(name) + 10, name + 2);
	assert_int_equal(strlen(pax), strlen(name) + 10);
	memcpy(pax + strlen(pax), "10 size=3\n", 11);
	header(&in, "PaxHeaders/x", 'x', strlen(pax), NULL, NULL);
	body(&in, pax, strlen(pax));
	header(&in, "short", '0', 0, NULL, NULL);
	body(&in, "pax", 3);
	trailer(&in);
	assert_int_equal(parse_all(&in, &log), 0);
	snprintf(want, sizeof(want),
		 "E 1 %s 640 101:104 postgres:pgroup 1700000000 3 []\ngnu\nZ\n"
		 "E 1 p/%s 640 101:104 postgres:pgroup 1700000000 3 []\npax\nZ\n",
		 name, name + 2);
	assert_string_equal(log, want);
	kl_free(log);
	kl_buf_release(&in);
}

static void tar_paths_cleaned(void **state)
{
	struct kl_buf in = KL_BUF_INIT(1 << 24);
	char *log;

	member(&in, "/abs/./x//y", '0', "1", NULL);
	trailer(&in);
	assert_int_equal(parse_all(&in, &log), 0);
	assert_non_null(strstr(log, "E 1 abs/x/y "));
	kl_free(log);
	kl_buf_release(&in);
}

/* Each of these archives is refused as damaged. */
static void tar_refused(void **state)
{
	for (int c = 0; c < 8; c++) {
		struct kl_buf in = KL_BUF_INIT(1 << 24);
		char *log;

		switch (c) {
		case 0: /* climbing out */
			member(&in, "a/../../etc/passwd", '0', "x", NULL);
			break;
		case 1: /* a hard link */
			member(&in, "h", '1', NULL, "a");
			break;
		case 2: /* a checksum that does not match */
			member(&in, "f", '0', "data", NULL);
			in.data[0] = 'g';
			break;
		case 3: /* cut short in the data */
			member(&in, "f", '0', "data", NULL);
			kl_buf_setlen(&in, 512 + 2);
			break;
		case 4: /* cut short in a header */
			member(&in, "f", '0', "data", NULL);
			kl_buf_setlen(&in, 1024 + 100);
			break;
		case 5: /* something after the end */
			trailer(&in);
			member(&in, "late", '0', "x", NULL);
			break;
		case 6: /* a directory with data */
			header(&in, "d", '5', 3, NULL, NULL);
			body(&in, "abc", 3);
			break;
		case 7: /* a long name for no member */
			header(&in, "././@LongLink", 'L', 5, NULL, NULL);
			body(&in, "name", 5);
			trailer(&in);
			break;
		}
		if (c != 3 && c != 4 && c != 5 && c != 7)
			trailer(&in);
		assert_int_equal(parse_all(&in, &log), -KL_ECORRUPT);
		kl_free(log);
		kl_buf_release(&in);
	}
}

/* PostgreSQL's server leaves the trailer out: the end between members is the end. */
static void tar_no_trailer(void **state)
{
	struct kl_buf in = KL_BUF_INIT(1 << 24);
	char *log;

	member(&in, "f", '0', "data", NULL);
	assert_int_equal(parse_all(&in, &log), 0);
	assert_non_null(strstr(log, "data\nZ\n"));
	kl_free(log);
	kl_buf_release(&in);
}

static void lsn(void **state)
{
	uint64_t v;
	char buf[32];

	assert_int_equal(kl_db_lsn_parse("0/3000028", &v), 0);
	assert_true(v == 0x3000028);
	assert_int_equal(kl_db_lsn_parse("1A/ff", &v), 0);
	assert_true(v == 0x1a000000ffull);
	kl_db_lsn_format(v, buf, sizeof(buf));
	assert_string_equal(buf, "1A/FF");
	kl_db_lsn_format(UINT64_MAX, buf, sizeof(buf));
	assert_string_equal(buf, "FFFFFFFF/FFFFFFFF");
	assert_int_equal(kl_db_lsn_parse(buf, &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(kl_db_lsn_parse("", &v), -KL_EUSAGE);
	assert_int_equal(kl_db_lsn_parse("0/", &v), -KL_EUSAGE);
	assert_int_equal(kl_db_lsn_parse("/1", &v), -KL_EUSAGE);
	assert_int_equal(kl_db_lsn_parse("1/2/3", &v), -KL_EUSAGE);
	assert_int_equal(kl_db_lsn_parse("100000000/0", &v), -KL_EUSAGE);
	assert_int_equal(kl_db_lsn_parse("g/0", &v), -KL_EUSAGE);
	assert_false(kl_db_name_valid(""));
	assert_false(kl_db_name_valid("a b"));
	assert_true(kl_db_name_valid("pg-7449223188302567890"));
}

/* recovery_target_time as keel reads it to choose the base backup */
static void pitr_time(void **state)
{
	int64_t t;

	assert_int_equal(kl_pgr_parse_time("2026-12-05 23:40:01.123456+00", &t), 0);
	assert_true(t == 1796514001123456000ll);
	assert_int_equal(kl_pgr_parse_time("2026-12-06 00:40:01.123456+01:00", &t), 0);
	assert_true(t == 1796514001123456000ll);
	assert_int_equal(kl_pgr_parse_time("2026-12-05T23:40:01Z", &t), 0);
	assert_true(t == 1796514001000000000ll);
	assert_int_equal(kl_pgr_parse_time("2026-12-05 20:40:01-0300", &t), 0);
	assert_true(t == 1796514001000000000ll);
	assert_int_equal(kl_pgr_parse_time("2999-01-01 00:00:00+00", &t), 0);
	assert_true(t > 1796514001000000000ll);
	/* no offset: the server's zone, which keel cannot know */
	assert_int_equal(kl_pgr_parse_time("2026-12-05 23:40:01", &t), -KL_EUSAGE);
	assert_int_equal(kl_pgr_parse_time("2026-13-05 23:40:01+00", &t), -KL_EUSAGE);
	assert_int_equal(kl_pgr_parse_time("2026-12-05 23:40+00", &t), -KL_EUSAGE);
	assert_int_equal(kl_pgr_parse_time("2026-12-05 23:40:01.1234567890+00", &t), -KL_EUSAGE);
	assert_int_equal(kl_pgr_parse_time("2026-12-05 23:40:01+00 ", &t), -KL_EUSAGE);
	assert_int_equal(kl_pgr_parse_time("", &t), -KL_EUSAGE);
}

/* ---- replication messages (pg-msg.c) ---- */

static void be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static void msg_stream(void **state)
{
	uint8_t w[28] = {'w'}, k[18] = {'k'};
	struct kl_pgm_stream m;

	be64(w + 1, 0x100000028ull);
	be64(w + 9, 0x200000000ull);
	be64(w + 17, 123456789);
	memcpy(w + 25, "abc", 3);
	assert_int_equal(kl_pgm_stream_decode(w, sizeof(w), &m), 0);
	assert_int_equal(m.type, 'w');
	assert_true(m.start_lsn == 0x100000028ull);
	assert_true(m.end_lsn == 0x200000000ull);
	assert_true(m.send_time == 123456789);
	assert_ptr_equal(m.data, w + 25);
	assert_int_equal(m.len, 3);
	/* no WAL bytes is valid, one header byte short is not */
	assert_int_equal(kl_pgm_stream_decode(w, 25, &m), 0);
	assert_int_equal(m.len, 0);
	assert_int_equal(kl_pgm_stream_decode(w, 24, &m), -KL_ECORRUPT);
	assert_int_equal(m.type, 'w');
	assert_int_equal(kl_pgm_stream_decode(w, 1, &m), -KL_ECORRUPT);

	be64(k + 1, 0x300000000ull);
	be64(k + 9, 42);
	k[17] = 1;
	assert_int_equal(kl_pgm_stream_decode(k, sizeof(k), &m), 0);
	assert_int_equal(m.type, 'k');
	assert_true(m.end_lsn == 0x300000000ull);
	assert_true(m.send_time == 42);
	assert_true(m.reply);
	k[17] = 0;
	assert_int_equal(kl_pgm_stream_decode(k, sizeof(k), &m), 0);
	assert_false(m.reply);
	assert_int_equal(kl_pgm_stream_decode(k, 17, &m), -KL_ECORRUPT);
	assert_int_equal(m.type, 'k');

	assert_int_equal(kl_pgm_stream_decode(k, 0, &m), -KL_ECORRUPT);
	assert_int_equal(m.type, 0);
	assert_int_equal(kl_pgm_stream_decode((const uint8_t *)"r123", 4, &m), -KL_ECORRUPT);
	assert_int_equal(m.type, 'r');
}

static void msg_backup(void **state)
{
	static const uint8_t n1[] = "nbase.tar\0/srv/ts", p1[] = {'p', 0, 0, 0, 0, 0, 0, 1, 2};
	struct kl_pgm_backup m;

	/* sizeof includes the literal's final NUL: the location's terminator */
	assert_int_equal(kl_pgm_backup_decode(n1, sizeof(n1), &m), 0);
	assert_int_equal(m.type, 'n');
	assert_string_equal(m.name, "base.tar");
	assert_string_equal(m.location, "/srv/ts");
	assert_int_equal(kl_pgm_backup_decode((const uint8_t *)"n16384.tar\0\0", 13, &m), 0);
	assert_string_equal(m.name, "16384.tar");
	assert_string_equal(m.location, "");
	/* a name or a location without its NUL */
	for (size_t n = 0; n < sizeof(n1); n++) {
		assert_int_equal(kl_pgm_backup_decode(n1, n, &m), -KL_ECORRUPT);
		assert_null(m.name);
	}

	assert_int_equal(kl_pgm_backup_decode((const uint8_t *)"dxyz", 4, &m), 0);
	assert_int_equal(m.type, 'd');
	assert_int_equal(m.len, 3);
	assert_memory_equal(m.data, "xyz", 3);
	assert_int_equal(kl_pgm_backup_decode((const uint8_t *)"d", 1, &m), 0);
	assert_int_equal(m.len, 0);

	assert_int_equal(kl_pgm_backup_decode(p1, sizeof(p1), &m), 0);
	assert_int_equal(m.type, 'p');
	assert_true(m.progress == 0x102);
	assert_int_equal(kl_pgm_backup_decode(p1, sizeof(p1) - 1, &m), -KL_ECORRUPT);
	assert_int_equal(m.type, 'p');

	assert_int_equal(kl_pgm_backup_decode((const uint8_t *)"m", 1, &m), 0);
	assert_int_equal(m.type, 'm');
	assert_int_equal(kl_pgm_backup_decode(p1, 0, &m), -KL_ECORRUPT);
	assert_int_equal(m.type, 0);
	assert_int_equal(kl_pgm_backup_decode((const uint8_t *)"w", 1, &m), -KL_ECORRUPT);
	assert_int_equal(m.type, 'w');
}

/* ---- timeline history files ---- */

static void history(void **state)
{
	static const char ok[] = "1\t0/3000158\tno recovery target specified\n"
				 "\n# a comment\n"
				 "2\t0/5000000\tat restore point \"x\"\n";
	struct kl_pg_switch v[4];
	size_t n = 9;

	(void)state;
	assert_int_equal(kl_pgm_history_parse(ok, strlen(ok), v, 4, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(v[0].tli, 1);
	assert_int_equal(v[0].end_lsn, 0x3000158);
	assert_int_equal(v[1].tli, 2);
	assert_int_equal(v[1].end_lsn, 0x5000000);
	assert_int_equal(kl_pgm_history_parse("", strlen(""), v, 4, &n), 0);
	assert_int_equal(n, 0);
	/* too many, timelines not increasing, LSNs going back, junk */
	assert_int_equal(kl_pgm_history_parse(ok, strlen(ok), v, 1, &n), -KL_ECORRUPT);
	assert_int_equal(
		kl_pgm_history_parse("2\t0/1\n1\t0/2\n", strlen("2\t0/1\n1\t0/2\n"), v, 4, &n),
		-KL_ECORRUPT);
	assert_int_equal(
		kl_pgm_history_parse("1\t0/2\n2\t0/1\n", strlen("1\t0/2\n2\t0/1\n"), v, 4, &n),
		-KL_ECORRUPT);
	assert_int_equal(kl_pgm_history_parse("1 x/2\n", strlen("1 x/2\n"), v, 4, &n),
			 -KL_ECORRUPT);
	assert_int_equal(kl_pgm_history_parse("0\t0/2\n", strlen("0\t0/2\n"), v, 4, &n),
			 -KL_ECORRUPT);
	assert_int_equal(
		kl_pgm_history_parse("1\t0/123456789\n", strlen("1\t0/123456789\n"), v, 4, &n),
		-KL_ECORRUPT);
}

/* ---- retention ---- */

static void snap(struct kl_snapshot_ref *r, uint32_t role, const char *name, uint32_t tli,
		 uint64_t start, uint64_t stop)
{
	memset(r, 0, sizeof(*r));
	r->s.has_db = true;
	r->s.db.role = role;
	r->s.db.name = (char *)name;
	r->s.db.timeline = tli;
	r->s.db.start_lsn = start;
	r->s.db.stop_lsn = stop;
}

static void retention(void **state)
{
	struct kl_snapshot_ref v[10];
	bool gone[10] = {0}, touched[10] = {0}, drop[10];

	(void)state;
	snap(&v[0], KL_DB_BASE, "a", 1, 0x1000, 0x1100); /* removed by the policy */
	snap(&v[1], KL_DB_LOG, "a", 1, 0x1000, 0x2000);	 /* before B: dropped */
	snap(&v[2], KL_DB_BASE, "a", 1, 0x2800, 0x2900); /* B: the oldest kept */
	snap(&v[3], KL_DB_LOG, "a", 1, 0x2000, 0x3000);	 /* straddles B's start: kept */
	snap(&v[4], KL_DB_LOG, "a", 2, 0x2000, 0x2000);	 /* a history file: kept */
	snap(&v[5], KL_DB_LOG, "a", 1, 0x2000, 0x2800);	 /* ends at B's start: dropped */
	snap(&v[6], KL_DB_LOG, "b", 1, 0x0, 0x100);	 /* b: not judged, kept */
	snap(&v[7], KL_DB_BASE, "b", 1, 0x1000, 0x1100); /* b's base, not judged */
	snap(&v[8], KL_DB_LOG, "c", 1, 0x0, 0x100);	 /* c: every base removed: kept */
	snap(&v[9], KL_DB_BASE, "c", 1, 0x1000, 0x1100);
	touched[0] = touched[2] = touched[9] = true;
	gone[0] = gone[9] = true;
	assert_int_equal(kl_db_retention(v, 10, gone, touched, drop), 2);
	assert_true(drop[1] && drop[5]);
	assert_false(drop[0] || drop[2] || drop[3] || drop[4] || drop[6] || drop[7] || drop[8] ||
		     drop[9]);
	/* a record of a later timeline than B's, before its start: kept */
	snap(&v[1], KL_DB_LOG, "a", 3, 0x1000, 0x2000);
	assert_int_equal(kl_db_retention(v, 10, gone, touched, drop), 1);
	assert_false(drop[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(tar_ustar),	     cmocka_unit_test(tar_long_names),
		cmocka_unit_test(tar_paths_cleaned), cmocka_unit_test(tar_refused),
		cmocka_unit_test(tar_no_trailer),    cmocka_unit_test(lsn),
		cmocka_unit_test(pitr_time),	     cmocka_unit_test(msg_stream),
		cmocka_unit_test(msg_backup),	     cmocka_unit_test(history),
		cmocka_unit_test(retention),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
