/*
 * keel mirror: a keyless, verified, object-level copy of a repository
 * to another store (docs/MIRROR.md). Both repositories are opened
 * without a key: the source with kl_repo_open_err(), the copy with
 * kl_repo_open_dest().
 */
#ifndef KEEL_MIRROR_H
#define KEEL_MIRROR_H

#include <stdbool.h>
#include <stdint.h>

#include "keel/ops.h"
#include "keel/repo.h"

#define KL_MIRROR_CONNECTIONS_DEFAULT 4
#define KL_MIRROR_CONNECTIONS_MAX 64
#define KL_MIRROR_DELETE_AFTER_DEFAULT ((int64_t)7 * 86400 * KL_NSEC_PER_SEC)
#define KL_MIRROR_NEVER (-1) /* delete_after_ns: keep what SOURCE deleted for ever */

struct kl_mirror_opts {
	unsigned connections;	 /* objects in flight at once */
	uint64_t limit_upload;	 /* bytes per second written to DEST; 0: no limit */
	bool dry_run;		 /* list and compare; write and delete nothing */
	bool verify;		 /* read every object of DEST back and hash it */
	int64_t delete_after_ns; /* quarantine; KL_MIRROR_NEVER */
	/*
	 * Object Lock on DEST's new objects (S3): when lock_given, these
	 * replace what DEST's state says (KL_LOCK_NONE stops it); else the
	 * state's settings apply, so that later runs keep locking.
	 */
	bool lock_given;
	uint32_t lock_mode; /* enum kl_lock_mode */
	uint32_t lock_days;
	struct kl_report report; /* warnings: damage found, objects kept */
};
void kl_mirror_opts_init(struct kl_mirror_opts *o);

struct kl_mirror_count {
	uint64_t objects, bytes;
};

struct kl_mirror_stats {
	struct kl_mirror_count copied;	    /* written to DEST (dry run: would be) */
	struct kl_mirror_count skipped;	    /* already in DEST */
	struct kl_mirror_count repaired;    /* damaged in DEST, copied again */
	struct kl_mirror_count deleted;	    /* gone from SOURCE, quarantine over */
	struct kl_mirror_count quarantined; /* gone from SOURCE, kept in DEST */
	struct kl_mirror_count retained;    /* quarantine over, under Object Lock: kept */
	uint32_t lock_mode, lock_days;	    /* the retention new objects of DEST got */
	uint64_t source_damaged;	    /* failed their hash in SOURCE: not copied */
	uint64_t vanished;		    /* listed in SOURCE, gone when copied */
	uint64_t tmp_removed;		    /* temporary files killed runs left in DEST */
	unsigned passes;
	bool complete; /* everything listed in SOURCE is in DEST */
	int64_t duration_ns;
};

/*
 * Copies src to dst. Returns 0; -KL_ECORRUPT when objects of SOURCE
 * failed their hash (the rest was copied; each is warned about);
 * -KL_EEXIST_REPO when dst holds another repository (its config
 * differs); or the first storage error. stats is filled in every case.
 */
int kl_mirror(struct kl_repo *src, struct kl_repo *dst, const struct kl_mirror_opts *o,
	      struct kl_mirror_stats *ret);

/* What is SOURCE's that DEST lacks, per object type (keys, snapshots, index, data). */
struct kl_mirror_status {
	struct kl_mirror_count pending[4]; /* in SOURCE, not (or damaged) in DEST */
	struct kl_mirror_count quarantined;
	int64_t last_run_ns;	  /* the latest run's end; 0: none */
	int64_t last_complete_ns; /* the latest complete run's end; 0: none */
	int64_t lag_ns;		  /* 0: DEST has every snapshot; -1: unknown */
	bool lag_exact;		  /* from the snapshots' times, not a bound */
};
/* The index into kl_mirror_status.pending of an object type (keys..data). */
#define KL_MIRROR_PENDING_INDEX(t) ((t)-KL_OBJ_KEY)

/* Keyless: compares the listings and reads DEST's state. */
int kl_mirror_status(struct kl_repo *src, struct kl_repo *dst, struct kl_mirror_status *ret);

/*
 * With the key (--status --snapshots): per host and paths, the newest
 * snapshot of SOURCE and the newest of the same host and paths that DEST
 * holds (a snapshot in DEST has its data there: docs/MIRROR.md, "Order").
 * With check_data (DEST unlocked, its index loaded), only a snapshot of
 * DEST whose trees and data are all there counts (kl_presence_check).
 */
struct kl_mirror_group {
	const struct kl_snapshot_ref *newest;	  /* in SOURCE (borrowed from the list) */
	const struct kl_snapshot_ref *newest_dst; /* NULL: DEST holds none of the group */
	int64_t lag_ns; /* newest's time minus newest_dst's; -1: DEST holds none */
};
/* snaps: SOURCE's (kl_repo_list_snapshots, after kl_repo_unlock); *ret is the caller's to free. */
int kl_mirror_status_groups(struct kl_repo *dst, const struct kl_snapshot_list *snaps,
			    bool check_data, struct kl_mirror_group **ret, size_t *n_ret);

#endif
