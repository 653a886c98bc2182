/*
 * keel find: which entries of a snapshot match a pattern.
 *
 * Snapshots of one machine share most of their trees, so the finder
 * remembers, per tree id, which entries below that tree matched (a
 * directory's memo names the memos of its subdirectories that hold
 * matches, so nothing is copied). A tree met again in a later snapshot is
 * neither read nor matched again. Patterns on the whole path depend on
 * where a tree lies, so then the memo is per tree id and path. Only tree
 * blobs are read, never file data.
 */
#include <fnmatch.h>
#include <stdio.h>

#include "keel/query.h"

#define PATH_BUF_MAX ((size_t)1 << 30)

struct fdir;

/* An entry that matched, or a directory with matches below it. */
struct fent {
	struct kl_node node; /* without content or xattrs; only the name if !matched */
	bool matched;
	struct fdir *below; /* memo of its subtree if that holds matches */
};

struct fdir {
	struct kl_id id;
	char *path; /* NULL when the memo is by tree id alone */
	struct fent *v;
	size_t n;
};

struct kl_finder {
	struct kl_repo *r;
	struct kl_find_opts o;
	char **pats; /* patterns ready for fnmatch: path patterns get a leading "*" */
	bool *is_path;
	bool by_path; /* some pattern looks at the whole path */
	struct fdir **slots;
	size_t cap, n;
	uint64_t trees_read;
};

static uint64_t key_hash(const struct kl_id *id, const char *path)
{
	uint64_t h = kl_get_le64(id->b);

	for (const char *p = path; p && *p; p++)
		h = (h ^ (uint8_t)*p) * 0x100000001b3ULL;
	return h;
}

static struct fdir **slot_of(struct kl_finder *f, const struct kl_id *id, const char *path)
{
	size_t i = key_hash(id, path) & (f->cap - 1);

	for (;; i = (i + 1) & (f->cap - 1)) {
		struct fdir *d = f->slots[i];

		if (!d || (kl_id_eq(&d->id, id) &&
			   ((!d->path && !path) || (d->path && path && !strcmp(d->path, path)))))
			return &f->slots[i];
	}
}

static int memo_grow(struct kl_finder *f)
{
	size_t old_cap = f->cap;
	struct fdir **old = f->slots;

	f->cap = old_cap ? old_cap * 2 : 256;
	f->slots = kl_calloc(f->cap, sizeof(*f->slots));
	if (!f->slots) {
		f->slots = old;
		f->cap = old_cap;
		return -ENOMEM;
	}
	for (size_t i = 0; i < old_cap; i++)
		if (old[i])
			*slot_of(f, &old[i]->id, old[i]->path) = old[i];
	kl_free(old);
	return 0;
}

static void fdir_free(struct fdir *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++)
		kl_node_release(&d->v[i].node);
	kl_free(d->v);
	kl_free(d->path);
	kl_free(d);
}

void kl_finder_free(struct kl_finder *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->cap; i++)
		fdir_free(f->slots[i]);
	kl_free(f->slots);
	for (size_t i = 0; i < f->o.n_patterns; i++)
		kl_free(f->pats[i]);
	kl_free(f->pats);
	kl_free(f->is_path);
	kl_free(f);
}

int kl_finder_new(struct kl_repo *r, const struct kl_find_opts *o, struct kl_finder **ret)
{
	_cleanup_(kl_finder_freep) struct kl_finder *f = kl_calloc(1, sizeof(*f));

	if (!f)
		return -ENOMEM;
	f->r = r;
	f->o = *o;
	f->o.n_patterns = 0;
	f->pats = kl_calloc(o->n_patterns ? o->n_patterns : 1, sizeof(*f->pats));
	f->is_path = kl_calloc(o->n_patterns ? o->n_patterns : 1, sizeof(*f->is_path));
	if (!f->pats || !f->is_path)
		return -ENOMEM;
	for (size_t i = 0; i < o->n_patterns; i++) {
		const char *p = o->patterns[i];
		bool path = strchr(p, '/') != NULL;
		size_t n = strlen(p);

		/* a relative path pattern may match from any component on: prefix it with a star
		 * and a slash */
		f->pats[i] = kl_malloc(n + 3);
		if (!f->pats[i])
			return -ENOMEM;
		f->o.n_patterns++;
		if (path && p[0] != '/')
			snprintf(f->pats[i], n + 3, "*/%s", p);
		else
			memcpy(f->pats[i], p, n + 1);
		f->is_path[i] = path;
		f->by_path |= path;
	}
	*ret = KL_TAKE_PTR(f);
	return 0;
}

static bool matches(const struct kl_finder *f, const char *path, const char *name,
		    const struct kl_node *n)
{
	int flags = f->o.ignore_case ? FNM_CASEFOLD : 0;
	bool hit = false;

	for (size_t i = 0; i < f->o.n_patterns && !hit; i++)
		hit = !fnmatch(f->pats[i], f->is_path[i] ? path : name, flags);
	if (!hit)
		return false;
	if (f->o.has_oldest && n->mtime_sec < f->o.oldest_sec)
		return false;
	if (f->o.has_newest && n->mtime_sec > f->o.newest_sec)
		return false;
	return true;
}

static int fdir_add(struct fdir *d, size_t *cap, struct kl_node *n, bool matched,
		    struct fdir *below)
{
	struct fent *e;

	if (d->n == *cap) {
		size_t nc = *cap ? *cap * 2 : 8;
		struct fent *nv = kl_realloc(d->v, nc * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		d->v = nv;
		*cap = nc;
	}
	e = &d->v[d->n++];
	memset(e, 0, sizeof(*e));
	e->matched = matched;
	e->below = below;
	/* keep what a listing shows: the node without its content and xattrs */
	e->node = *n;
	memset(n, 0, sizeof(*n));
	kl_free(e->node.content);
	e->node.content = NULL;
	e->node.n_content = 0;
	for (size_t i = 0; i < e->node.n_xattrs; i++) {
		kl_free(e->node.xattrs[i].name);
		kl_free(e->node.xattrs[i].value);
	}
	kl_free(e->node.xattrs);
	e->node.xattrs = NULL;
	e->node.n_xattrs = 0;
	return 0;
}

static int scan(struct kl_finder *f, const struct kl_id *id, struct kl_buf *path,
		struct fdir **ret);

/* Matches the nodes of one tree (read already) into d. */
static int scan_nodes(struct kl_finder *f, struct kl_tree *t, struct kl_buf *path, struct fdir *d)
{
	size_t base = path->len, cap = 0;
	int rc = 0;

	for (size_t i = 0; i < t->n && rc >= 0; i++) {
		struct kl_node *nd = &t->nodes[i];
		struct fdir *below = NULL;
		bool hit;

		kl_buf_setlen(path, base);
		rc = kl_buf_addch(path, '/');
		if (rc >= 0)
			rc = kl_buf_add(path, nd->name, nd->name_len);
		if (rc < 0)
			break;
		hit = matches(f, (const char *)path->data, (const char *)path->data + base + 1, nd);
		if (nd->type == KL_NODE_DIR && nd->has_subtree) {
			struct kl_id sub = nd->subtree;

			rc = scan(f, &sub, path, &below);
			if (rc < 0)
				break;
			if (!below->n)
				below = NULL;
		}
		if (hit || below)
			rc = fdir_add(d, &cap, nd, hit, below);
	}
	kl_buf_setlen(path, base);
	return rc;
}

static int scan(struct kl_finder *f, const struct kl_id *id, struct kl_buf *path, struct fdir **ret)
{
	const char *key = f->by_path ? (const char *)path->data : NULL;
	struct kl_tree t = {0};
	struct fdir *d, **slot;
	int rc;

	if (f->cap) {
		slot = slot_of(f, id, key);
		if (*slot) {
			*ret = *slot;
			return 0;
		}
	}
	d = kl_calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->id = *id;
	if (key && !(d->path = kl_strdup(key))) {
		kl_free(d);
		return -ENOMEM;
	}
	f->trees_read++;
	rc = kl_repo_read_tree(f->r, id, &t);
	if (rc < 0)
		rc = kl_repo_fail(f->r, rc, "tree of '%s' is unreadable",
				  path->len ? (const char *)path->data : "/");
	if (rc >= 0)
		rc = scan_nodes(f, &t, path, d);
	kl_tree_release(&t);
	if (rc >= 0 && (f->n + 1) * 2 > f->cap)
		rc = memo_grow(f);
	if (rc < 0) {
		fdir_free(d);
		return rc;
	}
	*slot_of(f, id, d->path) = d;
	f->n++;
	*ret = d;
	return 0;
}

static int emit(const struct fdir *d, struct kl_buf *path, kl_walk_cb cb, void *ud, uint64_t *hits)
{
	size_t base = path->len;
	int rc = 0;

	for (size_t i = 0; i < d->n && rc >= 0; i++) {
		const struct fent *e = &d->v[i];

		kl_buf_setlen(path, base);
		rc = kl_buf_addch(path, '/');
		if (rc >= 0)
			rc = kl_buf_add(path, e->node.name, e->node.name_len);
		if (rc >= 0 && e->matched) {
			rc = cb((const char *)path->data, &e->node, ud);
			(*hits)++;
		}
		if (rc >= 0 && e->below)
			rc = emit(e->below, path, cb, ud, hits);
	}
	kl_buf_setlen(path, base);
	return rc;
}

int kl_finder_run(struct kl_finder *f, const struct kl_id *tree, kl_walk_cb cb, void *ud)
{
	_cleanup_buf_ struct kl_buf path = KL_BUF_INIT(PATH_BUF_MAX);
	struct fdir *d;
	uint64_t hits = 0;
	int rc;

	rc = scan(f, tree, &path, &d);
	if (rc >= 0)
		rc = emit(d, &path, cb, ud, &hits);
	if (rc < 0)
		return rc;
	return hits > INT32_MAX ? INT32_MAX : (int)hits;
}

uint64_t kl_finder_trees_read(const struct kl_finder *f)
{
	return f->trees_read;
}
