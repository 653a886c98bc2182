/*
 * Alerts ([notify] webhook and mail): after each status (status.c), each
 * job is "ok" or has problems (its last run failed, its RPO or RTO target
 * is missed, its last drill failed). An alert goes out when a job turns
 * from ok to a problem and when it recovers: one per change of state, not
 * one per status, and not again for a second problem while the first
 * lasts (the page and `keel status` show every reason). The state is kept
 * in STATE-DIR/alerts/JOB, so a restart neither repeats nor loses one.
 *
 * Delivery is a child process, so a slow webhook never stalls the loop:
 * a JSON POST through libcurl (10 s timeout, three tries) and a message
 * to `/usr/sbin/sendmail -t` (or [notify] sendmail) when present.
 */
#include <curl/curl.h>
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
#define SENDMAIL "/usr/sbin/sendmail"

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return size * n;
}

static int post(const char *url, const char *body, char *why, size_t why_n)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	long code = 0;
	CURLcode rc;

	if (!c)
		return -ENOMEM;
	h = curl_slist_append(h, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "keel/" KEEL_VERSION);
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	if (rc != CURLE_OK)
		snprintf(why, why_n, "%s", curl_easy_strerror(rc));
	else if (code < 200 || code > 299)
		snprintf(why, why_n, "HTTP status %ld", code);
	return rc == CURLE_OK && code >= 200 && code <= 299 ? 0 : -KL_EREMOTE;
}

static int mail(const char *prog, const char *to, const char *subject, const char *body)
{
	char *argv[] = {(char *)prog, (char *)"-t", NULL};
	int p[2], st;
	pid_t pid;
	FILE *f;

	if (access(prog, X_OK) < 0)
		return -ENOENT;
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		if (dup2(p[0], STDIN_FILENO) < 0)
			_exit(127);
		execv(argv[0], argv);
		_exit(127);
	}
	close(p[0]);
	f = fdopen(p[1], "w");
	if (f) {
		/* the subject says it all; the JSON, as the webhook gets it, is for scripts */
		fprintf(f,
			"To: %s\nSubject: %s\nMIME-Version: 1.0\n"
			"Content-Type: text/plain; charset=utf-8\n\n%s\n\n%s\n",
			to, subject, subject, body);
		fclose(f);
	} else {
		close(p[1]);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -KL_EREMOTE;
}

/* In the child: delivers one alert to every configured target. */
static void deliver(const struct kl_daemon_conf *c, const char *job, const char *subject,
		    const char *body)
{
	if (c->webhook) {
		char why[256] = "";
		int r = -1;

		for (int i = 0; i < 3 && r < 0; i++) {
			if (i)
				sleep(2 * (unsigned)i);
			r = post(c->webhook, body, why, sizeof(why));
		}
		if (r < 0)
			LOG("job '%s': the webhook failed: %s", job, why);
	}
	if (c->mail) {
		const char *prog = c->sendmail ? c->sendmail : SENDMAIL;
		int r = mail(prog, c->mail, subject, body);

		if (r == -ENOENT)
			LOG("job '%s': no %s to mail the alert", job, prog);
		else if (r < 0)
			LOG("job '%s': %s failed to take the alert", job, prog);
	}
}

/*
 * The job's reasons for a problem, as a JSON array (empty: ok). A job is
 * judged once it has run (a new daemon does not alert for the snapshot
 * its first run is about to take), its RTO once a drill ran.
 */
static json_t *reasons(json_t *j)
{
	json_t *v = json_array(), *last = json_object_get(j, "last_run"),
	       *drill = json_object_get(j, "last_drill");

	if (!v)
		return NULL;
	if (!json_is_object(last))
		return v;
	if (json_is_false(json_object_get(last, "success")))
		json_array_append_new(v, json_string("run failed"));
	if (json_is_false(json_object_get(j, "rpo_ok")))
		json_array_append_new(v, json_string("RPO target missed"));
	if (json_is_object(drill) && json_is_false(json_object_get(drill, "success")))
		json_array_append_new(v, json_string("drill failed"));
	else if (json_is_object(drill) && json_is_false(json_object_get(j, "rto_ok")))
		json_array_append_new(v, json_string("RTO target missed"));
	return v;
}

/* STATE-DIR/alerts/JOB: "problem" or "ok" (or missing: ok) */
static bool was_problem(int dfd, const char *job)
{
	_cleanup_buf_ struct kl_buf b = KL_BUF_INIT(64);
	char name[128];

	snprintf(name, sizeof(name), "alerts/%s", job);
	return kl_fs_read_all(dfd, name, b.max, &b) >= 0 && b.len >= 7 &&
	       !memcmp(b.data, "problem", 7);
}

static int send_alert(struct daemon *d, json_t *j, const char *job, json_t *why, bool problem)
{
	json_t *last = json_object_get(j, "last_run");
	char subject[200], when[40], *body;
	json_t *doc;
	pid_t pid;

	kl_time_format_utc(kl_time_now_ns(), when);
	doc = json_pack("{s:s,s:s,s:O,s:O,s:s,s:O,s:O,s:O}", "event",
			problem ? "problem" : "recovered", "time", when, "job",
			json_object_get(j, "job"), "repository", json_object_get(j, "repository"),
			"summary", "", "reasons", why, "rpo_seconds",
			json_object_get(j, "rpo_seconds"), "rto_seconds",
			json_object_get(j, "rto_seconds"));
	if (!doc)
		return -ENOMEM;
	if (json_is_object(last) && json_is_string(json_object_get(last, "error")))
		json_object_set(doc, "error", json_object_get(last, "error"));
	snprintf(subject, sizeof(subject), "keel: job %s: %s%s%s", job,
		 problem ? json_string_value(json_array_get(why, 0)) : "recovered",
		 problem && json_array_size(why) > 1 ? " and more" : "", "");
	json_object_set_new(doc, "summary", json_string(subject));
	body = json_dumps(doc, JSON_SORT_KEYS);
	json_decref(doc);
	if (!body)
		return -ENOMEM;
	LOG("job '%s': alert: %s", job, subject + 6);
	pid = fork();
	if (pid == 0) {
		sigset_t none;

		setpgid(0, 0);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		deliver(&d->conf, job, subject, body);
		_exit(0);
	}
	free(body); /* jansson's */
	return pid < 0 ? -errno : 0;
}

void kl_daemon_alerts_check(struct daemon *d)
{
	_cleanup_close_ int dfd = -1;
	json_t *jobs = json_object_get(d->status, "jobs");

	if (!d->conf.webhook && !d->conf.mail)
		return;
	dfd = open(d->o->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || (mkdirat(dfd, "alerts", 0755) < 0 && errno != EEXIST))
		return;
	for (size_t i = 0; i < json_array_size(jobs); i++) {
		json_t *j = json_array_get(jobs, i), *why;
		const char *job = json_string_value(json_object_get(j, "job"));
		bool problem, was;
		char name[128];

		/* names from the configuration only: they name files */
		if (!job || !kl_daemon_conf_job(&d->conf, job))
			continue;
		why = reasons(j);
		if (!why)
			return;
		problem = json_array_size(why) > 0;
		was = was_problem(dfd, job);
		if (problem != was) {
			snprintf(name, sizeof(name), "alerts/%s", job);
			if (kl_fs_write_atomic(dfd, name, problem ? "problem\n" : "ok\n",
					       problem ? 8 : 3, 0644, 0) < 0 ||
			    send_alert(d, j, job, why, problem) < 0)
				LOG("job '%s': cannot send an alert", job);
		}
		json_decref(why);
	}
}
