/*
 * SQLite's write-ahead log, read and written as bytes (docs/DATABASES.md,
 * "SQLite"): the header, the frames' checksum chain, and the commit list
 * a log record keeps beside its frames. Fuzzed (fuzz/fuzz-sqlite-wal.c):
 * the WAL keel follows is written by other processes, and a restore reads
 * these back from the repository.
 */
#include <stdio.h>

#include "keel/db.h"

#define WAL_MAGIC 0x377f0682u
#define WAL_VERSION 3007000u

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/*
 * SQLite's WAL checksum: over pairs of 32-bit words x0, x1 (in the byte
 * order the magic says), s0 += x0 + s1; s1 += x1 + s0. n is a multiple of 8.
 */
static void checksum(bool big_endian, const uint8_t *p, size_t n, uint32_t s[2])
{
	uint32_t s0 = s[0], s1 = s[1];

	for (size_t i = 0; i + 8 <= n; i += 8) {
		uint32_t x0 = big_endian ? get_be32(p + i) : get_le32(p + i);
		uint32_t x1 = big_endian ? get_be32(p + i + 4) : get_le32(p + i + 4);

		s0 += x0 + s1;
		s1 += x1 + s0;
	}
	s[0] = s0;
	s[1] = s1;
}

int kl_sqlite_wal_hdr_decode(const uint8_t *p, size_t n, struct kl_sqlite_wal_hdr *ret)
{
	uint32_t magic, s[2] = {0, 0};

	memset(ret, 0, sizeof(*ret));
	if (n < KL_SQLITE_WAL_HDR)
		return -KL_ECORRUPT;
	magic = get_be32(p);
	if ((magic & ~1u) != WAL_MAGIC || get_be32(p + 4) != WAL_VERSION)
		return -KL_ECORRUPT;
	ret->big_endian = magic & 1;
	ret->page_size = get_be32(p + 8);
	ret->ckpt_seq = get_be32(p + 12);
	ret->salt1 = get_be32(p + 16);
	ret->salt2 = get_be32(p + 20);
	if (ret->page_size < 512 || ret->page_size > 65536 ||
	    (ret->page_size & (ret->page_size - 1)))
		return -KL_ECORRUPT;
	checksum(ret->big_endian, p, 24, s);
	if (s[0] != get_be32(p + 24) || s[1] != get_be32(p + 28))
		return -KL_ECORRUPT;
	ret->s0 = s[0];
	ret->s1 = s[1];
	return 0;
}

void kl_sqlite_wal_hdr_encode(struct kl_sqlite_wal_hdr *h, uint8_t out[KL_SQLITE_WAL_HDR])
{
	uint32_t s[2] = {0, 0};

	put_be32(out, WAL_MAGIC | (h->big_endian ? 1 : 0));
	put_be32(out + 4, WAL_VERSION);
	put_be32(out + 8, h->page_size);
	put_be32(out + 12, h->ckpt_seq);
	put_be32(out + 16, h->salt1);
	put_be32(out + 20, h->salt2);
	checksum(h->big_endian, out, 24, s);
	put_be32(out + 24, s[0]);
	put_be32(out + 28, s[1]);
	h->s0 = s[0];
	h->s1 = s[1];
}

int kl_sqlite_frame_check(const struct kl_sqlite_wal_hdr *h, const uint8_t *f, uint32_t s[2],
			  struct kl_sqlite_frame *ret)
{
	uint32_t c[2] = {s[0], s[1]};

	ret->pgno = get_be32(f);
	ret->db_pages = get_be32(f + 4);
	if (!ret->pgno || get_be32(f + 8) != h->salt1 || get_be32(f + 12) != h->salt2)
		return 0;
	checksum(h->big_endian, f, 8, c);
	checksum(h->big_endian, f + KL_SQLITE_FRAME_HDR, h->page_size, c);
	if (c[0] != get_be32(f + 16) || c[1] != get_be32(f + 20))
		return 0;
	s[0] = c[0];
	s[1] = c[1];
	return 1;
}

void kl_sqlite_frame_seal(const struct kl_sqlite_wal_hdr *h, uint8_t *f, uint32_t s[2])
{
	put_be32(f + 8, h->salt1);
	put_be32(f + 12, h->salt2);
	checksum(h->big_endian, f, 8, s);
	checksum(h->big_endian, f + KL_SQLITE_FRAME_HDR, h->page_size, s);
	put_be32(f + 16, s[0]);
	put_be32(f + 20, s[1]);
}

/* A decimal number of at most 19 digits, then the byte end. */
static int number(const uint8_t **p, const uint8_t *e, char end, uint64_t *ret)
{
	uint64_t v = 0;
	int digits = 0;

	while (*p < e && **p >= '0' && **p <= '9') {
		if (++digits > 19)
			return -KL_ECORRUPT;
		v = v * 10 + (uint64_t)(**p - '0');
		(*p)++;
	}
	if (!digits || *p >= e || **p != end)
		return -KL_ECORRUPT;
	(*p)++;
	*ret = v;
	return 0;
}

int kl_sqlite_commits_parse(const uint8_t *p, size_t n, uint32_t first, uint32_t last,
			    struct kl_sqlite_commit **ret, size_t *n_ret)
{
	const uint8_t *e = p + n;
	struct kl_sqlite_commit *v = NULL;
	size_t cnt = 0, cap = 0;
	uint64_t frame, t;

	*ret = NULL;
	*n_ret = 0;
	while (p < e) {
		if (number(&p, e, ' ', &frame) < 0 || number(&p, e, '\n', &t) < 0 ||
		    frame < first || frame > last || (cnt && frame <= v[cnt - 1].frame) ||
		    t > (uint64_t)INT64_MAX || cnt >= KL_SQLITE_COMMITS_MAX) {
			kl_free(v);
			return -KL_ECORRUPT;
		}
		if (cnt == cap) {
			struct kl_sqlite_commit *nv;

			cap = cap ? 2 * cap : 64;
			nv = kl_realloc(v, cap * sizeof(*v));
			if (!nv) {
				kl_free(v);
				return -ENOMEM;
			}
			v = nv;
		}
		v[cnt].frame = (uint32_t)frame;
		v[cnt].time_ns = (int64_t)t;
		cnt++;
	}
	*ret = v;
	*n_ret = cnt;
	return 0;
}
