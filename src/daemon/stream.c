/*
 * The keel db stream children of the db jobs with stream = yes: one each,
 * started with the daemon, started again when it exits (after 1 s, then
 * twice as long each time up to a minute, back to 1 s once a stream ran
 * for a minute), stopped with SIGTERM when the daemon stops or the job
 * leaves the configuration. keel db stream stores what it received and
 * exits 0 on SIGTERM (docs/DATABASES.md), so nothing is lost on a stop.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "keel/fs.h"

#define LOG(fmt, ...) fprintf(stderr, "keel: daemon: " fmt "\n", ##__VA_ARGS__)
#define BACKOFF_MAX 60

static bool wants_stream(const struct kl_daemon_job *j)
{
	return j && j->kind == KL_JOB_DB && j->stream;
}

/*
 * What a stream of j runs with: its argument vector (the conninfo, the
 * name, the host, the repository and its password file) and its
 * PGPASSFILE, as one string; NULL: out of memory.
 */
static char *settings(const struct daemon *d, const struct kl_daemon_job *j)
{
	_cleanup_buf_ struct kl_buf b = KL_BUF_INIT(1u << 20);
	struct kl_daemon_argv a = {0};
	char host[256];

	kl_daemon_job_host(j, host);
	kl_daemon_stream_argv(&a, d->o, kl_daemon_conf_repo(&d->conf, j->repository), j, host);
	for (size_t i = 0; i < a.n; i++)
		if (kl_buf_addstr(&b, a.v[i]) < 0 || kl_buf_addch(&b, '\n') < 0)
			return NULL;
	if (kl_buf_addstr(&b, j->pgpass_file ? j->pgpass_file : "") < 0)
		return NULL;
	return (char *)kl_buf_detach(&b, NULL);
}

/* A running stream whose job's settings changed (a reload) is stopped, to start again at once. */
static void restart_changed(struct daemon *d, struct stream_rt *s)
{
	const struct kl_daemon_job *j = kl_daemon_conf_job(&d->conf, s->job);
	char *now;

	if (!s->pid || s->stopping || !s->settings || !wants_stream(j))
		return;
	now = settings(d, j);
	if (now && strcmp(now, s->settings)) {
		LOG("stream '%s': its settings changed: restarting it", s->job);
		kill(s->pid, SIGTERM);
		s->stopping = true;
		s->restart = true;
	}
	kl_free(now);
}

static void drop_gone(struct daemon *d)
{
	for (size_t i = 0; i < d->n_streams;) {
		if (d->streams[i].gone && !d->streams[i].pid) {
			kl_free(d->streams[i].settings);
			kl_free(d->streams[i].job);
			d->streams[i] = d->streams[--d->n_streams];
		} else {
			i++;
		}
	}
}

int kl_daemon_streams_sync(struct daemon *d)
{
	for (size_t i = 0; i < d->n_streams; i++) {
		struct stream_rt *s = &d->streams[i];

		s->gone = !wants_stream(kl_daemon_conf_job(&d->conf, s->job));
		if (s->gone && s->pid && !s->stopping) {
			kill(s->pid, SIGTERM);
			s->stopping = true;
		}
		restart_changed(d, s);
	}
	for (size_t i = 0; i < d->conf.n_jobs; i++) {
		const struct kl_daemon_job *j = &d->conf.jobs[i];
		struct stream_rt *v;
		bool have = false;

		if (!wants_stream(j))
			continue;
		for (size_t k = 0; k < d->n_streams && !have; k++)
			have = !strcmp(d->streams[k].job, j->name);
		if (have)
			continue;
		v = kl_realloc(d->streams, (d->n_streams + 1) * sizeof(*v));
		if (!v)
			return -ENOMEM;
		d->streams = v;
		memset(&v[d->n_streams], 0, sizeof(*v));
		v[d->n_streams].job = kl_strdup(j->name);
		if (!v[d->n_streams].job)
			return -ENOMEM;
		v[d->n_streams].due = kl_time_now_ns() / KL_NSEC_PER_SEC;
		v[d->n_streams++].backoff = 1;
	}
	drop_gone(d);
	return 0;
}

/*
 * In the child: keel db stream, its output appended to
 * STATE-DIR/streams/JOB.log. argv and envp are made
 * before fork(): a threaded process may call only async-signal-safe
 * functions between fork() and exec (kl_env_with).
 */
static _Noreturn void exec_stream(const struct daemon *d, const struct kl_daemon_job *j,
				  char *const argv[], char *const envp[])
{
	char path[4200];
	sigset_t none;
	int fd, in_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	setpgid(0, 0);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	snprintf(path, sizeof(path), "%s/streams", d->o->state_dir);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/streams/%s.log", d->o->state_dir, j->name);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0 || in_fd < 0 || dup2(in_fd, STDIN_FILENO) < 0 || dup2(fd, STDOUT_FILENO) < 0 ||
	    dup2(fd, STDERR_FILENO) < 0)
		_exit(127);
	execve(argv[0], argv, envp);
	dprintf(STDERR_FILENO, "cannot run '%s': %s\n", argv[0], strerror(errno));
	_exit(127);
}

/* Forks and execs j's keel db stream: its pid, or -errno. */
static pid_t start_stream(const struct daemon *d, const struct kl_daemon_job *j)
{
	const struct kl_daemon_repo *rp = kl_daemon_conf_repo(&d->conf, j->repository);
	_cleanup_free_ char **envp = NULL;
	struct kl_daemon_argv a = {0};
	char host[256], job_var[256], pgpass_var[4200];
	char *set[3] = {job_var, NULL, NULL};
	pid_t pid;

	kl_daemon_job_host(j, host);
	kl_daemon_stream_argv(&a, d->o, rp, j, host);
	if ((size_t)snprintf(job_var, sizeof(job_var), "KEEL_JOB=%s", j->name) >= sizeof(job_var))
		return -ENAMETOOLONG;
	/* what kl_daemon_job_env() sets for a run */
	if (j->kind == KL_JOB_DB && j->pgpass_file) {
		if ((size_t)snprintf(pgpass_var, sizeof(pgpass_var), "PGPASSFILE=%s",
				     j->pgpass_file) >= sizeof(pgpass_var))
			return -ENAMETOOLONG;
		set[1] = pgpass_var;
	}
	if (kl_env_with(environ, set, &envp) < 0)
		return -ENOMEM;
	pid = fork();
	if (pid == 0)
		exec_stream(d, j, a.v, envp);
	return pid < 0 ? -errno : pid;
}

void kl_daemon_streams_start(struct daemon *d, int64_t now)
{
	for (size_t i = 0; i < d->n_streams; i++) {
		struct stream_rt *s = &d->streams[i];
		const struct kl_daemon_job *j = kl_daemon_conf_job(&d->conf, s->job);
		pid_t pid;

		if (s->pid || s->gone || s->due > now || !wants_stream(j))
			continue;
		s->start = now;
		kl_free(s->settings);
		s->settings = settings(d, j);
		pid = start_stream(d, j);
		if (pid < 0) {
			LOG("stream '%s': cannot start: %s", s->job, strerror((int)-pid));
			s->due = now + s->backoff;
			continue;
		}
		s->pid = pid;
		s->stopping = false;
		LOG("stream '%s': keel db stream started (pid %d)", s->job, (int)pid);
	}
}

bool kl_daemon_streams_reaped(struct daemon *d, pid_t pid, int st)
{
	int64_t now = kl_time_now_ns() / KL_NSEC_PER_SEC;

	for (size_t i = 0; i < d->n_streams; i++) {
		struct stream_rt *s = &d->streams[i];
		int code = WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);

		if (s->pid != pid)
			continue;
		s->pid = 0;
		if (s->restart && !d->stopping) {
			LOG("stream '%s': stopped (exit %d) for its new settings", s->job, code);
			s->due = now;
			s->backoff = 1;
		} else if (s->stopping || d->stopping) {
			LOG("stream '%s': stopped (exit %d)", s->job, code);
		} else {
			if (now - s->start >= BACKOFF_MAX)
				s->backoff = 1;
			LOG("stream '%s': keel db stream exited with %d (see %s/streams/%s.log); "
			    "again in %lld s",
			    s->job, code, d->o->state_dir, s->job, (long long)s->backoff);
			s->due = now + s->backoff;
			s->backoff = KL_MIN(s->backoff * 2, BACKOFF_MAX);
		}
		s->stopping = false;
		s->restart = false;
		drop_gone(d);
		return true;
	}
	return false;
}

void kl_daemon_streams_stop(struct daemon *d)
{
	for (size_t i = 0; i < d->n_streams; i++)
		if (d->streams[i].pid && !d->streams[i].stopping) {
			kill(d->streams[i].pid, SIGTERM);
			d->streams[i].stopping = true;
		}
}

bool kl_daemon_streams_running(const struct daemon *d)
{
	for (size_t i = 0; i < d->n_streams; i++)
		if (d->streams[i].pid)
			return true;
	return false;
}

int64_t kl_daemon_streams_due(const struct daemon *d)
{
	int64_t best = -1;

	for (size_t i = 0; i < d->n_streams; i++)
		if (!d->streams[i].pid && !d->streams[i].gone &&
		    (best < 0 || d->streams[i].due < best))
			best = d->streams[i].due;
	return best;
}

void kl_daemon_streams_release(struct daemon *d)
{
	for (size_t i = 0; i < d->n_streams; i++) {
		kl_free(d->streams[i].settings);
		kl_free(d->streams[i].job);
	}
	kl_free(d->streams);
	d->streams = NULL;
	d->n_streams = 0;
}
