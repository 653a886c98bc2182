/*
 * Restore: a snapshot's tree back into files.
 *
 * The main thread walks the trees depth first and creates every directory,
 * symlink, FIFO, device and hard link itself; regular files go to a pool
 * of workers, which create them (creating inodes is most of the time of a
 * restore of many small files, and one thread would do it one at a time),
 * read the file's blobs, write them in order and apply the file's metadata
 * through the descriptor. A directory's own metadata waits for the last
 * file created in it (struct rdir). The walk creates a file itself when
 * its descriptor is needed at once: a file with other names, which are
 * linked to it next, and a large file, which is cut into parts by blob
 * ranges so that every worker can write into it (the worker that finishes
 * its last part closes it). The queue is bounded, so memory and open
 * descriptors stay bounded however large the tree is.
 *
 * Safety. Every system call works relative to a directory descriptor with
 * a single name from a decoded tree (the decoder rejects "", ".", "..",
 * '/' and NUL, and we check again), directories are opened with
 * O_NOFOLLOW | O_DIRECTORY and files created with O_CREAT | O_EXCL |
 * O_NOFOLLOW, so nothing a restore creates, and nothing that was in the
 * target before, can redirect a write outside the target. Full paths are
 * only kept for messages, so paths longer than PATH_MAX work. What is in
 * the way of a node is replaced: a file, symlink or empty directory is
 * removed first (unlink, then create: never truncating in place, which
 * would write through a hard link into a file outside the target); a
 * directory that holds something is kept and the node is reported.
 * An existing directory where a directory belongs is reused.
 *
 * Metadata, in this order, because each step can undo an earlier one:
 *   1. owner: numeric uid/gid, as root only (an ordinary user cannot give
 *      files away: warned once, counted). We keep the ids rather than
 *      mapping the recorded user and group names to local ids (tar
 *      --numeric-owner, restic): a restore onto the machine that was
 *      backed up is exact, and a name lookup could silently give files to
 *      a different local account. chown also drops file capabilities and
 *      setuid/setgid bits, so it goes first;
 *   2. xattrs, POSIX ACLs (system.posix_acl_*) and capabilities included;
 *   3. mode (not for symlinks), after chown and the ACLs, which touch it.
 *      A file not owned by its recorded owner (not root, or --no-owner)
 *      loses its setuid bit, and its setgid bit unless the group is
 *      ours, as bsdtar does (GNU tar keeps them): a restored program must
 *      not run with the privileges of whoever restored it. Each is warned;
 *   4. atime and mtime with nanoseconds, last, since everything above
 *      changes ctime only but writing content changes mtime.
 * A directory gets its metadata after all its children exist (post-order),
 * so a read-only or 0000 directory, or its mtime, is restored exactly.
 *
 * Sparse files (KL_NODE_SPARSE): all-zero pieces of each 4 KiB block are
 * not written and the file is extended with ftruncate at the end, so a
 * block stays a hole unless it holds data. Files not marked sparse are
 * written in full: turning their zero runs into holes would change how
 * they are stored, and some files (swap, preallocated images) must not
 * have holes.
 *
 * Sockets come back as unbound socket inodes (mknod S_IFSOCK, which needs
 * no privilege), with their owner, mode and times: the tree is restored as
 * recorded, and a program that listens on one binds it anew anyway.
 *
 * Errors with one file are reported through kl_rs_fail() and the restore goes
 * on; kl_restore returns the most serious one. Running out of space (or
 * quota, or memory, or a read-only target) stops the whole restore. Some
 * problems are reported without counting as errors, because they are the
 * expected result of restoring as an ordinary user or onto a file system
 * without xattrs: owners (not root), devices that need
 * privilege, xattrs the file system or the user cannot set, setuid and
 * setgid bits dropped. They are omissions: counted, summed up, and the
 * restore returns -KL_EPARTIAL (exit 3) when nothing worse happened.
 *
 * What is there already (--overwrite): a node's place that holds the
 * same (restore-overwrite.c says exactly what that is) is left alone and
 * given the node's metadata; anything else is replaced, removed first as
 * above, unless --overwrite never or if-newer keeps it. Every node counts
 * as created, replaced, unchanged or skipped. --delete removes what a
 * directory's tree lacks before its children are restored
 * (restore-delete.c); --dry-run only walks (restore-plan.c).
 *
 * The files: restore.c (this one: reporting and the entry points),
 * restore-walk.c (the walk of the trees, and the nodes the walk creates
 * itself), restore-dirs.c (directories), restore-links.c (hard links),
 * restore-workers.c (the workers that create and write regular files),
 * restore-meta.c (metadata), restore-damaged.c (files whose content is
 * incomplete: kept as NAME.keel-damaged, never under their own name with
 * their metadata), restore-overwrite.c (what is there already, and the
 * counts), restore-delete.c (--delete), restore-plan.c (the walk before:
 * totals, include patterns that match nothing, --dry-run) and
 * restore-sys.c (small system call helpers), sharing restore-internal.h.
 */
#include <fcntl.h>
#include <time.h>

#include "keel/fs.h"
#include "restore-internal.h"

#define MAX_THREADS 64
#define PROGRESS_NS (250 * 1000 * 1000)
#define PATH_BUF_MAX ((size_t)1 << 30)
#define BLOB_BUF_MAX ((size_t)128 << 20)

/* ---- errors and progress ---------------------------------------------------- */

static bool is_fatal(int rc)
{
	/* nothing more will fit, or the target cannot be written at all */
	return rc == -ENOSPC || rc == -EDQUOT || rc == -EROFS || rc == -ENOMEM || rc == -ESTALE;
}

static int severity(int rc)
{
	if (rc >= 0)
		return 0;
	if (is_fatal(rc))
		return 4;
	if (rc == -KL_ECORRUPT)
		return 3;
	if (rc == -KL_EVERIFY)
		return 2;
	return 1;
}

static const char *shown(const char *path)
{
	return path && *path ? path : "/";
}

/* Raises the result code and stops on fatal errors. Lock held. */
void kl_rs_record_locked(struct rctx *c, int rc)
{
	if (severity(rc) > severity(c->worst))
		c->worst = rc;
	if (is_fatal(rc))
		__atomic_store_n(&c->stop, true, __ATOMIC_RELAXED);
}

void kl_rs_warn_locked(struct rctx *c, const char *path, int rc, const char *what)
{
	if (c->o->report.warn)
		c->o->report.warn(c->o->report.ud, shown(path), rc, what);
}

/*
 * -KL_ENOTFOUND from reading a blob: the index lacks it. That is damage
 * for the exit code (13), but not corruption or tampering: what says so,
 * and no error text contradicts it. Lock held.
 */
static void fail_locked(struct rctx *c, const char *path, int rc, const char *what)
{
	c->st.errors++;
	c->prog.errors++;
	if (rc == -KL_ENOTFOUND)
		c->st.unindexed++;
	kl_rs_record_locked(c, rc == -KL_ENOTFOUND ? -KL_ECORRUPT : rc);
	kl_rs_warn_locked(c, path, rc == -KL_ENOTFOUND ? 0 : rc, what);
}

void kl_rs_fail_locked(struct rctx *c, const char *path, int rc, const char *what)
{
	fail_locked(c, path, rc, what);
}

/* One error with one node: reported, counted, and the restore goes on. */
void kl_rs_fail(struct rctx *c, const char *path, int rc, const char *what)
{
	pthread_mutex_lock(&c->lock);
	kl_rs_fail_locked(c, path, rc, what);
	pthread_mutex_unlock(&c->lock);
}

/* Something the user should know that is not an error of the restore. */
void kl_rs_note(struct rctx *c, const char *path, int rc, const char *what)
{
	pthread_mutex_lock(&c->lock);
	kl_rs_warn_locked(c, path, rc, what);
	pthread_mutex_unlock(&c->lock);
}

/* An error with a file the workers write: reported once per file. */
void kl_rs_file_fail(struct rctx *c, struct rfile *f, int rc, const char *what)
{
	pthread_mutex_lock(&c->lock);
	if (!f->err) {
		f->err = rc;
		fail_locked(c, f->path, rc, what);
	} else {
		kl_rs_record_locked(c, rc == -KL_ENOTFOUND ? -KL_ECORRUPT : rc);
	}
	pthread_mutex_unlock(&c->lock);
}

void kl_rs_progress_locked(struct rctx *c, const char *current, bool force)
{
	int64_t now;

	if (!c->o->report.progress)
		return;
	now = kl_time_mono_ns();
	if (!force && now - c->last_progress < PROGRESS_NS)
		return;
	c->last_progress = now;
	c->prog.current = current;
	c->o->report.progress(c->o->report.ud, &c->prog);
	c->prog.current = NULL;
}

/* ---- entry points ------------------------------------------------------------- */

/* "a//b/" -> "/a/b", "" and "/" -> "" (the root). */
static int normalise_path(const char *in, struct kl_buf *out)
{
	const char *s = in ? in : "";
	int rc = 0;

	while (*s && rc >= 0) {
		const char *e;

		while (*s == '/')
			s++;
		e = strchrnul(s, '/');
		if (e > s && !(e - s == 1 && s[0] == '.')) {
			rc = kl_buf_addch(out, '/');
			if (rc >= 0)
				rc = kl_buf_add(out, s, (size_t)(e - s));
		}
		s = e;
	}
	return rc;
}

/* The clock file times are taken from: a file made from now on has a ctime no earlier. */
static int64_t coarse_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	return (int64_t)ts.tv_sec * KL_NSEC_PER_SEC + ts.tv_nsec;
}

static unsigned thread_count(const struct kl_restore_opts *o)
{
	long n = o->threads ? (long)o->threads : sysconf(_SC_NPROCESSORS_ONLN);

	return (unsigned)KL_MAX(1, KL_MIN(n, MAX_THREADS));
}

/*
 * A directory's contents go into the target: the snapshot's root, or the
 * directory at the path asked for (as restic does: SNAP:/a/b puts b's
 * children in the target). c->path is its path.
 */
static void restore_contents(struct rctx *c, struct worker *inline_w, struct dirh *root,
			     const struct kl_node *top)
{
	struct kl_tree t = {0};
	size_t base = c->path.len;
	bool all = c->all;
	int rc;

	if (!all && base && kl_patterns_match(&c->o->includes, (const char *)c->path.data))
		all = true; /* the directory asked for matches: all of it */
	rc = top->has_subtree ? kl_repo_read_tree(c->r, &top->subtree, &t) : -KL_ECORRUPT;
	if (rc == -KL_ENOTFOUND)
		kl_rs_fail(c, base ? (const char *)c->path.data : "/", rc,
			   "the directory's listing is not in the index; "
			   "run 'keel repair index' (if no pack holds it, it is lost)");
	else if (rc < 0)
		kl_rs_fail(c, base ? (const char *)c->path.data : "/", rc,
			   "the directory's listing is damaged");
	else if (!t.n && !base)
		kl_rs_note(c, "/", 0,
			   "the snapshot is empty (a repaired snapshot whose root "
			   "directory was lost?): nothing to restore");
	/* --delete: before the walk hands the tree's nodes over to the workers */
	if (rc >= 0 && all && c->o->delete_extra)
		kl_rs_delete_extra(c, c->rootfd, &t);
	for (size_t i = 0; i < t.n && !kl_rs_stopped(c); i++) {
		kl_buf_setlen(&c->path, base);
		rc = kl_buf_addch(&c->path, '/');
		if (rc >= 0)
			rc = kl_buf_add(&c->path, t.nodes[i].name, t.nodes[i].name_len);
		if (rc < 0) {
			kl_rs_fail(c, "/", rc, "cannot restore");
			break;
		}
		kl_rs_restore_tree(c, inline_w, root, &t.nodes[i], all);
	}
	kl_buf_setlen(&c->path, base);
	kl_tree_release(&t);
}

/* The walk is done: the workers finish the queue and stop. */
static void join_workers(struct rctx *c, struct worker *ws, unsigned want)
{
	pthread_mutex_lock(&c->lock);
	c->walk_done = true;
	if (!c->planned) {
		c->prog.files_total = c->files_seen;
		c->prog.bytes_total = c->bytes_seen;
	}
	pthread_cond_broadcast(&c->nonempty);
	pthread_mutex_unlock(&c->lock);
	for (unsigned i = 0; i < c->nthreads; i++) {
		pthread_join(ws[i].tid, NULL);
		kl_buf_release(&ws[i].blob);
		kl_buf_release(&ws[i].check);
	}
	if (c->nthreads < want) {
		kl_buf_release(&ws[c->nthreads].blob);
		kl_buf_release(&ws[c->nthreads].check);
	}
}

/* Opens the target: made first unless a dry run, which takes -1 for one that is not there. */
static int open_target(struct rctx *c)
{
	const struct kl_restore_opts *o = c->o;
	int rc = 0;

	if (!o->dry_run)
		rc = kl_fs_mkdir_p(AT_FDCWD, o->target, 0700);
	if (rc >= 0) {
		c->rootfd = open(o->target, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (c->rootfd < 0)
			rc = o->dry_run && errno == ENOENT ? 0 : -errno;
	}
	if (rc < 0)
		return kl_repo_fail(c->r, rc, "cannot open restore target '%s'", o->target);
	return 0;
}

/* The walk before the restore (restore-plan.c), when something needs it. */
static int plan(struct rctx *c, const struct kl_node *top, bool contents)
{
	const struct kl_restore_opts *o = c->o;
	bool full = o->dry_run || o->report.progress;
	int rc;

	if (!full && c->all)
		return 0;
	rc = kl_rs_plan(c, top, contents, full);
	if (rc < 0)
		return rc;
	c->planned = full;
	if (!c->all && !c->matched)
		return kl_repo_fail(c->r, -KL_ENOTFOUND,
				    "no path in the snapshot matches the include patterns");
	return 0;
}

static void rctx_release(struct rctx *c)
{
	kl_buf_release(&c->path);
	kl_rs_links_release(c);
	kl_rs_names_release(c->lnames, c->n_lnames);
	kl_rs_names_release(c->damaged, c->n_damaged);
	if (c->rootfd >= 0)
		close(c->rootfd);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->nonempty);
	pthread_cond_destroy(&c->nonfull);
}

/* Starts the workers and walks; the files are written when it returns. */
static void run(struct rctx *c, struct kl_node *top, bool contents)
{
	struct worker ws[MAX_THREADS];
	struct worker inline_w = {.c = c};
	struct dirh root = {.exists = true, .fd = c->rootfd};
	unsigned want;

	kl_buf_init(&inline_w.blob, BLOB_BUF_MAX);
	kl_buf_init(&inline_w.check, BLOB_BUF_MAX);
	want = thread_count(c->o);
	for (c->nthreads = 0; c->nthreads < want; c->nthreads++) {
		struct worker *w = &ws[c->nthreads];

		memset(w, 0, sizeof(*w));
		w->c = c;
		kl_buf_init(&w->blob, BLOB_BUF_MAX);
		kl_buf_init(&w->check, BLOB_BUF_MAX);
		if (pthread_create(&w->tid, NULL, kl_rs_worker_main, w))
			break; /* fewer workers, or none: then the walk writes files itself */
	}
	if (contents)
		restore_contents(c, &inline_w, &root, top);
	else
		kl_rs_restore_tree(c, &inline_w, &root, top, c->all); /* target/<name> */
	join_workers(c, ws, want);
	kl_rs_damaged_rename(c);
	pthread_mutex_lock(&c->lock);
	kl_rs_progress_locked(c, NULL, true);
	pthread_mutex_unlock(&c->lock);
	kl_buf_release(&inline_w.blob);
	kl_buf_release(&inline_w.check);
}

int kl_restore(struct kl_repo *r, const struct kl_id *tree, const char *path,
	       const struct kl_restore_opts *o, struct kl_restore_stats *ret)
{
	struct rctx c = {
		.r = r,
		.o = o,
		.rootfd = -1,
		.path = KL_BUF_INIT(PATH_BUF_MAX),
		.lock = PTHREAD_MUTEX_INITIALIZER,
		.nonempty = PTHREAD_COND_INITIALIZER,
		.nonfull = PTHREAD_COND_INITIALIZER,
	};
	struct kl_node top;
	bool contents;
	int rc;

	if (ret)
		memset(ret, 0, sizeof(*ret));
	if (!o->target || !*o->target)
		return kl_repo_fail(r, -KL_EUSAGE, "no restore target given");
	rc = normalise_path(path, &c.path);
	if (rc >= 0)
		rc = kl_tree_lookup(r, tree, (const char *)c.path.data, &top);
	if (rc < 0) {
		rctx_release(&c);
		return rc;
	}
	contents = top.type == KL_NODE_DIR;
	c.start_ns = coarse_now_ns();
	c.euid = geteuid();
	c.egid = getegid();
	c.do_owner = !o->no_owner && c.euid == 0;
	c.owner_omitted = !o->no_owner && c.euid != 0;
	c.all = !o->includes.n;
	/* names below the target start after the directory restored, or the file's last '/' */
	if (contents)
		c.rel_off = c.path.len + 1;
	else
		c.rel_off = (size_t)(strrchr((char *)c.path.data, '/') - (char *)c.path.data) + 1;
	rc = o->dry_run ? open_target(&c) : 0;
	if (rc >= 0)
		rc = plan(&c, &top, contents);
	if (rc >= 0 && !o->dry_run)
		rc = open_target(&c);
	if (rc >= 0 && !o->dry_run)
		run(&c, &top, contents);
	kl_node_release(&top);
	if (ret)
		*ret = c.st;
	rctx_release(&c);
	if (rc < 0)
		return rc;
	if (kl_repo_cancelled(r) < 0)
		return -KL_EINTERRUPTED; /* what was restored stays: the rerun replaces it */
	if (!c.worst && (c.st.owners_omitted || c.st.specials_omitted || c.st.xattrs_omitted ||
			 c.st.setid_cleared))
		return -KL_EPARTIAL; /* restored with omissions, each warned about */
	return c.worst;
}

int kl_dump_node(struct kl_repo *r, const struct kl_node *n, int fd)
{
	_cleanup_buf_ struct kl_buf blob = KL_BUF_INIT(BLOB_BUF_MAX);
	uint64_t total = 0;
	int rc;

	if (n->type == KL_NODE_DIR)
		return -EISDIR;
	if (n->type != KL_NODE_FILE)
		return -EINVAL;
	for (size_t i = 0; i < n->n_content; i++) {
		rc = kl_repo_read_blob(r, &n->content[i], &blob);
		if (rc == -KL_ENOTFOUND)
			rc = -KL_ECORRUPT;
		if (rc >= 0)
			rc = kl_fs_write_full(fd, blob.data, blob.len);
		if (rc < 0)
			return rc;
		total += blob.len;
	}
	if (total != n->size && !(n->flags & KL_NODE_PARTIAL))
		return kl_repo_fail(r, -KL_ECORRUPT,
				    "content is %llu bytes, the snapshot says %llu",
				    (unsigned long long)total, (unsigned long long)n->size);
	return 0;
}
