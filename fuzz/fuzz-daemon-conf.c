/*
 * Fuzzes kl_daemon_conf_parse, the daemon's configuration file
 * (docs/DAEMON.md), and with it the INI lexer (keel/ini.h) and the
 * schedule parser. Oracles: a failure is -KL_EUSAGE with a
 * "FILE: line N: " message or -ENOMEM; parsing is deterministic; what is
 * accepted keeps the invariants the daemon relies on (every job names a
 * defined repository and has absolute paths and a schedule; names are
 * safe file names; every drill names a job; a schedule's next time is
 * later than the time it is asked after).
 */
#include <stdio.h>
#include <stdlib.h>

#include "keel/daemon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool safe_name(const char *s)
{
	if (!*s || *s == '.' || *s == '-' || strlen(s) > 64)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' || *s == '.'))
			return false;
	return true;
}

static bool clean(const char *s)
{
	if (!s)
		return true;
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 && *s != '\t')
			return false;
	return true;
}

static void check_accepted(const struct kl_daemon_conf *c)
{
	for (size_t i = 0; i < c->n_repos; i++)
		if (!safe_name(c->repos[i].name) || !c->repos[i].location ||
		    !c->repos[i].password_file || !clean(c->repos[i].location))
			abort();
	for (size_t i = 0; i < c->n_jobs; i++) {
		const struct kl_daemon_job *j = &c->jobs[i];

		/* files jobs name absolute paths; the other kinds one path of their own, or none */
		bool files = j->kind == KL_JOB_FILES;

		if (!safe_name(j->name) || !j->repository ||
		    !kl_daemon_conf_repo(c, j->repository) || (files && !j->n_paths) ||
		    !j->schedule_text)
			abort();
		for (size_t k = 0; k < j->n_paths; k++)
			if ((files && j->paths[k][0] != '/') || !clean(j->paths[k]))
				abort();
		for (size_t k = 0; k < j->n_excludes; k++)
			if (!clean(j->excludes[k]))
				abort();
		{
			int64_t t = 1796531768, n = kl_schedule_next(&j->schedule, t);

			if (n != -1 && n <= t)
				abort();
		}
	}
	for (size_t i = 0; i < c->n_drills; i++)
		if (!safe_name(c->drills[i].job))
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kl_daemon_conf a, b;
	struct kl_err ea = {0}, eb = {0};
	int ra, rb;

	ra = kl_daemon_conf_parse((const char *)data, size, "f", &a, &ea);
	rb = kl_daemon_conf_parse((const char *)data, size, "f", &b, &eb);
	if (ra == -ENOMEM || rb == -ENOMEM)
		goto out;
	if (ra != rb)
		abort();
	if (ra == 0) {
		check_accepted(&a);
		if (a.n_jobs != b.n_jobs || a.n_repos != b.n_repos || a.n_drills != b.n_drills)
			abort();
	} else if (ra != -KL_EUSAGE || strncmp(ea.msg, "f: line ", 8) || strcmp(ea.msg, eb.msg)) {
		abort();
	}
out:
	kl_daemon_conf_release(&a);
	kl_daemon_conf_release(&b);
	return 0;
}
