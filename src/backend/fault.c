/*
 * A fault-injecting backend for tests (KL_TESTING builds only), as SQLite
 * tests its pager: it wraps the backend a process opens and makes one of
 * its operations fail, so that a test can sweep the fault over every
 * position and require each time that the command fails cleanly and the
 * repository stays sound (tests/integration/t4007-fault-sweep.sh).
 *
 * kl_backend_open() wraps every backend it opens when the environment has
 *
 *   KEEL_TEST_FAULT=N[+]:KIND[:OPS]
 *
 *   N     the operation that fails, counting from 1 the operations that
 *         KIND and OPS select, in the order they start, over every backend
 *         of the process and every thread; with "+", that one and every
 *         later one fail (a dead disk), else only that one (a glitch)
 *   KIND  eio           -EIO, nothing done (list: after the first entry)
 *         enospc        put fails with -ENOSPC, nothing stored
 *         short-read    get succeeds but returns the first half of the bytes
 *         bitflip-read  get succeeds with one bit of the bytes inverted
 *         torn-write    put is cut off: a local repository is left with the
 *                       temporary file a dying process leaves ("NAME.tmp.*",
 *                       half of the bytes), and -EIO
 *         lost-ack      put or del is done, then -EIO: the reply was lost
 *   OPS   the operations that count, comma-separated among list, get, put,
 *         del, stat (default: all that KIND applies to)
 *
 *   KEEL_TEST_FAULT_REPORT=FILE: each fault that fires appends a line
 *   "fired N KIND OP TYPE NAME" to FILE, so that a sweep knows when it has
 *   passed the last position: a run that appends nothing had no Nth
 *   operation. (Written at the moment it fires: a crash cannot lose it.)
 */
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "keel/backend.h"

#ifdef KL_TESTING

enum fault_op {
	OP_LIST = 1 << 0,
	OP_GET = 1 << 1,
	OP_PUT = 1 << 2,
	OP_DEL = 1 << 3,
	OP_STAT = 1 << 4
};

enum fault_kind { F_EIO, F_ENOSPC, F_SHORT_READ, F_BITFLIP_READ, F_TORN_WRITE, F_LOST_ACK };

static const struct {
	const char *name;
	unsigned ops; /* the operations the kind applies to */
} kinds[] = {
	[F_EIO] = {"eio", OP_LIST | OP_GET | OP_PUT | OP_DEL | OP_STAT},
	[F_ENOSPC] = {"enospc", OP_PUT},
	[F_SHORT_READ] = {"short-read", OP_GET},
	[F_BITFLIP_READ] = {"bitflip-read", OP_GET},
	[F_TORN_WRITE] = {"torn-write", OP_PUT},
	[F_LOST_ACK] = {"lost-ack", OP_PUT | OP_DEL},
};

static const char *const op_names[] = {"list", "get", "put", "del", "stat"};

/* process-wide, so that N counts over every backend the process opens */
static atomic_long op_count;

struct fault {
	struct kl_backend b;
	struct kl_backend *inner;
	long n;
	bool persist;
	enum fault_kind kind;
	unsigned ops;
	const char *report; /* from the environment; may be NULL */
};

static const char *op_name(unsigned op)
{
	for (unsigned i = 0; i < 5; i++)
		if (op == 1u << i)
			return op_names[i];
	return "?";
}

/* true when this operation is the one to fail (counts it if it is selected) */
static bool fires(struct fault *f, unsigned op, enum kl_obj_type t, const char *name)
{
	long k;
	FILE *rep;

	if (!(f->ops & op))
		return false;
	k = atomic_fetch_add(&op_count, 1) + 1;
	if (k != f->n && !(f->persist && k > f->n))
		return false;
	if (f->report && (rep = fopen(f->report, "ae"))) {
		fprintf(rep, "fired %ld %s %s %s %s\n", k, kinds[f->kind].name, op_name(op),
			kl_obj_type_name(t), name ? name : "-");
		fclose(rep);
	}
	return true;
}

/* The inner backend's failure detail becomes the wrapper's, where the CLI looks. */
static int pass_err(struct fault *f, int r)
{
	struct kl_err e = {0};

	if (r < 0 && kl_backend_take_err(f->inner, &e) > 0)
		kl_backend_fail(&f->b, e.code, "%s", e.msg);
	return r;
}

static int injected(struct fault *f, int r, unsigned op, enum kl_obj_type t, const char *name)
{
	return kl_backend_fail(&f->b, r, "injected fault (KEEL_TEST_FAULT): %s of %s/%s",
			       op_name(op), kl_obj_type_name(t), name ? name : "");
}

struct list_ctx {
	kl_list_cb cb;
	void *ud;
	bool fail;
};

static int list_cb(const char *name, uint64_t size, void *ud)
{
	struct list_ctx *c = ud;
	int r = c->cb(name, size, c->ud);

	return r < 0 ? r : c->fail ? -EIO : 0;
}

static int fault_list(struct kl_backend *b, enum kl_obj_type t, kl_list_cb cb, void *ud)
{
	struct fault *f = (struct fault *)b;
	struct list_ctx c = {cb, ud, fires(f, OP_LIST, t, NULL)};
	int r;

	r = pass_err(f, f->inner->ops->list(f->inner, t, list_cb, &c));
	/* an empty listing fails too: the fault must not vanish */
	if (c.fail && r >= 0)
		r = -EIO;
	return c.fail && r == -EIO ? injected(f, r, OP_LIST, t, NULL) : r;
}

static int fault_get(struct kl_backend *b, enum kl_obj_type t, const char *name, uint64_t off,
		     uint64_t len, struct kl_buf *out)
{
	struct fault *f = (struct fault *)b;
	size_t before = out->len, got;
	int r;

	if (!fires(f, OP_GET, t, name))
		return pass_err(f, f->inner->ops->get(f->inner, t, name, off, len, out));
	if (f->kind == F_EIO)
		return injected(f, -EIO, OP_GET, t, name);
	r = pass_err(f, f->inner->ops->get(f->inner, t, name, off, len, out));
	if (r < 0)
		return r;
	got = out->len - before;
	if (f->kind == F_SHORT_READ) {
		out->len = before + got / 2;
		out->data[out->len] = 0;
	} else if (got) {
		out->data[before + got / 2] ^= 0x10;
	}
	return 0;
}

/* What local.c's interrupted kl_fs_write_atomic() leaves: NAME.tmp.* with part of the data. */
static void leave_torn_tmp(struct fault *f, enum kl_obj_type t, const char *name, const void *data,
			   size_t len)
{
	char path[4096];
	int fd;

	if (strcmp(f->inner->ops->scheme, "local") || !f->inner->location)
		return;
	if (t == KL_OBJ_CONFIG)
		snprintf(path, sizeof(path), "%s/config.tmp.fault%ld", f->inner->location,
			 (long)getpid());
	else if (t == KL_OBJ_DATA)
		snprintf(path, sizeof(path), "%s/data/%.2s/%s.tmp.fault%ld", f->inner->location,
			 name, name, (long)getpid());
	else
		snprintf(path, sizeof(path), "%s/%s/%s.tmp.fault%ld", f->inner->location,
			 kl_obj_type_name(t), name, (long)getpid());
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	if (write(fd, data, len / 2) < 0) {
		/* nothing to do: a test's torn file is best effort */
	}
	close(fd);
}

static int fault_put(struct kl_backend *b, enum kl_obj_type t, const char *name, const void *data,
		     size_t len)
{
	struct fault *f = (struct fault *)b;
	int r;

	if (!fires(f, OP_PUT, t, name))
		return pass_err(f, f->inner->ops->put(f->inner, t, name, data, len));
	switch (f->kind) {
	case F_ENOSPC:
		return injected(f, -ENOSPC, OP_PUT, t, name);
	case F_TORN_WRITE:
		leave_torn_tmp(f, t, name, data, len);
		return injected(f, -EIO, OP_PUT, t, name);
	case F_LOST_ACK:
		r = pass_err(f, f->inner->ops->put(f->inner, t, name, data, len));
		return r < 0 ? r : injected(f, -EIO, OP_PUT, t, name);
	default:
		return injected(f, -EIO, OP_PUT, t, name);
	}
}

static int fault_del(struct kl_backend *b, enum kl_obj_type t, const char *name)
{
	struct fault *f = (struct fault *)b;
	int r;

	if (!fires(f, OP_DEL, t, name))
		return pass_err(f, f->inner->ops->del(f->inner, t, name));
	if (f->kind == F_LOST_ACK) {
		r = pass_err(f, f->inner->ops->del(f->inner, t, name));
		if (r < 0)
			return r;
	}
	return injected(f, -EIO, OP_DEL, t, name);
}

static int fault_stat(struct kl_backend *b, enum kl_obj_type t, const char *name,
		      uint64_t *size_ret)
{
	struct fault *f = (struct fault *)b;

	if (fires(f, OP_STAT, t, name))
		return injected(f, -EIO, OP_STAT, t, name);
	return pass_err(f, f->inner->ops->stat(f->inner, t, name, size_ret));
}

static int fault_create(struct kl_backend *b)
{
	struct fault *f = (struct fault *)b;

	return pass_err(f, f->inner->ops->create(f->inner));
}

static int fault_sweep_tmp(struct kl_backend *b, uint64_t min_age_s, bool remove,
			   struct kl_tmp_stats *ret)
{
	struct fault *f = (struct fault *)b;

	if (!f->inner->ops->sweep_tmp) {
		*ret = (struct kl_tmp_stats){0};
		return 0;
	}
	return pass_err(f, f->inner->ops->sweep_tmp(f->inner, min_age_s, remove, ret));
}

static void fault_free(struct kl_backend *b)
{
	struct fault *f = (struct fault *)b;

	kl_backend_free(f->inner);
	kl_free(f->b.location);
	kl_free(f);
}

static const struct kl_backend_ops fault_ops = {
	.scheme = "fault",
	.list = fault_list,
	.get = fault_get,
	.put = fault_put,
	.del = fault_del,
	.stat = fault_stat,
	.create = fault_create,
	.sweep_tmp = fault_sweep_tmp,
	.free = fault_free,
};

/* "N[+]:KIND[:OPS]" into f; -KL_EUSAGE when malformed */
static int parse_spec(const char *s, struct fault *f)
{
	char *end, kind[32];
	size_t klen;
	unsigned i, want = 0;

	errno = 0;
	f->n = strtol(s, &end, 10);
	if (errno || end == s || f->n < 1)
		return -KL_EUSAGE;
	f->persist = *end == '+';
	end += f->persist;
	if (*end++ != ':')
		return -KL_EUSAGE;
	klen = strcspn(end, ":");
	if (klen >= sizeof(kind))
		return -KL_EUSAGE;
	memcpy(kind, end, klen);
	kind[klen] = 0;
	end += klen;
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]) && strcmp(kinds[i].name, kind); i++)
		;
	if (i == sizeof(kinds) / sizeof(kinds[0]))
		return -KL_EUSAGE;
	f->kind = i;
	f->ops = kinds[i].ops;
	if (!*end)
		return 0;
	for (end++; *end; end += *end == ',') {
		size_t n = strcspn(end, ",");
		unsigned j;

		for (j = 0; j < 5 && (strlen(op_names[j]) != n || strncmp(op_names[j], end, n));
		     j++)
			;
		if (j == 5)
			return -KL_EUSAGE;
		want |= 1u << j;
		end += n;
	}
	f->ops &= want;
	return f->ops ? 0 : -KL_EUSAGE;
}

int kl_backend_fault_wrap(struct kl_backend **bp)
{
	const char *spec = getenv("KEEL_TEST_FAULT");
	struct fault *f;
	int r;

	if (!spec || !*spec)
		return 0;
	f = kl_calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	r = parse_spec(spec, f);
	if (r < 0) {
		kl_free(f);
		return r;
	}
	f->b.ops = &fault_ops;
	f->b.append_only = (*bp)->append_only;
	if ((*bp)->location && !(f->b.location = kl_strdup((*bp)->location))) {
		kl_free(f);
		return -ENOMEM;
	}
	f->inner = *bp;
	f->report = getenv("KEEL_TEST_FAULT_REPORT");
	*bp = &f->b;
	return 0;
}

#endif
