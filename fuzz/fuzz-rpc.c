/*
 * Fuzzes the byte-stream protocol's parsers: a request as keel serve reads
 * it, and a LIST response as the client reads it. Oracle: an accepted
 * request encodes back to the same bytes; list entries are well-formed names.
 */
#include <stdlib.h>

#include "keel/remote.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count(const char *name, uint64_t sz, void *ud)
{
	(void)sz;
	if (!*name && sz == UINT64_MAX)
		return -1;
	(*(size_t *)ud) += strlen(name) + 1;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kl_buf b = KL_BUF_INIT(KL_BUF_MAX_DEFAULT);
	struct kl_rpc_request q;
	size_t n = 0;

	if (kl_rpc_request_parse(data, size, &q) == 0) {
		int r = kl_rpc_request_encode(&q, &b);

		if (r == 0 && (b.len != size || memcmp(b.data, data, size) != 0))
			abort();
		if (r < 0 && r != -ENOMEM)
			abort();
	}
	kl_rpc_list_parse(data, size, count, &n);
	kl_buf_release(&b);
	return 0;
}
