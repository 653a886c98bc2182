/*
 * Image restore: each chunk of the node is written to the target unless
 * the target already holds it. On a target that held data (a delta
 * restore) each chunk is read and hashed with the repository's key first,
 * so only the chunks that differ are fetched and written. Zero chunks stay
 * holes in files: left alone where the file had none, punched where it
 * had data.
 *
 * Chunks are independent (each has its own offset), so one worker a core
 * takes the next chunk and fetches, authenticates, decompresses (or reads
 * and hashes the target's bytes) and writes it: one at a time, a restore
 * was bound by one core's decryption and decompression, a delta restore by
 * one core's hashing (bench/image.sh).
 */
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image-internal.h"

#define IMG_BLOB_MAX ((size_t)64 << 20) /* the format's cap on a blob */
#define IMG_RESTORE_WORKERS_MAX 8

/* What the workers share. */
struct img_restore {
	struct kl_repo *r;
	const struct kl_node *n;
	int fd;
	bool is_dev;
	uint64_t old_size; /* of the data the target held, within the image */
	uint64_t *offs;	   /* offs[i]: chunk i's offset; offs[n_content]: the end */
	pthread_mutex_t mu;
	size_t next; /* the next chunk to take, under mu */
	int rc;	     /* the first failure, under mu; its message went into r */
};

/* One worker's buffers and counts. */
struct img_worker {
	struct img_restore *x;
	struct kl_img_zero zero;
	uint8_t *tbuf; /* a chunk of the target */
	struct kl_buf blob;
	struct kl_image_restore_result res;
	pthread_t thread;
	bool started;
};

/*
 * Records the first failure (r's message is not for two threads at once):
 * a later one, often a consequence, is dropped. Returns rc.
 */
__attribute__((format(printf, 3, 4))) static int fail(struct img_restore *x, int rc,
						      const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&x->mu);
	if (x->rc >= 0) {
		x->rc = rc;
		kl_repo_fail(x->r, rc, "%s", msg);
	}
	pthread_mutex_unlock(&x->mu);
	return rc;
}

/* The length of chunk id from the index. */
static int chunk_len(struct img_restore *x, size_t i, size_t *ret)
{
	struct kl_blob_loc loc;
	char hex[2 * KL_ID_LEN + 1];
	int rc = kl_repo_lookup(x->r, &x->n->content[i], &loc);

	if (rc < 0 || loc.e.type != KL_BLOB_DATA || loc.e.raw_length > KL_IMAGE_CHUNK_MAX) {
		kl_id_hex(&x->n->content[i], hex);
		return kl_repo_fail(x->r, -KL_ECORRUPT, "chunk %zu (%.16s) is not in the index", i,
				    hex);
	}
	*ret = loc.e.raw_length;
	return 0;
}

static int is_zero_chunk(struct img_worker *w, size_t i, size_t len, bool *ret)
{
	const struct kl_id *z;
	bool fresh;
	int rc = kl_img_zero_id(&w->zero, kl_repo_keys(w->x->r), len, &z, &fresh);

	if (rc < 0)
		return rc;
	*ret = !memcmp(z->b, w->x->n->content[i].b, KL_ID_LEN);
	return 0;
}

/* 1 when the target holds chunk i (zero: a hole or zeros) at off already. */
static int target_has(struct img_worker *w, size_t i, uint64_t off, size_t len, bool zero)
{
	struct img_restore *x = w->x;
	struct kl_id id;
	int rc;

	if (off >= x->old_size)
		return zero && !x->is_dev; /* past the old end of a file: a hole already */
	if (zero && !x->is_dev && kl_img_range_is_hole(x->fd, off, len))
		return 1;
	rc = kl_fs_pread_full(x->fd, w->tbuf, len, off);
	if (rc < 0)
		return fail(x, rc, "cannot read the target at offset %llu",
			    (unsigned long long)off);
	if (zero)
		return kl_img_is_zero(w->tbuf, len);
	kl_blob_id(kl_repo_keys(x->r), w->tbuf, len, &id);
	return !memcmp(id.b, x->n->content[i].b, KL_ID_LEN);
}

static int write_zeros(struct img_worker *w, uint64_t off, size_t len)
{
	int fd = w->x->fd;

	if (!w->x->is_dev &&
	    fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) == 0)
		return 0;
	memset(w->tbuf, 0, len);
	return kl_fs_pwrite_full(fd, w->tbuf, len, off);
}

static int restore_chunk(struct img_worker *w, size_t i)
{
	struct img_restore *x = w->x;
	uint64_t off = x->offs[i];
	size_t len = (size_t)(x->offs[i + 1] - off);
	bool zero;
	int rc = is_zero_chunk(w, i, len, &zero);

	if (rc >= 0)
		rc = target_has(w, i, off, len, zero);
	if (rc < 0)
		return rc;
	if (rc > 0) {
		w->res.chunks_same++;
		return 0;
	}
	if (zero) {
		rc = write_zeros(w, off, len);
		w->res.holes_punched++;
	} else {
		rc = kl_repo_read_blob(x->r, &x->n->content[i], &w->blob);
		if (rc == -KL_ENOTFOUND)
			rc = -KL_ECORRUPT;
		if (rc >= 0 && w->blob.len != len)
			return fail(x, -KL_ECORRUPT, "chunk %zu is %zu bytes, not %zu", i,
				    w->blob.len, len);
		if (rc >= 0)
			rc = kl_fs_pwrite_full(x->fd, w->blob.data, len, off);
		w->res.chunks_written++;
		w->res.bytes_written += len;
	}
	if (rc < 0)
		return fail(x, rc, "cannot restore chunk %zu at offset %llu", i,
			    (unsigned long long)off);
	return 0;
}

/* A worker: takes the next chunk until none is left or one failed. */
static void *worker_run(void *arg)
{
	struct img_worker *w = arg;
	struct img_restore *x = w->x;

	for (;;) {
		size_t i;
		int rc = kl_repo_cancelled(x->r);

		pthread_mutex_lock(&x->mu);
		if (rc < 0 && x->rc >= 0)
			x->rc = rc;
		i = x->next;
		if (x->rc >= 0 && i < x->n->n_content)
			x->next++;
		else
			i = SIZE_MAX;
		pthread_mutex_unlock(&x->mu);
		if (i == SIZE_MAX)
			return NULL;
		rc = restore_chunk(w, i);
		if (rc < 0) { /* most failures are in x->rc already, with their message */
			pthread_mutex_lock(&x->mu);
			if (x->rc >= 0)
				x->rc = rc;
			pthread_mutex_unlock(&x->mu);
		}
	}
}

/* --verify: every chunk read back and hashed. */
static int verify_all(struct img_restore *x, uint8_t *tbuf, struct kl_image_restore_result *res)
{
	for (size_t i = 0; i < x->n->n_content; i++) {
		struct kl_id id;
		uint64_t off = x->offs[i];
		size_t len = (size_t)(x->offs[i + 1] - off);
		int rc = kl_fs_pread_full(x->fd, tbuf, len, off);

		if (rc < 0)
			return kl_repo_fail(x->r, rc, "cannot read back the target at offset %llu",
					    (unsigned long long)off);
		kl_blob_id(kl_repo_keys(x->r), tbuf, len, &id);
		if (memcmp(id.b, x->n->content[i].b, KL_ID_LEN))
			return kl_repo_fail(x->r, -KL_EVERIFY,
					    "chunk %zu at offset %llu differs after restore", i,
					    (unsigned long long)off);
		res->chunks_verified++;
	}
	return 0;
}

/* The chunks' offsets from their lengths in the index; *max_ret: the longest. */
static int chunk_offsets(struct img_restore *x, size_t *max_ret)
{
	const struct kl_node *n = x->n;
	uint64_t off = 0;

	*max_ret = 0;
	x->offs = kl_malloc((n->n_content + 1) * sizeof(*x->offs));
	if (!x->offs)
		return -ENOMEM;
	for (size_t i = 0; i < n->n_content; i++) {
		size_t len = 0;
		int rc = chunk_len(x, i, &len);

		if (rc < 0)
			return rc;
		if (len > n->size || off > n->size - len)
			return kl_repo_fail(x->r, -KL_ECORRUPT,
					    "the chunks are longer than the image");
		x->offs[i] = off;
		off += len;
		if (len > *max_ret)
			*max_ret = len;
	}
	x->offs[n->n_content] = off;
	if (off != n->size && !(n->flags & KL_NODE_PARTIAL))
		return kl_repo_fail(x->r, -KL_ECORRUPT, "the chunks are %llu bytes, the image %llu",
				    (unsigned long long)off, (unsigned long long)n->size);
	return 0;
}

/*
 * Runs the workers: n_w - 1 threads and the calling one. A thread that
 * cannot start is no failure while one worker runs.
 */
static int run_workers(struct img_restore *x, struct img_worker *w, size_t n_w, size_t max_len)
{
	for (size_t k = 0; k < n_w; k++) {
		w[k].tbuf = kl_malloc(max_len ? max_len : 1);
		if (!w[k].tbuf)
			return -ENOMEM;
	}
	for (size_t k = 1; k < n_w; k++)
		w[k].started = pthread_create(&w[k].thread, NULL, worker_run, &w[k]) == 0;
	worker_run(&w[0]);
	for (size_t k = 1; k < n_w; k++)
		if (w[k].started)
			pthread_join(w[k].thread, NULL);
	return x->rc;
}

static size_t n_workers(const struct kl_node *n)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	size_t k = cores < 1 ? 1 : (size_t)cores;

	if (k > IMG_RESTORE_WORKERS_MAX)
		k = IMG_RESTORE_WORKERS_MAX;
	return k < n->n_content ? k : (n->n_content ? n->n_content : 1);
}

/* Checks the target and sets it to the image's size (a file); x->old_size. */
static int prepare_target(struct img_restore *x)
{
	struct kl_repo *r = x->r;
	struct stat st;
	uint64_t tsize;

	if (fstat(x->fd, &st) < 0)
		return kl_repo_fail(r, -errno, "cannot stat the target");
	x->is_dev = S_ISBLK(st.st_mode);
	if (x->is_dev) {
		if (ioctl(x->fd, BLKGETSIZE64, &tsize) < 0)
			return kl_repo_fail(r, -errno, "cannot get the size of the target");
		if (tsize < x->n->size)
			return kl_repo_fail(
				r, -ENOSPC,
				"the target device (%llu bytes) is smaller than the image "
				"(%llu bytes)",
				(unsigned long long)tsize, (unsigned long long)x->n->size);
	} else if (S_ISREG(st.st_mode)) {
		tsize = (uint64_t)st.st_size;
		if (tsize != x->n->size && ftruncate(x->fd, (off_t)x->n->size) < 0)
			return kl_repo_fail(r, -errno, "cannot set the size of the target");
	} else {
		return kl_repo_fail(r, -KL_EUSAGE,
				    "the target is neither a file nor a block device");
	}
	x->old_size = tsize < x->n->size ? tsize : x->n->size;
	return 0;
}

int kl_image_restore(struct kl_repo *r, const struct kl_node *n, int fd, bool verify,
		     struct kl_image_restore_result *ret)
{
	struct img_restore x = {.r = r, .n = n, .fd = fd};
	struct img_worker w[IMG_RESTORE_WORKERS_MAX];
	size_t n_w = 0, max_len = 0;
	int rc;

	memset(ret, 0, sizeof(*ret));
	ret->size = n->size;
	ret->chunks = n->n_content;
	if (n->type != KL_NODE_FILE)
		return kl_repo_fail(r, -KL_EUSAGE, "not an image");
	rc = prepare_target(&x);
	ret->delta = x.old_size > 0;
	if (rc >= 0)
		rc = chunk_offsets(&x, &max_len);
	if (rc >= 0) {
		pthread_mutex_init(&x.mu, NULL);
		n_w = n_workers(n);
		for (size_t k = 0; k < n_w; k++)
			w[k] = (struct img_worker){.x = &x, .blob = KL_BUF_INIT(IMG_BLOB_MAX)};
		rc = run_workers(&x, w, n_w, max_len);
		pthread_mutex_destroy(&x.mu);
	}
	for (size_t k = 0; k < n_w; k++) {
		ret->chunks_written += w[k].res.chunks_written;
		ret->chunks_same += w[k].res.chunks_same;
		ret->holes_punched += w[k].res.holes_punched;
		ret->bytes_written += w[k].res.bytes_written;
	}
	if (rc >= 0 && fsync(fd) < 0)
		rc = kl_repo_fail(r, -errno, "cannot sync the target");
	if (rc >= 0 && verify)
		rc = verify_all(&x, w[0].tbuf, ret);
	for (size_t k = 0; k < n_w; k++) {
		kl_free(w[k].tbuf);
		kl_buf_release(&w[k].blob);
	}
	kl_free(x.offs);
	return rc;
}
