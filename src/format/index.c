/*
 * Index files: which blobs live in which pack, so a reader need not fetch
 * every pack header. Each IndexPack repeats its pack's header entries
 * under the same rules (valid entries, increasing offsets, no overlap);
 * only the bound by the pack's size is missing, as the index does not
 * record it.
 */
#include "keel/format.h"
#include "format-internal.h"

enum {
	F_INDEX_VERSION = 1,
	F_INDEX_PACKS = 2,
	F_INDEX_SUPERSEDES = 3,
	F_INDEX_DELETING = 4,
	F_INDEX_WAIT_FOR = 5,
	F_INDEX_WAIT_FOR_KNOWN = 6,
	F_INDEX_TIME_NS = 7,
};
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
	kl_free(f->wait_for);
	memset(f, 0, sizeof(*f));
}

int kl_index_file_encode(const struct kl_index_file *f, struct kl_buf *out)
{
	size_t start = out->len, i, j;
	int r;

	if (f->n > KL_INDEX_MAX_PACKS || f->n_supersedes > KL_INDEX_MAX_SUPERSEDES ||
	    f->n_wait_for > KL_INDEX_MAX_SUPERSEDES)
		return -E2BIG;
	if ((f->n && !f->packs) || (f->n_supersedes && !f->supersedes) ||
	    (f->n_wait_for && !f->wait_for))
		return -EINVAL;
	/* lock sessions only mean something for a deletion record that lists them */
	if (!f->deleting && (f->n_wait_for || f->wait_for_known))
		return -EINVAL;
	if (!f->wait_for_known && f->n_wait_for)
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
	if (r >= 0)
		r = kl_pb_put_uint_nz(out, F_INDEX_DELETING, f->deleting);
	for (i = 0; r >= 0 && i < f->n_wait_for; i++)
		r = kl_pb_put_bytes(out, F_INDEX_WAIT_FOR, f->wait_for[i].b, KL_ID_LEN);
	if (r >= 0)
		r = kl_pb_put_uint_nz(out, F_INDEX_WAIT_FOR_KNOWN, f->wait_for_known);
	if (r >= 0)
		r = kl_pb_put_sint_nz(out, F_INDEX_TIME_NS, f->time_ns);
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
	size_t n_packs, n_sup, n_wait;
	uint64_t seen = 0;
	int r;

	r = kl_pb_scan(p, n, &s);
	if (r < 0)
		return r;
	r = kl_pb_check_version(&s, KL_FORMAT_VERSION);
	if (r < 0)
		return r;
	n_packs = s.count[F_INDEX_PACKS];
	n_sup = s.count[F_INDEX_SUPERSEDES];
	n_wait = s.count[F_INDEX_WAIT_FOR];
	if (n_packs > KL_INDEX_MAX_PACKS || n_packs > n / KL_PB_MIN_PACK)
		return -KL_ECORRUPT;
	if (n_sup > KL_INDEX_MAX_SUPERSEDES || n_sup > n / KL_PB_MIN_ID)
		return -KL_ECORRUPT;
	if (n_wait > KL_INDEX_MAX_SUPERSEDES || n_wait > n / KL_PB_MIN_ID)
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
	if (n_wait) {
		x->wait_for = kl_calloc(n_wait, sizeof(*x->wait_for));
		if (!x->wait_for)
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
		case F_INDEX_WAIT_FOR:
			if (KL_NEVER(x->n_wait_for >= n_wait))
				return -KL_ECORRUPT;
			r = kl_pb_get_id(&f, &x->wait_for[x->n_wait_for++]);
			break;
		case F_INDEX_DELETING:
		case F_INDEX_WAIT_FOR_KNOWN:
		case F_INDEX_TIME_NS:
			r = kl_pb_once(&seen, f.num);
			if (r < 0)
				break;
			if (f.num == F_INDEX_DELETING)
				r = kl_pb_get_bool(&f, &x->deleting);
			else if (f.num == F_INDEX_WAIT_FOR_KNOWN)
				r = kl_pb_get_bool(&f, &x->wait_for_known);
			else
				r = kl_pb_get_s64(&f, &x->time_ns);
			break;
		default:
			break; /* the version was checked by the scan */
		}
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	if (!x->deleting && (x->n_wait_for || x->wait_for_known))
		return -KL_ECORRUPT;
	if (!x->wait_for_known && x->n_wait_for)
		return -KL_ECORRUPT;
	return 0;
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
