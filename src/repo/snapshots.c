#include <stdlib.h>

#include "repo-internal.h"

int kl_repo_save_snapshot(struct kl_repo *r, const struct kl_snapshot *s, struct kl_id *ret)
{
	_cleanup_buf_ struct kl_buf enc = KL_BUF_INIT(64u << 20);
	int rc;

	rc = kl_snapshot_encode(s, &enc);
	if (rc < 0)
		return rc;
	kl_test_point("before-snapshot");
	/* interrupted before the commit point: no snapshot (what it needs stays for the next) */
	rc = kl_repo_cancelled(r);
	if (rc < 0)
		return rc;
	/* a prune may delete what this snapshot needs once our lock looks dead */
	rc = kl_lock_check(r);
	if (rc < 0)
		return rc;
	return kl_repo_put_object(r, KL_OBJ_SNAPSHOT, KL_KIND_SNAPSHOT, enc.data, enc.len, ret);
}

int kl_repo_load_snapshot(struct kl_repo *r, const struct kl_id *id, struct kl_snapshot *ret)
{
	_cleanup_buf_ struct kl_buf raw = KL_BUF_INIT(64u << 20);
	char hex[2 * KL_ID_LEN + 1];
	int rc;

	kl_id_hex(id, hex);
	rc = kl_repo_get_object(r, KL_OBJ_SNAPSHOT, KL_KIND_SNAPSHOT, hex, &raw);
	if (rc >= 0) {
		memset(ret, 0, sizeof(*ret));
		rc = kl_snapshot_decode(raw.data, raw.len, ret);
	}
	if (rc < 0 && rc != -KL_ENOTFOUND)
		return kl_repo_fail(r, rc, "snapshot %.16s is unreadable", hex);
	return rc;
}

struct list_ctx {
	struct kl_repo *r;
	struct kl_snapshot_list *l;
	size_t cap;
};

static int add_one(const char *name, uint64_t size, void *ud)
{
	struct list_ctx *c = ud;
	struct kl_snapshot_ref *ref;
	int rc;

	if (c->l->n == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 32;
		struct kl_snapshot_ref *v = kl_realloc(c->l->v, ncap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		c->l->v = v;
		c->cap = ncap;
	}
	ref = &c->l->v[c->l->n];
	if (kl_id_parse(name, &ref->id) < 0)
		return 0;
	rc = kl_repo_load_snapshot(c->r, &ref->id, &ref->s);
	if (rc == -KL_ENOTFOUND)
		return 0; /* deleted while we listed */
	if (rc == -KL_ECORRUPT) {
		/* one damaged snapshot must not hide the others */
		struct kl_id *d = kl_realloc(c->l->damaged, (c->l->n_damaged + 1) * sizeof(*d));

		if (!d)
			return -ENOMEM;
		c->l->damaged = d;
		d[c->l->n_damaged++] = ref->id;
		kl_repo_err_clear_(c->r);
		return 0;
	}
	if (rc < 0)
		return rc;
	c->l->n++;
	return 0;
}

static int by_time(const void *a, const void *b)
{
	const struct kl_snapshot_ref *x = a, *y = b;

	if (x->s.time_ns != y->s.time_ns)
		return x->s.time_ns < y->s.time_ns ? -1 : 1;
	return memcmp(x->id.b, y->id.b, KL_ID_LEN);
}

int kl_repo_list_snapshots(struct kl_repo *r, struct kl_snapshot_list *ret)
{
	struct list_ctx c = {.r = r, .l = ret};
	int rc;

	memset(ret, 0, sizeof(*ret));
	rc = r->be->ops->list(r->be, KL_OBJ_SNAPSHOT, add_one, &c);
	if (rc < 0) {
		kl_snapshot_list_release(ret);
		return rc;
	}
	if (ret->n)
		qsort(ret->v, ret->n, sizeof(*ret->v), by_time);
	return 0;
}

void kl_snapshot_list_release(struct kl_snapshot_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		kl_snapshot_release(&l->v[i].s);
	kl_free(l->v);
	kl_free(l->damaged);
	memset(l, 0, sizeof(*l));
}
