/*
 * What the files of src/daemon share and nothing else needs: spawning the
 * keel binary for a run or a drill, its argument vector, its log files.
 */
#ifndef KEEL_DAEMON_INTERNAL_H
#define KEEL_DAEMON_INTERNAL_H

#include <sys/types.h>

#include "keel/daemon.h"

/* A job or a drill as the daemon's loop sees it. */
struct job_rt {
	char *name; /* of the job (a drill's is its job's) */
	bool drill;
	pid_t pid;     /* the run under way, 0: none */
	int64_t due;   /* Unix seconds; -1: never */
	int64_t start; /* of the run under way */
	bool gone;     /* no longer in the configuration: dropped when its run ends */
};

struct daemon {
	const struct kl_daemon_opts *o;
	struct kl_daemon_conf conf;
	struct kl_daemon_http *http;
	struct job_rt *rt;
	size_t n_rt;
};

/* GET /metrics (metrics.c): Prometheus text format, from the state directory */
int kl_daemon_render_metrics(struct kl_buf *out, void *userdata);

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
 * Runs argv with stdin from in_fd (-1: /dev/null), stdout to out_fd and
 * stderr to err_fd, every signal unblocked, KEEL_JOB=job in its
 * environment. Returns its exit status (128 + N when killed by signal N)
 * or -errno.
 */
int kl_daemon_spawn(char *const argv[], int in_fd, int out_fd, int err_fd, const char *job);

/* Opens (truncating) STATE-DIR/DIR/NAME.EXT for writing and reading, making DIR. */
int kl_daemon_open_log(const char *state_dir, const char *dir, const char *name, const char *ext);

/* The last non-empty line written to fd, at most n - 1 bytes of it. */
void kl_daemon_last_line(int fd, char *out, size_t n);

#endif
