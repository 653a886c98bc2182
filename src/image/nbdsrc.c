/*
 * NBD sources of an image backup, through libnbd: an export named by a URI
 * (nbd://, nbd+unix://, their TLS forms), or a qcow2 file, which qemu-nbd
 * exports to us alone over a socket libnbd hands it (systemd socket
 * activation), read-only. Which ranges are holes comes from the
 * base:allocation meta context; with --dirty-bitmap NAME, which ranges
 * changed since the bitmap was started comes from qemu:dirty-bitmap:NAME.
 */
#include <fcntl.h>
#include <libnbd.h>
#include <stdio.h>

#include "image-internal.h"

#define NBD_READ_MAX ((size_t)4 << 20) /* qemu-nbd takes 32 MiB, some servers less */
#define CTX_ALLOC "base:allocation"

struct kl_img_nbd {
	struct nbd_handle *h;
	char *bitmap_ctx; /* "qemu:dirty-bitmap:NAME", NULL without */
	bool has_alloc;
};

bool kl_img_is_nbd_uri(const char *s)
{
	return !strncmp(s, "nbd://", 6) || !strncmp(s, "nbds://", 7) ||
	       !strncmp(s, "nbd+unix://", 11) || !strncmp(s, "nbds+unix://", 12);
}

bool kl_img_is_qcow2(const char *path)
{
	static const uint8_t magic[4] = {'Q', 'F', 'I', 0xfb};
	uint8_t b[4];
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);

	return fd >= 0 && kl_fs_pread_full(fd, b, sizeof(b), 0) >= 0 && !memcmp(b, magic, 4);
}

static int nbd_fail(struct kl_err *err, const char *what, const char *src)
{
	int e = nbd_get_errno();
	const char *msg = nbd_get_error();

	return kl_fail(err, e > 0 ? -e : -EIO, "%s '%s': %s", what, src, msg ? msg : "failed");
}

void kl_img_nbd_free(struct kl_img_nbd *n)
{
	if (!n)
		return;
	if (n->h) {
		nbd_shutdown(n->h, 0);
		nbd_close(n->h); /* also ends (and reaps) a qemu-nbd it started */
	}
	kl_free(n->bitmap_ctx);
	kl_free(n);
}

static int nbd_connect_source(struct kl_img_nbd *n, const char *src, bool qcow2, const char *bitmap)
{
	char *argv[8];
	size_t k = 0;

	if (!qcow2)
		return nbd_connect_uri(n->h, src);
	argv[k++] = (char *)"qemu-nbd";
	argv[k++] = (char *)"--read-only";
	argv[k++] = (char *)"--format=qcow2";
	if (bitmap) {
		argv[k++] = (char *)"--bitmap";
		argv[k++] = (char *)bitmap;
	}
	argv[k++] = (char *)src;
	argv[k] = NULL;
	return nbd_connect_systemd_socket_activation(n->h, argv);
}

int kl_img_nbd_open(const char *src, bool qcow2, const char *bitmap, struct kl_img_nbd **ret,
		    uint64_t *size_ret, struct kl_err *err)
{
	struct kl_img_nbd *n = kl_calloc(1, sizeof(*n));
	int64_t size;
	int rc = 0;

	*ret = NULL;
	if (!n)
		return -ENOMEM;
	n->h = nbd_create();
	if (!n->h)
		rc = nbd_fail(err, "cannot use libnbd for", src);
	if (rc >= 0 && bitmap) {
		size_t len = strlen(bitmap) + sizeof("qemu:dirty-bitmap:");

		n->bitmap_ctx = kl_malloc(len);
		if (!n->bitmap_ctx)
			rc = -ENOMEM;
		else
			snprintf(n->bitmap_ctx, len, "qemu:dirty-bitmap:%s", bitmap);
	}
	if (rc >= 0 && (nbd_add_meta_context(n->h, CTX_ALLOC) < 0 ||
			(bitmap && nbd_add_meta_context(n->h, n->bitmap_ctx) < 0)))
		rc = nbd_fail(err, "cannot ask for the block status of", src);
	if (rc >= 0 && nbd_connect_source(n, src, qcow2, bitmap) < 0)
		rc = nbd_fail(err, "cannot connect to", src);
	if (rc >= 0 && (size = nbd_get_size(n->h)) < 0)
		rc = nbd_fail(err, "cannot get the size of", src);
	if (rc >= 0) {
		n->has_alloc = nbd_can_meta_context(n->h, CTX_ALLOC) == 1;
		if (bitmap && nbd_can_meta_context(n->h, n->bitmap_ctx) != 1)
			rc = kl_fail(err, -KL_EUSAGE,
				     "'%s' has no dirty bitmap '%s' (qemu-nbd --bitmap %s)", src,
				     bitmap, bitmap);
	}
	if (rc < 0) {
		kl_img_nbd_free(n);
		return rc;
	}
	*size_ret = (uint64_t)size;
	*ret = n;
	return 0;
}

int kl_img_nbd_read(struct kl_img_nbd *n, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;

	while (len) {
		size_t k = len < NBD_READ_MAX ? len : NBD_READ_MAX;

		if (nbd_pread(n->h, p, k, off, 0) < 0) {
			int e = nbd_get_errno();

			return e > 0 ? -e : -EIO;
		}
		p += k;
		off += k;
		len -= k;
	}
	return 0;
}

struct extent_scan {
	const char *ctx;
	uint32_t mask;	  /* a flag that counts */
	bool want_all;	  /* true: every extent must have it; false: any one */
	bool answer;	  /* so far */
	uint64_t covered; /* from the start of the range */
};

static int on_extents(void *ud, const char *ctx, uint64_t offset, uint32_t *entries, size_t n,
		      int *error)
{
	struct extent_scan *s = ud;

	if (strcmp(ctx, s->ctx))
		return 0;
	for (size_t i = 0; i + 1 < n; i += 2) {
		bool has = (entries[i + 1] & s->mask) == s->mask;

		if (s->want_all && !has)
			s->answer = false;
		if (!s->want_all && has)
			s->answer = true;
		s->covered += entries[i];
	}
	return 0;
}

/* Scans [off, off + len) in ctx, as many requests as the server needs. */
static int scan(struct kl_img_nbd *n, struct extent_scan *s, uint64_t off, uint64_t len)
{
	uint64_t done = 0;

	while (done < len) {
		nbd_extent_callback cb = {.callback = on_extents, .user_data = s};

		s->covered = 0;
		if (nbd_block_status(n->h, len - done, off + done, cb, 0) < 0) {
			int e = nbd_get_errno();

			return e > 0 ? -e : -EIO;
		}
		if (!s->covered)
			return -EIO; /* a server that answers nothing: do not loop */
		done += s->covered;
		/* decided early: no need to ask about the rest */
		if (s->want_all != s->answer)
			break;
	}
	return s->answer;
}

int kl_img_nbd_is_zero(struct kl_img_nbd *n, uint64_t off, uint64_t len)
{
	struct extent_scan s = {
		.ctx = CTX_ALLOC, .mask = LIBNBD_STATE_ZERO, .want_all = true, .answer = true};

	return n->has_alloc ? scan(n, &s, off, len) : 0;
}

int kl_img_nbd_is_dirty(struct kl_img_nbd *n, uint64_t off, uint64_t len)
{
	struct extent_scan s = {.ctx = n->bitmap_ctx, .mask = 1, .want_all = false};

	return n->bitmap_ctx ? scan(n, &s, off, len) : 1;
}
