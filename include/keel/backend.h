/*
 * Storage backends: a small vtable (redis rio style) so that a repository
 * can live on a local disk or on object storage. Objects are immutable
 * once written; put never replaces an existing object except the config.
 */
#ifndef KEEL_BACKEND_H
#define KEEL_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#include "keel/format.h"
#include "keel/util.h"

enum kl_obj_type {
	KL_OBJ_CONFIG = 0, /* single object named "config" */
	KL_OBJ_KEY,
	KL_OBJ_SNAPSHOT,
	KL_OBJ_INDEX,
	KL_OBJ_DATA,
	KL_OBJ_LOCK,
	KL_OBJ_MIRROR, /* mirror/: keel mirror's state in a copy (docs/MIRROR.md) */
	KL_OBJ_TYPES
};

/* Called once per object; a negative return stops the listing and is returned. */
typedef int (*kl_list_cb)(const char *name, uint64_t size, void *userdata);
/* The same with the object's LastModified (nanoseconds since the epoch, 0 when unknown). */
typedef int (*kl_list_mtime_cb)(const char *name, uint64_t size, int64_t mtime_ns, void *userdata);

/*
 * Temporary files: what a write leaves behind when the process dies
 * between creating its temporary file and renaming it (local backend).
 */
struct kl_tmp_stats {
	uint64_t files, bytes;		 /* all found */
	uint64_t stale, stale_bytes;	 /* of them, older than the age given */
	uint64_t removed, removed_bytes; /* of the stale ones, removed */
};

struct kl_backend;
struct kl_backend_ops {
	const char *scheme;
	int (*list)(struct kl_backend *b, enum kl_obj_type t, kl_list_cb cb, void *userdata);
	/* len == 0 reads to the end. Appends to out. -ENOENT if missing. */
	int (*get)(struct kl_backend *b, enum kl_obj_type t, const char *name, uint64_t off,
		   uint64_t len, struct kl_buf *out);
	/* Atomic and durable; -EEXIST if the object exists (except config). */
	int (*put)(struct kl_backend *b, enum kl_obj_type t, const char *name, const void *data,
		   size_t len);
	int (*del)(struct kl_backend *b, enum kl_obj_type t, const char *name);
	int (*stat)(struct kl_backend *b, enum kl_obj_type t, const char *name, uint64_t *size_ret);
	/* Creates the layout for a new repository; -EEXIST if one exists. */
	int (*create)(struct kl_backend *b);
	/*
	 * Optional (NULL: the backend leaves no temporary files): counts the
	 * temporary files of interrupted writes into *ret and, with remove,
	 * deletes those whose mtime is at least min_age_s seconds old.
	 */
	int (*sweep_tmp)(struct kl_backend *b, uint64_t min_age_s, bool remove,
			 struct kl_tmp_stats *ret);
	/*
	 * Optional (NULL: the storage has no Object Lock; only S3 has it).
	 * Called through kl_backend_prepare_object_lock() and
	 * kl_backend_set_object_lock(), which document them; mode and days
	 * are checked before.
	 */
	int (*prepare_object_lock)(struct kl_backend *b);
	void (*set_object_lock)(struct kl_backend *b, enum kl_lock_mode mode, uint32_t days);
	/* Optional (NULL: listings carry no times): see kl_backend_list_mtime(). */
	int (*list_mtime)(struct kl_backend *b, enum kl_obj_type t, kl_list_mtime_cb cb,
			  void *userdata);
	void (*free)(struct kl_backend *b);
};

/*
 * The detail of a backend's latest failure that its error code cannot
 * carry: which key the server refused, which region the bucket is in,
 * which host does not resolve. A backend records it with
 * kl_backend_fail() as it returns the code, instead of printing it; the
 * edge (the CLI) takes it once with kl_backend_take_err() and prints it
 * with its own line (STYLE.md 2.3). Several threads use one backend, so
 * it is guarded; the latest failure wins, as errno's does. An all-zero
 * struct is ready for use.
 */
struct kl_backend_err {
	int busy; /* a spin lock, held only to copy a message in or out */
	int code; /* 0: nothing recorded */
	char msg[512];
};

struct kl_backend {
	const struct kl_backend_ops *ops;
	char *location;	  /* for messages; owned */
	bool append_only; /* the storage refuses deletes (but of locks) and overwrites */
	struct kl_backend_err err;
};

/*
 * Records the detail of failure r (a negative code) in b, replacing what
 * was there. Thread-safe. Returns r, so that a backend writes
 * "return kl_backend_fail(b, -EACCES, "...", ...);".
 */
int kl_backend_fail(struct kl_backend *b, int r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Moves the recorded detail of b (and of the backend a cache wraps) into
 * e with kl_fail() (so an earlier message in e stays) and clears it.
 * b or e may be NULL. Returns 1 when there was a detail, else 0.
 */
int kl_backend_take_err(struct kl_backend *b, struct kl_err *e);

/*
 * Parses a location ("/path", "local:/path", "s3:...", "ssh://...") and
 * opens the backend. When it fails, the detail (a malformed setting, no
 * credentials) goes to err, which may be NULL.
 */
int kl_backend_open(const char *location, struct kl_err *err, struct kl_backend **ret);
void kl_backend_free(struct kl_backend *b);
static inline void kl_backend_freep(struct kl_backend **b)
{
	kl_backend_free(*b);
}

int kl_backend_local_open(const char *path, struct kl_backend **ret);

#ifdef KL_TESTING
/*
 * Test builds: wraps *bp in the fault-injecting backend
 * (src/backend/fault.c) when KEEL_TEST_FAULT is set, else leaves it.
 * Returns 0, -KL_EUSAGE (a malformed KEEL_TEST_FAULT) or -ENOMEM; *bp
 * is unchanged on failure.
 */
int kl_backend_fault_wrap(struct kl_backend **bp);
#endif

/*
 * Local metadata cache (src/backend/cache.c, docs/S3.md): a backend that
 * wraps a remote one and keeps copies of whole snapshot and index
 * objects below base, so that listing snapshots or loading the index does
 * not download them again. Entries are checked against their names
 * (SHA-256) before use; the directory may be deleted at any time.
 * kl_backend_open() wraps S3 and ssh:// backends with it.
 * Takes over inner (freed on failure too). Returns 0 or -ENOMEM.
 */
int kl_backend_cache_new(struct kl_backend *inner, const char *base, struct kl_backend **ret);

/*
 * Where the cache lives, from the environment: KEEL_CACHE_DIR, else
 * $XDG_CACHE_HOME/keel, else $HOME/.cache/keel; an absolute path in *ret
 * (the caller's to free). *ret is NULL when caching is off
 * (KEEL_NO_CACHE set and not "0") or no directory is known. Returns 0 or
 * -ENOMEM.
 */
int kl_backend_cache_base(char **ret);

/* The backend a cache wraps; b itself for any other backend. */
struct kl_backend *kl_backend_unwrap(struct kl_backend *b);

/* ---- optional operations (NULL in the vtable where the storage lacks them) ---- */

/*
 * For keel init: makes sure the storage can hold locked objects (S3: the
 * bucket has Object Lock, or is created with it; docs/S3.md). Acts on the
 * backend under a cache. Returns 0; -EOPNOTSUPP when the storage has no
 * Object Lock; -KL_EUSAGE when it could but is not set up for it (the
 * detail recorded with kl_backend_fail()); other errors of the storage.
 */
int kl_backend_prepare_object_lock(struct kl_backend *b);

/*
 * Sets the retention for every object put from now on (lock files are
 * never locked; a delete refuses, with -KL_EOBJLOCKED, an object under
 * retention). Call it after reading the config, before writing. Returns
 * 1 when set, 0 when the storage has no Object Lock (the setting cannot
 * apply to a copy of the repository on a disk; opening it still works)
 * or b is NULL (which only checks mode and days), -EINVAL for a bad mode
 * or days.
 */
int kl_backend_set_object_lock(struct kl_backend *b, enum kl_lock_mode mode, uint32_t days);

/*
 * list() with each object's LastModified (the server's time of the PUT),
 * from the listing itself: no request per object. Lists the backend
 * under a cache, never the cache. mtime_ns is 0 for the config and when
 * the server gives none. Returns what list() returns, or -EOPNOTSUPP
 * when the storage's listings carry no times.
 */
int kl_backend_list_mtime(struct kl_backend *b, enum kl_obj_type t, kl_list_mtime_cb cb,
			  void *userdata);

const char *kl_obj_type_name(enum kl_obj_type t);

#endif
