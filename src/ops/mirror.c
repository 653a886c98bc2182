/*
 * keel mirror: copies a repository object by object without its key,
 * in the order that keeps the copy a valid repository at every moment,
 * and deletes what the source deleted only after a quarantine. The design
 * and why the order is safe beside backups and prunes: docs/MIRROR.md.
 */
#include <stdio.h>

#include "mirror-internal.h"

/* passes whose index changed while listed before the run gives up on new snapshots */
#define MAX_PASSES 3
/* temporary files of interrupted writes in DEST older than this are removed */
#define STALE_TMP_AGE_S 3600

/* the object types a mirror copies, in the order it copies them (config aside) */
static const enum kl_obj_type copy_order[] = {KL_OBJ_KEY, KL_OBJ_DATA, KL_OBJ_INDEX,
					      KL_OBJ_SNAPSHOT};
/* and deletes them: a snapshot before the data it needs */
static const enum kl_obj_type delete_order[] = {KL_OBJ_SNAPSHOT, KL_OBJ_INDEX, KL_OBJ_DATA,
						KL_OBJ_KEY};

_Static_assert(KL_OBJ_KEY == KL_MIRROR_TYPE_MIN && KL_OBJ_DATA == KL_MIRROR_TYPE_MAX,
	       "format's mirror types are keys..data");

void kl_mirror_opts_init(struct kl_mirror_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->connections = KL_MIRROR_CONNECTIONS_DEFAULT;
	o->delete_after_ns = KL_MIRROR_DELETE_AFTER_DEFAULT;
}

/* The listings of one pass: SOURCE's (and its index files listed again), DEST's. */
struct lists {
	struct kl_mlist src[KL_OBJ_TYPES], dst[KL_OBJ_TYPES];
	struct kl_mlist index2;
};

static void lists_release(struct lists *l)
{
	for (int t = 0; t < KL_OBJ_TYPES; t++) {
		kl_mlist_release(&l->src[t]);
		kl_mlist_release(&l->dst[t]);
	}
	kl_mlist_release(&l->index2);
}

static void warn(struct kl_mrun *run, const char *path, int err, const char *what)
{
	if (run->o->report.warn)
		run->o->report.warn(run->o->report.ud, path, err, what);
}

/*
 * The config is named by no hash: without the key, what shows it read
 * right is reading the same bytes twice. 1 if so, 0 if not.
 */
static int read_twice(struct kl_repo *r, struct kl_buf *out)
{
	_cleanup_buf_ struct kl_buf again = KL_BUF_INIT(1u << 20);
	int rc;

	kl_buf_clear(out);
	rc = kl_repo_get_raw(r, KL_OBJ_CONFIG, "config", 0, 0, out);
	if (rc >= 0)
		rc = kl_repo_get_raw(r, KL_OBJ_CONFIG, "config", 0, 0, &again);
	if (rc < 0)
		return rc;
	return again.len == out->len && !memcmp(again.data, out->data, out->len);
}

/* config: put when DEST has none; the same bytes, or DEST is another repository */
static int copy_config(struct kl_mrun *run)
{
	_cleanup_buf_ struct kl_buf a = KL_BUF_INIT(1u << 20), b = KL_BUF_INIT(1u << 20);
	int rc;

	rc = read_twice(run->src, &a);
	if (rc == 0)
		rc = read_twice(run->src, &a);
	if (rc == 0)
		rc = -EIO; /* never the same twice: a storage that garbles what it sends */
	if (rc < 0)
		return kl_repo_fail(run->src, rc, "cannot read the config");
	rc = kl_repo_get_raw(run->dst, KL_OBJ_CONFIG, "config", 0, 0, &b);
	if (rc >= 0 && (a.len != b.len || memcmp(a.data, b.data, a.len))) {
		/* a glitch reading it, or another repository: read again to tell */
		kl_buf_clear(&b);
		rc = kl_repo_get_raw(run->dst, KL_OBJ_CONFIG, "config", 0, 0, &b);
	}
	if (rc >= 0) {
		if (a.len != b.len || memcmp(a.data, b.data, a.len))
			return kl_repo_fail(run->dst, -KL_EEXIST_REPO,
					    "the copy holds another repository (its config "
					    "differs from the source's)");
		run->st->skipped.objects++;
		run->st->skipped.bytes += a.len;
		return 0;
	}
	if (rc != -ENOENT)
		return kl_repo_fail(run->dst, rc, "cannot read the copy's config");
	kl_repo_clear_err(run->dst);
	if (!run->o->dry_run) {
		rc = kl_repo_put_raw(run->dst, KL_OBJ_CONFIG, "config", a.data, a.len);
		if (rc < 0)
			return kl_repo_fail(run->dst, rc, "cannot write the config");
	}
	run->st->copied.objects++;
	run->st->copied.bytes += a.len;
	return 0;
}

/*
 * SOURCE: snapshots, keys, index files, packs, index files again (the
 * order docs/MIRROR.md argues for); then DEST.
 */
static int list_all(struct kl_mrun *run, struct lists *l)
{
	static const enum kl_obj_type src_order[] = {KL_OBJ_SNAPSHOT, KL_OBJ_KEY, KL_OBJ_INDEX,
						     KL_OBJ_DATA};
	int rc = 0;

	for (size_t i = 0; rc >= 0 && i < KL_ARRAY_SIZE(src_order); i++) {
		rc = kl_mlist_load(run->src, src_order[i], &l->src[src_order[i]]);
		if (rc < 0)
			return kl_repo_fail(run->src, rc, "cannot list %s/",
					    kl_repo_type_name(src_order[i]));
		if (src_order[i] == KL_OBJ_INDEX)
			kl_test_point("mirror-listed-index");
	}
	rc = kl_mlist_load(run->src, KL_OBJ_INDEX, &l->index2);
	if (rc < 0)
		return kl_repo_fail(run->src, rc, "cannot list index/");
	for (size_t i = 0; i < KL_ARRAY_SIZE(copy_order); i++) {
		rc = kl_mlist_load(run->dst, copy_order[i], &l->dst[copy_order[i]]);
		if (rc < 0)
			return kl_repo_fail(run->dst, rc, "cannot list %s/ in the copy",
					    kl_repo_type_name(copy_order[i]));
	}
	return 0;
}

/* What to do with each object of SOURCE's listing of t. */
static int plan(struct kl_mrun *run, enum kl_obj_type t, const struct lists *l, bool verify,
		struct kl_mjob **ret, size_t *n_ret)
{
	const struct kl_mlist *src = &l->src[t];
	struct kl_mjob *jobs = kl_calloc(src->n ? src->n : 1, sizeof(*jobs));
	size_t n = 0;

	if (!jobs)
		return -ENOMEM;
	for (size_t i = 0; i < src->n; i++) {
		const struct kl_mobj *d = kl_mlist_find(&l->dst[t], src->v[i].name);
		char path[64 + KL_MIRROR_NAME_LEN];

		if (!d) {
			jobs[n++] = (struct kl_mjob){KL_MJOB_COPY, &src->v[i]};
		} else if (d->size != src->v[i].size) {
			snprintf(path, sizeof(path), "%s/%s", kl_repo_type_name(t), d->name);
			warn(run, path, 0,
			     run->o->dry_run ? "damaged in the copy (wrong size)"
					     : "damaged in the copy (wrong size): copied again");
			jobs[n++] = (struct kl_mjob){KL_MJOB_REPLACE, &src->v[i]};
		} else if (verify) {
			jobs[n++] = (struct kl_mjob){KL_MJOB_VERIFY, &src->v[i]};
		} else {
			run->st->skipped.objects++;
			run->st->skipped.bytes += d->size;
		}
	}
	*ret = jobs;
	*n_ret = n;
	return 0;
}

static int copy_type(struct kl_mrun *run, enum kl_obj_type t, const struct lists *l, bool verify)
{
	_cleanup_free_ struct kl_mjob *jobs = NULL;
	size_t n;
	int rc;

	rc = plan(run, t, l, verify, &jobs, &n);
	if (rc >= 0)
		rc = kl_mirror_run_jobs(run, t, jobs, n);
	return rc;
}

/*
 * One pass: list, then copy keys, packs, index files and, when nothing
 * shows that SOURCE's index changed meanwhile, snapshots. 1 when the pass
 * was stable, 0 when not, or an error.
 */
static int pass(struct kl_mrun *run, struct lists *l, bool verify)
{
	int rc;

	lists_release(l);
	rc = list_all(run, l);
	if (rc < 0)
		return rc;
	run->unstable = !kl_mlist_subset(&l->src[KL_OBJ_INDEX], &l->index2) ||
			!kl_mlist_subset(&l->index2, &l->src[KL_OBJ_INDEX]);
	for (size_t i = 0; i < KL_ARRAY_SIZE(copy_order) - 1; i++) {
		rc = copy_type(run, copy_order[i], l, verify);
		if (rc < 0)
			return rc;
	}
	kl_test_point("mirror-before-snapshots");
	if (run->unstable)
		return 0;
	rc = copy_type(run, KL_OBJ_SNAPSHOT, l, verify);
	return rc < 0 ? rc : 1;
}

static bool in_source(const struct lists *l, enum kl_obj_type t, const char *name)
{
	return kl_mlist_find(&l->src[t], name) ||
	       (t == KL_OBJ_INDEX && kl_mlist_find(&l->index2, name));
}

/*
 * What DEST has and SOURCE has not: deleted once seen missing for the
 * quarantine, else kept and recorded with the time first seen missing.
 */
static int quarantine(struct kl_mrun *run, const struct lists *l, const struct kl_mstate *old,
		      struct kl_mirror_state *s, int64_t now)
{
	size_t cap = 0;
	bool blocked = false;

	for (size_t i = 0; i < KL_ARRAY_SIZE(delete_order); i++)
		cap += l->dst[delete_order[i]].n;
	s->missing = kl_calloc(cap ? cap : 1, sizeof(*s->missing));
	if (!s->missing)
		return -ENOMEM;
	for (size_t i = 0; i < KL_ARRAY_SIZE(delete_order); i++) {
		enum kl_obj_type t = delete_order[i];

		for (size_t k = 0; k < l->dst[t].n; k++) {
			const struct kl_mobj *d = &l->dst[t].v[k];
			const struct kl_mirror_missing *m = kl_mstate_find(old, t, d->name);
			struct kl_mirror_missing *e = &s->missing[s->n_missing];
			int64_t since = m ? m->since_ns : now;
			char path[64 + KL_MIRROR_NAME_LEN];
			int rc;

			if (in_source(l, t, d->name))
				continue;
			snprintf(path, sizeof(path), "%s/%s", kl_repo_type_name(t), d->name);
			if (run->o->delete_after_ns != KL_MIRROR_NEVER && !blocked &&
			    now - since >= run->o->delete_after_ns) {
				rc = run->o->dry_run ? 0 : kl_repo_delete(run->dst, t, d->name);
				if (rc >= 0 || rc == -ENOENT) {
					run->st->deleted.objects++;
					run->st->deleted.bytes += d->size;
					continue;
				}
				/* under Object Lock until its date: kept, as the lock means */
				if (rc == -KL_EOBJLOCKED) {
					run->st->retained.objects++;
					run->st->retained.bytes += d->size;
				} else {
					warn(run, path, rc, "cannot delete from the copy (kept)");
				}
				/* nothing the snapshots still in DEST may need goes after it */
				kl_repo_clear_err(run->dst);
				blocked = true;
			}
			run->st->quarantined.objects++;
			run->st->quarantined.bytes += d->size;
			e->type = (uint32_t)t;
			kl_id_parse(d->name, &e->id);
			e->since_ns = since;
			s->n_missing++;
		}
	}
	return 0;
}

static int finish(struct kl_mrun *run, const struct lists *l, struct kl_mstate *state,
		  int64_t listed_ns)
{
	struct kl_mirror_state s = {0};
	struct kl_tmp_stats tmp;
	int64_t now = kl_time_now_ns();
	int rc;

	rc = quarantine(run, l, state, &s, now);
	if (rc < 0 || run->o->dry_run) {
		kl_mirror_state_release(&s);
		return rc;
	}
	/* what killed runs left in DEST: best effort, as old as check's default */
	if (kl_repo_sweep_tmp(run->dst, STALE_TMP_AGE_S, true, &tmp) >= 0)
		run->st->tmp_removed = tmp.removed;
	kl_repo_clear_err(run->dst);
	s.time_ns = now;
	s.listed_ns = listed_ns;
	s.lock_mode = run->st->lock_mode;
	s.lock_days = run->st->lock_days;
	s.complete_ns = run->st->complete ? now : state->s.complete_ns;
	s.complete_listed_ns = run->st->complete ? listed_ns : state->s.complete_listed_ns;
	kl_mirror_state_release(&state->s);
	state->s = s;
	return kl_mstate_save(run->dst, state);
}

static int mirror_passes(struct kl_mrun *run, struct lists *l, int64_t *listed_ret)
{
	int rc = 0;

	for (unsigned i = 0; i < MAX_PASSES; i++) {
		*listed_ret = kl_time_now_ns();
		run->st->passes++;
		/* --verify reads DEST back once; later passes check what they write */
		rc = pass(run, l, run->o->verify && i == 0);
		if (rc != 0)
			break;
	}
	if (rc == 0)
		warn(run, NULL, 0,
		     "the source's index changed during every pass (a prune?): its new "
		     "snapshots are left for the next run");
	return rc;
}

/*
 * A copy offsite is what survives when the primary is taken over, so it
 * can keep its objects under S3 Object Lock of its own, whatever
 * SOURCE's config says (a keyless mirror cannot read that). The setting
 * lives in DEST's state, so that every later run keeps it.
 */
static int dest_object_lock(struct kl_mrun *run, const struct kl_mstate *state)
{
	uint32_t mode = run->o->lock_given ? run->o->lock_mode : state->s.lock_mode;
	uint32_t days = run->o->lock_given ? run->o->lock_days : state->s.lock_days;
	int rc;

	run->st->lock_mode = mode;
	run->st->lock_days = days;
	if (mode == KL_LOCK_NONE || run->o->dry_run)
		return 0;
	rc = kl_repo_dest_object_lock(run->dst, (enum kl_lock_mode)mode, days);
	if (rc == -EOPNOTSUPP)
		return kl_repo_fail(run->dst, -KL_EUSAGE,
				    "Object Lock needs a copy on S3; this one's storage has none");
	if (rc < 0)
		return kl_repo_fail(run->dst, rc, "cannot use Object Lock in the copy");
	return 0;
}

int kl_mirror(struct kl_repo *src, struct kl_repo *dst, const struct kl_mirror_opts *o,
	      struct kl_mirror_stats *ret)
{
	struct kl_mrun run = {.src = src, .dst = dst, .o = o, .st = ret};
	struct lists l = {0};
	struct kl_mstate state = {0};
	int64_t start = kl_time_mono_ns(), listed_ns = 0;
	int rc;

	memset(ret, 0, sizeof(*ret));
	pthread_mutex_init(&run.lock, NULL);
	pthread_mutex_init(&run.rate.lock, NULL);
	run.rate.rate = o->limit_upload;
	rc = kl_mstate_load(dst, &o->report, &state);
	if (rc < 0)
		rc = kl_repo_fail(dst, rc, "cannot read the mirror state");
	if (rc >= 0)
		rc = dest_object_lock(&run, &state);
	if (rc >= 0)
		rc = copy_config(&run);
	if (rc >= 0)
		rc = mirror_passes(&run, &l, &listed_ns);
	if (rc >= 0) {
		ret->complete = rc > 0 && !run.src_error;
		rc = finish(&run, &l, &state, listed_ns);
	}
	if (rc >= 0 && run.src_error)
		rc = kl_repo_fail(src, -KL_ECORRUPT,
				  "%llu objects of the source are damaged and were not copied",
				  (unsigned long long)ret->source_damaged);
	ret->duration_ns = kl_time_mono_ns() - start;
	lists_release(&l);
	kl_mstate_release(&state);
	pthread_mutex_destroy(&run.rate.lock);
	pthread_mutex_destroy(&run.lock);
	return rc;
}
