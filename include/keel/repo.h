/*
 * A repository: a backend, the unlocked keys, the config, and the
 * in-memory blob index. Writers add blobs through packers (one per worker
 * thread) which seal blobs into pack files; pack files are durable before
 * the index that names them, and indexes before the snapshot that needs
 * them, so a crash at any point leaves a consistent repository.
 */
#ifndef KEEL_REPO_H
#define KEEL_REPO_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "keel/backend.h"
#include "keel/chunker.h"
#include "keel/crypto.h"
#include "keel/format.h"
#include "keel/util.h"

/* Opaque outside src/repo (repo-internal.h): reached only through kl_repo_*(). */
struct kl_repo;

struct kl_init_opts {
	struct kl_kdf_params kdf;
	int compression_level;
	uint32_t pack_size;
	struct kl_cdc_params cdc;
	const char *host, *user;
	enum kl_lock_mode lock_mode; /* S3 Object Lock for every object (docs/S3.md) */
	uint32_t lock_days;
	/*
	 * NULL: the chunker key derived from the new master key; else this
	 * one, recorded in the config (kl_repo_chunker_key() of the repository
	 * whose chunks the new one must share: docs/COPY.md).
	 */
	const struct kl_key *chunker_key;
};
void kl_init_opts_default(struct kl_init_opts *o);

/* Creates a repository at location. -KL_EEXIST_REPO if one exists. */
int kl_repo_create(const char *location, const struct kl_pass *pass, const struct kl_init_opts *o,
		   struct kl_repo **ret);
/* Opens without a key. -KL_ENOREPO if there is no repository. */
int kl_repo_open(const char *location, struct kl_repo **ret);
/*
 * The same, with the storage's detail of a failure (kl_backend_take_err:
 * which key the server refused, a missing bucket) moved into err.
 */
int kl_repo_create_err(const char *location, const struct kl_pass *pass,
		       const struct kl_init_opts *o, struct kl_err *err, struct kl_repo **ret);
int kl_repo_open_err(const char *location, struct kl_err *err, struct kl_repo **ret);
/*
 * Opens the location a mirror copies to, without a key: the repository
 * there, or an empty layout made for one when it has no config yet (a
 * new copy, or a copy whose config the mirror puts back). Never unlocked.
 * With object_lock, the storage is made ready for Object Lock first (as
 * kl_repo_dest_object_lock() does): -EOPNOTSUPP when it has none.
 */
int kl_repo_open_dest(const char *location, bool object_lock, struct kl_err *err,
		      struct kl_repo **ret);
/* Tries every key file; -KL_EBADPASS if none opens. Then reads the config. */
int kl_repo_unlock(struct kl_repo *r, const struct kl_pass *pass);
void kl_repo_free(struct kl_repo *r);
static inline void kl_repo_freep(struct kl_repo **r)
{
	kl_repo_free(*r);
}

/* ---- state (valid while r lives) ------------------------------------------- */

/* The repository's config; all zero before kl_repo_unlock() read it. */
const struct kl_config *kl_repo_config(const struct kl_repo *r);
/* The unlocked keys; NULL before kl_repo_unlock(). */
const struct kl_keys *kl_repo_keys(const struct kl_repo *r);
/* The chunker the config sets up (after kl_repo_unlock()). */
const struct kl_cdc *kl_repo_cdc(const struct kl_repo *r);
/* The key the chunker's gear table comes from (after kl_repo_unlock()): a secret. */
const struct kl_key *kl_repo_chunker_key(const struct kl_repo *r);
/*
 * Whether a and b (both unlocked) cut the same bytes at the same places:
 * the same chunker parameters, variant and key.
 */
bool kl_repo_same_chunker(const struct kl_repo *a, const struct kl_repo *b);
/* The name of the key file that unlocked r (zeros before kl_repo_unlock()). */
const struct kl_id *kl_repo_key_id(const struct kl_repo *r);
/* How many index files kl_repo_load_index() skipped as damaged. */
unsigned kl_repo_bad_index_files(const struct kl_repo *r);
/* The storage refuses deletes (but of locks) and overwrites (ssh:// --append-only). */
bool kl_repo_append_only(const struct kl_repo *r);

/* ---- the detail of a failure ----------------------------------------------- */

/*
 * A kl_repo_*() or ops function that fails records what it was doing (which
 * object, which snapshot) in r, and the storage records its own word on
 * it (which key the server refused: kl_backend_fail()). kl_repo_fail()
 * records the context with kl_fail() (the first one stays until cleared)
 * and returns code, for "return kl_repo_fail(r, rc, "cannot ...", ...);".
 */
int kl_repo_fail(struct kl_repo *r, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Forgets both details: the caller turned that failure into a warning, or ignores it. */
void kl_repo_clear_err(struct kl_repo *r);
/*
 * Moves the detail of the latest failure out of r, and clears it there:
 * the context into err (replacing what err held), the storage's word into
 * detail with kl_fail() (so an earlier message in detail stays). Either
 * may be NULL: that part is dropped. r may be NULL (nothing is moved).
 */
void kl_repo_take_err(struct kl_repo *r, struct kl_err *err, struct kl_err *detail);

/* ---- raw objects (the storage's bytes, not opened) ------------------------ */

/*
 * Lists the objects of type t: cb gets each name and size (in no set
 * order); a negative return of cb stops the listing and is returned.
 * Returns 0 or the storage's error (-ENOENT, -EACCES, -KL_EREMOTE...).
 */
int kl_repo_list(struct kl_repo *r, enum kl_obj_type t, kl_list_cb cb, void *userdata);
/*
 * The same with each object's LastModified, from the listing itself.
 * Returns -EOPNOTSUPP where the storage's listings carry no times (all
 * but S3), else as kl_repo_list().
 */
int kl_repo_list_mtime(struct kl_repo *r, enum kl_obj_type t, kl_list_mtime_cb cb, void *userdata);
/*
 * Appends len bytes at off of an object as stored (len 0: to the end) to
 * out, unchecked. Returns 0, -ENOENT if it is missing, or the storage's
 * error.
 */
int kl_repo_get_raw(struct kl_repo *r, enum kl_obj_type t, const char *name, uint64_t off,
		    uint64_t len, struct kl_buf *out);
/*
 * A mirror's copy, opened without its config: sets the Object Lock
 * retention of every object put from now on (none: stops setting it),
 * after making sure the storage can hold locked objects. Returns 0;
 * -EOPNOTSUPP when the storage has no Object Lock; -KL_EUSAGE when it is
 * not set up for it (an S3 bucket made without it); other storage errors.
 */
int kl_repo_dest_object_lock(struct kl_repo *r, enum kl_lock_mode mode, uint32_t days);
/*
 * Stores bytes as they are, atomically, under name (a mirror's copy:
 * nothing is sealed or checked). Returns 0, -EEXIST if the object exists
 * (but config, which is replaced), or the storage's error.
 */
int kl_repo_put_raw(struct kl_repo *r, enum kl_obj_type t, const char *name, const void *data,
		    size_t len);
/* The stored size of an object in *size_ret. Returns 0, -ENOENT, or the storage's error. */
int kl_repo_stat(struct kl_repo *r, enum kl_obj_type t, const char *name, uint64_t *size_ret);
/*
 * Deletes an object (key files and locks too). Returns 0, -ENOENT if it
 * is missing, -KL_EOBJLOCKED if it is under Object Lock retention, the
 * storage's error (-KL_EAPPENDONLY where it is append-only, but for locks).
 */
int kl_repo_delete(struct kl_repo *r, enum kl_obj_type t, const char *name);
/* The folder of an object type in the repository's layout ("data", "index", ...), for messages. */
const char *kl_repo_type_name(enum kl_obj_type t);
/*
 * Counts the temporary files interrupted writes left into *ret and, with
 * remove, deletes those at least min_age_s seconds old. Where the storage
 * leaves none (S3), *ret is all zero. Returns 0 or the storage's error.
 */
int kl_repo_sweep_tmp(struct kl_repo *r, uint64_t min_age_s, bool remove, struct kl_tmp_stats *ret);

/* ---- ids and names --------------------------------------------------- */

void kl_id_hex(const struct kl_id *id, char out[2 * KL_ID_LEN + 1]);
int kl_id_parse(const char *hex, struct kl_id *ret);
static inline bool kl_id_eq(const struct kl_id *a, const struct kl_id *b)
{
	return !memcmp(a->b, b->b, KL_ID_LEN);
}

/* ---- sets of ids (idset.c) ------------------------------------------ */

struct kl_idset {
	struct kl_id *v;
	uint8_t *used; /* one bit per slot */
	size_t cap, n;
};
/* 1 if added, 0 if it was there, -ENOMEM. */
int kl_idset_add(struct kl_idset *s, const struct kl_id *id);
bool kl_idset_has(const struct kl_idset *s, const struct kl_id *id);
void kl_idset_release(struct kl_idset *s);

/* ---- sealed objects (config, snapshots, indexes, locks) --------------- */

/*
 * Seals payload (zstd-compressed when it helps) and stores it under the
 * SHA-256 of the stored bytes; returns that id. Layout: docs/FORMAT.md.
 */
int kl_repo_put_object(struct kl_repo *r, enum kl_obj_type t, enum kl_obj_kind kind,
		       const void *payload, size_t n, struct kl_id *ret);
/* Reads, verifies the name hash, opens and decompresses. */
int kl_repo_get_object(struct kl_repo *r, enum kl_obj_type t, enum kl_obj_kind kind,
		       const char *name, struct kl_buf *out);

/* ---- index ------------------------------------------------------------ */

struct kl_blob_loc {
	struct kl_id pack;
	struct kl_blob_entry e;
};

/*
 * Reads every index file. Call once after unlock. A damaged index file is
 * skipped and counted (kl_repo_bad_index_files()); the packs it named are then
 * indexed in memory from their own headers, so reading still works (check
 * reports the damage, the next backup writes a new index for them).
 */
int kl_repo_load_index(struct kl_repo *r);
/* 1 and fills loc if the blob is stored, 0 if not. Thread-safe. */
int kl_repo_lookup(struct kl_repo *r, const struct kl_id *id, struct kl_blob_loc *loc);
size_t kl_repo_blob_count(struct kl_repo *r);
/*
 * Claims a blob for writing: returns 1 if it is already stored or claimed
 * (skip it), 0 if the caller now owns writing it. Thread-safe: two
 * workers never store the same new blob.
 */
int kl_repo_claim(struct kl_repo *r, const struct kl_id *id);
/*
 * Also reads the index files written since the index was loaded (by other
 * processes), for a long-running reader that meets newer snapshots.
 */
int kl_repo_refresh_index(struct kl_repo *r);
/* Whether kl_repo_load_index() succeeded on r. */
bool kl_repo_index_loaded(const struct kl_repo *r);
/*
 * The index files and deletion records kl_repo_load_index() read (copies;
 * the caller frees both arrays).
 */
int kl_repo_index_files(struct kl_repo *r, struct kl_id **files, size_t *n_files,
			struct kl_id **records, size_t *n_records);
/* Every pack the index knows (live or deleting), sorted, each once. */
int kl_repo_index_pack_ids(struct kl_repo *r, struct kl_id **ret, size_t *n_ret);
/* An index file kl_repo_load_index() read names this one in its supersedes. */
bool kl_repo_index_file_superseded(struct kl_repo *r, const struct kl_id *file);
/* A deletion record names the pack: it is readable but awaits deletion. */
bool kl_repo_pack_deleting(struct kl_repo *r, const struct kl_id *pack);
/* Calls cb for every pack and its blobs known to the index (deleting ones too). */
int kl_repo_foreach_pack(struct kl_repo *r,
			 int (*cb)(const struct kl_id *pack, const struct kl_blob_entry *blobs,
				   size_t n, void *ud),
			 void *ud);

/* ---- reading blobs ------------------------------------------------------ */

/*
 * Reads a blob into out (replacing its content): fetches the sealed bytes,
 * authenticates them (bound to the id), decompresses and checks that the
 * keyed hash of the plaintext is the id. -KL_ENOTFOUND if no index knows it,
 * -KL_ECORRUPT on any mismatch. Thread-safe; zctx may be NULL.
 */
int kl_repo_read_blob(struct kl_repo *r, const struct kl_id *id, struct kl_buf *out);
/* Decodes sealed blob bytes already fetched (for readers that fetch whole packs). */
int kl_repo_open_blob(struct kl_repo *r, const struct kl_blob_entry *e, const uint8_t *sealed,
		      struct kl_buf *out);
/*
 * Reads a tree; for a directory continued over several blobs it reads and
 * joins every part, and ret->more lists the parts' ids (so that whoever
 * marks used blobs marks them too).
 */
int kl_repo_read_tree(struct kl_repo *r, const struct kl_id *id, struct kl_tree *ret);
/*
 * Reads one tree blob alone: for a directory's head, its own nodes with
 * ret->more naming the parts, which are not read (kl_tree_join() adds
 * them). For whoever must go on when one part is damaged (repair).
 */
int kl_repo_read_tree_blob(struct kl_repo *r, const struct kl_id *id, struct kl_tree *ret);

/* ---- writing blobs -------------------------------------------------------- */

struct kl_packer;
struct kl_write_stats {
	uint64_t blobs, bytes_plain, bytes_stored, packs;
};

/* One packer per writing thread. */
int kl_packer_new(struct kl_repo *r, struct kl_packer **ret);
/*
 * Compresses, seals and appends a blob whose id the caller computed and
 * claimed. Writes out a full pack when it reaches the target size.
 */
int kl_packer_add(struct kl_packer *p, enum kl_blob_type type, const struct kl_id *id,
		  const void *data, size_t n);
/*
 * Hands the pending pack, if any, to the background writers; it is durable
 * after kl_repo_wait_writes() or kl_repo_flush_index().
 */
int kl_packer_flush(struct kl_packer *p);
/* Waits until every pack handed over so far is durable; returns the first write error. */
int kl_repo_wait_writes(struct kl_repo *r);
void kl_packer_stats(const struct kl_packer *p, struct kl_write_stats *ret);
void kl_packer_free(struct kl_packer *p); /* discards unflushed blobs */

/*
 * Appends a blob sealed elsewhere (prune's repacking copies blobs without
 * re-encrypting: a blob's sealing binds its id, not its pack). The caller
 * has authenticated sealed against e.
 */
int kl_packer_add_sealed(struct kl_packer *p, const struct kl_blob_entry *e, const uint8_t *sealed);

/* Stores a blob: computes the id, claims it, adds it. Returns the id. */
int kl_packer_store(struct kl_packer *p, enum kl_blob_type type, const void *data, size_t n,
		    struct kl_id *ret);

/*
 * Writes an index file for all packs written since the last call (packs
 * are durable already). Thread-safe. The new packs are not visible to
 * other processes before this.
 */
int kl_repo_flush_index(struct kl_repo *r);
/* Seals and stores an index file or deletion record; returns its id. */
int kl_repo_put_index_file(struct kl_repo *r, const struct kl_index_file *f, struct kl_id *ret);
int kl_repo_get_index_file(struct kl_repo *r, const struct kl_id *id, struct kl_index_file *ret);

/*
 * Finds packs that no index names (left by a killed backup) and indexes
 * them from their own headers, so their blobs are reused. Returns the
 * number of packs adopted.
 */
int kl_repo_adopt_orphans(struct kl_repo *r);

/* Reads a pack's header (the authenticated list of its blobs). */
int kl_repo_read_pack_header(struct kl_repo *r, const char *name, uint64_t size,
			     struct kl_pack_header *ret);

/* ---- snapshots ---------------------------------------------------------- */

struct kl_snapshot_ref {
	struct kl_id id;
	struct kl_snapshot s;
};
struct kl_snapshot_list {
	struct kl_snapshot_ref *v;
	size_t n;
	struct kl_id *damaged; /* snapshot files that failed to decrypt or decode */
	size_t n_damaged;
};

int kl_repo_save_snapshot(struct kl_repo *r, const struct kl_snapshot *s, struct kl_id *ret);
int kl_repo_load_snapshot(struct kl_repo *r, const struct kl_id *id, struct kl_snapshot *ret);
/* All readable snapshots, sorted by time (oldest first); damaged ones are listed apart. */
int kl_repo_list_snapshots(struct kl_repo *r, struct kl_snapshot_list *ret);
void kl_snapshot_list_release(struct kl_snapshot_list *l);

/* ---- locks (lock.c) ------------------------------------------------------ */

#define KL_LOCK_REFRESH_SEC 300	    /* heartbeat */
#define KL_LOCK_STALE_SEC (30 * 60) /* a lock not refreshed for this long is dead */

/*
 * Takes a lock of the given kind (before loading the index: see lock.c)
 * and keeps it fresh from a background thread until kl_repo_unlock_repo()
 * or kl_repo_free(). -KL_ELOCKED, with the holder in the detail
 * (kl_repo_take_err()), if a live lock conflicts.
 */
int kl_repo_lock(struct kl_repo *r, enum kl_lock_kind kind, const char *command);
/*
 * Removes our lock object(s). 0, or the error when an object of ours may
 * be left behind (its name in the error detail): the caller must say so.
 */
int kl_repo_unlock_repo(struct kl_repo *r);
/* 0 while our lock is safely held (or none was taken), else -KL_ELOCKED. */
int kl_lock_check(struct kl_repo *r);
/* Our lock's session id (zeros without a lock). */
void kl_lock_session(struct kl_repo *r, struct kl_id *ret);
/* A lock is alive unless stale, or on this host with a dead pid. */
bool kl_lock_alive(const struct kl_lock_info *l, int64_t now_ns);
int kl_lock_self_host(char *out, size_t n);
/* Every readable lock object; unreadable ones are skipped. */
int kl_repo_list_locks(struct kl_repo *r,
		       int (*cb)(const char *name, const struct kl_lock_info *info, bool alive,
				 void *ud),
		       void *ud);

/*
 * Best effort, from another thread, when the process is about to exit at
 * once (a second interrupt): stops the heartbeat and deletes our current
 * lock object. Safe while the owning thread works on r, not against
 * kl_repo_free(). Returns 0 or the deletion's error.
 */
int kl_repo_lock_abandon(struct kl_repo *r);

/* ---- cancellation -------------------------------------------------------- */

/*
 * The caller's cancel flag (NULL: none), set from another thread (the
 * CLI's signal thread). Long operations poll kl_repo_cancelled() and
 * return -KL_EINTERRUPTED, cleaning up as on any other error: queued packs
 * are dropped, temporary files removed, the lock released by the caller.
 */
void kl_repo_set_cancel(struct kl_repo *r, const atomic_bool *flag);
/* -KL_EINTERRUPTED once the flag is set, else 0. */
int kl_repo_cancelled(const struct kl_repo *r);
/* Packs written (durable) by this process so far. */
uint64_t kl_repo_packs_written(struct kl_repo *r);

/* ---- keys ----------------------------------------------------------------- */

int kl_repo_add_key(struct kl_repo *r, const struct kl_pass *pass, const struct kl_kdf_params *kdf,
		    const char *host, const char *user, struct kl_id *ret);

#endif
