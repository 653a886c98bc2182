/*
 * Fuzz target for the content-defined chunker (src/chunker/cdc.c).
 *
 * Input: an 8-byte header, then the data to chunk.
 *
 *   byte 0     avg = 2^(7 + byte0 % 10): 128 B .. 64 KiB
 *   bytes 1-2  min = 64 + le16 % (avg - 64)
 *   byte 3     max = avg + 1 + avg * byte3 / 32
 *   byte 4     flags; bit 0: raw parameters: the 12 bytes after the header
 *              are min, avg, max as little-endian uint32s, taken as they
 *              are (valid or not), and the data follows them
 *   bytes 5-7  reserved, ignored (kept so corpus files stay meaningful)
 *
 * The key is fixed. Oracles, abort() on any violation:
 *   - kl_cdc_init accepts exactly the parameters the documented rules
 *     accept (raw mode);
 *   - every chunk is non-empty, every chunk but the last is within
 *     [min, max], the last is at most max, and the chunks reassemble the
 *     input;
 *   - chunking twice gives the same cuts;
 *   - passing only max bytes gives the same cut as passing the whole rest
 *     (the caller's contract in chunker.h);
 *   - each cut equals that of a slow reference that sums the 64-byte
 *     window directly, as docs/FORMAT.md describes.
 *
 * No main() here: the replay driver links one, and libFuzzer brings its own.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keel/chunker.h"
#include "keel/util.h"

#define HDR_LEN 8
#define RAW_LEN 12

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
	if (!ok)
		abort();
}

static bool params_valid(const struct kl_cdc_params *p)
{
	return p->min >= 64 && p->min < p->avg && p->avg < p->max && p->max <= (64u << 20) &&
	       (p->avg & (p->avg - 1)) == 0;
}

static size_t ref_next(const struct kl_cdc *c, const uint8_t *data, size_t n)
{
	unsigned bits = (unsigned)__builtin_ctz(c->avg);
	size_t limit, len, k;
	uint64_t h, mask;

	if (n <= c->min)
		return n;
	limit = KL_MIN(n, (size_t)c->max);
	for (len = c->min; len <= limit; len++) {
		h = 0;
		for (k = 0; k < 64; k++)
			h += c->gear[data[len - 1 - k]] << k;
		mask = ~UINT64_C(0) << (64 - (len < c->avg ? bits + 2 : bits - 2));
		if ((h & mask) == 0)
			return len;
	}
	return limit;
}

/* Chunks data[0..n) into lens (room for n entries); returns the count. */
static size_t chunk_all(const struct kl_cdc *c, const uint8_t *data, size_t n, size_t *lens,
			uint8_t *copy)
{
	size_t pos = 0, len, count = 0;

	while (pos < n) {
		size_t rest = n - pos;

		len = kl_cdc_next(c, data + pos, rest);
		check(len > 0 && len <= rest && len <= c->max);
		if (len < rest)
			check(len >= c->min);
		if (rest <= c->min)
			check(len == rest);
		check(kl_cdc_next(c, data + pos, KL_MIN(rest, (size_t)c->max)) == len);
		check(ref_next(c, data + pos, rest) == len);
		memcpy(copy + pos, data + pos, len);
		lens[count++] = len;
		pos += len;
	}
	check(pos == n);
	return count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kl_cdc_params p;
	struct kl_cdc *c;
	struct kl_key key;
	size_t *l1, *l2, n1, n2, i;
	uint8_t *copy;
	int r;

	if (size < HDR_LEN)
		return 0;
	/* both chunker variants: bit 1 of the flags byte picks one */
	p.variant = 1 + ((data[4] >> 1) & 1);
	if (data[4] & 1) {
		if (size < HDR_LEN + RAW_LEN)
			return 0;
		p.min = kl_get_le32(data + HDR_LEN);
		p.avg = kl_get_le32(data + HDR_LEN + 4);
		p.max = kl_get_le32(data + HDR_LEN + 8);
		data += HDR_LEN + RAW_LEN;
		size -= HDR_LEN + RAW_LEN;
	} else {
		p.avg = UINT32_C(1) << (7 + data[0] % 10);
		p.min = 64 + (uint32_t)(data[1] | data[2] << 8) % (p.avg - 64);
		p.max = p.avg + 1 + (uint32_t)(((uint64_t)p.avg * data[3]) >> 5);
		data += HDR_LEN;
		size -= HDR_LEN;
	}

	for (i = 0; i < sizeof(key.b); i++)
		key.b[i] = (uint8_t)i;
	c = kl_malloc(sizeof(*c));
	check(c != NULL);
	r = kl_cdc_init(c, &key, &p);
	check(r == (params_valid(&p) ? 0 : -EINVAL));
	if (r < 0) {
		kl_free(c);
		return 0;
	}

	l1 = kl_malloc((size + 1) * sizeof(size_t));
	l2 = kl_malloc((size + 1) * sizeof(size_t));
	copy = kl_malloc(size + 1);
	check(l1 && l2 && copy);
	n1 = chunk_all(c, data, size, l1, copy);
	check(size == 0 || memcmp(copy, data, size) == 0);
	n2 = chunk_all(c, data, size, l2, copy);
	check(n1 == n2 && memcmp(l1, l2, n1 * sizeof(size_t)) == 0);

	kl_free(copy);
	kl_free(l2);
	kl_free(l1);
	kl_free(c);
	return 0;
}
