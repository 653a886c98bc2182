/*
 * The log's retention (docs/DATABASES.md, "Retention"): the log records
 * that go with the base backups a forget policy removes. Pure: it sees the
 * snapshot list and what the policy removes, and decides nothing else.
 */
#include "keel/db.h"

/* The kept base backup of v[k]'s database with the smallest start (timeline on ties). */
static const struct kl_snapshot_db *oldest_kept(const struct kl_snapshot_ref *v, size_t n,
						const bool *gone, const char *name)
{
	const struct kl_snapshot_db *best = NULL;

	for (size_t i = 0; i < n; i++) {
		const struct kl_snapshot_db *x = &v[i].s.db;

		if (gone[i] || !v[i].s.has_db || x->role != KL_DB_BASE || strcmp(x->name, name))
			continue;
		if (!best || x->start_lsn < best->start_lsn ||
		    (x->start_lsn == best->start_lsn && x->timeline < best->timeline))
			best = x;
	}
	return best;
}

struct dbret {
	const char *name;
	const struct kl_snapshot_db *base; /* oldest kept, or NULL: nothing is dropped */
};

/* The database's entry in c (added, computed once per name: n_db is small). */
static const struct dbret *lookup(struct dbret *c, size_t *n_c, const struct kl_snapshot_ref *v,
				  size_t n, const bool *gone, const bool *touched, const char *name)
{
	bool db_touched = false;

	for (size_t k = 0; k < *n_c; k++)
		if (!strcmp(c[k].name, name))
			return &c[k];
	for (size_t k = 0; k < n && !db_touched; k++)
		db_touched = touched[k] && v[k].s.has_db && v[k].s.db.role == KL_DB_BASE &&
			     !strcmp(v[k].s.db.name, name);
	c[*n_c].name = name;
	c[*n_c].base = db_touched ? oldest_kept(v, n, gone, name) : NULL;
	return &c[(*n_c)++];
}

int kl_db_retention(const struct kl_snapshot_ref *v, size_t n, const bool *gone,
		    const bool *touched, bool *drop)
{
	struct dbret *c = kl_malloc((n ? n : 1) * sizeof(*c));
	size_t n_c = 0;
	int count = 0;

	if (!c)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct kl_snapshot_db *x = &v[i].s.db, *b;

		drop[i] = false;
		/* history files are tiny and a restore of any later timeline reads them */
		if (gone[i] || !v[i].s.has_db || x->role != KL_DB_LOG ||
		    x->start_lsn == x->stop_lsn)
			continue;
		b = lookup(c, &n_c, v, n, gone, touched, x->name)->base;
		/*
		 * MariaDB: a replay reads the base backup's binlog file from its
		 * start, so only the files before it go (one timeline: 1).
		 */
		if (b && x->engine == KL_DB_MARIADB) {
			if (x->stop_lsn <= (b->start_lsn & ~(uint64_t)UINT32_MAX)) {
				drop[i] = true;
				count++;
			}
			continue;
		}
		if (b && x->timeline <= b->timeline && x->stop_lsn <= b->start_lsn) {
			drop[i] = true;
			count++;
		}
	}
	kl_free(c);
	return count;
}
