/*
 * The record of each job's last run: STATE-DIR/jobs/NAME.json, written
 * atomically by the run itself, read by the daemon and by `keel status`.
 */
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "keel/daemon.h"
#include "keel/fs.h"

static void jsonp_free(json_t **j)
{
	if (*j)
		json_decref(*j);
}
#define _cleanup_json_ _cleanup_(jsonp_free)

static int jobs_dir(const char *state_dir, const char *dir, bool create)
{
	_cleanup_close_ int dfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int fd;

	if (dfd < 0)
		return -errno;
	if (create && mkdirat(dfd, dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	fd = openat(dfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static void copy_str(char *dst, size_t n, const char *s)
{
	snprintf(dst, n, "%s", s ? s : "");
}

static int state_read(const char *state_dir, const char *dir, const char *job,
		      struct kl_daemon_run *ret)
{
	_cleanup_buf_ struct kl_buf text = KL_BUF_INIT(1u << 16);
	_cleanup_close_ int dfd = -1;
	_cleanup_json_ json_t *root = NULL;
	char name[128];
	json_t *v;
	int r;

	memset(ret, 0, sizeof(*ret));
	dfd = jobs_dir(state_dir, dir, false);
	if (dfd == -ENOENT)
		return 0;
	if (dfd < 0)
		return dfd;
	snprintf(name, sizeof(name), "%s.json", job);
	r = kl_fs_read_all(dfd, name, text.max, &text);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	root = json_loadb((const char *)text.data, text.len, 0, NULL);
	if (!json_is_object(root))
		return -KL_ECORRUPT;
	ret->start = json_integer_value(json_object_get(root, "start"));
	ret->end = json_integer_value(json_object_get(root, "end"));
	ret->duration = json_number_value(json_object_get(root, "duration_seconds"));
	ret->success = json_is_true(json_object_get(root, "success"));
	ret->last_success = json_integer_value(json_object_get(root, "last_success"));
	ret->snapshot_time = json_number_value(json_object_get(root, "snapshot_time"));
	v = json_object_get(root, "snapshot_id");
	copy_str(ret->snapshot, sizeof(ret->snapshot), json_string_value(v));
	v = json_object_get(root, "error");
	copy_str(ret->error, sizeof(ret->error), json_string_value(v));
	ret->rto = json_number_value(json_object_get(root, "rto_seconds"));
	ret->sample = (unsigned)json_integer_value(json_object_get(root, "sample_percent"));
	ret->bytes = (uint64_t)json_integer_value(json_object_get(root, "bytes"));
	ret->recorded = json_is_true(json_object_get(root, "recorded"));
	return 0;
}

static int state_write(const char *state_dir, const char *dir, const char *job,
		       const struct kl_daemon_run *run)
{
	_cleanup_json_ json_t *root = NULL;
	_cleanup_close_ int dfd = -1;
	char name[128], *text;
	int r;

	root = json_pack("{s:I,s:I,s:f,s:b,s:s?,s:s?,s:I,s:f}", "start", (json_int_t)run->start,
			 "end", (json_int_t)run->end, "duration_seconds", run->duration, "success",
			 run->success, "snapshot_id", run->snapshot[0] ? run->snapshot : NULL,
			 "error", run->error[0] ? run->error : NULL, "last_success",
			 (json_int_t)run->last_success, "snapshot_time", run->snapshot_time);
	if (!root)
		return -ENOMEM;
	if (!strcmp(dir, "drills") &&
	    json_object_update_new(root, json_pack("{s:f,s:i,s:I,s:b}", "rto_seconds", run->rto,
						   "sample_percent", (int)run->sample, "bytes",
						   (json_int_t)run->bytes, "recorded",
						   run->recorded)) < 0)
		return -ENOMEM;
	dfd = jobs_dir(state_dir, dir, true);
	if (dfd < 0)
		return dfd;
	text = json_dumps(root, JSON_SORT_KEYS);
	if (!text)
		return -ENOMEM;
	snprintf(name, sizeof(name), "%s.json", job);
	r = kl_fs_write_atomic(dfd, name, text, strlen(text), 0644, 0);
	free(text); /* jansson's own allocation */
	return r;
}

int kl_daemon_state_read(const char *state_dir, const char *job, struct kl_daemon_run *ret)
{
	return state_read(state_dir, "jobs", job, ret);
}

int kl_daemon_state_write(const char *state_dir, const char *job, const struct kl_daemon_run *run)
{
	return state_write(state_dir, "jobs", job, run);
}

int kl_daemon_drill_state_read(const char *state_dir, const char *job, struct kl_daemon_run *ret)
{
	return state_read(state_dir, "drills", job, ret);
}

int kl_daemon_drill_state_write(const char *state_dir, const char *job,
				const struct kl_daemon_run *run)
{
	return state_write(state_dir, "drills", job, run);
}

int kl_daemon_prune_state_read(const char *state_dir, const char *repo, struct kl_daemon_run *ret)
{
	return state_read(state_dir, "prune", repo, ret);
}

int kl_daemon_prune_state_write(const char *state_dir, const char *repo,
				const struct kl_daemon_run *run)
{
	return state_write(state_dir, "prune", repo, run);
}
