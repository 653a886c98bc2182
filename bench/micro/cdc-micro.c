/*
 * Micro-benchmark of kl_cdc_next: MB/s on random data and the chunk-size
 * distribution. Not built by meson (timings belong here, not in tests);
 * build it next to the library, e.g.:
 *
 *   gcc -O2 -std=gnu11 -D_GNU_SOURCE -Iinclude -Isrc bench/micro/cdc-micro.c \
 *       src/chunker/cdc.c src/util/alloc.c -lsodium -lm -o cdc-micro
 *   ./cdc-micro [MiB [min avg max]]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "keel/chunker.h"

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/*
 * Thread CPU time rather than wall time, so that other processes on a busy
 * machine do not count against the chunker.
 */
static double cpu_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
	struct kl_cdc_params p = {KL_CDC_MIN_DEFAULT, KL_CDC_AVG_DEFAULT, KL_CDC_MAX_DEFAULT};
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 256;
	size_t n = mib << 20, i, pos, len, chunks = 0, at_max = 0;
	double best = 0, sum = 0, sum2 = 0;
	struct kl_key key;
	struct kl_cdc *c;
	uint64_t s = 1;
	uint8_t *data;
	int rep;

	if (argc > 4) {
		p.min = (uint32_t)strtoul(argv[2], NULL, 0);
		p.avg = (uint32_t)strtoul(argv[3], NULL, 0);
		p.max = (uint32_t)strtoul(argv[4], NULL, 0);
	}
	for (i = 0; i < sizeof(key.b); i++)
		key.b[i] = (uint8_t)i;
	c = kl_malloc(sizeof(*c));
	data = kl_malloc(n + 8);
	if (!c || !data || kl_cdc_init(c, &key, &p) < 0) {
		fprintf(stderr, "cdc-micro: setup failed\n");
		return 1;
	}
	for (i = 0; i < n; i += 8)
		kl_put_le64(data + i, splitmix64(&s));

	for (rep = 0; rep < 5; rep++) {
		double t0 = cpu_now(), t;

		chunks = at_max = 0;
		sum = sum2 = 0;
		for (pos = 0; pos < n; pos += len) {
			len = kl_cdc_next(c, data + pos, n - pos);
			chunks++;
			at_max += len == p.max;
			sum += (double)len;
			sum2 += (double)len * (double)len;
		}
		t = cpu_now() - t0;
		if ((double)n / t > best)
			best = (double)n / t;
	}
	printf("cdc: %zu MiB, min %u avg %u max %u: best of 5 %.0f MB/s (CPU time)\n", mib, p.min,
	       p.avg, p.max, best / 1e6);
	printf("chunks %zu, mean %.0f bytes (%.3f x avg), stddev %.0f, cut at max %zu\n", chunks,
	       sum / (double)chunks, sum / (double)chunks / p.avg,
	       sqrt(sum2 / (double)chunks - (sum / (double)chunks) * (sum / (double)chunks)),
	       at_max);
	kl_free(data);
	kl_free(c);
	return 0;
}
