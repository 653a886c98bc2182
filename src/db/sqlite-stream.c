/*
 * Continuous capture of a SQLite database in WAL mode (docs/DATABASES.md,
 * "SQLite"): keel follows the WAL file, frame by frame as writers commit
 * them, and at most once a second stores the new committed frames as a
 * log record (kind 5) with the time it saw each commit. It holds a read
 * transaction at all times (sqlite-conn.c says why that keeps the WAL from
 * being reset behind it) and passes it on after every record, so the
 * application's own checkpoints go on up to what is stored. Every 1,000
 * frames it checkpoints itself with writers held off, so that the WAL
 * can start over: then nothing can be written between its last frame
 * being stored and the reset.
 *
 * A generation (one pair of salts) follows the one before it without a
 * gap when its salt-1 and checkpoint sequence are one more: only a reset
 * does that, and keel lets a reset happen only once all was read. Any
 * other change of the WAL (a reset while keel was not running, a replaced
 * file) is a gap: keel takes a new base copy and goes on from it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "sqlite-internal.h"

#define CKPT_FRAMES 1000
#define PENDING_MAX ((size_t)256 << 20)

struct sqs {
	struct kl_repo *r;
	const struct kl_db_stream_opts *o;
	struct kl_sqdb d;
	char name[KL_DB_NAME_MAX + 1];
	const char *path;
	uint32_t gen, max_gen;
	struct kl_sq_pos stored; /* the newest position in the repository */
	struct kl_buf pending;	 /* the frames after it, up to d.w.end */
	struct kl_sq_commits commits;
	struct kl_sq_clock clock;
	struct kl_sq_fold fold; /* the records of the current generation, folded into one */
	int64_t last_store_ns, last_poll_ns, last_mtime_ns, next_ckpt_ns;
	uint64_t records;
};

/*
 * The commit time to give frames the clock thread did not time (read
 * before now): the WAL's mtime if it is since the last look, else now.
 * File times come from the kernel's coarse clock, whose tick may come late
 * under load (6 ms behind with a 4 ms tick was measured): two ticks are
 * added, so that it stays a time at or after the commit.
 */
static int64_t stamp(struct sqs *s, int64_t now)
{
	struct timespec res = {0, 10 * 1000 * 1000};
	struct stat st;
	int64_t m;

	if (s->d.w.fd < 0 || fstat(s->d.w.fd, &st) < 0)
		return now;
	clock_getres(CLOCK_REALTIME_COARSE, &res);
	m = (int64_t)st.st_mtim.tv_sec * KL_NSEC_PER_SEC + st.st_mtim.tv_nsec;
	s->last_mtime_ns = m;
	m += 2 * ((int64_t)res.tv_sec * KL_NSEC_PER_SEC + res.tv_nsec);
	return m > s->last_poll_ns && m <= now ? m : now;
}

/*
 * Reads the new frames; each commit gets the time the clock saw it (read
 * after the frame: never before the commit), else an upper bound taken
 * after the read. Not the smaller of the two: the mtime's bound is only as
 * good as the kernel's tick, the clock's is exact.
 */
static int scan(struct sqs *s)
{
	size_t from = s->commits.n;
	int rc = kl_sqw_scan(&s->d, &s->pending, &s->commits, 0, UINT32_MAX);
	int64_t now = kl_time_now_ns(), t = stamp(s, now);

	s->last_poll_ns = now;
	for (size_t i = from; i < s->commits.n; i++) {
		int64_t seen = INT64_MAX;

		s->commits.v[i].time_ns = kl_sq_clock_get(&s->clock, s->d.w.h.salt1, s->d.w.h.salt2,
							  s->commits.v[i].frame, &seen)
						  ? seen
						  : t;
	}
	return rc < 0 ? rc : 0;
}

/* The fields of every record of this stream. */
static void rec_like(const struct sqs *s, struct kl_sq_rec *x)
{
	memset(x, 0, sizeof(*x));
	x->name = s->name;
	x->source = s->path;
	x->host = s->o->host;
	x->threads = s->o->threads;
}

/* Stores the frames after s->stored, up to the last commit read, as a log record. */
static int store(struct sqs *s)
{
	struct kl_sqw *w = &s->d.w;
	struct kl_sq_pos to = {0};
	struct kl_sq_rec x;
	struct kl_id id;
	int64_t t;
	int rc = 0;

	if (!w->has_hdr || s->stored.pos == KL_SQ_POS(s->gen, w->end))
		return 0;
	/*
	 * The record's time is now: what was committed before it must be in
	 * it, so the WAL is read once more (restores trust that time).
	 */
	t = kl_time_now_ns();
	if (s->pending.len < PENDING_MAX)
		rc = scan(s);
	if (rc < 0)
		return rc;
	to.pos = KL_SQ_POS(s->gen, w->end);
	to.salt1 = w->h.salt1;
	to.salt2 = w->h.salt2;
	to.ckpt_seq = w->h.ckpt_seq;
	to.page_size = w->h.page_size;
	to.checksum = (uint64_t)w->s[0] << 32 | w->s[1];
	rec_like(s, &x);
	x.start = s->stored.pos;
	x.to = &to;
	x.frames = s->pending.data;
	x.len = s->pending.len;
	x.commits = &s->commits;
	x.time_ns = t;
	rc = kl_sq_record(s->r, &x, &id);
	if (rc < 0)
		return rc;
	s->stored = to;
	s->records++;
	s->last_store_ns = kl_time_mono_ns();
	rc = kl_sq_fold_add(s->r, &s->fold, &x, &id);
	kl_buf_clear(&s->pending);
	s->commits.n = 0;
	return rc;
}

/* Folds what this stream stored of the current generation (it stops). */
static int fold(struct sqs *s)
{
	struct kl_sq_rec like;

	rec_like(s, &like);
	return kl_sq_fold(s->r, &s->fold, &like);
}

/* A new base copy, after a gap: the stream goes on from it in a new generation. */
static int new_base(struct sqs *s)
{
	struct kl_sq_base_opts bo = {0};
	struct kl_backup_result br;

	bo.name = s->name;
	bo.host = s->o->host;
	bo.source = s->path;
	bo.threads = s->o->threads;
	s->gen = ++s->max_gen;
	bo.gen = s->gen;
	kl_buf_clear(&s->pending);
	s->commits.n = 0;
	return kl_sq_base(&s->d, &bo, &s->stored, &br);
}

/* Reads what is new in the WAL. */
static int follow(struct sqs *s)
{
	struct kl_sqw *w = &s->d.w;
	struct kl_sqlite_wal_hdr h;
	int rc = kl_sqw_header(&s->d, &h);

	if (rc <= 0)
		return rc; /* no header (yet, or truncated): nothing new */
	if (!w->has_hdr || h.salt1 != w->h.salt1 || h.salt2 != w->h.salt2) {
		bool next =
			w->has_hdr && h.salt1 == w->h.salt1 + 1 && h.ckpt_seq == w->h.ckpt_seq + 1;

		if (w->has_hdr && !next)
			return new_base(s); /* the WAL was replaced */
		rc = store(s);		    /* the old generation's last frames, if any */
		if (rc >= 0)
			rc = fold(s); /* the old generation is complete */
		if (rc < 0)
			return rc;
		if (w->has_hdr || s->stored.salt1 || KL_SQ_FRAME(s->stored.pos))
			s->gen = ++s->max_gen;
		kl_sqw_reset(w, &h);
	}
	if (s->pending.len > PENDING_MAX)
		return 0; /* store first */
	return scan(s);
}

/*
 * With writers held off: the last frames stored, then a checkpoint of
 * everything, so the next writer starts the WAL over (a new generation).
 */
static int checkpoint(struct sqs *s)
{
	struct kl_sqlite_wal_hdr h;
	sqlite3 *c;
	int log = 0, done = 0, rc;

	/* a writer busy for longer than 0.2 s: next time (the stream must store meanwhile) */
	kl_sq_writer_patience(&s->d, 1000);
	rc = sqlite3_exec(s->d.wr, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	kl_sq_writer_patience(&s->d, 25000);
	if (rc != SQLITE_OK)
		return 0;
	/* a new generation since the last look is the loop's to follow (it may need a base) */
	rc = kl_sqw_header(&s->d, &h);
	if (rc > 0 && (h.salt1 != s->d.w.h.salt1 || h.salt2 != s->d.w.h.salt2)) {
		sqlite3_exec(s->d.wr, "ROLLBACK", NULL, NULL, NULL);
		return 0;
	}
	rc = rc < 0 ? rc : scan(s);
	if (rc >= 0)
		rc = store(s);
	if (rc >= 0)
		rc = kl_sq_reader_end(&s->d);
	if (rc >= 0) {
		c = s->d.rd[0];
		/* busy (the application checkpoints, or its readers hold frames): next time */
		sqlite3_wal_checkpoint_v2(c, "main", SQLITE_CHECKPOINT_PASSIVE, &log, &done);
		rc = kl_sq_reader_turn(&s->d);
	}
	sqlite3_exec(s->d.wr, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

/*
 * The WAL no longer holds the last position. If it holds no frame at all
 * and the database file is the database at last (sqlite-resume.c), the
 * last connection's close moved what keel had stored into the file and
 * removed the WAL: a record without frames, from last to frame 0 of a new
 * generation, says so (its salts are 0: any WAL goes on from it), and the
 * stream goes on. Otherwise frames keel never saw may be in the file: a
 * gap, and a new base copy. t: a moment before keel's read transaction began.
 */
static int resume(struct sqs *s, const struct kl_sq_pos *last, int64_t t)
{
	struct kl_sqlite_wal_hdr h = {.page_size = last->page_size};
	struct kl_sq_commits none = {0};
	struct kl_sq_pos to = {0};
	struct kl_sq_rec x;
	struct kl_id id;
	int rc = kl_sqw_empty(&s->d);

	if (rc > 0)
		rc = kl_sq_file_is(&s->d, s->name, last);
	if (rc <= 0)
		return rc < 0 ? rc : new_base(s);
	kl_sqlite_wal_hdr_encode(&h, (uint8_t[KL_SQLITE_WAL_HDR]){0});
	s->gen = ++s->max_gen;
	to.pos = KL_SQ_POS(s->gen, 0);
	to.page_size = last->page_size;
	to.checksum = (uint64_t)h.s0 << 32 | h.s1; /* where a check's chain starts */
	rec_like(s, &x);
	x.start = last->pos;
	x.to = &to;
	x.commits = &none;
	x.time_ns = t;
	/* not folded: a fold would join it to frames of the new WAL, whose salts it lacks */
	rc = kl_sq_record(s->r, &x, &id);
	if (rc >= 0) {
		s->stored = to;
		s->records++;
	}
	return rc;
}

/* Where to start: the repository's newest position if the WAL still holds it, else a base. */
static int start(struct sqs *s)
{
	struct kl_sqlite_wal_hdr h;
	struct kl_sq_pos last;
	int64_t t = kl_time_now_ns();
	bool found;
	int rc = kl_sq_newest(s->r, s->name, &found, &last, &s->max_gen);

	if (rc < 0)
		return rc;
	if (!found)
		return new_base(s); /* none yet */
	rc = kl_sq_reader_turn(&s->d);
	if (rc >= 0)
		rc = kl_sqw_header(&s->d, &h);
	if (rc < 0)
		return rc;
	if (rc == 0 || h.salt1 != last.salt1 || h.salt2 != last.salt2 ||
	    h.page_size != last.page_size)
		return resume(s, &last, t); /* removed, or reset while keel was not running */
	kl_sqw_reset(&s->d.w, &h);
	rc = kl_sqw_scan(&s->d, NULL, NULL, 0, KL_SQ_FRAME(last.pos));
	if (rc < 0)
		return rc;
	if (s->d.w.end != KL_SQ_FRAME(last.pos) ||
	    ((uint64_t)s->d.w.s[0] << 32 | s->d.w.s[1]) != last.checksum)
		return new_base(s); /* it no longer holds the last record's frames */
	s->gen = KL_SQ_GEN(last.pos);
	s->stored = last;
	return 0;
}

static int loop(struct sqs *s)
{
	for (bool stop = false;;) {
		int rc = kl_db_wait_stop(s->o->stop_fd, 20);

		if (rc < 0)
			return kl_repo_fail(s->r, rc, "poll");
		stop = stop || rc > 0;
		if (rc >= 0)
			rc = follow(s);
		if (rc >= 0 &&
		    (stop || s->pending.len > PENDING_MAX ||
		     (s->pending.len && kl_time_mono_ns() - s->last_store_ns >= KL_NSEC_PER_SEC))) {
			rc = store(s);
			if (rc >= 0 && stop)
				rc = fold(s);
			/* pass the read transaction on: checkpoints may go up to what is stored */
			if (rc >= 0 && !stop)
				rc = kl_sq_reader_turn(&s->d);
		}
		if (rc >= 0 && !stop && s->d.w.end >= CKPT_FRAMES &&
		    kl_time_mono_ns() >= s->next_ckpt_ns) {
			/* at most once a second: it holds writers off while it runs */
			s->next_ckpt_ns = kl_time_mono_ns() + KL_NSEC_PER_SEC;
			rc = checkpoint(s);
		}
		if (rc < 0 || stop)
			return rc;
	}
}

int kl_db_sqlite_stream(struct kl_repo *r, const struct kl_db_stream_opts *o,
			struct kl_db_stream_result *ret)
{
	struct sqs s = {.r = r, .o = o};
	int rc;

	memset(ret, 0, sizeof(*ret));
	s.path = kl_sq_uri_path(o->conninfo);
	if (!s.path)
		return kl_repo_fail(r, -KL_EUSAGE, "not a sqlite:///PATH: '%s'", o->conninfo);
	kl_buf_init(&s.pending, PENDING_MAX + (64u << 20));
	kl_sq_fold_init(&s.fold);
	rc = kl_sq_name(r, o->name, s.path, s.name, sizeof(s.name));
	if (rc >= 0)
		rc = kl_sq_open(r, s.path, true, &s.d);
	if (rc >= 0)
		rc = kl_sq_clock_start(&s.clock, s.d.wal_path);
	if (rc >= 0)
		rc = start(&s);
	if (rc >= 0) {
		s.last_store_ns = kl_time_mono_ns();
		rc = loop(&s);
	}
	if (rc >= 0)
		rc = kl_sq_reader_end(&s.d);
	ret->stop_lsn = s.stored.pos;
	ret->records = s.records;
	ret->folded = s.fold.folded;
	kl_sq_fold_release(&s.fold);
	kl_sq_clock_stop(&s.clock);
	kl_sq_close(&s.d);
	kl_buf_release(&s.pending);
	kl_free(s.commits.v);
	return rc;
}
