/*
 * Fuzzes kl_config_decode. Oracle: accepted input re-encodes, the
 * re-encoding is a fixed point, and it decodes to the same struct.
 */
#include <stdlib.h>

#include "keel/format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool config_equal(const struct kl_config *x, const struct kl_config *y)
{
	return x->version == y->version && !memcmp(x->repo_id.b, y->repo_id.b, KL_ID_LEN) &&
	       x->cdc_min == y->cdc_min && x->cdc_avg == y->cdc_avg && x->cdc_max == y->cdc_max &&
	       x->compression_level == y->compression_level && x->pack_size == y->pack_size &&
	       x->created_ns == y->created_ns && x->has_chunker_key == y->has_chunker_key &&
	       !memcmp(x->chunker_key.b, y->chunker_key.b, KL_ID_LEN);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kl_buf a = KL_BUF_INIT(KL_BUF_MAX_DEFAULT), b = KL_BUF_INIT(KL_BUF_MAX_DEFAULT);
	struct kl_config t, u;
	int r;

	if (kl_config_decode(data, size, &t) < 0)
		return 0;
	r = kl_config_encode(&t, &a);
	if (r == -ENOMEM)
		goto out;
	if (r < 0)
		abort(); /* accepted on input but refused on output */
	r = kl_config_decode(a.data, a.len, &u);
	if (r == -ENOMEM)
		goto out;
	if (r < 0 || !config_equal(&t, &u))
		abort();
	r = kl_config_encode(&u, &b);
	if (r < 0 && r != -ENOMEM)
		abort();
	if (r == 0 && (a.len != b.len || memcmp(a.data, b.data, a.len) != 0))
		abort();
out:
	kl_buf_release(&a);
	kl_buf_release(&b);
	return 0;
}
