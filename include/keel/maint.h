/*
 * Repository maintenance: prune (free what no snapshot uses) and repair
 * (rebuild the index from the packs). Both are safe beside running
 * backups; the design is in docs/FORMAT.md section 7.
 */
#ifndef KEEL_MAINT_H
#define KEEL_MAINT_H

#include "keel/ops.h"

#define KL_PRUNE_MAX_UNUSED_DEFAULT 50 /* per mille: 5% */

struct kl_prune_opts {
	bool dry_run;
	/* repack partly used packs until unused space is at most this per mille of used space */
	unsigned max_unused_permille;
	struct kl_report report;
};

struct kl_prune_stats {
	uint64_t snapshots, blobs_used;
	uint64_t packs, bytes;		     /* stored packs, before */
	uint64_t packs_unused, bytes_unused; /* condemned now: nothing in them is used */
	uint64_t packs_repack, bytes_repack; /* condemned now after copying what is used */
	uint64_t blobs_repacked, bytes_repacked;
	uint64_t packs_deleted, bytes_deleted;	 /* deleted by this run */
	uint64_t packs_waiting, bytes_waiting;	 /* condemned, waiting for other processes */
	uint64_t packs_rescued;			 /* condemned earlier, used again by a snapshot */
	uint64_t packs_retained, bytes_retained; /* unused, but under S3 Object Lock retention */
	uint64_t packs_orphan, bytes_orphan;	 /* in no index: a running backup's, left alone */
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

struct kl_repair_opts {
	bool dry_run;
	bool read_data;		 /* snapshots: read every blob, not only look it up */
	bool forget;		 /* snapshots: remove the damaged originals */
	struct kl_report report; /* warn(): one call per pack or file lost */
};

struct kl_repair_stats {
	uint64_t packs, packs_damaged, blobs;
	uint64_t index_files_written, index_files_removed;
	uint64_t snapshots, snapshots_repaired;
	uint64_t snapshots_damaged_files;      /* snapshot objects that cannot be read */
	uint64_t snapshots_unreadable_removed; /* of them, removed (forget) */
	uint64_t files_lost;
};

/*
 * Rebuilds the index from the pack headers and replaces every index file
 * (deletion records too: condemned packs become live again, which only
 * costs space). Needs an exclusive lock.
 */
int kl_repair_index(struct kl_repo *r, const struct kl_repair_opts *o, struct kl_repair_stats *ret);

/*
 * For each snapshot with files whose data is missing (or, with read_data,
 * damaged) or directories that cannot be read: writes a new snapshot
 * without them, tagged "repaired" and partial, whose parent is the
 * original. Each loss goes to o->report.warn with its path; on_snapshot
 * (may be NULL) gets each repaired snapshot (repaired NULL on a dry run).
 * A snapshot object that cannot be read is reported through warn (path
 * NULL) and, with o->forget, removed: nothing in it can be salvaged.
 */
int kl_repair_snapshots(struct kl_repo *r, const struct kl_repair_opts *o,
			struct kl_repair_stats *ret,
			int (*on_snapshot)(const struct kl_id *old, const struct kl_id *repaired,
					   uint64_t lost, void *ud),
			void *ud);

#endif
