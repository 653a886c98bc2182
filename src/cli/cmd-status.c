#include <jansson.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli.h"
#include "cmd-status.h"
#include "keel/daemon.h"
#include "keel/db.h"
#include "keel/mirror.h"

static const char usage[] =
	"usage: keel status [--config FILE] [--state-dir DIR] [--json]\n"
	"\n"
	"For each job of the daemon's configuration: its last run and result, its\n"
	"RPO (the age of the newest verified snapshot of the job's host and paths\n"
	"in its repository: whole per the index, or restored by a drill; of a db\n"
	"job: of its database's newest verified restorable moment; of a mirror\n"
	"job: of the copy's, from its lag) against its rpo-target, its\n"
	"RTO (the time of its last successful restore drill, recorded in the\n"
	"repository; '~': an estimate from a drill-sample) against the drill's\n"
	"rto-target, and its next run.\n"
	"\n"
	"Options:\n"
	"      --config FILE      the configuration (default /etc/keel/keel.conf)\n"
	"      --state-dir DIR    where runs are recorded (default /var/lib/keel)\n"
	"      --json             one JSON object on stdout\n"
	"\n"
	"Exit status 5 means a job missed its rpo-target (or has no snapshot) or\n"
	"its rto-target (no successful drill, the last drill failed, or it took\n"
	"longer).\n";

enum { OPT_CONFIG = 1, OPT_STATE_DIR };

struct job_status {
	struct kl_daemon_run last;
	bool have_snapshot;
	int64_t newest_ns; /* the newest snapshot's time */
	double rpo;	   /* seconds */
	int64_t next;	   /* Unix seconds, -1: never */
	bool missed;
	int error; /* reading the repository failed: RPO unknown */
	/* drills: the newest record in the repository, the newest successful one */
	const struct kl_daemon_drill *dr;
	struct kl_daemon_run drill; /* the state directory's last drill */
	bool have_rec, have_ok;
	struct kl_daemon_drill_record rec, ok;
	int64_t rec_ns, ok_ns;
	bool rto_missed;
	uint64_t repo_bytes; /* the sizes of the repository's pack files */
	bool have_size;
	/* the snapshots successful drills restored (the records kept), hex */
	char drilled[16][65];
	size_t n_drilled;
	/* the newest verified restore point: the RPO counts from it */
	struct kl_status_verified ver;
};

static int add_size(const char *name, uint64_t size, void *userdata)
{
	(void)name;
	*(uint64_t *)userdata += size;
	return 0;
}

/* A drill record of the job among the snapshots (docs/DAEMON.md, "Drills"). */
static void drill_record(const struct kl_daemon_job *j, const struct kl_snapshot *s,
			 struct job_status *st)
{
	struct kl_daemon_drill_record rec;

	if (kl_daemon_drill_record_parse(s->tags, s->n_tags, &rec) <= 0 || strcmp(rec.job, j->name))
		return;
	if (!st->have_rec || s->time_ns > st->rec_ns) {
		st->rec = rec;
		st->rec_ns = s->time_ns;
		st->have_rec = true;
	}
	if (rec.ok && st->n_drilled < KL_ARRAY_SIZE(st->drilled))
		memcpy(st->drilled[st->n_drilled++], rec.snapshot, sizeof(rec.snapshot));
	if (rec.ok && (!st->have_ok || s->time_ns > st->ok_ns)) {
		st->ok = rec;
		st->ok_ns = s->time_ns;
		st->have_ok = true;
	}
}

static void newer(struct job_status *st, int64_t t)
{
	if (t && (!st->have_snapshot || t > st->newest_ns))
		st->newest_ns = t;
	st->have_snapshot |= t != 0;
}

/* Adds a restore point to *v (grown as needed). */
static int point(struct kl_status_point **v, size_t *n, const struct kl_snapshot_ref *ref,
		 int64_t t)
{
	struct kl_status_point *w = kl_realloc(*v, (*n + 1) * sizeof(**v));

	if (!w)
		return -ENOMEM;
	*v = w;
	w[(*n)++] = (struct kl_status_point){.ref = ref, .time_ns = t};
	return 0;
}

/*
 * A db job's newest restorable moment: the end of its newest log record
 * (keel db stream) or base backup, as keel db list reports it; the RPO
 * counts from the newest whole one (cmd-status-verify.c).
 */
static int db_newest(struct kl_cli *cli, const char *state_dir, const struct kl_daemon_job *j,
		     struct job_status *st)
{
	struct kl_db_list dl = {0};
	const struct kl_db_info *info;
	struct kl_status_point *v = NULL;
	size_t n = 0;
	int rc = 0;

	if (kl_db_list(cli->repo, &dl) < 0)
		return 0;
	info = kl_db_find(&dl, j->db_name);
	for (size_t i = 0; rc >= 0 && info && i < info->n_bases; i++) {
		const struct kl_snapshot *s = &info->bases[i].s;

		newer(st, s->time_end_ns ? s->time_end_ns : s->time_ns);
		rc = point(&v, &n, &info->bases[i], s->time_end_ns ? s->time_end_ns : s->time_ns);
	}
	for (size_t i = 0; rc >= 0 && info && i < info->n_logs; i++) {
		newer(st, info->logs[i].s.time_end_ns);
		rc = point(&v, &n, &info->logs[i], info->logs[i].s.time_end_ns);
	}
	if (rc >= 0)
		rc = kl_cli_status_verified(cli, state_dir, j->name, v, n,
					    (const char(*)[65])st->drilled, st->n_drilled,
					    &st->ver);
	kl_free(v);
	kl_db_list_release(&dl);
	return rc;
}

/*
 * A mirror job's copy: its restore points are the repository's as of the
 * copy's lag (keel mirror --status): none before a complete run; the
 * repository's newest snapshot when the copy lacks nothing; else now less
 * the lag (the oldest snapshot the copy lacks, or a bound: the start of
 * the last complete run).
 */
static int mirror_newest(struct kl_cli *cli, const struct kl_daemon_job *j,
			 const struct kl_snapshot_list *l, int64_t now_ns, struct job_status *st)
{
	_cleanup_(kl_repo_freep) struct kl_repo *dst = NULL;
	struct kl_mirror_status ms;
	int rc = kl_repo_open_err(j->destination, &cli->detail, &dst);

	if (rc >= 0)
		rc = kl_mirror_status(cli->repo, dst, &ms);
	if (rc < 0) {
		if (dst)
			kl_repo_take_err(dst, &cli->err, &cli->detail);
		kl_cli_error(cli, rc, "job '%s': cannot read the copy '%s'", j->name,
			     j->destination);
		return rc;
	}
	st->have_snapshot = false;
	if (!ms.last_complete_ns)
		return 0;
	if (ms.lag_ns > 0) {
		newer(st, now_ns - ms.lag_ns);
	} else if (ms.lag_ns == 0) {
		for (size_t i = 0; i < l->n; i++)
			newer(st, l->v[i].s.time_ns);
		newer(st, st->have_snapshot ? 0 : ms.last_complete_ns);
	} else {
		newer(st, ms.last_complete_ns);
	}
	return 0;
}

/*
 * The newest snapshot of the job's host and paths (of a db job: its
 * database's newest restorable moment; of a mirror: the copy's), and the
 * newest verified one, which the RPO counts from.
 */
static int newest_snapshot(struct kl_cli *cli, const struct kl_daemon_conf *conf,
			   const char *state_dir, const struct kl_daemon_job *j,
			   struct job_status *st)
{
	const struct kl_daemon_repo *rp = kl_daemon_conf_repo(conf, j->repository);
	struct kl_snapshot_list l = {0};
	char host[256] = "", *hosts[1] = {host};
	struct kl_snap_filter f = {
		.hosts = hosts, .n_hosts = 1, .paths = j->paths, .n_paths = j->n_paths};
	struct kl_snap_filter fh = {.hosts = hosts, .n_hosts = 1};
	struct kl_status_point *v = NULL;
	size_t n = 0;
	int rc;

	kl_daemon_job_host(j, host);
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
		if (st->dr && kl_snap_filter_match(&fh, &l.v[i].s))
			drill_record(j, &l.v[i].s, st);
		if (!kl_snap_filter_match(&f, &l.v[i].s) || j->kind == KL_JOB_MIRROR)
			continue;
		if (!st->have_snapshot || l.v[i].s.time_ns > st->newest_ns)
			st->newest_ns = l.v[i].s.time_ns;
		st->have_snapshot = true;
		if (j->kind != KL_JOB_DB)
			rc = point(&v, &n, &l.v[i], l.v[i].s.time_ns);
	}
	if (rc >= 0 && j->kind == KL_JOB_DB)
		rc = db_newest(cli, state_dir, j, st);
	else if (rc >= 0 && j->kind == KL_JOB_MIRROR)
		rc = mirror_newest(cli, j, &l, kl_time_now_ns(), st);
	else if (rc >= 0)
		rc = kl_cli_status_verified(cli, state_dir, j->name, v, n,
					    (const char(*)[65])st->drilled, st->n_drilled,
					    &st->ver);
	/* the copy's snapshots are verified in it (keel mirror --status) */
	if (rc >= 0 && j->kind == KL_JOB_MIRROR && st->have_snapshot)
		st->ver = (struct kl_status_verified){
			.have = true, .time_ns = st->newest_ns, .by = "copy"};
	kl_free(v);
	kl_snapshot_list_release(&l);
	/* a listing, no pack is read: cheap enough for every status */
	if (rc >= 0 && kl_repo_list(cli->repo, KL_OBJ_DATA, add_size, &st->repo_bytes) >= 0)
		st->have_size = true;
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
	for (size_t i = 0; i < conf->n_drills; i++)
		if (!strcmp(conf->drills[i].job, j->name))
			st->dr = &conf->drills[i];
	if (st->dr && kl_daemon_drill_state_read(state_dir, j->name, &st->drill) < 0)
		memset(&st->drill, 0, sizeof(st->drill));
	st->error = newest_snapshot(cli, conf, state_dir, j, st);
	/*
	 * Missed: no successful drill, the newest drill (in the repository, or
	 * here when it could not be recorded) failed, or it took too long.
	 */
	st->rto_missed = st->dr && st->dr->rto_target &&
			 (!st->have_ok || (st->have_rec && !st->rec.ok) ||
			  (st->drill.start && !st->drill.success &&
			   st->drill.start * KL_NSEC_PER_SEC >= st->rec_ns) ||
			  st->ok.seconds > (double)st->dr->rto_target);
	if (st->ver.have)
		st->rpo = (double)(now_ns - st->ver.time_ns) / (double)KL_NSEC_PER_SEC;
	st->missed = j->rpo_target && (!st->ver.have || st->rpo > (double)j->rpo_target);
	st->next = kl_daemon_job_next(j, st->last.start, now);
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

static json_t *drill_json(const struct job_status *st)
{
	if (!st->have_rec && !st->drill.start)
		return json_null();
	/* the newest of the repository's record and the state directory's (unrecorded) drill */
	if (st->drill.start && (!st->have_rec || st->drill.start * KL_NSEC_PER_SEC > st->rec_ns))
		return json_pack("{s:o,s:b,s:s?,s:f,s:i,s:s?,s:b}", "time",
				 json_time(st->drill.start), "success", st->drill.success,
				 "snapshot_id", st->drill.snapshot[0] ? st->drill.snapshot : NULL,
				 "seconds", st->drill.success ? st->drill.rto : 0.0,
				 "sample_percent", (int)(st->drill.sample ? st->drill.sample : 100),
				 "error", st->drill.error[0] ? st->drill.error : NULL, "recorded",
				 st->drill.recorded);
	return json_pack("{s:o,s:b,s:s,s:f,s:i,s:n,s:b}", "time",
			 json_time(kl_time_floor_sec(st->rec_ns)), "success", st->rec.ok,
			 "snapshot_id", st->rec.snapshot, "seconds", st->rec.seconds,
			 "sample_percent", (int)st->rec.sample, "error", "recorded", 1);
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
	json_object_set_new(o, "kind", json_string(kl_daemon_job_kind_name(j->kind)));
	json_object_set_new(o, "repository", json_string(j->repository));
	json_object_set_new(o, "last_run", last ? last : json_null());
	json_object_set_new(o, "last_success", json_time(st->last.last_success));
	json_object_set_new(o, "newest_snapshot",
			    st->have_snapshot ? json_time(kl_time_floor_sec(st->newest_ns))
					      : json_null());
	json_object_set_new(o, "newest_verified",
			    st->ver.have ? json_time(kl_time_floor_sec(st->ver.time_ns))
					 : json_null());
	json_object_set_new(o, "verified_by", st->ver.by ? json_string(st->ver.by) : json_null());
	json_object_set_new(o, "unverified_restore_points",
			    json_integer((json_int_t)st->ver.unverified));
	json_object_set_new(o, "incomplete_restore_points",
			    json_integer((json_int_t)st->ver.incomplete));
	json_object_set_new(o, "rpo_seconds", st->ver.have ? json_real(st->rpo) : json_null());
	json_object_set_new(o, "rpo_target_seconds",
			    j->rpo_target ? json_integer(j->rpo_target) : json_null());
	json_object_set_new(o, "rpo_ok", json_boolean(!st->missed && !st->error));
	json_object_set_new(o, "next_run", json_time(st->next));
	json_object_set_new(o, "rto_seconds",
			    st->have_ok ? json_real(st->ok.seconds) : json_null());
	json_object_set_new(o, "rto_estimate", json_boolean(st->have_ok && st->ok.sample < 100));
	json_object_set_new(o, "rto_target_seconds",
			    st->dr && st->dr->rto_target ? json_integer(st->dr->rto_target)
							 : json_null());
	json_object_set_new(o, "rto_ok", json_boolean(!st->rto_missed && !st->error));
	json_object_set_new(o, "last_drill", drill_json(st));
	json_object_set_new(o, "repository_size_bytes",
			    st->have_size ? json_integer((json_int_t)st->repo_bytes) : json_null());
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
	char rto[32] = "-", rto_target[32] = "-";

	if (st->last.start)
		kl_time_format_local(st->last.start * KL_NSEC_PER_SEC, last);
	if (st->next >= 0)
		kl_time_format_local(st->next * KL_NSEC_PER_SEC, next);
	if (st->ver.have)
		print_duration(rpo, sizeof(rpo), st->rpo);
	if (j->rpo_target)
		print_duration(target, sizeof(target), (double)j->rpo_target);
	if (st->have_ok)
		print_duration(rto, sizeof(rto), st->ok.seconds);
	if (st->have_ok && st->ok.sample < 100) {
		size_t n = strlen(rto); /* '~': an estimate from a drill-sample */

		snprintf(rto + n, sizeof(rto) - n, "~");
	}
	if (st->dr && st->dr->rto_target)
		print_duration(rto_target, sizeof(rto_target), (double)st->dr->rto_target);
	printf("%-16s %-20.19s %-7s %7s %7s  %-4s %7s %7s  %-4s %.19s\n", j->name, last,
	       !st->last.start	  ? "-"
	       : st->last.success ? "ok"
				  : "failed",
	       rpo, target,
	       st->error    ? "?"
	       : st->missed ? "MISS"
			    : "ok",
	       rto, rto_target,
	       st->error	? "?"
	       : st->rto_missed ? "MISS"
	       : st->dr		? "ok"
				: "-",
	       next);
	if (st->last.start && !st->last.success)
		printf("    %s\n", st->last.error);
	if (st->drill.start && !st->drill.success)
		printf("    drill: %s\n", st->drill.error);
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
		printf("%-16s %-20s %-7s %7s %7s  %-4s %7s %7s  %-4s %s\n", "JOB", "LAST RUN",
		       "RESULT", "RPO", "TARGET", "", "RTO", "TARGET", "", "NEXT RUN");
	now_ns = kl_time_now_ns();
	for (size_t i = 0; i < conf.n_jobs; i++) {
		struct job_status st;

		job_status(cli, &conf, state_dir, &conf.jobs[i], now_ns, &st);
		missed += st.missed + st.rto_missed;
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
