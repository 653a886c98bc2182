/*
 * Continuous WAL capture (docs/DATABASES.md, "The log"): a physical
 * replication client with its own slot. WAL arrives as XLogData
 * messages; at most once a second while it arrives (and when a segment
 * is complete, and on stop) keel stores the segment so far as a log
 * record (a snapshot of kind 5) and only then confirms that position to
 * the server as flushed, so the slot keeps what keel has not stored.
 *
 * This first version writes one record per second of activity and does
 * not fold them yet, and stops at a timeline switch.
 */
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "pg-internal.h"

#define SEG_DEFAULT (16u << 20)
#define SEG_MAX (1u << 30)
/* microseconds from the Unix epoch to PostgreSQL's (2000-01-01) */
#define PG_EPOCH_US 946684800000000ll

struct stream {
	struct kl_repo *r;
	const struct kl_db_stream_opts *o;
	PGconn *conn;
	char name[KL_DB_NAME_MAX + 1], sysid[32], tag[8 + KL_DB_NAME_MAX];
	uint32_t tli, segsize;
	uint8_t *seg;	    /* the segment being received, from its start */
	uint64_t seg_start; /* its first LSN */
	uint32_t have;	    /* bytes of it received */
	uint32_t stored;    /* bytes of it durable in the repository */
	int64_t last_store_ns;
	uint64_t records;
};

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

/* A standby status update: written and flushed up to what is stored. */
static int send_status(struct stream *s)
{
	uint8_t m[34];
	uint64_t pos = s->seg_start + s->stored;

	m[0] = 'r';
	put_be64(m + 1, pos);
	put_be64(m + 9, pos);
	put_be64(m + 17, 0); /* applied: nothing, keel replays nothing */
	put_be64(m + 25, (uint64_t)(kl_time_now_ns() / 1000 - PG_EPOCH_US));
	m[33] = 0;
	if (PQputCopyData(s->conn, (const char *)m, sizeof(m)) != 1 || PQflush(s->conn))
		return kl_pgc_fail(s->r, s->conn, -KL_EDBSERVER, "cannot send the stream's status");
	return 0;
}

static void seg_name(const struct stream *s, char *buf, size_t size)
{
	uint64_t segno = s->seg_start / s->segsize, per = 0x100000000ull / s->segsize;

	snprintf(buf, size, "%08" PRIX32 "%08" PRIX32 "%08" PRIX32, s->tli, (uint32_t)(segno / per),
		 (uint32_t)(segno % per));
}

/* Stores the segment so far as a log record, then confirms it. */
static int store(struct stream *s)
{
	struct kl_entry_backup *e = NULL;
	struct kl_backup_opts bo;
	struct kl_backup_result br;
	struct kl_snapshot snap = {0};
	struct kl_node dir = {.type = KL_NODE_DIR, .mode = 0700};
	struct kl_node f = {.type = KL_NODE_FILE, .mode = 0600};
	char *tags[2] = {(char *)"db", s->tag}, path[64], seg[32], *paths[1] = {s->tag};
	int rc;

	if (s->have == s->stored)
		return 0;
	kl_backup_opts_init(&bo);
	bo.host = s->o->host;
	bo.tags = tags;
	bo.n_tags = 2;
	bo.threads = s->o->threads ? s->o->threads : 1;
	dir.uid = f.uid = (uint32_t)geteuid();
	dir.gid = f.gid = (uint32_t)getegid();
	dir.mtime_sec = f.mtime_sec = kl_time_now_ns() / KL_NSEC_PER_SEC;
	f.size = s->have;
	seg_name(s, seg, sizeof(seg));
	snprintf(path, sizeof(path), "pg_wal/%s%s", seg, s->have < s->segsize ? ".partial" : "");
	rc = kl_entry_backup_new(s->r, &bo, &e);
	if (rc >= 0)
		rc = kl_entry_backup_add(e, "pg_wal", &dir);
	if (rc >= 0)
		rc = kl_entry_backup_add(e, path, &f);
	if (rc >= 0)
		rc = kl_entry_backup_write(e, s->seg, s->have);
	if (rc >= 0)
		rc = kl_entry_backup_end(e);
	if (rc >= 0) {
		snap.kind = KL_SNAP_DBLOG;
		snap.paths = paths;
		snap.n_paths = 1;
		snap.has_db = true;
		snap.db.engine = KL_DB_POSTGRESQL;
		snap.db.role = KL_DB_LOG;
		snap.db.name = s->name;
		snap.db.system_id = s->sysid;
		snap.db.timeline = s->tli;
		snap.db.start_lsn = s->seg_start;
		snap.db.stop_lsn = s->seg_start + s->have;
		rc = kl_entry_backup_commit(e, &snap, &br);
	}
	kl_entry_backup_free(e);
	if (rc < 0)
		return rc;
	s->stored = s->have;
	s->records++;
	s->last_store_ns = kl_time_mono_ns();
	return send_status(s);
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
	if (m.type == 'w')
		return on_wal(s, &m);
	return m.reply ? send_status(s) : 0;
}

/* Receives until stop_fd is readable or the server ends the stream. */
static int receive(struct stream *s)
{
	for (;;) {
		struct pollfd pf[2] = {{PQsocket(s->conn), POLLIN, 0}, {s->o->stop_fd, POLLIN, 0}};
		bool stop = false;
		char *buf;
		int n, rc = 0;

		if (poll(pf, s->o->stop_fd >= 0 ? 2 : 1, 200) < 0 && errno != EINTR)
			return kl_repo_fail(s->r, -errno, "poll");
		if (s->o->stop_fd >= 0 && (pf[1].revents & POLLIN)) {
			uint8_t sink[256]; /* the stop descriptor's count: read, so it is seen once
					    */

			if (read(s->o->stop_fd, sink, sizeof(sink)) < 0 && errno != EAGAIN)
				return kl_repo_fail(s->r, -errno, "cannot read the stop signal");
			stop = true;
		}
		if (!PQconsumeInput(s->conn))
			return kl_pgc_fail(s->r, s->conn, -KL_EDBSERVER,
					   "the WAL stream broke off");
		while (rc >= 0 && (n = PQgetCopyData(s->conn, &buf, 1)) > 0) {
			rc = on_message(s, (const uint8_t *)buf, (size_t)n);
			PQfreemem(buf);
		}
		if (rc < 0)
			return rc;
		if (n == -2)
			return kl_pgc_fail(s->r, s->conn, -KL_EDBSERVER,
					   "the WAL stream broke off");
		if (n == -1 || stop || kl_time_mono_ns() - s->last_store_ns >= KL_NSEC_PER_SEC) {
			rc = store(s);
			if (rc < 0)
				return rc;
		}
		if (stop)
			return 0;
		if (n == -1)
			return kl_repo_fail(
				s->r, -KL_EDBSERVER,
				"the server ended the WAL stream (a timeline switch or a "
				"shutdown); what it sent is stored");
	}
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

/* Where to start: the end of what the repository holds for the database. */
static int start_lsn(struct stream *s, uint64_t server_pos, uint64_t *ret)
{
	struct kl_db_list l;
	const struct kl_db_info *d;
	int rc = kl_db_list(s->r, &l);

	if (rc < 0)
		return rc;
	*ret = server_pos;
	d = kl_db_find(&l, s->name);
	if (d && d->n_logs)
		*ret = d->logs[d->n_logs - 1].s.db.stop_lsn;
	else if (d && d->n_bases)
		*ret = d->bases[d->n_bases - 1].s.db.stop_lsn;
	if (d && d->system_id && strcmp(d->system_id, s->sysid))
		rc = kl_repo_fail(s->r, -KL_EUSAGE,
				  "database '%s' in the repository is another cluster (system %s, "
				  "this server's is %s)",
				  s->name, d->system_id, s->sysid);
	kl_db_list_release(&l);
	return rc;
}

static int start(struct stream *s, uint64_t pos)
{
	char cmd[256], slot[8 + KL_DB_NAME_MAX], lsn[32];
	PGresult *res;
	size_t i;
	int rc;

	snprintf(slot, sizeof(slot), "%s", s->o->slot ? s->o->slot : "");
	if (!s->o->slot) {
		snprintf(slot, sizeof(slot), "keel_%s", s->name);
		for (i = 0; slot[i]; i++)
			if (!((slot[i] >= 'a' && slot[i] <= 'z') ||
			      (slot[i] >= '0' && slot[i] <= '9')))
				slot[i] = slot[i] >= 'A' && slot[i] <= 'Z'
						  ? (char)(slot[i] - 'A' + 'a')
						  : '_';
	}
	if (strspn(slot, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(slot) || !*slot)
		return kl_repo_fail(s->r, -KL_EUSAGE, "invalid slot name '%s'", slot);
	snprintf(cmd, sizeof(cmd), "CREATE_REPLICATION_SLOT %s PHYSICAL RESERVE_WAL", slot);
	res = PQexec(s->conn, cmd);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

		if (!state || strcmp(state, "42710")) { /* 42710: it exists */
			rc = kl_pgc_fail(s->r, s->conn, -KL_EDBSERVER,
					 "cannot create the replication slot");
			PQclear(res);
			return rc;
		}
	}
	PQclear(res);
	s->seg_start = pos - pos % s->segsize;
	kl_db_lsn_format(s->seg_start, lsn, sizeof(lsn));
	snprintf(cmd, sizeof(cmd), "START_REPLICATION SLOT %s PHYSICAL %s TIMELINE %" PRIu32, slot,
		 lsn, s->tli);
	res = PQexec(s->conn, cmd);
	rc = kl_pgc_expect(s->r, s->conn, res, PGRES_COPY_BOTH, "cannot start the WAL stream");
	PQclear(res);
	return rc;
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
		snprintf(s.tag, sizeof(s.tag), "db:%s", s.name);
		rc = segment_size(&s);
	}
	if (rc >= 0)
		rc = start_lsn(&s, pos, &pos);
	if (rc >= 0 && !(s.seg = kl_malloc(s.segsize)))
		rc = -ENOMEM;
	if (rc >= 0)
		rc = start(&s, pos);
	if (rc >= 0) {
		s.last_store_ns = kl_time_mono_ns();
		rc = receive(&s);
	}
	ret->stop_lsn = s.seg_start + s.stored;
	ret->records = s.records;
	kl_free(s.seg);
	PQfinish(s.conn);
	return rc;
}
