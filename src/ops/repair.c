/*
 * Repair: rebuild the index from the packs' own headers, and salvage
 * snapshots whose data is damaged by writing new snapshots without the
 * files that cannot be restored, reporting each one.
 */
#include <stdio.h>
#include <stdlib.h>

#include "keel/maint.h"

/* ---- repair index ---------------------------------------------------------- */

struct rebuild {
	struct kl_repo *r;
	const struct kl_repair_opts *o;
	struct kl_repair_stats *st;
	struct kl_index_file f;
	struct kl_id *old;
	size_t n_old, cap_old;
};

/* an index file of at most this many blobs keeps every object well below its cap */
#define REBUILD_BLOBS_PER_FILE 500000

static int flush_file(struct rebuild *b)
{
	int rc = 0;

	if (b->f.n && !b->o->dry_run) {
		rc = kl_repo_put_index_file(b->r, &b->f, NULL);
		b->st->index_files_written += rc >= 0;
	}
	kl_index_file_release(&b->f);
	return rc;
}

static int rebuild_pack(const char *name, uint64_t size, void *ud)
{
	struct rebuild *b = ud;
	struct kl_pack_header h = {0};
	struct kl_id id;
	size_t blobs = 0;
	int rc;

	if (kl_id_parse(name, &id) < 0)
		return 0;
	b->st->packs++;
	rc = kl_repo_read_pack_header(b->r, name, size, &h);
	if (rc == -KL_ECORRUPT || rc == -ENOENT) {
		b->st->packs_damaged++;
		if (b->o->report.warn)
			b->o->report.warn(
				b->o->report.ud, name, -KL_ECORRUPT,
				"pack header is damaged: its blobs are left out of the index");
		kl_repo_clear_err(b->r);
		return 0;
	}
	if (rc < 0)
		return kl_repo_fail(b->r, rc, "cannot read pack %s", name);
	b->st->blobs += h.n;
	rc = kl_index_file_add(&b->f, &id, &h);
	kl_pack_header_release(&h);
	for (size_t i = 0; i < b->f.n; i++)
		blobs += b->f.packs[i].h.n;
	if (rc >= 0 && blobs >= REBUILD_BLOBS_PER_FILE)
		rc = flush_file(b);
	return rc;
}

static int list_old(const char *name, uint64_t size, void *ud)
{
	struct rebuild *b = ud;
	struct kl_id id;

	(void)size;
	if (kl_id_parse(name, &id) < 0)
		return 0;
	if (kl_array_grow(&b->old, &b->cap_old, b->n_old, sizeof(*b->old), 64) < 0)
		return -ENOMEM;
	b->old[b->n_old++] = id;
	return 0;
}

int kl_repair_index(struct kl_repo *r, const struct kl_repair_opts *o, struct kl_repair_stats *ret)
{
	struct rebuild b = {.r = r, .o = o, .st = ret};
	int rc;

	memset(ret, 0, sizeof(*ret));
	if (kl_repo_append_only(r) && !o->dry_run)
		return -KL_EAPPENDONLY;
	/* the old files are listed first: everything they name is in a pack read after */
	rc = kl_repo_list(r, KL_OBJ_INDEX, list_old, &b);
	if (rc >= 0)
		rc = kl_repo_list(r, KL_OBJ_DATA, rebuild_pack, &b);
	if (rc >= 0)
		rc = flush_file(&b);
	/*
	 * The new files name every readable pack, so the old ones can go, and
	 * with them any deletion records: their packs are simply live again.
	 */
	for (size_t i = 0; rc >= 0 && !o->dry_run && i < b.n_old; i++) {
		char hex[2 * KL_ID_LEN + 1];

		kl_id_hex(&b.old[i], hex);
		rc = kl_repo_delete(r, KL_OBJ_INDEX, hex);
		if (rc == -ENOENT)
			rc = 0;
		if (rc < 0)
			rc = kl_repo_fail(r, rc, "cannot delete index file %s", hex);
		else
			ret->index_files_removed++;
	}
	kl_index_file_release(&b.f);
	kl_free(b.old);
	return rc;
}

/* ---- repair snapshots -------------------------------------------------------- */

/*
 * What repairing a tree gave, by tree id: the result depends on the id
 * alone, and a snapshot may point at one subtree from many places (2^40
 * paths in 40 levels of a directory that holds its child twice).
 */
struct memo_entry {
	struct kl_id id, out;
	uint64_t lost; /* entries lost below the tree */
	size_t snap;   /* the snapshot it was repaired in */
	bool changed, used;
};
struct memo {
	struct memo_entry *v;
	size_t cap, n; /* cap a power of two, n <= cap / 2 */
};

static struct memo_entry *memo_slot(const struct memo *m, const struct kl_id *id)
{
	uint64_t h;
	size_t i;

	memcpy(&h, id->b, sizeof(h)); /* ids are keyed hashes: any bytes will do */
	for (i = (size_t)h & (m->cap - 1); m->v[i].used; i = (i + 1) & (m->cap - 1))
		if (kl_id_eq(&m->v[i].id, id))
			break;
	return &m->v[i];
}

static const struct memo_entry *memo_get(const struct memo *m, const struct kl_id *id)
{
	const struct memo_entry *e = m->cap ? memo_slot(m, id) : NULL;

	return e && e->used ? e : NULL;
}

static int memo_put(struct memo *m, const struct memo_entry *add)
{
	struct memo_entry *e;

	if ((m->n + 1) * 2 > m->cap) {
		struct memo old = *m;

		m->cap = old.cap ? old.cap * 2 : 256;
		m->v = kl_calloc(m->cap, sizeof(*m->v));
		if (!m->v) {
			*m = old;
			return -ENOMEM;
		}
		for (size_t i = 0; i < old.cap; i++)
			if (old.v[i].used)
				*memo_slot(m, &old.v[i].id) = old.v[i];
		kl_free(old.v);
	}
	e = memo_slot(m, &add->id);
	m->n += !e->used;
	*e = *add;
	e->used = true;
	return 0;
}

struct salvage {
	struct kl_repo *r;
	const struct kl_repair_opts *o;
	struct kl_repair_stats *st;
	struct kl_packer *trees;
	struct kl_buf blob;
	char path[8192];
	uint64_t lost_here; /* files and dirs lost in the snapshot being repaired */
	size_t snap;	    /* which snapshot that is */
	struct memo memo;
};

static void lost(struct salvage *s, const char *what)
{
	s->lost_here++;
	s->st->files_lost++;
	if (s->o->report.warn)
		s->o->report.warn(s->o->report.ud, s->path, -KL_ECORRUPT, what);
}

/*
 * What repair salvages around: an object that failed authentication or
 * decoding, or is missing. Anything else (an I/O error, no memory) says
 * nothing about the data: repair stops with it and changes nothing.
 */
static bool damage(int rc)
{
	return rc == -KL_ECORRUPT || rc == -KL_ENOTFOUND || rc == -E2BIG;
}

/* 1 if blob id can be restored, 0 if it is damaged or missing, or a read error. */
static int blob_ok(struct salvage *s, const struct kl_id *id)
{
	int rc;

	if (!kl_repo_lookup(s->r, id, NULL))
		return 0;
	if (!s->o->read_data)
		return 1;
	rc = kl_repo_read_blob(s->r, id, &s->blob);
	if (rc < 0 && !damage(rc))
		return rc;
	if (rc < 0) {
		kl_repo_clear_err(s->r);
		return 0;
	}
	return 1;
}

/* A directory too big for one tree blob is stored in parts, as backup stores it. */
static int store_tree_blob(void *ud, const uint8_t *p, size_t n, struct kl_id *ret)
{
	struct salvage *s = ud;

	return kl_packer_store(s->trees, KL_BLOB_TREE, p, n, ret);
}

/*
 * Joins to t, a directory's head, the parts it is continued in. A part
 * that cannot be read (or does not continue the directory in order) is one
 * loss: its entries are left out, those of every other part are kept (a
 * part's nodes sort after all before it, so skipping one keeps the order).
 */
static int join_parts(struct salvage *s, struct kl_tree *t, bool *changed)
{
	char what[128];

	for (size_t i = 0; i < t->n_more; i++) {
		struct kl_tree part;
		int rc = kl_repo_read_tree_blob(s->r, &t->more[i], &part);

		if (rc >= 0)
			rc = kl_tree_join(t, &part); /* releases part either way */
		else
			kl_tree_release(&part);
		if (rc < 0 && !damage(rc))
			return rc;
		if (rc < 0) {
			kl_repo_clear_err(s->r);
			snprintf(what, sizeof(what),
				 "part %zu of %zu of the directory cannot be read: the entries in "
				 "it "
				 "are left out",
				 i + 2, t->n_more + 1);
			lost(s, what);
			*changed = true;
		}
	}
	return 0;
}

/*
 * Rewrites tree id without what cannot be restored; *changed says whether
 * the result differs. A tree that cannot be read at all becomes empty; of
 * a directory stored in parts, only the unreadable parts' entries go.
 */
static int salvage_tree(struct salvage *s, const struct kl_id *id, struct kl_id *ret, bool *changed)
{
	struct kl_tree t = {0}, out = {0};
	const struct memo_entry *e = memo_get(&s->memo, id);
	size_t plen = strlen(s->path);
	uint64_t lost_before = s->lost_here;
	int rc;

	/*
	 * A tree repaired before gives the same result. One that lost nothing
	 * has nothing to report; one that lost entries is walked again in each
	 * snapshot, so that every snapshot lists its own losses by path.
	 */
	if (e && (!e->changed || e->snap == s->snap)) {
		*changed = e->changed;
		*ret = e->out;
		if (e->lost) {
			char what[160];

			s->lost_here += e->lost;
			s->st->files_lost += e->lost;
			snprintf(what, sizeof(what),
				 "directory has the content of one reported above: its %llu lost "
				 "entries are lost here too",
				 (unsigned long long)e->lost);
			if (s->o->report.warn)
				s->o->report.warn(s->o->report.ud, s->path, -KL_ECORRUPT, what);
		}
		return 0;
	}
	*changed = false;
	*ret = *id;
	rc = kl_repo_read_tree_blob(s->r, id, &t);
	if (rc < 0 && !damage(rc))
		return rc;
	if (rc < 0) {
		kl_repo_clear_err(s->r);
		lost(s, "directory cannot be read: restored empty");
		*changed = true;
		rc = 0; /* a loss to report, not a reason to stop repairing */
	} else if (t.n_more) {
		rc = join_parts(s, &t, changed);
	}
	for (size_t i = 0; rc >= 0 && i < t.n; i++) {
		struct kl_node *nd = &t.nodes[i];
		bool keep = true;

		if (plen + 1 + nd->name_len >= sizeof(s->path)) {
			rc = -ENAMETOOLONG;
			break;
		}
		s->path[plen] = '/';
		memcpy(s->path + plen + 1, nd->name, nd->name_len);
		s->path[plen + 1 + nd->name_len] = 0;
		for (size_t j = 0; rc >= 0 && j < nd->n_content; j++) {
			rc = blob_ok(s, &nd->content[j]);
			if (rc == 0) {
				lost(s, "file data is damaged or missing: left out");
				keep = false;
				*changed = true;
				break;
			}
		}
		if (rc >= 0 && keep && nd->has_subtree) {
			bool sub_changed;
			struct kl_id nid;

			rc = salvage_tree(s, &nd->subtree, &nid, &sub_changed);
			if (rc >= 0 && sub_changed) {
				nd->subtree = nid;
				*changed = true;
			}
		}
		s->path[plen] = 0;
		if (rc >= 0 && keep)
			rc = kl_tree_add(&out, nd);
	}
	if (rc >= 0 && *changed && !s->o->dry_run)
		rc = kl_tree_store(&out, KL_TREE_BLOB_NODES, store_tree_blob, s, ret);
	if (rc >= 0)
		rc = memo_put(&s->memo, &(struct memo_entry){.id = *id,
							     .out = *ret,
							     .lost = s->lost_here - lost_before,
							     .snap = s->snap,
							     .changed = *changed});
	s->path[plen] = 0;
	kl_tree_release(&t);
	kl_tree_release(&out);
	return rc;
}

static int add_tag(struct kl_snapshot *sn, const char *tag)
{
	char **v = kl_realloc(sn->tags, (sn->n_tags + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	sn->tags = v;
	v[sn->n_tags] = kl_strdup(tag);
	if (!v[sn->n_tags])
		return -ENOMEM;
	sn->n_tags++;
	return 0;
}

/*
 * A snapshot object that cannot be read holds nothing to salvage, and
 * blocks prune (which cannot tell what it uses) until it goes: with
 * --forget it is removed, otherwise named.
 */
static int drop_unreadable(struct kl_repo *r, const struct kl_repair_opts *o,
			   const struct kl_snapshot_list *l, struct kl_repair_stats *st)
{
	for (size_t i = 0; i < l->n_damaged; i++) {
		char hex[2 * KL_ID_LEN + 1], what[200];
		bool drop = o->forget && !o->dry_run;
		int rc = 0;

		kl_id_hex(&l->damaged[i], hex);
		if (drop) {
			rc = kl_repo_delete(r, KL_OBJ_SNAPSHOT, hex);
			if (rc == -ENOENT)
				rc = 0; /* gone already: what was asked */
			if (rc < 0)
				return kl_repo_fail(r, rc, "cannot remove snapshot %s", hex);
			st->snapshots_unreadable_removed++;
		}
		snprintf(what, sizeof(what), "snapshot %.16s cannot be read: %s", hex,
			 drop	     ? "removed (nothing in it could be salvaged)"
			 : o->forget ? "it would be removed"
				     : "nothing in it can be salvaged; 'keel repair snapshots "
				       "--forget' removes it");
		if (o->report.warn)
			o->report.warn(o->report.ud, NULL, -KL_ECORRUPT, what);
	}
	return 0;
}

int kl_repair_snapshots(struct kl_repo *r, const struct kl_repair_opts *o,
			struct kl_repair_stats *ret,
			int (*on_snapshot)(const struct kl_id *old, const struct kl_id *repaired,
					   uint64_t lost, void *ud),
			void *ud)
{
	struct salvage s = {.r = r, .o = o, .st = ret};
	struct kl_snapshot_list l;
	int rc;

	memset(ret, 0, sizeof(*ret));
	if (kl_repo_append_only(r) && o->forget && !o->dry_run)
		return -KL_EAPPENDONLY;
	kl_buf_init(&s.blob, (size_t)128 << 20);
	rc = kl_packer_new(r, &s.trees);
	if (rc >= 0)
		rc = kl_repo_list_snapshots(r, &l);
	if (rc < 0) {
		kl_packer_free(s.trees);
		kl_buf_release(&s.blob);
		return rc;
	}
	ret->snapshots_damaged_files = l.n_damaged;
	for (size_t i = 0; rc >= 0 && i < l.n; i++) {
		struct kl_snapshot *sn = &l.v[i].s;
		struct kl_id root, nid = {{0}};
		bool changed;

		ret->snapshots++;
		s.snap = i;
		s.lost_here = 0;
		s.path[0] = 0;
		rc = salvage_tree(&s, &sn->tree, &root, &changed);
		if (rc < 0 || !changed)
			continue;
		ret->snapshots_repaired++;
		if (!o->dry_run) {
			/* trees first, then their index, then the snapshot: the usual order */
			rc = kl_packer_flush(s.trees);
			if (rc >= 0)
				rc = kl_repo_flush_index(r);
			sn->tree = root;
			sn->partial = true;
			sn->parent = l.v[i].id;
			sn->has_parent = true;
			if (rc >= 0)
				rc = add_tag(sn, "repaired");
			if (rc >= 0)
				rc = kl_repo_save_snapshot(r, sn, &nid);
			if (rc >= 0 && o->forget) {
				char hex[2 * KL_ID_LEN + 1];

				kl_id_hex(&l.v[i].id, hex);
				rc = kl_repo_delete(r, KL_OBJ_SNAPSHOT, hex);
				if (rc < 0)
					rc = kl_repo_fail(r, rc, "cannot remove snapshot %s", hex);
			}
		}
		if (rc >= 0 && on_snapshot)
			rc = on_snapshot(&l.v[i].id, o->dry_run ? NULL : &nid, s.lost_here, ud);
	}
	if (rc >= 0)
		rc = drop_unreadable(r, o, &l, ret);
	kl_snapshot_list_release(&l);
	kl_packer_free(s.trees);
	kl_buf_release(&s.blob);
	kl_free(s.memo.v);
	return rc;
}
