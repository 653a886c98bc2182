/*
 * keel copy's maps from SOURCE's ids to DEST's, and how a copy made
 * before fills them: the two trees are walked side by side, and what
 * DEST holds whole is taken over without reading SOURCE's data again.
 */
#include "copy-internal.h"

static size_t slot_of(const struct kl_copy_map *m, const struct kl_id *key)
{
	uint64_t h;

	memcpy(&h, key->b, sizeof(h)); /* ids are hashes: any 8 bytes spread well */
	return (size_t)h & (m->cap - 1);
}

static int grow(struct kl_copy_map *m)
{
	struct kl_copy_map nm = {.cap = m->cap ? m->cap * 2 : 1024};

	nm.e = kl_calloc(nm.cap, sizeof(*nm.e));
	if (!nm.e)
		return -ENOMEM;
	for (size_t i = 0; i < m->cap; i++) {
		size_t s;

		if (!m->e[i].used)
			continue;
		for (s = slot_of(&nm, &m->e[i].key); nm.e[s].used; s = (s + 1) & (nm.cap - 1))
			;
		nm.e[s] = m->e[i];
		nm.n++;
	}
	kl_free(m->e);
	*m = nm;
	return 0;
}

int kl_copy_map_put(struct kl_copy_map *m, const struct kl_id *key, const struct kl_id *v, size_t n)
{
	struct kl_copy_entry *e;
	size_t s;
	int rc;

	if (kl_copy_map_get(m, key, NULL))
		return 0;
	if ((m->n + 1) * 4 > m->cap * 3) {
		rc = grow(m);
		if (rc < 0)
			return rc;
	}
	for (s = slot_of(m, key); m->e[s].used; s = (s + 1) & (m->cap - 1))
		;
	e = &m->e[s];
	if (n == 1) {
		e->one = v[0];
	} else if (n > 1) {
		e->v = kl_memdup(v, n * sizeof(*v));
		if (!e->v)
			return -ENOMEM;
	}
	e->key = *key;
	e->n = n;
	e->used = true;
	m->n++;
	return 0;
}

const struct kl_id *kl_copy_map_get(const struct kl_copy_map *m, const struct kl_id *key,
				    size_t *n_ret)
{
	if (!m->cap)
		return NULL;
	for (size_t s = slot_of(m, key); m->e[s].used; s = (s + 1) & (m->cap - 1)) {
		const struct kl_copy_entry *e = &m->e[s];

		if (!kl_id_eq(&e->key, key))
			continue;
		if (n_ret)
			*n_ret = e->n;
		return e->n > 1 ? e->v : &e->one;
	}
	return NULL;
}

void kl_copy_map_release(struct kl_copy_map *m)
{
	for (size_t i = 0; i < m->cap; i++)
		kl_free(m->e[i].v);
	kl_free(m->e);
	memset(m, 0, sizeof(*m));
}

/* the keys of a fixed (image) snapshot differ in a bit: a key space of their own */
static void fixed_key(const struct kl_copy_run *c, struct kl_id *k)
{
	if (c->fixed)
		k->b[KL_ID_LEN - 1] ^= 1;
}

void kl_copy_content_key(const struct kl_copy_run *c, const struct kl_node *n, struct kl_id *ret)
{
	kl_sha256(n->content, n->n_content * sizeof(*n->content), ret);
	fixed_key(c, ret);
}

void kl_copy_tree_key(const struct kl_copy_run *c, const struct kl_id *tree, struct kl_id *ret)
{
	*ret = *tree;
	fixed_key(c, ret);
}

/* Every blob of DEST's file is in DEST's index. */
static bool content_present(struct kl_repo *dst, const struct kl_node *n)
{
	for (size_t i = 0; i < n->n_content; i++)
		if (kl_repo_lookup(dst, &n->content[i], NULL) != 1)
			return false;
	return true;
}

/*
 * A file of SOURCE and its copy in DEST: the same bytes, so the same
 * content key. Blob by blob only when the boundaries are the same ones
 * (same count and each blob as long), which re-chunking by the same
 * chunker gives but a stream cut elsewhere may not.
 */
static bool same_boundaries(struct kl_copy_run *c, const struct kl_node *s, const struct kl_node *d)
{
	if (s->n_content != d->n_content)
		return false;
	for (size_t i = 0; i < s->n_content; i++) {
		struct kl_blob_loc a, b;

		if (kl_repo_lookup(c->src, &s->content[i], &a) != 1 ||
		    kl_repo_lookup(c->dst, &d->content[i], &b) != 1 ||
		    a.e.raw_length != b.e.raw_length)
			return false;
	}
	return true;
}

static int seed_file(struct kl_copy_run *c, const struct kl_node *s, const struct kl_node *d)
{
	struct kl_id key;
	bool same;
	int rc;

	if (!content_present(c->dst, d))
		return 0;
	same = c->reuse && same_boundaries(c, s, d);
	/* an image cut otherwise (by a copy of an older keel) is no image: copied again */
	if (c->fixed && !same)
		return 0;
	kl_copy_content_key(c, s, &key);
	rc = kl_copy_map_put(&c->file_map, &key, d->content, d->n_content);
	if (rc < 0 || !same)
		return rc < 0 ? rc : 1;
	for (size_t i = 0; i < s->n_content && rc >= 0; i++)
		rc = kl_copy_map_put(&c->blob_map, &s->content[i], &d->content[i], 1);
	return rc < 0 ? rc : 1;
}

int kl_copy_seed(struct kl_copy_run *c, const struct kl_id *src_tree, const struct kl_id *dst_tree)
{
	struct kl_tree s = {0}, d = {0};
	struct kl_id key;
	bool whole = true;
	int rc;

	kl_copy_tree_key(c, src_tree, &key);
	if (kl_copy_map_get(&c->tree_map, &key, NULL))
		return 1;
	rc = kl_repo_cancelled(c->dst);
	if (rc < 0)
		return rc;
	if (kl_repo_read_tree(c->src, src_tree, &s) < 0 ||
	    kl_repo_read_tree(c->dst, dst_tree, &d) < 0) {
		/* no seed is no error: the copy reads SOURCE instead */
		kl_repo_clear_err(c->src);
		kl_repo_clear_err(c->dst);
		kl_tree_release(&s);
		kl_tree_release(&d);
		return 0;
	}
	for (size_t i = 0; i < s.n && rc >= 0; i++) {
		const struct kl_node *sn = &s.nodes[i];
		const struct kl_node *dn = kl_tree_find(&d, sn->name, sn->name_len);

		if (!dn || dn->type != sn->type) {
			whole = false; /* not the copy it claims to be: learn nothing above */
			continue;
		}
		if (sn->type == KL_NODE_DIR)
			rc = kl_copy_seed(c, &sn->subtree, &dn->subtree);
		else if (sn->type == KL_NODE_FILE && sn->n_content)
			rc = seed_file(c, sn, dn);
		else
			rc = 1;
		if (rc == 0)
			whole = false;
	}
	if (rc >= 0 && (whole = whole && s.n == d.n))
		rc = kl_copy_map_put(&c->tree_map, &key, dst_tree, 1);
	kl_tree_release(&s);
	kl_tree_release(&d);
	return rc < 0 ? rc : whole;
}
