/*
 * check's pass 5: the counts of the result, and each problem reported
 * once, sorted, through o->report.warn.
 */
#include "check-internal.h"

static int problem_cmp(const void *a, const void *b)
{
	const struct problem *x = a, *y = b;
	int d;

	if (x->cat != y->cat)
		return x->cat < y->cat ? -1 : 1;
	d = strcmp(x->obj, y->obj);
	return d ? d : strcmp(x->why, y->why);
}

static int report(struct check *c)
{
	_cleanup_buf_ struct kl_buf msg = KL_BUF_INIT((size_t)1 << 20);

	/* sorted so that the report does not depend on thread timing; problem numbers die here */
	if (c->n_problems)
		qsort(c->problems, c->n_problems, sizeof(*c->problems), problem_cmp);
	for (size_t i = 0; i < c->n_problems; i++) {
		const struct problem *p = &c->problems[i];
		const struct pack *pk = p->pack ? &c->packs.v[p->pack - 1] : NULL;
		bool intact = pk && (pk->flags & P_READ) && (pk->flags & P_HDR_BAD) &&
			      !(pk->flags & P_ALL_BAD) && !pk->n_bad;
		int rc;

		kl_buf_clear(&msg);
		rc = kl_buf_addstr(&msg, p->why);
		if (rc >= 0 && intact)
			rc = kl_buf_addstr(&msg, "; its blobs are intact");
		else if (rc >= 0 && p->attrib && !p->n_refs)
			rc = kl_buf_addstr(&msg, "; no snapshot is affected");
		else if (rc >= 0 && p->attrib)
			rc = kl_buf_addf(&msg, "; %s %s",
					 p->fallback	     ? "needed by"
					 : p->maybe || p->io ? "may affect"
							     : "affects",
					 (const char *)p->refs.data);
		if (rc >= 0 && p->attrib && p->n_refs > p->n_shown)
			rc = kl_buf_addf(&msg, " and %llu more",
					 (unsigned long long)(p->n_refs - p->n_shown));
		if (rc < 0)
			return rc;
		if (c->o->report.warn)
			c->o->report.warn(c->o->report.ud, p->obj, p->err, (const char *)msg.data);
	}
	return 0;
}

/*
 * Exit 13 means the repository really is damaged (docs/EXIT-CODES.md), so
 * what is not damage leaves the count of errors here. An index that
 * disagrees with an authentic pack header, when reading the pack showed
 * that every entry the index gives opens (authenticated, re-hashed to its
 * id), costs a restore nothing: a note. A problem whose cause is a read
 * error proves nothing either way: it stays an error, but kl_check returns
 * the read error (exit 20) unless real damage was found too.
 */
static bool classify(struct check *c)
{
	bool damage = false;

	for (size_t i = 0; i < c->n_problems; i++) {
		struct problem *p = &c->problems[i];
		const struct pack *pk = p->pack ? &c->packs.v[p->pack - 1] : NULL;

		if (p->note)
			continue;
		if (p->disagree && pk && (pk->flags & P_READ) && !(pk->flags & P_ALL_BAD) &&
		    !pk->n_bad) {
			p->note = true;
			p->err = 0;
			c->res->errors--;
			continue;
		}
		if (p->io && !c->io_err)
			c->io_err = p->err;
		damage |= !p->io;
	}
	return damage;
}

int kl_ck_finish(struct check *c)
{
	struct kl_check_result *res = c->res;
	size_t n = 0;
	int rc;

	if (classify(c))
		c->io_err = 0;

	for (size_t i = 0; i < c->blobs.cap; i++) {
		const struct blob *b = &c->blobs.v[i];

		if (!(b->flags & B_INDEXED))
			continue;
		res->blobs++;
		res->unused_blobs += !(b->flags & B_USED);
	}
	for (size_t i = 0; i < c->packs.n; i++)
		res->packs += !!(c->packs.v[i].flags & P_INDEXED);
	for (size_t i = 0; i < c->n_snaps; i++)
		n += c->snaps[i].damaged;
	if (n) {
		res->damaged_snapshots = kl_calloc(n, sizeof(char *));
		if (!res->damaged_snapshots)
			return -ENOMEM;
		for (size_t i = 0; i < c->n_snaps; i++)
			if (c->snaps[i].damaged)
				res->damaged_snapshots[res->n_damaged++] =
					KL_TAKE_PTR(c->snaps[i].name);
	}
	rc = report(c);
	return rc;
}
