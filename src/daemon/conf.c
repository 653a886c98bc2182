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
	bool kind_seen; /* in the current [job] */
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
	kl_free(j->command);
	kl_free(j->stdin_filename);
	kl_free(j->source);
	kl_free(j->conninfo);
	kl_free(j->db_name);
	kl_free(j->pgpass_file);
	kl_free(j->destination);
}

static const char *const kind_names[KL_JOB_KIND_N] = {"files", "command", "image", "db", "mirror"};

const char *kl_daemon_job_kind_name(enum kl_daemon_job_kind k)
{
	return k < KL_JOB_KIND_N ? kind_names[k] : "?";
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
	ps->kind_seen = false;
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

static const char *const kind_keys[KL_JK_N] = {
	"paths",  "exclude",	 "command",	"stdin-filename", "source", "conninfo", "name",
	"stream", "pgpass-file", "destination", "keep-*",	  "before", "host",
};

static int job_kind(struct parse *ps, const struct kl_ini_item *it, struct kl_daemon_job *j,
		    bool *seen)
{
	if (*seen)
		return BAD("set twice in one section");
	*seen = true;
	for (int k = 0; k < KL_JOB_KIND_N; k++)
		if (eq(it->value, it->value_len, kind_names[k])) {
			j->kind = (enum kl_daemon_job_kind)k;
			return 0;
		}
	return BAD("'%.*s' is not a kind of job (files, command, image, db, mirror)",
		   (int)KL_MIN(it->value_len, 64), it->value);
}

/*
 * libpq would take a password from the conninfo, but the conninfo is an
 * argument of keel db, readable by every user in /proc: it must come from
 * a password file (pgpass-file) or the service file instead.
 */
static int conninfo(struct parse *ps, const struct kl_ini_item *it, struct kl_daemon_job *j)
{
	const char *v = it->value, *e = v + it->value_len, *at, *scheme;

	for (const char *p = v; p + 8 <= e; p++)
		if (!strncasecmp(p, "password", 8))
			return BAD("holds a password: keel db reads it from pgpass-file "
				   "(PGPASSFILE), never from its arguments");
	/* The value is not NUL-terminated: it points into the file's text. */
	scheme = memmem(v, it->value_len, "://", 3);
	if (scheme) {
		at = memchr(scheme, '@', (size_t)(e - scheme));
		if (at && memchr(scheme + 3, ':', (size_t)(at - scheme - 3)))
			return BAD("holds a password: keel db reads it from pgpass-file "
				   "(PGPASSFILE), never from its arguments");
	}
	return set_str(ps, it, &j->conninfo);
}

/* The keys some kinds of job take; 1: not one of them. */
static int job_kind_key(struct parse *ps, const struct kl_ini_item *it, struct kl_daemon_job *j)
{
	const char *k = it->key;
	size_t kn = it->key_len;
	int key = -1, r;

	for (int i = 0; i < KL_JK_N && key < 0; i++)
		if (eq(k, kn, kind_keys[i]))
			key = i;
	switch (key) {
	case KL_JK_PATHS:
		r = job_paths(ps, it, j);
		break;
	case KL_JK_EXCLUDE:
		r = push(&j->excludes, &j->n_excludes, it->value, it->value_len);
		break;
	case KL_JK_COMMAND:
		r = set_str(ps, it, &j->command);
		break;
	case KL_JK_STDIN_FILENAME:
		r = set_str(ps, it, &j->stdin_filename);
		if (r == 0 && (strchr(j->stdin_filename, '/') || !strcmp(j->stdin_filename, ".") ||
			       !strcmp(j->stdin_filename, "..")))
			r = BAD("'%s' is not a file name", j->stdin_filename);
		break;
	case KL_JK_SOURCE:
		r = set_str(ps, it, &j->source);
		if (r == 0 && j->source[0] != '/')
			r = BAD("'%s' is not an absolute path", j->source);
		break;
	case KL_JK_CONNINFO:
		r = conninfo(ps, it, j);
		break;
	case KL_JK_NAME:
		if (!valid_name(it->value, it->value_len))
			return BAD("needs a name of letters, digits, '.', '-' and '_'");
		r = set_str(ps, it, &j->db_name);
		break;
	case KL_JK_STREAM:
		if (j->key_line[KL_JK_STREAM])
			return BAD("set twice in one section");
		if (!eq(it->value, it->value_len, "yes") && !eq(it->value, it->value_len, "no"))
			return BAD("'%.*s' is neither yes nor no", (int)KL_MIN(it->value_len, 64),
				   it->value);
		j->stream = eq(it->value, it->value_len, "yes");
		r = 0;
		break;
	case KL_JK_PGPASS_FILE:
		r = set_str(ps, it, &j->pgpass_file);
		break;
	case KL_JK_DESTINATION:
		r = set_str(ps, it, &j->destination);
		break;
	default:
		return 1;
	}
	if (r == 0)
		j->key_line[key] = it->line;
	return r;
}

static int job_key(struct parse *ps, const struct kl_ini_item *it, struct kl_daemon_job *j,
		   bool *kind_seen)
{
	const char *k = it->key;
	size_t kn = it->key_len;
	int r;

	if (eq(k, kn, "repository"))
		return set_str(ps, it, &j->repository);
	if (eq(k, kn, "kind"))
		return job_kind(ps, it, j, kind_seen);
	r = job_kind_key(ps, it, j);
	if (r <= 0)
		return r;
	if (eq(k, kn, "host")) {
		j->key_line[KL_JK_HOST] = it->line;
		return set_str(ps, it, &j->host);
	}
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
			if (!j->key_line[KL_JK_KEEP])
				j->key_line[KL_JK_KEEP] = it->line;
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
		r = job_key(ps, it, &c->jobs[c->n_jobs - 1], &ps->kind_seen);
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

#define K(x) (1u << KL_JK_##x)
static const unsigned kind_allows[KL_JOB_KIND_N] = {
	[KL_JOB_FILES] = K(PATHS) | K(EXCLUDE) | K(KEEP) | K(HOST),
	[KL_JOB_COMMAND] = K(COMMAND) | K(STDIN_FILENAME) | K(KEEP) | K(HOST),
	[KL_JOB_IMAGE] = K(SOURCE) | K(KEEP),
	[KL_JOB_DB] = K(CONNINFO) | K(NAME) | K(STREAM) | K(PGPASS_FILE) | K(KEEP) | K(HOST),
	[KL_JOB_MIRROR] = K(DESTINATION),
};
static const unsigned kind_needs[KL_JOB_KIND_N] = {
	[KL_JOB_FILES] = K(PATHS),	  [KL_JOB_COMMAND] = K(COMMAND),
	[KL_JOB_IMAGE] = K(SOURCE),	  [KL_JOB_DB] = K(CONNINFO) | K(NAME),
	[KL_JOB_MIRROR] = K(DESTINATION),
};
#undef K

/* The one path a snapshot of a command, image or db job records (keel/daemon.h). */
static int job_path(struct kl_daemon_job *j)
{
	char buf[4200];

	if (j->kind == KL_JOB_COMMAND)
		snprintf(buf, sizeof(buf), "/%s", j->stdin_filename ? j->stdin_filename : "stdin");
	else if (j->kind == KL_JOB_IMAGE)
		snprintf(buf, sizeof(buf), "%s", j->source);
	else if (j->kind == KL_JOB_DB)
		snprintf(buf, sizeof(buf), "db:%s", j->db_name);
	else
		return 0;
	return push(&j->paths, &j->n_paths, buf, strlen(buf));
}

/* The keys of j fit its kind, the kind's own are there. */
static int validate_kind(struct kl_daemon_job *j, struct kl_err *err)
{
	const char *kind = kind_names[j->kind];

	for (int k = 0; k < KL_JK_N; k++) {
		if (j->key_line[k] && !(kind_allows[j->kind] & (1u << k)))
			return kl_fail(err, -KL_EUSAGE,
				       "line %u: %s: not a setting of a job of kind %s "
				       "([job \"%s\"] on line %u)",
				       j->key_line[k], kind_keys[k], kind, j->name, j->line);
		if (!j->key_line[k] && (kind_needs[j->kind] & (1u << k)))
			return kl_fail(err, -KL_EUSAGE,
				       "line %u: [job \"%s\"]: %s is missing%s%s%s", j->line,
				       j->name, kind_keys[k], j->kind ? " (kind = " : "",
				       j->kind ? kind : "", j->kind ? ")" : "");
	}
	return job_path(j);
}

/* What a drill of j's kind cannot do (docs/DAEMON.md, "Drills"). */
static int validate_drill(const struct kl_daemon_job *j, const struct kl_daemon_drill *dr,
			  struct kl_err *err)
{
	if ((j->kind == KL_JOB_DB || j->kind == KL_JOB_IMAGE) && dr->sample && dr->sample < 100)
		return kl_fail(err, -KL_EUSAGE,
			       "line %u: [drill \"%s\"]: drill-sample: a drill of a job of kind "
			       "%s restores it whole",
			       dr->line, dr->job, kind_names[j->kind]);
	return 0;
}

static int validate(struct kl_daemon_conf *c, struct kl_err *err)
{
	for (size_t i = 0; i < c->n_repos; i++) {
		const struct kl_daemon_repo *rp = &c->repos[i];

		if (!rp->location)
			return MISSING(rp->line, "repository", rp->name, "location");
		if (!rp->password_file)
			return MISSING(rp->line, "repository", rp->name, "password-file");
	}
	for (size_t i = 0; i < c->n_jobs; i++) {
		struct kl_daemon_job *j = &c->jobs[i];
		int r;

		if (!j->repository)
			return MISSING(j->line, "job", j->name, "repository");
		if (!kl_daemon_conf_repo(c, j->repository))
			return kl_fail(err, -KL_EUSAGE,
				       "line %u: [job \"%s\"]: repository: no [repository \"%s\"]",
				       j->line, j->name, j->repository);
		r = validate_kind(j, err);
		if (r < 0)
			return r;
		if (!j->schedule_text)
			return MISSING(j->line, "job", j->name, "schedule");
	}
	for (size_t i = 0; i < c->n_drills; i++) {
		bool found = false;
		int r;

		for (size_t k = 0; k < c->n_jobs && !found; k++)
			found = !strcmp(c->jobs[k].name, c->drills[i].job);
		r = found ? validate_drill(kl_daemon_conf_job(c, c->drills[i].job), &c->drills[i],
					   err)
			  : 0;
		if (r < 0)
			return r;
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
