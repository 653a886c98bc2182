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

/*
 * The walk keeps its directories on a heap stack, not the C stack: trees
 * may be thousands of levels deep (t1008), and keel runs in small stacks.
 */
struct sframe {
	struct kl_tree t;
	struct fdir *d;
	size_t cap;  /* of d->v */
	size_t next; /* the next node of t */
	size_t base; /* path length of the directory's own path */
	bool hit;    /* the node being descended into matched */
};

struct sstack {
	struct sframe *v;
	size_t n, cap;
};

static struct fdir *memo_get(struct kl_finder *f, const struct kl_id *id, const char *key)
{
	return f->cap ? *slot_of(f, id, key) : NULL;
}

static int memo_put(struct kl_finder *f, struct fdir *d)
{
	int rc = 0;

	if ((f->n + 1) * 2 > f->cap)
		rc = memo_grow(f);
	if (rc < 0)
		return rc;
	*slot_of(f, &d->id, d->path) = d;
	f->n++;
	return 0;
}

/* Reads the tree of the directory at path (path->data) and pushes its frame. */
static int frame_push(struct kl_finder *f, struct sstack *st, const struct kl_id *id,
		      struct kl_buf *path)
{
	struct sframe *fr;
	int rc;

	if (st->n == st->cap) {
		size_t nc = st->cap ? st->cap * 2 : 16;
		struct sframe *nv = kl_realloc(st->v, nc * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		st->v = nv;
		st->cap = nc;
	}
	fr = &st->v[st->n];
	memset(fr, 0, sizeof(*fr));
	fr->base = path->len;
	fr->d = kl_calloc(1, sizeof(*fr->d));
	if (!fr->d)
		return -ENOMEM;
	fr->d->id = *id;
	if (f->by_path && !(fr->d->path = kl_strdup((const char *)path->data))) {
		fdir_free(fr->d);
		return -ENOMEM;
	}
	f->trees_read++;
	rc = kl_repo_read_tree(f->r, id, &fr->t);
	if (rc < 0) {
		fdir_free(fr->d);
		return kl_repo_fail(f->r, rc, "tree of '%s' is unreadable",
				    path->len ? (const char *)path->data : "/");
	}
	st->n++;
	return 0;
}

/* One step of the walk: the next node of the top frame, or its end. */
static int scan_step(struct kl_finder *f, struct sstack *st, struct kl_buf *path,
		     struct fdir **done)
{
	struct sframe *top = &st->v[st->n - 1];
	struct kl_node *nd;
	struct fdir *below;
	bool hit;
	int rc;

	if (top->next == top->t.n) {
		/* the directory is done: remember it, and hand it to its parent */
		rc = memo_put(f, top->d);
		if (rc < 0)
			return rc;
		*done = top->d;
		top->d = NULL;
		kl_tree_release(&top->t);
		kl_buf_setlen(path, top->base);
		st->n--;
		if (!st->n)
			return 0;
		top = &st->v[st->n - 1];
		nd = &top->t.nodes[top->next - 1];
		below = (*done)->n ? *done : NULL;
		return top->hit || below ? fdir_add(top->d, &top->cap, nd, top->hit, below) : 0;
	}
	nd = &top->t.nodes[top->next++];
	kl_buf_setlen(path, top->base);
	rc = kl_buf_addch(path, '/');
	if (rc >= 0)
		rc = kl_buf_add(path, nd->name, nd->name_len);
	if (rc < 0)
		return rc;
	hit = matches(f, (const char *)path->data, (const char *)path->data + top->base + 1, nd);
	below = NULL;
	if (nd->type == KL_NODE_DIR && nd->has_subtree) {
		below = memo_get(f, &nd->subtree, f->by_path ? (const char *)path->data : NULL);
		if (!below) {
			struct kl_id sub = nd->subtree;

			top->hit = hit;
			return frame_push(f, st, &sub, path);
		}
		if (!below->n)
			below = NULL;
	}
	return hit || below ? fdir_add(top->d, &top->cap, nd, hit, below) : 0;
}

/* The memo of the tree at id (the root: path empty), walked now if it is not known yet. */
static int scan(struct kl_finder *f, const struct kl_id *id, struct kl_buf *path, struct fdir **ret)
{
	struct sstack st = {0};
	int rc;

	*ret = memo_get(f, id, f->by_path ? (const char *)path->data : NULL);
	if (*ret)
		return 0;
	rc = frame_push(f, &st, id, path);
	while (rc >= 0 && st.n)
		rc = scan_step(f, &st, path, ret);
	for (size_t i = 0; i < st.n; i++) {
		kl_tree_release(&st.v[i].t);
		fdir_free(st.v[i].d);
	}
	kl_free(st.v);
	return rc;
}

struct eframe {
	const struct fdir *d;
	size_t next, base;
};

static int emit(const struct fdir *root, struct kl_buf *path, kl_walk_cb cb, void *ud,
		uint64_t *hits)
{
	struct eframe *v = kl_malloc(16 * sizeof(*v));
	size_t n = 1, cap = 16;
	int rc = 0;

	if (!v)
		return -ENOMEM;
	v[0] = (struct eframe){.d = root, .base = path->len};
	while (rc >= 0 && n) {
		struct eframe *top = &v[n - 1];
		const struct fent *e;

		if (top->next == top->d->n) {
			kl_buf_setlen(path, top->base);
			n--;
			continue;
		}
		e = &top->d->v[top->next++];
		kl_buf_setlen(path, top->base);
		rc = kl_buf_addch(path, '/');
		if (rc >= 0)
			rc = kl_buf_add(path, e->node.name, e->node.name_len);
		if (rc >= 0 && e->matched) {
			rc = cb((const char *)path->data, &e->node, ud);
			(*hits)++;
		}
		if (rc < 0 || !e->below)
			continue;
		if (n == cap) {
			struct eframe *nv = kl_realloc(v, 2 * cap * sizeof(*nv));

			if (!nv) {
				rc = -ENOMEM;
				break;
			}
			v = nv;
			cap *= 2;
		}
		v[n++] = (struct eframe){.d = e->below, .base = path->len};
	}
	kl_free(v);
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
