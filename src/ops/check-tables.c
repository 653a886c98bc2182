/*
 * check's tables: its own table of blobs, keyed by id, and of packs, both
 * open addressing; and lists of object names. See check.c for why check
 * does not use the repository's index.
 */
#include "check-internal.h"

static size_t id_slot(const uint8_t *id, size_t mask)
{
	uint64_t h;

	memcpy(&h, id, sizeof(h));
	return (size_t)h & mask;
}

static struct blob *blob_probe(struct blob *v, size_t cap, const uint8_t *id)
{
	size_t mask = cap - 1;

	for (size_t i = id_slot(id, mask);; i = (i + 1) & mask)
		if (!v[i].flags || !memcmp(v[i].id, id, KL_ID_LEN))
			return &v[i];
}

struct blob *kl_ck_blob_find(struct blob_table *t, const uint8_t *id)
{
	struct blob *b;

	if (!t->cap)
		return NULL;
	b = blob_probe(t->v, t->cap, id);
	return b->flags ? b : NULL;
}

/*
 * Finds or adds id. Returns 1 if it was added (flags B_LIVE, the rest
 * zero), 0 if it was there. Invalidates pointers into the table.
 */
int kl_ck_blob_insert(struct blob_table *t, const uint8_t *id, struct blob **ret)
{
	struct blob *b;

	if ((t->used + 1) * 4 > t->cap * 3) {
		size_t ncap = t->cap ? t->cap * 2 : 4096;
		struct blob *nv;

		if (ncap > SIZE_MAX / sizeof(*nv))
			return -ENOMEM;
		nv = kl_calloc(ncap, sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		for (size_t i = 0; i < t->cap; i++)
			if (t->v[i].flags)
				*blob_probe(nv, ncap, t->v[i].id) = t->v[i];
		kl_free(t->v);
		t->v = nv;
		t->cap = ncap;
	}
	b = blob_probe(t->v, t->cap, id);
	*ret = b;
	if (b->flags)
		return 0;
	memset(b, 0, sizeof(*b));
	memcpy(b->id, id, KL_ID_LEN);
	b->flags = B_LIVE;
	t->used++;
	return 1;
}

void kl_ck_blob_entry(const struct blob *b, struct kl_blob_entry *e)
{
	memcpy(e->id.b, b->id, KL_ID_LEN);
	e->type = b->type;
	e->compression = b->compression;
	e->offset = b->offset;
	e->length = b->length;
	e->raw_length = b->raw_length;
}

/* The reverse: b is located at e in pack number pack. */
void kl_ck_blob_locate(struct blob *b, uint32_t pack, const struct kl_blob_entry *e)
{
	b->pack = pack;
	b->offset = e->offset;
	b->length = e->length;
	b->raw_length = e->raw_length;
	b->type = e->type;
	b->compression = e->compression;
}

static uint32_t *pack_probe(struct pack_table *t, uint32_t *slots, size_t nslots,
			    const struct kl_id *id)
{
	size_t mask = nslots - 1;

	for (size_t i = id_slot(id->b, mask);; i = (i + 1) & mask)
		if (!slots[i] || kl_id_eq(&t->v[slots[i] - 1].id, id))
			return &slots[i];
}

int kl_ck_pack_find(struct pack_table *t, const struct kl_id *id)
{
	uint32_t *s;

	if (!t->nslots)
		return -1;
	s = pack_probe(t, t->slots, t->nslots, id);
	return *s ? (int)(*s - 1) : -1;
}

/* Returns the pack's index, adding it if absent. */
int kl_ck_pack_get(struct pack_table *t, const struct kl_id *id, uint32_t *ret)
{
	int i = kl_ck_pack_find(t, id);

	if (i >= 0) {
		*ret = (uint32_t)i;
		return 0;
	}
	if (t->n >= INT32_MAX)
		return -E2BIG;
	if ((t->n + 1) * 2 > t->nslots) {
		size_t ns = t->nslots ? t->nslots * 2 : 256;
		uint32_t *nv = kl_calloc(ns, sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		for (size_t k = 0; k < t->n; k++)
			*pack_probe(t, nv, ns, &t->v[k].id) = (uint32_t)k + 1;
		kl_free(t->slots);
		t->slots = nv;
		t->nslots = ns;
	}
	if (t->n == t->cap) {
		size_t nc = t->cap ? t->cap * 2 : 64;
		struct pack *nv = kl_realloc(t->v, nc * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		t->v = nv;
		t->cap = nc;
	}
	memset(&t->v[t->n], 0, sizeof(t->v[t->n]));
	t->v[t->n].id = *id;
	*pack_probe(t, t->slots, t->nslots, id) = (uint32_t)t->n + 1;
	*ret = (uint32_t)t->n++;
	return 0;
}

int kl_ck_names_add(const char *name, uint64_t size, void *ud)
{
	struct names *l = ud;

	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 64;
		char **nv = kl_realloc(l->v, nc * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		l->v = nv;
		l->cap = nc;
	}
	l->v[l->n] = kl_strdup(name);
	if (!l->v[l->n])
		return -ENOMEM;
	l->n++;
	return 0;
}

void kl_ck_names_release(struct names *l)
{
	for (size_t i = 0; i < l->n; i++)
		kl_free(l->v[i]);
	kl_free(l->v);
	memset(l, 0, sizeof(*l));
}
