/*
 * Retention policies: which snapshots `keel forget` keeps. The policy
 * engine is a pure function over (id, time, host, paths, tags) records;
 * it reads nothing but the local time zone (TZ), so tests can drive it
 * with synthetic histories. The exact semantics are in docs/FORGET.md.
 */
#ifndef KEEL_FORGET_H
#define KEEL_FORGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keel/format.h"

struct kl_repo;

/* Why a snapshot is kept; a snapshot no rule keeps is removed. */
enum kl_keep_reason {
	KL_KEEP_LAST = 1 << 0,
	KL_KEEP_HOURLY = 1 << 1,
	KL_KEEP_DAILY = 1 << 2,
	KL_KEEP_WEEKLY = 1 << 3,
	KL_KEEP_MONTHLY = 1 << 4,
	KL_KEEP_YEARLY = 1 << 5,
	KL_KEEP_WITHIN = 1 << 6,
	KL_KEEP_WITHIN_HOURLY = 1 << 7,
	KL_KEEP_WITHIN_DAILY = 1 << 8,
	KL_KEEP_WITHIN_WEEKLY = 1 << 9,
	KL_KEEP_WITHIN_MONTHLY = 1 << 10,
	KL_KEEP_WITHIN_YEARLY = 1 << 11,
	KL_KEEP_TAG = 1 << 12,
};
#define KL_KEEP_REASONS 13

/* "last", "daily", "within-weekly", "tag"...; NULL for anything but one bit. */
const char *kl_keep_reason_name(unsigned bit);

/* The calendar buckets, in the order of the count fields below. */
enum kl_bucket { KL_BUCKET_HOUR, KL_BUCKET_DAY, KL_BUCKET_WEEK, KL_BUCKET_MONTH, KL_BUCKET_YEAR };
#define KL_BUCKETS 5

/*
 * A span of calendar time, "1y2m3d4h": years, months and days are
 * calendar units in local time, hours are exact 3600-second hours.
 */
struct kl_duration {
	int years, months, days, hours;
};
static inline bool kl_duration_is_zero(const struct kl_duration *d)
{
	return !d->years && !d->months && !d->days && !d->hours;
}
/*
 * Parses "1y2m3d4h": one or more NUMBER UNIT pairs, units y, m, d, h, each
 * at most once, in any order. -KL_EUSAGE if malformed or too large.
 */
int kl_duration_parse(const char *s, struct kl_duration *ret);

/* Counts are "keep this many"; 0 turns a rule off, KL_KEEP_UNLIMITED keeps every bucket. */
#define KL_KEEP_UNLIMITED UINT32_MAX

struct kl_forget_policy {
	uint32_t last;
	uint32_t buckets[KL_BUCKETS]; /* hourly, daily, weekly, monthly, yearly */
	struct kl_duration within;
	struct kl_duration within_bucket[KL_BUCKETS];
	/* a snapshot is kept if it has every tag of one entry ("a,b": both a and b) */
	char **keep_tags;
	size_t n_keep_tags;
};

/* True when no rule is set: such a policy keeps nothing, so callers must refuse it. */
bool kl_forget_policy_is_empty(const struct kl_forget_policy *p);

/* What snapshots are grouped by before the policy is applied to each group. */
enum kl_group_by {
	KL_GROUP_HOST = 1 << 0,
	KL_GROUP_PATHS = 1 << 1,
	KL_GROUP_TAGS = 1 << 2,
};
/* "host,paths", "tags", "" (no grouping)...; -KL_EUSAGE for anything else. */
int kl_group_by_parse(const char *s, unsigned *ret);

/* One snapshot as the engine sees it; every pointer is borrowed. */
struct kl_forget_item {
	struct kl_id id;
	int64_t time_ns;
	const char *host; /* may be NULL */
	char *const *paths;
	size_t n_paths;
	char *const *tags;
	size_t n_tags;
};

struct kl_forget_group {
	size_t *items; /* indexes into the input, newest first */
	size_t n;
	size_t n_keep;
};

struct kl_forget_plan {
	unsigned *reasons; /* per input item: enum kl_keep_reason bits, 0 = remove */
	size_t n;
	struct kl_forget_group *groups; /* sorted by group key */
	size_t n_groups;
	size_t *order_; /* backing store of the groups' items */
};

/*
 * Groups the items by group_by (enum kl_group_by bits) and applies the
 * policy to each group independently. Bucket boundaries are in the local
 * time zone (TZ is re-read). Returns 0, -KL_EUSAGE for an empty policy
 * (it would remove everything), -ENOMEM. ret is released by
 * kl_forget_plan_release, also after a failure.
 */
int kl_forget_plan(const struct kl_forget_item *v, size_t n, const struct kl_forget_policy *p,
		   unsigned group_by, struct kl_forget_plan *ret);
void kl_forget_plan_release(struct kl_forget_plan *plan);

/*
 * Time helpers for the policy and for `keel backup --time`.
 *
 * kl_time_parse: "YYYY-MM-DD HH:MM:SS" in local time, or RFC 3339
 * ("YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)"); with no offset the 'T'
 * may be a space and the time is local. A local time that occurs twice
 * (clocks go back) means the earlier instant; one that does not exist
 * (clocks go forward) is -KL_EUSAGE, as is anything malformed.
 */
int kl_time_parse(const char *s, int64_t *ret_ns);
/*
 * The instant (seconds) that is d before t, as docs/FORGET.md defines
 * it: calendar arithmetic on t's local date, then exact hours.
 */
int64_t kl_time_minus(int64_t t, const struct kl_duration *d);

/*
 * Deletes one snapshot object (never any data: `keel prune` frees that).
 * -KL_ENOTFOUND if it is already gone, -KL_EOBJLOCKED if S3 Object Lock
 * keeps it (its retention has not ended, or it is under legal hold).
 */
int kl_snapshot_forget(struct kl_repo *r, const struct kl_id *id);

struct kl_forget_result {
	size_t removed;
	struct kl_id *retained; /* kept by Object Lock, in the order given */
	size_t n_retained;
};
void kl_forget_result_release(struct kl_forget_result *res);

/*
 * Deletes the snapshots ids[0..n), in order. One that S3 Object Lock keeps
 * is kept and listed in res->retained, and the others still go; then the
 * call returns -KL_EOBJLOCKED (nothing was deleted that the storage
 * protects; exit 16). Any other failure stops at once and is returned,
 * with res counting what went before and the detail naming the snapshot.
 * res is filled in every case; release it with kl_forget_result_release.
 */
int kl_snapshots_forget(struct kl_repo *r, const struct kl_id *ids, size_t n,
			struct kl_forget_result *res);

#endif
