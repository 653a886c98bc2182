/*
 * keel mirror --status: how far a copy is behind its source, without the
 * key (docs/MIRROR.md): the listings compared, and DEST's state read.
 */
#include "keel/query.h"
#include "mirror-internal.h"

static const enum kl_obj_type types[] = {KL_OBJ_KEY, KL_OBJ_SNAPSHOT, KL_OBJ_INDEX, KL_OBJ_DATA};

struct oldest {
	const struct kl_mlist *dst;
	int64_t min_ns; /* of the snapshots DEST lacks; 0: none seen */
	bool unknown;	/* one of them came without a time */
};

static int oldest_missing(const char *name, uint64_t size, int64_t mtime_ns, void *ud)
{
	struct oldest *o = ud;

	(void)size;
	if (kl_mlist_find(o->dst, name))
		return 0;
	if (!mtime_ns)
		o->unknown = true;
	else if (!o->min_ns || mtime_ns < o->min_ns)
		o->min_ns = mtime_ns;
	return 0;
}

/* The lag: 0 when DEST has every snapshot, else since the oldest it lacks was written. */
static int lag(struct kl_repo *src, const struct kl_mlist *dst_snaps, bool pending,
	       const struct kl_mstate *m, struct kl_mirror_status *ret)
{
	struct oldest o = {.dst = dst_snaps};
	int64_t now = kl_time_now_ns();
	int rc;

	ret->lag_ns = 0;
	ret->lag_exact = true;
	if (!pending)
		return 0;
	rc = kl_repo_list_mtime(src, KL_OBJ_SNAPSHOT, oldest_missing, &o);
	if (rc < 0 && rc != -EOPNOTSUPP)
		return kl_repo_fail(src, rc, "cannot list snapshots/");
	kl_repo_clear_err(src);
	if (rc >= 0 && o.min_ns && !o.unknown) {
		ret->lag_ns = now > o.min_ns ? now - o.min_ns : 0;
		return 0;
	}
	/* a bound: what the latest complete run listed is in DEST */
	ret->lag_exact = false;
	ret->lag_ns = m->s.complete_listed_ns ? now - m->s.complete_listed_ns : -1;
	return 0;
}

int kl_mirror_status(struct kl_repo *src, struct kl_repo *dst, struct kl_mirror_status *ret)
{
	struct kl_mlist s = {0}, d[KL_OBJ_TYPES] = {{0}};
	struct kl_mstate m = {0};
	int rc;

	memset(ret, 0, sizeof(*ret));
	rc = kl_mstate_load(dst, NULL, &m);
	if (rc < 0)
		rc = kl_repo_fail(dst, rc, "cannot read the mirror state");
	for (size_t i = 0; rc >= 0 && i < KL_ARRAY_SIZE(types); i++) {
		enum kl_obj_type t = types[i];
		struct kl_mirror_count *c = &ret->pending[KL_MIRROR_PENDING_INDEX(t)];

		rc = kl_mlist_load(src, t, &s);
		if (rc < 0) {
			rc = kl_repo_fail(src, rc, "cannot list %s/", kl_repo_type_name(t));
			break;
		}
		rc = kl_mlist_load(dst, t, &d[t]);
		if (rc < 0) {
			rc = kl_repo_fail(dst, rc, "cannot list %s/ in the copy",
					  kl_repo_type_name(t));
			break;
		}
		for (size_t k = 0; k < s.n; k++) {
			const struct kl_mobj *o = kl_mlist_find(&d[t], s.v[k].name);

			if (!o || o->size != s.v[k].size) {
				c->objects++;
				c->bytes += s.v[k].size;
			}
		}
		for (size_t k = 0; k < d[t].n; k++)
			if (!kl_mlist_find(&s, d[t].v[k].name)) {
				ret->quarantined.objects++;
				ret->quarantined.bytes += d[t].v[k].size;
			}
	}
	if (rc >= 0) {
		ret->last_run_ns = m.s.time_ns;
		ret->last_complete_ns = m.s.complete_ns;
		rc = lag(src, &d[KL_OBJ_SNAPSHOT],
			 ret->pending[KL_MIRROR_PENDING_INDEX(KL_OBJ_SNAPSHOT)].objects > 0, &m,
			 ret);
	}
	kl_mlist_release(&s);
	for (int t = 0; t < KL_OBJ_TYPES; t++)
		kl_mlist_release(&d[t]);
	kl_mstate_release(&m);
	return rc;
}

static bool same_group(const struct kl_snapshot *a, const struct kl_snapshot *b)
{
	if (strcmp(a->host ? a->host : "", b->host ? b->host : "") || a->n_paths != b->n_paths)
		return false;
	for (size_t i = 0; i < a->n_paths; i++)
		if (strcmp(a->paths[i], b->paths[i]))
			return false;
	return true;
}

int kl_mirror_status_groups(struct kl_repo *dst, const struct kl_snapshot_list *snaps,
			    bool check_data, struct kl_mirror_group **ret, size_t *n_ret)
{
	struct kl_presence pr = {0};
	uint64_t missing = 0;
	_cleanup_free_ struct kl_mirror_group *g = kl_calloc(snaps->n ? snaps->n : 1, sizeof(*g));
	struct kl_mlist d = {0};
	size_t n = 0;
	int rc;

	if (!g)
		return -ENOMEM;
	rc = kl_mlist_load(dst, KL_OBJ_SNAPSHOT, &d);
	if (rc < 0)
		return kl_repo_fail(dst, rc, "cannot list snapshots/ in the copy");
	/* oldest first: the last of a group seen is its newest */
	for (size_t i = 0; i < snaps->n; i++) {
		const struct kl_snapshot_ref *s = &snaps->v[i];
		char hex[2 * KL_ID_LEN + 1];
		size_t k = 0;

		while (k < n && !same_group(&g[k].newest->s, &s->s))
			k++;
		if (k == n)
			n++;
		g[k].newest = s;
		kl_id_hex(&s->id, hex);
		if (!kl_mlist_find(&d, hex))
			continue;
		/* the same repository: SOURCE's tree id is DEST's */
		if (check_data && (rc = kl_presence_check(dst, &pr, &s->s.tree, &missing)) < 0)
			break;
		if (!missing)
			g[k].newest_dst = s;
	}
	kl_presence_release(&pr);
	if (rc < 0) {
		kl_mlist_release(&d);
		return rc;
	}
	for (size_t k = 0; k < n; k++)
		g[k].lag_ns =
			!g[k].newest_dst ? -1 : g[k].newest->s.time_ns - g[k].newest_dst->s.time_ns;
	kl_mlist_release(&d);
	*n_ret = n;
	*ret = KL_TAKE_PTR(g);
	return 0;
}
