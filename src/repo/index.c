/*
 * The in-memory blob index: open addressing over fixed 52-byte entries,
 * keyed by the first 8 bytes of the blob id (ids are keyed MACs, so they
 * are uniformly distributed and no hash function is needed). The table
 * grows by half at a load of 0.8, so it holds 65 to 98 bytes of RAM per
 * stored blob; pack ids are kept once per pack, not per blob.
 */
#include <pthread.h>

#include "index-internal.h"

static uint64_t id_hash(const uint8_t *id)
{
	uint64_t h;

	memcpy(&h, id, sizeof(h));
	return h;
}

int kl_index_new_(struct kl_index **ret)
{
	struct kl_index *x = kl_calloc(1, sizeof(*x));

	if (!x)
		return -ENOMEM;
	pthread_mutex_init(&x->lock, NULL);
	*ret = x;
	return 0;
}

void kl_index_free_(struct kl_index *x)
{
	if (!x)
		return;
	for (size_t i = 0; i < x->n_pending; i++)
		kl_pack_header_release(&x->pending[i].h);
	kl_free(x->pending);
	kl_free(x->files);
	kl_free(x->records);
	kl_free(x->deleting);
	kl_free(x->slots);
	kl_free(x->packs);
	kl_free(x->pack_file);
	kl_free(x->superseded);
	kl_free(x->alts);
	pthread_mutex_destroy(&x->lock);
	kl_free(x);
}

struct slot *kl_index_find_slot_(struct kl_index *x, const uint8_t *id)
{
	size_t i;

	if (!x->cap)
		return NULL;
	/* Lemire's multiply-shift maps the hash onto any capacity, not just powers of two */
	for (i = (size_t)(((unsigned __int128)id_hash(id) * x->cap) >> 64);;
	     i = i + 1 < x->cap ? i + 1 : 0) {
		struct slot *s = &x->slots[i];

		if (s->state == SLOT_EMPTY || !memcmp(s->id, id, KL_ID_LEN))
			return s;
	}
}

static int grow(struct kl_index *x)
{
	/* growing by half keeps the load between 0.53 and 0.8: ~80 bytes per blob on average */
	size_t ncap = x->cap ? x->cap + x->cap / 2 : 1024;
	struct slot *old = x->slots;
	size_t ocap = x->cap;

	x->slots = kl_calloc(ncap, sizeof(struct slot));
	if (!x->slots) {
		x->slots = old;
		return -ENOMEM;
	}
	x->cap = ncap;
	for (size_t i = 0; i < ocap; i++) {
		if (old[i].state == SLOT_EMPTY)
			continue;
		*kl_index_find_slot_(x, old[i].id) = old[i];
	}
	kl_free(old);
	return 0;
}

/* Returns the slot for id, inserting an empty-state slot if absent. Lock held. */
static int slot_for(struct kl_index *x, const uint8_t *id, struct slot **ret)
{
	struct slot *s;
	int r;

	if ((x->used + 1) * 5 > x->cap * 4) {
		r = grow(x);
		if (r < 0)
			return r;
	}
	s = kl_index_find_slot_(x, id);
	if (s->state == SLOT_EMPTY) {
		memcpy(s->id, id, KL_ID_LEN);
		x->used++;
	}
	*ret = s;
	return 0;
}

static int add_pack_id(struct kl_index *x, const struct kl_id *pack, uint32_t file, uint32_t *ret)
{
	if (x->n_packs == x->cap_packs) {
		size_t ncap = x->cap_packs ? x->cap_packs * 2 : 64;
		struct kl_id *p = kl_realloc(x->packs, ncap * sizeof(*p));
		uint32_t *f;

		if (!p)
			return -ENOMEM;
		x->packs = p;
		f = kl_realloc(x->pack_file, ncap * sizeof(*f));
		if (!f)
			return -ENOMEM;
		x->pack_file = f;
		x->cap_packs = ncap;
	}
	if (x->n_packs >= UINT32_MAX - 1)
		return -E2BIG;
	x->packs[x->n_packs] = *pack;
	x->pack_file[x->n_packs] = file;
	*ret = (uint32_t)x->n_packs++;
	return 0;
}

static int copy_header(const struct kl_pack_header *h, struct kl_pack_header *ret)
{
	memset(ret, 0, sizeof(*ret));
	for (size_t i = 0; i < h->n; i++) {
		int r = kl_pack_header_add(ret, &h->blobs[i]);

		if (r < 0) {
			kl_pack_header_release(ret);
			return r;
		}
	}
	return 0;
}

static int add_alt(struct kl_index *x, const struct kl_blob_entry *e, uint32_t pidx)
{
	struct slot *a;

	if (kl_array_grow(&x->alts, &x->cap_alts, x->n_alts, sizeof(*x->alts), 64) < 0)
		return -ENOMEM;
	a = &x->alts[x->n_alts++];
	memset(a, 0, sizeof(*a));
	memcpy(a->id, e->id.b, KL_ID_LEN);
	a->pack = pidx;
	a->offset = e->offset;
	a->length = e->length;
	a->raw_length = e->raw_length;
	a->type = e->type;
	a->compression = e->compression;
	a->state = SLOT_STORED;
	return 0;
}

int kl_index_add_(struct kl_repo *r, const struct kl_id *pack, const struct kl_pack_header *h,
		  unsigned flags, uint32_t file)
{
	bool pending = flags & KL_INDEX_PENDING, deleting = flags & KL_INDEX_DELETING;
	struct kl_index *x = r->idx;
	uint32_t pidx;
	int rc;

	pthread_mutex_lock(&x->lock);
	rc = add_pack_id(x, pack, file, &pidx);
	for (size_t i = 0; rc >= 0 && i < h->n; i++) {
		const struct kl_blob_entry *e = &h->blobs[i];
		struct slot *s;

		rc = slot_for(x, e->id.b, &s);
		if (rc < 0)
			break;
		/* a duplicate copy in another pack: keep the first live one */
		if (s->state == SLOT_STORED && (deleting || !s->deleting)) {
			/* ... and remember this one in case the first turns out deleting */
			if (!deleting && !kl_id_eq(&x->packs[s->pack], pack))
				rc = add_alt(x, e, pidx);
			if (rc < 0)
				break;
			continue;
		}
		s->state = SLOT_STORED;
		s->deleting = deleting;
		s->pack = pidx;
		s->offset = e->offset;
		s->length = e->length;
		s->raw_length = e->raw_length;
		s->type = e->type;
		s->compression = e->compression;
	}
	if (rc >= 0 && pending) {
		if (x->n_pending == x->cap_pending) {
			size_t ncap = x->cap_pending ? x->cap_pending * 2 : 16;
			struct pending_pack *p = kl_realloc(x->pending, ncap * sizeof(*p));

			if (!p)
				rc = -ENOMEM;
			else {
				x->pending = p;
				x->cap_pending = ncap;
			}
		}
		if (rc >= 0) {
			struct pending_pack *pp = &x->pending[x->n_pending];

			pp->pack = *pack;
			rc = copy_header(h, &pp->h);
			if (rc >= 0)
				x->n_pending++;
		}
	}
	pthread_mutex_unlock(&x->lock);
	return rc;
}

int kl_index_add_pack_(struct kl_repo *r, const struct kl_id *pack, const struct kl_pack_header *h,
		       unsigned flags)
{
	return kl_index_add_(r, pack, h, flags, NO_FILE);
}

static void slot_loc(const struct kl_index *x, const struct slot *s, struct kl_blob_loc *loc)
{
	loc->pack = x->packs[s->pack];
	memcpy(loc->e.id.b, s->id, KL_ID_LEN);
	loc->e.type = s->type;
	loc->e.compression = s->compression;
	loc->e.offset = s->offset;
	loc->e.length = s->length;
	loc->e.raw_length = s->raw_length;
}

int kl_repo_lookup(struct kl_repo *r, const struct kl_id *id, struct kl_blob_loc *loc)
{
	struct kl_index *x = r->idx;
	struct slot *s;
	int found = 0;

	pthread_mutex_lock(&x->lock);
	s = kl_index_find_slot_(x, id->b);
	if (s && (s->state == SLOT_STORED || s->deleting)) {
		found = 1;
		if (loc)
			slot_loc(x, s, loc);
	}
	pthread_mutex_unlock(&x->lock);
	return found;
}

int kl_index_lookup_alt_(struct kl_repo *r, const struct kl_id *id, size_t *cursor,
			 struct kl_blob_loc *loc)
{
	struct kl_index *x = r->idx;
	int found = 0;

	pthread_mutex_lock(&x->lock);
	for (; !found && *cursor < x->n_alts; (*cursor)++) {
		const struct slot *a = &x->alts[*cursor];

		if (memcmp(a->id, id->b, KL_ID_LEN))
			continue;
		found = 1;
		slot_loc(x, a, loc);
	}
	pthread_mutex_unlock(&x->lock);
	return found;
}

int kl_repo_claim(struct kl_repo *r, const struct kl_id *id)
{
	struct kl_index *x = r->idx;
	struct slot *s;
	int rc;

	pthread_mutex_lock(&x->lock);
	rc = slot_for(x, id->b, &s);
	if (rc >= 0) {
		if (s->state == SLOT_CLAIMED || (s->state == SLOT_STORED && !s->deleting)) {
			rc = 1;
		} else {
			/* a copy in a pack awaiting deletion stays readable until the new one lands
			 */
			s->state = SLOT_CLAIMED;
			rc = 0;
		}
	}
	pthread_mutex_unlock(&x->lock);
	return rc;
}

size_t kl_repo_blob_count(struct kl_repo *r)
{
	size_t n = 0;

	pthread_mutex_lock(&r->idx->lock);
	for (size_t i = 0; i < r->idx->cap; i++)
		n += r->idx->slots[i].state == SLOT_STORED && !r->idx->slots[i].deleting;
	pthread_mutex_unlock(&r->idx->lock);
	return n;
}

int kl_repo_foreach_pack(struct kl_repo *r,
			 int (*cb)(const struct kl_id *pack, const struct kl_blob_entry *blobs,
				   size_t n, void *ud),
			 void *ud)
{
	struct kl_index *x = r->idx;
	struct kl_pack_header *per = NULL;
	size_t np;
	int rc = 0;

	/* group blobs by pack without holding the lock during callbacks */
	pthread_mutex_lock(&x->lock);
	np = x->n_packs;
	per = kl_calloc(np ? np : 1, sizeof(*per));
	if (!per) {
		pthread_mutex_unlock(&x->lock);
		return -ENOMEM;
	}
	for (size_t i = 0; rc >= 0 && i < x->cap; i++) {
		struct slot *s = &x->slots[i];
		struct kl_blob_entry e;

		if (s->state != SLOT_STORED)
			continue;
		memcpy(e.id.b, s->id, KL_ID_LEN);
		e.type = s->type;
		e.compression = s->compression;
		e.offset = s->offset;
		e.length = s->length;
		e.raw_length = s->raw_length;
		rc = kl_pack_header_add(&per[s->pack], &e);
	}
	struct kl_id *packs = kl_memdup(x->packs, np * sizeof(struct kl_id));
	pthread_mutex_unlock(&x->lock);
	if (!packs && np)
		rc = -ENOMEM;
	for (size_t i = 0; rc >= 0 && i < np; i++)
		if (per[i].n)
			rc = cb(&packs[i], per[i].blobs, per[i].n, ud);
	for (size_t i = 0; i < np; i++)
		kl_pack_header_release(&per[i]);
	kl_free(per);
	kl_free(packs);
	return rc;
}

size_t kl_index_pending_(struct kl_repo *r)
{
	size_t n;

	pthread_mutex_lock(&r->idx->lock);
	n = r->idx->n_pending;
	pthread_mutex_unlock(&r->idx->lock);
	return n;
}
