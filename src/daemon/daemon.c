/*
 * The daemon's loop: one process, one signalfd, no threads. Each run of a
 * job is a child process (run.c) in its own process group; the loop
 * starts runs when they are due, reaps them on SIGCHLD, reloads the
 * configuration on SIGHUP and stops on SIGTERM or SIGINT once the runs
 * under way have finished (a backup is never cut short: its snapshot is
 * saved or not started, and its lock removed).
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

#define LOG(fmt, ...) fprintf(stderr, "keel: daemon: " fmt "\n", ##__VA_ARGS__)

static int64_t now_sec(void)
{
	return kl_time_now_ns() / KL_NSEC_PER_SEC;
}

static const struct kl_daemon_job *find_job(const struct kl_daemon_conf *c, const char *name)
{
	for (size_t i = 0; i < c->n_jobs; i++)
		if (!strcmp(c->jobs[i].name, name))
			return &c->jobs[i];
	return NULL;
}

static const struct kl_daemon_drill *find_drill(const struct kl_daemon_conf *c, const char *name)
{
	for (size_t i = 0; i < c->n_drills; i++)
		if (!strcmp(c->drills[i].job, name))
			return &c->drills[i];
	return NULL;
}

/* The schedule of rt's job, drill or prune, NULL when it is gone from the configuration. */
static const struct kl_schedule *rt_schedule(const struct daemon *d, const struct job_rt *rt)
{
	const struct kl_daemon_job *j;
	const struct kl_daemon_drill *dr;
	const struct kl_daemon_repo *rp;

	switch (rt->kind) {
	case KL_RT_JOB:
		j = find_job(&d->conf, rt->name);
		return j ? &j->schedule : NULL;
	case KL_RT_DRILL:
		dr = find_drill(&d->conf, rt->name);
		return dr ? &dr->schedule : NULL;
	default:
		rp = kl_daemon_conf_repo(&d->conf, rt->name);
		return rp && rp->has_prune ? &rp->prune : NULL;
	}
}

static const char *rt_kind(const struct job_rt *rt)
{
	static const char *const kinds[] = {"job", "drill", "prune"};

	return kinds[rt->kind];
}

static int rt_record(const struct daemon *d, const struct job_rt *rt, struct kl_daemon_run *ret)
{
	switch (rt->kind) {
	case KL_RT_JOB:
		return kl_daemon_state_read(d->o->state_dir, rt->name, ret);
	case KL_RT_DRILL:
		return kl_daemon_drill_state_read(d->o->state_dir, rt->name, ret);
	default:
		return kl_daemon_prune_state_read(d->o->state_dir, rt->name, ret);
	}
}

/*
 * When rt is next due, after its last run's start (0: never ran): a run
 * missed while the daemon was down is due now (once); one that never ran
 * is due now when it runs "every" so often, else at its next calendar
 * time (a job's shifted by its jitter).
 */
static int64_t next_due(const struct daemon *d, const struct job_rt *rt, int64_t last_start)
{
	const struct kl_schedule *s = rt_schedule(d, rt);

	if (!s)
		return -1;
	if (rt->kind == KL_RT_JOB)
		return kl_daemon_job_next(find_job(&d->conf, rt->name), last_start, now_sec());
	if (!last_start)
		return s->every ? now_sec() : kl_schedule_next(s, now_sec());
	return kl_schedule_next(s, last_start);
}

/* The rt entry of kind and name, made when missing; NULL: out of memory. */
static struct job_rt *rt_get(struct daemon *d, enum kl_rt_kind kind, const char *name)
{
	struct job_rt *rt, *v;

	for (size_t k = 0; k < d->n_rt; k++)
		if (d->rt[k].kind == kind && !strcmp(d->rt[k].name, name))
			return &d->rt[k];
	v = kl_realloc(d->rt, (d->n_rt + 1) * sizeof(*v));
	if (!v)
		return NULL;
	d->rt = v;
	rt = &d->rt[d->n_rt];
	memset(rt, 0, sizeof(*rt));
	rt->kind = kind;
	rt->name = kl_strdup(name);
	if (!rt->name)
		return NULL;
	d->n_rt++;
	return rt;
}

/* Matches the run-time table to d->conf's jobs, drills and prunes, keeping runs under way. */
static int sync_jobs(struct daemon *d)
{
	size_t nj = d->conf.n_jobs, nd = d->conf.n_drills;

	for (size_t i = 0; i < d->n_rt; i++)
		d->rt[i].gone = !rt_schedule(d, &d->rt[i]);
	for (size_t i = 0; i < nj + nd + d->conf.n_repos; i++) {
		enum kl_rt_kind kind = i < nj ? KL_RT_JOB : i < nj + nd ? KL_RT_DRILL : KL_RT_PRUNE;
		const char *name = kind == KL_RT_JOB	 ? d->conf.jobs[i].name
				   : kind == KL_RT_DRILL ? d->conf.drills[i - nj].job
							 : d->conf.repos[i - nj - nd].name;
		struct kl_daemon_run last;
		struct job_rt *rt;

		if (kind == KL_RT_PRUNE && !d->conf.repos[i - nj - nd].has_prune)
			continue;
		rt = rt_get(d, kind, name);
		if (!rt)
			return -ENOMEM;
		if (!rt->pid)
			rt->due = next_due(d, rt, rt_record(d, rt, &last) < 0 ? 0 : last.start);
	}
	/* drop the idle jobs that are gone */
	for (size_t i = 0; i < d->n_rt;) {
		if (d->rt[i].gone && !d->rt[i].pid) {
			kl_free(d->rt[i].name);
			d->rt[i] = d->rt[--d->n_rt];
		} else {
			i++;
		}
	}
	return 0;
}

/* In the child: the run itself; its exit status */
static int child(struct daemon *d, const struct job_rt *rt)
{
	struct kl_daemon_run res = {0};
	int r;

	switch (rt->kind) {
	case KL_RT_JOB:
		r = kl_daemon_run_job(d->o, &d->conf, find_job(&d->conf, rt->name), &res);
		break;
	case KL_RT_DRILL:
		r = kl_daemon_drill_job(d->o, &d->conf, find_drill(&d->conf, rt->name), &res);
		break;
	default:
		r = kl_daemon_prune_repo(d->o, kl_daemon_conf_repo(&d->conf, rt->name), &res);
		break;
	}
	if (r < 0)
		LOG("%s '%s': cannot record the run: %s", rt_kind(rt), rt->name, kl_strerror(r));
	return r == 1 ? 0 : r < 0 || !res.success;
}

static void start_run(struct daemon *d, struct job_rt *rt)
{
	pid_t pid;

	if (!rt_schedule(d, rt))
		return;
	rt->start = now_sec();
	pid = fork();
	if (pid < 0) {
		LOG("%s '%s': cannot start a run: %s", rt_kind(rt), rt->name, strerror(errno));
		rt->due = rt->start + 10;
		return;
	}
	if (pid == 0) {
		setpgid(0, 0);
		_exit(child(d, rt));
	}
	rt->pid = pid;
	LOG("%s '%s': %s started", rt_kind(rt), rt->name,
	    rt->kind == KL_RT_DRILL ? "restore drill" : "run");
}

static void log_end(const struct daemon *d, const struct job_rt *rt, int st)
{
	struct kl_daemon_run res;
	int r = rt_record(d, rt, &res);

	if (rt->kind == KL_RT_DRILL && r >= 0 && res.start < rt->start && WIFEXITED(st) &&
	    !WEXITSTATUS(st))
		LOG("drill '%s': the job has no snapshot to drill yet", rt->name);
	else if (r < 0 || res.start < rt->start)
		LOG("%s '%s': the run ended without a record (status %d)", rt_kind(rt), rt->name,
		    st);
	else if (!res.success)
		LOG("%s '%s': the %s failed: %s", rt_kind(rt), rt->name,
		    rt->kind == KL_RT_DRILL ? "drill" : "run", res.error);
	else if (rt->kind == KL_RT_DRILL)
		LOG("drill '%s': snapshot %.8s restored and verified in %.1f s%s", rt->name,
		    res.snapshot, res.rto, res.sample < 100 ? " (an estimate from a sample)" : "");
	else if (rt->kind == KL_RT_PRUNE)
		LOG("prune '%s': done in %.1f s", rt->name, res.duration);
	else if (find_job(&d->conf, rt->name) &&
		 find_job(&d->conf, rt->name)->kind == KL_JOB_MIRROR)
		LOG("job '%s': copy made in %.1f s", rt->name, res.duration);
	else
		LOG("job '%s': snapshot %.8s saved in %.1f s", rt->name, res.snapshot,
		    res.duration);
}

static void reap(struct daemon *d)
{
	pid_t pid;
	int st;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		if (kl_daemon_status_reaped(d, pid, st) || kl_daemon_streams_reaped(d, pid, st))
			continue;
		for (size_t i = 0; i < d->n_rt; i++) {
			struct job_rt *rt = &d->rt[i];
			if (rt->pid != pid)
				continue;
			rt->pid = 0;
			log_end(d, rt, st);
			if (kl_daemon_status_wanted(d))
				kl_daemon_status_refresh(d);
			/* a run that took longer than the period runs again at once, not twice */
			rt->due = next_due(d, rt, rt->start);
			break;
		}
	}
	for (size_t i = 0; i < d->n_rt;) {
		if (d->rt[i].gone && !d->rt[i].pid) {
			kl_free(d->rt[i].name);
			d->rt[i] = d->rt[--d->n_rt];
		} else {
			i++;
		}
	}
}

static void reload(struct daemon *d)
{
	struct kl_daemon_conf c;
	struct kl_err err = {0};
	int r = kl_daemon_conf_load(d->o->config_path, &c, &err);

	if (r < 0) {
		LOG("keeping the old configuration: %s", err.msg[0] ? err.msg : kl_strerror(r));
		kl_daemon_conf_release(&c);
		return;
	}
	kl_daemon_conf_release(&d->conf);
	d->conf = c;
	r = sync_jobs(d);
	if (r >= 0)
		r = kl_daemon_streams_sync(d);
	if (r < 0)
		LOG("cannot apply the new configuration: %s", kl_strerror(r));
	else
		LOG("configuration reloaded: %zu jobs, %zu drills", d->conf.n_jobs,
		    d->conf.n_drills);
}

/* Milliseconds until the next idle job is due, -1: none. */
static int next_timeout(const struct daemon *d)
{
	int64_t now = now_sec(), best = -1;

	for (size_t i = 0; i < d->n_rt; i++) {
		const struct job_rt *rt = &d->rt[i];

		if (rt->pid || rt->gone || rt->due < 0)
			continue;
		if (best < 0 || rt->due < best)
			best = rt->due;
	}
	{
		int64_t s = kl_daemon_streams_due(d);

		if (s >= 0 && (best < 0 || s < best))
			best = s;
	}
	if (kl_daemon_status_wanted(d) && !d->status_pid &&
	    (best < 0 || d->status_time + KL_DAEMON_STATUS_EVERY < best))
		best = d->status_time + KL_DAEMON_STATUS_EVERY;
	if (best < 0)
		return -1;
	if (best <= now)
		return 0;
	/* wake at the second it is due (to the next whole second) */
	return (int)KL_MIN(best - now, 3600) * 1000 -
	       (int)((kl_time_now_ns() % KL_NSEC_PER_SEC) / KL_NSEC_PER_MSEC);
}

static int lock_state_dir(const char *state_dir, struct kl_err *err)
{
	_cleanup_close_ int dfd = -1;
	int fd;

	/* its parent must exist (systemd's StateDirectory= makes it) */
	if (mkdir(state_dir, 0755) < 0 && errno != EEXIST)
		return kl_fail(err, -errno, "cannot create the state directory '%s'", state_dir);
	dfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return kl_fail(err, -errno, "cannot open the state directory '%s'", state_dir);
	fd = openat(dfd, "daemon.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return kl_fail(err, -errno, "cannot open '%s/daemon.lock'", state_dir);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int r = -errno;

		close(fd);
		if (r == -EWOULDBLOCK)
			return kl_fail(err, -KL_ELOCKED,
				       "another keel daemon uses the state directory '%s'",
				       state_dir);
		return kl_fail(err, r, "cannot lock '%s/daemon.lock'", state_dir);
	}
	return fd;
}

static void stop(struct daemon *d)
{
	if (!d->stopping)
		LOG("stopping: waiting for the runs under way");
	d->stopping = true;
	kl_daemon_streams_stop(d);
}

static int loop(struct daemon *d, int sfd)
{

	for (;;) {
		struct pollfd pfd[3] = {
			{.fd = sfd, .events = POLLIN},
			{.fd = d->http ? kl_daemon_http_fd(d->http) : -1, .events = POLLIN},
			{.fd = d->o->stop_fd, .events = POLLIN}};
		bool running = false;
		int timeout;
		int64_t now = now_sec();
		int n;

		for (size_t i = 0; i < d->n_rt; i++) {
			struct job_rt *rt = &d->rt[i];

			if (!d->stopping && !rt->pid && !rt->gone && rt->due >= 0 && rt->due <= now)
				start_run(d, rt);
			running |= rt->pid != 0;
		}
		if (!d->stopping && kl_daemon_status_wanted(d) && !d->status_pid &&
		    d->status_time + KL_DAEMON_STATUS_EVERY <= now)
			kl_daemon_status_refresh(d);
		if (!d->stopping)
			kl_daemon_streams_start(d, now);
		running |= d->status_pid != 0 || kl_daemon_streams_running(d);
		if (d->stopping && !running)
			return 0;
		timeout = d->stopping ? -1 : next_timeout(d);
		if (d->http) {
			int t = kl_daemon_http_timeout_ms(d->http);

			if (t >= 0 && (timeout < 0 || t < timeout))
				timeout = t;
		}
		n = poll(pfd, 3, timeout);
		if (n < 0 && errno != EINTR)
			return -errno;
		if (d->http)
			kl_daemon_http_run(d->http);
		if (n > 0 && (pfd[2].revents & POLLIN)) {
			uint64_t count;

			if (read(d->o->stop_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
				return -errno;
			stop(d);
		}
		if (n <= 0 || !(pfd[0].revents & POLLIN))
			continue;
		{
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) != sizeof(si))
				continue;
			switch (si.ssi_signo) {
			case SIGTERM:
			case SIGINT:
				stop(d);
				break;
			case SIGHUP:
				reload(d);
				break;
			case SIGCHLD:
				reap(d);
				break;
			}
		}
	}
}

int kl_daemon_run(const struct kl_daemon_opts *o, struct kl_err *err)
{
	struct daemon d = {.o = o};
	_cleanup_close_ int lock_fd = -1, sfd = -1;
	sigset_t mask;
	int r;

	r = kl_daemon_conf_load(o->config_path, &d.conf, err);
	if (r < 0)
		goto out;
	lock_fd = lock_state_dir(o->state_dir, err);
	if (lock_fd < 0) {
		r = lock_fd;
		goto out;
	}
	sigemptyset(&mask);
	if (o->stop_fd < 0) {
		/* else the caller's signal thread takes them and makes stop_fd readable */
		sigaddset(&mask, SIGTERM);
		sigaddset(&mask, SIGINT);
	}
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0) {
		r = -errno;
		goto out;
	}
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0) {
		r = kl_fail(err, -errno, "cannot create a signalfd");
		goto out;
	}
	r = sync_jobs(&d);
	if (r >= 0)
		r = kl_daemon_streams_sync(&d);
	if (r < 0)
		goto out;
	if (d.conf.http_listen) {
		r = kl_daemon_http_start(d.conf.http_listen, d.conf.http_token_file,
					 kl_daemon_http_route, &d, &d.http, err);
		if (r < 0)
			goto out;
	}
	LOG("started: %zu jobs, %zu drills from %s%s%s", d.conf.n_jobs, d.conf.n_drills,
	    o->config_path, d.http ? ", status on http://" : "", d.http ? d.conf.http_listen : "");
	r = loop(&d, sfd);
	if (r >= 0)
		LOG("stopped");
out:
	kl_daemon_http_free(d.http);
	kl_daemon_status_release(&d);
	kl_daemon_streams_release(&d);
	for (size_t i = 0; i < d.n_rt; i++)
		kl_free(d.rt[i].name);
	kl_free(d.rt);
	kl_daemon_conf_release(&d.conf);
	return r;
}
