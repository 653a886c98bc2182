/* src/db's SQLite files (docs/DATABASES.md, "SQLite"): the database they follow. */
#ifndef KEEL_DB_SQLITE_INTERNAL_H
#define KEEL_DB_SQLITE_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>

#include "keel/db.h"
#include "keel/repo.h"

/* A position: keel's generation number of the WAL (one per salt pair followed) and a frame. */
#define KL_SQ_POS(gen, frame) ((uint64_t)(gen) << 32 | (uint32_t)(frame))
#define KL_SQ_GEN(pos) ((uint32_t)((pos) >> 32))
#define KL_SQ_FRAME(pos) ((uint32_t)(pos))

/* The WAL as keel has read it: the current generation up to its last commit frame. */
struct kl_sqw {
	int fd; /* the -wal file; -1 while it does not exist */
	bool has_hdr;
	struct kl_sqlite_wal_hdr h;
	uint32_t end;	   /* frames read, up to and including the last commit frame */
	uint32_t s[2];	   /* the chain's checksum after frame end */
	uint32_t db_pages; /* the database's size after frame end; 0: no commit read */
};

/* One database file, its WAL and keel's connections to it. */
struct kl_sqdb {
	struct kl_repo *r;
	char *path, *wal_path;
	int dbfd;
	sqlite3 *rd[2]; /* readers, taking turns: one holds a read transaction at all times */
	int cur;	/* rd[cur] holds it; -1: none */
	sqlite3 *wr;	/* BEGIN IMMEDIATE: holds writers off for a moment */
	int tries;	/* wr's busy handler: tries 200 us apart */
	bool wal_mode;
	struct kl_sqw w;
};

/* "sqlite:///abs/path" -> "/abs/path" (borrowed from uri); NULL if uri is not one. */
const char *kl_sq_uri_path(const char *uri);
/*
 * Opens the database (it must exist and be a SQLite database, in WAL mode
 * when need_wal) and its connections. Errors: -KL_EDBCONNECT with the reason.
 */
int kl_sq_open(struct kl_repo *r, const char *path, bool need_wal, struct kl_sqdb *ret);
void kl_sq_close(struct kl_sqdb *d);
/* How long BEGIN IMMEDIATE on d->wr waits for the writer lock: tries, 200 us apart. */
void kl_sq_writer_patience(struct kl_sqdb *d, int tries);
/* Runs sql on c; -KL_EDBSERVER with SQLite's message (what: the context). */
int kl_sq_exec(struct kl_sqdb *d, sqlite3 *c, const char *sql, const char *what);
/* Begins a read transaction on the other reader, then ends the current one. */
int kl_sq_reader_turn(struct kl_sqdb *d);
int kl_sq_reader_end(struct kl_sqdb *d);

/*
 * (Re)reads the WAL header. Returns 1 if it is there and valid, 0 if not
 * (no file, shorter than a header, or a header being written).
 */
int kl_sqw_header(struct kl_sqdb *d, struct kl_sqlite_wal_hdr *ret);
/* Starts following generation h from its first frame. */
void kl_sqw_reset(struct kl_sqw *w, const struct kl_sqlite_wal_hdr *h);
/*
 * Reads the valid frames after w->end (up to frame limit); appends those up to the last
 * commit frame to out (NULL: none) and each commit (frame, stamp) to
 * commits. Returns the number of new committed frames.
 */
struct kl_sq_commits {
	struct kl_sqlite_commit *v;
	size_t n, cap;
};
int kl_sqw_scan(struct kl_sqdb *d, struct kl_buf *out, struct kl_sq_commits *commits, int64_t stamp,
		uint32_t limit);

/* A position stored in the repository, and what a base copy or a record ends at. */
struct kl_sq_pos {
	uint64_t pos; /* KL_SQ_POS */
	uint32_t salt1, salt2, ckpt_seq, page_size;
	uint64_t checksum;
};

/*
 * Takes a base copy into a kind-4 snapshot: with writers held off for a
 * moment, reads the WAL to its last commit and begins a read transaction
 * there (it stays open: the caller's stream continues from it), then
 * copies the database's pages as that transaction sees them. gen: the
 * generation number to give the WAL's salts.
 */
struct kl_sq_base_opts {
	const char *name, *host, *source;
	uint32_t gen;
	unsigned threads;
	struct kl_report report;
};
int kl_sq_base(struct kl_sqdb *d, const struct kl_sq_base_opts *o, struct kl_sq_pos *pos_ret,
	       struct kl_backup_result *ret);
/* The database's name into buf: given (checked), else from the file's name. */
int kl_sq_name(struct kl_repo *r, const char *given, const char *path, char *buf, size_t size);
/* The newest position the repository holds for name (stop of its newest base or record). */
int kl_sq_newest(struct kl_repo *r, const char *name, bool *found, struct kl_sq_pos *ret,
		 uint32_t *max_gen);

/*
 * sqlite-restore.c: restores name's newest base copy and the whole chain of
 * records from it into target (a new file); end_ret: the chain's last position.
 */
int kl_sq_rebuild(struct kl_repo *r, const char *name, const char *target, uint64_t *end_ret);
/*
 * sqlite-resume.c: whether the database file is now the database at last
 * (1) or not (0): rebuilt from the repository and compared page by page.
 * Only meaningful while keel's read transaction began with no frame in the
 * WAL (then no checkpoint can change the file under it).
 */
int kl_sq_file_is(struct kl_sqdb *d, const char *name, const struct kl_sq_pos *last);
/* Whether the WAL holds no valid frame (it may have no header, or none at all). */
int kl_sqw_empty(struct kl_sqdb *d);

/* sqlite-fold.c: one log record, and the records of a generation folded into one. */
struct kl_sq_rec {
	const char *name, *source, *host;
	unsigned threads;
	uint64_t start;		    /* the position it goes on from */
	const struct kl_sq_pos *to; /* and the one it ends at */
	const uint8_t *frames;	    /* the frames after start, up to to */
	size_t len;
	const struct kl_sq_commits *commits;
	int64_t time_ns; /* every commit before it is in the record */
};
int kl_sq_record(struct kl_repo *r, const struct kl_sq_rec *x, struct kl_id *id_ret);

#define KL_SQ_FOLD_RECORDS 60	     /* a minute of records under steady writes */
#define KL_SQ_FOLD_BYTES (16u << 20) /* of frames kept to fold */
struct kl_sq_fold {
	struct kl_buf frames; /* of the group's records, in order */
	struct kl_sq_commits commits;
	struct kl_id *ids; /* the group's records */
	size_t n, cap;
	uint64_t start;	     /* the first one's start */
	uint32_t gen;	     /* of their stops */
	struct kl_sq_pos to; /* the last one's stop */
	int64_t time_ns;     /* the last one's time */
	uint64_t folded;     /* records removed */
};
void kl_sq_fold_init(struct kl_sq_fold *f);
void kl_sq_fold_release(struct kl_sq_fold *f);
/*
 * Record x (id) was stored: it joins the group, which is folded first
 * when x is of another generation or would make it too large, and after
 * when it has KL_SQ_FOLD_RECORDS records. Errors: storing the folded one.
 */
int kl_sq_fold_add(struct kl_repo *r, struct kl_sq_fold *f, const struct kl_sq_rec *x,
		   const struct kl_id *id);
/* Replaces the group's records (two or more) by one; like gives the name, source and host. */
int kl_sq_fold(struct kl_repo *r, struct kl_sq_fold *f, const struct kl_sq_rec *like);

/* sqlite-clock.c: a thread noting when each commit frame appeared in the WAL. */
struct kl_sq_clock {
	const char *wal_path; /* borrowed */
	pthread_t th;
	bool running;
	atomic_bool stop;
	pthread_mutex_t mu;
	struct {
		uint32_t salt1, salt2, frame;
		int64_t time_ns;
	} * v;
	size_t n;
	void *view; /* the thread's own reading of the WAL */
};
/* Starts it; the commits in the WAL now get no time (they were before keel looked). */
int kl_sq_clock_start(struct kl_sq_clock *c, const char *wal_path);
void kl_sq_clock_stop(struct kl_sq_clock *c);
/* Lowers *t to the time the clock saw this commit frame, if it did; forgets those before it. */
bool kl_sq_clock_get(struct kl_sq_clock *c, uint32_t salt1, uint32_t salt2, uint32_t frame,
		     int64_t *t);

#endif
