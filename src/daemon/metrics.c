/*
 * GET /metrics: Prometheus text format, one sample per job and metric
 * that has a value, from the run and drill records of the state
 * directory (the daemon holds no keys and opens no repository).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "internal.h"

struct metric {
	const char *name, *help;
};

enum {
	M_RPO,
	M_RPO_TARGET,
	M_RTO,
	M_RTO_TARGET,
	M_LAST_SUCCESS,
	M_LAST_DURATION,
	M_LAST_SUCCESS_FLAG,
	M_DRILL_SUCCESS,
	M_VERIFIED,
	M_UNVERIFIED,
	M_N
};

static const struct metric metrics[M_N] = {
	[M_RPO] = {"keel_rpo_seconds",
		   "Age of the job's newest verified restore point (at the last status, "
		   "aged since; before the first status: of the newest snapshot a run saved)."},
	[M_RPO_TARGET] = {"keel_rpo_target_seconds", "The job's rpo-target."},
	[M_RTO] = {"keel_rto_seconds", "Time of the job's last successful restore drill "
				       "(scaled to the whole from a drill-sample)."},
	[M_RTO_TARGET] = {"keel_rto_target_seconds", "The drill's rto-target."},
	[M_LAST_SUCCESS] = {"keel_last_success_timestamp_seconds",
			    "When the last successful run ended."},
	[M_LAST_DURATION] = {"keel_last_run_duration_seconds", "How long the last run took."},
	[M_LAST_SUCCESS_FLAG] = {"keel_last_run_success", "1 if the last run succeeded, else 0."},
	[M_DRILL_SUCCESS] = {"keel_last_drill_success", "1 if the last drill succeeded, else 0."},
	[M_VERIFIED] = {"keel_newest_verified_timestamp_seconds",
			"The moment of the job's newest verified restore point (whole, or "
			"restored by a drill)."},
	[M_UNVERIFIED] = {"keel_unverified_restore_points",
			  "Restore points newer than the newest verified one (not yet checked, "
			  "or lacking data)."},
};

struct job_values {
	struct kl_daemon_run run, drill;
	const struct kl_daemon_drill *dr;
	/* db and mirror jobs: the last status's RPO (their runs are not their newest restore
	 * points: a stream's record or the copy's lag is), as of now */
	double status_rpo;
	bool have_status_rpo;
	double verified, unverified; /* newest_verified (Unix seconds), unverified_restore_points */
	bool have_verified, have_unverified;
};

static void status_rpo(const struct daemon *d, const char *name, double now, struct job_values *v)
{
	json_t *jobs = json_object_get(d->status, "jobs");

	for (size_t i = 0; i < json_array_size(jobs); i++) {
		json_t *j = json_array_get(jobs, i), *rpo = json_object_get(j, "rpo_seconds");

		if (!json_is_number(rpo) ||
		    strcmp(json_string_value(json_object_get(j, "job")) ?: "", name))
			continue;
		v->status_rpo = json_number_value(rpo) + (now - (double)d->status_time);
		v->have_status_rpo = true;
	}
	for (size_t i = 0; i < json_array_size(jobs); i++) {
		json_t *j = json_array_get(jobs, i), *u;
		const char *t = json_string_value(json_object_get(j, "newest_verified"));
		struct tm tm = {0};

		if (strcmp(json_string_value(json_object_get(j, "job")) ?: "", name))
			continue;
		u = json_object_get(j, "unverified_restore_points");
		v->have_unverified = json_is_integer(u);
		v->unverified = (double)json_integer_value(u);
		/* status writes UTC times as YYYY-MM-DDTHH:MM:SSZ */
		v->have_verified =
			t && sscanf(t, "%d-%d-%dT%d:%d:%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
				    &tm.tm_hour, &tm.tm_min, &tm.tm_sec) == 6;
		tm.tm_year -= 1900;
		tm.tm_mon -= 1;
		v->verified = v->have_verified ? (double)timegm(&tm) : 0;
	}
}

/* The value of metric m for a job; false: it has none. */
static bool value(int m, const struct kl_daemon_job *j, const struct job_values *v, double now,
		  double *ret)
{
	switch (m) {
	case M_RPO:
		if (v->have_status_rpo || j->kind == KL_JOB_DB || j->kind == KL_JOB_MIRROR) {
			*ret = v->status_rpo;
			return v->have_status_rpo;
		}
		*ret = now - v->run.snapshot_time;
		return v->run.snapshot_time != 0;
	case M_RPO_TARGET:
		*ret = (double)j->rpo_target;
		return j->rpo_target != 0;
	case M_RTO:
		*ret = v->drill.rto;
		return v->drill.last_success != 0;
	case M_RTO_TARGET:
		*ret = v->dr ? (double)v->dr->rto_target : 0;
		return v->dr && v->dr->rto_target;
	case M_LAST_SUCCESS:
		*ret = (double)v->run.last_success;
		return v->run.last_success != 0;
	case M_LAST_DURATION:
		*ret = v->run.duration;
		return v->run.start != 0;
	case M_LAST_SUCCESS_FLAG:
		*ret = v->run.success;
		return v->run.start != 0;
	case M_VERIFIED:
		*ret = v->verified;
		return v->have_verified;
	case M_UNVERIFIED:
		*ret = v->unverified;
		return v->have_unverified;
	default:
		*ret = v->drill.success;
		return v->drill.start != 0;
	}
}

/* keel_repository_size_bytes: from the last status, one per repository */
static int repo_sizes(const struct daemon *d, struct kl_buf *out)
{
	json_t *jobs = json_object_get(d->status, "jobs");
	int r;

	r = kl_buf_addf(out, "# HELP keel_repository_size_bytes The size of the repository's "
			     "pack files.\n# TYPE keel_repository_size_bytes gauge\n");
	for (size_t i = 0; r >= 0 && i < json_array_size(jobs); i++) {
		json_t *j = json_array_get(jobs, i),
		       *size = json_object_get(j, "repository_size_bytes");
		const char *repo = json_string_value(json_object_get(j, "repository"));
		bool seen = false;

		/* one sample per repository: the first job that names it */
		for (size_t k = 0; k < i && !seen; k++)
			seen = json_equal(json_object_get(json_array_get(jobs, k), "repository"),
					  json_object_get(j, "repository"));
		if (seen || !repo || !json_is_integer(size) || !kl_daemon_conf_repo(&d->conf, repo))
			continue;
		r = kl_buf_addf(out, "keel_repository_size_bytes{repository=\"%s\"} %lld\n", repo,
				(long long)json_integer_value(size));
	}
	return r;
}

int kl_daemon_render_metrics(const struct daemon *d, struct kl_buf *out)
{
	double now = (double)kl_time_now_ns() / (double)KL_NSEC_PER_SEC;
	struct job_values *vals;
	int r = 0;

	vals = kl_calloc(d->conf.n_jobs + 1, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	for (size_t i = 0; i < d->conf.n_jobs; i++) {
		const char *name = d->conf.jobs[i].name;

		if (kl_daemon_state_read(d->o->state_dir, name, &vals[i].run) < 0)
			memset(&vals[i].run, 0, sizeof(vals[i].run));
		if (kl_daemon_drill_state_read(d->o->state_dir, name, &vals[i].drill) < 0)
			memset(&vals[i].drill, 0, sizeof(vals[i].drill));
		for (size_t k = 0; k < d->conf.n_drills; k++)
			if (!strcmp(d->conf.drills[k].job, name))
				vals[i].dr = &d->conf.drills[k];
		status_rpo(d, name, now, &vals[i]);
	}
	for (int m = 0; m < M_N && r >= 0; m++) {
		r = kl_buf_addf(out, "# HELP %s %s\n# TYPE %s gauge\n", metrics[m].name,
				metrics[m].help, metrics[m].name);
		for (size_t i = 0; i < d->conf.n_jobs && r >= 0; i++) {
			const struct kl_daemon_job *j = &d->conf.jobs[i];
			double v;

			if (!value(m, j, &vals[i], now, &v))
				continue;
			/* job and repository names are [A-Za-z0-9._-]: nothing to escape */
			r = kl_buf_addf(out, "%s{job=\"%s\",repository=\"%s\"} %.3f\n",
					metrics[m].name, j->name, j->repository, v);
		}
	}
	kl_free(vals);
	if (r >= 0)
		r = repo_sizes(d, out);
	return r;
}
