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
/* only the chunks a QEMU dirty bitmap marks were read; the others are the parent's */
#define KL_IMAGE_METHOD_DIRTY "dirty-bitmap"

struct kl_image_backup_opts {
	/* raw image files, block devices, qcow2 files (read through qemu-nbd) or NBD URIs */
	char **sources;
	size_t n_sources;
	const char *name;    /* the node's name (one source only); NULL: the basename */
	uint32_t chunk_size; /* a power of two, KL_IMAGE_CHUNK_MIN..MAX; 0: the parent's */
	unsigned threads;    /* pipeline workers; 0: one per core */
	/* read only what qemu:dirty-bitmap:NAME marks (NBD and qcow2 sources) */
	const char *dirty_bitmap;
	/* the sources are overlay files of keel image serve: back up their images */
	bool from_overlay;
	char **tags;
	size_t n_tags;
	/* what was done for consistency (docs/IMAGES.md), recorded; NULL: nothing */
	const char *consistency;
	/* per source, what to read instead of it (an LVM snapshot); NULL: the source */
	char *const *read_from;
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
	uint64_t chunks_clean;	/* not dirty in the bitmap: the parent's, not read */
	uint64_t images_bitmap; /* images whose clean chunks came from the parent */
	const char *method;	/* KL_IMAGE_METHOD_*: how the changes were found */
	/* per source, in order: kl_image_ident()'s text ("" when not recognised) */
	char **ident;
	size_t n_ident;
	/* why --dirty-bitmap read an image in full though there was a parent ("": none) */
	char note[320];
};

void kl_image_backup_result_release(struct kl_image_backup_result *r);

#define KL_IMAGE_IDENT_LEN 512		   /* a description's room, NUL included */
#define KL_IMAGE_IDENT_READ (65536 + 4096) /* bytes kl_image_ident() looks at */
/*
 * Describes what the first n bytes of a disk hold: a partition table (GPT,
 * MBR) or a file system (ext2/3/4, XFS, btrfs, vfat, swap), as one line
 * such as "gpt disk-guid=... partitions=2" or "ext4 uuid=... label=root".
 * Returns 1 when recognised, 0 otherwise (out is then "").
 */
int kl_image_ident(const uint8_t *p, size_t n, char *out, size_t outlen);

/* ---- consistency (docs/IMAGES.md): FIFREEZE, LVM snapshots ------------ */

/* Freezes the file system mounted at mountpoint: the descriptor to thaw, or -errno. */
int kl_image_freeze(const char *mountpoint);
/* Thaws and closes fd (from kl_image_freeze). */
int kl_image_thaw(int fd);
/*
 * Whether the file system mounted at mountpoint is the one on the block
 * device dev (its st_dev is dev's st_rdev): 1 or 0, -errno when either
 * cannot be looked at. device-mapper freezes that file system itself when
 * it suspends dev (an LVM snapshot of it), and fails (EBUSY, kernels
 * before 6.8) when it is frozen already.
 */
int kl_image_fs_on(const char *mountpoint, const char *dev);

struct kl_image_lvm {
	char origin[260]; /* VG/LV */
	char snap[300];	  /* VG/keel-snap-PID-N */
	char dev[310];	  /* /dev/VG/keel-snap-PID-N */
	bool created;
};
/*
 * When source is an LVM logical volume, makes a temporary snapshot of it
 * (lvcreate -s; 20% of the origin's size for a thick one), named after
 * keel's pid and n, the source's index (two sources may be in one volume
 * group). -KL_EUSAGE when it is none. Detail in err.
 */
int kl_image_lvm_snapshot(const char *source, size_t n, struct kl_image_lvm *ret,
			  struct kl_err *err);
/* Removes it (lvremove -f); nothing when it was not made. */
int kl_image_lvm_remove(struct kl_image_lvm *l, struct kl_err *err);

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

/* ---- the overlay file of a writable export (docs/IMAGES.md) ----------- */

#define KL_IMAGE_OVERLAY_HDR_LEN 4096
#define KL_IMAGE_OVERLAY_VERSION 1
#define KL_IMAGE_OVERLAY_BLOCK_MIN 4096u
#define KL_IMAGE_OVERLAY_BLOCK_DEFAULT (64u << 10)
#define KL_IMAGE_OVERLAY_SIZE_MAX ((uint64_t)1 << 50) /* 1 PiB */

/* What an overlay's header records: which image it is the overlay of. */
struct kl_image_overlay_hdr {
	uint32_t block_size; /* a power of two, KL_IMAGE_OVERLAY_BLOCK_MIN..KL_IMAGE_CHUNK_MAX */
	uint64_t image_size;
	uint64_t data_offset; /* follows from the two above; set by decode and open */
	struct kl_id snapshot;
	char name[256]; /* the image's name in the snapshot, 1..255 bytes */
};

/* The header's canonical bytes (data_offset is computed, not taken from h). */
void kl_image_overlay_hdr_encode(const struct kl_image_overlay_hdr *h,
				 uint8_t out[KL_IMAGE_OVERLAY_HDR_LEN]);
/* Strict: -KL_ECORRUPT on any damage (checksum, layout, name), -KL_EVERSION. */
int kl_image_overlay_hdr_decode(const uint8_t *p, size_t n, struct kl_image_overlay_hdr *ret);

struct kl_image_overlay;
/*
 * Opens the overlay at path for the image want describes, creating it
 * (mode 0600, never following a symlink) when missing. An existing one must
 * belong to the same snapshot, image name and size (-KL_EUSAGE otherwise);
 * its block size is its own. Detail in err.
 */
int kl_image_overlay_open(const char *path, const struct kl_image_overlay_hdr *want,
			  struct kl_image_overlay **ret, struct kl_err *err);
void kl_image_overlay_free(struct kl_image_overlay *o);

/* ---- an image exported from the repository (keel image serve) --------- */

struct kl_image_export_opts {
	size_t cache_bytes;		  /* chunk cache in memory; 0: 128 MiB */
	unsigned readahead;		  /* chunks fetched ahead of a sequential reader; 0: none */
	unsigned fetchers;		  /* read-ahead threads; 0: 4 */
	struct kl_image_overlay *overlay; /* NULL: read-only; taken over by the export */
};

struct kl_image_export_stats {
	uint64_t fetched, fetched_ahead, hits, waits; /* chunks */
	uint64_t overlay_blocks, overlay_blocks_new;  /* in the overlay; first written now */
};

struct kl_image_export;
/*
 * Serves the image node n of a snapshot whose chunk size is chunk_size
 * (repository open, unlocked, index loaded; it must outlive the export).
 * Keeps its own copy of what it needs from n. Detail via kl_repo_fail.
 */
int kl_image_export_open(struct kl_repo *r, const struct kl_node *n, uint32_t chunk_size,
			 const struct kl_image_export_opts *o, struct kl_image_export **ret);
/* Starts the read-ahead threads (nbdkit: after it forked). */
int kl_image_export_start(struct kl_image_export *e);
void kl_image_export_free(struct kl_image_export *e);
uint64_t kl_image_export_size(const struct kl_image_export *e);
bool kl_image_export_writable(const struct kl_image_export *e);
/* Thread-safe. Ranges must lie inside the image (-EINVAL otherwise). */
int kl_image_export_read(struct kl_image_export *e, void *buf, size_t len, uint64_t off);
/* Into the overlay (-EROFS without one). */
int kl_image_export_write(struct kl_image_export *e, const void *buf, size_t len, uint64_t off);
/* Makes the overlay's writes durable (0 without one). */
int kl_image_export_flush(struct kl_image_export *e);
/*
 * The run from off (at most len bytes) that is all zero chunks outside the
 * overlay (*zero) or not: its length in *run.
 */
void kl_image_export_extent(struct kl_image_export *e, uint64_t off, uint64_t len, uint64_t *run,
			    bool *zero);
void kl_image_export_stats(struct kl_image_export *e, struct kl_image_export_stats *ret);

#endif
