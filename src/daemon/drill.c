/*
 * A restore drill (docs/DAEMON.md, "Drills"), in its own process like a
 * run: `keel snapshots` finds the job's newest snapshot, `keel restore
 * --verify` restores it (or a sample of its files) into a scratch
 * directory and reads every byte back against the repository, the time
 * it took is the RTO, the scratch directory is removed, and the result
 * is recorded as a small tagged snapshot in the repository (so `keel
 * status` on any machine reads it) and in STATE-DIR/drills/JOB.json.
 * Children of the keel binary, for the reasons run.c gives.
 */
#define _XOPEN_SOURCE 700
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "drill-internal.h"
#include "keel/fs.h"

/* drill records kept per job; older ones are forgotten after each drill */
#define RECORDS_KEPT "10"
/* a sample names its files in restore's argv: at most this many */
#define SAMPLE_FILES_MAX 1000

void kl_daemon_drill_fail(struct kl_drill *d, const char *fmt, ...)
{
	va_list ap;

	if (d->ret->error[0])
		return;
	va_start(ap, fmt);
	vsnprintf(d->ret->error, sizeof(d->ret->error), fmt, ap);
	va_end(ap);
}

int kl_daemon_drill_capture(struct kl_drill *d, struct kl_daemon_argv *a, int *out_fd)
{
	int fd = kl_daemon_open_log(d->o->state_dir, "drills", d->j->name, "out"), st;

	if (fd < 0)
		return fd;
	st = kl_daemon_spawn(a->v, -1, fd, d->log_fd, d->j->name);
	if (st < 0) {
		close(fd);
		return st;
	}
	*out_fd = fd;
	return st;
}

json_t *kl_daemon_drill_load_fd(int fd, size_t flags)
{
	FILE *f;
	json_t *j;

	lseek(fd, 0, SEEK_SET);
	f = fdopen(dup(fd), "r");
	if (!f)
		return NULL;
	j = json_loadf(f, flags, NULL);
	fclose(f);
	return j;
}

/* Whether a snapshot of `keel snapshots --json` is a drill's record. */
static bool is_record(json_t *snap)
{
	json_t *tags = json_object_get(snap, "tags"), *t;
	size_t i;

	json_array_foreach(tags, i, t) if (json_string_value(t) &&
					   !strcmp(json_string_value(t), KL_DRILL_TAG)) return true;
	return false;
}

/*
 * The newest snapshot of the job's host and paths into d->ret->snapshot;
 * of a mirror's copy, the newest files snapshot of any host that is no
 * drill's record. Returns 1, 0 (none) or -1 (failed, the error set).
 */
int kl_daemon_drill_newest(struct kl_drill *d)
{
	struct kl_daemon_argv a = {0};
	_cleanup_close_ int fd = -1;
	json_t *list, *last = NULL;
	bool mirror = d->j->kind == KL_JOB_MIRROR;
	int st;

	kl_daemon_argv_repo(&a, d->o, d->src, "snapshots", mirror ? NULL : d->host);
	kl_daemon_argv_add(&a, "--json");
	for (size_t i = 0; !mirror && i < d->j->n_paths && i < 1024; i++) {
		kl_daemon_argv_add(&a, "--path");
		kl_daemon_argv_add(&a, d->j->paths[i]);
	}
	st = kl_daemon_drill_capture(d, &a, &fd);
	/* 10: no repository: a mirror's copy before its first run, nothing to drill yet */
	if (st == 10 && mirror)
		return 0;
	if (st != 0) {
		char line[200] = "";

		kl_daemon_last_line(d->log_fd, line, sizeof(line));
		kl_daemon_drill_fail(d, "keel snapshots exited with %d: %s", st, line);
		return -1;
	}
	list = kl_daemon_drill_load_fd(fd, 0);
	/* sorted oldest first */
	for (size_t i = json_is_array(list) ? json_array_size(list) : 0; i-- > 0 && !last;) {
		json_t *s = json_array_get(list, i);
		const char *kind = json_string_value(json_object_get(s, "kind"));

		if (!mirror || (kind && !strcmp(kind, "files") && !is_record(s)))
			last = s;
	}
	if (!last || !json_string_value(json_object_get(last, "id"))) {
		json_decref(list);
		return 0; /* nothing to drill yet: not a failure */
	}
	snprintf(d->ret->snapshot, sizeof(d->ret->snapshot), "%s",
		 json_string_value(json_object_get(last, "id")));
	d->bytes_total = (uint64_t)json_integer_value(
		json_object_get(json_object_get(last, "summary"), "bytes_total"));
	json_decref(list);
	return 1;
}

/* An include pattern matching exactly path: anchored, glob characters escaped. */
static char *literal_pattern(const char *path)
{
	size_t n = strlen(path);
	char *p = kl_malloc(2 * n + 1), *q = p;

	if (!p)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (strchr("*?[]\\", path[i]))
			*q++ = '\\';
		*q++ = path[i];
	}
	*q = 0;
	return p;
}

static int push(struct kl_drill *d, char *pat)
{
	char **v = kl_realloc(d->includes, (d->n_includes + 1) * sizeof(*v));

	if (!v) {
		kl_free(pat);
		return -ENOMEM;
	}
	d->includes = v;
	d->includes[d->n_includes++] = pat;
	return 0;
}

/*
 * Picks the sample: of the snapshot's files in listing order, every one
 * where the running share crosses a whole percent step, so P% of the
 * files spread over the whole tree (deterministic: the next drill of the
 * same snapshot restores the same files).
 */
static int pick_sample(struct kl_drill *d)
{
	struct kl_daemon_argv a = {0};
	_cleanup_close_ int fd = -1;
	FILE *f;
	char *line = NULL;
	size_t cap = 0, files = 0;
	int st, r = 0;

	d->bytes_total = 0;
	kl_daemon_argv_repo(&a, d->o, d->src, "ls", NULL);
	kl_daemon_argv_add(&a, "--json");
	kl_daemon_argv_add(&a, d->ret->snapshot);
	st = kl_daemon_drill_capture(d, &a, &fd);
	if (st != 0) {
		kl_daemon_drill_fail(d, "keel ls exited with %d", st);
		return -1;
	}
	lseek(fd, 0, SEEK_SET);
	f = fdopen(dup(fd), "r");
	if (!f)
		return -errno;
	while (r >= 0 && getline(&line, &cap, f) > 0) {
		json_t *node = json_loads(line, 0, NULL);
		const char *type = json_string_value(json_object_get(node, "type"));
		const char *path = json_string_value(json_object_get(node, "path"));
		uint64_t size = (uint64_t)json_integer_value(json_object_get(node, "size"));

		if (type && path && !strcmp(type, "file")) {
			d->bytes_total += size;
			if ((files + 1) * d->dr->sample / 100 > files * d->dr->sample / 100 &&
			    d->n_includes < SAMPLE_FILES_MAX) {
				char *pat = literal_pattern(path);

				r = pat ? push(d, pat) : -ENOMEM;
				d->bytes_sample += size;
			}
			files++;
		}
		json_decref(node);
	}
	free(line); /* getline's */
	fclose(f);
	if (r >= 0 && !d->n_includes) {
		kl_daemon_drill_fail(d, "the snapshot has no file to sample");
		return -1;
	}
	return r;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	return (flag == FTW_DP ? rmdir(path) : unlink(path)) < 0 ? -1 : 0;
}

int kl_daemon_drill_scratch(struct kl_drill *d, char *dir, size_t n, mode_t base_mode)
{
	char base[4096];

	if (d->dr->scratch)
		snprintf(base, sizeof(base), "%s", d->dr->scratch);
	else
		snprintf(base, sizeof(base), "%s/drill", d->o->state_dir);
	if (mkdir(base, base_mode) < 0 && errno != EEXIST)
		return kl_daemon_drill_fail(d, "cannot create the scratch directory '%s': %s", base,
					    strerror(errno)),
		       -1;
	snprintf(dir, n, "%s/%s.XXXXXX", base, d->j->name);
	if (!mkdtemp(dir))
		return kl_daemon_drill_fail(d, "cannot create a directory in '%s': %s", base,
					    strerror(errno)),
		       -1;
	return 0;
}

void kl_daemon_drill_rmtree(struct kl_drill *d, const char *dir)
{
	if (nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0 && errno != ENOENT)
		dprintf(d->log_fd, "cannot remove the scratch directory '%s': %s\n", dir,
			strerror(errno));
}

/* Restores into a fresh scratch directory, timed; removes it. */
static int restore(struct kl_drill *d, double *seconds)
{
	char dir[4200];
	struct kl_daemon_argv a = {0};
	int64_t t0;
	int st;

	if (kl_daemon_drill_scratch(d, dir, sizeof(dir), 0700) < 0)
		return -1;
	kl_daemon_argv_repo(&a, d->o, d->src, "restore", NULL);
	kl_daemon_argv_add(&a, "--verify");
	kl_daemon_argv_add(&a, "--no-owner");
	kl_daemon_argv_add(&a, "--target");
	kl_daemon_argv_add(&a, dir);
	for (size_t i = 0; i < d->n_includes; i++) {
		kl_daemon_argv_add(&a, "-i");
		kl_daemon_argv_add(&a, d->includes[i]);
	}
	kl_daemon_argv_add(&a, d->ret->snapshot);
	t0 = kl_time_mono_ns();
	{
		_cleanup_close_ int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);

		st = kl_daemon_spawn(a.v, -1, null_fd < 0 ? d->log_fd : null_fd, d->log_fd,
				     d->j->name);
	}
	*seconds = (double)(kl_time_mono_ns() - t0) / (double)KL_NSEC_PER_SEC;
	kl_daemon_drill_rmtree(d, dir);
	/* 3: all restored, not all as recorded (owners, devices): the data is verified */
	if (st != 0 && st != 3) {
		char line[200] = "";

		kl_daemon_last_line(d->log_fd, line, sizeof(line));
		kl_daemon_drill_fail(d, "keel restore --verify exited with %d: %s", st, line);
		return -1;
	}
	return 0;
}

/* The record as a tagged snapshot of the job's host; older records forgotten. */
static void record(struct kl_drill *d, const struct kl_daemon_drill_record *rec)
{
	_cleanup_buf_ struct kl_buf tags = KL_BUF_INIT(4096);
	struct kl_daemon_argv a = {0};
	char file[128], job_tag[80], *text;
	_cleanup_close_ int in_fd = -1, out_fd = -1;
	json_t *doc;
	int st;

	doc = json_pack("{s:s,s:s,s:s,s:f,s:b,s:i,s:I}", "job", rec->job, "snapshot", rec->snapshot,
			"result", rec->ok ? "ok" : "failed", "seconds", rec->seconds, "estimate",
			rec->sample < 100, "sample_percent", (int)rec->sample, "bytes",
			(json_int_t)rec->bytes);
	text = doc ? json_dumps(doc, JSON_SORT_KEYS) : NULL;
	json_decref(doc);
	in_fd = kl_daemon_open_log(d->o->state_dir, "drills", d->j->name, "record");
	if (!text || in_fd < 0 || kl_fs_write_full(in_fd, text, strlen(text)) < 0 ||
	    kl_daemon_drill_record_tags(rec, &tags) < 0) {
		free(text); /* jansson's */
		dprintf(d->log_fd, "cannot write the drill's record\n");
		return;
	}
	free(text);
	lseek(in_fd, 0, SEEK_SET);
	snprintf(file, sizeof(file), "keel-drill-%s.json", d->j->name);
	kl_daemon_argv_repo(&a, d->o, d->rp, "backup", d->host);
	kl_daemon_argv_add(&a, "--stdin");
	kl_daemon_argv_add(&a, "--stdin-filename");
	kl_daemon_argv_add(&a, file);
	kl_daemon_argv_add(&a, "--tag");
	kl_daemon_argv_add(&a, (const char *)tags.data);
	out_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	st = kl_daemon_spawn(a.v, in_fd, out_fd < 0 ? d->log_fd : out_fd, d->log_fd, d->j->name);
	d->ret->recorded = st == 0;
	if (st != 0) {
		dprintf(d->log_fd, "cannot record the drill in the repository: exit %d\n", st);
		return;
	}
	snprintf(job_tag, sizeof(job_tag), "drill-job=%s", d->j->name);
	memset(&a, 0, sizeof(a));
	kl_daemon_argv_repo(&a, d->o, d->rp, "forget", d->host);
	kl_daemon_argv_add(&a, "--tag");
	kl_daemon_argv_add(&a, job_tag);
	kl_daemon_argv_add(&a, "--group-by");
	kl_daemon_argv_add(&a, "");
	kl_daemon_argv_add(&a, "--keep-last");
	kl_daemon_argv_add(&a, RECORDS_KEPT);
	st = kl_daemon_spawn(a.v, -1, out_fd < 0 ? d->log_fd : out_fd, d->log_fd, d->j->name);
	if (st != 0)
		dprintf(d->log_fd, "cannot forget old drill records: exit %d\n", st);
}

static const struct kl_daemon_job *find_job(const struct kl_daemon_conf *c, const char *name)
{
	for (size_t i = 0; i < c->n_jobs; i++)
		if (!strcmp(c->jobs[i].name, name))
			return &c->jobs[i];
	return NULL;
}

/* The drill by the job's kind: 1 drilled (ok or failed), 0 nothing to drill yet. */
static int drill_kind(struct kl_drill *d, double *seconds)
{
	int r;

	if (d->j->kind == KL_JOB_IMAGE)
		return kl_daemon_drill_image(d, seconds);
	if (d->j->kind == KL_JOB_DB)
		return kl_daemon_drill_db(d, seconds);
	/*
	 * A mirror's copy before its first complete run is no repository, or one
	 * still without its keys: nothing to drill yet.
	 */
	if (d->j->kind == KL_JOB_MIRROR) {
		struct kl_daemon_run run;

		if (kl_daemon_state_read(d->o->state_dir, d->j->name, &run) < 0 ||
		    !run.last_success)
			return 0;
	}
	/* files, command (its output is one file), mirror (the copy's newest) */
	r = kl_daemon_drill_newest(d);
	if (r <= 0)
		return r < 0;
	r = 0;
	if (d->dr->sample && d->dr->sample != 100)
		r = pick_sample(d);
	if (r < 0)
		kl_daemon_drill_fail(d, "cannot pick the sample: %s", kl_strerror(r));
	if (!d->ret->error[0])
		restore(d, seconds);
	return 1;
}

int kl_daemon_drill_job(const struct kl_daemon_opts *o, const struct kl_daemon_conf *c,
			const struct kl_daemon_drill *dr, struct kl_daemon_run *ret)
{
	struct kl_drill d = {.o = o, .dr = dr, .ret = ret, .j = find_job(c, dr->job)};
	struct kl_daemon_drill_record rec = {0};
	struct kl_daemon_repo mirror = {0};
	struct kl_daemon_run prev;
	int64_t t0 = kl_time_mono_ns();
	double seconds = 0;
	int r = 0;

	kl_daemon_drill_state_read(o->state_dir, dr->job, &prev);
	memset(ret, 0, sizeof(*ret));
	ret->start = kl_time_now_ns() / KL_NSEC_PER_SEC;
	ret->last_success = prev.last_success;
	ret->rto = prev.rto;
	ret->sample = prev.sample;
	ret->bytes = prev.bytes;
	if (!d.j)
		return -ENOENT;
	d.rp = d.src = kl_daemon_conf_repo(c, d.j->repository);
	/* a mirror's drill restores from the copy, with the repository's password */
	mirror.location = d.j->destination;
	mirror.password_file = d.rp->password_file;
	if (d.j->kind == KL_JOB_MIRROR)
		d.src = &mirror;
	kl_daemon_job_host(d.j, d.host);
	d.log_fd = kl_daemon_open_log(o->state_dir, "drills", dr->job, "log");
	if (d.log_fd < 0)
		return d.log_fd;
	r = drill_kind(&d, &seconds);
	if (r == 0) {
		close(d.log_fd);
		return 1; /* the job has no snapshot yet: no drill, no record */
	}
	ret->end = kl_time_now_ns() / KL_NSEC_PER_SEC;
	ret->duration = (double)(kl_time_mono_ns() - t0) / (double)KL_NSEC_PER_SEC;
	ret->success = !ret->error[0];
	if (ret->snapshot[0]) {
		snprintf(rec.job, sizeof(rec.job), "%s", dr->job);
		memcpy(rec.snapshot, ret->snapshot, sizeof(rec.snapshot));
		rec.ok = ret->success;
		rec.sample = d.n_includes ? dr->sample : 100;
		rec.seconds = seconds;
		rec.bytes = d.n_includes ? d.bytes_sample : d.bytes_total;
		/* a sample's time scaled to the whole by bytes: restore time follows the data */
		if (d.n_includes && d.bytes_sample)
			rec.seconds = seconds * (double)d.bytes_total / (double)d.bytes_sample;
		else if (d.n_includes)
			rec.seconds = seconds * 100.0 / dr->sample;
		if (ret->success) {
			ret->rto = rec.seconds;
			ret->sample = rec.sample;
			ret->bytes = rec.bytes;
			ret->last_success = ret->end;
		}
		record(&d, &rec);
	}
	for (size_t i = 0; i < d.n_includes; i++)
		kl_free(d.includes[i]);
	kl_free(d.includes);
	close(d.log_fd);
	return kl_daemon_drill_state_write(o->state_dir, dr->job, ret);
}
