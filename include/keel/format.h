/*
 * Repository data structures and their byte encodings: pure bytes <->
 * structs, no I/O, no crypto. Every message is protobuf wire format
 * (docs/FORMAT.md gives the schemas), so a reader in twenty years can use
 * any protobuf library, and unknown fields are skipped, which lets later
 * versions add fields without a format break.
 *
 * Decoders take untrusted bytes: they check every length before
 * allocating and return -KL_ECORRUPT on anything malformed. Decoded
 * structs own their memory; free them with the matching *_free/_release.
 */
#ifndef KEEL_FORMAT_H
#define KEEL_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keel/pb.h"
#include "keel/util.h"

/* ---- tree nodes and trees -------------------------------------------- */

enum kl_node_type {
	KL_NODE_FILE = 1,
	KL_NODE_DIR = 2,
	KL_NODE_SYMLINK = 3,
	KL_NODE_FIFO = 4,
	KL_NODE_CHR = 5,
	KL_NODE_BLK = 6,
	KL_NODE_SOCK = 7,
};

enum kl_node_flags {
	KL_NODE_SPARSE = 1 << 0,  /* had holes: restore zero chunks as holes */
	KL_NODE_CHANGED = 1 << 1, /* changed while it was being read */
	KL_NODE_PARTIAL = 1 << 2, /* a read error cut it short */
	/* its xattrs (ACLs) or symlink target could not be read whole: read them again next time */
	KL_NODE_ATTRS_PARTIAL = 1 << 3,
};

struct kl_xattr {
	char *name;
	uint8_t *value;
	size_t value_len;
};

struct kl_node {
	uint8_t *name; /* arbitrary bytes but '/' and NUL; never "", ".", ".." */
	size_t name_len;
	enum kl_node_type type;
	uint32_t mode; /* st_mode & 07777 */
	uint32_t uid, gid;
	char *user, *group; /* NULL when unknown */
	uint64_t size;
	int64_t mtime_sec, atime_sec, ctime_sec;
	uint32_t mtime_nsec, atime_nsec, ctime_nsec;
	uint64_t inode, dev, nlink, rdev;
	uint8_t *link; /* symlink target, arbitrary bytes */
	size_t link_len;
	struct kl_id *content; /* data blob ids, in order */
	size_t n_content;
	struct kl_id subtree; /* directories */
	bool has_subtree;
	struct kl_xattr *xattrs;
	size_t n_xattrs;
	uint32_t flags;
};

struct kl_tree {
	struct kl_node *nodes;
	size_t n;
	size_t cap;
	/*
	 * Ids of the tree blobs that continue this one, in order (only in a
	 * decoded head; the encoders never look at them). kl_repo_read_tree()
	 * has joined their nodes already and keeps the ids here, so that
	 * whoever marks used blobs marks these too.
	 */
	struct kl_id *more;
	size_t n_more;
};

/*
 * A directory too big for one tree blob is stored as a head (a Tree of
 * version 2 with its first nodes and the ids of the other parts) plus
 * parts (plain version-1 trees); docs/FORMAT.md section 6. Caps across
 * all parts of one directory:
 */
#define KL_TREE_BLOB_NODES ((size_t)1 << 20)	  /* nodes per blob (the decoder's cap) */
#define KL_TREE_MAX_PARTS ((size_t)4096)	  /* the head included */
#define KL_TREE_MAX_TOTAL_NODES ((size_t)1 << 26) /* nodes over all parts */
/* What backup puts in one part when a directory needs several. */
#define KL_TREE_PART_BYTES ((size_t)16 << 20)
#define KL_TREE_PART_NODES ((size_t)1 << 18)

void kl_node_release(struct kl_node *n);
/* Appends a node (taking ownership of its pointers; *n is zeroed). */
int kl_tree_add(struct kl_tree *t, struct kl_node *n);
void kl_tree_release(struct kl_tree *t);
/* Sorts nodes by name (bytewise, shorter first on a common prefix). */
void kl_tree_sort(struct kl_tree *t);
/* Binary search by name; NULL if absent. Tree must be sorted. */
const struct kl_node *kl_tree_find(const struct kl_tree *t, const uint8_t *name, size_t len);
int kl_name_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

/*
 * Encodes a sorted tree as one blob (t->more is ignored). -EINVAL if
 * names are unsorted or duplicated, -E2BIG past 2^20 nodes.
 */
int kl_tree_encode(const struct kl_tree *t, struct kl_buf *out);
/*
 * Encodes nodes [from, to) of a sorted tree as one blob continued by the
 * tree blobs more[0..n_more): with n_more == 0 exactly what
 * kl_tree_encode() writes for those nodes, else a head (version 2), which
 * must hold at least one node.
 */
int kl_tree_encode_part(const struct kl_tree *t, size_t from, size_t to, const struct kl_id *more,
			size_t n_more, struct kl_buf *out);
/*
 * Plans how to store a sorted tree: one blob if its encoding fits in
 * max_bytes and max_nodes, else parts of at most part_bytes and
 * part_nodes each (a node bigger than part_bytes gets a part of its
 * own). Sets *ends_ret to a new array of *n_ret part ends (node indexes,
 * the last one t->n). -E2BIG past KL_TREE_MAX_PARTS parts or
 * KL_TREE_MAX_TOTAL_NODES nodes; -EINVAL as kl_tree_encode().
 */
int kl_tree_plan(const struct kl_tree *t, size_t max_bytes, size_t max_nodes, size_t part_bytes,
		 size_t part_nodes, size_t **ends_ret, size_t *n_ret);
/*
 * Stores a sorted tree as kl_tree_plan() splits it: one blob when it fits
 * in 64 MiB and max_nodes nodes (KL_TREE_BLOB_NODES but in tests), else
 * parts of at most KL_TREE_PART_BYTES and KL_TREE_PART_NODES (or
 * max_nodes if lower) nodes. store() is given each blob's bytes, the
 * parts first and the head last (so that a head never names a part not
 * stored yet), and returns its id; *ret is the head's.
 */
int kl_tree_store(const struct kl_tree *t, size_t max_nodes,
		  int (*store)(void *ud, const uint8_t *p, size_t n, struct kl_id *ret), void *ud,
		  struct kl_id *ret);
/*
 * Decodes one tree blob; rejects unsafe names, duplicates and unsorted
 * names. A head's continuation ids land in ret->more; the parts' nodes
 * are for kl_tree_join() to add.
 */
int kl_tree_decode(const uint8_t *p, size_t n, struct kl_tree *ret);
/*
 * Appends the nodes of a decoded continuation part to t, the tree read
 * so far, and releases part. -KL_ECORRUPT if part is empty, is itself
 * continued, or does not sort wholly after t's last node, or if the
 * nodes would exceed KL_TREE_MAX_TOTAL_NODES.
 */
int kl_tree_join(struct kl_tree *t, struct kl_tree *part);

/* ---- snapshots ------------------------------------------------------- */

enum kl_snapshot_kind {
	KL_SNAP_FILES = 1,    /* a file tree */
	KL_SNAP_STREAM = 2,   /* one stream: stdin or a command's output */
	KL_SNAP_DISK = 3,     /* disk or VM image (reserved) */
	KL_SNAP_DATABASE = 4, /* database base backup or dump (docs/DATABASES.md) */
	KL_SNAP_DBLOG = 5,    /* database log record (WAL) */
};

enum kl_db_engine { KL_DB_POSTGRESQL = 1, KL_DB_MARIADB = 2, KL_DB_SQLITE = 3 };
enum kl_db_role { KL_DB_BASE = 1, KL_DB_LOG = 2, KL_DB_DUMP = 3 };
#define KL_DB_NAME_MAX 64

/* Snapshot.db (docs/FORMAT.md "Databases"): kinds 4 and 5 only. */
struct kl_snapshot_db {
	uint32_t engine; /* enum kl_db_engine */
	uint32_t role;	 /* enum kl_db_role */
	char *name;	 /* [A-Za-z0-9._-]{1,64} */
	char *system_id; /* NULL: absent */
	uint32_t timeline, stop_timeline;
	uint64_t start_lsn, stop_lsn;
	char *server_version; /* NULL: absent */
	/* SQLite (fields 10-14): the WAL generation at stop_lsn; 0: absent */
	uint32_t wal_salt1, wal_salt2; /* the WAL header's salts */
	uint32_t wal_ckpt_seq;	       /* the WAL header's checkpoint sequence */
	uint64_t wal_checksum;	       /* the running frame checksum at stop_lsn: s0 << 32 | s1 */
	uint32_t page_size;
	uint32_t segment_size; /* PostgreSQL: wal_segment_size in bytes; 0: absent */
	/* MariaDB (fields 16-21; NULL/0: absent) */
	char *binlog_file;   /* base backup: the binary log file of its consistent position */
	uint64_t binlog_pos; /* ... and the offset in it */
	char *gtid;	     /* base backup: gtid_binlog_pos there ("0-1-42", per domain) */
	uint32_t server_id;
	char *server_name; /* the server's @@hostname */
	char *stop_gtid;   /* log record: the GTID position at stop_lsn */
	/* MariaDB log records (fields 23-27): the binary log file a record holds */
	char *log_file;		      /* its name on the server, e.g. "bin.000003"; NULL: absent */
	int64_t binlog_time_min;      /* the oldest event timestamp in it (s since the epoch); 0 */
	int64_t binlog_time_max;      /* the newest; 0: it holds no timed event */
	uint32_t binlog_checksum_alg; /* the file's checksum algorithm (0 none, 1 CRC32) */
	uint32_t binlog_server_id;    /* server_id of the server that wrote it */
	/*
	 * MariaDB base backups (fields 30, 31): the zone the server reads and
	 * writes local times in (an IANA name, "UTC" or "+HH:MM"; NULL: not
	 * known), and its offset from UTC in seconds when the backup was taken.
	 */
	char *time_zone;
	int32_t utc_offset;
	bool has_utc_offset;
};
/* Whether name is a valid database name. */
bool kl_db_name_valid(const char *name);
/* Whether name can be a binary log file's name: 1..255 of [A-Za-z0-9._-], no leading '.'. */
#define KL_BINLOG_NAME_MAX 255
bool kl_db_binlog_name_valid(const char *name);

struct kl_snapshot_stats {
	uint64_t files_new, files_changed, files_unmodified;
	uint64_t dirs;
	uint64_t bytes_total; /* logical bytes of all files in the snapshot */
	uint64_t bytes_read;  /* bytes actually read from sources */
	uint64_t blobs_new;
	uint64_t bytes_added;  /* plaintext bytes of new blobs */
	uint64_t bytes_stored; /* bytes of new blobs as stored (compressed+sealed) */
	uint64_t errors;       /* inputs that could not be read */
};

struct kl_snapshot {
	uint32_t kind;
	int64_t time_ns;     /* start */
	int64_t time_end_ns; /* end */
	/* this host's real clock when the walk began (time_ns may be backup --time's); 0: unknown
	 */
	int64_t read_start_ns;
	char *host, *user;
	uint32_t uid, gid;
	char **paths;
	size_t n_paths;
	char **tags;
	size_t n_tags;
	char **excludes;
	size_t n_excludes;
	struct kl_id tree;
	struct kl_id parent;
	bool has_parent;
	char *program_version;
	bool partial;
	struct kl_snapshot_stats stats;
	/*
	 * keel tag rewrites a snapshot as a new object and then deletes the
	 * old one; the copy names the old one here (docs/FORMAT.md, "Changing
	 * tags"), so an old one left by a tag killed before the delete is
	 * recognisable.
	 */
	struct kl_id replaces;
	bool has_replaces;
	bool has_db; /* kinds 4 and 5 have it, the others not */
	struct kl_snapshot_db db;
	/* disk images (kind KL_SNAP_DISK): fixed chunk size, how changes were found; 0/NULL: none
	 */
	uint32_t image_chunk_size;
	char *image_method;
	/* per path: what the image holds (kl_image_ident), "" when not recognised */
	char **image_ident;
	size_t n_image_ident;
	char *image_consistency; /* --freeze, --lvm-snapshot: what was done; NULL: nothing */
	char *image_bitmap;	 /* --dirty-bitmap NAME: the bitmap's name; NULL: none */
	/*
	 * keel copy: the snapshot this one is a copy of, in the repository it
	 * came from (that one's own original when it was a copy too).
	 */
	struct kl_id original;
	bool has_original;
};

void kl_snapshot_release(struct kl_snapshot *s);
int kl_snapshot_encode(const struct kl_snapshot *s, struct kl_buf *out);
int kl_snapshot_decode(const uint8_t *p, size_t n, struct kl_snapshot *ret);

/* ---- blobs, pack headers and indexes ------------------------------- */

enum kl_blob_type { KL_BLOB_DATA = 1, KL_BLOB_TREE = 2 };
enum kl_compression { KL_COMP_NONE = 0, KL_COMP_ZSTD = 1 };

/* Where one blob lives inside a pack. */
struct kl_blob_entry {
	struct kl_id id;
	uint8_t type;	     /* enum kl_blob_type */
	uint8_t compression; /* enum kl_compression */
	uint32_t offset;     /* of the sealed blob within the pack */
	uint32_t length;     /* sealed length */
	uint32_t raw_length; /* plaintext length after decompression */
};

struct kl_pack_header {
	struct kl_blob_entry *blobs;
	size_t n;
	size_t cap;
};
int kl_pack_header_add(struct kl_pack_header *h, const struct kl_blob_entry *e);
void kl_pack_header_release(struct kl_pack_header *h);
int kl_pack_header_encode(const struct kl_pack_header *h, struct kl_buf *out);
/*
 * Decodes and validates: entries must not overlap, must lie within
 * [0, data_len) where data_len is the pack size minus the header, and
 * lengths must be at least KL_FORMAT_SEAL_OVERHEAD.
 */
int kl_pack_header_decode(const uint8_t *p, size_t n, uint64_t data_len,
			  struct kl_pack_header *ret);

/*
 * The end of a pack: its sealed header, then that header's length (u32
 * LE) (docs/FORMAT.md). The smallest pack is an empty sealed header and
 * its length.
 */
#define KL_PACK_MIN_SIZE ((uint64_t)4 + KL_FORMAT_SEAL_OVERHEAD)
struct kl_pack_trailer {
	uint32_t header_len; /* of the sealed header */
	uint64_t header_off; /* where it starts: the blobs lie in [0, header_off) */
	uint64_t tail_len;   /* header_len + 4: the pack's last bytes that hold both */
	const char *why;     /* on failure, what is wrong (a static string) */
};
/*
 * Parses the trailer of a pack of size bytes from its last n bytes (tail,
 * 4 <= n <= size; 4 are enough). Returns 0 with *ret set: the sealed
 * header is the tail_len - 4 bytes before the length, so at tail + n -
 * tail_len when n >= tail_len; otherwise the caller reads tail_len bytes
 * at the end. Returns -KL_ECORRUPT with ret->why when the pack is too
 * short or the length does not fit in it.
 */
int kl_pack_trailer_parse(const uint8_t *tail, size_t n, uint64_t size,
			  struct kl_pack_trailer *ret);

struct kl_index_pack {
	struct kl_id pack;
	struct kl_pack_header h;
};
struct kl_index_file {
	struct kl_index_pack *packs;
	size_t n;
	size_t cap;
	struct kl_id *supersedes; /* index files this one replaces */
	size_t n_supersedes;
	/*
	 * A deletion record (written by prune): the packs listed await
	 * deletion and must not be deduplicated against; they are deleted
	 * once none of the wait_for lock sessions is alive any more.
	 */
	bool deleting;
	struct kl_id *wait_for; /* lock sessions alive when the record was written */
	size_t n_wait_for;
	bool wait_for_known; /* false: the sessions were not listed yet */
	int64_t time_ns;
};
/* Adds a pack (takes ownership of h's array; *h is zeroed). */
int kl_index_file_add(struct kl_index_file *f, const struct kl_id *pack, struct kl_pack_header *h);
void kl_index_file_release(struct kl_index_file *f);
int kl_index_file_encode(const struct kl_index_file *f, struct kl_buf *out);
int kl_index_file_decode(const uint8_t *p, size_t n, struct kl_index_file *ret);

/* ---- locks ------------------------------------------------------------ */

enum kl_lock_kind {
	KL_LOCK_SHARED = 1,    /* backup, restore, check, forget: any number at once */
	KL_LOCK_PRUNE = 2,     /* one prune at a time, beside shared locks */
	KL_LOCK_EXCLUSIVE = 3, /* nobody else (index rebuilds) */
};

struct kl_lock_info {
	struct kl_id session; /* stays the same across refreshes */
	uint32_t kind;	      /* enum kl_lock_kind */
	char *host, *user, *command;
	uint32_t pid;
	int64_t created_ns, refreshed_ns;
};
void kl_lock_info_release(struct kl_lock_info *l);
int kl_lock_info_encode(const struct kl_lock_info *l, struct kl_buf *out);
int kl_lock_info_decode(const uint8_t *p, size_t n, struct kl_lock_info *ret);

/* ---- mirror state (mirror/<id>: keyless, docs/MIRROR.md) ------------ */

/* The object types a Missing entry may name: keys, snapshots, index, data (enum kl_obj_type). */
#define KL_MIRROR_TYPE_MIN 1
#define KL_MIRROR_TYPE_MAX 4
#define KL_MIRROR_MAX_MISSING ((size_t)1 << 24)

/* An object that DEST holds and SOURCE lacks, and since when a run saw it missing. */
struct kl_mirror_missing {
	uint32_t type; /* enum kl_obj_type, KL_MIRROR_TYPE_MIN..KL_MIRROR_TYPE_MAX */
	struct kl_id id;
	int64_t since_ns;
};

struct kl_mirror_state {
	int64_t time_ns;	    /* when the run that wrote it ended */
	int64_t listed_ns;	    /* when it began listing SOURCE */
	int64_t complete_ns;	    /* the latest run that copied all it listed: end ... */
	int64_t complete_listed_ns; /* ... and listing time; 0: none yet */
	struct kl_mirror_missing *missing;
	size_t n_missing;
	/* Object Lock set on the copy's new objects (keel mirror --object-lock-*) */
	uint32_t lock_mode; /* enum kl_lock_mode */
	uint32_t lock_days;
};
void kl_mirror_state_release(struct kl_mirror_state *s);
int kl_mirror_state_encode(const struct kl_mirror_state *s, struct kl_buf *out);
int kl_mirror_state_decode(const uint8_t *p, size_t n, struct kl_mirror_state *ret);

/* ---- repository config ----------------------------------------------- */

#define KL_REPO_VERSION 1

/* S3 Object Lock retention for every object but locks (docs/S3.md) */
enum kl_lock_mode {
	KL_LOCK_NONE = 0,
	KL_LOCK_GOVERNANCE = 1, /* deletable early only with s3:BypassGovernanceRetention */
	KL_LOCK_COMPLIANCE = 2, /* deletable by no one until the date */
};
#define KL_LOCK_DAYS_MAX 36500
/*
 * Chunker variants a config may name (docs/FORMAT.md). The chunker must
 * implement each: src/repo checks that the two numbers agree.
 */
#define KL_CONFIG_CDC_VARIANT_MAX 2
/*
 * Bytes sealing adds to every stored object and blob: version (1), nonce
 * (12), tag (16) (docs/FORMAT.md). crypto seals; src/repo checks that the
 * two agree, so format needs no crypto.
 */
#define KL_FORMAT_SEAL_OVERHEAD 29

struct kl_config {
	uint32_t version;
	struct kl_id repo_id;
	uint32_t cdc_min, cdc_avg, cdc_max;
	uint32_t cdc_variant;	   /* 1 or 2 (struct kl_cdc_params); 1 when absent */
	int32_t compression_level; /* zstd level, 0 = no compression */
	uint32_t pack_size;	   /* target pack size in bytes */
	int64_t created_ns;
	enum kl_lock_mode lock_mode; /* KL_LOCK_NONE: objects are not locked */
	uint32_t lock_days;	     /* 1..KL_LOCK_DAYS_MAX with a mode, else 0 */
	/*
	 * A secret: the chunker key of the repository this one was made to
	 * deduplicate with (keel init --copy-chunker-params), used instead of
	 * the one derived from the master key. The config is sealed.
	 */
	struct kl_id chunker_key;
	bool has_chunker_key;
};
int kl_config_encode(const struct kl_config *c, struct kl_buf *out);
int kl_config_decode(const uint8_t *p, size_t n, struct kl_config *ret);

#endif
