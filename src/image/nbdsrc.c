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
/*
 * Reads in flight: each round trip through qemu-nbd costs a qcow2 lookup
 * and a copy, so one at a time leaves both sides idle most of the time
 * (bench/README.md). The window is bounded in chunks and in bytes.
 */
#define WINDOW_SLOTS 16
#define WINDOW_BYTES ((size_t)32 << 20)
#define SLOT_CMDS (KL_IMAGE_CHUNK_MAX / NBD_READ_MAX) /* requests of one chunk */
/* What one block status request asks about: the server may answer less. */
#define STATUS_SPAN ((uint64_t)1 << 30)

/* One chunk's read: up to SLOT_CMDS requests into buf. */
struct slot {
	uint64_t off;
	size_t len;
	uint8_t *buf;
	int64_t cookie[SLOT_CMDS];
	unsigned n_cookies;
};

/* The extents of one meta context known from v[first].off to end, in order. */
struct ext_cache {
	struct ext {
		uint64_t off, len;
		uint32_t flags;
	} * v;
	size_t first, n, cap;
	uint64_t end;
};

struct kl_img_nbd {
	struct nbd_handle *h;
	uint64_t size;
	char *bitmap_ctx; /* "qemu:dirty-bitmap:NAME", NULL without */
	bool has_alloc;
	struct ext_cache alloc, dirty;
	struct slot win[WINDOW_SLOTS]; /* a ring: head is the oldest read */
	unsigned head, used;
	size_t win_bytes;
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

static int nbd_rc(void)
{
	int e = nbd_get_errno();

	return e > 0 ? -e : -EIO;
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
		/* reads still in flight are abandoned: an error ended the backup */
		nbd_shutdown(n->h, n->used ? LIBNBD_SHUTDOWN_ABANDON_PENDING : 0);
		nbd_close(n->h); /* also ends (and reaps) a qemu-nbd it started */
	}
	/* only now: libnbd may write into these until the handle is closed */
	for (unsigned i = 0; i < n->used; i++)
		kl_free(n->win[(n->head + i) % WINDOW_SLOTS].buf);
	kl_free(n->alloc.v);
	kl_free(n->dirty.v);
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
	n->size = *size_ret = (uint64_t)size;
	*ret = n;
	return 0;
}

int kl_img_nbd_read(struct kl_img_nbd *n, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;

	while (len) {
		size_t k = len < NBD_READ_MAX ? len : NBD_READ_MAX;

		if (nbd_pread(n->h, p, k, off, 0) < 0)
			return nbd_rc();
		p += k;
		off += k;
		len -= k;
	}
	return 0;
}

/* ---- block status, asked a span at a time and answered from memory ---- */

static int ext_push(struct ext_cache *c, uint64_t off, uint64_t len, uint32_t flags)
{
	if (c->n == c->cap && c->first) {
		/* queries only move forward: what lies before the last one is done */
		memmove(c->v, c->v + c->first, (c->n - c->first) * sizeof(*c->v));
		c->n -= c->first;
		c->first = 0;
	}
	if (c->n == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 64;
		struct ext *v = kl_realloc(c->v, ncap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		c->v = v;
		c->cap = ncap;
	}
	c->v[c->n++] = (struct ext){.off = off, .len = len, .flags = flags};
	c->end = off + len;
	return 0;
}

struct status_fill {
	struct kl_img_nbd *n;
	int rc;
};

static int on_extents(void *ud, const char *ctx, uint64_t offset, uint32_t *entries, size_t ne,
		      int *error)
{
	struct status_fill *f = ud;
	struct kl_img_nbd *n = f->n;
	struct ext_cache *c = !strcmp(ctx, CTX_ALLOC)			     ? &n->alloc
			      : n->bitmap_ctx && !strcmp(ctx, n->bitmap_ctx) ? &n->dirty
									     : NULL;
	uint64_t pos = offset;

	/* one request answers for every context: keep what continues a cache */
	if (!c || offset != c->end)
		return 0;
	for (size_t i = 0; i + 1 < ne && pos < n->size && f->rc >= 0; i += 2) {
		uint64_t len = entries[i] < n->size - pos ? entries[i] : n->size - pos;

		if (!len)
			break; /* an empty extent says nothing; the caller sees no progress */
		f->rc = ext_push(c, pos, len, entries[i + 1]);
		pos += len;
	}
	return 0;
}

/* Extends c past its end with one block status request. */
static int status_fetch(struct kl_img_nbd *n, struct ext_cache *c)
{
	struct status_fill f = {.n = n};
	nbd_extent_callback cb = {.callback = on_extents, .user_data = &f};
	uint64_t from = c->end, span = n->size - from < STATUS_SPAN ? n->size - from : STATUS_SPAN;

	if (nbd_block_status(n->h, span, from, cb, 0) < 0)
		return nbd_rc();
	if (f.rc < 0)
		return f.rc;
	return c->end > from ? 0 : -EIO; /* a server that answers nothing: do not loop */
}

/*
 * Whether the extents of [off, off + len) have mask: all of them (want_all)
 * or any one. Returns 1 or 0.
 */
static int ext_query(struct kl_img_nbd *n, struct ext_cache *c, uint64_t off, uint64_t len,
		     uint32_t mask, bool want_all)
{
	int rc;

	if (c->first == c->n || off < c->v[c->first].off || off > c->end) {
		c->first = c->n = 0;
		c->end = off;
	}
	while (c->end < off + len)
		if ((rc = status_fetch(n, c)) < 0)
			return rc;
	while (c->v[c->first].off + c->v[c->first].len <= off)
		c->first++;
	for (size_t i = c->first; i < c->n && c->v[i].off < off + len; i++) {
		bool has = (c->v[i].flags & mask) == mask;

		if (has != want_all)
			return has;
	}
	return want_all;
}

int kl_img_nbd_is_zero(struct kl_img_nbd *n, uint64_t off, uint64_t len)
{
	return n->has_alloc ? ext_query(n, &n->alloc, off, len, LIBNBD_STATE_ZERO, true) : 0;
}

int kl_img_nbd_is_dirty(struct kl_img_nbd *n, uint64_t off, uint64_t len)
{
	return n->bitmap_ctx ? ext_query(n, &n->dirty, off, len, 1, false) : 1;
}

/* ---- reads in flight ---- */

int kl_img_nbd_start_read(struct kl_img_nbd *n, uint64_t off, size_t len)
{
	struct slot *s;

	if (n->used == WINDOW_SLOTS || (n->used && n->win_bytes + len > WINDOW_BYTES))
		return 0;
	if (KL_NEVER(!len || len > KL_IMAGE_CHUNK_MAX))
		return -EINVAL;
	s = &n->win[(n->head + n->used) % WINDOW_SLOTS];
	*s = (struct slot){.off = off, .len = len, .buf = kl_malloc(len)};
	if (!s->buf)
		return -ENOMEM;
	/* in the ring from now on, so that kl_img_nbd_free() frees it after the handle */
	n->used++;
	n->win_bytes += len;
	for (size_t done = 0, k; done < len; done += k) {
		int64_t cookie;

		k = len - done < NBD_READ_MAX ? len - done : NBD_READ_MAX;
		cookie = nbd_aio_pread(n->h, s->buf + done, k, off + done, NBD_NULL_COMPLETION, 0);
		if (cookie < 0)
			return nbd_rc();
		s->cookie[s->n_cookies++] = cookie;
	}
	return 1;
}

/* Runs the connection until the request is answered. */
static int wait_cmd(struct kl_img_nbd *n, int64_t cookie)
{
	for (;;) {
		int r = nbd_aio_command_completed(n->h, (uint64_t)cookie);

		if (r > 0)
			return 0;
		/* an error reply, or the connection lost: every request in flight fails */
		if (r < 0 || nbd_poll(n->h, -1) < 0) {
			int rc = nbd_rc();

			/* a lost connection found by nbd_poll carries no errno (or EIO)
			 * while one found by the completion carries ENOTCONN: report
			 * both alike, so that a dead server never reads as a bad disk */
			if (nbd_aio_is_dead(n->h) || nbd_aio_is_closed(n->h))
				return -ENOTCONN;
			return rc;
		}
	}
}

int kl_img_nbd_take_read(struct kl_img_nbd *n, uint64_t off, size_t len, uint8_t **ret)
{
	struct slot *s = &n->win[n->head];
	int rc;

	*ret = NULL;
	if (KL_NEVER(!n->used || s->off != off || s->len != len))
		return -EINVAL;
	for (unsigned i = 0; i < s->n_cookies; i++) {
		rc = wait_cmd(n, s->cookie[i]);
		if (rc < 0)
			return rc; /* the slot stays: its other requests may still write to it */
	}
	*ret = KL_TAKE_PTR(s->buf);
	n->head = (n->head + 1) % WINDOW_SLOTS;
	n->used--;
	n->win_bytes -= len;
	return 0;
}
