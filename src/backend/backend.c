#include <sched.h>
#include <stdio.h>

#include "keel/backend.h"
#include "keel/remote.h"
#include "keel/s3.h"

const char *kl_obj_type_name(enum kl_obj_type t)
{
	static const char *const names[KL_OBJ_TYPES] = {
		[KL_OBJ_CONFIG] = "config", [KL_OBJ_KEY] = "keys",  [KL_OBJ_SNAPSHOT] = "snapshots",
		[KL_OBJ_INDEX] = "index",   [KL_OBJ_DATA] = "data", [KL_OBJ_LOCK] = "locks",
		[KL_OBJ_MIRROR] = "mirror",
	};
	return (unsigned)t < KL_OBJ_TYPES ? names[t] : "?";
}

/* Remote backends get the metadata cache unless the environment turns it off. */
static int with_cache(struct kl_backend *b, struct kl_backend **ret)
{
	_cleanup_free_ char *base = NULL;
	int rc;

	rc = kl_backend_cache_base(&base);
	if (rc < 0) {
		kl_backend_free(b);
		return rc;
	}
	if (!base) {
		*ret = b;
		return 0;
	}
	return kl_backend_cache_new(b, base, ret);
}

int kl_backend_fail(struct kl_backend *b, int r, const char *fmt, ...)
{
	struct kl_backend_err *e;
	char msg[sizeof(e->msg)];
	va_list ap;

	if (!b)
		return r;
	e = &b->err;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	while (__atomic_exchange_n(&e->busy, 1, __ATOMIC_ACQUIRE))
		sched_yield();
	memcpy(e->msg, msg, sizeof(msg));
	e->code = r;
	__atomic_store_n(&e->busy, 0, __ATOMIC_RELEASE);
	return r;
}

static int take_one(struct kl_backend *b, struct kl_err *e)
{
	struct kl_backend_err *be = &b->err;
	char msg[sizeof(be->msg)];
	int code;

	while (__atomic_exchange_n(&be->busy, 1, __ATOMIC_ACQUIRE))
		sched_yield();
	code = be->code;
	memcpy(msg, be->msg, sizeof(msg));
	be->code = 0;
	be->msg[0] = 0;
	__atomic_store_n(&be->busy, 0, __ATOMIC_RELEASE);
	if (!code || !msg[0])
		return 0;
	kl_fail(e, code, "%s", msg);
	return 1;
}

int kl_backend_take_err(struct kl_backend *b, struct kl_err *e)
{
	struct kl_backend *inner;
	int got;

	if (!b)
		return 0;
	inner = kl_backend_unwrap(b);
	got = take_one(b, e);
	if (inner != b)
		got |= take_one(inner, e);
	return got;
}

static int open_plain(const char *location, struct kl_err *err, struct kl_backend **ret)
{
	struct kl_backend *b = NULL;
	int rc;

	if (!location || !*location)
		return -KL_EUSAGE;
	if (!strncmp(location, "local:", 6))
		return kl_backend_local_open(location + 6, ret);
	if (!strncmp(location, "s3:", 3))
		rc = kl_backend_s3_open(location, err, &b);
	else if (!strncmp(location, "ssh://", 6))
		rc = kl_backend_remote_open(location, err, &b);
	else if (strstr(location, "://"))
		return -EPROTONOSUPPORT;
	else
		return kl_backend_local_open(location, ret);
	return rc < 0 ? rc : with_cache(b, ret);
}

int kl_backend_open(const char *location, struct kl_err *err, struct kl_backend **ret)
{
	int rc = open_plain(location, err, ret);

#ifdef KL_TESTING
	/* KEEL_TEST_FAULT: tests inject storage faults (src/backend/fault.c) */
	if (rc >= 0) {
		rc = kl_backend_fault_wrap(ret);
		if (rc < 0)
			kl_backend_free(*ret);
	}
#endif
	return rc;
}

void kl_backend_free(struct kl_backend *b)
{
	if (b)
		b->ops->free(b);
}

int kl_backend_prepare_object_lock(struct kl_backend *b)
{
	b = kl_backend_unwrap(b); /* under the metadata cache */
	if (!b || !b->ops->prepare_object_lock)
		return -EOPNOTSUPP;
	return b->ops->prepare_object_lock(b);
}

int kl_backend_set_object_lock(struct kl_backend *b, enum kl_lock_mode mode, uint32_t days)
{
	if (mode != KL_LOCK_NONE && mode != KL_LOCK_GOVERNANCE && mode != KL_LOCK_COMPLIANCE)
		return -EINVAL;
	if (mode != KL_LOCK_NONE && (days < 1 || days > KL_LOCK_DAYS_MAX))
		return -EINVAL;
	b = kl_backend_unwrap(b);
	if (!b || !b->ops->set_object_lock)
		return 0;
	b->ops->set_object_lock(b, mode, mode == KL_LOCK_NONE ? 0 : days);
	return 1;
}

int kl_backend_list_mtime(struct kl_backend *b, enum kl_obj_type t, kl_list_mtime_cb cb,
			  void *userdata)
{
	b = kl_backend_unwrap(b); /* the storage itself, not the metadata cache */
	if (!b || !b->ops->list_mtime)
		return -EOPNOTSUPP;
	return b->ops->list_mtime(b, t, cb, userdata);
}
