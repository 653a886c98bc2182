/*
 * Fuzzes kl_mirror_state_decode. Oracle: whatever the decoder accepts, the
 * encoder must accept, and its bytes must be a fixed point.
 */
#include <stdlib.h>

#include "keel/format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kl_buf a = KL_BUF_INIT(KL_BUF_MAX_DEFAULT), b = KL_BUF_INIT(KL_BUF_MAX_DEFAULT);
	struct kl_mirror_state t, u;
	int r;

	if (kl_mirror_state_decode(data, size, &t) < 0)
		return 0;
	r = kl_mirror_state_encode(&t, &a);
	if (r == -ENOMEM)
		goto out;
	if (r < 0)
		abort(); /* accepted on input but refused on output */
	r = kl_mirror_state_decode(a.data, a.len, &u);
	if (r == -ENOMEM)
		goto out;
	if (r < 0)
		abort();
	r = kl_mirror_state_encode(&u, &b);
	if (r < 0 && r != -ENOMEM)
		abort();
	if (r == 0 && (a.len != b.len || memcmp(a.data, b.data, a.len) != 0))
		abort();
	kl_mirror_state_release(&u);
out:
	kl_mirror_state_release(&t);
	kl_buf_release(&a);
	kl_buf_release(&b);
	return 0;
}
