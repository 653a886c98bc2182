/*
 * A set of full 32-byte ids (blob ids are keyed MACs, so their first eight
 * bytes hash them well). Used by prune to mark what snapshots use; its
 * memory grows with the number of blobs marked, about 50 bytes each.
 */
#include "keel/repo.h"

static size_t home(const struct kl_idset *s, const struct kl_id *id)
{
	uint64_t h;

	memcpy(&h, id->b, sizeof(h));
	return (size_t)(((unsigned __int128)h * s->cap) >> 64);
}

static bool is_empty(const struct kl_idset *s, size_t i)
{
	return !(s->used[i / 8] & (1u << (i % 8)));
}

static size_t probe(const struct kl_idset *s, const struct kl_id *id)
{
	size_t i = home(s, id);

	while (!is_empty(s, i) && !kl_id_eq(&s->v[i], id))
		i = i + 1 < s->cap ? i + 1 : 0;
	return i;
}

static int grow(struct kl_idset *s)
{
	struct kl_idset n = {.cap = s->cap ? s->cap * 2 : 1024};

	n.v = kl_malloc(n.cap * sizeof(*n.v));
	n.used = kl_calloc((n.cap + 7) / 8, 1);
	if (!n.v || !n.used) {
		kl_free(n.v);
		kl_free(n.used);
		return -ENOMEM;
	}
	for (size_t i = 0; i < s->cap; i++) {
		size_t j;

		if (is_empty(s, i))
			continue;
		j = probe(&n, &s->v[i]);
		n.v[j] = s->v[i];
		n.used[j / 8] |= (uint8_t)(1u << (j % 8));
	}
	n.n = s->n;
	kl_idset_release(s);
	*s = n;
	return 0;
}

int kl_idset_add(struct kl_idset *s, const struct kl_id *id)
{
	size_t i;

	if ((s->n + 1) * 10 > s->cap * 7) {
		int rc = grow(s);

		if (rc < 0)
			return rc;
	}
	i = probe(s, id);
	if (!is_empty(s, i))
		return 0;
	s->v[i] = *id;
	s->used[i / 8] |= (uint8_t)(1u << (i % 8));
	s->n++;
	return 1;
}

bool kl_idset_has(const struct kl_idset *s, const struct kl_id *id)
{
	return s->cap && !is_empty(s, probe(s, id));
}

void kl_idset_release(struct kl_idset *s)
{
	kl_free(s->v);
	kl_free(s->used);
	memset(s, 0, sizeof(*s));
}
