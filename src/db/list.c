/*
 * The databases a repository holds: its snapshots of kinds 4 and 5,
 * grouped by database name (docs/DATABASES.md).
 */
#include <stdlib.h>

#include "keel/db.h"
#include "keel/repo.h"

static void info_release(struct kl_db_info *d)
{
	kl_free(d->name);
	kl_free(d->system_id);
	for (size_t i = 0; i < d->n_bases; i++)
		kl_snapshot_release(&d->bases[i].s);
	kl_free(d->bases);
	for (size_t i = 0; i < d->n_logs; i++)
		kl_snapshot_release(&d->logs[i].s);
	kl_free(d->logs);
	for (size_t i = 0; i < d->n_dumps; i++)
		kl_snapshot_release(&d->dumps[i].s);
	kl_free(d->dumps);
}

void kl_db_list_release(struct kl_db_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		info_release(&l->v[i]);
	kl_free(l->v);
	memset(l, 0, sizeof(*l));
}

const struct kl_db_info *kl_db_find(const struct kl_db_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i].name, name))
			return &l->v[i];
	return NULL;
}

static int cmp_info(const void *a, const void *b)
{
	return strcmp(((const struct kl_db_info *)a)->name, ((const struct kl_db_info *)b)->name);
}

static int cmp_stop(const void *a, const void *b)
{
	uint64_t x = ((const struct kl_snapshot_ref *)a)->s.db.stop_lsn;
	uint64_t y = ((const struct kl_snapshot_ref *)b)->s.db.stop_lsn;

	return x < y ? -1 : x > y;
}

/* The database of s in l, added if new. */
static int get_info(struct kl_db_list *l, const struct kl_snapshot *s, struct kl_db_info **ret)
{
	struct kl_db_info *v, *d;

	for (size_t i = 0; i < l->n; i++) {
		if (!strcmp(l->v[i].name, s->db.name)) {
			*ret = &l->v[i];
			return 0;
		}
	}
	v = kl_realloc(l->v, (l->n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	l->v = v;
	d = &v[l->n];
	memset(d, 0, sizeof(*d));
	d->engine = s->db.engine;
	d->name = kl_strdup(s->db.name);
	d->system_id = s->db.system_id ? kl_strdup(s->db.system_id) : NULL;
	if (!d->name || (s->db.system_id && !d->system_id)) {
		info_release(d);
		return -ENOMEM;
	}
	l->n++;
	*ret = d;
	return 0;
}

int kl_db_list(struct kl_repo *r, struct kl_db_list *ret)
{
	struct kl_snapshot_list sl;
	int rc;

	memset(ret, 0, sizeof(*ret));
	rc = kl_repo_list_snapshots(r, &sl);
	if (rc < 0)
		return kl_repo_fail(r, rc, "cannot list the snapshots");
	/*
	 * A stream stores log records while we read: those listed now may be
	 * newer than the index loaded before, and their trees would not be
	 * found. Their index files were written before them (docs/FORMAT.md
	 * section 7), so reading what came since covers every one listed.
	 */
	if (kl_repo_index_loaded(r)) {
		rc = kl_repo_refresh_index(r);
		if (rc < 0) {
			kl_snapshot_list_release(&sl);
			return rc;
		}
	}
	ret->n_damaged = sl.n_damaged;
	/* the list is oldest first: so are each database's base backups */
	for (size_t i = 0; rc >= 0 && i < sl.n; i++) {
		struct kl_snapshot_ref *ref = &sl.v[i];
		struct kl_db_info *d;
		struct kl_snapshot_ref *v;

		struct kl_snapshot_ref **list;
		size_t *n;

		if (!ref->s.has_db ||
		    !(ref->s.db.role == KL_DB_BASE || ref->s.db.role == KL_DB_LOG ||
		      ref->s.db.role == KL_DB_DUMP))
			continue;
		rc = get_info(ret, &ref->s, &d);
		if (rc < 0)
			break;
		list = ref->s.db.role == KL_DB_BASE  ? &d->bases
		       : ref->s.db.role == KL_DB_LOG ? &d->logs
						     : &d->dumps;
		n = ref->s.db.role == KL_DB_BASE  ? &d->n_bases
		    : ref->s.db.role == KL_DB_LOG ? &d->n_logs
						  : &d->n_dumps;
		v = kl_realloc(*list, (*n + 1) * sizeof(*v));
		if (!v) {
			rc = -ENOMEM;
			break;
		}
		*list = v;
		v[(*n)++] = *ref;
		memset(&ref->s, 0, sizeof(ref->s));
	}
	kl_snapshot_list_release(&sl);
	if (rc < 0) {
		kl_db_list_release(ret);
		return rc;
	}
	if (ret->n)
		qsort(ret->v, ret->n, sizeof(*ret->v), cmp_info);
	for (size_t i = 0; i < ret->n; i++)
		if (ret->v[i].n_logs)
			qsort(ret->v[i].logs, ret->v[i].n_logs, sizeof(*ret->v[i].logs), cmp_stop);
	return 0;
}
