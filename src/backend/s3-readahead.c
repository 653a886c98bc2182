/*
 * Read-ahead for packs. A restore asks for one blob at a time, and a
 * request costs the same few milliseconds whether it returns 1 KiB or
 * 1 MiB: a restore of many small files is bound by the number of
 * requests, not by bytes. So when a reader moves through a pack (its
 * next blob starts within one window of where its last one ended), the
 * backend fetches a whole window (KEEL_S3_READAHEAD_MB, 4 MiB by default)
 * from there on and serves the next blobs from it. A reader that jumps
 * around (dump of one file, a partial restore) reads only what it asks
 * for: the first read of a pack never fetches more.
 *
 * Packs never change once written, so a window cannot go stale. Blobs
 * served from a window are authenticated by their readers as always.
 * Memory: at most RA_SLOTS windows.
 */
#include <stdio.h>

#include "s3-internal.h"

static bool slot_has(const struct s3_ra_slot *sl, const char *name, uint64_t off, uint64_t len)
{
	return sl->data && !strcmp(sl->name, name) && off >= sl->off && off - sl->off <= sl->len &&
	       len <= sl->len - (off - sl->off);
}

/* Remembers where the last read of a pack ended; says whether this one continues it. */
static bool sequential(struct s3_ra *ra, const char *name, uint64_t off, uint64_t len,
		       uint64_t window)
{
	struct s3_ra_hint *h = NULL, *lru = &ra->hint[0];
	bool seq = false;

	for (size_t i = 0; i < RA_HINTS; i++) {
		if (!strcmp(ra->hint[i].name, name)) {
			h = &ra->hint[i];
			break;
		}
		if (ra->hint[i].used < lru->used)
			lru = &ra->hint[i];
	}
	if (h) {
		seq = off + window >= h->end && off <= h->end + window;
	} else {
		h = lru;
		snprintf(h->name, sizeof(h->name), "%s", name);
	}
	h->end = off + len;
	h->used = ++ra->clock;
	return seq;
}

int kl_s3_ra_get_(struct s3 *s, const char *name, const char *key, uint64_t off, uint64_t len,
		  struct kl_buf *out)
{
	struct s3_ra *ra = &s->ra;
	struct kl_buf win;
	struct s3_ra_slot *slot;
	struct s3_req q = {0};
	uint8_t *data, *p;
	size_t wlen;
	bool seq;
	int r;

	if (strlen(name) >= sizeof(ra->slot[0].name))
		return 0;
	pthread_mutex_lock(&ra->lock);
	for (size_t i = 0; i < RA_SLOTS; i++) {
		struct s3_ra_slot *sl = &ra->slot[i];

		if (slot_has(sl, name, off, len)) {
			sl->used = ++ra->clock;
			r = kl_buf_add(out, sl->data + (off - sl->off), (size_t)len);
			/* keep the hint moving, so that the next window follows */
			sequential(ra, name, off, len, s->ra_window);
			pthread_mutex_unlock(&ra->lock);
			return r < 0 ? r : 1;
		}
	}
	seq = sequential(ra, name, off, len, s->ra_window);
	pthread_mutex_unlock(&ra->lock);
	if (!seq)
		return 0;

	kl_buf_init(&win, s->ra_window);
	q.method = "GET";
	q.key = key;
	q.range = true;
	q.off = off;
	q.len = s->ra_window;
	q.out = &win;
	r = kl_s3_request_(s, &q);
	kl_s3_req_release_(&q);
	if (r >= 0 && q.status == 416)
		r = -KL_ECORRUPT; /* the pack ends before the blob starts */
	else if (r >= 0 && q.status != 200 && q.status != 206)
		r = kl_s3_http_error_(s, &q, name);
	else if (r >= 0 && win.len < len)
		r = -KL_ECORRUPT; /* the pack is shorter than its index says */
	if (r >= 0)
		r = kl_buf_add(out, win.data, (size_t)len);
	if (r < 0) {
		kl_buf_release(&win);
		return r;
	}
	/* a buffer grows by doubling: give back what the window does not use */
	data = kl_buf_detach(&win, &wlen);
	if (data && (p = kl_realloc(data, wlen + 1)))
		data = p;
	if (!data)
		return 1; /* the blob was served; only the window is lost */

	pthread_mutex_lock(&ra->lock);
	slot = &ra->slot[0];
	for (size_t i = 0; i < RA_SLOTS; i++) {
		if (!ra->slot[i].data) {
			slot = &ra->slot[i];
			break;
		}
		if (ra->slot[i].used < slot->used)
			slot = &ra->slot[i];
	}
	kl_free(slot->data);
	snprintf(slot->name, sizeof(slot->name), "%s", name);
	slot->off = off;
	slot->data = data;
	slot->len = wlen;
	slot->used = ++ra->clock;
	pthread_mutex_unlock(&ra->lock);
	return 1;
}

void kl_s3_ra_free_(struct s3 *s)
{
	for (size_t i = 0; i < RA_SLOTS; i++) {
		kl_free(s->ra.slot[i].data);
		s->ra.slot[i].data = NULL;
	}
}
