/*
 * Continuous capture of a MariaDB server's binary log (docs/DATABASES.md,
 * "MariaDB's binary log"): a replica's binlog dump (maria-feed.c), the
 * events kept byte for byte as the server's files hold them, stored
 * within STORE_AFTER_NS of their arrival as log records (kind 5): each
 * holds the bytes of one file from where the one before it ended. A
 * record that ends its file says so (stop_lsn is the next file's start),
 * so a restore and `db check` see the files whole.
 *
 * Where it starts: after the repository's newest record (resuming after
 * a crash or a kill loses nothing: the server keeps its files), else at
 * the beginning of the newest base backup's file, of --start's file, or
 * of the server's oldest file. It reconnects, from the first byte not
 * received, when the connection or the server goes away.
 */
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"
#include "maria-binlog.h"

#define STORE_AFTER_NS (400 * KL_NSEC_PER_MSEC)
#define HEARTBEAT_MS 1000
/* no packet for this long (heartbeats come every second): the connection is dead */
#define SILENT_NS (6 * KL_NSEC_PER_SEC)
#define PENDING_MAX ((size_t)256 << 20)

struct mstream {
	struct kl_repo *r;
	const struct kl_db_stream_opts *o;
	struct kl_maria_uri uri;
	MYSQL *m;
	struct kl_mb_feed feed;
	bool feeding;
	char name[KL_DB_NAME_MAX + 1];
	char version[64], sysid[16];
	uint32_t server_id, my_id;
	struct kl_binlog_follow f;
	uint64_t stored;     /* of f.file: bytes durable in the repository */
	struct kl_buf pend;  /* its bytes from stored to f.have */
	int64_t tmin, tmax;  /* the events' timestamps in pend */
	int64_t unstored_ns; /* when pend got its first event; 0: none */
	struct kl_buf batch;
	uint64_t records, stop_pos;
	bool lost;
	char why[512];
};

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* One log record: binlog/FILE holding pend, from stored on; complete: the file ends there. */
static int store(struct mstream *s, bool complete)
{
	char path[8 + KL_BINLOG_NAME_MAX];
	struct kl_db_log_file f = {path, s->pend.data, s->pend.len};
	struct kl_db_log_rec x = {.host = s->o->host, .threads = s->o->threads, .dir = "binlog"};
	struct kl_snapshot_db db = {0};
	int rc;

	/* the magic alone, with no event after it, is not worth a record */
	if (!complete && s->stored + s->pend.len <= KL_BINLOG_MAGIC_LEN)
		return 0;
	if (!complete && !s->pend.len)
		return 0;
	snprintf(path, sizeof(path), "binlog/%s", s->f.file);
	x.files = &f;
	x.n_files = 1;
	db.engine = KL_DB_MARIADB;
	db.name = s->name;
	db.timeline = 1;
	db.start_lsn = KL_MB_POS(s->f.file_no, s->stored);
	db.stop_lsn =
		complete ? KL_MB_POS(s->f.file_no + 1, 0) : KL_MB_POS(s->f.file_no, s->f.have);
	db.server_version = s->version;
	db.system_id = s->sysid; /* as base backups have it: the server's server_id */
	db.server_id = s->server_id;
	db.log_file = s->f.file;
	db.binlog_time_min = s->tmin;
	db.binlog_time_max = s->tmax;
	db.binlog_checksum_alg = s->f.alg;
	db.binlog_server_id = s->server_id;
	rc = kl_db_log_store(s->r, &x, &db, NULL);
	if (rc < 0)
		return rc;
	s->records++;
	s->stop_pos = db.stop_lsn;
	s->stored = s->f.have;
	if (s->o->stored) {
		char pos[KL_BINLOG_NAME_MAX + 24];

		snprintf(pos, sizeof(pos), "%s:%" PRIu64, s->f.file, s->f.have);
		s->o->stored(s->o->stored_ud, pos);
	}
	kl_buf_clear(&s->pend);
	s->tmin = s->tmax = 0;
	s->unstored_ns = 0;
	return 0;
}

/* Follows file from its start: the magic is ours to write, the server sends the events. */
static int begin_file(struct mstream *s, const char *file)
{
	int rc = kl_binlog_follow_init(&s->f, file, KL_BINLOG_MAGIC_LEN);

	if (rc < 0)
		return kl_repo_fail(s->r, -KL_EDBSERVER, "unexpected binary log name '%s'", file);
	s->stored = 0;
	kl_buf_clear(&s->pend);
	return kl_buf_add(&s->pend, KL_BINLOG_MAGIC, KL_BINLOG_MAGIC_LEN);
}

/* The server went on to the next file: this one is complete. */
static int next_file(struct mstream *s)
{
	char next[KL_BINLOG_NAME_MAX + 1];
	uint32_t no = 0;
	int rc;

	snprintf(next, sizeof(next), "%s", s->f.next);
	if (kl_binlog_file_number(next, &no) < 0 || no != s->f.file_no + 1 ||
	    s->f.next_pos > KL_BINLOG_MAGIC_LEN)
		return kl_repo_fail(s->r, -KL_EDBSERVER,
				    "the server went from binary log '%s' to '%s' at %" PRIu64
				    ", not to the next file's start (RESET MASTER?)",
				    s->f.file, next, s->f.next_pos);
	rc = store(s, true);
	return rc < 0 ? rc : begin_file(s, next);
}

static void note_time(struct mstream *s, const struct kl_binlog_event *ev)
{
	if (!ev->timestamp || ev->type == KL_BINLOG_FORMAT || ev->type == KL_BINLOG_ROTATE ||
	    ev->type == KL_BINLOG_STOP)
		return;
	if (!s->tmin || ev->timestamp < s->tmin)
		s->tmin = ev->timestamp;
	if (ev->timestamp > s->tmax)
		s->tmax = ev->timestamp;
}

/* The events of a batch from the feed: each a 4-byte length, then the event. */
static int on_events(struct mstream *s, const uint8_t *p, size_t n)
{
	while (n >= 4) {
		struct kl_binlog_event ev;
		uint32_t len = le32(p);
		int step, rc = 0;

		if (len > n - 4)
			return -KL_ECORRUPT;
		p += 4;
		n -= 4;
		step = kl_binlog_follow_step(&s->f, p, len, &ev);
		if (step < 0)
			return kl_repo_fail(s->r, -KL_EDBSERVER,
					    "unexpected event in binary log '%s' at %" PRIu64
					    " (type %u, %u bytes, ending at %u)",
					    s->f.file, s->f.have, ev.type, len, ev.log_pos);
		if (step == KL_BINLOG_APPEND) {
			rc = kl_buf_add(&s->pend, p, len);
			/*
			 * The server clears the file's in-use flag in the format
			 * description it sends; its file has it set until it closes
			 * the file (restores clear it in complete files, as the
			 * server does): stored, the flag says the file is open.
			 */
			if (rc >= 0 && ev.type == KL_BINLOG_FORMAT &&
			    s->f.have == KL_BINLOG_MAGIC_LEN + len)
				s->pend.data[s->pend.len - len + 17] |= KL_BINLOG_F_IN_USE;
			note_time(s, &ev);
			if (!s->unstored_ns)
				s->unstored_ns = kl_time_mono_ns();
		}
		if (rc >= 0 &&
		    (step == KL_BINLOG_NEXT || (step == KL_BINLOG_APPEND && s->f.next[0])))
			rc = next_file(s);
		if (rc < 0)
			return rc;
		p += len;
		n -= len;
	}
	return n ? -KL_ECORRUPT : 0;
}

static int64_t last_packet(struct kl_mb_feed *f)
{
	int64_t t;

	pthread_mutex_lock(&f->mu);
	t = f->last_ns;
	pthread_mutex_unlock(&f->mu);
	return t;
}

/* The dump ended or went silent: lost (reconnect) or refused (the end). */
static int ended(struct mstream *s, bool silent)
{
	unsigned no = s->feed.err_no;

	if (silent || kl_mb_error_lost(no)) {
		snprintf(s->why, sizeof(s->why), "%s",
			 silent ? "no heartbeat from the server for 6 s" : s->feed.err);
		s->lost = true;
		return -KL_EDBSERVER;
	}
	if (no == 1236) /* ER_MASTER_FATAL_ERROR_READING_BINLOG: typically a purged file */
		return kl_repo_fail(s->r, -KL_EDBSERVER,
				    "the server cannot send binary log '%s' from %" PRIu64
				    ": %s (purged? the log has a gap here: take a new base backup)",
				    s->f.file, s->f.have, s->feed.err);
	return kl_repo_fail(s->r, -KL_EDBSERVER, "the binlog dump failed: %s", s->feed.err);
}

static bool stop_seen(struct mstream *s, short revents)
{
	uint8_t sink[256];

	if (!(revents & POLLIN))
		return false;
	if (read(s->o->stop_fd, sink, sizeof(sink)) < 0) {
		/* nothing to do: the signal was seen */
	}
	return true;
}

/* Receives until a stop (0) or the dump ends (< 0; s->lost: reconnect). */
static int receive(struct mstream *s)
{
	for (;;) {
		struct pollfd pf[2] = {{s->feed.wake[0], POLLIN, 0}, {s->o->stop_fd, POLLIN, 0}};
		bool stop = false, done = false;
		int rc;

		if (poll(pf, s->o->stop_fd >= 0 ? 2 : 1, 100) < 0 && errno != EINTR)
			return kl_repo_fail(s->r, -errno, "poll");
		if (s->o->stop_fd >= 0)
			stop = stop_seen(s, pf[1].revents);
		rc = kl_mb_feed_take(&s->feed, &s->batch, &done);
		if (rc >= 0)
			rc = on_events(s, s->batch.data, s->batch.len);
		kl_buf_clear(&s->batch);
		if (rc >= 0 &&
		    (stop || done || s->pend.len > PENDING_MAX ||
		     (s->unstored_ns && kl_time_mono_ns() - s->unstored_ns >= STORE_AFTER_NS)))
			rc = store(s, false);
		if (rc < 0 || stop)
			return rc;
		if (done)
			return ended(s, false);
		if (kl_time_mono_ns() - last_packet(&s->feed) > SILENT_NS)
			return ended(s, true);
	}
}

/* keel's server_id as a replica: its own per database, never the server's */
static uint32_t replica_id(const char *name, uint32_t server_id)
{
	uint32_t id = (kl_crc32(0, (const uint8_t *)name, strlen(name)) & 0x3fffffff) | 0x40000000;

	return id == server_id ? id ^ 1 : id;
}

/* Connects and checks the server: binary logging on, the same server as before. */
static int server(struct mstream *s)
{
	char v[64];
	unsigned long id;
	int rc = kl_maria_connect(s->r, &s->uri, &s->m);

	if (rc >= 0)
		rc = kl_maria_value(s->r, s->m, "SELECT @@log_bin", v, sizeof(v));
	if (rc >= 0 && strcmp(v, "1"))
		return kl_repo_fail(
			s->r, -KL_EDBSERVER,
			"binary logging is off on the server: start mariadbd with --log-bin "
			"(log_bin = ON and a server_id in its [mariadbd] configuration), then "
			"restart it");
	if (rc >= 0)
		rc = kl_maria_value(s->r, s->m, "SELECT @@server_id", v, sizeof(v));
	id = rc >= 0 ? strtoul(v, NULL, 10) : 0;
	if (rc >= 0 && s->server_id && id != s->server_id)
		return kl_repo_fail(s->r, -KL_EUSAGE,
				    "the server's server_id is now %lu (was %" PRIu32
				    "): another server?",
				    id, s->server_id);
	s->server_id = (uint32_t)id;
	snprintf(s->sysid, sizeof(s->sysid), "%" PRIu32, s->server_id);
	if (rc >= 0)
		rc = kl_maria_value(s->r, s->m, "SELECT VERSION()", s->version, sizeof(s->version));
	s->my_id = replica_id(s->name, s->server_id);
	return rc;
}

static int dump(struct mstream *s)
{
	struct kl_mb_dump d = {.file = s->f.file,
			       .pos = s->f.have,
			       .server_id = s->my_id,
			       .heartbeat_ms = HEARTBEAT_MS};
	int rc = kl_mb_feed_start(s->r, s->m, &d, &s->feed);

	s->feeding = true;
	if (rc < 0 && kl_mb_error_lost(mysql_errno(s->m))) {
		snprintf(s->why, sizeof(s->why), "%s", mysql_error(s->m));
		s->lost = true;
	}
	return rc;
}

static void hang_up(struct mstream *s)
{
	if (s->feeding)
		kl_mb_feed_stop(&s->feed);
	s->feeding = false;
	if (s->m)
		mysql_close(s->m);
	s->m = NULL;
}

/* Connects and dumps again, with backoff (0.2 s doubling to 10 s), until it works or a stop. */
static int reconnect(struct mstream *s)
{
	int ms = 200;

	for (;;) {
		struct kl_err e = {0};
		int rc;

		if (kl_db_reconnect_wait(s->o, s->why, &ms))
			return 1;
		hang_up(s);
		s->lost = false;
		rc = server(s);
		if (rc >= 0)
			rc = dump(s);
		if (rc >= 0)
			return 0;
		/* a server still starting or stopping fails a query as well: try again */
		if (rc != -KL_EDBCONNECT && !s->lost &&
		    !(s->m && mysql_errno(s->m) && kl_mb_error_lost(mysql_errno(s->m))))
			return rc;
		kl_repo_take_err(s->r, &e, NULL);
		snprintf(s->why, sizeof(s->why), "cannot reconnect: %.480s", e.msg);
	}
}

static int run(struct mstream *s)
{
	int rc = dump(s);

	for (;;) {
		if (rc >= 0)
			rc = receive(s);
		if (rc >= 0 || !s->lost)
			return rc;
		kl_repo_clear_err(s->r);
		rc = store(s, false);
		if (rc >= 0)
			rc = reconnect(s);
		if (rc == 1)
			return 0;
		if (rc < 0)
			return rc;
	}
}

/* The first file of the server's binary log (SHOW BINARY LOGS). */
static int oldest_file(struct mstream *s, char *buf, size_t size)
{
	MYSQL_RES *res;
	MYSQL_ROW row;

	if (mysql_query(s->m, "SHOW BINARY LOGS") || !(res = mysql_store_result(s->m)))
		return kl_repo_fail(s->r, -KL_EDBSERVER, "SHOW BINARY LOGS failed: %s",
				    mysql_error(s->m));
	row = mysql_fetch_row(res);
	snprintf(buf, size, "%s", row && row[0] ? row[0] : "");
	mysql_free_result(res);
	return *buf ? 0 : kl_repo_fail(s->r, -KL_EDBSERVER, "the server lists no binary log");
}

/* --start FILE[:POS]: the file (stored whole: a replay needs its beginning). */
static int start_option(struct mstream *s, char *buf, size_t size)
{
	const char *colon = strrchr(s->o->start, ':');
	size_t n = colon ? (size_t)(colon - s->o->start) : strlen(s->o->start);
	uint32_t no;

	if (n >= size)
		n = size - 1;
	memcpy(buf, s->o->start, n);
	buf[n] = 0;
	if (!kl_db_binlog_name_valid(buf) || kl_binlog_file_number(buf, &no) < 0 ||
	    (colon && strspn(colon + 1, "0123456789") != strlen(colon + 1)))
		return kl_repo_fail(s->r, -KL_EUSAGE, "invalid --start '%s' (FILE:POS)",
				    s->o->start);
	return 0;
}

/*
 * Where to start: after the newest record, else at the start of the
 * newest base backup's file (its binlog coordinates), --start's file or
 * the server's oldest.
 */
static int start_at(struct mstream *s)
{
	char file[KL_BINLOG_NAME_MAX + 1] = "";
	const struct kl_snapshot_db *last = NULL, *base = NULL;
	struct kl_db_list l;
	const struct kl_db_info *d;
	int rc = kl_db_list(s->r, &l);

	if (rc < 0)
		return rc;
	d = kl_db_find(&l, s->name);
	if (d && d->engine != KL_DB_MARIADB)
		rc = kl_repo_fail(s->r, -KL_EUSAGE,
				  "database '%s' in the repository is not a MariaDB one", s->name);
	if (d && d->n_logs)
		last = &d->logs[d->n_logs - 1].s.db;
	if (d && d->n_bases)
		base = &d->bases[d->n_bases - 1].s.db;
	if (rc >= 0 && last && s->o->start)
		rc = kl_repo_fail(s->r, -KL_EUSAGE,
				  "the repository holds the binary log of '%s' already: the stream "
				  "resumes after it (--start is for a first stream)",
				  s->name);
	/* a base backup newer than the log (after a gap): from its file on */
	if (rc >= 0 && base && base->binlog_file &&
	    (!last || KL_MB_NO(base->start_lsn) >= KL_MB_NO(last->stop_lsn)) &&
	    !(last && KL_MB_NO(base->start_lsn) == KL_MB_NO(last->stop_lsn) &&
	      KL_MB_OFF(last->stop_lsn)))
		last = NULL, snprintf(file, sizeof(file), "%s", base->binlog_file);
	if (rc >= 0 && last && !last->log_file)
		rc = kl_repo_fail(s->r, -KL_ECORRUPT, "a log record of '%s' names no binary log",
				  s->name);
	if (rc >= 0 && last && KL_MB_OFF(last->stop_lsn)) {
		/* mid-file: the first byte not stored */
		rc = kl_binlog_follow_init(&s->f, last->log_file, KL_MB_OFF(last->stop_lsn));
		s->stored = s->f.have;
		s->stop_pos = last->stop_lsn;
		kl_db_list_release(&l);
		return rc < 0 ? kl_repo_fail(s->r, rc, "a log record of '%s' is damaged", s->name)
			      : 0;
	}
	if (rc >= 0 && last) {
		s->stop_pos = last->stop_lsn;
		rc = kl_mb_file_name(last->log_file, KL_MB_NO(last->stop_lsn), file, sizeof(file));
	} else if (rc >= 0 && !*file) {
		rc = s->o->start ? start_option(s, file, sizeof(file))
				 : oldest_file(s, file, sizeof(file));
	}
	kl_db_list_release(&l);
	return rc < 0 ? rc : begin_file(s, file);
}

int kl_db_maria_stream(struct kl_repo *r, const struct kl_db_stream_opts *o,
		       struct kl_db_stream_result *ret)
{
	struct mstream s = {.r = r, .o = o};
	const char *why = NULL;
	int rc;

	memset(ret, 0, sizeof(*ret));
	if (o->name && !kl_db_name_valid(o->name))
		return kl_repo_fail(r, -KL_EUSAGE, "invalid database name '%s'", o->name);
	snprintf(s.name, sizeof(s.name), "%s", o->name ? o->name : "");
	kl_buf_init(&s.pend, PENDING_MAX + KL_BINLOG_EVENT_MAX + 8);
	kl_buf_init(&s.batch, ((size_t)64 << 20) + KL_BINLOG_EVENT_MAX + 8);
	rc = kl_maria_uri_parse(o->conninfo, &s.uri, &why);
	if (rc == -KL_EUSAGE)
		rc = kl_repo_fail(r, rc, "invalid MariaDB URI: %s", why);
	if (rc >= 0)
		rc = server(&s);
	if (rc >= 0 && !o->name) {
		/* as db backup names it: mariadb-HOSTNAME */
		struct kl_maria_server sv;

		rc = kl_maria_server_info(r, s.m, &sv);
		if (rc >= 0)
			kl_maria_default_name(&sv, s.name, sizeof(s.name));
		s.my_id = replica_id(s.name, s.server_id);
	}
	if (rc >= 0)
		rc = start_at(&s);
	if (rc >= 0)
		rc = run(&s);
	ret->stop_lsn = s.stop_pos;
	ret->timeline = 1;
	if (s.f.file[0] && s.stop_pos) {
		/* the stop is in the file followed now, or (complete) at the start of it */
		if (KL_MB_NO(s.stop_pos) == s.f.file_no)
			snprintf(ret->position, sizeof(ret->position), "%s:%" PRIu32, s.f.file,
				 KL_MB_OFF(s.stop_pos) ? KL_MB_OFF(s.stop_pos)
						       : (uint32_t)KL_BINLOG_MAGIC_LEN);
	}
	ret->records = s.records;
	hang_up(&s);
	kl_maria_uri_release(&s.uri);
	kl_buf_release(&s.pend);
	kl_buf_release(&s.batch);
	return rc;
}
