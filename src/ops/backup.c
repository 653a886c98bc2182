/*
 * Backup: the main thread walks the sources depth-first, reads changed
 * files and cuts them into chunks; the pipeline's workers hash, compress,
 * seal and pack the chunks. A directory's tree blob is written once every
 * file and subdirectory below it is done, so only the directories along
 * the walk and those with files in flight are held in memory.
 *
 * Order of durability: packs (workers), then tree packs, then the index
 * file naming them all, then the snapshot. A crash before the snapshot
 * leaves unreferenced but valid packs, which the next backup adopts.
 */
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>

#include "backup-internal.h"

void kl_backup_opts_init(struct kl_backup_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->stdin_fd = -1;
}

static bool same_paths(const struct kl_snapshot *s, char **paths, size_t n)
{
	if (s->n_paths != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (strcmp(s->paths[i], paths[i]))
			return false;
	return true;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int find_parent(struct backup *b, char **paths, size_t n, const char *host,
		       struct kl_snapshot_ref *ret)
{
	struct kl_snapshot_list l;
	const struct kl_id *d;
	size_t i;
	int rc, found = 0;

	if (b->o->parent) {
		/* its own message; an I/O error or a damaged snapshot is no "not found" */
		rc = kl_snapshot_find(b->r, b->o->parent, NULL, ret);
		return rc < 0 ? rc : 1;
	}
	rc = kl_repo_list_snapshots(b->r, &l);
	if (rc < 0)
		return kl_repo_fail(b->r, rc, "cannot list the snapshots to find the parent");
	for (i = l.n; i-- > 0;) {
		struct kl_snapshot *s = &l.v[i].s;

		if (s->kind == KL_SNAP_FILES && s->host && !strcmp(s->host, host) &&
		    same_paths(s, paths, n)) {
			found = 1;
			break;
		}
	}
	/*
	 * A damaged snapshot may have been the parent: the parent only spares
	 * reading unchanged files, so the next readable one serves as well.
	 */
	d = kl_snapshot_damaged_newer(&l, found ? &l.v[i] : NULL, NULL);
	if (d && b->o->report.warn) {
		char hex[2 * KL_ID_LEN + 1], what[160];

		kl_id_hex(d, hex);
		snprintf(what, sizeof(what),
			 "snapshot %.16s cannot be read and may be the newest of these paths: "
			 "the parent is the newest readable one",
			 hex);
		b->o->report.warn(b->o->report.ud, NULL, -KL_ECORRUPT, what);
	}
	if (found) {
		*ret = l.v[i];
		memset(&l.v[i].s, 0, sizeof(l.v[i].s));
	}
	kl_snapshot_list_release(&l);
	return found;
}

/* The host and user names the snapshot records. */
void kl_bk_who_am_i(const struct kl_backup_opts *o, char *hostbuf, size_t host_size, char *userbuf,
		    size_t user_size)
{
	if (o->host && *o->host) {
		snprintf(hostbuf, host_size, "%s", o->host);
	} else if (gethostname(hostbuf, host_size) < 0) {
		snprintf(hostbuf, host_size, "localhost");
	}
	hostbuf[host_size - 1] = 0;
	{
		struct passwd pw, *res = NULL;
		char buf[4096];

		if (getpwuid_r(geteuid(), &pw, buf, sizeof(buf), &res) == 0 && res)
			snprintf(userbuf, user_size, "%s", res->pw_name);
		else
			snprintf(userbuf, user_size, "%u", (unsigned)geteuid());
	}
}

/*
 * The source paths as the snapshot names them: normalized, sorted,
 * de-duplicated. *paths_ret and *n_ret are set on failure too: the caller
 * frees what they hold.
 */
static int source_paths(const struct kl_backup_opts *o, bool stream, char ***paths_ret,
			size_t *n_ret)
{
	char **paths = NULL;
	size_t n_paths = 0;
	int rc = 0;

	if (stream) {
		const char *name = o->stdin_filename ? o->stdin_filename : "stdin";

		paths = kl_calloc(1, sizeof(*paths));
		if (!paths || !(paths[0] = kl_bk_join_path("/", name)))
			rc = -ENOMEM;
		n_paths = 1;
	} else {
		paths = kl_calloc(o->n_paths, sizeof(*paths));
		if (!paths)
			rc = -ENOMEM;
		for (size_t i = 0; rc >= 0 && i < o->n_paths; i++) {
			char *p = kl_bk_clean_path(o->paths[i]);

			if (!p) {
				rc = -ENOMEM;
				break;
			}
			paths[n_paths++] = p;
		}
		if (rc >= 0) {
			qsort(paths, n_paths, sizeof(*paths), cmp_str);
			size_t k = 0;
			for (size_t i = 0; i < n_paths; i++) {
				if (k && !strcmp(paths[k - 1], paths[i]))
					kl_free(paths[i]);
				else
					paths[k++] = paths[i];
			}
			n_paths = k;
		}
	}
	*paths_ret = paths;
	*n_ret = paths ? n_paths : 0;
	return rc;
}

/*
 * Finds the parent snapshot and reads its root tree into *parent_tree
 * (left empty if it is damaged). Returns 1 with a parent, 0 without one.
 */
static int load_parent(struct backup *b, char **paths, size_t n_paths, const char *host,
		       struct kl_snapshot_ref *parent, struct kl_tree *parent_tree)
{
	int has_parent = find_parent(b, paths, n_paths, host, parent);

	if (has_parent < 0)
		return has_parent;
	if (has_parent) {
		if (kl_repo_read_tree(b->r, &parent->s.tree, parent_tree) < 0)
			memset(parent_tree, 0, sizeof(*parent_tree));
		/*
		 * 2 s: FAT's clock; others tick in milliseconds or less.
		 * Another user saw other xattrs (trusted.* are root's, user.*
		 * need read access): its nodes cannot stand in for ours.
		 */
		if (parent->s.read_start_ns > 2 * KL_NSEC_PER_SEC &&
		    parent->s.uid == (uint32_t)geteuid())
			b->prev_settled_ns = parent->s.read_start_ns - 2 * KL_NSEC_PER_SEC;
	}
	return has_parent;
}

/* What the walk needs: the read buffer, the tree packer, the pipeline, the root, the scanner. */
int kl_bk_start_walk(struct backup *b, char **paths, size_t n_paths, bool stream,
		     struct dir_job **root_ret)
{
	const struct kl_backup_opts *o = b->o;
	int rc = 0;

	b->rbuf_cap = (size_t)kl_repo_config(b->r)->cdc_max * 4;
	if (!(b->rbuf = kl_malloc(b->rbuf_cap)))
		rc = -ENOMEM;
	if (rc >= 0)
		rc = kl_packer_new(b->r, &b->trees);
	if (rc >= 0) {
		long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

		rc = kl_pipeline_start(&b->pl, b->r,
				       o->threads ? o->threads : (unsigned)(ncpu > 0 ? ncpu : 1),
				       o->flags & KL_BACKUP_DRY_RUN);
		b->pl_started = true; /* finish cleans up after a partial start too */
	}
	if (rc >= 0 && !(*root_ret = kl_bk_dir_new(b, NULL, 0)))
		rc = -ENOMEM;
	if (rc >= 0 && !stream && o->report.progress) {
		b->scan_paths = paths;
		b->n_scan_paths = n_paths;
		b->scanning = pthread_create(&b->scanner, NULL, kl_bk_scanner, b) == 0;
	}
	return rc;
}

/* Walks the source paths into root; *src_ret (the caller's to free) is their tree. */
static int walk_sources(struct backup *b, struct dir_job *root, char **paths, size_t n_paths,
			const struct kl_tree *old, struct source_node **src_ret)
{
	struct source_node *src;
	int rc = 0;

	src = *src_ret = kl_calloc(1, sizeof(*src));
	if (!src || !(src->name = kl_strdup(""))) {
		rc = -ENOMEM;
	} else {
		src->path = "/";
		src->path_len = 1;
	}
	for (size_t i = 0; rc >= 0 && i < n_paths; i++)
		rc = kl_bk_source_add(src, paths[i]);
	if (rc >= 0 && src->is_source) {
		_cleanup_close_ int rfd =
			kl_bk_open_noatime(AT_FDCWD, "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		struct stat st;

		if (rfd < 0) {
			rc = rfd;
		} else if (fstat(rfd, &st) < 0) {
			rc = -errno;
		} else {
			b->root_dev = st.st_dev;
			rc = kl_bk_process_dir(b, root, rfd, old);
		}
	} else if (rc >= 0) {
		rc = kl_bk_process_virtual(b, root, src, old);
	}
	return rc;
}

/*
 * Waits for the files in flight, stops the threads (after a failure too),
 * then writes the last packs and the index file naming them.
 */
int kl_bk_finish_walk(struct backup *b, int rc, struct kl_write_stats *ws)
{
	while (rc >= 0 && !b->error && !b->root_done) {
		rc = kl_bk_collect(b, true);
		if (rc >= 0 && !b->root_done && kl_pipeline_idle(&b->pl) && !b->error) {
			rc = -EIO; /* cannot happen: something lost track of a file */
			break;
		}
	}
	if (b->scanning) {
		atomic_store(&b->scan_stop, true);
		pthread_join(b->scanner, NULL);
	}
	if (b->pl_started) {
		int prc = kl_pipeline_finish(&b->pl, ws);

		if (rc >= 0 && b->error)
			rc = b->error;
		if (rc >= 0)
			rc = prc;
		/* files the workers finished after an error still hold chunk lists */
		struct kl_file_job *f = b->pl.done;
		while (f) {
			struct kl_file_job *next = f->next_done;

			kl_file_job_free(f);
			f = next;
		}
	}
	if (rc >= 0 && b->error)
		rc = b->error;
	if (rc >= 0 && b->trees) {
		struct kl_write_stats ts;

		rc = kl_packer_flush(b->trees);
		kl_packer_stats(b->trees, &ts);
		ws->blobs += ts.blobs;
		ws->bytes_stored += ts.bytes_stored;
	}
	if (rc >= 0 && !(b->o->flags & KL_BACKUP_DRY_RUN))
		rc = kl_repo_flush_index(b->r);
	else if (rc == -KL_EINTERRUPTED && !(b->o->flags & KL_BACKUP_DRY_RUN))
		kl_repo_flush_index(b->r); /* the packs written are indexed for the next backup */
	return rc;
}

/*
 * Saves snap, whose kind, times, host, user and paths are set, as the
 * commit point of the backup, and fills *ret.
 */
int kl_bk_save_snapshot(struct backup *b, struct kl_snapshot *snap, const struct kl_write_stats *ws,
			const struct kl_snapshot_ref *parent, bool has_parent,
			struct kl_backup_result *ret)
{
	const struct kl_backup_opts *o = b->o;
	int rc = 0;

	b->prog.last = true;
	kl_bk_progress(b, NULL, true);
	b->st.bytes_stored = ws->bytes_stored;
	snap->time_end_ns = kl_time_now_ns();
	if (o->has_time) {
		/* backup --time: the given start, the real duration */
		snap->time_end_ns = o->time_ns + (snap->time_end_ns - snap->time_ns);
		snap->time_ns = o->time_ns;
	}
	snap->uid = (uint32_t)geteuid();
	snap->gid = (uint32_t)getegid();
	snap->tags = o->tags;
	snap->n_tags = o->n_tags;
	snap->excludes = o->excludes.v;
	snap->n_excludes = o->excludes.n;
	snap->tree = b->root;
	if (has_parent) {
		snap->parent = parent->id;
		snap->has_parent = true;
	}
	snap->program_version = (char *)"keel " KEEL_VERSION;
	snap->partial = b->st.errors > 0;
	snap->stats = b->st;
	if (!(o->flags & KL_BACKUP_DRY_RUN))
		rc = kl_repo_save_snapshot(b->r, snap, &ret->id);
	ret->stats = b->st;
	ret->partial = snap->partial;
	ret->has_parent = snap->has_parent;
	ret->parent = snap->parent;
	if (rc >= 0 && snap->partial)
		rc = -KL_EPARTIAL;
	return rc;
}

/* Frees what the walk left: directories in flight after a failure, links, buffers. */
void kl_bk_release(struct backup *b)
{
	while (b->live)
		kl_bk_dir_free(b, b->live); /* what a failure left in flight */
	kl_bk_links_free(b);
	kl_packer_free(b->trees);
	kl_free(b->rbuf);
	kl_idcache_free(b->ids);
}

int kl_backup(struct kl_repo *r, const struct kl_backup_opts *o, struct kl_backup_result *ret)
{
	struct backup b = {.r = r, .o = o};
	struct source_node *src = NULL;
	struct kl_snapshot snap = {0};
	struct kl_snapshot_ref parent = {0};
	struct kl_tree parent_tree = {0};
	struct dir_job *root = NULL;
	struct kl_write_stats ws = {0};
	char hostbuf[256], userbuf[256];
	char **paths = NULL;
	size_t n_paths = 0;
	bool stream = o->stdin_fd >= 0 || o->command;
	int rc = 0, has_parent = 0;

	memset(ret, 0, sizeof(*ret));
	if (!stream && !o->n_paths)
		return kl_repo_fail(r, -KL_EUSAGE, "nothing to back up");
	snap.kind = stream ? KL_SNAP_STREAM : KL_SNAP_FILES;
	snap.time_ns = snap.read_start_ns = kl_time_now_ns();
	kl_bk_who_am_i(o, hostbuf, sizeof(hostbuf), userbuf, sizeof(userbuf));
	rc = source_paths(o, stream, &paths, &n_paths);
	if (rc >= 0)
		rc = kl_idcache_new(&b.ids);
	if (rc >= 0 && !(o->flags & KL_BACKUP_DRY_RUN)) {
		/* reuse what a killed backup left behind (before the parent's trees are read) */
		int adopted = kl_repo_adopt_orphans(r);

		if (adopted < 0)
			rc = adopted;
	}
	if (rc >= 0 && !stream && !(o->flags & KL_BACKUP_FORCE)) {
		has_parent = load_parent(&b, paths, n_paths, hostbuf, &parent, &parent_tree);
		if (has_parent < 0)
			rc = has_parent;
	}
	if (rc >= 0 && o->listen.parent)
		o->listen.parent(o->listen.ud, has_parent > 0 ? &parent.id : NULL);
	if (rc >= 0)
		rc = kl_bk_start_walk(&b, paths, n_paths, stream, &root);
	if (rc >= 0 && stream)
		rc = kl_bk_backup_stream(&b, root);
	else if (rc >= 0)
		rc = walk_sources(&b, root, paths, n_paths, parent_tree.n ? &parent_tree : NULL,
				  &src);
	rc = kl_bk_finish_walk(&b, rc, &ws);
	if (rc >= 0 && !stream && b.st.errors && !b.st.files_new && !b.st.files_changed &&
	    !b.st.files_unmodified && !b.st.dirs)
		rc = kl_repo_fail(r, b.first_err ? b.first_err : -ENOENT,
				  "none of the given paths could be read");
	if (rc >= 0) {
		snap.host = hostbuf;
		snap.user = userbuf;
		snap.paths = paths;
		snap.n_paths = n_paths;
		rc = kl_bk_save_snapshot(&b, &snap, &ws, &parent, has_parent > 0, ret);
	}
	kl_bk_release(&b);
	kl_bk_source_free(src);
	kl_snapshot_release(&parent.s);
	kl_tree_release(&parent_tree);
	for (size_t i = 0; i < n_paths; i++)
		kl_free(paths[i]);
	kl_free(paths);
	return rc;
}
