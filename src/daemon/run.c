/*
 * One run of a job, in its own process (a child of the daemon): the
 * before hook, `keel backup`, `keel forget` with the job's keep rules,
 * the after hook, and the record of the result.
 *
 * The backup and the retention run as child processes of the keel binary
 * rather than as library calls in this process: a run that crashes, leaks
 * or is killed by the out-of-memory killer takes no other job and not the
 * daemon with it; its keys live only as long as the run (never in the
 * long-lived daemon); and it takes and removes its repository lock, reads
 * its password file and maps its errors to exit codes exactly as the
 * command a user runs by hand does, the code paths every other test
 * exercises. docs/DAEMON.md says more.
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

int kl_daemon_spawn(char *const argv[], int in_fd, int out_fd, int err_fd, const char *job)
{
	_cleanup_free_ char **envp = NULL;
	char job_var[256];
	char *set[] = {job_var, NULL};
	pid_t pid;
	int st;

	/* made before fork(): only async-signal-safe calls may follow it (kl_env_with) */
	if ((size_t)snprintf(job_var, sizeof(job_var), "KEEL_JOB=%s", job) >= sizeof(job_var))
		return -ENAMETOOLONG;
	if (kl_env_with(environ, set, &envp) < 0)
		return -ENOMEM;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		sigset_t none;
		int null_fd = -1;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (in_fd < 0)
			in_fd = null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (in_fd < 0 || dup2(in_fd, STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0 ||
		    dup2(err_fd, STDERR_FILENO) < 0)
			_exit(127);
		execve(argv[0], argv, envp);
		dprintf(err_fd, "cannot run '%s': %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return WEXITSTATUS(st);
}

static int hook(const char *cmd, int log_fd, const char *job)
{
	char *argv[] = {(char *)"/bin/sh", (char *)"-c", (char *)cmd, NULL};

	return kl_daemon_spawn(argv, -1, log_fd, log_fd, job);
}

void kl_daemon_last_line(int fd, char *out, size_t n)
{
	char buf[1024];
	off_t end = lseek(fd, 0, SEEK_END),
	      off = end > (off_t)sizeof(buf) - 1 ? end - (off_t)sizeof(buf) + 1 : 0;
	ssize_t got = end > 0 ? pread(fd, buf, (size_t)(end - off), off) : 0;
	char *e, *s;

	if (got <= 0)
		return;
	buf[got] = 0;
	e = buf + got;
	while (e > buf && (e[-1] == '\n' || e[-1] == '\r'))
		*--e = 0;
	s = strrchr(buf, '\n');
	s = s ? s + 1 : buf;
	e = s + strnlen(s, n - 1);
	memcpy(out, s, (size_t)(e - s));
	out[e - s] = 0;
}

void kl_daemon_argv_add(struct kl_daemon_argv *a, const char *s)
{
	if (a->n + 1 < sizeof(a->v) / sizeof(a->v[0]))
		a->v[a->n++] = (char *)s;
	a->v[a->n] = NULL;
}

int kl_daemon_open_log(const char *state_dir, const char *dir, const char *name, const char *ext)
{
	_cleanup_close_ int dfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char path[160];
	int fd;

	if (dfd < 0)
		return -errno;
	if (mkdirat(dfd, dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	snprintf(path, sizeof(path), "%s/%s.%s", dir, name, ext);
	fd = openat(dfd, path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	return fd < 0 ? -errno : fd;
}

void kl_daemon_argv_repo(struct kl_daemon_argv *a, const struct kl_daemon_opts *o,
			 const struct kl_daemon_repo *rp, const char *cmd, const char *host)
{
	kl_daemon_argv_add(a, o->keel_exe);
	kl_daemon_argv_add(a, cmd);
	kl_daemon_argv_add(a, "--no-progress");
	kl_daemon_argv_add(a, "-r");
	kl_daemon_argv_add(a, rp->location);
	kl_daemon_argv_add(a, "--password-file");
	kl_daemon_argv_add(a, rp->password_file);
	if (host) {
		kl_daemon_argv_add(a, "--host");
		kl_daemon_argv_add(a, host);
	}
}

void kl_daemon_job_host(const struct kl_daemon_job *j, char out[256])
{
	if (j->host)
		snprintf(out, 256, "%s", j->host);
	else if (gethostname(out, 255) < 0)
		snprintf(out, 256, "localhost");
	out[255] = 0;
}

static int backup(const struct kl_daemon_opts *o, const struct kl_daemon_repo *rp,
		  const struct kl_daemon_job *j, const char *host, int log_fd,
		  struct kl_daemon_run *ret)
{
	_cleanup_close_ int out_fd = kl_daemon_open_log(o->state_dir, "jobs", j->name, "out");
	struct kl_daemon_argv a = {0};
	double t0;
	int st;

	if (out_fd < 0)
		return out_fd;
	kl_daemon_job_argv(&a, o, rp, j, host);
	st = kl_daemon_job_env(j);
	if (st < 0)
		return st;
	t0 = (double)kl_time_now_ns() / (double)KL_NSEC_PER_SEC;
	st = kl_daemon_spawn(a.v, -1, out_fd, log_fd, j->name);
	if (st < 0)
		return st;
	if (st == 0 || st == 3) {
		ret->snapshot_time = t0; /* the snapshot's time is taken as the backup starts */
		/* the summary is the last line, after one status line a second */
		char buf[8192];
		struct stat sb;
		off_t from = fstat(out_fd, &sb) == 0 && sb.st_size > (off_t)sizeof(buf) - 1
				     ? sb.st_size - (off_t)sizeof(buf) + 1
				     : 0;
		ssize_t got = pread(out_fd, buf, sizeof(buf) - 1, from);
		const char *p;

		buf[got > 0 ? got : 0] = 0;
		p = strstr(buf, "\"message_type\":\"summary\"");
		p = p ? strstr(p, "\"snapshot_id\":\"") : NULL;
		if (p && strlen(p + 15) >= 64)
			snprintf(ret->snapshot, sizeof(ret->snapshot), "%.64s", p + 15);
	}
	return st;
}

/* the command a run of each kind runs, for its error message */
static const char *const kind_cmd[KL_JOB_KIND_N] = {"backup", "backup", "image backup", "db backup",
						    "mirror"};

static int forget(const struct kl_daemon_opts *o, const struct kl_daemon_repo *rp,
		  const struct kl_daemon_job *j, const char *host, int log_fd)
{
	static const char *const opt[KL_KEEP_N] = {"--keep-last",    "--keep-hourly",
						   "--keep-daily",   "--keep-weekly",
						   "--keep-monthly", "--keep-yearly"};
	_cleanup_close_ int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	char num[KL_KEEP_N][16];
	struct kl_daemon_argv a = {0};
	bool any = false;

	kl_daemon_argv_repo(&a, o, rp, "forget", host);
	for (size_t i = 0; i < j->n_paths && i < 1024; i++) {
		kl_daemon_argv_add(&a, "--path");
		kl_daemon_argv_add(&a, j->paths[i]);
	}
	for (int i = 0; i < KL_KEEP_N; i++) {
		if (!j->keep[i])
			continue;
		snprintf(num[i], sizeof(num[i]), "%u", (unsigned)j->keep[i]);
		kl_daemon_argv_add(&a, opt[i]);
		kl_daemon_argv_add(&a, num[i]);
		any = true;
	}
	if (!any)
		return 0;
	return kl_daemon_spawn(a.v, -1, null_fd < 0 ? log_fd : null_fd, log_fd, j->name);
}

int kl_daemon_run_job(const struct kl_daemon_opts *o, const struct kl_daemon_conf *c,
		      const struct kl_daemon_job *j, struct kl_daemon_run *ret)
{
	const struct kl_daemon_repo *rp = kl_daemon_conf_repo(c, j->repository);
	_cleanup_close_ int log_fd = kl_daemon_open_log(o->state_dir, "jobs", j->name, "log");
	struct kl_daemon_run prev;
	char host[256] = "";
	int64_t t0 = kl_time_mono_ns();
	int st = 0;

	kl_daemon_state_read(o->state_dir, j->name, &prev);
	memset(ret, 0, sizeof(*ret));
	ret->start = kl_time_now_ns() / KL_NSEC_PER_SEC;
	ret->last_success = prev.last_success;
	ret->snapshot_time = prev.snapshot_time;
	if (log_fd < 0)
		return log_fd;
	kl_daemon_job_host(j, host);
	if (j->before) {
		st = hook(j->before, log_fd, j->name);
		if (st != 0)
			snprintf(ret->error, sizeof(ret->error), "the before hook exited with %d",
				 st);
	}
	if (st == 0) {
		st = backup(o, rp, j, host, log_fd, ret);
		if (st == 0) {
			st = forget(o, rp, j, host, log_fd);
			if (st != 0)
				snprintf(ret->error, sizeof(ret->error),
					 "keel forget exited with %d", st);
		} else {
			char line[200] = "";

			kl_daemon_last_line(log_fd, line, sizeof(line));
			snprintf(ret->error, sizeof(ret->error), "keel %s exited with %d: %s",
				 kind_cmd[j->kind], st, line);
		}
	}
	/* the after hook runs whatever happened: it resumes what the before hook stopped */
	if (j->after) {
		int a = hook(j->after, log_fd, j->name);

		if (a != 0 && !ret->error[0])
			snprintf(ret->error, sizeof(ret->error), "the after hook exited with %d",
				 a);
	}
	ret->end = kl_time_now_ns() / KL_NSEC_PER_SEC;
	ret->duration = (double)(kl_time_mono_ns() - t0) / (double)KL_NSEC_PER_SEC;
	ret->success = !ret->error[0];
	if (ret->success)
		ret->last_success = ret->end;
	return kl_daemon_state_write(o->state_dir, j->name, ret);
}

int64_t kl_daemon_job_offset(const struct kl_daemon_job *j)
{
	char host[256];
	uint64_t h = 14695981039346656037ull; /* FNV-1a: stable across runs and builds */

	if (j->jitter <= 1)
		return 0;
	kl_daemon_job_host(j, host);
	for (const char *p = host; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ull;
	h = (h ^ '/') * 1099511628211ull;
	for (const char *p = j->name; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ull;
	return (int64_t)(h % (uint64_t)j->jitter);
}

int64_t kl_daemon_job_next(const struct kl_daemon_job *j, int64_t last_start, int64_t now)
{
	int64_t off = kl_daemon_job_offset(j), next;

	if (j->schedule.every)
		return last_start ? kl_schedule_next(&j->schedule, last_start) : now + off;
	/* the slot after the last run's slot (its start less the offset), or after now's */
	next = kl_schedule_next(&j->schedule, (last_start ? last_start : now) - off);
	return next < 0 ? -1 : next + off;
}

int kl_daemon_prune_repo(const struct kl_daemon_opts *o, const struct kl_daemon_repo *rp,
			 struct kl_daemon_run *ret)
{
	_cleanup_close_ int log_fd = kl_daemon_open_log(o->state_dir, "prune", rp->name, "log");
	struct kl_daemon_argv a = {0};
	struct kl_daemon_run prev;
	int64_t t0 = kl_time_mono_ns();
	int st;

	kl_daemon_prune_state_read(o->state_dir, rp->name, &prev);
	memset(ret, 0, sizeof(*ret));
	ret->start = kl_time_now_ns() / KL_NSEC_PER_SEC;
	ret->last_success = prev.last_success;
	if (log_fd < 0)
		return log_fd;
	kl_daemon_argv_repo(&a, o, rp, "prune", NULL);
	st = kl_daemon_spawn(a.v, -1, log_fd, log_fd, rp->name);
	if (st != 0) {
		char line[200] = "";

		kl_daemon_last_line(log_fd, line, sizeof(line));
		snprintf(ret->error, sizeof(ret->error), "keel prune exited with %d: %s", st, line);
	}
	ret->end = kl_time_now_ns() / KL_NSEC_PER_SEC;
	ret->duration = (double)(kl_time_mono_ns() - t0) / (double)KL_NSEC_PER_SEC;
	ret->success = !ret->error[0];
	if (ret->success)
		ret->last_success = ret->end;
	return kl_daemon_prune_state_write(o->state_dir, rp->name, ret);
}
