#include <jansson.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli.h"
#include "keel/daemon.h"

static const char usage[] =
	"usage: keel status [--config FILE] [--state-dir DIR] [--json]\n"
	"\n"
	"For each job of the daemon's configuration: its last run and result,\n"
	"its RPO (the age of the newest snapshot of the job's host and paths in\n"
	"its repository) against its rpo-target, and its next run.\n"
	"\n"
	"Options:\n"
	"      --config FILE      the configuration (default /etc/keel/keel.conf)\n"
	"      --state-dir DIR    where runs are recorded (default /var/lib/keel)\n"
	"      --json             one JSON object on stdout\n"
	"\n"
	"Exit status 5 means a job missed its rpo-target (or has no snapshot).\n";

enum { OPT_CONFIG = 1, OPT_STATE_DIR };

struct job_status {
	struct kl_daemon_run last;
	bool have_snapshot;
	int64_t newest_ns; /* the newest snapshot's time */
	double rpo;	   /* seconds */
	int64_t next;	   /* Unix seconds, -1: never */
	bool missed;
	int error; /* reading the repository failed: RPO unknown */
};

/* The newest snapshot of the job's host and paths. */
static int newest_snapshot(struct kl_cli *cli, const struct kl_daemon_conf *conf,
			   const struct kl_daemon_job *j, struct job_status *st)
{
	const struct kl_daemon_repo *rp = kl_daemon_conf_repo(conf, j->repository);
	struct kl_snapshot_list l = {0};
	char host[256] = "", *hosts[1] = {host};
	struct kl_snap_filter f = {
		.hosts = hosts, .n_hosts = 1, .paths = j->paths, .n_paths = j->n_paths};
	int rc;

	if (j->host)
		snprintf(host, sizeof(host), "%s", j->host);
	else if (gethostname(host, sizeof(host) - 1) < 0)
		snprintf(host, sizeof(host), "localhost");
	cli->repo_location = rp->location;
	cli->password_file_opt = rp->password_file;
	cli->cmd_flags = KL_CMD_REPO | KL_CMD_KEY;
	rc = kl_cli_open(cli);
	if (rc < 0)
		return rc;
	rc = kl_repo_list_snapshots(cli->repo, &l);
	if (rc < 0) {
		kl_repo_take_err(cli->repo, &cli->err, &cli->detail);
		kl_cli_error(cli, rc, "job '%s': cannot list snapshots", j->name);
	}
	for (size_t i = 0; rc >= 0 && i < l.n; i++) {
		if (!kl_snap_filter_match(&f, &l.v[i].s))
			continue;
		if (!st->have_snapshot || l.v[i].s.time_ns > st->newest_ns)
			st->newest_ns = l.v[i].s.time_ns;
		st->have_snapshot = true;
	}
	kl_snapshot_list_release(&l);
	return kl_cli_close(cli, rc);
}

static void job_status(struct kl_cli *cli, const struct kl_daemon_conf *conf, const char *state_dir,
		       const struct kl_daemon_job *j, int64_t now_ns, struct job_status *st)
{
	int64_t now = now_ns / KL_NSEC_PER_SEC;
	int r;

	memset(st, 0, sizeof(*st));
	r = kl_daemon_state_read(state_dir, j->name, &st->last);
	if (r < 0)
		kl_cli_warn(cli, "job '%s': cannot read its record: %s", j->name, kl_strerror(r));
	st->error = newest_snapshot(cli, conf, j, st);
	if (st->have_snapshot)
		st->rpo = (double)(now_ns - st->newest_ns) / (double)KL_NSEC_PER_SEC;
	st->missed = j->rpo_target && (!st->have_snapshot || st->rpo > (double)j->rpo_target);
	if (st->last.start)
		st->next = kl_schedule_next(&j->schedule, st->last.start);
	else
		st->next = j->schedule.every ? now : kl_schedule_next(&j->schedule, now);
	if (st->next >= 0 && st->next < now)
		st->next = now; /* missed: runs as soon as the daemon can */
}

static json_t *json_time(int64_t sec)
{
	char buf[40];

	if (sec <= 0)
		return json_null();
	kl_time_format_utc(sec * KL_NSEC_PER_SEC, buf);
	return json_string(buf);
}

static json_t *job_json(const struct kl_daemon_job *j, const struct job_status *st)
{
	json_t *o = json_object(), *last = json_null();

	if (!o)
		return NULL;
	if (st->last.start) {
		last = json_pack("{s:o,s:o,s:f,s:b,s:s?,s:s?}", "start", json_time(st->last.start),
				 "end", json_time(st->last.end), "duration_seconds",
				 st->last.duration, "success", st->last.success, "snapshot_id",
				 st->last.snapshot[0] ? st->last.snapshot : NULL, "error",
				 st->last.error[0] ? st->last.error : NULL);
	}
	json_object_set_new(o, "job", json_string(j->name));
	json_object_set_new(o, "repository", json_string(j->repository));
	json_object_set_new(o, "last_run", last ? last : json_null());
	json_object_set_new(o, "last_success", json_time(st->last.last_success));
	json_object_set_new(o, "newest_snapshot",
			    st->have_snapshot ? json_time(kl_time_floor_sec(st->newest_ns))
					      : json_null());
	json_object_set_new(o, "rpo_seconds", st->have_snapshot ? json_real(st->rpo) : json_null());
	json_object_set_new(o, "rpo_target_seconds",
			    j->rpo_target ? json_integer(j->rpo_target) : json_null());
	json_object_set_new(o, "rpo_ok", json_boolean(!st->missed && !st->error));
	json_object_set_new(o, "next_run", json_time(st->next));
	return o;
}

static void print_duration(char *out, size_t n, double s)
{
	if (s < 120)
		snprintf(out, n, "%.0fs", s);
	else if (s < 7200)
		snprintf(out, n, "%.0fm", s / 60);
	else if (s < 2 * 86400)
		snprintf(out, n, "%.1fh", s / 3600);
	else
		snprintf(out, n, "%.1fd", s / 86400);
}

static void print_text(const struct kl_daemon_job *j, const struct job_status *st)
{
	char last[40] = "never", next[40] = "never", rpo[32] = "-", target[32] = "-";

	if (st->last.start)
		kl_time_format_local(st->last.start * KL_NSEC_PER_SEC, last);
	if (st->next >= 0)
		kl_time_format_local(st->next * KL_NSEC_PER_SEC, next);
	if (st->have_snapshot)
		print_duration(rpo, sizeof(rpo), st->rpo);
	if (j->rpo_target)
		print_duration(target, sizeof(target), (double)j->rpo_target);
	printf("%-16s %-20.19s %-7s %7s %7s  %-4s %.19s\n", j->name, last,
	       !st->last.start	  ? "-"
	       : st->last.success ? "ok"
				  : "failed",
	       rpo, target,
	       st->error    ? "?"
	       : st->missed ? "MISS"
			    : "ok",
	       next);
	if (st->last.start && !st->last.success)
		printf("    %s\n", st->last.error);
}

int cmd_status(int argc, char **argv, struct kl_cli *cli)
{
	static const struct option opts[] = {
		KL_GLOBAL_OPTS,
		{"config", required_argument, NULL, OPT_CONFIG},
		{"state-dir", required_argument, NULL, OPT_STATE_DIR},
		{NULL, 0, NULL, 0},
	};
	const char *config = KL_DAEMON_CONF_DEFAULT, *state_dir = KL_DAEMON_STATE_DEFAULT;
	struct kl_daemon_conf conf = {0};
	json_t *jobs = NULL;
	size_t missed = 0;
	int64_t now_ns;
	int c, rc;

	while ((c = getopt_long(argc, argv, ":" KL_GLOBAL_SHORT, opts, NULL)) != -1) {
		if (c == OPT_CONFIG) {
			config = optarg;
		} else if (c == OPT_STATE_DIR) {
			state_dir = optarg;
		} else {
			rc = kl_cli_default_opt(cli, c, usage, argv);
			if (rc)
				return rc;
		}
	}
	if (optind < argc)
		return kl_cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	rc = kl_daemon_conf_load(config, &conf, &cli->err);
	if (rc < 0) {
		fprintf(stderr, "keel: status: %s\n",
			cli->err.msg[0] ? cli->err.msg : kl_strerror(rc));
		kl_err_clear(&cli->err);
		goto out;
	}
	jobs = json_array();
	if (!jobs) {
		rc = -ENOMEM;
		goto out;
	}
	if (!cli->json)
		printf("%-16s %-20s %-7s %7s %7s  %-4s %s\n", "JOB", "LAST RUN", "RESULT", "RPO",
		       "TARGET", "", "NEXT RUN");
	now_ns = kl_time_now_ns();
	for (size_t i = 0; i < conf.n_jobs; i++) {
		struct job_status st;

		job_status(cli, &conf, state_dir, &conf.jobs[i], now_ns, &st);
		missed += st.missed;
		if (!rc && st.error < 0)
			rc = st.error;
		if (cli->json)
			json_array_append_new(jobs, job_json(&conf.jobs[i], &st));
		else
			print_text(&conf.jobs[i], &st);
	}
	if (cli->json) {
		json_t *root = json_pack("{s:O,s:i}", "jobs", jobs, "targets_missed", (int)missed);

		if (!root || json_dumpf(root, stdout, JSON_COMPACT) < 0)
			rc = -ENOMEM;
		putchar('\n');
		json_decref(root);
	}
	if (rc >= 0 && missed)
		rc = -KL_ETARGET;
out:
	json_decref(jobs);
	kl_daemon_conf_release(&conf);
	return rc;
}
