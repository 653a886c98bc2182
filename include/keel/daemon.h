/*
 * keel's job daemon (docs/DAEMON.md): the configuration file of jobs,
 * schedules, the state of each job's runs, and the daemon's loop.
 * A layer above ops, below cli.
 */
#ifndef KEEL_DAEMON_H
#define KEEL_DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "keel/util.h"

/* ---- schedules (src/daemon/schedule.c) ---------------------------------- */

/*
 * "every 30s|15m|2h|1d", "hourly", "daily HH:MM", "weekly DAY HH:MM" or a
 * five-field cron line (minute hour day-of-month month day-of-week, with
 * '*', N, N-M, '/STEP' and lists; day 0 or 7 is Sunday). Everything but
 * "every" is a calendar in local time.
 */
struct kl_schedule {
	int64_t every;	 /* seconds; 0: a calendar */
	uint64_t minute; /* bit per minute 0..59 */
	uint32_t hour;	 /* bit per hour 0..23 */
	uint32_t dom;	 /* bit per day 1..31 */
	uint16_t month;	 /* bit per month 1..12 */
	uint8_t dow;	 /* bit per day 0..6, 0 Sunday */
	bool dom_star, dow_star;
};

/* Returns 0 or -KL_EUSAGE. */
int kl_schedule_parse(const char *s, struct kl_schedule *ret);

/*
 * The first time the schedule fires strictly after `after` (Unix seconds),
 * or -1 if it never does (a cron line for February 30). "every N" fires
 * at after + N. A calendar is read in the local time zone (TZ):
 * - a wall-clock time that occurs twice (the hour repeated when summer
 *   time ends) fires once, at its first occurrence;
 * - one that does not exist (the hour skipped when it starts) fires at
 *   the same wall-clock distance after the skip (02:30 becomes 03:30),
 *   once, unless that moment is itself on the schedule.
 */
int64_t kl_schedule_next(const struct kl_schedule *s, int64_t after);

/* "30s", "15m", "2h", "7d" (also "1h30m") in seconds. Returns 0 or -KL_EUSAGE. */
int kl_daemon_parse_duration(const char *s, int64_t *ret);

/* ---- configuration (src/daemon/conf.c) ---------------------------------- */

#define KL_DAEMON_CONF_DEFAULT "/etc/keel/keel.conf"
#define KL_DAEMON_STATE_DEFAULT "/var/lib/keel"

struct kl_daemon_repo {
	char *name;
	char *location;
	char *password_file;
	struct kl_schedule prune; /* when `keel prune` runs on it */
	bool has_prune;
	unsigned line;
};

enum kl_daemon_keep {
	KL_KEEP_LAST,
	KL_KEEP_HOURLY,
	KL_KEEP_DAILY,
	KL_KEEP_WEEKLY,
	KL_KEEP_MONTHLY,
	KL_KEEP_YEARLY,
	KL_KEEP_N
};

/* What a job backs up (docs/DAEMON.md, "Job kinds"). */
enum kl_daemon_job_kind {
	KL_JOB_FILES,	/* paths: keel backup */
	KL_JOB_COMMAND, /* command's output: keel backup --stdin-from-command */
	KL_JOB_IMAGE,	/* source: keel image backup */
	KL_JOB_DB,	/* conninfo, name: keel db backup (and keel db stream) */
	KL_JOB_MIRROR,	/* destination: keel mirror of the repository */
	KL_JOB_KIND_N
};

/* The job keys that belong to some kinds only: where each was set, 0: not. */
enum kl_daemon_job_key {
	KL_JK_PATHS,
	KL_JK_EXCLUDE,
	KL_JK_COMMAND,
	KL_JK_STDIN_FILENAME,
	KL_JK_SOURCE,
	KL_JK_CONNINFO,
	KL_JK_NAME,
	KL_JK_STREAM,
	KL_JK_PGPASS_FILE,
	KL_JK_DESTINATION,
	KL_JK_KEEP,
	KL_JK_BEFORE,
	KL_JK_HOST,
	KL_JK_N
};

struct kl_daemon_job {
	char *name;
	enum kl_daemon_job_kind kind;
	unsigned key_line[KL_JK_N];
	/*
	 * For the kinds other than files and mirror, the one path keel
	 * records in the snapshot ("/STDIN-FILENAME", the image's source,
	 * "db:NAME"), which status and forget select by: set by the parser.
	 */
	char *repository; /* a [repository "NAME"] */
	char **paths;	  /* absolute */
	size_t n_paths;
	char **excludes;
	size_t n_excludes;
	char *host; /* NULL: this host's name */
	struct kl_schedule schedule;
	char *schedule_text;
	uint32_t keep[KL_KEEP_N]; /* 0: that rule unset */
	int64_t rpo_target;	  /* seconds; 0: none */
	int64_t jitter;		  /* seconds: runs start up to this much later; 0: none */
	char *before, *after;	  /* hooks, run by /bin/sh -c; NULL: none */
	char *command;		  /* command: run by /bin/sh -c */
	char *stdin_filename;	  /* command: its output's name (default "stdin") */
	char *source;		  /* image: a block device or an image file */
	char *conninfo;		  /* db: libpq's, without a password */
	char *db_name;		  /* db: --name */
	char *pgpass_file;	  /* db: PGPASSFILE for keel db; NULL: libpq's default */
	bool stream;		  /* db: a keel db stream child runs all the time */
	char *destination;	  /* mirror: the copy's location */
	unsigned line;
};

/* "files", "command", "image", "db", "mirror" */
const char *kl_daemon_job_kind_name(enum kl_daemon_job_kind k);

struct kl_daemon_drill {
	char *job;
	struct kl_schedule schedule;
	bool has_schedule;
	int64_t rto_target; /* seconds; 0: none */
	unsigned sample;    /* drill-sample, percent of the files; 0: all */
	char *scratch;	    /* where it restores; NULL: STATE-DIR/drill */
	unsigned line;
};

struct kl_daemon_conf {
	char *path;
	struct kl_daemon_repo *repos;
	size_t n_repos;
	struct kl_daemon_job *jobs;
	size_t n_jobs;
	struct kl_daemon_drill *drills;
	size_t n_drills;
	char *webhook, *mail;
	char *sendmail; /* [notify] sendmail: the program mail goes through; NULL:
			   /usr/sbin/sendmail */
	char *http_listen, *http_token_file;
};

/*
 * Parses a configuration file's text; path names it in messages, which
 * read "PATH:LINE: KEY: what is wrong" (the key, or the section for a
 * whole section). Returns 0, -KL_EUSAGE (err says why) or -ENOMEM; release
 * *ret with kl_daemon_conf_release() in every case.
 */
int kl_daemon_conf_parse(const char *text, size_t n, const char *path, struct kl_daemon_conf *ret,
			 struct kl_err *err);
/* Reads and parses the file at path (at most 1 MiB). */
int kl_daemon_conf_load(const char *path, struct kl_daemon_conf *ret, struct kl_err *err);
void kl_daemon_conf_release(struct kl_daemon_conf *c);
const struct kl_daemon_repo *kl_daemon_conf_repo(const struct kl_daemon_conf *c, const char *name);
const struct kl_daemon_job *kl_daemon_conf_job(const struct kl_daemon_conf *c, const char *name);
/*
 * The job's jitter offset: a stable number of seconds in [0, jitter),
 * from the job's host and name, so that hosts sharing a repository spread
 * out while each keeps an even period.
 */
int64_t kl_daemon_job_offset(const struct kl_daemon_job *j);
/*
 * When the job runs next: after its last run's start (0: it never ran)
 * by its schedule, shifted by its offset (a calendar time's run starts
 * that much later; an "every" job's first run too, later ones keep the
 * period). -1: never. May be in the past (a missed run: due now).
 */
int64_t kl_daemon_job_next(const struct kl_daemon_job *j, int64_t last_start, int64_t now);
/* The job's host name in snapshots: its host key, else this host's name. */
void kl_daemon_job_host(const struct kl_daemon_job *j, char out[256]);

struct kl_daemon_opts;

/* ---- the state of each job's runs (src/daemon/state.c) ------------------ */

/* One job's last run, as STATE-DIR/jobs/NAME.json records it. */
struct kl_daemon_run {
	int64_t start; /* Unix seconds; 0: never ran */
	int64_t end;
	double duration; /* seconds */
	bool success;
	char snapshot[65];    /* hex id of the snapshot it saved, "" if none */
	char error[256];      /* the reason it failed, "" on success */
	int64_t last_success; /* end of the newest successful run, 0: none */
	double snapshot_time; /* when the newest snapshot of a run was started, 0: none */
	/* drills only (STATE-DIR/drills/JOB.json): snapshot is the one drilled */
	double rto;	 /* the last successful drill's time (scaled with a sample), 0: none */
	unsigned sample; /* its drill-sample in percent, 100: all (rto is measured) */
	uint64_t bytes;	 /* the bytes it restored and verified */
	bool recorded;	 /* this drill's record is in the repository */
};

/* Reads the record of job; a job that never ran gives 0 and a zeroed run. */
int kl_daemon_state_read(const char *state_dir, const char *job, struct kl_daemon_run *ret);
/* Writes it atomically (creating STATE-DIR/jobs). */
int kl_daemon_state_write(const char *state_dir, const char *job, const struct kl_daemon_run *run);
/* The same for a repository's last prune, STATE-DIR/prune/REPO.json. */
int kl_daemon_prune_state_read(const char *state_dir, const char *repo, struct kl_daemon_run *ret);
int kl_daemon_prune_state_write(const char *state_dir, const char *repo,
				const struct kl_daemon_run *run);
/* The same for the job's last drill, STATE-DIR/drills/JOB.json. */
int kl_daemon_drill_state_read(const char *state_dir, const char *job, struct kl_daemon_run *ret);
int kl_daemon_drill_state_write(const char *state_dir, const char *job,
				const struct kl_daemon_run *run);

/* ---- restore drills (src/daemon/drill.c, drill-record.c) ----------------- */

/*
 * A drill's record in the repository (docs/DAEMON.md, "Drills"): a small
 * snapshot of the job's host whose one file, keel-drill-JOB.json, holds
 * the record for people, and whose tags hold it for keel:
 *   keel-drill, drill-job=JOB, drill-of=SNAPSHOT-ID (64 hex digits),
 *   drill-result=ok|failed, drill-seconds=S (the restore's time, scaled
 *   to the whole when sampled), drill-sample=P (percent, 1..100; below
 *   100 the time is an estimate), drill-bytes=N (restored and verified).
 */
#define KL_DRILL_TAG "keel-drill"

struct kl_daemon_drill_record {
	char job[65];
	char snapshot[65]; /* the snapshot drilled, hex */
	bool ok;
	double seconds;	 /* the restore's time; an estimate when sample < 100 */
	unsigned sample; /* percent of the files restored */
	uint64_t bytes;
};

/*
 * Reads a record from a snapshot's tags. Returns 1 (a record, in *ret),
 * 0 (no keel-drill tag: not a record) or -KL_ECORRUPT (a keel-drill tag
 * with the other tags missing, repeated or malformed).
 */
int kl_daemon_drill_record_parse(char *const *tags, size_t n, struct kl_daemon_drill_record *ret);
/* Appends the record's tags to out, separated by ',' (backup --tag's form). */
int kl_daemon_drill_record_tags(const struct kl_daemon_drill_record *r, struct kl_buf *out);

/*
 * One drill of the job dr names, in the process that is the drill (a
 * child of the daemon): restores the job's newest snapshot (or a sample
 * of its files) with `keel restore --verify` into a scratch directory,
 * times it, removes it, records the result in the repository (above) and
 * in STATE-DIR/drills/JOB.json, and keeps the job's 10 newest records.
 * Returns 0, 1 when the job has no snapshot yet (nothing done, nothing
 * recorded), or a negative error (the record could not be written).
 */
int kl_daemon_drill_job(const struct kl_daemon_opts *o, const struct kl_daemon_conf *c,
			const struct kl_daemon_drill *dr, struct kl_daemon_run *ret);

/* ---- HTTP (src/daemon/http.c) ------------------------------------------ */

struct kl_daemon_http;
/*
 * Answers a GET of url (the path, without the query): writes the body to
 * out, sets *type when it is not text/plain, returns the HTTP status, or
 * a negative error (500).
 */
typedef int kl_daemon_http_handler(const char *url, struct kl_buf *out, const char **type,
				   void *userdata);
/*
 * Listens on listen ("127.0.0.1:9911"; an address beyond loopback only
 * with a token_file, whose first line every request must then carry) and
 * answers GET and HEAD with handler. Driven by the caller's loop: poll
 * kl_daemon_http_fd() for input, with kl_daemon_http_timeout_ms() (-1:
 * none), then call kl_daemon_http_run().
 */
int kl_daemon_http_start(const char *listen, const char *token_file,
			 kl_daemon_http_handler *handler, void *userdata,
			 struct kl_daemon_http **ret, struct kl_err *err);
int kl_daemon_http_fd(const struct kl_daemon_http *h);
int kl_daemon_http_timeout_ms(const struct kl_daemon_http *h);
void kl_daemon_http_run(struct kl_daemon_http *h);
void kl_daemon_http_free(struct kl_daemon_http *h);

/* ---- the daemon (src/daemon/daemon.c, run.c) ------------------------------ */

struct kl_daemon_opts {
	const char *config_path;
	const char *state_dir;
	const char *keel_exe; /* the keel binary each run executes */
	/*
	 * Readable (an eventfd's count): stop as on SIGTERM. -1: the daemon
	 * takes SIGTERM and SIGINT itself.
	 */
	int stop_fd;
};

/*
 * Runs the jobs of the configuration file on their schedules until
 * SIGTERM or SIGINT (then waits for running jobs to finish and returns 0);
 * SIGHUP reloads the file (a bad one is reported and the old one kept).
 * Logs one line per event to stderr. Blocks SIGHUP, SIGCHLD and (without
 * o->stop_fd) SIGTERM and SIGINT in the calling thread.
 */
int kl_daemon_run(const struct kl_daemon_opts *o, struct kl_err *err);

/*
 * One run of job: the before hook, `keel backup`, `keel forget` with the
 * job's keep rules, the after hook; fills *ret (start, end, success,
 * snapshot, error). Called in the process that is the run (a child of
 * the daemon).
 */
int kl_daemon_run_job(const struct kl_daemon_opts *o, const struct kl_daemon_conf *c,
		      const struct kl_daemon_job *j, struct kl_daemon_run *ret);

/*
 * `keel prune` of a repository (its prune schedule), in the process that
 * is the run, recorded in STATE-DIR/prune/REPO.json (log: REPO.log).
 */
int kl_daemon_prune_repo(const struct kl_daemon_opts *o, const struct kl_daemon_repo *rp,
			 struct kl_daemon_run *ret);

#endif
