/*
 * Fuzzes kl_tree_decode. Oracle: whatever the decoder accepts, the
 * encoder must accept, and its bytes must be a fixed point: decoding and
 * encoding them again gives the same bytes. Tree blobs are deduplicated
 * by their bytes, so a second encoding that differs is a bug even when
 * both decode to the same tree. A head's continuation ids are encoded
 * back with it.
 *
 * Second oracle, for continuations: an accepted plain tree split into a
 * head and one part, decoded and joined again, encodes to the same bytes
 * as the tree itself.
 */
#include <stdlib.h>

#include "keel/format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Splits t after node k, reads it back with kl_tree_join, compares with want. */
static void split_and_join(const struct kl_tree *t, size_t k, const struct kl_buf *want)
{
	struct kl_buf h = KL_BUF_INIT(KL_BUF_MAX_DEFAULT), p = KL_BUF_INIT(KL_BUF_MAX_DEFAULT),
		      j = KL_BUF_INIT(KL_BUF_MAX_DEFAULT);
	struct kl_id more = {{0}};
	struct kl_tree head = {0}, part = {0};
	int r;

	r = kl_tree_encode_part(t, 0, k, &more, 1, &h);
	if (r >= 0)
		r = kl_tree_encode_part(t, k, t->n, NULL, 0, &p);
	if (r >= 0)
		r = kl_tree_decode(h.data, h.len, &head);
	if (r >= 0)
		r = kl_tree_decode(p.data, p.len, &part);
	if (r >= 0 && head.n_more != 1)
		abort();
	if (r >= 0)
		r = kl_tree_join(&head, &part);
	if (r >= 0)
		r = kl_tree_encode(&head, &j);
	if (r < 0 && r != -ENOMEM)
		abort();
	if (r >= 0 && (j.len != want->len || memcmp(j.data, want->data, j.len) != 0))
		abort();
	kl_tree_release(&head);
	kl_tree_release(&part);
	kl_buf_release(&h);
	kl_buf_release(&p);
	kl_buf_release(&j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kl_buf a = KL_BUF_INIT(KL_BUF_MAX_DEFAULT), b = KL_BUF_INIT(KL_BUF_MAX_DEFAULT);
	struct kl_tree t, u;
	int r;

	if (kl_tree_decode(data, size, &t) < 0)
		return 0;
	r = kl_tree_encode_part(&t, 0, t.n, t.more, t.n_more, &a);
	if (r == -ENOMEM)
		goto out;
	if (r < 0)
		abort(); /* accepted on input but refused on output */
	r = kl_tree_decode(a.data, a.len, &u);
	if (r == -ENOMEM)
		goto out;
	if (r < 0)
		abort();
	r = kl_tree_encode_part(&u, 0, u.n, u.more, u.n_more, &b);
	if (r < 0 && r != -ENOMEM)
		abort();
	if (r == 0 && (a.len != b.len || memcmp(a.data, b.data, a.len) != 0))
		abort();
	kl_tree_release(&u);
	if (t.n >= 2 && !t.n_more)
		split_and_join(&t, 1 + size % (t.n - 1), &a);
out:
	kl_tree_release(&t);
	kl_buf_release(&a);
	kl_buf_release(&b);
	return 0;
}
