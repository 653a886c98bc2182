/*
 * check's passes 1 and 2: the packs in data/, every index file and the
 * packs it names, and the packs no index names.
 */
#include "check-internal.h"

/* Records a pack found in data/, with its size; its index in *idx. */
static int pack_present(struct check *c, const struct kl_id *id, uint64_t size, uint32_t *idx)
{
	int rc = kl_ck_pack_get(&c->packs, id, idx);

	if (rc < 0)
		return rc;
	c->packs.v[*idx].flags |= P_PRESENT;
	c->packs.v[*idx].size = size;
	c->prog.files_total++;
	return 0;
}

int kl_ck_list_pack(const char *name, uint64_t size, void *ud)
{
	struct check *c = ud;
	struct kl_id id;
	uint32_t idx;

	if (kl_id_parse(name, &id) < 0) {
		char obj[80];

		snprintf(obj, sizeof(obj), "data/%.64s", name);
		kl_ck_problem_add(c, C_PACK, 0, true, obj, "not a pack name; ignored");
		return c->fatal;
	}
	return pack_present(c, &id, size, &idx);
}

/*
 * A pack that an index file names but the listing of data/ did not hold
 * may have been written since: a backup beside us writes its packs, then
 * their index file, and we list data/ before the index files. One request
 * tells (one per pack); the pack is then checked like the others. Returns
 * 1 and the pack in *k when it is there, 0 when not, or a negative error.
 */
static int pack_arrived(struct check *c, const struct kl_id *id, int *k)
{
	char hex[2 * KL_ID_LEN + 1];
	uint64_t size;
	uint32_t idx;
	int rc;

	*k = kl_ck_pack_find(&c->packs, id);
	if (*k >= 0 && (c->packs.v[*k].flags & P_ASKED))
		return 0; /* several index files name it: one answer is enough */
	kl_id_hex(id, hex);
	rc = kl_repo_stat(c->r, KL_OBJ_DATA, hex, &size);
	if (rc == -ENOENT || rc == -KL_ENOTFOUND) {
		rc = kl_ck_pack_get(&c->packs, id, &idx);
		if (rc < 0)
			return rc;
		c->packs.v[idx].flags |= P_ASKED;
		*k = (int)idx;
		return 0;
	}
	if (rc < 0)
		return kl_repo_fail(c->r, rc, "cannot look for pack %s: %s", hex, kl_strerror(rc));
	rc = pack_present(c, id, size, &idx);
	if (rc < 0)
		return rc;
	*k = (int)idx;
	return 1;
}

/*
 * One pack of an index file. may_be_gone: the file is a deletion record or
 * superseded, or a deletion record names the pack, so the pack may be one
 * prune has deleted already, or deletes while we check (it waits only for
 * locks alive when its record became durable, and ours may be younger: then
 * we loaded the index after the record, so our view has it); then only a
 * pack still there is checked. A snapshot that needs a blob of such a pack
 * still finds it missing (the blob is indexed nowhere else). Which were
 * there, the listing of data/ in pass 1 says; which still are, reading the
 * header (needed anyway) says: no request per pack to ask. Anything else
 * such files list, their successor lists too. A blob's copy in such a pack
 * gives way to a live one, as it does for readers.
 */
static int index_pack(struct check *c, const char *fname, const struct kl_index_pack *ip,
		      bool may_be_gone)
{
	const struct kl_pack_header *ie = &ip->h;
	struct kl_pack_header h = {0};
	const char *why = NULL;
	int k = kl_ck_pack_find(&c->packs, &ip->pack);
	bool present = k >= 0 && (c->packs.v[k].flags & P_PRESENT);
	struct pack *p;
	uint32_t idx;
	int rc, hrc = 0;

	may_be_gone |= kl_repo_pack_deleting(c->r, &ip->pack);
	if (may_be_gone && !present)
		return 0;
	if (!present) {
		rc = pack_arrived(c, &ip->pack, &k);
		if (rc < 0)
			return rc;
		present = rc > 0;
	}
	if (present) {
		hrc = kl_ck_fetch_header(c, (uint32_t)k, &h, &why);
		if (hrc == -ENOMEM)
			return hrc;
		if (hrc == -ENOENT && may_be_gone) {
			/* deleted since data/ was listed: a live file naming it finds it missing */
			c->packs.v[k].flags &= ~P_PRESENT;
			return 0;
		}
	}
	rc = kl_ck_pack_get(&c->packs, &ip->pack, &idx);
	if (rc < 0)
		goto out;
	c->packs.v[idx].flags |= P_INDEXED | (may_be_gone ? 0 : P_NAMED_LIVE);
	for (size_t i = 0; i < ie->n; i++) {
		const struct kl_blob_entry *e = &ie->blobs[i];
		struct blob *b;

		rc = kl_ck_blob_insert(&c->blobs, e->id.b, &b);
		if (rc < 0)
			goto out;
		/*
		 * Another copy: readers use the first, as the index does, but a
		 * live copy over one in a pack that may go (docs/FORMAT.md
		 * section 5): a prune may delete that pack while we run.
		 */
		if ((b->flags & B_INDEXED) && (may_be_gone || !(b->flags & B_MAY_GO)))
			continue;
		if ((b->flags & B_BAD) && b->problem && b->problem == c->packs.v[b->pack].problem) {
			b->flags &= ~B_BAD; /* blamed on the copy no longer used */
			b->problem = 0;
		}
		b->flags = (uint16_t)((b->flags & ~(B_MAY_GO | B_ORPHAN)) | B_INDEXED |
				      (may_be_gone ? B_MAY_GO : 0));
		kl_ck_blob_locate(b, idx, e);
	}
	p = &c->packs.v[idx];
	if (present) {
		rc = kl_ck_check_header(c, idx, fname, ie, hrc, &h, why);
		c->prog.files_done++;
		kl_ck_progress(c, NULL, false);
		goto out;
	}
	if (!p->problem) {
		struct problem *pr;
		char obj[80];

		kl_ck_pack_obj(c, idx, obj);
		p->problem = kl_ck_problem_add(c, C_PACK, -KL_ENOTFOUND, false, obj,
					       "missing (named by index %.16s)", fname);
		pr = kl_ck_problem_get(c, p->problem);
		if (!pr) {
			rc = c->fatal;
			goto out;
		}
		pr->attrib = true;
		pr->pack = idx + 1;
	}
	for (size_t i = 0; i < ie->n; i++)
		kl_ck_mark_entry(c, idx, &ie->blobs[i], p->problem);
	rc = 0;
out:
	kl_pack_header_release(&h);
	return rc;
}

/* Returns 1 when the file is gone since it was listed (a prune replaced it). */
static int check_index_file(struct check *c, const char *name)
{
	_cleanup_buf_ struct kl_buf raw = KL_BUF_INIT(OBJECT_MAX);
	struct kl_index_file f = {0};
	struct kl_id fid;
	bool may_be_gone;
	int rc;

	rc = kl_repo_get_object(c->r, KL_OBJ_INDEX, KL_KIND_INDEX, name, &raw);
	if (rc == -KL_ENOTFOUND) {
		kl_repo_clear_err(c->r);
		return 1;
	}
	c->res->index_files++;
	if (rc >= 0)
		rc = kl_index_file_decode(raw.data, raw.len, &f);
	if (rc == -ENOMEM)
		return rc;
	if (rc < 0) {
		char obj[80];

		c->bad_index_files += rc == -KL_ECORRUPT;
		snprintf(obj, sizeof(obj), "index %.64s", name);
		kl_ck_problem_add(c, C_INDEX, rc, false, obj, "unreadable (%s)",
				  kl_ck_object_reason(c, KL_OBJ_INDEX, KL_KIND_INDEX, name, rc));
		return c->fatal;
	}
	/* a superseded file may outlive its successor (a crash, or storage under retention) */
	may_be_gone = f.deleting ||
		      (kl_id_parse(name, &fid) >= 0 && kl_repo_index_file_superseded(c->r, &fid));
	for (size_t i = 0; rc >= 0 && i < f.n; i++)
		rc = index_pack(c, name, &f.packs[i], may_be_gone);
	kl_index_file_release(&f);
	return rc < 0 ? rc : 0;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * A prune beside us replaces index files: it writes their successor, then
 * deletes them. A file gone since the listing is no damage, but its
 * successor may be newer than the listing: then the index files are listed
 * again and the new ones checked (as kl_repo_load_index() does).
 */
int kl_ck_check_indexes(struct check *c)
{
	struct names seen = {0};
	int rc = 0;

	for (int round = 0; rc >= 0; round++) {
		struct names l = {0};
		size_t n_seen = seen.n;
		bool vanished = false;

		rc = kl_repo_list(c->r, KL_OBJ_INDEX, kl_ck_names_add, &l);
		for (size_t i = 0; rc >= 0 && i < l.n; i++) {
			if (n_seen && bsearch(&l.v[i], seen.v, n_seen, sizeof(*seen.v), cmp_name))
				continue;
			rc = check_index_file(c, l.v[i]);
			vanished |= rc == 1;
			if (rc >= 0)
				rc = kl_ck_names_add(l.v[i], 0, &seen);
		}
		kl_ck_names_release(&l);
		if (rc < 0 || !vanished)
			break;
		if (round == 4) {
			/* prunes replacing them, one after another: busy, not damaged */
			rc = kl_repo_fail(c->r, -EAGAIN,
					  "index files keep being replaced while being checked: "
					  "run check again");
			break;
		}
		qsort(seen.v, seen.n, sizeof(*seen.v), cmp_name);
	}
	kl_ck_names_release(&seen);
	return rc < 0 ? rc : 0;
}

/*
 * Packs no index names are harmless (left by an interrupted backup, which
 * the next backup adopts); their headers are read so that a blob a
 * snapshot needs but no index lists can be found in them.
 */
int kl_ck_scan_orphans(struct check *c)
{
	for (uint32_t k = 0; k < c->packs.n; k++) {
		struct kl_pack_header h;
		const char *why = NULL;
		int rc;

		if ((c->packs.v[k].flags & (P_PRESENT | P_INDEXED)) != P_PRESENT)
			continue;
		c->res->unindexed_packs++;
		rc = kl_ck_fetch_header(c, k, &h, &why);
		c->prog.files_done++;
		kl_ck_progress(c, NULL, false);
		if (rc == -ENOMEM)
			return rc;
		if (rc < 0) {
			char obj[80];

			kl_ck_pack_obj(c, k, obj);
			kl_ck_problem_add(c, C_PACK, 0, true, obj,
					  "in no index, and %s (%s): it cannot be adopted",
					  rc == -KL_ECORRUPT ? "damaged" : "unreadable", why);
			if (c->fatal)
				return c->fatal;
			continue;
		}
		for (size_t i = 0; i < h.n; i++) {
			const struct kl_blob_entry *e = &h.blobs[i];
			struct blob *b;

			rc = kl_ck_blob_insert(&c->blobs, e->id.b, &b);
			if (rc < 0) {
				kl_pack_header_release(&h);
				return rc;
			}
			if (!rc)
				continue;
			b->flags |= B_ORPHAN;
			kl_ck_blob_locate(b, k, e);
		}
		kl_pack_header_release(&h);
	}
	kl_ck_progress(c, NULL, true);
	return 0;
}
