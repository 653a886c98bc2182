/*
 * Walking snapshot trees and resolving paths in them. Trees decode
 * sorted (the decoder rejects anything else), so a depth-first walk over
 * each tree's nodes in order visits paths in sorted order.
 */
#include "keel/ops.h"

#define PATH_BUF_MAX ((size_t)1 << 30)

/* A directory being walked; kept on a heap stack so that any depth works. */
struct wframe {
	struct wframe *up;
	struct kl_tree t;
	size_t next; /* the next node of t */
	size_t base; /* path length of the directory's own path */
};

static int wframe_push(struct kl_repo *r, const struct kl_id *id, struct kl_buf *path,
		       struct wframe **top)
{
	struct wframe *f = kl_calloc(1, sizeof(*f));
	int rc;

	if (!f)
		return -ENOMEM;
	rc = kl_repo_read_tree(r, id, &f->t);
	if (rc < 0) {
		kl_free(f);
		return kl_repo_fail(r, rc, "tree of '%s' is unreadable",
				    path->len ? (const char *)path->data : "/");
	}
	f->base = path->len;
	f->up = *top;
	*top = f;
	return 0;
}

static struct wframe *wframe_pop(struct wframe *f)
{
	struct wframe *up = f->up;

	kl_tree_release(&f->t);
	kl_free(f);
	return up;
}

static int walk_tree(struct kl_repo *r, const struct kl_id *id, struct kl_buf *path, kl_walk_cb cb,
		     void *ud)
{
	struct wframe *top = NULL;
	int rc = wframe_push(r, id, path, &top);

	while (rc >= 0 && top) {
		const struct kl_node *nd;

		if (top->next == top->t.n) {
			kl_buf_setlen(path, top->base);
			top = wframe_pop(top);
			continue;
		}
		nd = &top->t.nodes[top->next++];
		kl_buf_setlen(path, top->base);
		rc = kl_buf_addch(path, '/');
		if (rc >= 0)
			rc = kl_buf_add(path, nd->name, nd->name_len);
		if (rc >= 0)
			rc = cb((const char *)path->data, nd, ud);
		if (rc == 0 && nd->type == KL_NODE_DIR && nd->has_subtree)
			rc = wframe_push(r, &nd->subtree, path, &top);
		else if (rc > 0)
			rc = 0; /* a positive return skips what is below the node */
	}
	while (top)
		top = wframe_pop(top);
	return rc;
}

int kl_walk(struct kl_repo *r, const struct kl_id *tree, const char *prefix, kl_walk_cb cb,
	    void *ud)
{
	_cleanup_buf_ struct kl_buf path = KL_BUF_INIT(PATH_BUF_MAX);
	size_t n = prefix ? strlen(prefix) : 0;
	int rc;

	while (n && prefix[n - 1] == '/')
		n--; /* "/" and "/a/" join names without doubling the slash */
	rc = kl_buf_add(&path, prefix ? prefix : "", n);
	if (rc < 0)
		return rc;
	rc = walk_tree(r, tree, &path, cb, ud);
	return rc < 0 ? rc : 0;
}

/* Moves *s to the next component ("" and "." components are skipped); false at the end. */
static bool next_comp(const char **s, size_t *len)
{
	const char *p = *s, *e;

	for (;;) {
		while (*p == '/')
			p++;
		if (!*p)
			return false;
		e = strchrnul(p, '/');
		if (!(e - p == 1 && p[0] == '.'))
			break;
		p = e;
	}
	*s = p;
	*len = (size_t)(e - p);
	return true;
}

int kl_tree_lookup(struct kl_repo *r, const struct kl_id *tree, const char *path,
		   struct kl_node *ret)
{
	struct kl_id cur = *tree;
	const char *s = path ? path : "";
	size_t len;
	int rc;

	memset(ret, 0, sizeof(*ret));
	while (next_comp(&s, &len)) {
		struct kl_tree t = {0};
		const struct kl_node *found;
		const char *rest = s + len;
		size_t i, rlen;

		rc = kl_repo_read_tree(r, &cur, &t);
		if (rc == -KL_ENOTFOUND) /* not "no such path" (14): the index lacks the tree */
			return kl_repo_fail(
				r, -KL_ECORRUPT,
				"tree on the way to '%s' is not in the index; run 'keel "
				"repair index' (if no pack holds it, it is lost)",
				path);
		if (rc < 0)
			return kl_repo_fail(r, rc, "tree on the way to '%s' is unreadable", path);
		found = kl_tree_find(&t, (const uint8_t *)s, len);
		i = found ? (size_t)(found - t.nodes) : 0;
		if (found && !next_comp(&rest, &rlen)) {
			/* the last component: take the node out of the tree instead of copying it
			 */
			*ret = t.nodes[i];
			memset(&t.nodes[i], 0, sizeof(t.nodes[i]));
			kl_tree_release(&t);
			return 0;
		}
		if (!found || t.nodes[i].type != KL_NODE_DIR || !t.nodes[i].has_subtree) {
			kl_tree_release(&t);
			return kl_repo_fail(r, -KL_ENOTFOUND, "path '%s' is not in the snapshot",
					    path);
		}
		cur = t.nodes[i].subtree;
		kl_tree_release(&t);
		s += len;
	}
	/* the root: a directory with no metadata of its own */
	ret->type = KL_NODE_DIR;
	ret->mode = 0755;
	ret->subtree = cur;
	ret->has_subtree = true;
	return 0;
}
