#include "keel/pipeline.h"

static void complete_file(struct kl_pipeline *p, struct kl_file_job *f)
{
	/* lock held */
	f->next_done = p->done;
	p->done = f;
	pthread_cond_broadcast(&p->done_cv);
}

static void *worker(void *arg)
{
	struct kl_pipeline *p = arg;
	struct kl_packer *pk;
	unsigned me;

	pthread_mutex_lock(&p->lock);
	for (me = 0; !pthread_equal(p->threads[me], pthread_self()); me++)
		;
	pk = p->packers[me];
	for (;;) {
		struct kl_chunk_job *j;
		int r = 0;

		while (!p->head && !p->stopping)
			pthread_cond_wait(&p->work_cv, &p->lock);
		if (!p->head)
			break;
		j = p->head;
		p->head = j->next;
		if (!p->head)
			p->tail = NULL;
		pthread_mutex_unlock(&p->lock);

		kl_blob_id(kl_repo_keys(p->repo), j->data, j->len, &j->id);
		r = p->dry_run ? !kl_repo_lookup(p->repo, &j->id, NULL) ? 0 : 1
			       : kl_repo_claim(p->repo, &j->id);
		if (r == 0) {
			j->is_new = true;
			if (!p->dry_run)
				r = kl_packer_add(pk, KL_BLOB_DATA, &j->id, j->data, j->len);
		}
		atomic_fetch_add(&p->bytes_hashed, j->len);
		kl_free(j->data);
		j->data = NULL;

		pthread_mutex_lock(&p->lock);
		if (r < 0 && !p->error)
			p->error = r;
		p->bytes_in_flight -= j->len;
		pthread_cond_signal(&p->room_cv);
		if (atomic_fetch_sub(&j->file->pending, 1) == 1)
			complete_file(p, j->file);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int kl_pipeline_start(struct kl_pipeline *p, struct kl_repo *r, unsigned threads, bool dry_run)
{
	int rc;

	memset(p, 0, sizeof(*p));
	p->repo = r;
	p->dry_run = dry_run;
	p->n_threads = threads ? threads : 1;
	/*
	 * Enough for every worker to have a chunk and one queued behind it,
	 * counted in average chunks: counting in maximum ones held four times
	 * the memory for no more speed. One chunk of any size always gets in.
	 */
	p->max_in_flight = (size_t)kl_repo_config(r)->cdc_avg * (p->n_threads * 2 + 2);
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->work_cv, NULL);
	pthread_cond_init(&p->room_cv, NULL);
	pthread_cond_init(&p->done_cv, NULL);
	p->threads = kl_calloc(p->n_threads, sizeof(pthread_t));
	p->packers = kl_calloc(p->n_threads, sizeof(struct kl_packer *));
	if (!p->threads || !p->packers)
		return -ENOMEM;
	for (unsigned i = 0; i < p->n_threads; i++) {
		rc = kl_packer_new(r, &p->packers[i]);
		if (rc < 0)
			return rc;
	}
	pthread_mutex_lock(&p->lock);
	for (unsigned i = 0; i < p->n_threads; i++) {
		rc = -pthread_create(&p->threads[i], NULL, worker, p);
		if (rc < 0) {
			pthread_mutex_unlock(&p->lock);
			return rc;
		}
		p->n_started++;
	}
	pthread_mutex_unlock(&p->lock);
	return 0;
}

int kl_pipeline_submit(struct kl_pipeline *p, struct kl_file_job *f, uint8_t *data, size_t len)
{
	struct kl_chunk_job *j = kl_calloc(1, sizeof(*j));
	int rc;

	if (!j) {
		kl_free(data);
		return -ENOMEM;
	}
	if (f->n_chunks == f->cap_chunks) {
		size_t ncap = f->cap_chunks ? f->cap_chunks * 2 : 4;
		struct kl_chunk_job **v = kl_realloc(f->chunks, ncap * sizeof(*v));

		if (!v) {
			kl_free(data);
			kl_free(j);
			return -ENOMEM;
		}
		f->chunks = v;
		f->cap_chunks = ncap;
	}
	f->chunks[f->n_chunks++] = j;
	j->file = f;
	j->data = data;
	j->len = len;
	atomic_fetch_add(&f->pending, 1);

	pthread_mutex_lock(&p->lock);
	while (p->bytes_in_flight > 0 && p->bytes_in_flight + len > p->max_in_flight && !p->error)
		pthread_cond_wait(&p->room_cv, &p->lock);
	p->bytes_in_flight += len;
	if (p->tail)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	rc = p->error;
	pthread_cond_signal(&p->work_cv);
	pthread_mutex_unlock(&p->lock);
	return rc;
}

void kl_pipeline_file_sealed(struct kl_pipeline *p, struct kl_file_job *f)
{
	pthread_mutex_lock(&p->lock);
	if (atomic_fetch_sub(&f->pending, 1) == 1)
		complete_file(p, f);
	pthread_mutex_unlock(&p->lock);
}

struct kl_file_job *kl_pipeline_take_done(struct kl_pipeline *p, bool wait)
{
	struct kl_file_job *d;

	pthread_mutex_lock(&p->lock);
	while (wait && !p->done && (p->head || p->bytes_in_flight))
		pthread_cond_wait(&p->done_cv, &p->lock);
	d = p->done;
	p->done = NULL;
	pthread_mutex_unlock(&p->lock);
	return d;
}

bool kl_pipeline_idle(struct kl_pipeline *p)
{
	bool idle;

	pthread_mutex_lock(&p->lock);
	idle = !p->head && !p->bytes_in_flight && !p->done;
	pthread_mutex_unlock(&p->lock);
	return idle;
}

int kl_pipeline_finish(struct kl_pipeline *p, struct kl_write_stats *stats)
{
	int rc;

	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->work_cv);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->n_started; i++)
		pthread_join(p->threads[i], NULL);
	rc = p->error;
	memset(stats, 0, sizeof(*stats));
	for (unsigned i = 0; p->packers && i < p->n_threads; i++) {
		struct kl_write_stats s;

		if (!p->packers[i])
			continue;
		if (rc >= 0)
			rc = kl_packer_flush(p->packers[i]);
		kl_packer_stats(p->packers[i], &s);
		stats->blobs += s.blobs;
		stats->bytes_plain += s.bytes_plain;
		stats->bytes_stored += s.bytes_stored;
		stats->packs += s.packs;
	}
	for (unsigned i = 0; p->packers && i < p->n_threads; i++)
		kl_packer_free(p->packers[i]);
	/* queued jobs that never ran (after an error) */
	while (p->head) {
		struct kl_chunk_job *j = p->head;

		p->head = j->next;
		kl_free(j->data);
		j->data = NULL;
	}
	kl_free(p->packers);
	kl_free(p->threads);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->work_cv);
	pthread_cond_destroy(&p->room_cv);
	pthread_cond_destroy(&p->done_cv);
	return rc;
}

void kl_file_job_free(struct kl_file_job *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n_chunks; i++) {
		kl_free(f->chunks[i]->data);
		kl_free(f->chunks[i]);
	}
	kl_free(f->chunks);
	kl_free(f);
}
