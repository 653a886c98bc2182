/*
 * What the files of src/daemon share and nothing else needs: spawning the
 * keel binary for a run or a drill, its argument vector, its log files.
 */
#ifndef KEEL_DAEMON_INTERNAL_H
#define KEEL_DAEMON_INTERNAL_H

#include <jansson.h>
#include <sys/types.h>

#include "keel/daemon.h"

enum kl_rt_kind { KL_RT_JOB, KL_RT_DRILL, KL_RT_PRUNE };

/* A job, a drill or a repository's prune as the daemon's loop sees it. */
struct job_rt {
	char *name; /* of the job (a drill's is its job's), or of the repository */
	enum kl_rt_kind kind;
	pid_t pid;     /* the run under way, 0: none */
	int64_t due;   /* Unix seconds; -1: never */
	int64_t start; /* of the run under way */
	bool gone;     /* no longer in the configuration: dropped when its run ends */
};

/* A db job's keel db stream child (stream.c). */
struct stream_rt {
	char *job;
	pid_t pid;	 /* 0: not running */
	int64_t due;	 /* when it starts (again) */
	int64_t start;	 /* of the one running */
	int64_t backoff; /* seconds before the next start after an exit */
	bool stopping;	 /* sent SIGTERM */
	bool gone;	 /* its job is no longer a streaming db job */
	bool restart;	 /* stopped for new settings: starts again at once */
	char *settings;	 /* what the running one was started with (its argv, PGPASSFILE) */
};

struct daemon {
	const struct kl_daemon_opts *o;
	struct kl_daemon_conf conf;
	struct kl_daemon_http *http;
	struct job_rt *rt;
	size_t n_rt;
	/* the last `keel status --json` (status.c), for the page, /api/status and alerts */
	pid_t status_pid;     /* the one under way, 0: none */
	bool status_again;    /* asked for while one was under way */
	int64_t status_time;  /* when the cached one was started, 0: none */
	int64_t status_start; /* of the one under way */
	char *status_text;    /* its output */
	json_t *status;	      /* parsed */
	struct stream_rt *streams;
	size_t n_streams;
	bool stopping; /* SIGTERM: no new runs, streams told to stop */
};

/* Matches the streams to d->conf (new ones due now; gone ones sent SIGTERM). */
int kl_daemon_streams_sync(struct daemon *d);
/* Starts the streams due by now. */
void kl_daemon_streams_start(struct daemon *d, int64_t now);
/* Takes a stream child's end (true: pid was one): due again after its backoff. */
bool kl_daemon_streams_reaped(struct daemon *d, pid_t pid, int wstatus);
/* SIGTERM to every stream child. */
void kl_daemon_streams_stop(struct daemon *d);
bool kl_daemon_streams_running(const struct daemon *d);
/* The earliest time a stream is due to start, -1: none. */
int64_t kl_daemon_streams_due(const struct daemon *d);
void kl_daemon_streams_release(struct daemon *d);

/* Seconds between two status refreshes when nothing ends a run meanwhile. */
#define KL_DAEMON_STATUS_EVERY 10

/* Starts a `keel status --json` child unless one runs (then: again when it ends). */
void kl_daemon_status_refresh(struct daemon *d);
/* Takes the status child's end (true: pid was it): caches what it wrote. */
bool kl_daemon_status_reaped(struct daemon *d, pid_t pid, int wstatus);
void kl_daemon_status_release(struct daemon *d);
/* Whether status.c needs to run at all: HTTP or notifications are configured. */
bool kl_daemon_status_wanted(const struct daemon *d);

/* After each status: alerts for the jobs whose state changed (alert.c) */
void kl_daemon_alerts_check(struct daemon *d);

/* GET /metrics (metrics.c): Prometheus text format, from the state directory */
int kl_daemon_render_metrics(const struct daemon *d, struct kl_buf *out);
/* GET / (page.c): the status page, one HTML document */
int kl_daemon_render_page(const struct daemon *d, struct kl_buf *out);
/* The HTTP handler (page.c): /, /api/status, /metrics */
int kl_daemon_http_route(const char *url, struct kl_buf *out, const char **type, void *userdata);

/* An argument vector of bounded size: what does not fit is left out. */
struct kl_daemon_argv {
	char *v[64 + 2 * 1024];
	size_t n;
};

void kl_daemon_argv_add(struct kl_daemon_argv *a, const char *s);

/*
 * keel CMD --no-progress -r LOCATION --password-file FILE [--host HOST]:
 * what every child passes (host NULL: no --host).
 */
void kl_daemon_argv_repo(struct kl_daemon_argv *a, const struct kl_daemon_opts *o,
			 const struct kl_daemon_repo *rp, const char *cmd, const char *host);

/*
 * keel CMD VERB --no-progress [-r LOCATION --password-file FILE] (keel
 * image, db, mirror: the verb comes before the options).
 */
void kl_daemon_argv_verb(struct kl_daemon_argv *a, const struct kl_daemon_opts *o,
			 const struct kl_daemon_repo *rp, const char *cmd, const char *verb,
			 bool password);

/*
 * Runs argv with stdin from in_fd (-1: /dev/null), stdout to out_fd and
 * stderr to err_fd, every signal unblocked, KEEL_JOB=job in its
 * environment. Returns its exit status (128 + N when killed by signal N)
 * or -errno.
 */
int kl_daemon_spawn(char *const argv[], int in_fd, int out_fd, int err_fd, const char *job);

/* The keel command of one run of j, by its kind (run-kind.c). */
void kl_daemon_job_argv(struct kl_daemon_argv *a, const struct kl_daemon_opts *o,
			const struct kl_daemon_repo *rp, const struct kl_daemon_job *j,
			const char *host);
/* keel db stream of a db job with stream = yes */
void kl_daemon_stream_argv(struct kl_daemon_argv *a, const struct kl_daemon_opts *o,
			   const struct kl_daemon_repo *rp, const struct kl_daemon_job *j,
			   const char *host);
/* Sets what j's command reads from its environment (PGPASSFILE), in a run's process. */
int kl_daemon_job_env(const struct kl_daemon_job *j);

/* Opens (truncating) STATE-DIR/DIR/NAME.EXT for writing and reading, making DIR. */
int kl_daemon_open_log(const char *state_dir, const char *dir, const char *name, const char *ext);

/* The last non-empty line written to fd, at most n - 1 bytes of it. */
void kl_daemon_last_line(int fd, char *out, size_t n);

#endif
