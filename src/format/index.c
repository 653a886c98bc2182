/*
 * Index files: which blobs live in which pack, so a reader need not fetch
 * every pack header. Each IndexPack repeats its pack's header entries
 * under the same rules (valid entries, increasing offsets, no overlap);
 * only the bound by the pack's size is missing, as the index does not
 * record it.
 */
#include "keel/format.h"
#include "pb-internal.h"

enum { F_INDEX_VERSION = 1, F_INDEX_PACKS = 2, F_INDEX_SUPERSEDES = 3 };
enum { F_IP_PACK = 1, F_IP_BLOBS = 2 };

int kl_index_file_add(struct kl_index_file *f, const struct kl_id *pack, struct kl_pack_header *h)
{
	if (kl_array_grow(&f->packs, &f->cap, f->n, sizeof(*f->packs), 16) < 0)
		return -ENOMEM;
	f->packs[f->n].pack = *pack;
	f->packs[f->n].h = *h;
	f->n++;
	memset(h, 0, sizeof(*h));
	return 0;
}

void kl_index_file_release(struct kl_index_file *f)
{
	size_t i;

	if (!f)
		return;
	for (i = 0; i < f->n; i++)
		kl_pack_header_release(&f->packs[i].h);
	kl_free(f->packs);
	kl_free(f->supersedes);
	memset(f, 0, sizeof(*f));
}

int kl_index_file_encode(const struct kl_index_file *f, struct kl_buf *out)
{
	size_t start = out->len, i, j;
	int r;

	if (f->n > KL_INDEX_MAX_PACKS || f->n_supersedes > KL_INDEX_MAX_SUPERSEDES)
		return -E2BIG;
	if ((f->n && !f->packs) || (f->n_supersedes && !f->supersedes))
		return -EINVAL;
	for (i = 0; i < f->n; i++) {
		const struct kl_pack_header *h = &f->packs[i].h;

		if (h->n > KL_PACK_MAX_BLOBS)
			return -E2BIG;
		if (!kl_blob_entries_valid(h->blobs, h->n, UINT64_MAX))
			return -EINVAL;
	}
	r = kl_pb_put_uint(out, F_INDEX_VERSION, KL_FORMAT_VERSION);
	for (i = 0; r >= 0 && i < f->n; i++) {
		const struct kl_index_pack *ip = &f->packs[i];
		size_t mark;

		r = kl_pb_begin(out, F_INDEX_PACKS, &mark);
		if (r >= 0)
			r = kl_pb_put_bytes(out, F_IP_PACK, ip->pack.b, KL_ID_LEN);
		for (j = 0; r >= 0 && j < ip->h.n; j++)
			r = kl_blob_entry_encode(&ip->h.blobs[j], F_IP_BLOBS, out);
		if (r >= 0)
			r = kl_pb_end(out, mark);
	}
	for (i = 0; r >= 0 && i < f->n_supersedes; i++)
		r = kl_pb_put_bytes(out, F_INDEX_SUPERSEDES, f->supersedes[i].b, KL_ID_LEN);
	if (r < 0) {
		kl_buf_setlen(out, start);
		return r;
	}
	return 0;
}

/* Decodes into a zeroed entry; on failure the caller releases it. */
static int index_pack_decode(const uint8_t *p, size_t n, struct kl_index_pack *ip)
{
	struct kl_pb_reader rd = {p, n};
	struct kl_pb_field f;
	struct kl_pb_scan s;
	int r;

	r = kl_pb_scan(p, n, &s);
	if (r < 0)
		return r;
	if (s.count[F_IP_PACK] != 1)
		return -KL_ECORRUPT;
	while ((r = kl_pb_next(&rd, &f)) > 0) {
		if (f.num == F_IP_PACK) {
			r = kl_pb_get_id(&f, &ip->pack);
			if (r < 0)
				return r;
		}
	}
	r = kl_blob_entries_decode(p, n, F_IP_BLOBS, s.count[F_IP_BLOBS], &ip->h);
	if (r < 0)
		return r;
	if (!kl_blob_entries_valid(ip->h.blobs, ip->h.n, UINT64_MAX))
		return -KL_ECORRUPT;
	return 0;
}

static int index_file_decode(const uint8_t *p, size_t n, struct kl_index_file *x)
{
	struct kl_pb_reader rd = {p, n};
	struct kl_pb_field f;
	struct kl_pb_scan s;
	size_t n_packs, n_sup;
	int r;

	r = kl_pb_scan(p, n, &s);
	if (r < 0)
		return r;
	r = kl_pb_check_version(&s, KL_FORMAT_VERSION);
	if (r < 0)
		return r;
	n_packs = s.count[F_INDEX_PACKS];
	n_sup = s.count[F_INDEX_SUPERSEDES];
	if (n_packs > KL_INDEX_MAX_PACKS || n_packs > n / KL_PB_MIN_PACK)
		return -KL_ECORRUPT;
	if (n_sup > KL_INDEX_MAX_SUPERSEDES || n_sup > n / KL_PB_MIN_ID)
		return -KL_ECORRUPT;
	if (n_packs) {
		x->packs = kl_calloc(n_packs, sizeof(*x->packs));
		if (!x->packs)
			return -ENOMEM;
		x->cap = n_packs;
	}
	if (n_sup) {
		x->supersedes = kl_calloc(n_sup, sizeof(*x->supersedes));
		if (!x->supersedes)
			return -ENOMEM;
	}
	while ((r = kl_pb_next(&rd, &f)) > 0) {
		switch (f.num) {
		case F_INDEX_PACKS:
			if (f.wire != KL_PB_LEN || KL_NEVER(x->n >= n_packs))
				return -KL_ECORRUPT;
			/* counted first so that release frees a half-decoded entry */
			r = index_pack_decode(f.p, f.len, &x->packs[x->n++]);
			break;
		case F_INDEX_SUPERSEDES:
			if (KL_NEVER(x->n_supersedes >= n_sup))
				return -KL_ECORRUPT;
			r = kl_pb_get_id(&f, &x->supersedes[x->n_supersedes++]);
			break;
		default:
			break; /* the version was checked by the scan */
		}
		if (r < 0)
			return r;
	}
	return r;
}

int kl_index_file_decode(const uint8_t *p, size_t n, struct kl_index_file *ret)
{
	struct kl_index_file x = {0};
	int r;

	memset(ret, 0, sizeof(*ret));
	r = index_file_decode(p, n, &x);
	if (r < 0) {
		kl_index_file_release(&x);
		return r;
	}
	*ret = x;
	return 0;
}
