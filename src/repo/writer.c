/*
 * Background pack writers: packers hand finished packs here and go back to
 * compressing, while these threads do the slow part (write, fsync, rename;
 * later, uploads). At most a few packs wait, so memory stays bounded.
 * A pack enters the index only after its write is durable.
 */
#include <pthread.h>

#include "repo-internal.h"

#define WRITERS 2
#define MAX_QUEUED 2
/* an index file every this many packs bounds both memory and what a crash leaves unindexed */
#define PACKS_PER_INDEX 64

struct pack_job {
	struct kl_id id;
	uint8_t *data;
	size_t len;
	struct kl_pack_header h;
	struct pack_job *next;
};

struct kl_writer {
	pthread_mutex_t lock;
	pthread_cond_t cv;	/* jobs queued, or stopping */
	pthread_cond_t idle_cv; /* a job finished */
	struct pack_job *head, *tail;
	unsigned queued, running;
	bool started, stopping;
	int error;
	uint64_t written; /* packs made durable */
	pthread_t threads[WRITERS];
	unsigned n_threads;
	struct kl_repo *r;
};

int kl_writer_new_(struct kl_repo *r, struct kl_writer **ret)
{
	struct kl_writer *w = kl_calloc(1, sizeof(*w));

	if (!w)
		return -ENOMEM;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cv, NULL);
	pthread_cond_init(&w->idle_cv, NULL);
	w->r = r;
	*ret = w;
	return 0;
}

static void job_free(struct pack_job *j)
{
	kl_free(j->data);
	kl_pack_header_release(&j->h);
	kl_free(j);
}

static int write_pack(struct kl_repo *r, struct pack_job *j)
{
	char hex[2 * KL_ID_LEN + 1];
	int rc;

	kl_id_hex(&j->id, hex);
	rc = r->be->ops->put(r->be, KL_OBJ_DATA, hex, j->data, j->len);
	if (rc == -EEXIST)
		rc = 0; /* the same bytes are there already */
	if (rc < 0)
		return kl_repo_fail(r, rc, "cannot write pack '%s'", hex);
	rc = kl_index_add_pack_(r, &j->id, &j->h, KL_INDEX_PENDING);
	if (rc >= 0 && kl_index_pending_(r) >= PACKS_PER_INDEX)
		rc = kl_index_write_pending_(r);
	kl_test_point("pack-written"); /* a backup midway, for an interrupt: t4014 */
	return rc;
}

static void *writer_main(void *arg)
{
	struct kl_writer *w = arg;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		struct pack_job *j;
		bool failed;
		int rc;

		while (!w->head && !w->stopping)
			pthread_cond_wait(&w->cv, &w->lock);
		if (!w->head)
			break;
		j = w->head;
		w->head = j->next;
		if (!w->head)
			w->tail = NULL;
		w->running++;
		failed = w->error != 0;
		pthread_mutex_unlock(&w->lock);
		/*
		 * after a failure, drop the rest: the backup is failing anyway;
		 * after an interrupt too, so that the process stops promptly
		 */
		rc = failed ? 0 : kl_repo_cancelled(w->r);
		if (!failed && rc >= 0)
			rc = write_pack(w->r, j);
		job_free(j);
		pthread_mutex_lock(&w->lock);
		if (rc < 0 && !w->error)
			w->error = rc;
		if (!failed && rc >= 0)
			w->written++;
		w->running--;
		w->queued--;
		pthread_cond_broadcast(&w->idle_cv);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

int kl_writer_enqueue_(struct kl_writer *w, const struct kl_id *id, uint8_t *data, size_t len,
		       struct kl_pack_header *h)
{
	struct pack_job *j = kl_calloc(1, sizeof(*j));
	int rc = 0;

	if (!j) {
		kl_free(data);
		return -ENOMEM;
	}
	j->id = *id;
	j->data = data;
	j->len = len;
	j->h = *h;
	memset(h, 0, sizeof(*h));
	pthread_mutex_lock(&w->lock);
	if (!w->started) {
		w->started = true;
		for (unsigned i = 0; i < WRITERS; i++)
			if (pthread_create(&w->threads[w->n_threads], NULL, writer_main, w) == 0)
				w->n_threads++;
	}
	if (!w->n_threads) {
		/* no threads to be had: write in the caller */
		pthread_mutex_unlock(&w->lock);
		rc = kl_repo_cancelled(w->r);
		if (rc >= 0)
			rc = write_pack(w->r, j);
		job_free(j);
		if (rc >= 0) {
			pthread_mutex_lock(&w->lock);
			w->written++;
			pthread_mutex_unlock(&w->lock);
		}
		return rc;
	}
	while (w->queued >= MAX_QUEUED && !w->error)
		pthread_cond_wait(&w->idle_cv, &w->lock);
	rc = w->error;
	if (rc < 0) {
		pthread_mutex_unlock(&w->lock);
		job_free(j);
		return rc;
	}
	if (w->tail)
		w->tail->next = j;
	else
		w->head = j;
	w->tail = j;
	w->queued++;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->lock);
	return 0;
}

int kl_writer_wait_(struct kl_writer *w)
{
	int rc;

	pthread_mutex_lock(&w->lock);
	while (w->queued)
		pthread_cond_wait(&w->idle_cv, &w->lock);
	rc = w->error;
	pthread_mutex_unlock(&w->lock);
	return rc;
}

void kl_writer_free_(struct kl_writer *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stopping = true;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->lock);
	for (unsigned i = 0; i < w->n_threads; i++)
		pthread_join(w->threads[i], NULL);
	while (w->head) {
		struct pack_job *j = w->head;

		w->head = j->next;
		job_free(j);
	}
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cv);
	pthread_cond_destroy(&w->idle_cv);
	kl_free(w);
}

uint64_t kl_writer_written_(struct kl_writer *w)
{
	uint64_t n;

	pthread_mutex_lock(&w->lock);
	n = w->written;
	pthread_mutex_unlock(&w->lock);
	return n;
}

int kl_repo_wait_writes(struct kl_repo *r)
{
	return kl_writer_wait_(r->writer);
}
