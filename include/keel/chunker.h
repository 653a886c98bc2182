/*
 * Content-defined chunking (FastCDC with normalized chunking). The gear
 * table is derived from the repository's chunker key, so chunk boundaries,
 * and therefore chunk sizes, reveal nothing about content to someone
 * without the key.
 */
#ifndef KEEL_CHUNKER_H
#define KEEL_CHUNKER_H

#include <stddef.h>
#include <stdint.h>

#include "keel/crypto.h"

struct kl_cdc_params {
	uint32_t min; /* no cut before min bytes */
	uint32_t avg; /* power of two */
	uint32_t max; /* always cut at max */
	/*
	 * 0 or 1: the gear table as derived from the key; 2: its entry for
	 * byte 0 is changed so that every all-zero window is a cut, and runs
	 * of zeros (disk images, preallocated files) become chunks of min
	 * bytes that deduplicate (docs/FORMAT.md section 10).
	 */
	uint32_t variant;
};
#define KL_CDC_VARIANT_DEFAULT 2 /* for new repositories */
#define KL_CDC_VARIANT_MAX 2
#define KL_CDC_MIN_DEFAULT (256u << 10)
#define KL_CDC_AVG_DEFAULT (1u << 20)
#define KL_CDC_MAX_DEFAULT (4u << 20)

struct kl_cdc {
	uint64_t gear[256];
	uint64_t mask_s; /* harder mask, used before avg */
	uint64_t mask_l; /* easier mask, used after avg */
	uint32_t min, avg, max;
};

/* Returns 0 or -EINVAL for params that are out of range (min < 64, min >= avg, avg >= max, max > 64
 * MiB, avg not a power of two, variant > KL_CDC_VARIANT_MAX). */
int kl_cdc_init(struct kl_cdc *c, const struct kl_key *chunker_key, const struct kl_cdc_params *p);

/*
 * Length of the next chunk in data[0..n). If n <= min, returns n. The
 * caller passes at least max bytes unless at the end of the stream, and
 * then cuts data at the returned length. Stateless: the same bytes give
 * the same cuts wherever they are in a stream.
 */
size_t kl_cdc_next(const struct kl_cdc *c, const uint8_t *data, size_t n);

#endif
