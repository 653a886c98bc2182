/*
 * The backup's worker pool. The walking thread reads files and cuts them
 * into chunks; workers hash, deduplicate, compress, seal and pack the
 * chunks, one packer each, so both cores stay busy even on one big file.
 */
#ifndef KEEL_OPS_PIPELINE_H
#define KEEL_OPS_PIPELINE_H

#include <pthread.h>
#include <stdatomic.h>

#include "keel/repo.h"

struct kl_chunk_job;

/*
 * A file being backed up. pending counts chunks in flight plus one hold
 * by the reader; whoever drops it to zero queues the file as done.
 */
struct kl_file_job {
	atomic_long pending;
	struct kl_chunk_job **chunks; /* in order; owned by the reader until done */
	size_t n_chunks, cap_chunks;
	void *owner; /* the walker's bookkeeping (directory, node index) */
	size_t slot;
	struct kl_file_job *next_done;
};

struct kl_chunk_job {
	struct kl_file_job *file;
	uint8_t *data;
	size_t len;
	struct kl_id id; /* filled by a worker */
	bool is_new;
	struct kl_chunk_job *next;
};

struct kl_pipeline {
	struct kl_repo *repo;
	pthread_mutex_t lock;
	pthread_cond_t work_cv; /* jobs queued or stopping */
	pthread_cond_t room_cv; /* bytes in flight dropped */
	pthread_cond_t done_cv; /* a file completed */
	struct kl_chunk_job *head, *tail;
	struct kl_file_job *done; /* completed files, LIFO */
	size_t bytes_in_flight, max_in_flight;
	bool stopping;
	int error; /* first worker error, sticky */
	pthread_t *threads;
	struct kl_packer **packers;
	unsigned n_threads; /* packers (one per worker) */
	unsigned n_started; /* workers actually running */
	bool dry_run;	    /* hash and compress, store nothing */
	atomic_ullong bytes_hashed;
};

/* On failure, kl_pipeline_finish must still be called to clean up. */
int kl_pipeline_start(struct kl_pipeline *p, struct kl_repo *r, unsigned threads, bool dry_run);
/* Queues a chunk (taking ownership of data); blocks while too much is in flight. */
int kl_pipeline_submit(struct kl_pipeline *p, struct kl_file_job *f, uint8_t *data, size_t len);
/* Drops the reader's hold on f: it completes once its chunks are done. */
void kl_pipeline_file_sealed(struct kl_pipeline *p, struct kl_file_job *f);
/* Takes completed files; wait: block until at least one or nothing is in flight. */
struct kl_file_job *kl_pipeline_take_done(struct kl_pipeline *p, bool wait);
bool kl_pipeline_idle(struct kl_pipeline *p);
/* Stops the workers, flushes their packers. Returns the first error. */
int kl_pipeline_finish(struct kl_pipeline *p, struct kl_write_stats *stats);
void kl_file_job_free(struct kl_file_job *f);

#endif
