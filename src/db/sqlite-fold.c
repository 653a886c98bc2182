/*
 * A SQLite stream's log records, and their folding (docs/DATABASES.md,
 * "SQLite", "Folding"). A stream stores the new frames at most once a
 * second, each time as a record of its own: under steady writes, 86,400
 * snapshots a day. Each record holds only the frames after the one
 * before, so a later record does not make an earlier one redundant by
 * itself (as a whole PostgreSQL segment does its prefixes); but the
 * records a stream wrote of one generation are consecutive stretches of
 * the same WAL, so one record holding all their frames and commits, from
 * the first one's start to the last one's stop, replaces them exactly.
 * The stream keeps what it stored of the current generation (up to
 * FOLD_BYTES) and writes that record when the generation ends, when it
 * stops, and every FOLD_RECORDS records; then it removes the ones it
 * replaces. The folded record carries the time of the last of them: it
 * holds every commit before that moment, and nothing is claimed after it.
 * Killed between the two steps, the repository holds both, which overlap:
 * restores and db check take the longest record that goes on.
 */
#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>

#include "keel/forget.h"
#include "log.h"
#include "sqlite-internal.h"

static int commits_text(const struct kl_sq_commits *c, struct kl_buf *out)
{
	int rc = 0;

	for (size_t i = 0; i < c->n && rc >= 0; i++)
		rc = kl_buf_addf(out, "%" PRIu32 " %" PRId64 "\n", c->v[i].frame, c->v[i].time_ns);
	return rc;
}

int kl_sq_record(struct kl_repo *r, const struct kl_sq_rec *x, struct kl_id *id_ret)
{
	struct kl_buf text = KL_BUF_INIT(64u << 20);
	struct kl_db_log_file f[2] = {{"wal/frames", x->frames, x->len}, {"wal/commits", NULL, 0}};
	struct kl_db_log_rec lr = {.host = x->host, .threads = x->threads, .time_ns = x->time_ns};
	struct kl_snapshot_db db = {0};
	int rc = commits_text(x->commits, &text);

	f[1].data = text.data;
	f[1].len = text.len;
	lr.files = f;
	lr.n_files = 2;
	db.engine = KL_DB_SQLITE;
	db.name = (char *)x->name;
	db.system_id = (char *)x->source;
	db.timeline = KL_SQ_GEN(x->to->pos);
	db.start_lsn = x->start;
	db.stop_lsn = x->to->pos;
	db.wal_salt1 = x->to->salt1;
	db.wal_salt2 = x->to->salt2;
	db.wal_ckpt_seq = x->to->ckpt_seq;
	db.wal_checksum = x->to->checksum;
	db.page_size = x->to->page_size;
	db.server_version = (char *)sqlite3_libversion();
	if (rc >= 0)
		rc = kl_db_log_store(r, &lr, &db, id_ret);
	kl_buf_release(&text);
	return rc;
}

void kl_sq_fold_init(struct kl_sq_fold *f)
{
	memset(f, 0, sizeof(*f));
	kl_buf_init(&f->frames, KL_SQ_FOLD_BYTES + (64u << 20));
}

void kl_sq_fold_release(struct kl_sq_fold *f)
{
	kl_buf_release(&f->frames);
	kl_free(f->commits.v);
	kl_free(f->ids);
}

/* Forgets the group: the next record begins a new one. */
static void reset(struct kl_sq_fold *f)
{
	kl_buf_clear(&f->frames);
	f->commits.n = 0;
	f->n = 0;
}

int kl_sq_fold_add(struct kl_repo *r, struct kl_sq_fold *f, const struct kl_sq_rec *x,
		   const struct kl_id *id)
{
	int rc = 0;

	/* a new generation, or too much to keep: the group is folded and starts over with x */
	if (f->n &&
	    (f->gen != KL_SQ_GEN(x->to->pos) || f->frames.len + x->len > KL_SQ_FOLD_BYTES)) {
		rc = kl_sq_fold(r, f, x);
		reset(f);
	}
	if (rc < 0 || x->len > KL_SQ_FOLD_BYTES)
		return rc; /* alone too large: it stays as it is */
	if (!f->n) {
		f->start = x->start;
		f->gen = KL_SQ_GEN(x->to->pos);
	}
	rc = kl_array_grow(&f->ids, &f->cap, f->n, sizeof(*f->ids), 16);
	if (rc >= 0)
		rc = kl_buf_add(&f->frames, x->frames, x->len);
	/* room for all of x's commits (kl_array_grow doubles once per call) */
	while (rc >= 0 && f->commits.n + x->commits->n > f->commits.cap)
		rc = kl_array_grow(&f->commits.v, &f->commits.cap, f->commits.cap,
				   sizeof(*f->commits.v), 64);
	if (rc < 0) {
		reset(f); /* without room the records are only not folded */
		return 0;
	}
	if (x->commits->n)
		memcpy(f->commits.v + f->commits.n, x->commits->v,
		       x->commits->n * sizeof(*f->commits.v));
	f->commits.n += x->commits->n;
	f->ids[f->n++] = *id;
	f->to = *x->to;
	f->time_ns = x->time_ns;
	return f->n >= KL_SQ_FOLD_RECORDS ? kl_sq_fold(r, f, x) : 0;
}

int kl_sq_fold(struct kl_repo *r, struct kl_sq_fold *f, const struct kl_sq_rec *like)
{
	struct kl_sq_rec x = *like;
	struct kl_id id;
	int rc;

	if (f->n < 2)
		return 0;
	x.start = f->start;
	x.to = &f->to;
	x.frames = f->frames.data;
	x.len = f->frames.len;
	x.commits = &f->commits;
	x.time_ns = f->time_ns;
	rc = kl_sq_record(r, &x, &id);
	if (rc < 0)
		return rc;
	/* one that cannot be removed (an append-only repository) is harmless: it overlaps */
	for (size_t i = 0; i < f->n; i++) {
		if (kl_snapshot_forget(r, &f->ids[i]) < 0)
			kl_repo_clear_err(r);
		else
			f->folded++;
	}
	f->ids[0] = id;
	f->n = 1;
	return 0;
}
