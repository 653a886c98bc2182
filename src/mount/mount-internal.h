/* src/mount's own declarations: the caches, the snapshot view, open files. */
#ifndef KEEL_MOUNT_INTERNAL_H
#define KEEL_MOUNT_INTERNAL_H

#include <pthread.h>
#include <sys/stat.h>

#include "keel/mount.h"

/* ---- a cache of loaded objects, by id (cache.c) ----------------------------------- */

/*
 * Entries are reference counted: one that is in use is never evicted. A
 * miss inserts a loading entry and loads outside the lock, so two readers
 * of one blob fetch it once (the second waits for the first).
 */
struct kl_mcache_ent {
	struct kl_mcache_ent *prev, *next; /* the LRU list, newest first */
	struct kl_id id;
	void *value; /* NULL while loading */
	size_t cost;
	unsigned refs;
	int err; /* the load failed: waiters get it, the entry goes */
	bool loading;
};

struct kl_mcache {
	pthread_mutex_t mu;
	pthread_cond_t loaded;
	struct kl_mcache_ent head; /* sentinel of the LRU list */
	size_t n, cost, max_cost, max_n;
	/* loads id into *value (cost in *cost); frees a value */
	int (*load)(void *ud, const struct kl_id *id, void **value, size_t *cost);
	void (*drop)(void *value);
	void *ud;
};

void kl_mcache_init(struct kl_mcache *c, size_t max_cost, size_t max_n,
		    int (*load)(void *ud, const struct kl_id *id, void **value, size_t *cost),
		    void (*drop)(void *value), void *ud);
void kl_mcache_release(struct kl_mcache *c);
/* The entry of id, loaded; the caller puts it back. Returns 0 or the load's error. */
int kl_mcache_get(struct kl_mcache *c, const struct kl_id *id, struct kl_mcache_ent **ret);
void kl_mcache_put(struct kl_mcache *c, struct kl_mcache_ent *e);

/* ---- the snapshots shown, and the directories made of them (view.c) ------------- */

struct kl_msnap {
	struct kl_id id;
	struct kl_snapshot s;
	char name[64]; /* TIME, with "-N" when several share a second */
	char short_id[9];
};

/* One listing of the repository's snapshots: immutable once built, shared by reference. */
struct kl_mview {
	struct kl_msnap *v; /* oldest first */
	size_t n;
	char **hosts, **tags; /* sorted, each once */
	size_t n_hosts, n_tags;
	int64_t newest_ns; /* the virtual directories' times */
	size_t n_new;	   /* snapshots read from storage, not taken from the previous view */
	unsigned refs;
};

/* What a path names. */
enum kl_mpath_kind {
	KL_MPATH_DIR,  /* a directory of the layout (root, snapshots, hosts/H, ...) */
	KL_MPATH_LINK, /* a "latest" symlink */
	KL_MPATH_SNAP, /* inside a snapshot: rest is the path in its tree */
};

/* Which layout directory: its entries are made from the view. */
enum kl_mdir {
	KL_MDIR_ROOT,
	KL_MDIR_SNAPSHOTS, /* snapshots/: every TIME, latest */
	KL_MDIR_IDS,
	KL_MDIR_HOSTS, /* hosts/: the host names */
	KL_MDIR_HOST,  /* hosts/H: its snapshots' TIMEs, latest */
	KL_MDIR_TAGS,
	KL_MDIR_TAG,
};

struct kl_mpath {
	enum kl_mpath_kind kind;
	enum kl_mdir dir;
	const char *key; /* KL_MDIR_HOST/TAG: the host or tag (in the view) */
	char link[64];	 /* KL_MPATH_LINK: the target */
	const struct kl_msnap *snap;
	const char *rest; /* KL_MPATH_SNAP: "" for the snapshot's root, else "/a/b" */
};

struct kl_mount;

/* Builds the view anew from the repository, reusing what old already read. */
int kl_mview_build(struct kl_repo *r, const struct kl_snap_filter *f, const struct kl_mview *old,
		   struct kl_mview **ret);
void kl_mview_unref(struct kl_mview *v);
/* Resolves path in v. -ENOENT when the layout has no such name. */
int kl_mview_resolve(const struct kl_mview *v, const char *path, struct kl_mpath *ret);
/* Calls fill for each entry of a layout directory (not "." and ".."). */
int kl_mview_list(const struct kl_mview *v, const struct kl_mpath *p,
		  int (*fill)(void *ud, const char *name), void *ud);

/* ---- the mount (mount.c, fs.c, file.c) --------------------------------------------- */

struct kl_mfile;

struct kl_mount {
	struct kl_repo *repo;
	const struct kl_mount_opts *o;
	struct kl_mcache trees; /* decoded struct kl_tree */
	struct kl_mcache blobs; /* struct kl_buf of plaintext */

	pthread_mutex_t view_mu;
	struct kl_mview *view;	    /* under view_mu; holders take a reference */
	int64_t refreshed_ns;	    /* monotonic; under view_mu */
	pthread_mutex_t refresh_mu; /* one refresh at a time */

	/* ids of zero blobs by length (sparse files' holes), under zero_mu */
	pthread_mutex_t zero_mu;
	struct {
		uint32_t len;
		struct kl_id id;
	} zeros[32];
	size_t n_zeros;

	/* read-ahead: a ring of blob ids one thread fetches into the cache */
	pthread_mutex_t ra_mu;
	pthread_cond_t ra_cv;
	struct kl_id ra_q[16];
	size_t ra_head, ra_n;
	bool ra_stop;
	pthread_t ra_thread;
	uid_t uid;
	gid_t gid;

	pthread_mutex_t files_mu;
	struct kl_mfile *files; /* open, not released yet */
};

/* The view now, refreshed first when it is older than KL_MOUNT_REFRESH_NS and want_fresh. */
struct kl_mview *kl_mount_view(struct kl_mount *m, bool want_fresh);

/* An error for the kernel: KL_E codes become EIO. */
int kl_mount_errno(int rc);

/* The FUSE operations (fs.c). */
struct fuse_operations;
const struct fuse_operations *kl_mount_ops(void);

/* Opens a file node for reading; the handle keeps all it needs. */
int kl_mfile_open(struct kl_mount *m, const struct kl_node *n, struct kl_mfile **ret);
void kl_mfile_free(struct kl_mfile *f);
/* At release: forgets and frees an open file. */
void kl_mfile_close(struct kl_mount *m, struct kl_mfile *f);
/* After the loop: frees the files whose release never came. */
void kl_mount_close_files(struct kl_mount *m);
/* Reads up to size bytes at off: the count (short only at the end), or a negative errno. */
int kl_mfile_read(struct kl_mount *m, struct kl_mfile *f, char *buf, size_t size, uint64_t off);
/* SEEK_DATA and SEEK_HOLE over the file's zero blobs (holes of a sparse file). */
int64_t kl_mfile_seek(struct kl_mfile *f, int64_t off, int whence);
/* The read-ahead thread's body. */
void *kl_mount_readahead_main(void *arg);

/* Stable inode numbers (st_ino): a 64-bit hash of what identifies the entry. */
uint64_t kl_mount_ino(const void *a, size_t na, const void *b, size_t nb);

#endif
