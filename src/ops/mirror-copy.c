/*
 * The connections of keel mirror: threads that copy, replace and verify
 * objects of one type, each checked against its name (docs/MIRROR.md),
 * and the token bucket that limits the bytes they write.
 */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "mirror-internal.h"

/* packs are about 16 MiB; the cap only bounds what a hostile store makes us hold */
#define OBJECT_MAX ((size_t)1 << 31)

struct pool {
	struct kl_mrun *run;
	enum kl_obj_type t;
	const struct kl_mjob *jobs;
	size_t n, next;
};

static void sleep_ns(int64_t ns)
{
	struct timespec ts = {ns / KL_NSEC_PER_SEC, ns % KL_NSEC_PER_SEC};

	while (nanosleep(&ts, &ts) < 0)
		;
}

/*
 * Takes n bytes from the bucket, which fills at rate a second up to one
 * second's worth; an object larger than that runs the bucket into debt,
 * and its writer waits until the debt is paid, so the average holds.
 */
static void rate_take(struct kl_mrate *b, uint64_t n)
{
	int64_t now, wait = 0;

	if (!b->rate)
		return;
	pthread_mutex_lock(&b->lock);
	now = kl_time_mono_ns();
	if (b->last_ns)
		b->tokens += (double)(now - b->last_ns) * (double)b->rate / KL_NSEC_PER_SEC;
	if (!b->last_ns || b->tokens > (double)b->rate)
		b->tokens = b->last_ns ? (double)b->rate : 0;
	b->last_ns = now;
	b->tokens -= (double)n;
	if (b->tokens < 0)
		wait = (int64_t)(-b->tokens * KL_NSEC_PER_SEC / (double)b->rate);
	pthread_mutex_unlock(&b->lock);
	if (wait > 0)
		sleep_ns(wait);
}

static void warn(struct kl_mrun *run, enum kl_obj_type t, const char *name, int err,
		 const char *what)
{
	const struct kl_report *rep = &run->o->report;
	char path[64 + KL_MIRROR_NAME_LEN];

	snprintf(path, sizeof(path), "%s/%s", kl_repo_type_name(t), name);
	if (rep->warn) {
		pthread_mutex_lock(&run->lock);
		rep->warn(rep->ud, path, err, what);
		pthread_mutex_unlock(&run->lock);
	}
}

/* kl_repo_fail() from a connection: the detail of r is shared */
__attribute__((format(printf, 4, 5))) static int fail(struct kl_mrun *run, struct kl_repo *r,
						      int rc, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&run->lock);
	rc = kl_repo_fail(r, rc, "%s", msg);
	pthread_mutex_unlock(&run->lock);
	return rc;
}

static void clear_err(struct kl_mrun *run, struct kl_repo *r)
{
	pthread_mutex_lock(&run->lock);
	kl_repo_clear_err(r);
	pthread_mutex_unlock(&run->lock);
}

/* progress() a few times a second: what was written (copied and repaired) */
static void progress_locked(struct kl_mrun *run)
{
	const struct kl_mirror_stats *st = run->st;
	struct kl_progress p = {0};
	int64_t now;

	if (!run->o->report.progress)
		return;
	now = kl_time_mono_ns();
	if (now - run->last_progress_ns < KL_NSEC_PER_SEC / 4)
		return;
	run->last_progress_ns = now;
	p.files_done = st->copied.objects + st->repaired.objects;
	p.bytes_done = st->copied.bytes + st->repaired.bytes;
	p.errors = st->source_damaged;
	run->o->report.progress(run->o->report.ud, &p);
}

static void count(struct kl_mrun *run, struct kl_mirror_count *c, uint64_t bytes)
{
	pthread_mutex_lock(&run->lock);
	c->objects++;
	c->bytes += bytes;
	progress_locked(run);
	pthread_mutex_unlock(&run->lock);
}

/* DEST's copy as written: its size, and with --verify its hash, read back. */
static int check_written(struct kl_mrun *run, enum kl_obj_type t, const struct kl_mobj *obj,
			 struct kl_buf *buf)
{
	uint64_t size = 0;
	int rc;

	rc = kl_repo_stat(run->dst, t, obj->name, &size);
	if (rc < 0)
		return fail(run, run->dst, rc, "cannot check %s/%s in the copy",
			    kl_repo_type_name(t), obj->name);
	if (size != obj->size) {
		warn(run, t, obj->name, 0, "the copy stored a different size");
		return fail(run, run->dst, -EIO, "%s/%s: the copy stored %llu bytes of %llu",
			    kl_repo_type_name(t), obj->name, (unsigned long long)size,
			    (unsigned long long)obj->size);
	}
	if (!run->o->verify)
		return 0;
	rc = kl_mirror_read_checked(run->dst, t, obj->name, buf);
	if (rc == 0)
		return fail(run, run->dst, -EIO, "%s/%s reads back different bytes",
			    kl_repo_type_name(t), obj->name);
	return rc < 0 ? fail(run, run->dst, rc, "cannot read %s/%s back", kl_repo_type_name(t),
			     obj->name)
		      : 0;
}

/* Reads the object from SOURCE and writes it to DEST. */
static int copy_one(struct kl_mrun *run, enum kl_obj_type t, const struct kl_mjob *j,
		    struct kl_buf *buf)
{
	const struct kl_mobj *obj = j->obj;
	int rc;

	if (run->o->dry_run) {
		count(run, j->kind == KL_MJOB_REPLACE ? &run->st->repaired : &run->st->copied,
		      obj->size);
		return 0;
	}
	rc = kl_mirror_read_checked(run->src, t, obj->name, buf);
	/* damage is what reads the same twice: a glitch of the storage or the wire is not */
	if (rc == 0)
		rc = kl_mirror_read_checked(run->src, t, obj->name, buf);
	if (rc == -ENOENT) {
		/* forget or prune removed it since the listing */
		pthread_mutex_lock(&run->lock);
		run->st->vanished++;
		if (t == KL_OBJ_DATA || t == KL_OBJ_INDEX)
			run->unstable = true;
		pthread_mutex_unlock(&run->lock);
		clear_err(run, run->src);
		return 0;
	}
	if (rc < 0)
		return fail(run, run->src, rc, "cannot read %s/%s", kl_repo_type_name(t),
			    obj->name);
	if (rc == 0) {
		warn(run, t, obj->name, 0,
		     "damaged in the source (its content does not match its name): not copied");
		pthread_mutex_lock(&run->lock);
		run->st->source_damaged++;
		run->src_error = true;
		pthread_mutex_unlock(&run->lock);
		return 0;
	}
	if (j->kind == KL_MJOB_REPLACE) {
		rc = kl_repo_delete(run->dst, t, obj->name);
		if (rc < 0 && rc != -ENOENT)
			return fail(run, run->dst, rc, "cannot replace damaged %s/%s",
				    kl_repo_type_name(t), obj->name);
	}
	rate_take(&run->rate, buf->len);
	rc = kl_repo_put_raw(run->dst, t, obj->name, buf->data, buf->len);
	if (rc == -EEXIST) /* another mirror run wrote it meanwhile: checked below */
		rc = 0;
	if (rc < 0)
		return fail(run, run->dst, rc, "cannot write %s/%s", kl_repo_type_name(t),
			    obj->name);
	rc = check_written(run, t, obj, buf);
	if (rc < 0)
		return rc;
	count(run, j->kind == KL_MJOB_REPLACE ? &run->st->repaired : &run->st->copied, obj->size);
	return 0;
}

/* --verify of an object DEST has with the right size: its hash, read back. */
static int verify_one(struct kl_mrun *run, enum kl_obj_type t, const struct kl_mjob *j,
		      struct kl_buf *buf)
{
	struct kl_mjob repl = {KL_MJOB_REPLACE, j->obj};
	int rc;

	rc = kl_mirror_read_checked(run->dst, t, j->obj->name, buf);
	if (rc < 0 && rc != -ENOENT)
		return fail(run, run->dst, rc, "cannot read %s/%s in the copy",
			    kl_repo_type_name(t), j->obj->name);
	if (rc > 0) {
		count(run, &run->st->skipped, j->obj->size);
		return 0;
	}
	warn(run, t, j->obj->name, 0,
	     rc == -ENOENT ? "missing in the copy: copied again"
			   : "damaged in the copy (its content does not match its name): "
			     "copied again");
	clear_err(run, run->dst);
	return copy_one(run, t, &repl, buf);
}

static void *worker(void *arg)
{
	struct pool *p = arg;
	struct kl_mrun *run = p->run;
	_cleanup_buf_ struct kl_buf buf = KL_BUF_INIT(OBJECT_MAX);

	for (;;) {
		const struct kl_mjob *j;
		int rc;

		pthread_mutex_lock(&run->lock);
		j = run->error || p->next == p->n ? NULL : &p->jobs[p->next++];
		pthread_mutex_unlock(&run->lock);
		if (!j)
			break;
		if (j->kind == KL_MJOB_VERIFY)
			rc = verify_one(run, p->t, j, &buf);
		else
			rc = copy_one(run, p->t, j, &buf);
		if (rc < 0) {
			pthread_mutex_lock(&run->lock);
			if (!run->error)
				run->error = rc;
			pthread_mutex_unlock(&run->lock);
		}
		kl_test_point("mirror-object");
	}
	return NULL;
}

int kl_mirror_run_jobs(struct kl_mrun *run, enum kl_obj_type t, const struct kl_mjob *jobs,
		       size_t n)
{
	struct pool p = {run, t, jobs, n, 0};
	pthread_t th[KL_MIRROR_CONNECTIONS_MAX];
	unsigned k = run->o->connections, started = 0;

	if (!n)
		return run->error;
	if (k < 1)
		k = 1;
	if (k > KL_MIRROR_CONNECTIONS_MAX)
		k = KL_MIRROR_CONNECTIONS_MAX;
	if (k > n)
		k = (unsigned)n;
	/* this thread is one of the connections */
	for (unsigned i = 1; i < k; i++) {
		if (pthread_create(&th[i], NULL, worker, &p))
			break;
		started = i;
	}
	worker(&p);
	for (unsigned i = 1; i <= started; i++)
		pthread_join(th[i], NULL);
	return run->error;
}
