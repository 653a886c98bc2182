/*
 * check's pass 4: loading the snapshots and walking their trees, to find
 * the blobs they need and name the paths each problem affects.
 */
#include "check-internal.h"

static int snap_cmp(const void *a, const void *b)
{
	const struct snap *x = a, *y = b;

	if (x->unreadable != y->unreadable)
		return x->unreadable ? 1 : -1;
	if (x->time_ns != y->time_ns)
		return x->time_ns > y->time_ns ? -1 : 1; /* newest first */
	return strcmp(x->name, y->name);
}

int kl_ck_load_snapshots(struct check *c)
{
	_cleanup_buf_ struct kl_buf raw = KL_BUF_INIT(OBJECT_MAX);
	struct names l = c->snap_names;
	int rc = 0;

	memset(&c->snap_names, 0, sizeof(c->snap_names));
	if (l.n) {
		c->snaps = kl_calloc(l.n, sizeof(*c->snaps));
		if (!c->snaps)
			rc = -ENOMEM;
	}
	for (size_t i = 0; rc >= 0 && i < l.n; i++) {
		struct snap *s = &c->snaps[c->n_snaps];
		struct kl_snapshot snap;

		rc = kl_repo_get_object(c->r, KL_OBJ_SNAPSHOT, KL_KIND_SNAPSHOT, l.v[i], &raw);
		if (rc >= 0)
			rc = kl_snapshot_decode(raw.data, raw.len, &snap);
		if (rc == -ENOMEM)
			break;
		if (rc == -KL_ENOTFOUND) {
			rc = 0; /* forgotten while we listed */
			continue;
		}
		s->name = KL_TAKE_PTR(l.v[i]);
		c->n_snaps++;
		c->res->snapshots++;
		if (rc < 0) {
			char obj[80];
			uint32_t pr;

			s->unreadable = true;
			snprintf(obj, sizeof(obj), "snapshot %.64s", s->name);
			pr = kl_ck_problem_add(c, C_SNAPSHOT, rc, false, obj, "unreadable (%s)",
					       kl_ck_object_reason(c, KL_OBJ_SNAPSHOT,
								   KL_KIND_SNAPSHOT, s->name, rc));
			/* a read error is no proof that the snapshot is damaged */
			s->damaged = pr && !kl_ck_problem_get(c, pr)->io;
			rc = c->fatal;
			continue;
		}
		s->time_ns = snap.time_ns;
		s->tree = snap.tree;
		kl_snapshot_release(&snap);
	}
	kl_ck_names_release(&l);
	if (rc >= 0 && c->n_snaps)
		qsort(c->snaps, c->n_snaps, sizeof(*c->snaps), snap_cmp);
	return rc;
}

/*
 * A snapshot needs blob id (a tree if tree). Marks it used; sets *pr to
 * the problem that makes it unusable, recording a new one when it is
 * missing, only in an unindexed pack, or not a tree where one is needed.
 */
static int need_blob(struct check *c, const struct kl_id *id, bool tree, uint32_t *pr)
{
	static const char orphan_why[] = "in no index, but snapshots need its blobs "
					 "(intact: the next backup indexes it again)";
	static const char fallback_why[] = "in no index, but snapshots need its blobs "
					   "(intact: readers find them through the pack header "
					   "while an index file is damaged)";
	struct blob *b;
	char obj[80];
	int rc;

	*pr = 0;
	rc = kl_ck_blob_insert(&c->blobs, id->b, &b);
	if (rc < 0)
		return rc;
	b->flags |= B_USED;
	if (b->flags & B_BAD) {
		*pr = b->problem;
		return 0;
	}
	if (!(b->flags & B_LOCATED)) {
		kl_ck_blob_obj(id->b, obj);
		*pr = kl_ck_problem_add(c, C_BLOB, -KL_ENOTFOUND, false, obj,
					"missing: in no index and no pack");
	} else if (!(b->flags & B_INDEXED) && (c->packs.v[b->pack].flags & P_INDEXED)) {
		/* its pack is indexed, but no index entry names this blob: readers miss it */
		char phex[2 * KL_ID_LEN + 1];

		kl_id_hex(&c->packs.v[b->pack].id, phex);
		kl_ck_blob_obj(id->b, obj);
		*pr = kl_ck_problem_add(c, C_BLOB, -KL_ENOTFOUND, false, obj,
					"in no index: only pack %.16s holds it, and the index "
					"entries of that pack leave it out (keel repair index "
					"indexes it again)",
					phex);
	} else if (!(b->flags & B_INDEXED)) {
		struct pack *p = &c->packs.v[b->pack];

		if (!p->orphan_problem) {
			kl_ck_pack_obj(c, b->pack, obj);
			p->orphan_problem =
				kl_ck_problem_add(c, C_PACK, -KL_ENOTFOUND, false, obj, "%s",
						  c->bad_index_files ? fallback_why : orphan_why);
			if (p->orphan_problem) {
				kl_ck_problem_get(c, p->orphan_problem)->orphan = true;
				kl_ck_problem_get(c, p->orphan_problem)->fallback =
					c->bad_index_files > 0;
			}
		}
		*pr = p->orphan_problem;
	} else if (tree && b->type != KL_BLOB_TREE) {
		kl_ck_blob_obj(id->b, obj);
		*pr = kl_ck_problem_add(c, C_BLOB, -KL_ECORRUPT, false, obj,
					"a data blob where a tree is expected");
	} else {
		return 0;
	}
	if (!*pr)
		return c->fatal;
	kl_ck_problem_get(c, *pr)->attrib = true;
	b->flags |= B_BAD;
	b->problem = *pr;
	return 0;
}

/* Reads and decodes a tree from where the table says it is. */
static int read_tree(struct check *c, uint32_t pidx, const struct kl_blob_entry *e,
		     struct kl_tree *t, const char **why)
{
	char hex[2 * KL_ID_LEN + 1];
	int rc;

	memset(t, 0, sizeof(*t));
	kl_id_hex(&c->packs.v[pidx].id, hex);
	kl_buf_clear(&c->sealed);
	rc = kl_repo_get_raw(c->r, KL_OBJ_DATA, hex, e->offset, e->length, &c->sealed);
	if (rc == -ENOMEM)
		return rc;
	if (rc >= 0 && c->sealed.len != e->length)
		rc = -KL_ECORRUPT;
	if (rc < 0) {
		*why = rc == -KL_ECORRUPT ? "its pack is too short"
		       : rc == -ENOENT	  ? "its pack was removed while check ran"
					  : kl_strerror(rc);
		return rc;
	}
	rc = kl_repo_open_blob(c->r, e, c->sealed.data, &c->plain);
	if (rc == -ENOMEM)
		return rc;
	if (rc < 0) {
		*why = kl_ck_blob_reason(c, e, c->sealed.data);
		return rc;
	}
	rc = kl_tree_decode(c->plain.data, c->plain.len, t);
	/* intact, but in a format only a newer keel reads: not damage to repair */
	if (rc == -KL_EVERSION)
		*why = "its format is newer than this keel: check it with a newer keel";
	else if (rc < 0 && rc != -ENOMEM)
		*why = "does not decode as a tree";
	return rc;
}

/*
 * Reads the continuation parts of a directory too big for one tree blob
 * and joins their nodes to t, its head. Each part is a blob the snapshot
 * needs, checked like the head. Sets *unusable to the problem of the
 * first part that cannot be read (the directory cannot be walked then);
 * problems that leave a part readable are attributed to snapshot si and
 * set *bad when they damage it.
 */
static int read_parts(struct check *c, size_t si, struct kl_tree *t, bool *bad, uint32_t *unusable)
{
	*unusable = 0;
	for (size_t i = 0; i < t->n_more; i++) {
		const struct kl_id *id = &t->more[i];
		struct kl_tree part;
		struct kl_blob_entry e;
		struct problem *p;
		struct blob *b;
		const char *why = NULL;
		char obj[80];
		uint32_t pr;
		int rc;

		rc = need_blob(c, id, true, &pr);
		if (rc < 0)
			return rc;
		b = kl_ck_blob_find(&c->blobs, id->b);
		if (KL_NEVER(!b))
			return -EINVAL;
		p = kl_ck_problem_get(c, pr);
		if (p && !((p->maybe || p->orphan) && (b->flags & B_LOCATED) &&
			   b->type == KL_BLOB_TREE)) {
			*unusable = pr;
			return 0;
		}
		kl_ck_blob_entry(b, &e);
		rc = read_tree(c, b->pack, &e, &part, &why);
		if (rc >= 0) {
			rc = kl_tree_join(t, &part);
			why = "does not continue its directory's tree in order";
		}
		if (rc == -ENOMEM)
			return rc;
		if (rc < 0) {
			if (p && p->maybe) {
				p->maybe = false; /* its pack's damage is confirmed */
				*unusable = pr;
				return 0;
			}
			kl_ck_blob_obj(id->b, obj);
			pr = kl_ck_problem_add(c, C_BLOB, rc, false, obj, "tree unreadable (%s)",
					       why);
			if (!pr)
				return c->fatal;
			kl_ck_problem_get(c, pr)->attrib = true;
			b->flags |= B_BAD;
			b->problem = pr;
			*unusable = pr;
			return 0;
		}
		if (p && p->maybe) {
			/* its pack's header is damaged, but this blob is intact */
			b->flags &= ~B_BAD;
			b->problem = 0;
		} else if (pr) {
			*bad |= kl_ck_damages(c, pr);
			rc = kl_ck_attribute(c, pr, si);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

static int check_file(struct check *c, size_t si, const struct kl_node *n, bool *bad)
{
	c->n_fp = 0;
	for (size_t k = 0; k < n->n_content; k++) {
		uint32_t pr;
		bool seen = false;
		int rc;

		rc = need_blob(c, &n->content[k], false, &pr);
		if (rc < 0)
			return rc;
		if (!pr)
			continue;
		*bad |= kl_ck_damages(c, pr);
		/* name each file once per problem, however many of its blobs it has */
		for (size_t j = 0; !seen && j < c->n_fp; j++)
			seen = c->fp[j] == pr;
		if (seen)
			continue;
		if (c->n_fp < KL_ARRAY_SIZE(c->fp))
			c->fp[c->n_fp++] = pr;
		rc = kl_ck_attribute(c, pr, si);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/*
 * A tree whose children are being walked. The walk keeps these on a heap
 * stack, so a snapshot of any depth can be checked.
 */
struct cframe {
	struct cframe *up;
	struct kl_id id;
	struct kl_tree t;
	size_t next; /* the next node of t */
	size_t base; /* c->path.len of the tree's own path */
	bool bad;    /* something at or below it is bad */
	bool revisit;
};

/*
 * Enters tree id of snapshot si at c->path. Clean trees are read once for
 * all snapshots; a tree below which something is bad is read again for
 * each snapshot that holds it, to name that snapshot's affected paths.
 * Returns 1 when its children are to be walked (a frame pushed on *top),
 * 0 when it is done, with *bad_ret set when something at or below it is
 * bad.
 */
static int tree_enter(struct check *c, size_t si, const struct kl_id *id, bool *bad_ret,
		      struct cframe **top)
{
	struct kl_tree t = {0};
	struct kl_blob_entry e;
	struct problem *p;
	struct blob *b;
	struct cframe *f;
	const char *why = NULL;
	bool bad = false, revisit;
	uint32_t pr, pidx, part_pr;
	int rc;

	*bad_ret = false;
	rc = need_blob(c, id, true, &pr);
	if (rc < 0)
		return rc;
	b = kl_ck_blob_find(&c->blobs, id->b);
	if (KL_NEVER(!b))
		return -EINVAL;
	revisit = b->flags & B_VISITED;
	if (revisit && !kl_ck_damages(c, pr) && !(b->flags & B_BAD_BELOW))
		return 0;
	p = kl_ck_problem_get(c, pr);
	/*
	 * Still read a tree whose pack has a damaged header (its blobs may be
	 * intact) or is in no index (to check what lies below it).
	 */
	if (p && !((p->maybe || p->orphan) && (b->flags & B_LOCATED) && b->type == KL_BLOB_TREE)) {
		*bad_ret = true;
		return kl_ck_attribute(c, pr, si);
	}
	kl_ck_blob_entry(b, &e);
	pidx = b->pack;
	rc = read_tree(c, pidx, &e, &t, &why);
	if (rc == -ENOMEM)
		return rc;
	if (rc < 0) {
		if (p && p->maybe) {
			p->maybe = false; /* its pack's damage is confirmed */
		} else {
			char obj[80];

			kl_ck_blob_obj(id->b, obj);
			pr = kl_ck_problem_add(c, C_BLOB, rc, false, obj, "tree unreadable (%s)",
					       why);
			if (!pr)
				return c->fatal;
			kl_ck_problem_get(c, pr)->attrib = true;
			b->flags |= B_BAD;
			b->problem = pr;
		}
		*bad_ret = true;
		return kl_ck_attribute(c, pr, si);
	}
	if (p && p->maybe) {
		/* its pack's header is damaged, but this blob is intact */
		b->flags &= ~B_BAD;
		b->problem = 0;
		pr = 0;
	}
	if (pr) {
		bad = kl_ck_damages(c, pr);
		rc = kl_ck_attribute(c, pr, si);
		if (rc < 0) {
			kl_tree_release(&t);
			return rc;
		}
	}
	rc = read_parts(c, si, &t, &bad, &part_pr);
	/* a missing part grows the blob table, which moves b */
	b = rc < 0 ? NULL : kl_ck_blob_find(&c->blobs, id->b);
	if (rc >= 0 && KL_NEVER(!b))
		rc = -EINVAL;
	if (rc < 0 || part_pr) {
		kl_tree_release(&t);
		if (rc < 0)
			return rc;
		/* read again for each snapshot, to name its affected paths */
		b->flags |= B_BAD_BELOW;
		*bad_ret = true;
		return kl_ck_attribute(c, part_pr, si);
	}
	if (!revisit) {
		b->flags |= B_VISITED;
		c->res->trees++;
		c->prog.files_done++;
		kl_ck_progress(c, NULL, false);
	}
	f = kl_calloc(1, sizeof(*f));
	if (!f) {
		kl_tree_release(&t);
		return -ENOMEM;
	}
	f->up = *top;
	f->id = *id;
	f->t = t;
	f->base = c->path.len;
	f->bad = bad;
	f->revisit = revisit;
	*top = f;
	return 1;
}

/* Walks tree id of snapshot si and everything below it. */
static int walk_tree(struct check *c, size_t si, const struct kl_id *id)
{
	struct cframe *top = NULL;
	bool nb;
	int rc = tree_enter(c, si, id, &nb, &top);

	while (rc >= 0 && top) {
		struct cframe *f = top;

		rc = kl_repo_cancelled(c->r); /* SIGINT, SIGTERM */
		if (rc < 0)
			break;
		if (f->next < f->t.n) {
			const struct kl_node *n = &f->t.nodes[f->next++];

			nb = false;
			kl_buf_setlen(&c->path, f->base);
			rc = kl_buf_addch(&c->path, '/');
			if (rc >= 0)
				rc = kl_buf_add(&c->path, n->name, n->name_len);
			if (rc >= 0 && n->type == KL_NODE_FILE)
				rc = check_file(c, si, n, &nb);
			else if (rc >= 0 && n->type == KL_NODE_DIR && n->has_subtree)
				rc = tree_enter(c, si, &n->subtree, &nb, &top);
			f->bad |= nb; /* a pushed frame reports when it is done */
			continue;
		}
		if (f->bad && !f->revisit) {
			struct blob *b = kl_ck_blob_find(&c->blobs, f->id.b);

			if (b)
				b->flags |= B_BAD_BELOW;
		}
		top = f->up;
		if (top)
			top->bad |= f->bad;
		kl_tree_release(&f->t);
		kl_free(f);
	}
	while (top) {
		struct cframe *f = top;

		top = f->up;
		kl_tree_release(&f->t);
		kl_free(f);
	}
	return rc < 0 ? rc : 0;
}

int kl_ck_walk_snapshots(struct check *c)
{
	memset(&c->prog, 0, sizeof(c->prog));
	for (size_t si = 0; si < c->n_snaps; si++) {
		int rc;

		if (c->snaps[si].unreadable)
			continue;
		kl_buf_clear(&c->path);
		rc = walk_tree(c, si, &c->snaps[si].tree);
		if (rc < 0)
			return rc;
	}
	kl_ck_progress(c, NULL, true);
	return 0;
}
