/*
 * keel check: can every snapshot be restored?
 *
 * The passes, in order:
 *  1. list data/: which packs exist, and their sizes;
 *  2. read every index file; every pack it names must exist, and the
 *     pack's header (a small read at its end) must agree with the index;
 *     packs no index names are counted, and their headers read so that a
 *     blob a snapshot needs can be traced to them;
 *  3. with read_data, read packs whole (all, or a random subset) on
 *     o->threads workers: SHA-256 against the name, every blob opened
 *     (authenticated, decompressed, re-hashed against its id);
 *  4. load every snapshot and walk its trees, each distinct tree once
 *     (one with damage below it once per snapshot, to name its paths):
 *     every blob a file or directory needs must be indexed and not found
 *     damaged above. The walk runs last so that it can name the snapshots
 *     and paths that each damaged object affects;
 *  5. report each problem once, sorted, through o->report.warn;
 *  6. count the temporary files interrupted writes left (not damage:
 *     nothing refers to them) and, if asked, remove those older than an
 *     hour, which no running write can still be using.
 *
 * This file holds the order; each pass has its own file, and
 * check-internal.h says which.
 *
 * check builds its own table of blobs from the index files instead of
 * using the repository's index: it must see entries of index files that
 * kl_repo_load_index() failed on (or was never called for), duplicate
 * copies, and blobs no index names. The table takes 75 to 150 bytes per
 * blob; pack data is held one pack per worker, so memory grows with the
 * number of blobs, never with the size of the data.
 */
#include "check-internal.h"

static void check_release(struct check *c)
{
	kl_ck_names_release(&c->snap_names);
	for (size_t i = 0; i < c->packs.n; i++)
		kl_pack_header_release(&c->packs.v[i].saved);
	kl_free(c->packs.v);
	kl_free(c->packs.slots);
	kl_free(c->blobs.v);
	for (size_t i = 0; i < c->n_problems; i++) {
		kl_free(c->problems[i].why);
		kl_buf_release(&c->problems[i].refs);
	}
	kl_free(c->problems);
	for (size_t i = 0; i < c->n_snaps; i++)
		kl_free(c->snaps[i].name);
	kl_free(c->snaps);
	kl_free(c->sel);
	kl_buf_release(&c->path);
	kl_buf_release(&c->sealed);
	kl_buf_release(&c->plain);
	pthread_mutex_destroy(&c->lock);
}

void kl_check_result_release(struct kl_check_result *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_damaged; i++)
		kl_free(c->damaged_snapshots[i]);
	kl_free(c->damaged_snapshots);
	memset(c, 0, sizeof(*c));
}

int kl_check(struct kl_repo *r, const struct kl_check_opts *o, struct kl_check_result *ret)
{
	static const struct kl_check_opts defaults = {.read_data = false};
	struct check c = {.r = r, .o = o ? o : &defaults, .res = ret};
	int rc;

	memset(ret, 0, sizeof(*ret));
	if (KL_NEVER(!kl_repo_keys(r)))
		return -EINVAL;
	if (c.o->subset_m && (!c.o->subset_n || c.o->subset_n > c.o->subset_m))
		return -KL_EUSAGE;
	pthread_mutex_init(&c.lock, NULL);
	kl_buf_init(&c.path, KL_BUF_MAX_DEFAULT);
	kl_buf_init(&c.sealed, TREE_MAX);
	kl_buf_init(&c.plain, TREE_MAX);

	rc = kl_repo_list(r, KL_OBJ_SNAPSHOT, kl_ck_names_add, &c.snap_names);
	if (rc >= 0)
		rc = kl_repo_list(r, KL_OBJ_DATA, kl_ck_list_pack, &c);
	if (rc >= 0)
		rc = kl_ck_check_indexes(&c);
	if (rc >= 0)
		rc = kl_ck_scan_orphans(&c);
	if (rc >= 0 && c.o->read_data)
		rc = kl_ck_data_pass(&c);
	if (rc >= 0)
		rc = kl_ck_load_snapshots(&c);
	if (rc >= 0)
		rc = kl_ck_walk_snapshots(&c);
	if (rc >= 0 && c.fatal)
		rc = c.fatal;
	if (rc >= 0) {
		uint64_t age = c.o->stale_tmp_age_s ? c.o->stale_tmp_age_s : 3600;

		rc = kl_repo_sweep_tmp(r, age, c.o->remove_stale_tmp, &ret->tmp);
		if (rc < 0)
			rc = kl_repo_fail(r, rc, "cannot look for temporary files");
	}
	if (rc >= 0)
		rc = kl_ck_finish(&c);
	check_release(&c);
	if (rc < 0)
		return rc;
	if (ret->errors && c.io_err)
		return c.io_err; /* nothing but read errors: no proof of damage */
	return ret->errors ? -KL_ECHECK : 0;
}
