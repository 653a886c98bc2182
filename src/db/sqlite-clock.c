/*
 * The commit clock of a SQLite stream (docs/DATABASES.md, "SQLite"): a
 * thread that looks at the WAL every few milliseconds and notes when each
 * commit frame appeared. A restore to a moment keeps the commits keel saw
 * by then, so this time must be close to the commit, and the stream's own
 * loop cannot give it: it stops for as long as a record takes to store
 * (fsyncs: tens or hundreds of milliseconds). The thread only reads the
 * file, with its own descriptor and its own view of the frames' chain.
 */
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "sqlite-internal.h"

#define TICK_NS (5 * 1000 * 1000)
#define KEEP 65536 /* times not asked for yet: enough for minutes of commits */

struct wal_view {
	int fd;
	bool has;
	struct kl_sqlite_wal_hdr h;
	uint32_t end, s[2];
	uint8_t *frame;
	size_t cap;
};

static void note(struct kl_sq_clock *c, const struct kl_sqlite_wal_hdr *h, uint32_t frame,
		 int64_t t)
{
	pthread_mutex_lock(&c->mu);
	if (c->n == KEEP) {
		memmove(c->v, c->v + KEEP / 2, (KEEP / 2) * sizeof(*c->v));
		c->n = KEEP / 2;
	}
	c->v[c->n].salt1 = h->salt1;
	c->v[c->n].salt2 = h->salt2;
	c->v[c->n].frame = frame;
	c->v[c->n++].time_ns = t;
	pthread_mutex_unlock(&c->mu);
}

/* Reads what is new; with record, notes each commit frame's time. */
static void look(struct kl_sq_clock *c, struct wal_view *w, bool record)
{
	uint8_t hdr[KL_SQLITE_WAL_HDR];
	struct kl_sqlite_wal_hdr h;
	uint32_t s[2], idx;
	size_t fsz;

	if (w->fd < 0 && (w->fd = open(c->wal_path, O_RDONLY | O_CLOEXEC)) < 0)
		return;
	if (pread(w->fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr) ||
	    kl_sqlite_wal_hdr_decode(hdr, sizeof(hdr), &h) < 0)
		return;
	if (!w->has || h.salt1 != w->h.salt1 || h.salt2 != w->h.salt2) {
		w->has = true;
		w->h = h;
		w->end = 0;
		w->s[0] = h.s0;
		w->s[1] = h.s1;
	}
	fsz = KL_SQLITE_FRAME_HDR + h.page_size;
	if (w->cap < fsz) {
		uint8_t *p = kl_realloc(w->frame, fsz);

		if (!p)
			return;
		w->frame = p;
		w->cap = fsz;
	}
	s[0] = w->s[0];
	s[1] = w->s[1];
	for (idx = w->end; idx < UINT32_MAX; idx++) {
		struct kl_sqlite_frame fr;

		if (pread(w->fd, w->frame, fsz,
			  (off_t)KL_SQLITE_WAL_HDR + (off_t)idx * (off_t)fsz) != (ssize_t)fsz ||
		    !kl_sqlite_frame_check(&w->h, w->frame, s, &fr))
			break;
		if (fr.db_pages) {
			w->end = idx + 1;
			w->s[0] = s[0];
			w->s[1] = s[1];
			/*
			 * read now, after the frame: a time from before the read
			 * could be before a commit that landed meanwhile
			 */
			if (record)
				note(c, &w->h, idx + 1, kl_time_now_ns());
		}
	}
}

static void *run(void *arg)
{
	struct kl_sq_clock *c = arg;
	struct wal_view *w = c->view;
	struct timespec tick = {0, TICK_NS};

	while (!atomic_load(&c->stop)) {
		look(c, w, true);
		nanosleep(&tick, NULL);
	}
	return NULL;
}

int kl_sq_clock_start(struct kl_sq_clock *c, const char *wal_path)
{
	struct wal_view *w;
	int rc;

	memset(c, 0, sizeof(*c));
	c->wal_path = wal_path;
	c->v = kl_calloc(KEEP, sizeof(*c->v));
	w = kl_calloc(1, sizeof(*w));
	if (!c->v || !w) {
		kl_free(c->v);
		kl_free(w);
		return -ENOMEM;
	}
	w->fd = -1;
	c->view = w;
	pthread_mutex_init(&c->mu, NULL);
	atomic_init(&c->stop, false);
	/* the frames there now were committed before keel looked: no time for them */
	look(c, w, false);
	rc = -pthread_create(&c->th, NULL, run, c);
	c->running = rc == 0;
	return rc;
}

void kl_sq_clock_stop(struct kl_sq_clock *c)
{
	struct wal_view *w = c->view;

	if (c->running) {
		atomic_store(&c->stop, true);
		pthread_join(c->th, NULL);
		c->running = false;
	}
	if (w) {
		if (w->fd >= 0)
			close(w->fd);
		kl_free(w->frame);
		kl_free(w);
		c->view = NULL;
	}
	if (c->v)
		pthread_mutex_destroy(&c->mu);
	kl_free(c->v);
	c->v = NULL;
}

bool kl_sq_clock_get(struct kl_sq_clock *c, uint32_t salt1, uint32_t salt2, uint32_t frame,
		     int64_t *t)
{
	bool found = false;

	if (!c->v)
		return false;
	pthread_mutex_lock(&c->mu);
	for (size_t i = 0; i < c->n; i++) {
		if (c->v[i].salt1 == salt1 && c->v[i].salt2 == salt2 && c->v[i].frame == frame) {
			if (c->v[i].time_ns < *t)
				*t = c->v[i].time_ns;
			/* asked in order: what came before is not asked again */
			memmove(c->v, c->v + i + 1, (c->n - i - 1) * sizeof(*c->v));
			c->n -= i + 1;
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&c->mu);
	return found;
}
