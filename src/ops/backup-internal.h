/*
 * Shared by the files of the backup: src/ops/backup.c (the whole
 * operation), backup-walk.c (the directory walk), backup-tree.c
 * (directories' jobs and tree blobs), backup-file.c (reading and chunking
 * files), backup-links.c (hard links), backup-sources.c
 * (the paths given), backup-stream.c (stdin and commands), backup-scan.c
 * (totals for the progress line), backup-skip.c (what is left out on
 * purpose, and each file's status for -v).
 */
#ifndef KEEL_OPS_BACKUP_INTERNAL_H
#define KEEL_OPS_BACKUP_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>

#include "keel/ops.h"
#include "keel/source.h"
#include "keel/pipeline.h"

/*
 * A directory whose tree blob is not stored yet. It keeps no path: its
 * name is its node's in the parent (which outlives it, as its pending
 * count includes it), and one without a parent is "/". A path per
 * directory would make a deep tree's memory grow with the square of
 * its depth; kl_bk_dir_path builds it for the rare message.
 */
struct dir_job {
	struct dir_job *prev, *next; /* all live directories, to free them after a failure */
	struct dir_job *parent;
	size_t parent_slot;
	struct kl_tree tree;
	long pending; /* children in flight + 1 while the walk is inside */
};

struct source_node {
	char *name;
	/*
	 * Its full path: the first path_len bytes of a source path given to
	 * kl_bk_source_add (which must outlive it). Not a copy: a source
	 * deep down would cost the square of its length.
	 */
	const char *path;
	size_t path_len;
	bool is_source;
	struct source_node **kids;
	size_t n_kids;
};

struct backup {
	struct kl_repo *r;
	const struct kl_backup_opts *o;
	struct kl_pipeline pl;
	bool pl_started;
	struct kl_packer *trees;
	struct kl_idcache *ids;
	struct kl_snapshot_stats st;
	struct kl_id root;
	bool root_done;
	uint8_t *rbuf;
	size_t rbuf_cap;
	dev_t root_dev;
	/* nodes of the parent with an older ctime than this were read after it had passed */
	int64_t prev_settled_ns;
	/* whether the file system of device ctime_dev keeps ctimes (kl_node_fs_keeps_ctime) */
	dev_t ctime_dev;
	bool ctime_dev_known, ctime_dev_keeps;
	int error;     /* fatal error: stop and save nothing */
	int first_err; /* of the first input that could not be read (kl_bk_warn) */
	struct dir_job *live;
	int64_t next_progress_ns;
	struct kl_progress prog;
	/* totals for the progress line's ETA, counted by a scanner thread */
	pthread_t scanner;
	bool scanning;
	atomic_bool scan_stop;
	atomic_ullong scan_files, scan_bytes;
	atomic_bool scan_done;
	char **scan_paths;
	size_t n_scan_paths;
	bool sort_trees; /* nodes arrive in any order (backup-entries.c): sort before storing */
	/* files with several names seen so far, by (dev, inode): backup-links.c */
	struct kl_bk_link **links;
	size_t n_links, cap_links;
};

/* backup-tree.c */
void kl_bk_warn(struct backup *b, const char *path, int err, const char *what);
void kl_bk_progress(struct backup *b, const char *current, bool force);
char *kl_bk_join_path(const char *dir, const char *name);
/* Appends "/" (unless p ends with one) and name to p. */
int kl_bk_path_add(struct kl_buf *p, const char *name, size_t len);
/* Appends d's full path to out. */
int kl_bk_dir_path(const struct dir_job *d, struct kl_buf *out);
/* The directory at the node slot of parent (NULL: "/"). */
struct dir_job *kl_bk_dir_new(struct backup *b, struct dir_job *parent, size_t slot);
void kl_bk_dir_free(struct backup *b, struct dir_job *d);
int kl_bk_child_done(struct backup *b, struct dir_job *d);
int kl_bk_collect(struct backup *b, bool wait);

/* backup-file.c */
/*
 * openat(dfd, name, flags) with O_NOATIME where the kernel allows it, so
 * that the backup leaves the atimes of what it reads as they were.
 * Returns the descriptor or -errno.
 */
int kl_bk_open_noatime(int dfd, const char *name, int flags);
int kl_bk_read_chunks(struct backup *b, int fd, struct kl_file_job *f, uint64_t *total,
		      int *read_err);
/* Reads the file name in dfd, the node at slot of d, into the pipeline. */
int kl_bk_backup_file(struct backup *b, struct dir_job *d, size_t slot, int dfd, const char *name,
		      const char *path);
bool kl_bk_all_stored(struct backup *b, const struct kl_node *oldn);

/* backup-walk.c */
int kl_bk_add_entry(struct backup *b, struct dir_job *d, int dfd, const char *name,
		    const char *path, const struct kl_node *prev, struct stat *st, bool must_exist,
		    bool *added);
int kl_bk_handle_node(struct backup *b, struct dir_job *d, size_t slot, int dfd,
		      const struct kl_node *oldn, const char *path, const struct stat *st);
int kl_bk_process_dir(struct backup *b, struct dir_job *d, int dfd, const struct kl_tree *old);

/* backup-links.c */
/*
 * A later name of an inode already read (or in flight) with unchanged
 * size and times: takes its content, now or when it is done. Returns 1
 * when it did (the node needs no reading), 0 when the file is to be read.
 */
int kl_bk_link_reuse(struct backup *b, struct dir_job *d, size_t slot, const struct stat *st);
/* Registers the first name of a multiply linked file; done: its content is already known. */
int kl_bk_link_add(struct backup *b, struct dir_job *d, size_t slot, const struct stat *st,
		   bool done);
/* The node at slot of d has its content: hands it to the later names waiting for it. */
int kl_bk_link_done(struct backup *b, struct dir_job *d, size_t slot);
void kl_bk_links_free(struct backup *b);

/* backup-sources.c */
void kl_bk_source_free(struct source_node *s);
char *kl_bk_clean_path(const char *in);
/* path: absolute and clean (kl_bk_clean_path); the nodes point into it */
int kl_bk_source_add(struct source_node *root, const char *path);
int kl_bk_process_virtual(struct backup *b, struct dir_job *d, struct source_node *v,
			  const struct kl_tree *old);

/* backup-skip.c */
/* Whether path matches --exclude or --iexclude. */
bool kl_bk_excluded(const struct backup *b, const char *path);
/*
 * Whether the directory name in dfd (st its stat) is to be left out: 0
 * no, 1 silently (--exclude-if-present), 2 with a note saying *why (the
 * repository or the cache). No reporting: the scanner thread asks too.
 */
int kl_bk_skip_dir(const struct backup *b, int dfd, const char *name, const struct stat *st,
		   const char **why);
void kl_bk_note(struct backup *b, const char *path, const char *what);
/* Tells the listener a regular file's status, if it asked for that level. */
void kl_bk_item(struct backup *b, enum kl_backup_item what, const char *path, uint64_t size);

/* backup-scan.c */
void *kl_bk_scanner(void *arg);

/* backup.c */
/* The host and user names the snapshot records. */
void kl_bk_who_am_i(const struct kl_backup_opts *o, char *hostbuf, size_t host_size, char *userbuf,
		    size_t user_size);
/* The read buffer, the tree packer, the pipeline, the root directory (and the scanner). */
int kl_bk_start_walk(struct backup *b, char **paths, size_t n_paths, bool stream,
		     struct dir_job **root_ret);
/* Waits for the files in flight, stops the threads, writes the last packs and the index. */
int kl_bk_finish_walk(struct backup *b, int rc, struct kl_write_stats *ws);
/* Saves snap (kind, times, host, user, paths set) as the commit point; fills *ret. */
int kl_bk_save_snapshot(struct backup *b, struct kl_snapshot *snap, const struct kl_write_stats *ws,
			const struct kl_snapshot_ref *parent, bool has_parent,
			struct kl_backup_result *ret);
void kl_bk_release(struct backup *b);

/* backup-stream.c */
int kl_bk_backup_stream(struct backup *b, struct dir_job *root);

#endif
