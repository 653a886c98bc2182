/*
 * keel copy: snapshots from one repository into another that has its own
 * key and possibly other chunker settings (docs/COPY.md). Every tree is
 * rewritten with DEST's blob ids, file contents are re-chunked with
 * DEST's chunker unless both chunkers cut alike, and only the blobs DEST
 * lacks are stored. Both repositories are open and unlocked, their
 * indexes loaded; DEST holds a shared lock (as a backup does), SOURCE one
 * too (as a restore does).
 */
#ifndef KEEL_COPY_H
#define KEEL_COPY_H

#include <stdbool.h>
#include <stdint.h>

#include "keel/ops.h"
#include "keel/repo.h"

struct kl_copy_opts {
	bool dry_run;		 /* read and hash everything, store nothing */
	unsigned threads;	 /* hashing and packing workers; 0: one per core */
	struct kl_report report; /* progress: files and bytes of SOURCE gone through */
	/*
	 * Each snapshot of the list once, in order, when it is done: dst is
	 * its copy's id (zero on a dry run), or NULL when DEST had a copy
	 * already (skipped). May be NULL.
	 */
	void (*snapshot)(void *ud, const struct kl_snapshot_ref *src, const struct kl_id *dst);
	void *ud;
};

struct kl_copy_stats {
	uint64_t snapshots_copied, snapshots_skipped;
	uint64_t trees, trees_new; /* directories written (not taken over), of them new to DEST */
	uint64_t files;		   /* file contents gone through */
	uint64_t files_known;	   /* of them found in DEST without reading SOURCE */
	uint64_t blobs_read, bytes_read; /* data blobs read from SOURCE, plaintext */
	uint64_t blobs_new, bytes_new;	 /* data blobs DEST lacked, plaintext */
	uint64_t bytes_stored;		 /* new data and tree blobs as stored */
	bool rechunked;			 /* the chunkers differ: contents were cut again */
};

/*
 * The key under which a snapshot is known across copies: the original it
 * was copied from, else its own id.
 */
const struct kl_id *kl_copy_key(const struct kl_snapshot_ref *s);

/*
 * Copies snaps (snapshots of src, oldest first) into dst, each snapshot
 * committed (packs, index file, snapshot) before the next one starts.
 * One whose key (kl_copy_key) a snapshot of dst has is skipped. Returns
 * 0, or the first error (the snapshots copied before it stay);
 * -KL_EINTERRUPTED when dst's cancel flag was set.
 */
int kl_copy(struct kl_repo *dst, struct kl_repo *src, const struct kl_snapshot_ref *snaps, size_t n,
	    const struct kl_copy_opts *o, struct kl_copy_stats *ret);

#endif
