/*
 * Prune's shared state, between planning and doing (prune.c) and marking
 * (prune-mark.c). Private to src/ops.
 */
#ifndef KEEL_OPS_PRUNE_INTERNAL_H
#define KEEL_OPS_PRUNE_INTERNAL_H

#include "keel/maint.h"

enum pack_state { P_ORPHAN = 0, P_LIVE, P_DELETING };
enum pack_fate { F_KEEP = 0, F_CONDEMN, F_REPACK, F_DELETE, F_RESCUE, F_WAIT, F_DONE, F_RETAINED };

struct pack_info {
	struct kl_id id;
	uint64_t size;
	uint64_t used_bytes;
	int64_t mtime_ns; /* with Object Lock: when the pack was written */
	uint8_t state, fate;
	bool pinned;		 /* named by an index file this run cannot supersede: kept */
	struct kl_pack_header h; /* blobs located here (slots, or the deletion record) */
};

struct record {
	struct kl_id id;
	struct kl_index_file f;
	bool ripe;
};

struct prune {
	struct kl_repo *r;
	const struct kl_prune_opts *o;
	struct kl_prune_stats *st;
	struct pack_info *packs;
	size_t n_packs, cap_packs;
	struct record *recs;
	size_t n_recs;
	struct kl_idset used;
	struct kl_idset *fresh;	   /* when set, also gets what marking adds from now on */
	struct kl_idset snaps;	   /* snapshots already marked */
	struct kl_idset alive;	   /* sessions of other live locks */
	bool refreshed;		   /* the index was re-read for the current snapshot */
	struct kl_id *start_files; /* index files loaded at the start */
	size_t n_start_files;
	struct kl_id *more_files; /* loaded by refresh, wholly known: superseded too */
	size_t n_more_files, cap_more_files;
	bool unresolved; /* a refreshed index file could not be read back */
	struct kl_id self;
};

struct pack_info *kl_prune_find_pack(struct prune *p, const struct kl_id *id);

/* Marks every snapshot not marked yet; refuses when one cannot be read. */
int kl_prune_mark_snapshots(struct prune *p);

/*
 * Index files that marking loaded after the start (backups that finished
 * meanwhile): superseded with the start's when every pack they name was
 * listed, else their packs are pinned (kept this run).
 */
int kl_prune_take_refreshed(struct prune *p);

#endif
