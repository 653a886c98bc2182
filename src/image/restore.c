/*
 * Image restore: each chunk of the node is written to the target unless
 * the target already holds it. On a target that held data (a delta
 * restore) each chunk is read and hashed with the repository's key first,
 * so only the chunks that differ are fetched and written. Zero chunks stay
 * holes in files: left alone where the file had none, punched where it
 * had data.
 */
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include "image-internal.h"

#define IMG_BLOB_MAX ((size_t)64 << 20) /* the format's cap on a blob */

struct img_restore {
	struct kl_repo *r;
	const struct kl_node *n;
	int fd;
	bool is_dev;
	uint64_t old_size; /* of the data the target held, within the image */
	struct kl_img_zero zero;
	uint8_t *tbuf; /* a chunk of the target */
	struct kl_buf blob;
	struct kl_image_restore_result *res;
};

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

static int is_zero_chunk(struct img_restore *x, size_t i, size_t len, bool *ret)
{
	const struct kl_id *z;
	bool fresh;
	int rc = kl_img_zero_id(&x->zero, kl_repo_keys(x->r), len, &z, &fresh);

	if (rc < 0)
		return rc;
	*ret = !memcmp(z->b, x->n->content[i].b, KL_ID_LEN);
	return 0;
}

/* 1 when the target holds chunk i (zero: a hole or zeros) at off already. */
static int target_has(struct img_restore *x, size_t i, uint64_t off, size_t len, bool zero)
{
	struct kl_id id;
	int rc;

	if (off >= x->old_size)
		return zero && !x->is_dev; /* past the old end of a file: a hole already */
	if (zero && !x->is_dev && kl_img_range_is_hole(x->fd, off, len))
		return 1;
	rc = kl_fs_pread_full(x->fd, x->tbuf, len, off);
	if (rc < 0)
		return kl_repo_fail(x->r, rc, "cannot read the target at offset %llu",
				    (unsigned long long)off);
	if (zero)
		return kl_img_is_zero(x->tbuf, len);
	kl_blob_id(kl_repo_keys(x->r), x->tbuf, len, &id);
	return !memcmp(id.b, x->n->content[i].b, KL_ID_LEN);
}

static int write_zeros(struct img_restore *x, uint64_t off, size_t len)
{
	if (!x->is_dev && fallocate(x->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
				    (off_t)len) == 0)
		return 0;
	memset(x->tbuf, 0, len);
	return kl_fs_pwrite_full(x->fd, x->tbuf, len, off);
}

static int restore_chunk(struct img_restore *x, size_t i, uint64_t off, size_t len)
{
	bool zero;
	int rc = is_zero_chunk(x, i, len, &zero);

	if (rc >= 0)
		rc = target_has(x, i, off, len, zero);
	if (rc < 0)
		return rc;
	if (rc > 0) {
		x->res->chunks_same++;
		return 0;
	}
	if (zero) {
		rc = write_zeros(x, off, len);
		x->res->holes_punched++;
	} else {
		rc = kl_repo_read_blob(x->r, &x->n->content[i], &x->blob);
		if (rc == -KL_ENOTFOUND)
			rc = -KL_ECORRUPT;
		if (rc >= 0 && x->blob.len != len)
			rc = kl_repo_fail(x->r, -KL_ECORRUPT, "chunk %zu is %zu bytes, not %zu", i,
					  x->blob.len, len);
		if (rc >= 0)
			rc = kl_fs_pwrite_full(x->fd, x->blob.data, len, off);
		x->res->chunks_written++;
		x->res->bytes_written += len;
	}
	if (rc < 0)
		return kl_repo_fail(x->r, rc, "cannot restore chunk %zu at offset %llu", i,
				    (unsigned long long)off);
	return 0;
}

/* --verify: every chunk read back and hashed. */
static int verify_all(struct img_restore *x)
{
	uint64_t off = 0;

	for (size_t i = 0; i < x->n->n_content; i++) {
		struct kl_id id;
		size_t len = 0;
		int rc = chunk_len(x, i, &len);

		if (rc >= 0)
			rc = kl_fs_pread_full(x->fd, x->tbuf, len, off);
		if (rc < 0)
			return kl_repo_fail(x->r, rc, "cannot read back the target at offset %llu",
					    (unsigned long long)off);
		kl_blob_id(kl_repo_keys(x->r), x->tbuf, len, &id);
		if (memcmp(id.b, x->n->content[i].b, KL_ID_LEN))
			return kl_repo_fail(x->r, -KL_EVERIFY,
					    "chunk %zu at offset %llu differs after restore", i,
					    (unsigned long long)off);
		x->res->chunks_verified++;
		off += len;
	}
	return 0;
}

int kl_image_restore(struct kl_repo *r, const struct kl_node *n, int fd, bool verify,
		     struct kl_image_restore_result *ret)
{
	struct img_restore x = {
		.r = r, .n = n, .fd = fd, .res = ret, .blob = KL_BUF_INIT(IMG_BLOB_MAX)};
	struct stat st;
	uint64_t tsize, off = 0;
	int rc = 0;

	memset(ret, 0, sizeof(*ret));
	ret->size = n->size;
	ret->chunks = n->n_content;
	if (n->type != KL_NODE_FILE)
		return kl_repo_fail(r, -KL_EUSAGE, "not an image");
	if (fstat(fd, &st) < 0)
		return kl_repo_fail(r, -errno, "cannot stat the target");
	x.is_dev = S_ISBLK(st.st_mode);
	if (x.is_dev) {
		if (ioctl(fd, BLKGETSIZE64, &tsize) < 0)
			return kl_repo_fail(r, -errno, "cannot get the size of the target");
		if (tsize < n->size)
			return kl_repo_fail(
				r, -ENOSPC,
				"the target device (%llu bytes) is smaller than the image "
				"(%llu bytes)",
				(unsigned long long)tsize, (unsigned long long)n->size);
	} else if (S_ISREG(st.st_mode)) {
		tsize = (uint64_t)st.st_size;
		if (tsize != n->size && ftruncate(fd, (off_t)n->size) < 0)
			return kl_repo_fail(r, -errno, "cannot set the size of the target");
	} else {
		return kl_repo_fail(r, -KL_EUSAGE,
				    "the target is neither a file nor a block device");
	}
	x.old_size = tsize < n->size ? tsize : n->size;
	ret->delta = x.old_size > 0;
	x.tbuf = kl_malloc(KL_IMAGE_CHUNK_MAX);
	if (!x.tbuf)
		rc = -ENOMEM;
	for (size_t i = 0; rc >= 0 && i < n->n_content; i++) {
		size_t len = 0;

		rc = chunk_len(&x, i, &len);
		if (rc >= 0 && (len > n->size || off > n->size - len))
			rc = kl_repo_fail(r, -KL_ECORRUPT, "the chunks are longer than the image");
		if (rc >= 0)
			rc = restore_chunk(&x, i, off, len);
		off += len;
	}
	if (rc >= 0 && off != n->size && !(n->flags & KL_NODE_PARTIAL))
		rc = kl_repo_fail(r, -KL_ECORRUPT, "the chunks are %llu bytes, the image %llu",
				  (unsigned long long)off, (unsigned long long)n->size);
	if (rc >= 0 && fsync(fd) < 0)
		rc = kl_repo_fail(r, -errno, "cannot sync the target");
	if (rc >= 0 && verify)
		rc = verify_all(&x);
	kl_free(x.tbuf);
	kl_buf_release(&x.blob);
	return rc;
}
