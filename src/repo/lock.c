/*
 * Repository locks: an object in locks/ per running keel process, rewritten
 * every few minutes as a heartbeat by a background thread. Shared locks
 * (backup, restore, check, forget) coexist with each other and with one
 * prune; an exclusive lock (index rebuild) excludes everything.
 *
 * Locks are what makes a concurrent prune safe: a writer takes its lock
 * before it reads the index, and a prune deletes a pack only once every
 * lock that was alive when it condemned the pack is gone (docs/FORMAT.md
 * section 7). A writer whose heartbeat has failed for longer than the
 * stale age may have been declared dead by a prune, so it must not write
 * a snapshot any more: kl_lock_check() says so.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "repo-internal.h"

/* how long kl_repo_list_locks() keeps listing while locks vanish before being read */
#define LIST_PATIENCE_NS (60 * KL_NSEC_PER_SEC)

struct kl_lock {
	struct kl_repo *r;
	struct kl_lock_info info;
	char name[2 * KL_ID_LEN + 1]; /* current object, changes on every refresh */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	bool thread_started, stopping;
	int64_t last_ok_ns; /* when the lock object last became durable */
	int refresh_error;
	bool lost; /* our object vanished: someone ran keel unlock */
	/*
	 * An object of our session may be stored under a name we do not hold:
	 * a write that failed after its rename (a directory fsync, a reply
	 * lost), or an old object whose deletion failed. Unlocking then
	 * looks for every object of our session.
	 */
	bool stray;
};

static int64_t refresh_interval_ns(void)
{
	return KL_LOCK_REFRESH_SEC * KL_NSEC_PER_SEC;
}

int kl_lock_self_host(char *out, size_t n)
{
	if (gethostname(out, n) < 0)
		return -errno;
	out[n - 1] = 0;
	return 0;
}

bool kl_lock_alive(const struct kl_lock_info *l, int64_t now_ns)
{
	char host[256];

	if (now_ns - l->refreshed_ns > KL_LOCK_STALE_SEC * KL_NSEC_PER_SEC)
		return false;
	/* on our own host a dead pid settles it at once (after a crash or kill -9) */
	if (l->host && kl_lock_self_host(host, sizeof(host)) >= 0 && !strcmp(host, l->host) &&
	    l->pid && kill((pid_t)l->pid, 0) < 0 && errno == ESRCH)
		return false;
	return true;
}

static bool conflicts(uint32_t a, uint32_t b)
{
	if (a == KL_LOCK_EXCLUSIVE || b == KL_LOCK_EXCLUSIVE)
		return true;
	return a == KL_LOCK_PRUNE && b == KL_LOCK_PRUNE;
}

static int write_lock(struct kl_lock *l, char name_ret[2 * KL_ID_LEN + 1])
{
	_cleanup_buf_ struct kl_buf enc = KL_BUF_INIT(1u << 20);
	struct kl_id id;
	int rc;

	rc = kl_lock_info_encode(&l->info, &enc);
	if (rc >= 0)
		rc = kl_repo_put_object(l->r, KL_OBJ_LOCK, KL_KIND_LOCK, enc.data, enc.len, &id);
	if (rc >= 0)
		kl_id_hex(&id, name_ret);
	return rc;
}

struct listed_lock {
	char name[2 * KL_ID_LEN + 1];
	struct kl_lock_info info;
};

struct list_ctx {
	struct kl_repo *r;
	struct listed_lock *v; /* locks read */
	size_t n, cap;
	char (*gone)[2 * KL_ID_LEN + 1]; /* names that vanished before being read */
	size_t n_gone, cap_gone;
	bool vanished; /* in this pass */
};

static bool listed_before(const struct list_ctx *c, const char *name)
{
	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->v[i].name, name))
			return true;
	for (size_t i = 0; i < c->n_gone; i++)
		if (!strcmp(c->gone[i], name))
			return true;
	return false;
}

static int list_one(const char *name, uint64_t size, void *ud)
{
	struct list_ctx *c = ud;
	_cleanup_buf_ struct kl_buf raw = KL_BUF_INIT(1u << 20);
	struct listed_lock *l;
	int rc;

	(void)size;
	if (strlen(name) >= sizeof(l->name) || listed_before(c, name))
		return 0; /* not ours, or read in an earlier pass */
	if (kl_array_grow(&c->v, &c->cap, c->n, sizeof(*c->v), 16) < 0)
		return -ENOMEM;
	l = &c->v[c->n];
	rc = kl_repo_get_object(c->r, KL_OBJ_LOCK, KL_KIND_LOCK, name, &raw);
	if (rc == -KL_ENOTFOUND) {
		/* released, or refreshed under a new name this listing may not hold */
		kl_repo_err_clear_(c->r);
		if (kl_array_grow(&c->gone, &c->cap_gone, c->n_gone, sizeof(*c->gone), 16) < 0)
			return -ENOMEM;
		snprintf(c->gone[c->n_gone++], sizeof(*c->gone), "%s", name);
		c->vanished = true;
		return 0;
	}
	if (rc == -KL_ECORRUPT ||
	    (rc >= 0 && kl_lock_info_decode(raw.data, raw.len, &l->info) < 0)) {
		/* not a lock we can read: it cannot hold anything back */
		kl_repo_err_clear_(c->r);
		return 0;
	}
	if (rc < 0)
		return rc;
	snprintf(l->name, sizeof(l->name), "%s", name);
	c->n++;
	return 0;
}

static void list_release(struct list_ctx *c)
{
	for (size_t i = 0; i < c->n; i++)
		kl_lock_info_release(&c->v[i].info);
	kl_free(c->v);
	kl_free(c->gone);
}

/*
 * A lock that vanished between the listing and its reading may have been
 * refreshed: its new object (written before the old one is deleted) is
 * alive, and a prune that missed it would delete what its owner uses. So
 * the listing is taken again, reading only names not seen yet, until a
 * pass finds nothing vanished. Locks read once count even if released
 * since: that errs on the safe side for prune and for conflicts.
 */
int kl_repo_list_locks(struct kl_repo *r,
		       int (*cb)(const char *name, const struct kl_lock_info *info, bool alive,
				 void *ud),
		       void *ud)
{
	struct list_ctx c = {.r = r};
	int64_t now, start = kl_time_mono_ns();
	int rc;

	/*
	 * Later passes read only names new since the one before, so what
	 * vanishes there was a lock that lived about one read: short-lived
	 * lockers, as when many hosts' cron jobs start at once and back off
	 * from one another. Such a burst is waited out for a while (no fixed
	 * number of passes, which a burst outlasts), calmly after a few.
	 */
	for (int pass = 0;; pass++) {
		c.vanished = false;
		rc = r->be->ops->list(r->be, KL_OBJ_LOCK, list_one, &c);
		if (rc < 0 || !c.vanished || kl_time_mono_ns() - start > LIST_PATIENCE_NS)
			break;
		if (pass >= 4)
			nanosleep(&(struct timespec){.tv_nsec = 200 * KL_NSEC_PER_MSEC}, NULL);
	}
	if (rc >= 0 && c.vanished)
		rc = kl_repo_fail(r, -EAGAIN, "lock objects keep vanishing while being read");
	now = kl_time_now_ns();
	for (size_t i = 0; rc >= 0 && i < c.n; i++)
		rc = cb(c.v[i].name, &c.v[i].info, kl_lock_alive(&c.v[i].info, now), ud);
	list_release(&c);
	return rc;
}

struct conflict_ctx {
	struct kl_lock *self;
	struct kl_lock_info other;
	bool found;
};

static int find_conflict(const char *name, const struct kl_lock_info *info, bool alive, void *ud)
{
	struct conflict_ctx *c = ud;

	(void)name;
	if (c->found || !alive || kl_id_eq(&info->session, &c->self->info.session))
		return 0;
	if (!conflicts(c->self->info.kind, info->kind))
		return 0;
	c->found = true;
	c->other = *info;
	c->other.host = kl_strdup(info->host ? info->host : "?");
	c->other.user = NULL;
	c->other.command = kl_strdup(info->command ? info->command : "?");
	return 0;
}

static void *refresh_main(void *arg)
{
	struct kl_lock *l = arg;

	pthread_mutex_lock(&l->mu);
	while (!l->stopping) {
		struct timespec until;
		int64_t due = kl_time_now_ns() + refresh_interval_ns();
		char fresh[2 * KL_ID_LEN + 1], old[2 * KL_ID_LEN + 1];
		int rc;

		until.tv_sec = due / KL_NSEC_PER_SEC;
		until.tv_nsec = due % KL_NSEC_PER_SEC;
		while (!l->stopping && kl_time_now_ns() < due)
			pthread_cond_timedwait(&l->cv, &l->mu, &until);
		if (l->stopping)
			break;
		memcpy(old, l->name, sizeof(old));
		l->info.refreshed_ns = kl_time_now_ns();
		pthread_mutex_unlock(&l->mu);
		/* the new object first, so that the lock never disappears between the two */
		rc = write_lock(l, fresh);
		if (rc >= 0) {
			int d = l->r->be->ops->del(l->r->be, KL_OBJ_LOCK, old);

			pthread_mutex_lock(&l->mu);
			if (d < 0 && d != -ENOENT)
				l->stray = true;
			memcpy(l->name, fresh, sizeof(fresh));
			if (d == -ENOENT)
				l->lost =
					true; /* removed by keel unlock: we may be declared dead */
			else
				l->last_ok_ns = l->info.refreshed_ns;
			l->refresh_error = 0;
			continue;
		}
		pthread_mutex_lock(&l->mu);
		l->refresh_error = rc;
		l->stray = true;
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

static void set_lock(struct kl_repo *r, struct kl_lock *l)
{
	pthread_mutex_lock(&r->lock_mu);
	r->lock = l;
	pthread_mutex_unlock(&r->lock_mu);
}

int kl_repo_lock(struct kl_repo *r, enum kl_lock_kind kind, const char *command)
{
	struct kl_lock *l;
	struct conflict_ctx c = {0};
	char host[256];
	int rc;

	if (r->lock)
		return -EINVAL;
	l = kl_calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->r = r;
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv, NULL);
	kl_random(l->info.session.b, KL_ID_LEN);
	l->info.kind = kind;
	if (kl_lock_self_host(host, sizeof(host)) >= 0)
		l->info.host = kl_strdup(host);
	l->info.user = getenv("USER") ? kl_strdup(getenv("USER")) : NULL;
	l->info.command = command ? kl_strdup(command) : NULL;
	l->info.pid = (uint32_t)getpid();
	l->info.created_ns = l->info.refreshed_ns = kl_time_now_ns();
	rc = write_lock(l, l->name);
	if (rc < 0) {
		/* the object may be stored although its write failed: it must not stay */
		struct kl_err keep = kl_repo_err_get_(r);

		l->stray = true;
		set_lock(r, l);
		kl_repo_err_clear_(r);
		kl_repo_unlock_repo(r);
		kl_repo_err_set_(r, &keep);
		return rc;
	}
	l->last_ok_ns = l->info.refreshed_ns;
	set_lock(r, l);
	/* ours is visible before we look: of two racing lockers at least one sees the other */
	c.self = l;
	rc = kl_repo_list_locks(r, find_conflict, &c);
	if (rc >= 0 && c.found) {
		int64_t age = (kl_time_now_ns() - c.other.created_ns) / KL_NSEC_PER_SEC;

		rc = kl_repo_fail(r, -KL_ELOCKED,
				  "repository is locked by %s (pid %u on %s, %s lock, for %llds); "
				  "if no keel runs there any more, run 'keel unlock'",
				  c.other.command, c.other.pid, c.other.host,
				  c.other.kind == KL_LOCK_EXCLUSIVE ? "exclusive"
				  : c.other.kind == KL_LOCK_PRUNE   ? "prune"
								    : "shared",
				  (long long)age);
		kl_free(c.other.host);
		kl_free(c.other.command);
	}
	if (rc < 0) {
		struct kl_err keep = kl_repo_err_get_(r);

		kl_repo_unlock_repo(r);
		kl_repo_err_set_(r, &keep);
		return rc;
	}
	if (pthread_create(&l->thread, NULL, refresh_main, l) == 0)
		l->thread_started = true;
	return 0;
}

int kl_lock_check(struct kl_repo *r)
{
	struct kl_lock *l = r->lock;
	uint64_t size;
	bool lost;
	int64_t last;
	char name[2 * KL_ID_LEN + 1];

	if (!l)
		return 0;
	pthread_mutex_lock(&l->mu);
	lost = l->lost;
	last = l->last_ok_ns;
	memcpy(name, l->name, sizeof(name));
	pthread_mutex_unlock(&l->mu);
	/* a margin below the stale age, for clocks that disagree a little */
	if (!lost && kl_time_now_ns() - last > (KL_LOCK_STALE_SEC - 300) * KL_NSEC_PER_SEC)
		lost = true;
	if (!lost && r->be->ops->stat(r->be, KL_OBJ_LOCK, name, &size) == -ENOENT)
		lost = true;
	if (lost)
		return kl_repo_fail(
			r, -KL_ELOCKED,
			"this process lost its repository lock (removed, or not refreshed "
			"in time): it stops before writing anything that a prune might have "
			"made unsafe");
	return 0;
}

void kl_lock_session(struct kl_repo *r, struct kl_id *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (r->lock)
		*ret = r->lock->info.session;
}

struct sweep_ctx {
	struct kl_repo *r;
	const struct kl_id *session;
	int rc;
	char left[2 * KL_ID_LEN + 1]; /* one that stays, for the message */
};

static int sweep_one(const char *name, const struct kl_lock_info *info, bool alive, void *ud)
{
	struct sweep_ctx *c = ud;
	int d;

	(void)alive;
	if (!kl_id_eq(&info->session, c->session))
		return 0;
	d = c->r->be->ops->del(c->r->be, KL_OBJ_LOCK, name);
	if (d < 0 && d != -ENOENT && c->rc >= 0) {
		c->rc = d;
		snprintf(c->left, sizeof(c->left), "%s", name);
	}
	return 0;
}

/*
 * Deletes our lock object and, where one may have strayed (or this
 * deletion failed), every object of our session. Returns 0 when none is
 * left, else the error, with the name of a lock left behind in the
 * repository's error detail: a leaked prune lock blocks prune on other
 * hosts until it is stale, so it must never go unsaid.
 */
static int remove_objects(struct kl_repo *r, struct kl_lock *l)
{
	struct sweep_ctx c = {.r = r, .session = &l->info.session};
	int rc = 0;

	if (l->name[0]) {
		rc = r->be->ops->del(r->be, KL_OBJ_LOCK, l->name);
		if (rc == -ENOENT)
			rc = 0;
		if (rc < 0)
			snprintf(c.left, sizeof(c.left), "%s", l->name);
	}
	if (rc >= 0 && !l->stray)
		return 0;
	/* a failed deletion may have removed the object all the same (a lost reply) */
	rc = kl_repo_list_locks(r, sweep_one, &c);
	if (rc < 0)
		c.rc = rc;
	if (c.rc < 0 && !c.left[0])
		snprintf(c.left, sizeof(c.left), "%s", l->name[0] ? l->name : "?");
	if (c.rc >= 0)
		return 0;
	kl_repo_err_clear_(r);
	return kl_repo_fail(r, c.rc, "cannot remove this process's lock locks/%s (%s)", c.left,
			    kl_strerror(c.rc));
}

int kl_repo_unlock_repo(struct kl_repo *r)
{
	struct kl_lock *l = r ? r->lock : NULL;
	int rc;

	if (!l)
		return 0;
	set_lock(r, NULL); /* kl_repo_lock_abandon() no longer sees it */
	if (l->thread_started) {
		pthread_mutex_lock(&l->mu);
		l->stopping = true;
		pthread_cond_signal(&l->cv);
		pthread_mutex_unlock(&l->mu);
		pthread_join(l->thread, NULL);
	}
	rc = remove_objects(r, l);
	kl_lock_info_release(&l->info);
	pthread_mutex_destroy(&l->mu);
	pthread_cond_destroy(&l->cv);
	kl_free(l);
	return rc;
}

int kl_repo_lock_abandon(struct kl_repo *r)
{
	char name[2 * KL_ID_LEN + 1];
	struct kl_lock *l;
	int rc = 0;

	pthread_mutex_lock(&r->lock_mu);
	l = r->lock;
	if (l) {
		pthread_mutex_lock(&l->mu);
		l->stopping = true; /* no new object from the heartbeat */
		memcpy(name, l->name, sizeof(name));
		pthread_mutex_unlock(&l->mu);
		if (name[0])
			rc = r->be->ops->del(r->be, KL_OBJ_LOCK, name);
	}
	pthread_mutex_unlock(&r->lock_mu);
	return rc == -ENOENT ? 0 : rc;
}
