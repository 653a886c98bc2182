/*
 * keel stats: what the repository holds and what it costs.
 *
 * Each distinct tree is read once: its totals (files and bytes as
 * restored) are remembered by tree id, and the blobs below it are counted
 * the first time the tree is met, for the snapshot that met it. So with
 * the snapshots in time order, each snapshot's "new" figures are the data
 * it added. File data is never read: sizes come from the tree nodes and
 * the index.
 */
#include "keel/crypto.h"
#include "keel/query.h"

struct tmemo {
	struct kl_id id;
	uint64_t files, bytes;
	bool used;
};

struct stats_walk {
	struct kl_repo *r;
	struct kl_stats *st;
	struct kl_stats_snap *cur;
	struct tmemo *memo;
	size_t cap, n;
	struct kl_idset blobs, contents;
};

static struct tmemo *memo_slot(struct stats_walk *w, const struct kl_id *id)
{
	size_t i = kl_get_le64(id->b) & (w->cap - 1);

	while (w->memo[i].used && !kl_id_eq(&w->memo[i].id, id))
		i = (i + 1) & (w->cap - 1);
	return &w->memo[i];
}

static int memo_put(struct stats_walk *w, const struct kl_id *id, uint64_t files, uint64_t bytes)
{
	struct tmemo *m;

	if ((w->n + 1) * 2 > w->cap) {
		struct tmemo *old = w->memo;
		size_t old_cap = w->cap;

		w->cap = old_cap ? old_cap * 2 : 256;
		w->memo = kl_calloc(w->cap, sizeof(*w->memo));
		if (!w->memo) {
			w->memo = old;
			w->cap = old_cap;
			return -ENOMEM;
		}
		for (size_t i = 0; i < old_cap; i++)
			if (old[i].used)
				*memo_slot(w, &old[i].id) = old[i];
		kl_free(old);
	}
	m = memo_slot(w, id);
	*m = (struct tmemo){.id = *id, .files = files, .bytes = bytes, .used = true};
	w->n++;
	return 0;
}

/* Counts a blob the first time any snapshot uses it. */
static int use_blob(struct stats_walk *w, const struct kl_id *id, bool tree)
{
	struct kl_blob_loc loc;
	int rc = kl_idset_add(&w->blobs, id);

	if (rc <= 0)
		return rc;
	if (!kl_repo_lookup(w->r, id, &loc)) {
		w->st->missing_blobs++;
		return 0;
	}
	if (tree) {
		w->st->tree_blobs++;
		w->st->tree_raw += loc.e.raw_length;
		w->st->tree_stored += loc.e.length;
	} else {
		w->st->data_blobs++;
		w->st->data_raw += loc.e.raw_length;
		w->st->data_stored += loc.e.length;
		w->cur->new_data_raw += loc.e.raw_length;
	}
	w->cur->new_blobs++;
	w->cur->new_raw += loc.e.raw_length;
	w->cur->new_stored += loc.e.length;
	return 0;
}

static int use_file(struct stats_walk *w, const struct kl_node *nd)
{
	struct kl_id h;
	int rc;

	for (size_t i = 0; i < nd->n_content; i++) {
		rc = use_blob(w, &nd->content[i], false);
		if (rc < 0)
			return rc;
	}
	/* a file's content is its list of blob ids: its hash names it */
	kl_sha256(nd->content, nd->n_content * sizeof(*nd->content), &h);
	rc = kl_idset_add(&w->contents, &h);
	if (rc > 0) {
		w->st->unique_files++;
		w->st->unique_file_bytes += nd->size;
	}
	return rc < 0 ? rc : 0;
}

/* A directory being summed; on a heap stack, as trees may be thousands of levels deep. */
struct tframe {
	struct kl_tree t;
	struct kl_id id;
	size_t next;
	uint64_t files, bytes;
};

struct tstack {
	struct tframe *v;
	size_t n, cap;
};

static int tframe_push(struct stats_walk *w, struct tstack *st, const struct kl_id *id)
{
	struct tframe *fr;
	int rc;

	if (st->n == st->cap) {
		size_t nc = st->cap ? st->cap * 2 : 16;
		struct tframe *nv = kl_realloc(st->v, nc * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		st->v = nv;
		st->cap = nc;
	}
	fr = &st->v[st->n];
	memset(fr, 0, sizeof(*fr));
	fr->id = *id;
	rc = kl_repo_read_tree(w->r, id, &fr->t);
	if (rc < 0)
		return kl_repo_fail(w->r, rc, "a tree is unreadable");
	st->n++;
	rc = use_blob(w, id, true);
	for (size_t i = 0; i < fr->t.n_more && rc >= 0; i++)
		rc = use_blob(w, &fr->t.more[i], true);
	return rc;
}

/* One step: the next node of the top directory, or its end (then its parent adds it up). */
static int tree_step(struct stats_walk *w, struct tstack *st)
{
	struct tframe *top = &st->v[st->n - 1];
	const struct kl_node *nd;

	if (top->next == top->t.n) {
		uint64_t f = top->files, b = top->bytes;
		int rc = memo_put(w, &top->id, f, b);

		kl_tree_release(&top->t);
		st->n--;
		if (st->n) {
			st->v[st->n - 1].files += f;
			st->v[st->n - 1].bytes += b;
		} else {
			w->cur->files = f;
			w->cur->bytes = b;
		}
		return rc;
	}
	nd = &top->t.nodes[top->next++];
	if (nd->type == KL_NODE_FILE) {
		top->files++;
		top->bytes += nd->size;
		return use_file(w, nd);
	}
	if (nd->type == KL_NODE_DIR && nd->has_subtree) {
		struct tmemo *m = w->cap ? memo_slot(w, &nd->subtree) : NULL;
		struct kl_id sub = nd->subtree;

		if (!m || !m->used)
			return tframe_push(w, st, &sub);
		top->files += m->files;
		top->bytes += m->bytes;
	}
	return 0;
}

/* Sums the snapshot whose root tree is id into w->cur. */
static int tree_totals(struct stats_walk *w, const struct kl_id *id)
{
	struct tstack st = {0};
	struct tmemo *m = w->cap ? memo_slot(w, id) : NULL;
	int rc;

	if (m && m->used) {
		w->cur->files = m->files;
		w->cur->bytes = m->bytes;
		return 0;
	}
	rc = tframe_push(w, &st, id);
	while (rc >= 0 && st.n)
		rc = tree_step(w, &st);
	for (size_t i = 0; i < st.n; i++)
		kl_tree_release(&st.v[i].t);
	kl_free(st.v);
	return rc;
}

static int count_pack(const char *name, uint64_t size, void *ud)
{
	struct kl_stats *st = ud;

	(void)name;
	st->packs++;
	st->pack_bytes += size;
	return 0;
}

static int count_index(const struct kl_id *pack, const struct kl_blob_entry *blobs, size_t n,
		       void *ud)
{
	struct kl_stats *st = ud;

	(void)pack;
	st->index_blobs += n;
	for (size_t i = 0; i < n; i++)
		st->index_stored += blobs[i].length;
	return 0;
}

void kl_stats_release(struct kl_stats *s)
{
	kl_free(s->per);
	memset(s, 0, sizeof(*s));
}

int kl_stats_compute(struct kl_repo *r, const struct kl_snapshot_ref *snaps, size_t n,
		     struct kl_stats *ret)
{
	struct stats_walk w = {.r = r, .st = ret};
	int rc = 0;

	memset(ret, 0, sizeof(*ret));
	ret->per = kl_calloc(n ? n : 1, sizeof(*ret->per));
	if (!ret->per)
		return -ENOMEM;
	ret->n_per = n;
	for (size_t i = 0; i < n && rc >= 0; i++) {
		w.cur = &ret->per[i];
		rc = tree_totals(&w, &snaps[i].s.tree);
		ret->files += w.cur->files;
		ret->restore_bytes += w.cur->bytes;
	}
	if (rc >= 0)
		rc = kl_repo_list(r, KL_OBJ_DATA, count_pack, ret);
	if (rc >= 0)
		rc = kl_repo_foreach_pack(r, count_index, ret);
	kl_free(w.memo);
	kl_idset_release(&w.blobs);
	kl_idset_release(&w.contents);
	if (rc < 0)
		kl_stats_release(ret);
	return rc;
}
