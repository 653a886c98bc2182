/*
 * Questions asked of a repository without restoring it: which snapshots
 * hold a file (find), what the repository costs (stats), and the
 * operations that go with them: changing a snapshot's tags (tag) and
 * streaming a subtree as a tar archive (dump of a directory).
 */
#ifndef KEEL_QUERY_H
#define KEEL_QUERY_H

#include <stdbool.h>
#include <stdint.h>

#include "keel/ops.h"

/* ---- find (find.c) -------------------------------------------------------- */

struct kl_find_opts {
	/*
	 * Shell patterns (fnmatch): one without '/' is matched against the
	 * base name of each entry; one with '/' against its whole path, '*'
	 * also matching '/', and one not starting with '/' may match any
	 * tail of the path that starts a component (docs/NAME.pdf).
	 */
	char **patterns;
	size_t n_patterns;
	bool ignore_case;
	/* entries modified before oldest or after newest (seconds) are left out */
	bool has_oldest, has_newest;
	int64_t oldest_sec, newest_sec;
};

struct kl_finder;
/* The finder keeps what each tree held, so trees shared by snapshots are read once. */
int kl_finder_new(struct kl_repo *r, const struct kl_find_opts *o, struct kl_finder **ret);
void kl_finder_free(struct kl_finder *f);
static inline void kl_finder_freep(struct kl_finder **f)
{
	kl_finder_free(*f);
}
/*
 * Calls cb with each matching entry below tree, in path order (the node
 * has no content list: find reads no file data). Returns the number of
 * matches, or a negative code (a negative return of cb stops the walk).
 */
int kl_finder_run(struct kl_finder *f, const struct kl_id *tree, kl_walk_cb cb, void *ud);
/* How many trees the finder read so far (each distinct tree once). */
uint64_t kl_finder_trees_read(const struct kl_finder *f);

/* ---- stats (stats.c) ------------------------------------------------------ */

/* What one snapshot holds, and the data it was the first (by time) to use. */
struct kl_stats_snap {
	uint64_t files, bytes; /* regular files as restored (each hard link's name counts) */
	uint64_t new_blobs, new_raw, new_stored; /* blobs no earlier snapshot used */
	uint64_t new_data_raw;			 /* of them, file data */
};

struct kl_stats {
	uint64_t files, restore_bytes; /* summed over the snapshots */
	/* the distinct blobs the snapshots use: raw (uncompressed) and stored (sealed) sizes */
	uint64_t data_blobs, data_raw, data_stored;
	uint64_t tree_blobs, tree_raw, tree_stored;
	uint64_t missing_blobs;			  /* used, but in no index */
	uint64_t unique_files, unique_file_bytes; /* distinct file contents */
	uint64_t packs, pack_bytes;		  /* the repository's data, as stored */
	uint64_t index_blobs, index_stored;	  /* every blob the index knows */
	struct kl_stats_snap *per;		  /* one per snapshot given, in that order */
	size_t n_per;
};
void kl_stats_release(struct kl_stats *s);
/*
 * Walks the snapshots (give them oldest first: "new" data is counted for
 * the first snapshot that uses it), each distinct tree once, reading no
 * file data, and lists the packs. The index must be loaded.
 */
int kl_stats_compute(struct kl_repo *r, const struct kl_snapshot_ref *snaps, size_t n,
		     struct kl_stats *ret);

/* ---- tag (tag.c) ------------------------------------------------------------ */

struct kl_tag_change {
	char **add, **remove, **set;
	size_t n_add, n_remove, n_set;
	bool set_given; /* set replaces all tags (even with none: clears them) */
};
/* Applies c to s's tags. Returns 1 if they changed, 0 if not, -ENOMEM. */
int kl_tags_apply(const struct kl_tag_change *c, struct kl_snapshot *s);
/*
 * Replaces the snapshot old by s (old's content with new tags): writes s
 * with replaces = old, then deletes old (docs/FORMAT.md, "Changing tags").
 * The new id in *ret. -KL_EAPPENDONLY (before writing anything) where the
 * storage refuses deletes.
 */
int kl_snapshot_retag(struct kl_repo *r, const struct kl_id *old, struct kl_snapshot *s,
		      struct kl_id *ret);
/*
 * Deletes the snapshots of l that another snapshot of l replaces (left by
 * a tag killed between its write and its delete), and drops them from l;
 * cb (may be NULL) is told each, with err 0, or -KL_EOBJLOCKED for one
 * that Object Lock keeps (dropped from l too, so it is not tagged again).
 * Returns how many were deleted, or a negative code.
 */
int kl_snapshots_finish_retag(struct kl_repo *r, struct kl_snapshot_list *l,
			      void (*cb)(const struct kl_id *old, const struct kl_id *by, int err,
					 void *ud),
			      void *ud);

/* ---- dump of a directory as a tar archive (tar.c) ------------------------------ */

struct kl_tar_stats {
	uint64_t entries;   /* written */
	uint64_t bytes;	    /* of file data */
	uint64_t sockets;   /* left out: tar cannot hold them */
	uint64_t hardlinks; /* written as links to the first name */
};
/*
 * Writes the entry at path ("" or "/" for the root) below tree, and all
 * below it, to fd as a POSIX tar archive (ustar headers, pax extended
 * headers for long names and link targets, large sizes and ids,
 * sub-second and negative times, long user and group names, extended
 * attributes as SCHILY.xattr). Names are the snapshot's paths without the
 * leading '/'. A file whose nodes share a device and inode with an earlier
 * one in the archive becomes a hard link to it.
 */
int kl_dump_tar(struct kl_repo *r, const struct kl_id *tree, const char *path, int fd,
		struct kl_tar_stats *ret);

/* ---- whether a snapshot's data is all there (keel snapshots) ------------- */

/*
 * What kl_presence_check() has learnt so far, shared between snapshots:
 * the packs the storage lists and the trees found whole. Release with
 * kl_presence_release().
 */
struct kl_presence {
	struct kl_idset packs; /* listed in data/ */
	struct kl_idset whole; /* trees whose every blob below is present */
	bool listed;
};
void kl_presence_release(struct kl_presence *p);
/*
 * Counts into *missing_ret the blobs reachable from tree (trees, their
 * parts, data) that no index file names or whose pack the storage does
 * not list; trees not present are not descended into. Reads each tree
 * once per kl_presence (one listing of data/ on the first call); reads no
 * data. Needs the index loaded. A tree blob that cannot be opened counts
 * as missing. Returns 0 or the storage's error.
 */
int kl_presence_check(struct kl_repo *r, struct kl_presence *p, const struct kl_id *tree,
		      uint64_t *missing_ret);

#endif
