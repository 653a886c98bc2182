/*
 * Prune: marks every blob the snapshots use, condemns packs that hold
 * nothing used (and repacks the used blobs of mostly unused ones), and
 * deletes condemned packs only once no process that might have read the
 * index before they were condemned is alive. docs/FORMAT.md section 7
 * explains why that makes it safe beside running backups.
 *
 * Memory: the used set (~50 bytes per used blob) and one small record per
 * pack; the data itself is only streamed through for repacking.
 */
#include <stdlib.h>

#include "prune-internal.h"

static int cmp_pack(const void *a, const void *b)
{
	return memcmp(((const struct pack_info *)a)->id.b, ((const struct pack_info *)b)->id.b,
		      KL_ID_LEN);
}

struct pack_info *kl_prune_find_pack(struct prune *p, const struct kl_id *id)
{
	struct pack_info key = {.id = *id};

	return !p->n_packs ? NULL : bsearch(&key, p->packs, p->n_packs, sizeof(key), cmp_pack);
}

static int list_pack(const char *name, uint64_t size, void *ud)
{
	struct prune *p = ud;
	struct pack_info *pi;

	if (kl_array_grow(&p->packs, &p->cap_packs, p->n_packs, sizeof(*p->packs), 256) < 0)
		return -ENOMEM;
	pi = &p->packs[p->n_packs];
	memset(pi, 0, sizeof(*pi));
	if (kl_id_parse(name, &pi->id) < 0)
		return 0;
	pi->size = size;
	p->n_packs++;
	return 0;
}

static int set_mtime(const char *name, uint64_t size, int64_t mtime_ns, void *ud)
{
	struct prune *p = ud;
	struct pack_info *pi;
	struct kl_id id;

	(void)size;
	if (kl_id_parse(name, &id) < 0)
		return 0;
	pi = kl_prune_find_pack(p, &id);
	if (pi)
		pi->mtime_ns = mtime_ns;
	return 0;
}

/*
 * Under S3 Object Lock a pack cannot be deleted before its retention ends
 * (written + lock_days); prune does not try, and does not repack it (the
 * copy would only add to what is kept). A minute of margin for clocks.
 */
static bool retained(const struct prune *p, const struct pack_info *pi)
{
	int64_t until;

	if (kl_repo_config(p->r)->lock_mode == KL_LOCK_NONE)
		return false;
	if (!pi->mtime_ns)
		return true; /* unknown age: assume the worst */
	until = pi->mtime_ns +
		(int64_t)kl_repo_config(p->r)->lock_days * KL_SEC_PER_DAY * KL_NSEC_PER_SEC;
	return kl_time_now_ns() < until + 60 * KL_NSEC_PER_SEC;
}

static int collect_alive(const char *name, const struct kl_lock_info *info, bool alive, void *ud)
{
	struct prune *p = ud;

	(void)name;
	if (!alive || kl_id_eq(&info->session, &p->self))
		return 0;
	return kl_idset_add(&p->alive, &info->session) < 0 ? -ENOMEM : 0;
}

static int list_alive(struct prune *p)
{
	kl_idset_release(&p->alive);
	return kl_repo_list_locks(p->r, collect_alive, p);
}

/* ---- planning ---------------------------------------------------------- */

static int add_blobs(const struct kl_id *pack, const struct kl_blob_entry *blobs, size_t n,
		     void *ud)
{
	struct prune *p = ud;
	struct pack_info *pi = kl_prune_find_pack(p, pack);
	int rc = 0;

	if (!pi)
		return 0; /* indexed but not stored: check reports that */
	for (size_t i = 0; rc >= 0 && i < n; i++) {
		if (kl_idset_has(&p->used, &blobs[i].id))
			pi->used_bytes += blobs[i].length;
		rc = kl_pack_header_add(&pi->h, &blobs[i]);
	}
	return rc;
}

static bool record_ripe(const struct prune *p, const struct kl_index_file *f)
{
	if (!f->wait_for_known)
		return false;
	for (size_t i = 0; i < f->n_wait_for; i++)
		if (kl_idset_has(&p->alive, &f->wait_for[i]))
			return false;
	return true;
}

static int load_records(struct prune *p, const struct kl_id *ids, size_t n)
{
	p->recs = kl_calloc(n ? n : 1, sizeof(*p->recs));
	if (!p->recs)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		int rc = kl_repo_get_index_file(p->r, &ids[i], &p->recs[p->n_recs].f);

		if (rc == -KL_ENOTFOUND)
			continue; /* another prune finished it */
		if (rc < 0)
			return kl_repo_fail(p->r, rc, "deletion record is unreadable");
		p->recs[p->n_recs].id = ids[i];
		p->recs[p->n_recs].ripe = record_ripe(p, &p->recs[p->n_recs].f);
		p->n_recs++;
	}
	return 0;
}

/* Some pack of the record could not be deleted yet: the record must stay. */
static bool record_retained(struct prune *p, const struct kl_index_file *f)
{
	for (size_t j = 0; j < f->n; j++) {
		struct pack_info *pi = kl_prune_find_pack(p, &f->packs[j].pack);

		if (pi && pi->fate == F_RETAINED)
			return true;
	}
	return false;
}

static int cmp_waste(const void *a, const void *b)
{
	const struct pack_info *x = *(struct pack_info *const *)a,
			       *y = *(struct pack_info *const *)b;
	/* the emptiest first: least copying per byte freed */
	double fx = x->size ? (double)x->used_bytes / (double)x->size : 0;
	double fy = y->size ? (double)y->used_bytes / (double)y->size : 0;

	return fx < fy ? -1 : fx > fy;
}

static int plan(struct prune *p)
{
	struct kl_id *known = NULL;
	size_t n_known = 0;
	struct pack_info **cand = NULL;
	size_t n_cand = 0;
	uint64_t used_total = 0, unused_total = 0;
	int rc;

	rc = kl_repo_index_pack_ids(p->r, &known, &n_known);
	for (size_t i = 0; rc >= 0 && i < n_known; i++) {
		struct pack_info *pi = kl_prune_find_pack(p, &known[i]);

		if (pi)
			pi->state = kl_repo_pack_deleting(p->r, &known[i]) ? P_DELETING : P_LIVE;
	}
	kl_free(known);
	if (rc >= 0)
		rc = kl_repo_foreach_pack(p->r, add_blobs, p);
	if (rc < 0)
		return rc;
	/* what earlier prunes condemned: deleted once ripe, unless a snapshot took it up again */
	for (size_t i = 0; i < p->n_recs; i++) {
		for (size_t j = 0; j < p->recs[i].f.n; j++) {
			struct pack_info *pi = kl_prune_find_pack(p, &p->recs[i].f.packs[j].pack);

			if (!pi || pi->fate)
				continue;
			if (!p->recs[i].ripe)
				pi->fate = F_WAIT;
			else
				pi->fate = pi->used_bytes ? F_RESCUE : F_DELETE;
			p->st->packs_rescued += pi->fate == F_RESCUE;
		}
	}
	cand = kl_calloc(p->n_packs ? p->n_packs : 1, sizeof(*cand));
	if (!cand)
		return -ENOMEM;
	for (size_t i = 0; i < p->n_packs; i++) {
		struct pack_info *pi = &p->packs[i];

		p->st->packs++;
		p->st->bytes += pi->size;
		if (pi->state == P_ORPHAN) {
			p->st->packs_orphan++;
			p->st->bytes_orphan += pi->size;
			continue;
		}
		if (pi->state != P_LIVE || pi->fate || pi->pinned)
			continue;
		if (!pi->used_bytes) {
			pi->fate = F_CONDEMN;
			p->st->packs_unused++;
			p->st->bytes_unused += pi->size;
			continue;
		}
		used_total += pi->used_bytes;
		unused_total += pi->size - (pi->used_bytes < pi->size ? pi->used_bytes : pi->size);
		if (!retained(p, pi))
			cand[n_cand++] = pi;
	}
	qsort(cand, n_cand, sizeof(*cand), cmp_waste);
	/* 128 bits: byte counts times 1000 may not fit 64 */
	for (size_t i = 0;
	     i < n_cand && (unsigned __int128)unused_total * 1000 >
				   (unsigned __int128)used_total * p->o->max_unused_permille;
	     i++) {
		struct pack_info *pi = cand[i];
		uint64_t waste = pi->size - pi->used_bytes;

		/* a pack with almost nothing to free is not worth rewriting */
		if (waste * 20 < pi->size)
			break;
		pi->fate = F_REPACK;
		unused_total -= waste;
		p->st->packs_repack++;
		p->st->bytes_repack += pi->size;
	}
	kl_free(cand);
	for (size_t i = 0; i < p->n_packs; i++) {
		if (p->packs[i].fate == F_WAIT) {
			p->st->packs_waiting++;
			p->st->bytes_waiting += p->packs[i].size;
		}
	}
	return 0;
}

/* ---- doing -------------------------------------------------------------- */

static int repack(struct prune *p)
{
	struct kl_packer *pk = NULL;
	_cleanup_buf_ struct kl_buf data = KL_BUF_INIT((size_t)UINT32_MAX);
	_cleanup_buf_ struct kl_buf plain = KL_BUF_INIT((size_t)128 << 20);
	int rc;

	rc = kl_packer_new(p->r, &pk);
	for (size_t i = 0; rc >= 0 && i < p->n_packs; i++) {
		struct pack_info *pi = &p->packs[i];
		char hex[2 * KL_ID_LEN + 1];

		if (pi->fate != F_REPACK)
			continue;
		kl_id_hex(&pi->id, hex);
		kl_buf_clear(&data);
		rc = kl_repo_get_raw(p->r, KL_OBJ_DATA, hex, 0, 0, &data);
		for (size_t j = 0; rc >= 0 && j < pi->h.n; j++) {
			const struct kl_blob_entry *e = &pi->h.blobs[j];

			if (!kl_idset_has(&p->used, &e->id))
				continue;
			if ((uint64_t)e->offset + e->length > data.len) {
				rc = -KL_ECORRUPT;
				break;
			}
			/* never carry damage into a new pack: the old one is about to go */
			rc = kl_repo_open_blob(p->r, e, data.data + e->offset, &plain);
			if (rc >= 0)
				rc = kl_packer_add_sealed(pk, e, data.data + e->offset);
			if (rc >= 0) {
				p->st->blobs_repacked++;
				p->st->bytes_repacked += e->length;
			}
		}
		if (rc < 0)
			rc = kl_repo_fail(p->r, rc, "cannot repack pack %.16s: %s", hex,
					  kl_strerror(rc));
	}
	if (rc >= 0)
		rc = kl_packer_flush(pk);
	/* the copies are indexed before anything names their old packs for deletion */
	if (rc >= 0)
		rc = kl_repo_flush_index(p->r);
	kl_packer_free(pk);
	return rc;
}

static int cmp_offset(const void *a, const void *b)
{
	const struct kl_blob_entry *x = a, *y = b;

	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int add_to_file(struct kl_index_file *f, struct pack_info *pi)
{
	struct kl_pack_header copy = {0};
	int rc = 0;

	/* index entries are in pack order; the index hands them out in slot order */
	if (pi->h.n)
		qsort(pi->h.blobs, pi->h.n, sizeof(*pi->h.blobs), cmp_offset);
	for (size_t i = 0; rc >= 0 && i < pi->h.n; i++)
		rc = kl_pack_header_add(&copy, &pi->h.blobs[i]);
	if (rc >= 0)
		rc = kl_index_file_add(f, &pi->id, &copy);
	kl_pack_header_release(&copy);
	return rc;
}

/* Adds the packs whose fate is one of fates (a bit mask of 1 << fate). */
static int add_packs(struct prune *p, struct kl_index_file *f, unsigned fates)
{
	int rc = 0;

	for (size_t i = 0; rc >= 0 && i < p->n_packs; i++) {
		const struct pack_info *pi = &p->packs[i];

		if (!(fates & (1u << pi->fate)) || pi->state == P_ORPHAN)
			continue;
		/* a deleting pack is live again only when rescued */
		if (pi->fate == F_KEEP && pi->state != P_LIVE)
			continue;
		rc = add_to_file(f, &p->packs[i]);
	}
	return rc;
}

static int collect_sessions(struct prune *p, struct kl_index_file *f)
{
	size_t n = 0;

	kl_free(f->wait_for);
	f->wait_for = kl_calloc(p->alive.n ? p->alive.n : 1, sizeof(struct kl_id));
	if (!f->wait_for)
		return -ENOMEM;
	for (size_t i = 0; i < p->alive.cap; i++)
		if (p->alive.used[i / 8] & (1u << (i % 8)))
			f->wait_for[n++] = p->alive.v[i];
	f->n_wait_for = n;
	f->wait_for_known = true;
	return 0;
}

static int del_obj(struct prune *p, enum kl_obj_type t, const struct kl_id *id)
{
	char hex[2 * KL_ID_LEN + 1];
	int rc;

	kl_id_hex(id, hex);
	rc = kl_repo_delete(p->r, t, hex);
	if (rc == -ENOENT)
		return 0; /* a crashed run deleted it already */
	if (rc == -KL_EOBJLOCKED && t == KL_OBJ_INDEX)
		return 0; /* a superseded index file or record under retention stays, harmless */
	if (rc < 0)
		return kl_repo_fail(p->r, rc, "cannot delete %s/%s", kl_repo_type_name(t), hex);
	return 0;
}

/* Packs this run condemns go into one record; so do records a crash left without sessions. */
static int condemn(struct prune *p, bool *ripe_now, struct kl_id *rec_id, bool *have_rec)
{
	struct kl_index_file d = {.deleting = true, .time_ns = kl_time_now_ns()};
	struct kl_id first;
	int rc;

	*have_rec = false;
	*ripe_now = false;
	for (size_t i = 0; i < p->n_recs; i++)
		if (!p->recs[i].f.wait_for_known)
			for (size_t j = 0; j < p->recs[i].f.n; j++) {
				struct pack_info *pi =
					kl_prune_find_pack(p, &p->recs[i].f.packs[j].pack);

				if (pi && pi->fate == F_WAIT)
					pi->fate = F_CONDEMN;
			}
	rc = add_packs(p, &d, 1u << F_CONDEMN | 1u << F_REPACK);
	if (rc < 0 || !d.n) {
		kl_index_file_release(&d);
		return rc;
	}
	/*
	 * The record is durable before we look at the locks: a process that
	 * locks after this point reads the index after it, and so never
	 * depends on these packs.
	 */
	rc = kl_repo_put_index_file(p->r, &d, &first);
	kl_test_point("prune-condemned");
	if (rc >= 0)
		rc = list_alive(p);
	if (rc >= 0 && p->alive.n) {
		rc = collect_sessions(p, &d);
		if (rc >= 0)
			rc = kl_repo_put_index_file(p->r, &d, rec_id);
		if (rc >= 0)
			rc = del_obj(p, KL_OBJ_INDEX, &first);
		p->st->locks_waited_for = p->alive.n;
	} else if (rc >= 0) {
		*rec_id = first;
		/*
		 * Not at once when an index file loaded after the start could not
		 * be read back: it may name a condemned pack (two hosts stored the
		 * same blob) and stays live. The next prune supersedes it first.
		 */
		*ripe_now = !p->unresolved;
	}
	kl_index_file_release(&d);
	if (rc < 0)
		return rc;
	*have_rec = true;
	/* records folded into the new one are done */
	for (size_t i = 0; rc >= 0 && i < p->n_recs; i++)
		if (!p->recs[i].f.wait_for_known)
			rc = del_obj(p, KL_OBJ_INDEX, &p->recs[i].id);
	return rc;
}

/*
 * One new index of every live pack replaces the index files loaded at the
 * start and those marking loaded later whose packs were all listed.
 */
static int rewrite_index(struct prune *p)
{
	struct kl_index_file f = {0};
	size_t n_start = p->n_start_files, n = n_start + p->n_more_files;
	int rc = -ENOMEM;

	f.supersedes = kl_calloc(n ? n : 1, sizeof(*f.supersedes));
	if (f.supersedes) {
		if (n_start)
			memcpy(f.supersedes, p->start_files, n_start * sizeof(*f.supersedes));
		if (p->n_more_files)
			memcpy(f.supersedes + n_start, p->more_files,
			       p->n_more_files * sizeof(*f.supersedes));
		f.n_supersedes = n;
		rc = add_packs(p, &f, 1u << F_KEEP | 1u << F_RESCUE);
	}
	if (rc >= 0)
		rc = kl_repo_put_index_file(p->r, &f, NULL);
	for (size_t i = 0; rc >= 0 && i < f.n_supersedes; i++) {
		rc = del_obj(p, KL_OBJ_INDEX, &f.supersedes[i]);
		p->st->index_files_replaced++;
	}
	kl_index_file_release(&f);
	return rc;
}

static int delete_packs(struct prune *p, unsigned fates)
{
	int rc = 0;

	for (size_t i = 0; rc >= 0 && i < p->n_packs; i++) {
		struct pack_info *pi = &p->packs[i];

		if (!(fates & (1u << pi->fate)))
			continue;
		/* stopping between deletions is as safe as a crash there (docs/FORMAT.md) */
		rc = kl_repo_cancelled(p->r);
		if (rc < 0)
			break;
		if (retained(p, pi)) {
			pi->fate = F_RETAINED;
			p->st->packs_retained++;
			p->st->bytes_retained += pi->size;
			continue;
		}
		rc = del_obj(p, KL_OBJ_DATA, &pi->id);
		if (rc == -KL_EOBJLOCKED) {
			kl_repo_clear_err(p->r);
			pi->fate = F_RETAINED;
			p->st->packs_retained++;
			p->st->bytes_retained += pi->size;
			rc = 0;
			continue;
		}
		kl_test_point("prune-deleted-one");
		if (rc >= 0) {
			pi->fate = F_DONE;
			p->st->packs_deleted++;
			p->st->bytes_deleted += pi->size;
		}
	}
	return rc;
}

/*
 * Nobody else held a lock once our record was durable, but a backup may
 * have finished between our marking and the record: mark its snapshot,
 * and keep (rescue) any condemned pack it uses.
 */
static int finish_now(struct prune *p)
{
	struct kl_index_file f = {0};
	struct kl_idset fresh = {0};
	int rc;

	p->fresh = &fresh;
	rc = kl_prune_mark_snapshots(p);
	p->fresh = NULL;
	for (size_t i = 0; rc >= 0 && i < p->n_packs; i++) {
		struct pack_info *pi = &p->packs[i];

		if (pi->fate != F_CONDEMN && pi->fate != F_REPACK)
			continue;
		pi->fate = F_DELETE;
		/* what was used at marking time has copies; only new use matters */
		for (size_t j = 0; j < pi->h.n && pi->fate == F_DELETE; j++)
			if (kl_idset_has(&fresh, &pi->h.blobs[j].id))
				pi->fate = F_RESCUE;
		p->st->packs_rescued += pi->fate == F_RESCUE;
	}
	if (rc >= 0)
		rc = add_packs(p, &f, 1u << F_RESCUE);
	if (rc >= 0 && f.n)
		rc = kl_repo_put_index_file(p->r, &f, NULL);
	kl_index_file_release(&f);
	kl_idset_release(&fresh);
	return rc < 0 ? rc : delete_packs(p, 1u << F_DELETE);
}

int kl_prune(struct kl_repo *r, const struct kl_prune_opts *o, struct kl_prune_stats *ret)
{
	struct prune p = {.r = r, .o = o, .st = ret};
	struct kl_id *files = NULL, *rec_ids = NULL;
	size_t n_files = 0, n_rec_ids = 0;
	bool ripe_now = false, have_rec = false;
	struct kl_id rec_id;
	int rc;

	memset(ret, 0, sizeof(*ret));
	if (kl_repo_append_only(r) && !o->dry_run)
		return kl_repo_fail(
			r, -KL_EAPPENDONLY,
			"prune deletes data: run it from a machine with full access to the "
			"storage");
	/*
	 * What a damaged index file said (which packs hold what, which are
	 * being deleted) is unknown: deleting on a guess lost data in use
	 * (the fault sweep, t4007, found it with a short read of one).
	 */
	if (kl_repo_bad_index_files(r))
		return kl_repo_fail(
			r, -KL_ECORRUPT,
			"%u index file%s cannot be read; prune deletes nothing: run keel "
			"repair index",
			kl_repo_bad_index_files(r), kl_repo_bad_index_files(r) == 1 ? "" : "s");
	kl_lock_session(r, &p.self);
	rc = kl_repo_index_files(r, &files, &n_files, &rec_ids, &n_rec_ids);
	/* locks before marking: a record is ripe only if its sessions were gone before we looked */
	if (rc >= 0)
		rc = list_alive(&p);
	if (rc >= 0)
		rc = load_records(&p, rec_ids, n_rec_ids);
	if (rc >= 0)
		rc = kl_repo_list(r, KL_OBJ_DATA, list_pack, &p);
	if (rc >= 0 && p.n_packs)
		qsort(p.packs, p.n_packs, sizeof(*p.packs), cmp_pack);
	kl_test_point("prune-listed");
	if (rc >= 0 && kl_repo_config(r)->lock_mode != KL_LOCK_NONE) {
		rc = kl_repo_list_mtime(r, KL_OBJ_DATA, set_mtime, &p);
		if (rc == -EOPNOTSUPP)
			rc = 0; /* a copy of a locked repository on disk: nothing is retained */
	}
	p.start_files = files;
	p.n_start_files = n_files;
	if (rc >= 0)
		rc = kl_prune_mark_snapshots(&p);
	if (rc >= 0)
		rc = kl_prune_take_refreshed(&p);
	ret->blobs_used = p.used.n;
	if (rc >= 0)
		rc = plan(&p);
	if (rc < 0 || o->dry_run)
		goto out;
	kl_test_point("prune-marked");
	rc = repack(&p);
	kl_test_point("prune-repacked");
	if (rc >= 0)
		rc = condemn(&p, &ripe_now, &rec_id, &have_rec);
	if (rc >= 0 && (have_rec || n_files + p.n_more_files > 1 || ret->packs_rescued))
		rc = rewrite_index(&p);
	kl_test_point("prune-reindexed");
	/* ripe records of earlier runs: their rescued packs are in the new index now */
	if (rc >= 0)
		rc = delete_packs(&p, 1u << F_DELETE);
	for (size_t i = 0; rc >= 0 && i < p.n_recs; i++)
		if (p.recs[i].ripe && !record_retained(&p, &p.recs[i].f))
			rc = del_obj(&p, KL_OBJ_INDEX, &p.recs[i].id);
	if (rc >= 0 && ripe_now) {
		rc = finish_now(&p);
		/* with packs under retention the record stays; the next prune takes it up */
		if (rc >= 0 && !ret->packs_retained)
			rc = del_obj(&p, KL_OBJ_INDEX, &rec_id);
	} else if (rc >= 0 && have_rec) {
		ret->packs_waiting += ret->packs_unused + ret->packs_repack;
		ret->bytes_waiting += ret->bytes_unused + ret->bytes_repack;
	}
out:
	for (size_t i = 0; i < p.n_packs; i++)
		kl_pack_header_release(&p.packs[i].h);
	kl_free(p.packs);
	for (size_t i = 0; i < p.n_recs; i++)
		kl_index_file_release(&p.recs[i].f);
	kl_free(p.recs);
	kl_idset_release(&p.used);
	kl_idset_release(&p.snaps);
	kl_idset_release(&p.alive);
	kl_free(files);
	kl_free(p.more_files);
	kl_free(rec_ids);
	return rc;
}
