/*
 * What the streams of every engine share (src/db/log.c): storing one log
 * record, waiting for the stop signal, and the backoff between attempts
 * to reconnect.
 */
#ifndef KEEL_DB_LOG_H
#define KEEL_DB_LOG_H

#include "keel/db.h"
#include "keel/repo.h"

/* A file of a log record: its path in the snapshot and its bytes (borrowed). */
struct kl_db_log_file {
	const char *path;
	const void *data;
	size_t len;
};

struct kl_db_log_rec {
	const char *host;
	unsigned threads; /* 0: 1 */
	int64_t time_ns;  /* the snapshot's time; 0: when it is stored */
	const char *dir;  /* a directory added first (mode 0700); NULL: none */
	const struct kl_db_log_file *files;
	size_t n_files;
};

/*
 * Stores a log record (kind 5, role log) of db (its name, engine,
 * positions): tags "db" and "db:NAME", the files (mode 0600, keel's
 * owner). id_ret may be NULL. Errors: the backup engine's.
 */
int kl_db_log_store(struct kl_repo *r, const struct kl_db_log_rec *x,
		    const struct kl_snapshot_db *db, struct kl_id *id_ret);

/*
 * Waits ms, or until stop_fd (-1: none) is readable, whose bytes it then
 * reads: returns 1 then, else 0; < 0 only when poll fails (errno).
 */
int kl_db_wait_stop(int stop_fd, int ms);

/*
 * Before an attempt to reconnect: warns "WHY; reconnecting in S s" through
 * o->report, waits *ms (returns 1 if a stop signal came meanwhile, else 0)
 * and doubles *ms, up to 10 s. Start *ms at 200.
 */
int kl_db_reconnect_wait(const struct kl_db_stream_opts *o, const char *why, int *ms);

#endif
