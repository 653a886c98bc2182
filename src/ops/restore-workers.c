/*
 * Restore's workers: they create regular files, read their blobs, write
 * them in order (large files in parts, by several workers) and finish
 * each file with its length, verification and metadata.
 */
#include <fcntl.h>

#include "keel/fs.h"
#include "restore-internal.h"

#define SPLIT_MIN ((uint64_t)64 << 20)	/* files this large are written by several workers */
#define PART_BYTES ((uint64_t)32 << 20) /* the size of one part of such a file */

/* Fills w->blob with the zeros of a blob known to be all zero; 1 if it was known. */
static int zero_blob_fill(struct worker *w, const struct kl_id *id)
{
	for (size_t i = 0; i < w->n_zeros; i++) {
		if (!kl_id_eq(&w->zeros[i].id, id))
			continue;
		kl_buf_clear(&w->blob);
		if (kl_buf_grow(&w->blob, w->zeros[i].len) < 0)
			return -ENOMEM;
		memset(w->blob.data, 0, w->zeros[i].len);
		kl_buf_setlen(&w->blob, w->zeros[i].len);
		return 1;
	}
	return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	return n && !p[0] && !memcmp(p, p + 1, n - 1);
}

static void zero_blob_note(struct worker *w, const struct kl_id *id)
{
	/* small ones are not worth a slot */
	if (w->blob.len < 4096 || !all_zero(w->blob.data, w->blob.len))
		return;
	w->zeros[w->next_zero].id = *id;
	w->zeros[w->next_zero].len = w->blob.len;
	w->next_zero = (w->next_zero + 1) % ZERO_IDS;
	if (w->n_zeros < ZERO_IDS)
		w->n_zeros++;
}

/* Reads back what was just written and checks it against the blob id. */
static bool verify_blob(struct worker *w, struct rfile *f, const struct kl_id *id, uint64_t off,
			size_t n)
{
	struct kl_id got;

	kl_buf_clear(&w->check);
	if (kl_buf_grow(&w->check, n) < 0 || kl_fs_pread_full(f->fd, w->check.data, n, off) < 0)
		return false;
	kl_blob_id(kl_repo_keys(w->c->r), w->check.data, n, &got);
	return kl_id_eq(&got, id);
}

/*
 * Creates dirfd/name for writing: O_EXCL and O_NOFOLLOW, after removing
 * what is in the way, unless --overwrite keeps it: then KL_RS_KEPT, or
 * with *unchanged set a descriptor of the file that is there, the same
 * (its metadata is set, nothing written). Counts what it did. Returns
 * the descriptor or a negative error.
 */
int kl_rs_create_file(struct rctx *c, const char *path, int dirfd, const char *name,
		      const struct kl_node *nd, struct kl_buf *buf, bool *unchanged)
{
	int fd, rc, a;

	*unchanged = false;
	a = kl_rs_decide(c, dirfd, name, nd, buf, &fd);
	if (a == KL_RESTORE_SKIP || a == KL_RESTORE_UNCHANGED) {
		kl_rs_count(c, a, path, nd);
		*unchanged = a == KL_RESTORE_UNCHANGED;
		return a == KL_RESTORE_SKIP ? KL_RS_KEPT : fd;
	}
	fd = openat(dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 && errno == EEXIST) {
		rc = kl_rs_clear_way(dirfd, name);
		if (rc < 0) {
			kl_rs_fail(c, path, rc, "cannot replace what is in the way");
			return rc;
		}
		a = KL_RESTORE_REPLACE;
		fd = openat(dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	}
	if (fd < 0) {
		rc = -errno;
		kl_rs_fail(c, path, rc, "cannot create file");
		return rc;
	}
	kl_rs_count(c, a == KL_RESTORE_REPLACE ? a : KL_RESTORE_CREATE, path, nd);
	/* a sparse file is all hole at first: its zeros are never written, and verify reads them */
	if ((nd->flags & KL_NODE_SPARSE) && ftruncate(fd, (off_t)nd->size) < 0) {
		rc = -errno;
		kl_rs_fail(c, path, rc, "cannot set file length");
		close(fd);
		return rc;
	}
	return fd;
}

/*
 * A file the walk left to the workers to create (its only part): creating
 * 10^5 files is most of a restore's time on ext4, and the workers create
 * them in parallel, where the walk could only do it one at a time.
 */
static bool create_queued(struct worker *w, struct rfile *f)
{
	struct rctx *c = w->c;
	int fd = -1;

	if (!kl_rs_stopped(c))
		fd = kl_rs_create_file(c, f->path, f->dirfd, f->name, &f->node, &w->check,
				       &f->unchanged);
	close(KL_TAKE_FD(f->dirfd));
	kl_rs_rdir_created(c, KL_TAKE_PTR(f->dir));
	if (fd < 0) {
		pthread_mutex_lock(&c->lock);
		if (fd != KL_RS_KEPT)
			f->err = fd; /* reported by kl_rs_create_file */
		pthread_mutex_unlock(&c->lock);
		return false;
	}
	f->fd = fd;
	return !f->unchanged;
}

static const char *blob_error(int rc)
{
	if (rc == -KL_ENOTFOUND)
		return "data is not in the index (run 'keel repair index'; if no pack holds it, "
		       "it is lost)";
	return rc == -KL_ECORRUPT ? "data is damaged" : "cannot read the file's data";
}

static void run_part(struct worker *w, const struct part *pt)
{
	struct rctx *c = w->c;
	struct rfile *f = pt->f;
	const struct kl_node *nd = &f->node;
	bool sparse = nd->flags & KL_NODE_SPARSE;
	uint64_t off = pt->off;
	size_t i;
	int rc;

	if (f->fd < 0 && !create_queued(w, f))
		return;
	for (i = pt->first; i < pt->last && !kl_rs_stopped(c); i++) {
		const struct kl_id *id = &nd->content[i];
		struct kl_blob_loc loc;

		rc = zero_blob_fill(w, id);
		if (rc == 0) {
			rc = kl_repo_read_blob(c->r, id, &w->blob);
			if (rc >= 0)
				zero_blob_note(w, id);
		}
		if (rc < 0) {
			kl_rs_file_fail(c, f, rc, blob_error(rc));
			if (!kl_repo_lookup(c->r, id, &loc))
				break; /* where the rest goes is unknown: keep what is written */
			off += loc.e.raw_length; /* leave a gap and go on */
			continue;
		}
		rc = kl_rs_write_at(f->fd, w->blob.data, w->blob.len, off, sparse);
		if (rc < 0) {
			kl_rs_file_fail(c, f, rc, "cannot write file");
			break;
		}
		kl_test_point("restore-written"); /* data changed before verify reads it: t4014 */
		if (c->o->verify && !verify_blob(w, f, id, off, w->blob.len)) {
			pthread_mutex_lock(&c->lock);
			f->verify_bad = true;
			pthread_mutex_unlock(&c->lock);
		}
		off += w->blob.len;
		pthread_mutex_lock(&c->lock);
		c->prog.bytes_done += w->blob.len;
		kl_rs_progress_locked(c, f->path, false);
		pthread_mutex_unlock(&c->lock);
	}
	if (i == pt->last && pt->first == 0 && pt->last == nd->n_content) {
		/* the only part: now the length is known */
		f->end = off;
		f->known_end = true;
	}
}

void kl_rs_rfile_free(struct rfile *f)
{
	if (f->fd >= 0)
		close(f->fd);
	if (f->dirfd >= 0)
		close(f->dirfd);
	kl_node_release(&f->node);
	kl_free(f->path);
	kl_free(f);
}

/* All parts are written: check the length, verify, apply metadata, close. */
void kl_rs_finish_file(struct rctx *c, struct rfile *f)
{
	const struct kl_node *nd = &f->node;
	int rc;

	if (kl_rs_stopped(c) || f->fd < 0) {
		kl_rs_rfile_free(f);
		return;
	}
	if (f->unchanged) {
		/* the file that was there is the same: its metadata only */
		kl_rs_apply_meta(c, f->path, f->fd, -1, NULL, nd);
		kl_rs_rfile_free(f);
		return;
	}
	if (f->known_end) {
		if (f->end != nd->size && !(nd->flags & KL_NODE_PARTIAL))
			kl_rs_file_fail(c, f, -KL_ECORRUPT,
					"restored length differs from the snapshot");
		/* holes at the end, or damaged blobs skipped there, are not written */
		if (((nd->flags & KL_NODE_SPARSE) || f->err) && ftruncate(f->fd, (off_t)f->end) < 0)
			kl_rs_file_fail(c, f, -errno, "cannot set file length");
	}
	if (nd->flags & KL_NODE_PARTIAL)
		kl_rs_note(c, f->path, -KL_EPARTIAL,
			   "the file could not be read completely when it was backed up");
	pthread_mutex_lock(&c->lock);
	if (f->verify_bad) {
		c->st.verify_failures++;
		kl_rs_record_locked(c, -KL_EVERIFY);
		kl_rs_warn_locked(c, f->path, -KL_EVERIFY,
				  "restored content differs from the snapshot");
	}
	if (f->err) {
		/* incomplete: no metadata, and renamed when the workers are done */
		rc = kl_rs_name_add(&c->damaged, &c->n_damaged, &c->cap_damaged, f->path,
				    c->rel_off, nd);
		if (rc < 0)
			kl_rs_fail_locked(c, f->path, rc, "cannot remember a damaged file");
	}
	pthread_mutex_unlock(&c->lock);
	if (!f->err)
		kl_rs_apply_meta(c, f->path, f->fd, -1, NULL, nd);
	rc = close(KL_TAKE_FD(f->fd));
	if (rc < 0)
		kl_rs_file_fail(c, f, -errno, "cannot write file");
	pthread_mutex_lock(&c->lock);
	c->st.files++;
	c->st.bytes += nd->size;
	c->prog.files_done++;
	kl_rs_progress_locked(c, f->path, false);
	pthread_mutex_unlock(&c->lock);
	kl_test_point("restore-file-done"); /* a restore with files yet to write: t4003 */
	kl_rs_rfile_free(f);
}

static void part_done(struct rctx *c, struct rfile *f)
{
	bool last;

	pthread_mutex_lock(&c->lock);
	last = --f->parts == 0;
	pthread_mutex_unlock(&c->lock);
	if (last)
		kl_rs_finish_file(c, f);
}

void *kl_rs_worker_main(void *arg)
{
	struct worker *w = arg;
	struct rctx *c = w->c;

	for (;;) {
		struct part pt;

		pthread_mutex_lock(&c->lock);
		while (!c->q_len && !c->walk_done)
			pthread_cond_wait(&c->nonempty, &c->lock);
		if (!c->q_len) {
			pthread_mutex_unlock(&c->lock);
			break;
		}
		pt = c->q[c->q_head];
		c->q_head = (c->q_head + 1) % QUEUE_CAP;
		c->q_len--;
		pthread_cond_signal(&c->nonfull);
		pthread_mutex_unlock(&c->lock);
		run_part(w, &pt);
		part_done(c, pt.f);
	}
	return NULL;
}

static void enqueue(struct rctx *c, struct worker *inline_w, const struct part *pt)
{
	if (!c->nthreads) {
		/* no worker threads: do it here */
		run_part(inline_w, pt);
		part_done(c, pt->f);
		return;
	}
	pthread_mutex_lock(&c->lock);
	while (c->q_len == QUEUE_CAP)
		pthread_cond_wait(&c->nonfull, &c->lock);
	c->q[(c->q_head + c->q_len) % QUEUE_CAP] = *pt;
	c->q_len++;
	pthread_cond_signal(&c->nonempty);
	pthread_mutex_unlock(&c->lock);
}

/* Whether several workers write the file, each a part of it. */
bool kl_rs_is_split(const struct rctx *c, const struct kl_node *nd)
{
	return c->nthreads > 1 && nd->size >= SPLIT_MIN && nd->n_content > 1;
}

/* The blob after the part that starts with blob first. */
static size_t part_end(const uint64_t *offs, size_t n, size_t first)
{
	size_t i = first + 1;

	while (i < n && offs[i] - offs[first] < PART_BYTES)
		i++;
	return i;
}

/*
 * Cuts a large file into parts of about PART_BYTES by blob ranges, so all
 * workers can write it; blob offsets are the running sum of their lengths
 * from the index. Falls back to one part when a blob is not indexed (the
 * worker then reports it).
 */
void kl_rs_queue_file(struct rctx *c, struct worker *inline_w, struct rfile *f)
{
	const struct kl_node *nd = &f->node;
	/*
	 * f is the workers' once its last part is queued: they may finish and
	 * free it before enqueue() returns, so nothing below reads f after that
	 */
	const size_t n = nd->n_content;
	_cleanup_free_ uint64_t *offs = NULL;
	struct part pt = {.f = f, .first = 0, .last = n, .off = 0};
	size_t i, nparts = 0;

	if (kl_rs_is_split(c, nd))
		offs = kl_malloc((nd->n_content + 1) * sizeof(*offs));
	if (offs) {
		offs[0] = 0;
		for (i = 0; i < n; i++) {
			struct kl_blob_loc loc;

			if (!kl_repo_lookup(c->r, &nd->content[i], &loc))
				break;
			offs[i + 1] = offs[i] + loc.e.raw_length;
		}
		if (i < n) {
			kl_free(offs);
			offs = NULL;
		}
	}
	if (!offs) {
		f->parts = 1;
		enqueue(c, inline_w, &pt);
		return;
	}
	/* count first: a part may finish before the next one is queued */
	for (i = 0; i < n; i = part_end(offs, n, i))
		nparts++;
	f->parts = (unsigned)nparts;
	f->end = offs[n];
	f->known_end = true;
	for (i = 0; i < n; i = pt.last) {
		pt.first = i;
		pt.off = offs[i];
		pt.last = part_end(offs, n, i);
		enqueue(c, inline_w, &pt);
		if (pt.last == n)
			kl_test_point("restore-parts-queued"); /* f may be gone: t1007 */
	}
}
