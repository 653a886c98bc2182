/*
 * Continuous WAL capture (docs/DATABASES.md, "The log"): a physical
 * replication client with its own slot. WAL arrives as XLogData
 * messages; within STORE_AFTER_NS of its arrival (and when a segment
 * is complete, and on stop) keel stores the segment so far as a log
 * record (a snapshot of kind 5) and only then confirms that position to
 * the server as flushed, so the slot keeps what keel has not stored.
 *
 * It follows timeline switches (the server ends the old timeline at the
 * switch point: the new one's history file is stored as a record of its
 * own, then streaming goes on from there) and reconnects, with backoff
 * and from the first byte it has not stored, when the server goes away.
 * Records fold: once a segment is complete and stored whole, the records
 * this process wrote of it while it grew (each a prefix of it) are
 * removed, so a day of WAL costs one snapshot object per segment, not one
 * per second. Records of a segment a previous process began stay.
 */
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "keel/forget.h"
#include "log.h"
#include "pg-internal.h"

#define SEG_DEFAULT (16u << 20)
#define SEG_MAX (1u << 30)
/*
 * WAL is stored this long after it arrived at the latest (plus the poll's
 * 100 ms and the time a store takes), for an RPO under a second; records
 * of a growing segment fold once it is whole, so their number stays low.
 */
#define STORE_AFTER_NS (400 * KL_NSEC_PER_MSEC)
/* microseconds from the Unix epoch to PostgreSQL's (2000-01-01) */
#define PG_EPOCH_US 946684800000000ll

struct stream {
	struct kl_repo *r;
	const struct kl_db_stream_opts *o;
	PGconn *conn;
	char name[KL_DB_NAME_MAX + 1], sysid[32];
	char slot[8 + KL_DB_NAME_MAX];
	uint32_t tli, segsize;
	uint8_t *seg;	    /* the segment being received, from its start */
	uint64_t seg_start; /* its first LSN */
	uint32_t have;	    /* bytes of it received */
	uint32_t stored;    /* bytes of it durable in the repository (as timeline tli's file) */
	int64_t unstored_since_ns; /* when WAL not yet stored first arrived; 0: none */
	uint64_t records;
	uint64_t server_end; /* the server's end of WAL, as its last message said */
	uint32_t next_tli;   /* the server ended tli: the next one, from switch_lsn on */
	uint64_t switch_lsn;
	struct kl_id *partials; /* this segment's records so far, folded once it is whole */
	size_t n_partials, cap_partials;
	uint32_t partials_tli; /* the segment they are of: a timeline switch starts anew */
	uint64_t partials_seg;
	uint64_t folded; /* records removed so */
	bool lost;	 /* the connection is gone, not refused: reconnect */
	bool from_repo;	 /* the start is where the repository ends, not the server's position */
	bool slot_new;	 /* this process created the slot */
	char why[512];	 /* what lost it */
};

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

/*
 * The connection is lost, and the stream reconnects: why, for the
 * warning, with libpq's word on it (detail, NULL: the connection's
 * message), which alone tells a crash from a refused or timed-out
 * connection. libpq's message runs over lines: one line, trimmed.
 */
static int lost(struct stream *s, const char *what, const char *detail)
{
	size_t n = 0;
	bool space = false;

	if (!detail)
		detail = PQerrorMessage(s->conn);
	n = (size_t)snprintf(s->why, sizeof(s->why), "%s", what);
	if (n >= sizeof(s->why))
		n = sizeof(s->why) - 1;
	if (n < sizeof(s->why) - 2 && *detail) {
		s->why[n++] = ':';
		space = true;
	}
	for (const char *p = detail; *p && n < sizeof(s->why) - 1; p++) {
		if (*p == '\n' || *p == '\t' || *p == '\r' || *p == ' ') {
			space = true;
			continue;
		}
		if (space && n < sizeof(s->why) - 2)
			s->why[n++] = ' ';
		space = false;
		s->why[n++] = *p;
	}
	s->why[n] = 0;
	s->lost = true;
	return -KL_EDBSERVER;
}

/*
 * A failure of the server or the connection. A connection that broke
 * without the server saying why, or with class 57 (operator intervention:
 * a shutdown) or 08 (connection exception), is lost, and the stream
 * reconnects; anything else the server said (the slot is gone, WAL was
 * removed) would say it again, so it ends the stream.
 */
static int broke(struct stream *s, const PGresult *res, const char *what)
{
	const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	char hint[320];

	if (st ? strncmp(st, "57", 2) && strncmp(st, "08", 2)
	       : PQstatus(s->conn) != CONNECTION_BAD) {
		/* most likely the WAL is gone: say why, and what closes the gap */
		if (s->slot_new && s->from_repo) {
			snprintf(hint, sizeof(hint),
				 "%s (slot '%s' was created only now: nothing kept the WAL since "
				 "where the repository ends; take a new base backup with "
				 "--create-slot, then stream)",
				 what, s->slot);
			what = hint;
		}
		/* the result's own message: the connection's may hold an earlier one too */
		if (res && *PQresultErrorMessage(res)) {
			char msg[512];

			snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(res));
			msg[strcspn(msg, "\n")] = 0;
			return kl_repo_fail(s->r, -KL_EDBSERVER, "%s: %s", what, msg);
		}
		return kl_pgc_fail(s->r, s->conn, -KL_EDBSERVER, what);
	}
	return lost(s, what, NULL);
}

/* A standby status update: written and flushed up to what is stored. */
static int send_status(struct stream *s)
{
	uint8_t m[34];
	uint64_t pos = s->seg_start + s->stored;

	if (s->lost)
		return 0; /* the next connection confirms it */
	m[0] = 'r';
	put_be64(m + 1, pos);
	put_be64(m + 9, pos);
	put_be64(m + 17, 0); /* applied: nothing, keel replays nothing */
	put_be64(m + 25, (uint64_t)(kl_time_now_ns() / 1000 - PG_EPOCH_US));
	m[33] = 0;
	if (PQputCopyData(s->conn, (const char *)m, sizeof(m)) != 1 || PQflush(s->conn)) {
		/*
		 * "no COPY in progress": the server ended the stream and said why
		 * (a shutdown is 57P01, a lost connection): its result tells a
		 * restart, after which keel reconnects, from a refusal
		 */
		char detail[sizeof(s->why)];
		PGresult *res;
		int rc;

		/* what the failed send says, before a result replaces it */
		snprintf(detail, sizeof(detail), "%s", PQerrorMessage(s->conn));
		res = PQgetResult(s->conn);
		if (!res || PQresultStatus(res) != PGRES_FATAL_ERROR) {
			PQclear(res);
			return lost(s, "the stream ended while sending its status", detail);
		}
		rc = broke(s, res, "cannot send the stream's status");
		PQclear(res);
		return rc;
	}
	return 0;
}

static void seg_name(const struct stream *s, char *buf, size_t size)
{
	uint64_t segno = s->seg_start / s->segsize, per = 0x100000000ull / s->segsize;

	snprintf(buf, size, "%08" PRIX32 "%08" PRIX32 "%08" PRIX32, s->tli, (uint32_t)(segno / per),
		 (uint32_t)(segno % per));
}

int kl_pgc_record(struct kl_repo *r, const char *host, unsigned threads,
		  const struct kl_snapshot_db *db, const char *file, const uint8_t *data,
		  size_t len, struct kl_id *id_ret)
{
	char path[64];
	struct kl_db_log_file f = {path, data, len};
	struct kl_db_log_rec x = {.host = host, .threads = threads, .dir = "pg_wal"};
	struct kl_snapshot_db d = *db;

	snprintf(path, sizeof(path), "pg_wal/%s", file);
	x.files = &f;
	x.n_files = 1;
	d.engine = KL_DB_POSTGRESQL;
	return kl_db_log_store(r, &x, &d, id_ret);
}

/* One log record of the stream: pg_wal/file, start..stop on timeline tli. */
static int record(struct stream *s, const char *file, const uint8_t *data, size_t len, uint32_t tli,
		  uint64_t start, uint64_t stop, struct kl_id *id_ret)
{
	struct kl_snapshot_db db = {.name = s->name,
				    .system_id = s->sysid,
				    .timeline = tli,
				    .start_lsn = start,
				    .stop_lsn = stop,
				    .segment_size = s->segsize};
	int rc = kl_pgc_record(s->r, s->o->host, s->o->threads, &db, file, data, len, id_ret);

	if (rc >= 0)
		s->records++;
	return rc;
}

/*
 * The whole segment is stored: its earlier records only repeat a prefix
 * of it. A record that cannot be removed is harmless (restores take the
 * longest) and stays.
 */
static void fold(struct stream *s)
{
	for (size_t i = 0; i < s->n_partials; i++) {
		if (kl_snapshot_forget(s->r, &s->partials[i]) < 0)
			kl_repo_clear_err(s->r);
		else
			s->folded++;
	}
	s->n_partials = 0;
}

/* Stores the segment so far as a log record, then confirms it. */
static int store(struct stream *s)
{
	char file[40], seg[32];
	struct kl_id id;
	bool whole = s->have == s->segsize;
	int rc;

	if (s->have == s->stored)
		return 0;
	seg_name(s, seg, sizeof(seg));
	snprintf(file, sizeof(file), "%s%s", seg, whole ? "" : ".partial");
	rc = record(s, file, s->seg, s->have, s->tli, s->seg_start, s->seg_start + s->have, &id);
	if (rc < 0)
		return rc;
	s->stored = s->have;
	s->unstored_since_ns = 0;
	rc = send_status(s);
	/* only records of this very file (timeline and segment) are prefixes of it */
	if (s->partials_tli != s->tli || s->partials_seg != s->seg_start) {
		s->n_partials = 0;
		s->partials_tli = s->tli;
		s->partials_seg = s->seg_start;
	}
	if (whole) {
		fold(s);
	} else if (kl_array_grow(&s->partials, &s->cap_partials, s->n_partials,
				 sizeof(*s->partials), 16) >= 0) {
		s->partials[s->n_partials++] = id; /* without room it is only not folded */
	}
	return rc;
}

/* XLogData: WAL bytes from an LSN on. */
static int on_wal(struct stream *s, const struct kl_pgm_stream *m)
{
	const uint8_t *p = m->data;
	size_t n = m->len;
	uint64_t at = m->start_lsn;

	while (n) {
		uint64_t want = s->seg_start + s->have;
		size_t k;
		int rc;

		if (at > want)
			return kl_repo_fail(s->r, -KL_EDBSERVER, "the server's WAL has a hole");
		if (at < want) { /* sent again: skip what is here */
			uint64_t skip = want - at < n ? want - at : n;

			at += skip;
			p += skip;
			n -= skip;
			continue;
		}
		k = s->segsize - s->have < n ? s->segsize - s->have : n;
		if (!s->unstored_since_ns)
			s->unstored_since_ns = kl_time_mono_ns();
		memcpy(s->seg + s->have, p, k);
		s->have += (uint32_t)k;
		at += k;
		p += k;
		n -= k;
		if (s->have == s->segsize) {
			rc = store(s);
			if (rc < 0)
				return rc;
			s->seg_start += s->segsize;
			s->have = s->stored = 0;
		}
	}
	return 0;
}

static int on_message(struct stream *s, const uint8_t *p, size_t n)
{
	struct kl_pgm_stream m;

	if (kl_pgm_stream_decode(p, n, &m) < 0) {
		if (!n)
			return kl_repo_fail(s->r, -KL_EDBSERVER, "empty message in the WAL stream");
		if (m.type == 'w')
			return kl_repo_fail(s->r, -KL_EDBSERVER, "malformed WAL message");
		if (m.type == 'k')
			return kl_repo_fail(s->r, -KL_EDBSERVER, "malformed keepalive message");
		return kl_repo_fail(s->r, -KL_EDBSERVER,
				    "unexpected message type 0x%02x in the WAL stream", m.type);
	}
	if (m.end_lsn > s->server_end)
		s->server_end = m.end_lsn;
	if (m.type == 'w')
		return on_wal(s, &m);
	return m.reply ? send_status(s) : 0;
}

/*
 * Receives until stop_fd is readable (returns 0) or the server ends the
 * copy (returns 1: a timeline switch or a shutdown, end_copy() says which);
 * what arrived is stored either way.
 */
static int receive(struct stream *s)
{
	for (;;) {
		struct pollfd pf[2] = {{PQsocket(s->conn), POLLIN, 0}, {s->o->stop_fd, POLLIN, 0}};
		bool stop = false;
		char *buf;
		int n, rc = 0;

		if (poll(pf, s->o->stop_fd >= 0 ? 2 : 1, 100) < 0 && errno != EINTR)
			return kl_repo_fail(s->r, -errno, "poll");
		if (s->o->stop_fd >= 0 && (pf[1].revents & POLLIN)) {
			uint8_t sink[256]; /* the stop descriptor's count: read, so it is seen once
					    */

			if (read(s->o->stop_fd, sink, sizeof(sink)) < 0 && errno != EAGAIN)
				return kl_repo_fail(s->r, -errno, "cannot read the stop signal");
			stop = true;
		}
		if (!PQconsumeInput(s->conn))
			return broke(s, NULL, "the WAL stream broke off");
		while (rc >= 0 && (n = PQgetCopyData(s->conn, &buf, 1)) > 0) {
			rc = on_message(s, (const uint8_t *)buf, (size_t)n);
			PQfreemem(buf);
		}
		if (rc < 0)
			return rc;
		if (n == -2) {
			PGresult *res = PQgetResult(s->conn);

			rc = broke(s, res, "the WAL stream broke off");
			PQclear(res);
			return rc;
		}
		/*
		 * --synchronous: a commit waits for this confirmation, so store at
		 * once when caught up with the server (while catching up, storing
		 * each piece as it comes would only slow the catching up)
		 */
		if (n == -1 || stop ||
		    (s->o->synchronous && s->have > s->stored &&
		     s->seg_start + s->have >= s->server_end) ||
		    (s->unstored_since_ns &&
		     kl_time_mono_ns() - s->unstored_since_ns >= STORE_AFTER_NS)) {
			rc = store(s);
			if (rc < 0)
				return rc;
		}
		if (stop)
			return 0;
		if (n == -1)
			return 1;
	}
}

/* The rest of a result set, which the caller does not need. */
static void drain(struct stream *s)
{
	PGresult *res;

	while ((res = PQgetResult(s->conn)))
		PQclear(res);
}

/*
 * The server ended the copy: after a timeline switch it sends the next
 * timeline and where it starts (next_tli, switch_lsn); without one it is
 * shutting down, and the stream reconnects.
 */
static int end_copy(struct stream *s)
{
	PGresult *res;
	unsigned long long t = 0;
	char *end = NULL;
	int rc;

	/*
	 * A shutdown or an error ends the copy too, and there is no copy left
	 * to end: an error result with a SQLSTATE says which.
	 */
	if (PQputCopyEnd(s->conn, NULL) != 1 || PQflush(s->conn)) {
		char detail[sizeof(s->why)];

		/* the failed end's message, or the server's own (a shutdown's 57P01) below */
		snprintf(detail, sizeof(detail), "%s", PQerrorMessage(s->conn));
		rc = 0;
		while ((res = PQgetResult(s->conn))) {
			const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);

			if (!rc && st && strncmp(st, "57", 2) && strncmp(st, "08", 2))
				rc = broke(s, res, "the WAL stream ended");
			else if (!rc && *PQresultErrorMessage(res))
				snprintf(detail, sizeof(detail), "%s", PQresultErrorMessage(res));
			PQclear(res);
		}
		if (rc < 0)
			return rc;
		return lost(s, "the server ended the WAL stream", detail);
	}
	res = PQgetResult(s->conn);
	if (PQresultStatus(res) == PGRES_COMMAND_OK) {
		PQclear(res);
		drain(s);
		snprintf(s->why, sizeof(s->why), "the server ended the WAL stream (a shutdown)");
		s->lost = true;
		return -KL_EDBSERVER;
	}
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = broke(s, res, "the WAL stream ended");
		PQclear(res);
		return rc;
	}
	if (PQntuples(res) == 1 && PQnfields(res) == 2)
		t = strtoull(PQgetvalue(res, 0, 0), &end, 10);
	rc = 0;
	if (!end || *end || t <= s->tli || t > UINT32_MAX ||
	    kl_db_lsn_parse(PQgetvalue(res, 0, 1), &s->switch_lsn) < 0)
		rc = kl_repo_fail(s->r, -KL_EDBSERVER, "unexpected reply at the end of timeline %u",
				  (unsigned)s->tli);
	s->next_tli = (uint32_t)t;
	PQclear(res);
	drain(s);
	return rc;
}

/*
 * Follows the switch end_copy() saw: TIMELINE_HISTORY of the next
 * timeline, stored as a record of its own (it must agree with where the
 * server ended ours), then the new timeline's file of the current segment
 * from its start: the old timeline's bytes up to the switch, as the
 * server's own copy of that segment holds them.
 */
static int follow(struct stream *s)
{
	struct kl_pg_switch sw[KL_PG_HISTORY_MAX];
	char cmd[64], file[32];
	size_t n = 0;
	PGresult *res;
	int rc;

	snprintf(cmd, sizeof(cmd), "TIMELINE_HISTORY %" PRIu32, s->next_tli);
	res = PQexec(s->conn, cmd);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = broke(s, res, "cannot fetch the new timeline's history");
		PQclear(res);
		return rc;
	}
	rc = PQntuples(res) == 1 && PQnfields(res) == 2 ? 0 : -KL_ECORRUPT;
	if (rc >= 0)
		rc = kl_pgm_history_parse(PQgetvalue(res, 0, 1), (size_t)PQgetlength(res, 0, 1), sw,
					  KL_PG_HISTORY_MAX, &n);
	if (rc >= 0 && (!n || sw[n - 1].tli != s->tli || sw[n - 1].end_lsn != s->switch_lsn ||
			s->switch_lsn < s->seg_start || s->switch_lsn > s->seg_start + s->have))
		rc = -KL_ECORRUPT;
	if (rc < 0) {
		PQclear(res);
		return kl_repo_fail(s->r, -KL_EDBSERVER,
				    "the history of timeline %" PRIu32
				    " does not say where timeline %" PRIu32 " ended",
				    s->next_tli, s->tli);
	}
	snprintf(file, sizeof(file), "%08" PRIX32 ".history", s->next_tli);
	rc = record(s, file, (const uint8_t *)PQgetvalue(res, 0, 1), (size_t)PQgetlength(res, 0, 1),
		    s->next_tli, s->switch_lsn, s->switch_lsn, NULL);
	PQclear(res);
	if (rc < 0)
		return rc;
	s->tli = s->next_tli;
	s->have = (uint32_t)(s->switch_lsn - s->seg_start);
	s->stored = 0; /* nothing of the new timeline's file is stored */
	s->unstored_since_ns = s->have ? kl_time_mono_ns() : 0;
	return 0;
}

/* SHOW wal_segment_size: "16MB" and the like. */
static int segment_size(struct stream *s)
{
	PGresult *res = PQexec(s->conn, "SHOW wal_segment_size");
	int rc = kl_pgc_expect(s->r, s->conn, res, PGRES_TUPLES_OK, "SHOW wal_segment_size failed");
	unsigned long v = 0;
	char *end = NULL;

	if (rc >= 0 && PQntuples(res) == 1)
		v = strtoul(PQgetvalue(res, 0, 0), &end, 10);
	if (rc >= 0 && end && !strcmp(end, "MB"))
		v <<= 20;
	else if (rc >= 0 && end && !strcmp(end, "GB"))
		v <<= 30;
	else
		v = 0;
	PQclear(res);
	if (rc >= 0 && (v < (1u << 20) || v > SEG_MAX || (v & (v - 1))))
		rc = kl_repo_fail(s->r, -KL_EDBSERVER, "unexpected wal_segment_size");
	s->segsize = (uint32_t)v;
	return rc;
}

/*
 * Where to start: the end of what the repository holds for the database,
 * on its newest timeline (the server ends that timeline where it switched,
 * if it did, and the stream follows).
 */
static int start_lsn(struct stream *s, uint64_t server_pos, uint64_t *ret)
{
	struct kl_db_list l;
	const struct kl_db_info *d;
	int rc = kl_db_list(s->r, &l);

	if (rc < 0)
		return rc;
	*ret = server_pos;
	d = kl_db_find(&l, s->name);
	if (d && d->n_logs) {
		const struct kl_snapshot_db *best = &d->logs[0].s.db;

		for (size_t i = 1; i < d->n_logs; i++) {
			const struct kl_snapshot_db *x = &d->logs[i].s.db;

			if (x->timeline > best->timeline ||
			    (x->timeline == best->timeline && x->stop_lsn >= best->stop_lsn))
				best = x;
		}
		*ret = best->stop_lsn;
		s->tli = best->timeline;
		s->from_repo = true;
	} else if (d && d->n_bases) {
		*ret = d->bases[d->n_bases - 1].s.db.stop_lsn;
		s->tli = d->bases[d->n_bases - 1].s.db.timeline;
		s->from_repo = true;
	}
	if (d && d->system_id && strcmp(d->system_id, s->sysid))
		rc = kl_repo_fail(s->r, -KL_EUSAGE,
				  "database '%s' in the repository is another cluster (system %s, "
				  "this server's is %s)",
				  s->name, d->system_id, s->sysid);
	kl_db_list_release(&l);
	return rc;
}

static int slot_name(struct stream *s)
{
	return kl_pgc_slot_name(s->r, s->o->slot, s->name, s->slot, sizeof(s->slot));
}

/*
 * The slot was created only now: the WAL from where the repository ends
 * to the slot's restart_lsn was kept by nothing. It may still be on the
 * server (then the stream goes on without a gap), or not (then
 * START_REPLICATION fails and the hint says what to do).
 */
static void slot_created(struct stream *s)
{
	struct kl_pgc_slot sl;
	char a[32], b[32], msg[256];

	if (!s->from_repo || kl_pgc_slot_read(s->r, s->conn, s->slot, &sl) < 0) {
		kl_repo_clear_err(s->r);
		return;
	}
	if (!sl.reserved || sl.restart_lsn <= s->seg_start + s->have)
		return;
	kl_db_lsn_format(s->seg_start + s->have, a, sizeof(a));
	kl_db_lsn_format(sl.restart_lsn, b, sizeof(b));
	snprintf(msg, sizeof(msg),
		 "replication slot '%s' did not exist: no slot kept the WAL from %s (where the "
		 "repository ends) to %s",
		 s->slot, a, b);
	if (s->o->report.warn)
		s->o->report.warn(s->o->report.ud, NULL, 0, msg);
}

/* The slot (created if missing), then START_REPLICATION from the first byte not received. */
static int start(struct stream *s)
{
	char cmd[256], lsn[32];
	PGresult *res;
	int rc;

	snprintf(cmd, sizeof(cmd), "CREATE_REPLICATION_SLOT %s PHYSICAL RESERVE_WAL", s->slot);
	res = PQexec(s->conn, cmd);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

		if (!state || strcmp(state, "42710")) { /* 42710: it exists */
			rc = broke(s, res, "cannot create the replication slot");
			PQclear(res);
			return rc;
		}
	} else {
		s->slot_new = true;
		slot_created(s);
	}
	PQclear(res);
	kl_db_lsn_format(s->seg_start + s->have, lsn, sizeof(lsn));
	snprintf(cmd, sizeof(cmd), "START_REPLICATION SLOT %s PHYSICAL %s TIMELINE %" PRIu32,
		 s->slot, lsn, s->tli);
	res = PQexec(s->conn, cmd);
	rc = PQresultStatus(res) == PGRES_COPY_BOTH
		     ? 0
		     : broke(s, res,
			     s->slot_new
				     ? "cannot start the WAL stream (its slot was created only "
				       "now, so nothing kept the WAL since the repository's last "
				       "position: take a new base backup, keel db backup "
				       "--create-slot, then stream)"
				     : "cannot start the WAL stream");
	PQclear(res);
	return rc;
}

/*
 * The connection was lost: connects again, with backoff (0.2 s doubling
 * to 10 s), until it works or a stop signal comes (returns 1). Each
 * failure is a warning, not the end: a server restart takes seconds,
 * and the slot keeps the WAL meanwhile. Another cluster behind the same
 * conninfo is refused.
 */
static int reconnect(struct stream *s)
{
	int ms = 200;

	for (;;) {
		char sysid[32], msg[sizeof(s->why) + 64];
		uint32_t tli;
		uint64_t pos;
		int rc;

		if (kl_db_reconnect_wait(s->o, s->why, &ms))
			return 1;
		PQfinish(s->conn);
		s->conn = NULL;
		rc = kl_pgc_connect(s->r, s->o->conninfo, &s->conn);
		if (rc >= 0)
			rc = kl_pgc_identify(s->r, s->conn, sysid, sizeof(sysid), &tli, &pos);
		if (rc >= 0 && strcmp(sysid, s->sysid))
			return kl_repo_fail(s->r, -KL_EUSAGE,
					    "after reconnecting, the server is another cluster "
					    "(system %s, was %s)",
					    sysid, s->sysid);
		if (rc >= 0) {
			s->lost = false;
			return 0;
		}
		snprintf(s->why, sizeof(s->why), "cannot reconnect");
		if (s->conn) {
			snprintf(msg, sizeof(msg), "cannot reconnect: %s", PQerrorMessage(s->conn));
			msg[strcspn(msg, "\n")] = 0;
			snprintf(s->why, sizeof(s->why), "%.500s", msg);
		}
		kl_repo_clear_err(s->r);
	}
}

/* Streams, follows switches and reconnects until a stop signal (0) or an error. */
static int run(struct stream *s)
{
	for (;;) {
		int rc = start(s);

		if (rc >= 0)
			rc = receive(s);
		if (rc == 0)
			return 0;
		if (rc == 1)
			rc = end_copy(s);
		if (rc >= 0)
			rc = follow(s);
		if (rc < 0 && s->lost) {
			kl_repo_clear_err(s->r);
			rc = store(s);
			if (rc >= 0)
				rc = reconnect(s);
			if (rc == 1)
				return 0;
		}
		if (rc < 0)
			return rc;
	}
}

int kl_db_stream(struct kl_repo *r, const struct kl_db_stream_opts *o,
		 struct kl_db_stream_result *ret)
{
	struct stream s = {.r = r, .o = o};
	uint64_t pos = 0;
	int rc;

	memset(ret, 0, sizeof(*ret));
	if (o->name && !kl_db_name_valid(o->name))
		return kl_repo_fail(r, -KL_EUSAGE, "invalid database name '%s'", o->name);
	rc = kl_pgc_connect(r, o->conninfo, &s.conn);
	if (rc >= 0)
		rc = kl_pgc_identify(r, s.conn, s.sysid, sizeof(s.sysid), &s.tli, &pos);
	if (rc >= 0) {
		snprintf(s.name, sizeof(s.name), "%s%s", o->name ? "" : "pg-",
			 o->name ? o->name : s.sysid);
		rc = segment_size(&s);
	}
	if (rc >= 0)
		rc = slot_name(&s);
	if (rc >= 0)
		rc = start_lsn(&s, pos, &pos);
	if (rc >= 0 && !(s.seg = kl_malloc(s.segsize)))
		rc = -ENOMEM;
	if (rc >= 0) {
		s.seg_start = pos - pos % s.segsize;
		s.unstored_since_ns = 0;
		rc = run(&s);
	}
	ret->stop_lsn = s.seg_start + s.stored;
	ret->timeline = s.tli;
	ret->records = s.records;
	ret->folded = s.folded;
	kl_free(s.seg);
	kl_free(s.partials);
	PQfinish(s.conn);
	return rc;
}
