/*
 * Repository maintenance: prune (free what no snapshot uses) and repair
 * (rebuild the index from the packs). Both are safe beside running
 * backups; the design is in docs/FORMAT.md section 7.
 */
#ifndef KEEL_MAINT_H
#define KEEL_MAINT_H

#include "keel/ops.h"

struct kl_prune_opts {
	bool dry_run;
	/* repack partly used packs until unused space is at most this % of used space */
	unsigned max_unused_pct;
	struct kl_report report;
};

struct kl_prune_stats {
	uint64_t snapshots, blobs_used;
	uint64_t packs, bytes;		     /* stored packs, before */
	uint64_t packs_unused, bytes_unused; /* condemned now: nothing in them is used */
	uint64_t packs_repack, bytes_repack; /* condemned now after copying what is used */
	uint64_t blobs_repacked, bytes_repacked;
	uint64_t packs_deleted, bytes_deleted; /* deleted by this run */
	uint64_t packs_waiting, bytes_waiting; /* condemned, waiting for other processes */
	uint64_t packs_rescued;		       /* condemned earlier, used again by a snapshot */
	uint64_t packs_orphan, bytes_orphan;   /* in no index: a running backup's, left alone */
	uint64_t index_files_replaced;
	uint64_t locks_waited_for; /* other processes that hold the deletion back */
};

/*
 * Needs a prune (or exclusive) lock held with kl_repo_lock() before the
 * index was loaded. Refuses (-KL_ECORRUPT) when a snapshot, tree or blob
 * it needs to decide what is used cannot be read: prune never deletes on
 * a guess.
 */
int kl_prune(struct kl_repo *r, const struct kl_prune_opts *o, struct kl_prune_stats *ret);

#endif
