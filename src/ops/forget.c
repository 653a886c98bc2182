/*
 * The retention policy engine behind `keel forget`: groups snapshots,
 * walks each group newest first, and records for every snapshot the
 * rules that keep it. docs/FORGET.md is the specification; the unit tests
 * (tests/unit/test-forget.c) hold it to hand-computed histories.
 */
#include <stdlib.h>
#include <time.h>

#include "forget-internal.h"
#include "keel/repo.h"

static const char *const reason_names[KL_KEEP_REASONS] = {
	"last",		  "hourly",	   "daily",	    "weekly",	    "monthly",
	"yearly",	  "within",	   "within-hourly", "within-daily", "within-weekly",
	"within-monthly", "within-yearly", "tag",
};

const char *kl_keep_reason_name(unsigned bit)
{
	for (unsigned i = 0; i < KL_KEEP_REASONS; i++)
		if (bit == 1u << i)
			return reason_names[i];
	return NULL;
}

bool kl_forget_policy_is_empty(const struct kl_forget_policy *p)
{
	if (p->last || p->n_keep_tags || !kl_duration_is_zero(&p->within))
		return false;
	for (int b = 0; b < KL_BUCKETS; b++)
		if (p->buckets[b] || !kl_duration_is_zero(&p->within_bucket[b]))
			return false;
	return true;
}

int kl_group_by_parse(const char *s, unsigned *ret)
{
	unsigned g = 0;
	const char *p = s;

	if (!s)
		return -KL_EUSAGE;
	while (*p) {
		size_t n = strcspn(p, ",");

		if (n == 4 && !strncmp(p, "host", n))
			g |= KL_GROUP_HOST;
		else if (n == 5 && !strncmp(p, "paths", n))
			g |= KL_GROUP_PATHS;
		else if (n == 4 && !strncmp(p, "tags", n))
			g |= KL_GROUP_TAGS;
		else
			return -KL_EUSAGE;
		p += n;
		if (*p == ',' && !*++p)
			return -KL_EUSAGE; /* a trailing comma names nothing */
	}
	*ret = g;
	return 0;
}

/* A snapshot with its paths and tags sorted, so that order does not split a group. */
struct entry {
	const struct kl_forget_item *it;
	size_t idx;
	const char **paths;
	const char **tags;
};

static int cmp_cstr(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_strv(const char **a, size_t na, const char **b, size_t nb)
{
	for (size_t i = 0; i < na && i < nb; i++) {
		int c = strcmp(a[i], b[i]);

		if (c)
			return c;
	}
	return na < nb ? -1 : na > nb;
}

static int cmp_group(const struct entry *x, const struct entry *y, unsigned group_by)
{
	int c;

	if (group_by & KL_GROUP_HOST) {
		c = strcmp(x->it->host ? x->it->host : "", y->it->host ? y->it->host : "");
		if (c)
			return c;
	}
	if (group_by & KL_GROUP_PATHS) {
		c = cmp_strv(x->paths, x->it->n_paths, y->paths, y->it->n_paths);
		if (c)
			return c;
	}
	if (group_by & KL_GROUP_TAGS) {
		c = cmp_strv(x->tags, x->it->n_tags, y->tags, y->it->n_tags);
		if (c)
			return c;
	}
	return 0;
}

/* Group key, then newest first; equal times: the larger id counts as newer, as for "latest". */
static int cmp_entry(const void *a, const void *b, void *ud)
{
	const struct entry *x = a, *y = b;
	int c = cmp_group(x, y, *(const unsigned *)ud);

	if (c)
		return c;
	if (x->it->time_ns != y->it->time_ns)
		return x->it->time_ns > y->it->time_ns ? -1 : 1;
	return -memcmp(x->it->id.b, y->it->id.b, KL_ID_LEN);
}

static bool has_tag(const struct kl_forget_item *it, const char *t, size_t n)
{
	for (size_t i = 0; i < it->n_tags; i++)
		if (it->tags[i] && strlen(it->tags[i]) == n && !memcmp(it->tags[i], t, n))
			return true;
	return false;
}

/* Does the item carry every tag of spec ("a,b")? A spec naming no tag matches nothing. */
static bool has_tags(const struct kl_forget_item *it, const char *spec)
{
	bool named = false;

	for (const char *p = spec; *p;) {
		size_t n = strcspn(p, ",");

		if (n) {
			if (!has_tag(it, p, n))
				return false;
			named = true;
		}
		p += n + (p[n] == ',');
	}
	return named;
}

/* Keep everything strictly newer than this (ns): newest minus d. */
static int64_t cutoff_ns(int64_t newest_ns, const struct kl_duration *d)
{
	int64_t sec = kl_forget_floor_sec(newest_ns), frac = newest_ns - sec * KL_NSEC_PER_SEC, r;

	if (__builtin_mul_overflow(kl_time_minus(sec, d), KL_NSEC_PER_SEC, &r) ||
	    __builtin_add_overflow(r, frac, &r))
		return INT64_MIN;
	return r;
}

static void apply(const struct kl_forget_item *v, const size_t *items, size_t n,
		  const struct kl_forget_policy *p, unsigned *reasons)
{
	uint32_t left[KL_BUCKETS];
	int64_t last[KL_BUCKETS], wlast[KL_BUCKETS], wcut[KL_BUCKETS], cut = 0;
	bool have[KL_BUCKETS] = {false}, whave[KL_BUCKETS] = {false};
	bool within = !kl_duration_is_zero(&p->within);

	if (!n)
		return;
	memcpy(left, p->buckets, sizeof(left));
	if (within)
		cut = cutoff_ns(v[items[0]].time_ns, &p->within);
	for (int b = 0; b < KL_BUCKETS; b++)
		wcut[b] = cutoff_ns(v[items[0]].time_ns, &p->within_bucket[b]);

	for (size_t k = 0; k < n; k++) {
		const struct kl_forget_item *it = &v[items[k]];
		int64_t keys[KL_BUCKETS];
		unsigned r = 0;

		if (p->last == KL_KEEP_UNLIMITED || k < p->last)
			r |= KL_KEEP_LAST;
		if (within && it->time_ns > cut)
			r |= KL_KEEP_WITHIN;
		for (size_t i = 0; i < p->n_keep_tags; i++)
			if (has_tags(it, p->keep_tags[i]))
				r |= KL_KEEP_TAG;
		kl_forget_bucket_keys(kl_forget_floor_sec(it->time_ns), keys);
		/* the first (newest) snapshot seen in a bucket is the one that bucket keeps */
		for (int b = 0; b < KL_BUCKETS; b++) {
			if (left[b] && (!have[b] || keys[b] != last[b])) {
				r |= (unsigned)KL_KEEP_HOURLY << b;
				have[b] = true;
				last[b] = keys[b];
				if (left[b] != KL_KEEP_UNLIMITED)
					left[b]--;
			}
			if (!kl_duration_is_zero(&p->within_bucket[b]) && it->time_ns > wcut[b] &&
			    (!whave[b] || keys[b] != wlast[b])) {
				r |= (unsigned)KL_KEEP_WITHIN_HOURLY << b;
				whave[b] = true;
				wlast[b] = keys[b];
			}
		}
		reasons[items[k]] = r;
	}
}

void kl_forget_plan_release(struct kl_forget_plan *plan)
{
	kl_free(plan->reasons);
	kl_free(plan->groups);
	kl_free(plan->order_);
	memset(plan, 0, sizeof(*plan));
}

int kl_forget_plan(const struct kl_forget_item *v, size_t n, const struct kl_forget_policy *p,
		   unsigned group_by, struct kl_forget_plan *ret)
{
	_cleanup_free_ struct entry *ents = NULL;
	_cleanup_free_ const char **pool = NULL;
	size_t pool_n = 0, g = 0;

	memset(ret, 0, sizeof(*ret));
	if (kl_forget_policy_is_empty(p))
		return -KL_EUSAGE;
	/* localtime_r need not notice a changed TZ; tzset makes it */
	tzset();
	for (size_t i = 0; i < n; i++)
		pool_n += v[i].n_paths + v[i].n_tags;
	ret->n = n;
	ret->reasons = kl_calloc(n ? n : 1, sizeof(*ret->reasons));
	ret->order_ = kl_calloc(n ? n : 1, sizeof(*ret->order_));
	ret->groups = kl_calloc(n ? n : 1, sizeof(*ret->groups));
	ents = kl_calloc(n ? n : 1, sizeof(*ents));
	pool = kl_calloc(pool_n ? pool_n : 1, sizeof(*pool));
	if (!ret->reasons || !ret->order_ || !ret->groups || !ents || !pool) {
		kl_forget_plan_release(ret);
		return -ENOMEM;
	}
	pool_n = 0;
	for (size_t i = 0; i < n; i++) {
		struct entry *e = &ents[i];

		e->it = &v[i];
		e->idx = i;
		e->paths = pool + pool_n;
		for (size_t j = 0; j < v[i].n_paths; j++)
			pool[pool_n++] = v[i].paths[j] ? v[i].paths[j] : "";
		e->tags = pool + pool_n;
		for (size_t j = 0; j < v[i].n_tags; j++)
			pool[pool_n++] = v[i].tags[j] ? v[i].tags[j] : "";
		qsort(e->paths, v[i].n_paths, sizeof(*e->paths), cmp_cstr);
		qsort(e->tags, v[i].n_tags, sizeof(*e->tags), cmp_cstr);
	}
	if (n)
		qsort_r(ents, n, sizeof(*ents), cmp_entry, &group_by);
	for (size_t i = 0; i < n; i++) {
		ret->order_[i] = ents[i].idx;
		if (i == 0 || cmp_group(&ents[i - 1], &ents[i], group_by)) {
			ret->groups[g].items = &ret->order_[i];
			g++;
		}
		ret->groups[g - 1].n++;
	}
	ret->n_groups = g;
	for (size_t i = 0; i < g; i++) {
		struct kl_forget_group *gr = &ret->groups[i];

		apply(v, gr->items, gr->n, p, ret->reasons);
		for (size_t k = 0; k < gr->n; k++)
			gr->n_keep += ret->reasons[gr->items[k]] != 0;
	}
	return 0;
}

int kl_snapshot_forget(struct kl_repo *r, const struct kl_id *id)
{
	char hex[2 * KL_ID_LEN + 1];
	int rc;

	kl_id_hex(id, hex);
	rc = kl_repo_delete(r, KL_OBJ_SNAPSHOT, hex);
	if (rc == -ENOENT)
		rc = -KL_ENOTFOUND;
	if (rc < 0)
		return kl_repo_fail(r, rc, "cannot remove snapshot %.16s", hex);
	return 0;
}

void kl_forget_result_release(struct kl_forget_result *res)
{
	kl_free(res->retained);
	memset(res, 0, sizeof(*res));
}

int kl_snapshots_forget(struct kl_repo *r, const struct kl_id *ids, size_t n,
			struct kl_forget_result *res)
{
	memset(res, 0, sizeof(*res));
	for (size_t i = 0; i < n; i++) {
		int rc = kl_snapshot_forget(r, &ids[i]);

		if (rc == -KL_EOBJLOCKED) {
			/* kept until its retention ends: not an error that stops the others */
			kl_repo_clear_err(r);
			if (!res->retained)
				res->retained = kl_calloc(n - i, sizeof(*res->retained));
			if (!res->retained)
				return -ENOMEM;
			res->retained[res->n_retained++] = ids[i];
			continue;
		}
		if (rc < 0)
			return rc;
		res->removed++;
	}
	return res->n_retained ? -KL_EOBJLOCKED : 0;
}
