/*
 * Differences between two trees. Both trees are sorted, so one merge
 * pass per directory pairs up the names; a directory whose subtree id is
 * the same on both sides is identical all the way down and is never read,
 * which is what keeps diff of two snapshots of a large, mostly unchanged
 * tree fast.
 *
 * What is reported, parents before children, names in sorted order:
 *   '+' / '-'  added or removed; for a directory, every node below too
 *   'T'        the type changed; the old directory's content is reported
 *              removed and the new one's added
 *   'M'        content changed: a file's data (blob ids or size), a
 *              symlink's target, a device's number
 *   'U'        only metadata changed: mode, owner, mtime or xattrs (atime
 *              and ctime are not compared: reading a file changes them)
 */
#include "keel/ops.h"

#define PATH_BUF_MAX ((size_t)1 << 30)

struct diff_ctx {
	struct kl_repo *r;
	kl_diff_cb cb;
	void *ud;
	struct kl_buf path;
};

struct all_ctx {
	struct diff_ctx *c;
	enum kl_diff_kind kind;
};

static int report(struct diff_ctx *c, enum kl_diff_kind k, const char *path,
		  const struct kl_node *a, const struct kl_node *b)
{
	int rc = c->cb(k, path, a, b, c->ud);

	return rc < 0 ? rc : 0;
}

static int all_one(const char *path, const struct kl_node *nd, void *ud)
{
	struct all_ctx *ac = ud;

	if (ac->kind == KL_DIFF_ADDED)
		return report(ac->c, ac->kind, path, NULL, nd);
	return report(ac->c, ac->kind, path, nd, NULL);
}

/* Reports everything below a directory node as added or removed. */
static int report_below(struct diff_ctx *c, enum kl_diff_kind kind, const struct kl_node *nd)
{
	struct all_ctx ac = {c, kind};

	if (nd->type != KL_NODE_DIR || !nd->has_subtree)
		return 0;
	return kl_walk(c->r, &nd->subtree, (const char *)c->path.data, all_one, &ac);
}

static int report_all(struct diff_ctx *c, enum kl_diff_kind kind, const struct kl_node *nd)
{
	int rc = all_one((const char *)c->path.data, nd, &(struct all_ctx){c, kind});

	return rc < 0 ? rc : report_below(c, kind, nd);
}

static bool content_differs(const struct kl_node *a, const struct kl_node *b)
{
	switch (a->type) {
	case KL_NODE_FILE:
		return a->size != b->size || a->n_content != b->n_content ||
		       (a->n_content &&
			memcmp(a->content, b->content, a->n_content * sizeof(*a->content)));
	case KL_NODE_SYMLINK:
		return a->link_len != b->link_len ||
		       (a->link_len && memcmp(a->link, b->link, a->link_len));
	case KL_NODE_CHR:
	case KL_NODE_BLK:
		return a->rdev != b->rdev;
	default:
		return false;
	}
}

static bool xattrs_differ(const struct kl_node *a, const struct kl_node *b)
{
	if (a->n_xattrs != b->n_xattrs)
		return true;
	/* both lists are sorted by name: the format keeps them so */
	for (size_t i = 0; i < a->n_xattrs; i++) {
		const struct kl_xattr *x = &a->xattrs[i], *y = &b->xattrs[i];

		if (strcmp(x->name, y->name) || x->value_len != y->value_len ||
		    (x->value_len && memcmp(x->value, y->value, x->value_len)))
			return true;
	}
	return false;
}

static bool meta_differs(const struct kl_node *a, const struct kl_node *b)
{
	return a->mode != b->mode || a->uid != b->uid || a->gid != b->gid ||
	       a->mtime_sec != b->mtime_sec || a->mtime_nsec != b->mtime_nsec ||
	       xattrs_differ(a, b);
}

/*
 * A pair of directories being merged. The walk keeps these on a heap
 * stack, not the thread's, so that trees of any depth can be compared.
 */
struct dframe {
	struct dframe *up;
	struct kl_tree ta, tb;
	size_t i, j; /* the next node of ta and of tb */
	size_t base; /* c->path.len of the directory's own path */
};

/* Pushes the pair of trees a, b (at c->path) unless they are the same tree. */
static int dframe_push(struct diff_ctx *c, const struct kl_id *a, const struct kl_id *b,
		       struct dframe **top)
{
	struct dframe *f;
	int rc;

	if (kl_id_eq(a, b))
		return 0;
	f = kl_calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	rc = kl_repo_read_tree(c->r, a, &f->ta);
	if (rc >= 0)
		rc = kl_repo_read_tree(c->r, b, &f->tb);
	if (rc < 0) {
		kl_tree_release(&f->ta);
		kl_free(f);
		return kl_repo_fail(c->r, rc, "tree of '%s' is unreadable",
				    c->path.len ? (const char *)c->path.data : "/");
	}
	f->base = c->path.len;
	f->up = *top;
	*top = f;
	return 0;
}

static struct dframe *dframe_pop(struct dframe *f)
{
	struct dframe *up = f->up;

	kl_tree_release(&f->ta);
	kl_tree_release(&f->tb);
	kl_free(f);
	return up;
}

/* Both sides have a node of this name; c->path holds its path. */
static int diff_nodes(struct diff_ctx *c, const struct kl_node *a, const struct kl_node *b,
		      struct dframe **top)
{
	const char *path = (const char *)c->path.data;
	int rc;

	if (a->type != b->type) {
		rc = report(c, KL_DIFF_TYPE, path, a, b);
		if (rc >= 0)
			rc = report_below(c, KL_DIFF_REMOVED, a);
		if (rc >= 0)
			rc = report_below(c, KL_DIFF_ADDED, b);
		return rc;
	}
	rc = 0;
	if (content_differs(a, b))
		rc = report(c, KL_DIFF_MODIFIED, path, a, b);
	else if (meta_differs(a, b))
		rc = report(c, KL_DIFF_META, path, a, b);
	if (rc >= 0 && a->type == KL_NODE_DIR && a->has_subtree && b->has_subtree)
		rc = dframe_push(c, &a->subtree, &b->subtree, top);
	return rc;
}

static int diff_trees(struct diff_ctx *c, const struct kl_id *a, const struct kl_id *b)
{
	struct dframe *top = NULL;
	int rc = dframe_push(c, a, b, &top);

	while (rc >= 0 && top) {
		struct dframe *f = top;
		const struct kl_node *na = f->i < f->ta.n ? &f->ta.nodes[f->i] : NULL;
		const struct kl_node *nb = f->j < f->tb.n ? &f->tb.nodes[f->j] : NULL;
		const struct kl_node *nd;
		int cmp;

		kl_buf_setlen(&c->path, f->base);
		if (!na && !nb) {
			top = dframe_pop(f);
			continue;
		}
		if (!na)
			cmp = 1;
		else if (!nb)
			cmp = -1;
		else
			cmp = kl_name_cmp(na->name, na->name_len, nb->name, nb->name_len);
		nd = cmp <= 0 ? na : nb;
		rc = kl_buf_addch(&c->path, '/');
		if (rc >= 0)
			rc = kl_buf_add(&c->path, nd->name, nd->name_len);
		if (rc < 0)
			break;
		if (cmp < 0) {
			f->i++;
			rc = report_all(c, KL_DIFF_REMOVED, na);
		} else if (cmp > 0) {
			f->j++;
			rc = report_all(c, KL_DIFF_ADDED, nb);
		} else {
			f->i++;
			f->j++;
			rc = diff_nodes(c, na, nb, &top);
		}
	}
	while (top)
		top = dframe_pop(top);
	kl_buf_setlen(&c->path, 0);
	return rc;
}

int kl_diff(struct kl_repo *r, const struct kl_id *a, const struct kl_id *b, kl_diff_cb cb,
	    void *ud)
{
	struct diff_ctx c = {.r = r, .cb = cb, .ud = ud, .path = KL_BUF_INIT(PATH_BUF_MAX)};
	int rc;

	rc = diff_trees(&c, a, b);
	kl_buf_release(&c.path);
	return rc;
}
