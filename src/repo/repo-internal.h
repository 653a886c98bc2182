/* Shared between the files of src/repo only (and unit tests that swap internals). */
#ifndef KEEL_REPO_INTERNAL_H
#define KEEL_REPO_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "keel/repo.h"

struct kl_index;
struct kl_writer;
struct kl_lock;

struct kl_repo {
	struct kl_backend *be; /* owned */
	struct kl_keys *keys;  /* owned, NULL until unlocked */
	struct kl_config cfg;
	struct kl_cdc cdc;
	struct kl_key chunker;	  /* the key cdc was made from: derived, or the config's */
	struct kl_index *idx;	  /* owned */
	struct kl_writer *writer; /* owned: background pack writes */
	struct kl_id key_id;	  /* name of the key file that opened it */
	struct kl_lock *lock;	  /* owned, NULL unless kl_repo_lock() took one */
	/* guards the lock pointer against kl_repo_lock_abandon() from another thread */
	pthread_mutex_t lock_mu;
	const atomic_bool *cancel; /* the caller's, may be NULL: kl_repo_set_cancel() */
	unsigned bad_index_files;  /* skipped by kl_repo_load_index */
	/*
	 * Orphan packs were looked for since this open and none was lost since:
	 * a killed process leaves them, and listing every pack before each of a
	 * stream's records made a record cost grow with the repository.
	 */
	atomic_bool orphans_scanned;
	/*
	 * err is written by worker threads (the pack writer, parallel blob
	 * readers) while the caller takes or clears it: every access holds
	 * err_mu, so a taken message is never half written or half cleared.
	 */
	pthread_mutex_t err_mu;
	struct kl_err err;
};

/* r->err under err_mu: forget it (the backend's detail stays), or save and put back a copy. */
void kl_repo_err_clear_(struct kl_repo *r);
struct kl_err kl_repo_err_get_(struct kl_repo *r);
void kl_repo_err_set_(struct kl_repo *r, const struct kl_err *e);

int kl_index_new_(struct kl_index **ret);
void kl_index_free_(struct kl_index *x);
enum {
	KL_INDEX_PENDING = 1 << 0,  /* also remember the pack for the next index file */
	KL_INDEX_DELETING = 1 << 1, /* the pack awaits deletion: readable, not for dedup */
};
/* Adds a pack's blobs. */
int kl_index_add_pack_(struct kl_repo *r, const struct kl_id *pack, const struct kl_pack_header *h,
		       unsigned flags);

/* Writes an index file for the packs written so far (they are durable). */
int kl_index_write_pending_(struct kl_repo *r);
size_t kl_index_pending_(struct kl_repo *r);
/*
 * The other stored copies of a blob (the same blob written into several
 * packs, as concurrent backups do), one per call from *cursor (start at
 * 0): 1 and loc filled, 0 when there is no other. Thread-safe.
 */
int kl_index_lookup_alt_(struct kl_repo *r, const struct kl_id *id, size_t *cursor,
			 struct kl_blob_loc *loc);

struct kl_writer;
int kl_writer_new_(struct kl_repo *r, struct kl_writer **ret);
/* Takes ownership of data and of h's entries (h is zeroed). */
int kl_writer_enqueue_(struct kl_writer *w, const struct kl_id *id, uint8_t *data, size_t len,
		       struct kl_pack_header *h);
/* Waits until every queued pack is durable and indexed; returns the first error. */
int kl_writer_wait_(struct kl_writer *w);
void kl_writer_free_(struct kl_writer *w);
/* Packs this writer has made durable so far. */
uint64_t kl_writer_written_(struct kl_writer *w);

#endif
