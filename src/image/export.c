/*
 * An image served straight from the repository (keel image serve): reads
 * go through a cache of whole chunks in memory, so that the many small
 * reads of a booting system or a block copy fetch each chunk once; a
 * sequential reader has the following chunks fetched ahead by a few
 * threads while it works on this one, and concurrent readers (nbdkit's
 * threads) fetch different chunks in parallel, as kl_repo_read_blob
 * allows. Zero chunks are never fetched. With an overlay, written blocks
 * are read from it and the repository is never written.
 */
#include <pthread.h>

#include "image-internal.h"

#define EXPORT_CACHE_DEFAULT ((size_t)128 << 20)
#define EXPORT_FETCHERS_DEFAULT 4
#define EXPORT_RA_QUEUE 64
#define EXPORT_BLOB_MAX ((size_t)64 << 20) /* the format's cap on a blob */

enum { SLOT_EMPTY, SLOT_LOADING, SLOT_READY };

struct slot {
	uint64_t idx;
	int state;
	unsigned refs;
	uint64_t used; /* the tick of its last use: the least recent goes first */
	struct kl_buf buf;
};

struct kl_image_export {
	struct kl_repo *r;
	uint64_t size;
	uint32_t chunk;
	uint64_t n_chunks;
	struct kl_id *ids;
	bool *zero;
	struct kl_image_overlay *ov;

	pthread_mutex_t mu;
	pthread_cond_t cond; /* a slot changed state or lost its last reference */
	struct slot *slots;
	size_t n_slots;
	uint64_t tick;
	struct kl_image_export_stats st;

	/* read-ahead, under mu */
	pthread_cond_t ra_cond;
	uint64_t ra_q[EXPORT_RA_QUEUE];
	size_t ra_head, ra_n;
	uint64_t ra_last, ra_high; /* the last chunk read; the highest queued */
	unsigned readahead;
	pthread_t *threads;
	unsigned n_threads, fetchers;
	bool stop;

	pthread_mutex_t write_mu; /* one writer at a time: partial blocks are merged */
	uint8_t *merge;		  /* a block, under write_mu */
};

static size_t chunk_len(const struct kl_image_export *e, uint64_t i)
{
	uint64_t off = i * e->chunk;

	return (size_t)(e->size - off < e->chunk ? e->size - off : e->chunk);
}

static struct slot *find_slot(struct kl_image_export *e, uint64_t i)
{
	for (size_t k = 0; k < e->n_slots; k++)
		if (e->slots[k].state != SLOT_EMPTY && e->slots[k].idx == i)
			return &e->slots[k];
	return NULL;
}

/* The least recently used slot nobody holds, or NULL. */
static struct slot *victim(struct kl_image_export *e)
{
	struct slot *v = NULL;

	for (size_t k = 0; k < e->n_slots; k++) {
		struct slot *s = &e->slots[k];

		if (s->state == SLOT_LOADING || s->refs)
			continue;
		if (s->state == SLOT_EMPTY)
			return s;
		if (!v || s->used < v->used)
			v = s;
	}
	return v;
}

/* Under mu, which it drops while fetching; the slot is held (refs) on success. */
static int fetch_into(struct kl_image_export *e, struct slot *s, uint64_t i)
{
	int rc;

	s->idx = i;
	s->state = SLOT_LOADING;
	s->refs = 1;
	pthread_mutex_unlock(&e->mu);
	rc = kl_repo_read_blob(e->r, &e->ids[i], &s->buf);
	if (rc == -KL_ENOTFOUND)
		rc = -KL_ECORRUPT;
	if (rc >= 0 && s->buf.len != chunk_len(e, i))
		rc = kl_repo_fail(e->r, -KL_ECORRUPT, "chunk %llu is %zu bytes, not %zu",
				  (unsigned long long)i, s->buf.len, chunk_len(e, i));
	pthread_mutex_lock(&e->mu);
	s->state = rc < 0 ? SLOT_EMPTY : SLOT_READY;
	s->used = ++e->tick;
	if (rc < 0)
		s->refs = 0;
	pthread_cond_broadcast(&e->cond);
	return rc;
}

/*
 * Chunk i in the cache, held until put_chunk. wait false (read-ahead):
 * returns NULL at once when it is there, being fetched, or no slot is free.
 */
static int get_chunk(struct kl_image_export *e, uint64_t i, bool wait, struct slot **ret)
{
	struct slot *s;
	int rc;

	*ret = NULL;
	pthread_mutex_lock(&e->mu);
	for (;;) {
		s = find_slot(e, i);
		if (s && s->state == SLOT_READY && wait) {
			s->refs++;
			s->used = ++e->tick;
			e->st.hits++;
			*ret = s;
			rc = 0;
			break;
		}
		if (s && !wait) {
			rc = 0;
			break;
		}
		if (!s && (s = victim(e))) {
			rc = fetch_into(e, s, i);
			if (rc >= 0) {
				if (wait)
					e->st.fetched++;
				else
					e->st.fetched_ahead++;
				*ret = s;
			}
			break;
		}
		if (!wait) {
			rc = 0;
			break;
		}
		e->st.waits++; /* being fetched by another thread, or every slot busy */
		pthread_cond_wait(&e->cond, &e->mu);
	}
	pthread_mutex_unlock(&e->mu);
	return rc;
}

static void put_chunk(struct kl_image_export *e, struct slot *s)
{
	pthread_mutex_lock(&e->mu);
	if (!--s->refs)
		pthread_cond_broadcast(&e->cond);
	pthread_mutex_unlock(&e->mu);
}

/* A reader reached chunk i: queue the next ones when it reads in order. */
static void read_ahead(struct kl_image_export *e, uint64_t i)
{
	uint64_t from, to;

	if (!e->readahead || !e->n_threads)
		return;
	pthread_mutex_lock(&e->mu);
	if (i == e->ra_last || i == e->ra_last + 1) {
		if (e->ra_high < i || e->ra_high > i + e->readahead)
			e->ra_high = i; /* a new run, or a jump back */
		from = e->ra_high + 1;
		to = i + e->readahead < e->n_chunks - 1 ? i + e->readahead : e->n_chunks - 1;
		for (uint64_t k = from; k <= to && e->ra_n < EXPORT_RA_QUEUE; k++) {
			e->ra_high = k;
			if (e->zero[k] || find_slot(e, k))
				continue;
			e->ra_q[(e->ra_head + e->ra_n++) % EXPORT_RA_QUEUE] = k;
		}
		pthread_cond_broadcast(&e->ra_cond);
	}
	e->ra_last = i;
	pthread_mutex_unlock(&e->mu);
}

static void *fetcher(void *ud)
{
	struct kl_image_export *e = ud;

	pthread_mutex_lock(&e->mu);
	while (!e->stop) {
		uint64_t i;
		struct slot *s;

		if (!e->ra_n) {
			pthread_cond_wait(&e->ra_cond, &e->mu);
			continue;
		}
		i = e->ra_q[e->ra_head];
		e->ra_head = (e->ra_head + 1) % EXPORT_RA_QUEUE;
		e->ra_n--;
		pthread_mutex_unlock(&e->mu);
		/* a failed fetch ahead is not an error: the reader fetches it again */
		if (get_chunk(e, i, false, &s) >= 0 && s)
			put_chunk(e, s);
		pthread_mutex_lock(&e->mu);
	}
	pthread_mutex_unlock(&e->mu);
	return NULL;
}

/* [off, off + len) from the repository, chunk by chunk. */
static int read_base(struct kl_image_export *e, uint8_t *buf, size_t len, uint64_t off)
{
	while (len) {
		uint64_t i = off / e->chunk, in = off - i * e->chunk;
		size_t n = chunk_len(e, i) - (size_t)in;
		struct slot *s;
		int rc;

		n = n < len ? n : len;
		read_ahead(e, i);
		if (e->zero[i]) {
			memset(buf, 0, n);
		} else {
			rc = get_chunk(e, i, true, &s);
			if (rc < 0)
				return rc;
			memcpy(buf, s->buf.data + in, n);
			put_chunk(e, s);
		}
		buf += n;
		off += n;
		len -= n;
	}
	return 0;
}

int kl_image_export_read(struct kl_image_export *e, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;
	uint32_t bs;

	if (off > e->size || len > e->size - off)
		return -EINVAL;
	if (!e->ov)
		return read_base(e, p, len, off);
	/* runs of blocks that are all in the overlay or all not */
	bs = kl_img_overlay_block(e->ov);
	while (len) {
		bool in = kl_img_overlay_has(e->ov, off / bs);
		size_t n = 0;
		int rc;

		while (n < len) {
			uint64_t o = off + n, end = (o / bs + 1) * bs;
			size_t step = end - o < len - n ? (size_t)(end - o) : len - n;

			if (kl_img_overlay_has(e->ov, o / bs) != in)
				break;
			n += step;
		}
		rc = in ? kl_img_overlay_read(e->ov, p, n, off) : read_base(e, p, n, off);
		if (rc < 0)
			return rc;
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

int kl_image_export_write(struct kl_image_export *e, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;
	uint32_t bs;
	int rc = 0;

	if (!e->ov)
		return -EROFS;
	if (off > e->size || len > e->size - off)
		return -EINVAL;
	bs = kl_img_overlay_block(e->ov);
	pthread_mutex_lock(&e->write_mu);
	while (len && rc >= 0) {
		uint64_t b = off / bs, boff = b * bs, in = off - boff;
		size_t blen = (size_t)(e->size - boff < bs ? e->size - boff : bs);
		size_t n = blen - (size_t)in < len ? blen - (size_t)in : len;

		if (n == blen) {
			rc = kl_img_overlay_write(e->ov, p, n, off);
		} else {
			/* part of a block: merged with what it holds (overlay or repository) */
			rc = kl_img_overlay_has(e->ov, b)
				     ? kl_img_overlay_read(e->ov, e->merge, blen, boff)
				     : read_base(e, e->merge, blen, boff);
			if (rc >= 0) {
				memcpy(e->merge + in, p, n);
				rc = kl_img_overlay_write(e->ov, e->merge, blen, boff);
			}
		}
		p += n;
		off += n;
		len -= n;
	}
	pthread_mutex_unlock(&e->write_mu);
	return rc;
}

int kl_image_export_flush(struct kl_image_export *e)
{
	int rc;

	if (!e->ov)
		return 0;
	pthread_mutex_lock(&e->write_mu);
	rc = kl_img_overlay_flush(e->ov);
	pthread_mutex_unlock(&e->write_mu);
	return rc;
}

void kl_image_export_extent(struct kl_image_export *e, uint64_t off, uint64_t len, uint64_t *run,
			    bool *zero)
{
	uint32_t bs = e->ov ? kl_img_overlay_block(e->ov) : e->chunk;
	uint64_t n = 0;
	bool first = true;

	*zero = false;
	if (off >= e->size) {
		*run = 0;
		return;
	}
	len = len < e->size - off ? len : e->size - off;
	/* steps of blocks (overlay) or chunks: both divide the chunk size */
	while (n < len) {
		uint64_t o = off + n, end = (o / bs + 1) * bs;
		bool z = e->zero[o / e->chunk] && !(e->ov && kl_img_overlay_has(e->ov, o / bs));

		if (first) {
			*zero = z;
			first = false;
		} else if (z != *zero) {
			break;
		}
		n += end - o < len - n ? end - o : len - n;
	}
	*run = n;
}

static int export_alloc(struct kl_image_export *e, const struct kl_node *n,
			const struct kl_image_export_opts *o)
{
	size_t cache = o->cache_bytes ? o->cache_bytes : EXPORT_CACHE_DEFAULT;

	e->fetchers = o->fetchers ? o->fetchers : EXPORT_FETCHERS_DEFAULT;
	e->readahead = o->readahead;
	/* every fetcher a slot, and some for readers, whatever the cache size says */
	e->n_slots = cache / e->chunk;
	if (e->n_slots < e->fetchers + 4u)
		e->n_slots = e->fetchers + 4u;
	e->ids = kl_memdup(n->content, n->n_content * sizeof(struct kl_id));
	e->zero = kl_calloc(n->n_content, sizeof(bool));
	e->slots = kl_calloc(e->n_slots, sizeof(struct slot));
	if (!e->ids || !e->zero || !e->slots)
		return -ENOMEM;
	for (size_t k = 0; k < e->n_slots; k++)
		e->slots[k].buf = (struct kl_buf)KL_BUF_INIT(EXPORT_BLOB_MAX);
	if (o->overlay && !(e->merge = kl_malloc(kl_img_overlay_block(o->overlay))))
		return -ENOMEM;
	return 0;
}

int kl_image_export_open(struct kl_repo *r, const struct kl_node *n, uint32_t chunk_size,
			 const struct kl_image_export_opts *o, struct kl_image_export **ret)
{
	struct kl_image_export *e;
	struct kl_img_zero zero = {0};
	int rc;

	*ret = NULL;
	if (n->type != KL_NODE_FILE || chunk_size < KL_IMAGE_CHUNK_MIN ||
	    chunk_size > KL_IMAGE_CHUNK_MAX || (chunk_size & (chunk_size - 1)) ||
	    n->n_content != (n->size + chunk_size - 1) / chunk_size || !n->n_content)
		return kl_repo_fail(r, -KL_ECORRUPT,
				    "not an image of fixed chunks (%zu chunks of %u bytes for "
				    "%llu bytes)",
				    n->n_content, chunk_size, (unsigned long long)n->size);
	if (o->overlay && (kl_img_overlay_block(o->overlay) > chunk_size))
		return kl_repo_fail(r, -KL_EUSAGE,
				    "the overlay's blocks are larger than the image's chunks");
	e = kl_calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->r = r;
	e->size = n->size;
	e->chunk = chunk_size;
	e->n_chunks = n->n_content;
	e->ov = o->overlay;
	e->ra_last = UINT64_MAX - 1; /* nothing read yet: no read-ahead for a first read */
	pthread_mutex_init(&e->mu, NULL);
	pthread_mutex_init(&e->write_mu, NULL);
	pthread_cond_init(&e->cond, NULL);
	pthread_cond_init(&e->ra_cond, NULL);
	rc = export_alloc(e, n, o);
	for (uint64_t i = 0; rc >= 0 && i < e->n_chunks; i++) {
		const struct kl_id *z;
		bool fresh;

		rc = kl_img_zero_id(&zero, kl_repo_keys(r), chunk_len(e, i), &z, &fresh);
		if (rc >= 0)
			e->zero[i] = !memcmp(z->b, e->ids[i].b, KL_ID_LEN);
	}
	if (rc < 0) {
		e->ov = NULL; /* the caller keeps it on failure */
		kl_image_export_free(e);
		return rc;
	}
	*ret = e;
	return 0;
}

int kl_image_export_start(struct kl_image_export *e)
{
	if (!e->readahead || e->threads)
		return 0;
	e->threads = kl_calloc(e->fetchers, sizeof(pthread_t));
	if (!e->threads)
		return -ENOMEM;
	for (; e->n_threads < e->fetchers; e->n_threads++) {
		int rc = pthread_create(&e->threads[e->n_threads], NULL, fetcher, e);

		if (rc)
			return -rc;
	}
	return 0;
}

void kl_image_export_free(struct kl_image_export *e)
{
	if (!e)
		return;
	pthread_mutex_lock(&e->mu);
	e->stop = true;
	pthread_cond_broadcast(&e->ra_cond);
	pthread_mutex_unlock(&e->mu);
	for (unsigned k = 0; k < e->n_threads; k++)
		pthread_join(e->threads[k], NULL);
	kl_free(e->threads);
	for (size_t k = 0; e->slots && k < e->n_slots; k++)
		kl_buf_release(&e->slots[k].buf);
	kl_free(e->slots);
	kl_free(e->ids);
	kl_free(e->zero);
	kl_free(e->merge);
	kl_image_overlay_free(e->ov);
	pthread_cond_destroy(&e->ra_cond);
	pthread_cond_destroy(&e->cond);
	pthread_mutex_destroy(&e->write_mu);
	pthread_mutex_destroy(&e->mu);
	kl_free(e);
}

uint64_t kl_image_export_size(const struct kl_image_export *e)
{
	return e->size;
}

bool kl_image_export_writable(const struct kl_image_export *e)
{
	return e->ov != NULL;
}

void kl_image_export_stats(struct kl_image_export *e, struct kl_image_export_stats *ret)
{
	pthread_mutex_lock(&e->mu);
	*ret = e->st;
	pthread_mutex_unlock(&e->mu);
	if (e->ov)
		ret->overlay_blocks = kl_img_overlay_blocks(e->ov, &ret->overlay_blocks_new);
}
