/*
 * Disk and VM images (docs/IMAGES.md): a raw file or block device backed
 * up as one file node of fixed-size chunks, holes as zero chunks, and
 * restored onto a file or device, writing only the chunks that differ.
 */
#ifndef KEEL_IMAGE_H
#define KEEL_IMAGE_H

#include "keel/format.h"
#include "keel/repo.h"

#define KL_IMAGE_CHUNK_DEFAULT (4u << 20)
#define KL_IMAGE_CHUNK_MIN (64u << 10)
#define KL_IMAGE_CHUNK_MAX (16u << 20)
#define KL_IMAGE_METHOD_READ "read" /* every allocated byte read and hashed */

struct kl_image_backup_opts {
	char **sources; /* raw image files or block devices */
	size_t n_sources;
	const char *name;    /* the node's name (one source only); NULL: the basename */
	uint32_t chunk_size; /* a power of two, KL_IMAGE_CHUNK_MIN..MAX; 0: the parent's */
	unsigned threads;    /* pipeline workers; 0: one per core */
	char **tags;
	size_t n_tags;
};

/* What one image backup did, summed over its sources. */
struct kl_image_backup_result {
	struct kl_id id;     /* the snapshot */
	struct kl_id parent; /* the newest image snapshot of the same sources on this host */
	bool has_parent;
	uint32_t chunk_size; /* --chunk-size, else the parent's, else the default */
	uint64_t images, bytes_total, bytes_read;
	uint64_t chunks, chunks_hole, chunks_zero; /* hole: not read; zero: read, all zeros */
	uint64_t chunks_new, bytes_new;		   /* data chunks not in the repository before */
	uint64_t bytes_stored;			   /* as stored: compressed, sealed, trees too */
};

/* Backs the sources up into one snapshot (kind KL_SNAP_DISK). Detail via kl_repo_fail. */
int kl_image_backup(struct kl_repo *r, const struct kl_image_backup_opts *o,
		    struct kl_image_backup_result *ret);

struct kl_image_restore_result {
	uint64_t size, chunks;
	bool delta;		  /* the target held data: chunks were compared */
	uint64_t chunks_written;  /* data chunks fetched and written */
	uint64_t chunks_same;	  /* already right on the target */
	uint64_t holes_punched;	  /* zero chunks over data: punched (files) or zeroed */
	uint64_t bytes_written;	  /* data written */
	uint64_t chunks_verified; /* --verify: chunks read back and matched */
};

/*
 * Restores the image node n onto fd (a regular file or a block device open
 * read-write), as a delta when it holds data. verify: read it all back.
 */
int kl_image_restore(struct kl_repo *r, const struct kl_node *n, int fd, bool verify,
		     struct kl_image_restore_result *ret);

/*
 * Opens a source or target: its size from fstat, or BLKGETSIZE64 for a
 * block device (*is_dev). Returns the descriptor or -errno.
 */
int kl_image_open(const char *path, int flags, uint64_t *size_ret, bool *is_dev);

#endif
