/*
 * The daemon's HTTP answers: GET / (the status page), GET /api/status
 * (the last `keel status --json`, status.c) and GET /metrics (metrics.c).
 *
 * The page is one HTML document with inline CSS and inline SVG, no
 * script and no external asset, so it renders the same from a file, a
 * proxy or a browser with scripts off. It shows what `keel status` shows
 * (RPO and RTO against their targets, green or red), the last lines keel
 * itself wrote in each job's run log, and a sparkline of each
 * repository's size. Never a secret or a file's contents: the
 * configuration's locations and password files are not shown, and only
 * log lines that keel wrote ("keel: ...") are, never a hook's output.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "keel/fs.h"

#define LOG_LINES 3
#define SPARK_POINTS 60

static int esc(struct kl_buf *out, const char *s)
{
	int r = 0;

	for (; s && *s && r >= 0; s++) {
		switch (*s) {
		case '<':
			r = kl_buf_addf(out, "&lt;");
			break;
		case '>':
			r = kl_buf_addf(out, "&gt;");
			break;
		case '&':
			r = kl_buf_addf(out, "&amp;");
			break;
		case '"':
			r = kl_buf_addf(out, "&quot;");
			break;
		case '\'':
			r = kl_buf_addf(out, "&#39;");
			break;
		default:
			r = kl_buf_add(out, s, 1);
		}
	}
	return r;
}

static void duration(char *out, size_t n, double s)
{
	if (s < 120)
		snprintf(out, n, "%.1fs", s);
	else if (s < 7200)
		snprintf(out, n, "%.0fm", s / 60);
	else if (s < 2 * 86400)
		snprintf(out, n, "%.1fh", s / 3600);
	else
		snprintf(out, n, "%.1fd", s / 86400);
}

static const char style[] =
	"body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;background:#fafafa}"
	"h1{font-size:1.4em}h2{font-size:1.1em;margin-top:2em}"
	"table{border-collapse:collapse;background:#fff}"
	"th,td{padding:.35em .8em;border:1px solid #ddd;text-align:left}"
	"th{background:#eee}td.n{text-align:right;font-variant-numeric:tabular-nums}"
	".ok{background:#d9f2d9;color:#0a5a0a}.bad{background:#f8d4d4;color:#8a0d0d}"
	"tr.ok td:first-child,tr.bad td:first-child{font-weight:bold}"
	"pre{background:#fff;border:1px solid #ddd;padding:.5em;white-space:pre-wrap;margin:.3em 0}"
	".muted{color:#777}svg{background:#fff;border:1px solid #ddd;vertical-align:middle}";

/* A time from the status JSON ("2026-12-06T04:36:08Z") as given, or "-" */
static int cell_time(struct kl_buf *out, json_t *v)
{
	const char *s = json_string_value(v);
	int r = kl_buf_addf(out, "<td>");

	if (r >= 0)
		r = s ? esc(out, s) : kl_buf_addf(out, "-");
	return r < 0 ? r : kl_buf_addf(out, "</td>");
}

/* A measured value against its target: green when met, red when not */
static int cell_target(struct kl_buf *out, json_t *value, double extra, json_t *target, bool ok,
		       bool estimate)
{
	char v[32] = "-", t[32] = "-";

	if (json_is_number(value))
		duration(v, sizeof(v), json_number_value(value) + extra);
	if (json_is_number(target))
		duration(t, sizeof(t), json_number_value(target));
	return kl_buf_addf(
		out, "<td class=\"n %s\"%s>%s%s</td><td class=\"n\">%s</td>", ok ? "ok" : "bad",
		estimate ? " title=\"an estimate from a sample\"" : "", v, estimate ? "~" : "", t);
}

static int job_row(const struct daemon *d, struct kl_buf *out, json_t *j, double age)
{
	json_t *last = json_object_get(j, "last_run");
	json_t *rpo = json_object_get(j, "rpo_seconds"),
	       *rpo_t = json_object_get(j, "rpo_target_seconds");
	const char *name = json_string_value(json_object_get(j, "job"));
	bool has_run = json_is_object(last);
	bool run_ok = !has_run || json_is_true(json_object_get(last, "success"));
	bool rpo_ok = json_is_true(json_object_get(j, "rpo_ok"));
	bool rto_ok = json_is_true(json_object_get(j, "rto_ok"));
	int r;

	/* the RPO has grown since the status was taken: judge it as of now */
	if (rpo_ok && json_is_number(rpo) && json_is_number(rpo_t) &&
	    json_number_value(rpo) + age > json_number_value(rpo_t))
		rpo_ok = false;
	if (!name || !kl_daemon_conf_job(&d->conf, name))
		return 0;
	r = kl_buf_addf(out, "<tr id=\"job-%s\" class=\"%s\"><td>%s</td><td>", name,
			run_ok && rpo_ok && rto_ok ? "ok" : "bad", name);
	if (r >= 0)
		r = esc(out, json_string_value(json_object_get(j, "repository")));
	if (r >= 0)
		r = kl_buf_addf(out, "</td>");
	if (r >= 0)
		r = cell_time(out, has_run ? json_object_get(last, "start") : NULL);
	if (r >= 0)
		r = kl_buf_addf(out, "<td class=\"%s\">%s</td>", run_ok ? "ok" : "bad",
				!has_run ? "-"
				: run_ok ? "ok"
					 : "failed");
	if (r >= 0)
		r = cell_target(out, rpo, json_is_number(rpo) ? age : 0, rpo_t, rpo_ok, false);
	if (r >= 0)
		r = cell_target(out, json_object_get(j, "rto_seconds"), 0,
				json_object_get(j, "rto_target_seconds"), rto_ok,
				json_is_true(json_object_get(j, "rto_estimate")));
	if (r >= 0)
		r = cell_time(out, json_object_get(j, "next_run"));
	return r < 0 ? r : kl_buf_addf(out, "</tr>\n");
}

/* The last LOG_LINES lines keel wrote ("keel: ...") in STATE-DIR/DIR/NAME.log */
static int log_tail(const struct daemon *d, struct kl_buf *out, const char *dir, const char *name)
{
	_cleanup_close_ int fd = -1;
	char path[4300], buf[8192], *lines[LOG_LINES];
	size_t n = 0;
	off_t end;
	ssize_t got;
	int r = 0;

	snprintf(path, sizeof(path), "%s/%s/%s.log", d->o->state_dir, dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	end = lseek(fd, 0, SEEK_END);
	got = end > 0 ? pread(fd, buf, sizeof(buf) - 1,
			      end > (off_t)sizeof(buf) - 1 ? end - (off_t)sizeof(buf) + 1 : 0)
		      : 0;
	buf[got > 0 ? got : 0] = 0;
	for (char *e = buf + (got > 0 ? got : 0); e > buf && n < LOG_LINES;) {
		char *s;

		*e = 0;
		s = strrchr(buf, '\n');
		s = s ? s + 1 : buf;
		if (!strncmp(s, "keel: ", 6) || !strncmp(s, "keel ", 5))
			lines[n++] = s;
		e = s > buf ? s - 1 : buf;
	}
	if (!n)
		return 0;
	r = kl_buf_addf(out, "<pre>");
	while (n-- && r >= 0) {
		lines[n][KL_MIN(strlen(lines[n]), 300)] = 0;
		r = esc(out, lines[n]);
		if (r >= 0)
			r = kl_buf_addf(out, "\n");
	}
	return r < 0 ? r : kl_buf_addf(out, "</pre>\n");
}

/* The last run (or drill) of a job: when, how long, the result, and keel's last log lines */
static int last_run(const struct daemon *d, struct kl_buf *out, const char *name, bool drill)
{
	struct kl_daemon_run run;
	char when[40];
	int r;

	if ((drill ? kl_daemon_drill_state_read(d->o->state_dir, name, &run)
		   : kl_daemon_state_read(d->o->state_dir, name, &run)) < 0 ||
	    !run.start)
		return 0;
	kl_time_format_utc(run.start * KL_NSEC_PER_SEC, when);
	r = kl_buf_addf(out,
			"<h3>%s %s</h3><p id=\"%s-%s\" class=\"%s\">%s: %s in %.1f s, snapshot "
			"%.8s%s",
			drill ? "drill" : "job", name, drill ? "drill" : "run", name,
			run.success ? "ok" : "bad", when, run.success ? "ok" : "failed",
			run.duration, run.snapshot[0] ? run.snapshot : "-",
			run.error[0] ? ": " : "");
	if (r >= 0)
		r = esc(out, run.error);
	if (r >= 0)
		r = kl_buf_addf(out, "</p>\n");
	return r < 0 ? r : log_tail(d, out, drill ? "drills" : "jobs", name);
}

/* An inline SVG polyline of the repository's last SPARK_POINTS sizes (STATE-DIR/sizes/REPO) */
static int sparkline(const struct daemon *d, struct kl_buf *out, const char *repo)
{
	_cleanup_buf_ struct kl_buf text = KL_BUF_INIT(1u << 20);
	_cleanup_close_ int dfd = open(d->o->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	double v[SPARK_POINTS], lo = 0, hi = 0;
	size_t n = 0;
	char name[128], sz[32];
	const char *p, *end;
	int r;

	snprintf(name, sizeof(name), "sizes/%s", repo);
	if (dfd < 0 || kl_fs_read_all(dfd, name, text.max, &text) < 0 || !text.len)
		return 0;
	/* the last SPARK_POINTS lines: walk back from the end */
	end = (const char *)text.data + text.len;
	p = end;
	for (size_t lines = 0; p > (const char *)text.data && lines <= SPARK_POINTS;) {
		p--;
		if (*p == '\n' && p + 1 < end)
			lines++;
		if (lines > SPARK_POINTS) {
			p++;
			break;
		}
	}
	while (p < end && n < SPARK_POINTS) {
		long long t;
		unsigned long long s;

		if (sscanf(p, "%lld %llu", &t, &s) == 2)
			v[n++] = (double)s;
		p = memchr(p, '\n', (size_t)(end - p));
		if (!p)
			break;
		p++;
	}
	if (!n)
		return 0;
	lo = hi = v[0];
	for (size_t i = 1; i < n; i++) {
		lo = v[i] < lo ? v[i] : lo;
		hi = v[i] > hi ? v[i] : hi;
	}
	r = kl_buf_addf(out,
			"<tr><td>%s</td><td><svg class=\"spark\" width=\"240\" height=\"40\" "
			"viewBox=\"0 0 240 40\" role=\"img\" aria-label=\"size of %s\">"
			"<polyline fill=\"none\" stroke=\"#2a6fb0\" stroke-width=\"2\" points=\"",
			repo, repo);
	for (size_t i = 0; i < n && r >= 0; i++)
		r = kl_buf_addf(out, "%s%.1f,%.1f", i ? " " : "",
				n > 1 ? 4 + 232.0 * (double)i / (double)(n - 1) : 120.0,
				hi > lo ? 36 - 32 * (v[i] - lo) / (hi - lo) : 20.0);
	if (v[n - 1] >= 1 << 30)
		snprintf(sz, sizeof(sz), "%.2f GiB", v[n - 1] / (1 << 30));
	else if (v[n - 1] >= 1 << 20)
		snprintf(sz, sizeof(sz), "%.2f MiB", v[n - 1] / (1 << 20));
	else
		snprintf(sz, sizeof(sz), "%.1f KiB", v[n - 1] / 1024);
	return r < 0 ? r : kl_buf_addf(out, "\"/></svg></td><td class=\"n\">%s</td></tr>\n", sz);
}

int kl_daemon_render_page(const struct daemon *d, struct kl_buf *out)
{
	json_t *jobs = json_object_get(d->status, "jobs");
	double age =
		d->status_time ? (double)(kl_time_now_ns() / KL_NSEC_PER_SEC - d->status_time) : 0;
	char when[40] = "";
	int r;

	if (d->status_time)
		kl_time_format_utc(d->status_time * KL_NSEC_PER_SEC, when);
	r = kl_buf_addf(out,
			"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
			"<meta http-equiv=\"refresh\" content=\"5\">"
			"<meta name=\"viewport\" content=\"width=device-width\">"
			"<title>keel</title><style>%s</style></head><body>\n<h1>keel</h1>\n",
			style);
	if (r >= 0 && !d->status)
		return kl_buf_addf(out, "<p id=\"pending\">The first status is being taken; this "
					"page reloads itself.</p></body></html>\n");
	if (r >= 0)
		r = kl_buf_addf(
			out,
			"<p class=\"muted\">Status of %s (%.0f s ago); the page reloads "
			"every 5 s.</p>\n<table id=\"jobs\"><tr><th>job</th><th>repository</th>"
			"<th>last run</th><th>result</th><th>RPO</th><th>RPO target</th>"
			"<th>RTO</th><th>RTO target</th><th>next run</th></tr>\n",
			when, age);
	for (size_t i = 0; i < json_array_size(jobs) && r >= 0; i++)
		r = job_row(d, out, json_array_get(jobs, i), age);
	if (r >= 0)
		r = kl_buf_addf(out, "</table>\n<h2>Last runs</h2>\n");
	for (size_t i = 0; i < d->conf.n_jobs && r >= 0; i++)
		r = last_run(d, out, d->conf.jobs[i].name, false);
	for (size_t i = 0; i < d->conf.n_drills && r >= 0; i++)
		r = last_run(d, out, d->conf.drills[i].job, true);
	if (r >= 0)
		r = kl_buf_addf(out, "<h2>Repository size</h2>\n<table id=\"sizes\">\n");
	for (size_t i = 0; i < d->conf.n_repos && r >= 0; i++)
		r = sparkline(d, out, d->conf.repos[i].name);
	return r < 0 ? r : kl_buf_addf(out, "</table>\n</body></html>\n");
}

int kl_daemon_http_route(const char *url, struct kl_buf *out, const char **type, void *userdata)
{
	const struct daemon *d = userdata;
	int r;

	if (!strcmp(url, "/metrics")) {
		*type = "text/plain; version=0.0.4";
		r = kl_daemon_render_metrics(d, out);
		return r < 0 ? r : 200;
	}
	if (!strcmp(url, "/api/status")) {
		if (!d->status_text)
			return kl_buf_addf(out, "the first status is being taken\n") < 0 ? -ENOMEM
											 : 503;
		*type = "application/json";
		r = kl_buf_addf(out, "%s", d->status_text);
		return r < 0 ? r : 200;
	}
	if (!strcmp(url, "/")) {
		*type = "text/html; charset=utf-8";
		r = kl_daemon_render_page(d, out);
		return r < 0 ? r : 200;
	}
	return kl_buf_addf(out, "not found\n") < 0 ? -ENOMEM : 404;
}
