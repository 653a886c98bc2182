/*
 * src/db's MariaDB binary log files (docs/DATABASES.md, "MariaDB's binary
 * log"): the replication connection that receives it (maria-feed.c), the
 * stream that stores it (maria-stream.c), and what restores read back
 * (maria-binlog.c).
 */
#ifndef KEEL_DB_MARIA_BINLOG_H
#define KEEL_DB_MARIA_BINLOG_H

#include <pthread.h>

#include "maria-internal.h"

/* A position: the file's number (its name's suffix) and an offset in it. */
#define KL_MB_POS(no, off) ((uint64_t)(no) << 32 | (uint32_t)(off))
#define KL_MB_NO(pos) ((uint32_t)((pos) >> 32))
#define KL_MB_OFF(pos) ((uint32_t)(pos))

/*
 * A binlog dump in progress: a thread reads the server's packets (it
 * blocks in libmariadb) and queues the events for the stream, which
 * polls wake_fd. kl_mb_feed_stop() shuts the socket down, which ends a
 * blocked read, and joins the thread.
 */
struct kl_mb_feed {
	MYSQL *m;
	pthread_t th;
	bool running;
	pthread_mutex_t mu;
	pthread_cond_t room;
	struct kl_buf q; /* events, each a 4-byte length then its bytes */
	bool done;	 /* the dump ended: err_no 0 (the server ended it) or the error */
	bool quit;
	unsigned err_no;
	char err[512];
	int64_t last_ns; /* monotonic time of the last packet (events and heartbeats) */
	int wake[2];	 /* a byte is written to wake[1] for each batch */
};

struct kl_mb_dump {
	const char *file;
	uint64_t pos;
	uint32_t server_id; /* keel's, as a replica */
	uint32_t heartbeat_ms;
};
/*
 * Starts COM_BINLOG_DUMP of file from pos on m (which the feed then owns
 * until kl_mb_feed_stop) and the thread that reads it. -KL_EDBSERVER with
 * the server's message.
 */
int kl_mb_feed_start(struct kl_repo *r, MYSQL *m, const struct kl_mb_dump *d,
		     struct kl_mb_feed *ret);
/* Takes the queued events into out (appended); *done_ret once the dump has ended. */
int kl_mb_feed_take(struct kl_mb_feed *f, struct kl_buf *out, bool *done_ret);
void kl_mb_feed_stop(struct kl_mb_feed *f);
/* Whether a libmariadb error means the connection or server went away (reconnect). */
bool kl_mb_error_lost(unsigned err_no);

/* The name of file number no, named like example ("bin.000041", 42: "bin.000042"). */
int kl_mb_file_name(const char *example, uint32_t no, char *buf, size_t size);

/*
 * maria-binlog.c: the stored binary log files a replay needs, from the
 * start of file number from_no (a base backup's file: written whole) up
 * to the target, written into dir (which must exist) under the server's
 * names. The target: stop_time (seconds since the epoch: the files up to
 * the record holding the first event at or after it; 0: not by time), or
 * stop_lsn (a position, file_number << 32 | offset; 0: not by position);
 * neither: all that is stored. *ret (to kl_mb_files_release) names the
 * files written, in order. Errors: -KL_ENOTFOUND (nothing stored for
 * name, or the target is past what is stored), -KL_EDBGAP (a hole), the
 * repository's. (kl_maria_binlog_fetch in maria-internal.h is the
 * restore's entry to it.)
 */
struct kl_mb_target {
	int64_t stop_time;
	uint64_t stop_lsn;
};
struct kl_mb_files {
	char **v;
	size_t n;
};
int kl_mb_fetch(struct kl_repo *r, const char *name, uint32_t from_no,
		const struct kl_mb_target *to, const char *dir, struct kl_mb_files *ret);
void kl_mb_files_release(struct kl_mb_files *f);

#endif
