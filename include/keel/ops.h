/*
 * Operations on a repository, shared by the CLI and the tests: backup,
 * restore, walking snapshots, diff, dump and check. They report through
 * callbacks and never print; the CLI decides what users see.
 */
#ifndef KEEL_OPS_H
#define KEEL_OPS_H

#include <stdbool.h>
#include <stdint.h>

#include "keel/repo.h"

/* ---- reporting ----------------------------------------------------------- */

struct kl_progress {
	uint64_t files_done, files_total; /* total 0 when unknown */
	uint64_t bytes_done, bytes_total;
	uint64_t errors;
	const char *current; /* may be NULL */
	bool totals_final;   /* the totals are complete (backup: its scan is done) */
	bool last;	     /* the operation's last call, with the final counts */
};

/*
 * The caller's window on a long operation. warn() reports one problem
 * with one input (a file that could not be read, a blob that is damaged);
 * the operation goes on. progress() is called a few times a second at
 * most. Both may be NULL. They may be called from worker threads, but
 * never concurrently.
 */
struct kl_report {
	void (*warn)(void *ud, const char *path, int err, const char *what);
	void (*progress)(void *ud, const struct kl_progress *p);
	void *ud;
};

/* ---- patterns --------------------------------------------------------------- */

/*
 * Glob patterns as restic uses them: '*', '?', '[...]' within one path
 * component, '**' across components. A pattern without '/' matches any
 * component (a name anywhere); one starting with '/' is anchored at the
 * root; a match of a directory covers everything below it.
 */
struct kl_patterns {
	char **v;
	size_t n;
	/*
	 * Case-insensitive (--iexclude): letters of ASCII, Latin-1, Greek and
	 * Cyrillic match either case. Set before matching; patterns keep their
	 * case.
	 */
	bool fold;
};
int kl_patterns_add(struct kl_patterns *p, const char *pat);
int kl_patterns_add_file(struct kl_patterns *p, const char *file); /* one per line, '#' comments */
void kl_patterns_release(struct kl_patterns *p);
/* path is absolute-style ("/a/b/c"). */
bool kl_patterns_match(const struct kl_patterns *p, const char *path);
/* true if some pattern could match below dir (so a walk must descend). */
bool kl_patterns_may_match_below(const struct kl_patterns *p, const char *dir);

/* ---- snapshot selection --------------------------------------------------------- */

struct kl_snap_filter {
	char **hosts;
	size_t n_hosts;
	char **tags; /* "a,b": a snapshot must have every tag of one of these (restic) */
	size_t n_tags;
	char **paths; /* a snapshot must have every path given */
	size_t n_paths;
	uint32_t kind; /* enum kl_snapshot_kind; 0: any */
};
bool kl_snap_filter_match(const struct kl_snap_filter *f, const struct kl_snapshot *s);
/*
 * Resolves "latest" (newest matching the filter) or a unique hex prefix of
 * a snapshot id. -KL_ENOTFOUND if none, -KL_EUSAGE if a prefix is ambiguous.
 * -KL_ECORRUPT if the snapshot named cannot be read (then ret->id is its
 * id), or if "latest" is asked for and a snapshot that cannot be read may
 * be newer than the newest readable match (its host, tags and time are
 * unknown; ret->id is zero). Fills ret with a copy the caller releases
 * with kl_snapshot_release.
 */
int kl_snapshot_find(struct kl_repo *r, const char *spec, const struct kl_snap_filter *f,
		     struct kl_snapshot_ref *ret);
/*
 * The first of l's damaged snapshots that may be newer than "than" (all of
 * them where than is NULL), or NULL; *n_ret (may be NULL) gets how many
 * may be. One is known to be older only where a readable snapshot no
 * newer than "than" names it as its parent.
 */
const struct kl_id *kl_snapshot_damaged_newer(const struct kl_snapshot_list *l,
					      const struct kl_snapshot_ref *than, size_t *n_ret);

/* ---- walking trees ----------------------------------------------------------------- */

/*
 * Visits every node below tree in depth-first order, parents before
 * children, names in sorted order. path is "/a/b" (bytes, NUL-terminated;
 * names may contain any byte but '/' and NUL). Return 1 from cb on a
 * directory to skip its children, < 0 to stop.
 */
typedef int (*kl_walk_cb)(const char *path, const struct kl_node *node, void *ud);
int kl_walk(struct kl_repo *r, const struct kl_id *tree, const char *prefix, kl_walk_cb cb,
	    void *ud);
/*
 * Finds the node at path ("/a/b", "" or "/" for the root) below tree. For
 * the root itself, fills a synthetic directory node. Caller releases ret.
 */
int kl_tree_lookup(struct kl_repo *r, const struct kl_id *tree, const char *path,
		   struct kl_node *ret);

/* ---- backup ------------------------------------------------------------------------ */

enum kl_backup_flags {
	KL_BACKUP_ONE_FS = 1 << 0,
	KL_BACKUP_EXCLUDE_CACHES = 1 << 1,
	KL_BACKUP_FORCE = 1 << 2, /* re-read every file, ignore the parent */
	KL_BACKUP_DRY_RUN = 1 << 3,
};

/* What a backup found a regular file to be, against the parent snapshot. */
enum kl_backup_item {
	KL_BACKUP_ITEM_NEW,	   /* not in the parent (or no parent) */
	KL_BACKUP_ITEM_CHANGED,	   /* in the parent, read again */
	KL_BACKUP_ITEM_UNMODIFIED, /* in the parent, its content reused without reading */
};

/*
 * What -v and -vv show. All calls come from the thread that called
 * kl_backup, never concurrently; each member may be NULL. With item NULL
 * (or item_level 0) the walk does no per-file work for it.
 */
struct kl_backup_listener {
	/* before the walk: the parent snapshot (NULL: none) */
	void (*parent)(void *ud, const struct kl_id *parent);
	/* each regular file: item_level 1 new and changed ones, 2 all */
	void (*item)(void *ud, enum kl_backup_item what, const char *path, uint64_t size);
	int item_level;
	/* a directory left out on purpose, not an error (the repository inside a source) */
	void (*note)(void *ud, const char *path, const char *what);
	void *ud;
};

/* A directory never to back up, by identity (not by path): the repository, the cache. */
struct kl_backup_skip {
	uint64_t dev, ino;
	const char *what; /* for the note: "the repository" */
};

/*
 * Whether a source path names something: 1 yes, 0 no (ENOENT or ENOTDIR
 * on lstat: a mistyped path), < 0 another error (the backup reports it).
 */
int kl_backup_source_exists(const char *path);

struct kl_backup_opts {
	char **paths; /* sources (files or directories) */
	size_t n_paths;
	const char *host;
	char **tags;
	size_t n_tags;
	struct kl_patterns excludes;
	struct kl_patterns iexcludes; /* with fold set */
	/*
	 * a directory holding an entry of one of these names is left out
	 * (restic); "NAME:HEADER": only if that file begins with HEADER
	 */
	char **if_present;
	size_t n_if_present;
	const struct kl_backup_skip *skip;
	size_t n_skip;
	uint64_t exclude_larger_than; /* 0: no limit */
	unsigned flags;
	const char *parent; /* snapshot spec, NULL: find by host and paths */
	/* stream sources: exactly one of these or paths */
	int stdin_fd;		    /* >= 0: back up this fd as one file */
	char **command;		    /* argv of a command whose stdout is backed up */
	const char *stdin_filename; /* name of the stream inside the snapshot */
	unsigned threads;	    /* 0: one per core */
	bool has_time;		    /* record time_ns as the snapshot's time, not now */
	int64_t time_ns;
	struct kl_report report;
	struct kl_backup_listener listen;
};
void kl_backup_opts_init(struct kl_backup_opts *o);

struct kl_backup_result {
	struct kl_id id; /* the new snapshot */
	struct kl_snapshot_stats stats;
	bool partial;
	bool has_parent;
	struct kl_id parent;
};

/*
 * Takes a snapshot. Returns 0, or -KL_EPARTIAL when the snapshot was saved
 * but some inputs could not be read (result is filled in both cases), or
 * another negative code when no snapshot was saved.
 */
int kl_backup(struct kl_repo *r, const struct kl_backup_opts *o, struct kl_backup_result *ret);

/*
 * A snapshot built from entries that arrive in a stream in any order (a
 * database server's tar archives; src/ops/backup-entries.c). o gives the
 * host, tags and threads (its paths and stream fields are not used).
 * Each entry's path is relative to the root ("a/b/c", clean: no "", "."
 * or ".." parts); directories along it that were not added yet are made
 * (mode 0700, this process's owner) and take their own metadata when
 * they are added later. A file's content (meta->size bytes, or any
 * number when meta->size is KL_ENTRY_SIZE_UNKNOWN: end() sets the size)
 * follows through write() and then end(). commit() stores the trees, the packs,
 * the index and then snap, whose kind, paths and db the caller set;
 * free() after a failure stores no snapshot.
 */
struct kl_entry_backup;
#define KL_ENTRY_SIZE_UNKNOWN UINT64_MAX
int kl_entry_backup_new(struct kl_repo *r, const struct kl_backup_opts *o,
			struct kl_entry_backup **ret);
int kl_entry_backup_add(struct kl_entry_backup *e, const char *path, const struct kl_node *meta);
int kl_entry_backup_write(struct kl_entry_backup *e, const void *p, size_t n);
/*
 * The content of the files added from now on is cut into fixed chunks of
 * size bytes (a SQLite database's pages: a changed page costs one chunk;
 * size at most the chunker's max), or content-defined ones again with 0.
 */
void kl_entry_backup_fixed(struct kl_entry_backup *e, uint32_t size);
int kl_entry_backup_end(struct kl_entry_backup *e);
/*
 * The snapshot's time (default: when new() was called): a record that
 * replaces earlier ones keeps the moment up to which they held everything.
 */
void kl_entry_backup_set_time(struct kl_entry_backup *e, int64_t time_ns);
int kl_entry_backup_commit(struct kl_entry_backup *e, struct kl_snapshot *snap,
			   struct kl_backup_result *ret);
void kl_entry_backup_free(struct kl_entry_backup *e);

/* ---- restore -------------------------------------------------------------------------- */

/*
 * What a restore does with something already at a node's place in the
 * target (restic 0.17's names). A directory is always reused.
 */
enum kl_overwrite {
	/* left alone when it is the same (same type; a file: same size and every blob's
	 * hash over its content; a symlink: same target; a device: same number), else replaced */
	KL_OVERWRITE_IF_CHANGED = 0,
	KL_OVERWRITE_ALWAYS,   /* replaced without looking at it */
	KL_OVERWRITE_IF_NEWER, /* as if-changed when the snapshot's mtime is newer, else kept */
	KL_OVERWRITE_NEVER,    /* kept */
};

/* What a restore did (or, with dry_run, would do) at one path. */
enum kl_restore_action {
	KL_RESTORE_CREATE,    /* nothing was there */
	KL_RESTORE_REPLACE,   /* something else was there: removed, then created */
	KL_RESTORE_UNCHANGED, /* the same was there: kept, its metadata set as recorded */
	KL_RESTORE_SKIP,      /* something was there, kept as it was (--overwrite) */
	KL_RESTORE_DELETE,    /* not in the snapshot: removed (delete_extra) */
};

struct kl_restore_opts {
	const char *target;
	struct kl_patterns includes; /* empty: everything */
	struct kl_patterns excludes;
	bool verify;	  /* re-read what was written and compare */
	bool no_owner;	  /* do not chown; not root and not asked: owners are omitted (warned) */
	unsigned threads; /* 0: one per core */
	enum kl_overwrite overwrite;
	/*
	 * Remove what the snapshot does not have from the directories the
	 * restore fills whole (the target itself included; with include
	 * patterns, the directories they match), never above the target,
	 * never through a symlink; a path an exclude pattern matches is kept.
	 */
	bool delete_extra;
	bool dry_run; /* change nothing: only report what would be done */
	/*
	 * Called for every create, replace and delete (skips and unchanged
	 * nodes only with dry_run), with the path relative to the target
	 * ("a/b"); dir for a directory. Never concurrently; may be NULL.
	 */
	void (*action)(void *ud, enum kl_restore_action a, const char *target_path, bool dir);
	void *action_ud;
	struct kl_report report;
};

struct kl_restore_stats {
	uint64_t files, dirs, others, bytes;
	uint64_t errors;
	uint64_t verify_failures;
	uint64_t damaged;   /* incomplete files, restored as NAME.keel-damaged */
	uint64_t unindexed; /* errors that were blobs in no index ('keel repair index') */
	/* restored, but not as recorded (not errors; the restore returns -KL_EPARTIAL) */
	uint64_t owners_omitted;   /* not root: nodes not given their recorded owner */
	uint64_t specials_omitted; /* sockets, and devices that need privilege */
	uint64_t xattrs_omitted;   /* xattrs that need privilege or the target lacks */
	uint64_t setid_cleared;	   /* setuid/setgid bits dropped: not the recorded owner */
	/* non-directory nodes by what was done with them (enum kl_restore_action) */
	uint64_t created, replaced, unchanged, skipped;
	uint64_t deleted; /* entries removed (delete_extra), directories and their contents */
	uint64_t dirs_created;
};

/*
 * Restores the subtree at path ("" for all) of the snapshot's tree into
 * target: a directory's contents go into target (as restic does), a
 * file becomes target/NAME. -KL_ENOTFOUND when path is not in the
 * snapshot or no path matches the include patterns (nothing is done).
 * Returns 0, -KL_EVERIFY when verification found differences,
 * -KL_ECORRUPT when damaged data made some files unrestorable (each one
 * reported through warn, and kept as NAME.keel-damaged without its
 * metadata), -KL_EPARTIAL when all was restored but not all as recorded
 * (the *_omitted counts and setid_cleared), or another negative code.
 */
int kl_restore(struct kl_repo *r, const struct kl_id *tree, const char *path,
	       const struct kl_restore_opts *o, struct kl_restore_stats *ret);

/* Writes one file's content to fd. */
int kl_dump_node(struct kl_repo *r, const struct kl_node *n, int fd);

/* ---- diff ----------------------------------------------------------------------------------- */

enum kl_diff_kind {
	KL_DIFF_ADDED = '+',
	KL_DIFF_REMOVED = '-',
	KL_DIFF_MODIFIED = 'M',
	KL_DIFF_META = 'U',
	KL_DIFF_TYPE = 'T'
};
typedef int (*kl_diff_cb)(enum kl_diff_kind k, const char *path, const struct kl_node *a,
			  const struct kl_node *b, void *ud);
int kl_diff(struct kl_repo *r, const struct kl_id *a, const struct kl_id *b, kl_diff_cb cb,
	    void *ud);

/* ---- check ------------------------------------------------------------------------------------
 */

struct kl_check_opts {
	bool read_data;
	unsigned subset_permille; /* with read_data: 0 or 1000 = all */
	/*
	 * With read_data: 0 < subset_n <= subset_m reads group subset_n of
	 * subset_m, a partition by pack id, so groups 1..m together read every
	 * pack once. Instead of subset_permille.
	 */
	unsigned subset_n, subset_m;
	/* the sample of subset_permille is ranked by this seed; random when has_seed is false */
	bool has_seed;
	uint8_t seed[16];
	unsigned threads;
	/* temporary files left by interrupted writes: remove those older than stale_tmp_age_s */
	bool remove_stale_tmp;
	uint64_t stale_tmp_age_s; /* 0: one hour */
	struct kl_report report;
};

struct kl_check_result {
	uint64_t snapshots, trees, blobs, packs, index_files;
	uint64_t packs_read, bytes_read;
	uint64_t errors;	  /* structural or data errors found */
	uint64_t unindexed_packs; /* harmless: left by an interrupted backup */
	uint64_t unused_blobs;	  /* harmless: freed by a future prune */
	uint8_t seed[16];	  /* that ranked a subset_permille sample */
	/* temporary files left by interrupted writes (harmless); stale: old enough to remove */
	struct kl_tmp_stats tmp;
	/* snapshots with damaged or missing data, hex ids; caller frees */
	char **damaged_snapshots;
	size_t n_damaged;
};
void kl_check_result_release(struct kl_check_result *c);

/*
 * Verifies the repository: every index file and snapshot decodes, every
 * tree of every snapshot is readable, every blob a snapshot needs is in
 * the index, every indexed pack exists with the right size and a header
 * that agrees with the index; with read_data, every pack (or a sample)
 * is read whole, its SHA-256 checked, and every blob opened and re-hashed.
 * Each damaged object is reported through warn with the snapshots and file
 * paths it affects. Returns 0 if clean, -KL_ECHECK if it found damage,
 * or the first read error (-EIO, ...) when read errors were all it found:
 * -KL_ECHECK (exit 13) means the repository really is damaged.
 */
int kl_check(struct kl_repo *r, const struct kl_check_opts *o, struct kl_check_result *ret);

#endif
