/*
 * Shared by the files of the restore: src/ops/restore.c (reporting and the
 * entry points), restore-walk.c (the walk), restore-dirs.c (directories),
 * restore-links.c (hard links), restore-workers.c (the workers),
 * restore-meta.c (metadata), restore-sys.c (system call helpers),
 * restore-overwrite.c, restore-delete.c and restore-plan.c. The
 * design and its safety rules are described at the top of restore.c.
 */
#ifndef KEEL_OPS_RESTORE_INTERNAL_H
#define KEEL_OPS_RESTORE_INTERNAL_H

#include <limits.h>
#include <pthread.h>
#include <sys/types.h>

#include "keel/ops.h"

#define QUEUE_CAP 64 /* parts waiting; each holds its file's fd */

/*
 * A directory that files are still being created in after the walk left
 * it: the last creation applies its metadata (a read-only mode or its
 * mtime would otherwise stop or undo the creations).
 */
struct rdir {
	int fd;		     /* owned once the walk has left the directory */
	unsigned pending;    /* files queued to be created in it; under rctx.lock */
	bool left;	     /* the walk is done with it; under rctx.lock */
	struct kl_node node; /* owned, taken from its tree when the walk leaves */
	char *path;	     /* for messages; may be NULL */
};

/* A regular file being written by the workers. */
struct rfile {
	struct kl_node node; /* owned: taken from its tree */
	char *path;	     /* snapshot path, for messages */
	int fd;		     /* -1 until a worker creates the file */
	/* where a worker creates it: a descriptor of its own, since the walk
	 * may close the directory's (FD_DEPTH) before the file is created */
	int dirfd;
	char name[NAME_MAX + 1];
	struct rdir *dir; /* NULL: nothing waits for the creation */
	/* under rctx.lock */
	unsigned parts; /* parts not finished yet */
	int err;	/* first error reported for this file */
	bool verify_bad;
	/* length of the content when every blob's length is known */
	uint64_t end;
	bool known_end;
	bool unchanged; /* fd is the file that was there, the same: metadata only */
	bool replaced;	/* something was in the way (counted when the file is done) */
};

struct part {
	struct rfile *f;
	size_t first, last; /* blobs [first, last) */
	uint64_t off;	    /* where blob first starts */
};

/* A directory on the current path of the walk. */
struct dirh {
	struct dirh *parent;
	const uint8_t *name; /* in its node, which outlives the dirh */
	size_t name_len;
	int fd;	     /* -1: not created yet, or closed to save descriptors */
	bool exists; /* created or opened in the target */
	bool kept;   /* a non-directory is in its place, kept (--overwrite) */
	dev_t dev;
	ino_t ino;
	size_t depth;
	size_t path_len;   /* its snapshot path is the start of c->path, this long */
	struct rdir *pend; /* files queued to be created in it, if any */
};

/* The first restored name of a multiply linked inode. */
struct link_ent {
	uint64_t dev, ino;
	char *rel; /* relative to the target, '/'-separated; NULL: empty slot */
};

/*
 * A restored name of a file whose content is incomplete (damaged), or a
 * later name linked to a multiply linked file: after the workers are
 * done, damaged files are renamed to NAME.keel-damaged (restore-damaged.c).
 */
struct rs_name {
	uint64_t dev, ino; /* the inode's in the snapshot, for hard links */
	char *rel;	   /* relative to the target */
	char *path;	   /* snapshot path, for messages */
	bool linked;	   /* a multiply linked inode */
};

struct rctx {
	struct kl_repo *r;
	const struct kl_restore_opts *o;
	bool do_owner;
	bool owner_omitted; /* not root, and --no-owner not given */
	uid_t euid;
	gid_t egid;
	bool all; /* no include patterns: everything is included */
	int rootfd;
	unsigned nthreads;

	/* main thread only */
	struct kl_buf path; /* snapshot path of the current node */
	size_t rel_off;	    /* path.data + rel_off is its path below the target */
	struct link_ent *links;
	size_t n_links, cap_links;
	struct rs_name *lnames; /* later names of multiply linked files */
	size_t n_lnames, cap_lnames;
	int64_t start_ns; /* CLOCK_REALTIME_COARSE when the restore began */
	uint64_t files_seen, bytes_seen;
	bool planned; /* the totals are known from restore-plan.c */
	bool matched; /* an include pattern matched (restore-plan.c) */

	pthread_mutex_t lock; /* everything below */
	pthread_cond_t nonempty, nonfull;
	struct part q[QUEUE_CAP];
	size_t q_head, q_len;
	bool walk_done;
	bool stop; /* also read without the lock, atomically */
	bool noted_xattr_unsupported;
	bool noted_owner;
	struct rs_name *damaged; /* files whose content is incomplete */
	size_t n_damaged, cap_damaged;
	int worst;
	struct kl_restore_stats st;
	struct kl_progress prog;
	int64_t last_progress;
};

/*
 * Blobs found to hold only zeros, by id: disk and VM images repeat the
 * same zero chunk thousands of times (the chunker cuts zero runs into
 * chunks of one size), and a worker need not fetch, decrypt, decompress
 * and hash it again each time. The id was verified when it was first read.
 */
#define ZERO_IDS 8

struct zero_blob {
	struct kl_id id;
	size_t len;
};

struct worker {
	struct rctx *c;
	struct kl_buf blob;
	struct kl_buf check;
	pthread_t tid;
	struct zero_blob zeros[ZERO_IDS];
	size_t n_zeros, next_zero;
};

/* a fatal error, or an interrupt (SIGINT, SIGTERM: kl_repo_cancelled) */
static inline bool kl_rs_stopped(struct rctx *c)
{
	return __atomic_load_n(&c->stop, __ATOMIC_RELAXED) || kl_repo_cancelled(c->r) < 0;
}

/* restore.c: errors and progress */
/* Raises the result code and stops on fatal errors. Lock held. */
void kl_rs_record_locked(struct rctx *c, int rc);
void kl_rs_warn_locked(struct rctx *c, const char *path, int rc, const char *what);
void kl_rs_fail_locked(struct rctx *c, const char *path, int rc, const char *what);
/* One error with one node: reported, counted, and the restore goes on. */
void kl_rs_fail(struct rctx *c, const char *path, int rc, const char *what);
/* Something the user should know that is not an error of the restore. */
void kl_rs_note(struct rctx *c, const char *path, int rc, const char *what);
/* An error with a file the workers write: reported once per file. */
void kl_rs_file_fail(struct rctx *c, struct rfile *f, int rc, const char *what);
void kl_rs_progress_locked(struct rctx *c, const char *current, bool force);

/* restore-sys.c */
int kl_rs_name_copy(char out[NAME_MAX + 1], const uint8_t *name, size_t len);
/* Writes n bytes at off; in a sparse file, all-zero pieces of 4 KiB blocks are skipped. */
int kl_rs_write_at(int fd, const uint8_t *p, size_t n, uint64_t off, bool sparse);
/*
 * Removes what is in the way of a new node: a file, a symlink, a device
 * or an empty directory. A directory with content is kept (-EISDIR).
 */
int kl_rs_clear_way(int dirfd, const char *name);

/* restore-meta.c */
/* Something restored but not as recorded: counted, and warned (once only with *noted). */
void kl_rs_omitted(struct rctx *c, const char *path, uint64_t *count, bool *noted,
		   const char *what);
/*
 * Applies owner, xattrs, mode and times, through fd when the node has one
 * open (files, directories), else by name in dirfd (symlinks, FIFOs,
 * devices), never following a symlink.
 */
void kl_rs_apply_meta(struct rctx *c, const char *path, int fd, int dirfd, const char *name,
		      const struct kl_node *nd);

/* restore-links.c */
/* Remembers where the first name of a multiply linked inode went. */
int kl_rs_link_add(struct rctx *c, const struct kl_node *nd);
void kl_rs_links_release(struct rctx *c);
/*
 * A later name of an inode restored before: link it. Returns true when
 * done (or reported); false to restore the node as a node of its own.
 */
bool kl_rs_restore_as_link(struct rctx *c, struct dirh *d, const struct kl_node *nd,
			   const char *name);

/* restore-dirs.c */
/* Makes sure d exists in the target and d->fd is open, creating the directories above it. */
int kl_rs_dir_ensure(struct rctx *c, struct dirh *d);
/* A file queued to be created in dir has been (or failed to be). */
void kl_rs_rdir_created(struct rctx *c, struct rdir *dir);
/*
 * A directory's children are done: reopen its parent if needed, apply its
 * metadata (now, or after the last of its files is created) and close it.
 */
void kl_rs_dir_finish(struct rctx *c, struct dirh *d, struct kl_node *nd);

/* restore-workers.c */
/*
 * Creates dirfd/name for writing: O_EXCL and O_NOFOLLOW, after removing
 * what is in the way. Returns the descriptor or a negative error.
 */
int kl_rs_create_file(struct rctx *c, const char *path, int dirfd, const char *name,
		      const struct kl_node *nd, struct kl_buf *buf, bool *unchanged);
/* The skip of a file kl_rs_create_file kept (--overwrite): not an error. */
#define KL_RS_KEPT INT_MIN
void kl_rs_rfile_free(struct rfile *f);
/* All parts are written: check the length, verify, apply metadata, close. */
void kl_rs_finish_file(struct rctx *c, struct rfile *f);
void *kl_rs_worker_main(void *arg);
/* Whether several workers write the file, each a part of it. */
bool kl_rs_is_split(const struct rctx *c, const struct kl_node *nd);
/* Hands f to the workers: in parts by blob ranges when it is large. */
void kl_rs_queue_file(struct rctx *c, struct worker *inline_w, struct rfile *f);

/* restore-damaged.c */
/* Adds a name to a list of rs_name; path is copied, rel points into it at rel_off. */
int kl_rs_name_add(struct rs_name **v, size_t *n, size_t *cap, const char *path, size_t rel_off,
		   const struct kl_node *nd);
void kl_rs_names_release(struct rs_name *v, size_t n);
/*
 * After the workers: every damaged file, and every other name of a
 * damaged multiply linked file, goes to NAME.keel-damaged.
 */
void kl_rs_damaged_rename(struct rctx *c);

/* restore-overwrite.c */
/*
 * What to do with node nd (not a directory) at dirfd/name (dirfd -1:
 * nothing is there) under --overwrite: an enum kl_restore_action, or a
 * negative error. When a regular file that is there is the same and
 * fd_ret is not NULL, *fd_ret gets a descriptor of it (else -1). buf
 * holds the file's pieces while they are hashed.
 */
int kl_rs_decide(struct rctx *c, int dirfd, const char *name, const struct kl_node *nd,
		 struct kl_buf *buf, int *fd_ret);
/*
 * Counts a create, replace, unchanged or skip of the node at snapshot
 * path (or a delete of rel, below the target) and tells o->action.
 * Unchanged and skipped files count as done for the progress. Lock held.
 */
void kl_rs_count_locked(struct rctx *c, enum kl_restore_action a, const char *path,
			const struct kl_node *nd);
void kl_rs_count(struct rctx *c, enum kl_restore_action a, const char *path,
		 const struct kl_node *nd);
struct stat;
/* Whether the node's mtime is newer than st's (--overwrite if-newer). */
bool kl_rs_snapshot_newer(const struct kl_node *nd, const struct stat *st);
/* path below the target of the node at snapshot path (c->rel_off) */
const char *kl_rs_rel(const struct rctx *c, const char *path);

/* restore-delete.c */
/*
 * --delete: removes from the target directory dirfd, which is the
 * snapshot's directory at c->path (restored whole) with the children t,
 * what t does not have, but never what an exclude pattern matches. With
 * o->dry_run, only counts and reports.
 */
void kl_rs_delete_extra(struct rctx *c, int dirfd, const struct kl_tree *t);

/* restore-plan.c */
/*
 * Before the restore: the totals for the progress, whether the include
 * patterns match anything, and with o->dry_run what the restore would
 * do, from the trees below top (at c->path) and what is in the target
 * (rootfd; -1 if it does not exist). Returns 0 or a negative error.
 */
int kl_rs_plan(struct rctx *c, const struct kl_node *top, bool contents, bool full);

/* restore-walk.c */
/* Restores nd below d and, for a directory, everything below it, depth first. */
void kl_rs_restore_tree(struct rctx *c, struct worker *inline_w, struct dirh *d, struct kl_node *nd,
			bool all);

#endif
