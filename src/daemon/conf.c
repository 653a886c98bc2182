/*
 * The daemon's configuration file (docs/DAEMON.md): repositories, jobs,
 * drills, notifications and the HTTP listener, in the INI-like syntax of
 * keel's other configuration file (the lines: keel/ini.h). Strict: an
 * unknown section or key, a bad value or a missing setting is an error
 * naming the file, the line and the key.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "keel/daemon.h"
#include "keel/fs.h"
#include "keel/ini.h"

enum section { S_NONE, S_REPO, S_JOB, S_DRILL, S_NOTIFY, S_HTTP };

struct parse {
	struct kl_daemon_conf *c;
	struct kl_err *err;
	enum section sect;
};

#define VALUE_MAX 4096

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		kl_free(v[i]);
	kl_free(v);
}

static void job_release(struct kl_daemon_job *j)
{
	kl_free(j->name);
	kl_free(j->repository);
	strv_free(j->paths, j->n_paths);
	strv_free(j->excludes, j->n_excludes);
	kl_free(j->host);
	kl_free(j->schedule_text);
	kl_free(j->before);
	kl_free(j->after);
}

void kl_daemon_conf_release(struct kl_daemon_conf *c)
{
	for (size_t i = 0; i < c->n_repos; i++) {
		kl_free(c->repos[i].name);
		kl_free(c->repos[i].location);
		kl_free(c->repos[i].password_file);
	}
	kl_free(c->repos);
	for (size_t i = 0; i < c->n_jobs; i++)
		job_release(&c->jobs[i]);
	kl_free(c->jobs);
	for (size_t i = 0; i < c->n_drills; i++) {
		kl_free(c->drills[i].job);
		kl_free(c->drills[i].scratch);
	}
	kl_free(c->drills);
	kl_free(c->path);
	kl_free(c->webhook);
	kl_free(c->sendmail);
	kl_free(c->mail);
	kl_free(c->http_listen);
	kl_free(c->http_token_file);
	memset(c, 0, sizeof(*c));
}

const struct kl_daemon_repo *kl_daemon_conf_repo(const struct kl_daemon_conf *c, const char *name)
{
	for (size_t i = 0; i < c->n_repos; i++)
		if (!strcmp(c->repos[i].name, name))
			return &c->repos[i];
	return NULL;
}

const struct kl_daemon_job *kl_daemon_conf_job(const struct kl_daemon_conf *c, const char *name)
{
	for (size_t i = 0; i < c->n_jobs; i++)
		if (!strcmp(c->jobs[i].name, name))
			return &c->jobs[i];
	return NULL;
}

static bool eq(const char *p, size_t n, const char *s)
{
	return strlen(s) == n && !memcmp(p, s, n);
}

/* Job and repository names: they name files in the state directory. */
static bool valid_name(const char *p, size_t n)
{
	if (n == 0 || n > 64 || p[0] == '.' || p[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') ||
		      (p[i] >= '0' && p[i] <= '9') || p[i] == '-' || p[i] == '_' || p[i] == '.'))
			return false;
	return true;
}

static int grow(void *pv, size_t n, size_t size)
{
	void **p = pv;
	void *x = kl_realloc(*p, (n + 1) * size);

	if (!x)
		return -ENOMEM;
	*p = x;
	memset((char *)x + n * size, 0, size);
	return 0;
}

static int new_section(struct parse *ps, const struct kl_ini_item *it)
{
	struct kl_daemon_conf *c = ps->c;
	const char *s = it->section;
	size_t sn = it->section_len;
	char *name = NULL;
	int r;

	if (eq(s, sn, "repository"))
		ps->sect = S_REPO;
	else if (eq(s, sn, "job"))
		ps->sect = S_JOB;
	else if (eq(s, sn, "drill"))
		ps->sect = S_DRILL;
	else if (eq(s, sn, "notify"))
		ps->sect = S_NOTIFY;
	else if (eq(s, sn, "http"))
		ps->sect = S_HTTP;
	else
		return kl_fail(ps->err, -KL_EUSAGE,
			       "line %u: [%.*s]: unknown section (keel knows repository, job, "
			       "drill, notify, http)",
			       it->line, (int)KL_MIN(sn, 64), s);
	if (ps->sect == S_NOTIFY || ps->sect == S_HTTP) {
		if (it->name)
			return kl_fail(ps->err, -KL_EUSAGE, "line %u: [%.*s]: takes no name",
				       it->line, (int)sn, s);
		return 0;
	}
	if (!it->name || !valid_name(it->name, it->name_len))
		return kl_fail(ps->err, -KL_EUSAGE,
			       "line %u: [%.*s]: needs a name of letters, digits, '.', '-' and '_' "
			       "([%.*s \"NAME\"])",
			       it->line, (int)sn, s, (int)sn, s);
	name = kl_strndup(it->name, it->name_len);
	if (!name)
		return -ENOMEM;
	for (size_t i = 0; i < (ps->sect == S_REPO  ? c->n_repos
				: ps->sect == S_JOB ? c->n_jobs
						    : c->n_drills);
	     i++) {
		const char *other = ps->sect == S_REPO	? c->repos[i].name
				    : ps->sect == S_JOB ? c->jobs[i].name
							: c->drills[i].job;
		unsigned line = ps->sect == S_REPO  ? c->repos[i].line
				: ps->sect == S_JOB ? c->jobs[i].line
						    : c->drills[i].line;

		if (!strcmp(other, name)) {
			kl_free(name);
			return kl_fail(ps->err, -KL_EUSAGE,
				       "line %u: [%.*s \"%.*s\"]: defined already on line %u",
				       it->line, (int)sn, s, (int)it->name_len, it->name, line);
		}
	}
	if (ps->sect == S_REPO) {
		r = grow(&c->repos, c->n_repos, sizeof(*c->repos));
		if (r >= 0) {
			c->repos[c->n_repos].name = name;
			c->repos[c->n_repos++].line = it->line;
		}
	} else if (ps->sect == S_JOB) {
		r = grow(&c->jobs, c->n_jobs, sizeof(*c->jobs));
		if (r >= 0) {
			c->jobs[c->n_jobs].name = name;
			c->jobs[c->n_jobs++].line = it->line;
		}
	} else {
		r = grow(&c->drills, c->n_drills, sizeof(*c->drills));
		if (r >= 0) {
			c->drills[c->n_drills].job = name;
			c->drills[c->n_drills++].line = it->line;
		}
	}
	if (r < 0)
		kl_free(name);
	return r;
}

#define BAD(fmt, ...)                                                                              \
	kl_fail(ps->err, -KL_EUSAGE, "line %u: %.*s: " fmt, it->line, (int)it->key_len, it->key,   \
		##__VA_ARGS__)

static int set_str(struct parse *ps, const struct kl_ini_item *it, char **dst)
{
	if (*dst)
		return BAD("set twice in one section");
	*dst = kl_strndup(it->value, it->value_len);
	return *dst ? 0 : -ENOMEM;
}

static int push(char ***v, size_t *n, const char *p, size_t len)
{
	char *s;

	if (grow(v, *n, sizeof(**v)) < 0)
		return -ENOMEM;
	s = kl_strndup(p, len);
	if (!s)
		return -ENOMEM;
	(*v)[(*n)++] = s;
	return 0;
}

static int job_paths(struct parse *ps, const struct kl_ini_item *it, struct kl_daemon_job *j)
{
	const char *p = it->value, *e = it->value + it->value_len;

	while (p < e) {
		const char *w = p;
		int r;

		while (w < e && *w != ' ' && *w != '\t')
			w++;
		if (*p != '/')
			return BAD("'%.*s' is not an absolute path", (int)KL_MIN(w - p, 256), p);
		r = push(&j->paths, &j->n_paths, p, (size_t)(w - p));
		if (r < 0)
			return r;
		for (p = w; p < e && (*p == ' ' || *p == '\t'); p++)
			;
	}
	return 0;
}

static const char *const keep_keys[KL_KEEP_N] = {
	"keep-last", "keep-hourly", "keep-daily", "keep-weekly", "keep-monthly", "keep-yearly",
};

static int duration(struct parse *ps, const struct kl_ini_item *it, int64_t *dst)
{
	_cleanup_free_ char *v = kl_strndup(it->value, it->value_len);

	if (!v)
		return -ENOMEM;
	if (kl_daemon_parse_duration(v, dst) < 0)
		return BAD("'%s' is not a duration (30s, 15m, 2h, 7d)", v);
	return 0;
}

static int schedule(struct parse *ps, const struct kl_ini_item *it, struct kl_schedule *dst,
		    char **text)
{
	_cleanup_free_ char *v = kl_strndup(it->value, it->value_len);

	if (!v)
		return -ENOMEM;
	if (*text)
		return BAD("set twice in one section");
	if (kl_schedule_parse(v, dst) < 0)
		return BAD("'%s' is not a schedule (every 15m, hourly, daily 02:30, "
			   "weekly sun 03:00, or a cron line)",
			   v);
	*text = KL_TAKE_PTR(v);
	return 0;
}

static int job_key(struct parse *ps, const struct kl_ini_item *it, struct kl_daemon_job *j)
{
	const char *k = it->key;
	size_t kn = it->key_len;

	if (eq(k, kn, "repository"))
		return set_str(ps, it, &j->repository);
	if (eq(k, kn, "paths"))
		return job_paths(ps, it, j);
	if (eq(k, kn, "exclude"))
		return push(&j->excludes, &j->n_excludes, it->value, it->value_len);
	if (eq(k, kn, "host"))
		return set_str(ps, it, &j->host);
	if (eq(k, kn, "schedule"))
		return schedule(ps, it, &j->schedule, &j->schedule_text);
	if (eq(k, kn, "jitter")) {
		if (j->jitter)
			return BAD("set twice in one section");
		return duration(ps, it, &j->jitter);
	}
	if (eq(k, kn, "rpo-target"))
		return duration(ps, it, &j->rpo_target);
	if (eq(k, kn, "before"))
		return set_str(ps, it, &j->before);
	if (eq(k, kn, "after"))
		return set_str(ps, it, &j->after);
	for (int i = 0; i < KL_KEEP_N; i++)
		if (eq(k, kn, keep_keys[i])) {
			_cleanup_free_ char *v = kl_strndup(it->value, it->value_len);
			uint64_t n;

			if (!v)
				return -ENOMEM;
			if (kl_parse_uint(v, 1, 1000000, &n) < 0)
				return BAD("'%s' is not a number from 1 to 1000000", v);
			j->keep[i] = (uint32_t)n;
			return 0;
		}
	return 1;
}

/* "10%" (or "10"): the share of a drill's files restored, 1 to 100 */
static int sample(struct parse *ps, const struct kl_ini_item *it, unsigned *ret)
{
	_cleanup_free_ char *v = kl_strndup(it->value, it->value_len);
	size_t n;
	uint64_t pct;

	if (!v)
		return -ENOMEM;
	if (*ret)
		return BAD("set twice in one section");
	n = strlen(v);
	if (n && v[n - 1] == '%')
		v[n - 1] = 0;
	if (kl_parse_uint(v, 1, 100, &pct) < 0)
		return BAD("'%.*s' is not a share from 1%% to 100%%",
			   (int)KL_MIN(it->value_len, 64), it->value);
	*ret = (unsigned)pct;
	return 0;
}

static int setting(struct parse *ps, const struct kl_ini_item *it)
{
	struct kl_daemon_conf *c = ps->c;
	const char *k = it->key;
	size_t kn = it->key_len;
	int r = 1;

	if (it->value_len == 0)
		return BAD("has no value");
	if (it->value_len > VALUE_MAX)
		return BAD("its value is longer than %d bytes", VALUE_MAX);
	switch (ps->sect) {
	case S_REPO: {
		struct kl_daemon_repo *rp = &c->repos[c->n_repos - 1];

		if (eq(k, kn, "location"))
			r = set_str(ps, it, &rp->location);
		else if (eq(k, kn, "password-file"))
			r = set_str(ps, it, &rp->password_file);
		else if (eq(k, kn, "prune")) {
			_cleanup_free_ char *text = NULL;

			if (rp->has_prune)
				return BAD("set twice in one section");
			r = schedule(ps, it, &rp->prune, &text);
			rp->has_prune = r == 0;
		}
		break;
	}
	case S_JOB:
		r = job_key(ps, it, &c->jobs[c->n_jobs - 1]);
		break;
	case S_DRILL: {
		struct kl_daemon_drill *d = &c->drills[c->n_drills - 1];
		_cleanup_free_ char *text = NULL;

		if (eq(k, kn, "schedule")) {
			r = schedule(ps, it, &d->schedule, &text);
			d->has_schedule = r == 0;
		} else if (eq(k, kn, "rto-target")) {
			r = duration(ps, it, &d->rto_target);
		} else if (eq(k, kn, "drill-sample")) {
			r = sample(ps, it, &d->sample);
		} else if (eq(k, kn, "scratch")) {
			r = set_str(ps, it, &d->scratch);
			if (r == 0 && d->scratch[0] != '/')
				r = BAD("'%s' is not an absolute path", d->scratch);
		}
		break;
	}
	case S_NOTIFY:
		if (eq(k, kn, "webhook"))
			r = set_str(ps, it, &c->webhook);
		else if (eq(k, kn, "mail"))
			r = set_str(ps, it, &c->mail);
		else if (eq(k, kn, "sendmail")) {
			r = set_str(ps, it, &c->sendmail);
			if (r == 0 && c->sendmail[0] != '/')
				r = BAD("'%s' is not an absolute path", c->sendmail);
		}
		break;
	case S_HTTP:
		if (eq(k, kn, "listen"))
			r = set_str(ps, it, &c->http_listen);
		else if (eq(k, kn, "token-file"))
			r = set_str(ps, it, &c->http_token_file);
		break;
	case S_NONE:
		break;
	}
	if (r > 0) {
		bool printable = kn <= 64;

		for (size_t i = 0; i < kn && printable; i++)
			printable = (k[i] >= 'a' && k[i] <= 'z') || k[i] == '-' || k[i] == '_' ||
				    (k[i] >= '0' && k[i] <= '9');
		/* quoted only when it looks like a name: a pasted secret must not reach stderr */
		if (!printable)
			return kl_fail(ps->err, -KL_EUSAGE, "line %u: unknown setting", it->line);
		return BAD("unknown setting in this section");
	}
	return r;
}

static int item(const struct kl_ini_item *it, void *userdata)
{
	struct parse *ps = userdata;

	return it->key ? setting(ps, it) : new_section(ps, it);
}

#define MISSING(line, kind, name, key)                                                             \
	kl_fail(err, -KL_EUSAGE, "line %u: [%s \"%s\"]: %s is missing", line, kind, name, key)

static int validate(const struct kl_daemon_conf *c, struct kl_err *err)
{
	for (size_t i = 0; i < c->n_repos; i++) {
		const struct kl_daemon_repo *rp = &c->repos[i];

		if (!rp->location)
			return MISSING(rp->line, "repository", rp->name, "location");
		if (!rp->password_file)
			return MISSING(rp->line, "repository", rp->name, "password-file");
	}
	for (size_t i = 0; i < c->n_jobs; i++) {
		const struct kl_daemon_job *j = &c->jobs[i];

		if (!j->repository)
			return MISSING(j->line, "job", j->name, "repository");
		if (!kl_daemon_conf_repo(c, j->repository))
			return kl_fail(err, -KL_EUSAGE,
				       "line %u: [job \"%s\"]: repository: no [repository \"%s\"]",
				       j->line, j->name, j->repository);
		if (!j->n_paths)
			return MISSING(j->line, "job", j->name, "paths");
		if (!j->schedule_text)
			return MISSING(j->line, "job", j->name, "schedule");
	}
	for (size_t i = 0; i < c->n_drills; i++) {
		bool found = false;

		for (size_t k = 0; k < c->n_jobs && !found; k++)
			found = !strcmp(c->jobs[k].name, c->drills[i].job);
		if (!found)
			return kl_fail(err, -KL_EUSAGE, "line %u: [drill \"%s\"]: no [job \"%s\"]",
				       c->drills[i].line, c->drills[i].job, c->drills[i].job);
		if (!c->drills[i].has_schedule)
			return MISSING(c->drills[i].line, "drill", c->drills[i].job, "schedule");
	}
	return 0;
}

int kl_daemon_conf_parse(const char *text, size_t n, const char *path, struct kl_daemon_conf *ret,
			 struct kl_err *err)
{
	struct kl_err perr = {0};
	struct parse ps = {.c = ret, .err = &perr};
	int r;

	memset(ret, 0, sizeof(*ret));
	ret->path = kl_strdup(path);
	if (!ret->path)
		return -ENOMEM;
	r = kl_ini_parse(text, n, KL_INI_INLINE_COMMENTS, item, &ps, &perr);
	if (r >= 0)
		r = validate(ret, &perr);
	if (r == -KL_EUSAGE)
		return kl_fail(err, r, "%s: %s", path, perr.msg);
	return r < 0 ? r : 0;
}

int kl_daemon_conf_load(const char *path, struct kl_daemon_conf *ret, struct kl_err *err)
{
	_cleanup_buf_ struct kl_buf text = KL_BUF_INIT(1u << 20);
	int r;

	memset(ret, 0, sizeof(*ret));
	r = kl_fs_read_all(AT_FDCWD, path, text.max, &text);
	if (r < 0)
		return kl_fail(err, r == -ENOENT || r == -E2BIG ? -KL_EUSAGE : r,
			       "cannot read the configuration file '%s': %s", path,
			       r == -E2BIG ? "larger than 1 MiB" : kl_strerror(r));
	return kl_daemon_conf_parse((const char *)text.data, text.len, path, ret, err);
}
