/*
 * A push parser of mariabackup's xbstream format (extra/mariabackup/
 * xbstream.h in MariaDB's source: chunk = magic "XBSTCK01", flags, type,
 * path length and path, and for a payload its length, offset, CRC-32 and
 * bytes). The stream comes from a child process keel runs, but it is
 * parsed as untrusted input (fuzz/fuzz-xbstream.c): every length is
 * bounded before it is used, paths must be relative and clean, and each
 * payload's CRC-32 is checked.
 */
#include <string.h>
#include <zlib.h>

#include "keel/db.h"

enum { S_HDR, S_PATH, S_PAYLOAD_HDR, S_PAYLOAD };

#define XBS_MAGIC "XBSTCK01"
#define XBS_FLAG_IGNORABLE 0x01

uint32_t kl_crc32(uint32_t crc, const uint8_t *p, size_t n)
{
	/* zlib's crc32 takes an unsigned int length */
	while (n) {
		unsigned k = n > (1u << 30) ? 1u << 30 : (unsigned)n;

		crc = (uint32_t)crc32(crc, p, k);
		p += k;
		n -= k;
	}
	return crc;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

void kl_xbs_init(struct kl_xbs *x, const struct kl_xbs_ops *ops, void *ud)
{
	memset(x, 0, sizeof(*x));
	x->ops = ops;
	x->ud = ud;
	x->state = S_HDR;
}

/* Whether path is relative, without "", "." or ".." parts. */
static bool clean(const char *path, size_t n)
{
	size_t start = 0;

	if (!n || memchr(path, 0, n))
		return false;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && path[i] != '/')
			continue;
		size_t len = i - start;

		if (!len || (len == 1 && path[start] == '.') ||
		    (len == 2 && path[start] == '.' && path[start + 1] == '.'))
			return false;
		start = i + 1;
	}
	return true;
}

static int chunk_begins(struct kl_xbs *x)
{
	struct kl_xbs_chunk c = {.type = x->type, .path = x->path};

	if (x->type == 'P') {
		c.offset = x->offset;
		c.len = x->len;
	}
	return x->ops->chunk(x->ud, &c);
}

/* Takes up to want - x->fill bytes into dst; returns how many it took. */
static size_t take(struct kl_xbs *x, uint8_t *dst, size_t want, const uint8_t *p, size_t n)
{
	size_t k = want - x->fill < n ? want - x->fill : n;

	memcpy(dst + x->fill, p, k);
	x->fill += k;
	return k;
}

static int step(struct kl_xbs *x, const uint8_t *p, size_t n, size_t *used)
{
	int rc;

	switch (x->state) {
	case S_HDR:
		*used = take(x, x->hdr, KL_XBS_HDR, p, n);
		if (x->fill < KL_XBS_HDR)
			return 0;
		x->type = x->hdr[9];
		x->path_len = le32(x->hdr + 10);
		if (memcmp(x->hdr, XBS_MAGIC, 8) || (x->hdr[8] & ~XBS_FLAG_IGNORABLE) ||
		    (x->type != 'P' && x->type != 'E') || !x->path_len ||
		    x->path_len > KL_XBS_MAX_PATH)
			return -KL_ECORRUPT;
		x->fill = 0;
		x->state = S_PATH;
		return 0;
	case S_PATH:
		*used = take(x, (uint8_t *)x->path, x->path_len, p, n);
		if (x->fill < x->path_len)
			return 0;
		x->path[x->path_len] = 0;
		if (!clean(x->path, x->path_len))
			return -KL_ECORRUPT;
		x->fill = 0;
		if (x->type == 'E') {
			x->state = S_HDR;
			return chunk_begins(x);
		}
		x->state = S_PAYLOAD_HDR;
		return 0;
	case S_PAYLOAD_HDR:
		*used = take(x, x->hdr, 20, p, n);
		if (x->fill < 20)
			return 0;
		x->len = le64(x->hdr);
		x->offset = le64(x->hdr + 8);
		x->want_crc = le32(x->hdr + 16);
		/* a file of at most 2^62 bytes: offset + len cannot overflow */
		if (x->len > (1ull << 62) || x->offset > (1ull << 62) - x->len)
			return -KL_ECORRUPT;
		x->fill = 0;
		x->left = x->len;
		x->crc = 0;
		x->state = S_PAYLOAD;
		rc = chunk_begins(x);
		if (rc < 0 || x->len)
			return rc;
		/* an empty payload: its CRC is that of nothing */
		x->state = S_HDR;
		return x->want_crc == 0 ? 0 : -KL_ECORRUPT;
	case S_PAYLOAD: {
		size_t k = x->left < n ? (size_t)x->left : n;

		x->crc = kl_crc32(x->crc, p, k);
		rc = x->ops->data(x->ud, p, k);
		if (rc < 0)
			return rc;
		*used = k;
		x->left -= k;
		if (x->left)
			return 0;
		x->state = S_HDR;
		return x->crc == x->want_crc ? 0 : -KL_ECORRUPT;
	}
	}
	return -KL_ECORRUPT;
}

int kl_xbs_feed(struct kl_xbs *x, const uint8_t *p, size_t n)
{
	while (!x->error && n) {
		size_t used = 0;
		int rc = step(x, p, n, &used);

		if (rc < 0)
			x->error = rc;
		p += used;
		n -= used;
	}
	return x->error;
}

int kl_xbs_finish(struct kl_xbs *x)
{
	if (x->error)
		return x->error;
	return x->state == S_HDR && x->fill == 0 ? 0 : -KL_ECORRUPT;
}
