/*
 * The daemon's view of `keel status --json`: a child runs it (the daemon
 * holds no keys and opens no repository; the child reads them as the
 * command a user types does) after every run or drill and every
 * KL_DAEMON_STATUS_EVERY seconds; the daemon caches its output for
 * GET /api/status, the page and the alerts, and keeps each repository's
 * size over time in STATE-DIR/sizes/REPO (for the page's sparkline).
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

#define LOG(fmt, ...) fprintf(stderr, "keel: daemon: " fmt "\n", ##__VA_ARGS__)

bool kl_daemon_status_wanted(const struct daemon *d)
{
	return d->conf.http_listen || d->conf.webhook || d->conf.mail;
}

void kl_daemon_status_refresh(struct daemon *d)
{
	char out[4200];
	pid_t pid;

	if (d->status_pid) {
		d->status_again = true;
		return;
	}
	d->status_again = false;
	d->status_start = kl_time_now_ns() / KL_NSEC_PER_SEC;
	snprintf(out, sizeof(out), "%s/status.json.tmp", d->o->state_dir);
	pid = fork();
	if (pid < 0) {
		LOG("cannot start keel status: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		char *argv[] = {(char *)d->o->keel_exe,	   (char *)"status",
				(char *)"--json",	   (char *)"--config",
				(char *)d->o->config_path, (char *)"--state-dir",
				(char *)d->o->state_dir,   NULL};
		int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		sigset_t none;

		setpgid(0, 0);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		/* its messages (a repository it cannot read) are in the JSON's results */
		if (fd < 0 || null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 ||
		    dup2(fd, STDOUT_FILENO) < 0 || dup2(null_fd, STDERR_FILENO) < 0)
			_exit(127);
		execv(argv[0], argv);
		_exit(127);
	}
	d->status_pid = pid;
}

/* Appends "TIME SIZE" to STATE-DIR/sizes/REPO when the size changed or an hour passed. */
static void record_size(const struct daemon *d, const char *repo, uint64_t size, int64_t now)
{
	_cleanup_close_ int dfd = open(d->o->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_buf_ struct kl_buf old = KL_BUF_INIT(1u << 20);
	_cleanup_close_ int fd = -1;
	char name[128], line[64];
	long long t = 0;
	unsigned long long s = 0;
	const char *last;

	if (dfd < 0 || (mkdirat(dfd, "sizes", 0755) < 0 && errno != EEXIST))
		return;
	snprintf(name, sizeof(name), "sizes/%s", repo);
	if (kl_fs_read_all(dfd, name, old.max, &old) == -E2BIG)
		unlinkat(dfd, name, 0); /* a year of hourly samples at most: start again */
	if (old.len) {
		old.data[old.len - 1] = 0;
		last = strrchr((const char *)old.data, '\n');
		last = last ? last + 1 : (const char *)old.data;
		if (sscanf(last, "%lld %llu", &t, &s) == 2 && s == size && now - t < 3600)
			return;
	}
	fd = openat(dfd, name, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	snprintf(line, sizeof(line), "%lld %llu\n", (long long)now, (unsigned long long)size);
	if (fd >= 0)
		kl_fs_write_full(fd, line, strlen(line));
}

bool kl_daemon_status_reaped(struct daemon *d, pid_t pid, int wstatus)
{
	_cleanup_buf_ struct kl_buf text = KL_BUF_INIT(1u << 22);
	_cleanup_close_ int dfd = -1;
	json_t *root, *jobs;
	int code;

	if (!d->status_pid || pid != d->status_pid)
		return false;
	d->status_pid = 0;
	code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
	dfd = open(d->o->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	/* 5: a target missed; other codes: a repository unreadable, still a status of the rest */
	if (dfd >= 0 && code >= 0 && kl_fs_read_all(dfd, "status.json.tmp", text.max, &text) >= 0 &&
	    (root = json_loadb((const char *)text.data, text.len, 0, NULL))) {
		json_decref(d->status);
		d->status = root;
		kl_free(d->status_text);
		d->status_text = kl_strndup((const char *)text.data, text.len);
		d->status_time = d->status_start;
		jobs = json_object_get(root, "jobs");
		for (size_t i = 0; i < json_array_size(jobs); i++) {
			json_t *j = json_array_get(jobs, i);
			const char *repo = json_string_value(json_object_get(j, "repository"));
			json_t *size = json_object_get(j, "repository_size_bytes");

			if (repo && json_is_integer(size) && kl_daemon_conf_repo(&d->conf, repo))
				record_size(d, repo, (uint64_t)json_integer_value(size),
					    d->status_time);
		}
		kl_daemon_alerts_check(d);
	} else if (code != 0) {
		LOG("keel status exited with %d", code);
	}
	if (dfd >= 0)
		unlinkat(dfd, "status.json.tmp", 0);
	if (d->status_again)
		kl_daemon_status_refresh(d);
	return true;
}

void kl_daemon_status_release(struct daemon *d)
{
	json_decref(d->status);
	d->status = NULL;
	kl_free(d->status_text);
	d->status_text = NULL;
}
