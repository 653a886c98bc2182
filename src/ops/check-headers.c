/*
 * check's pack headers: reading one with a small read at a pack's end,
 * and comparing it with an index file's entries for the pack.
 */
#include "check-internal.h"

/*
 * Parses the header at the end of a pack of size bytes from its last n
 * bytes: sealed header, then its length (u32 LE). Returns 0; 1 with *need
 * set when more of the tail is needed; -KL_ECORRUPT with *why set.
 */
int kl_ck_parse_tail(struct kl_repo *r, const uint8_t *p, size_t n, uint64_t size,
		     struct kl_pack_header *h, const char **why, size_t *need)
{
	_cleanup_buf_ struct kl_buf pt = KL_BUF_INIT(PACK_MAX);
	struct kl_pack_trailer tr;
	int rc;

	memset(h, 0, sizeof(*h));
	rc = kl_pack_trailer_parse(p, n, size, &tr);
	if (rc < 0) {
		*why = tr.why;
		return rc;
	}
	if (tr.tail_len > n) {
		*need = (size_t)tr.tail_len;
		return 1;
	}
	rc = kl_open(&kl_repo_keys(r)->enc, KL_KIND_PACK_HEADER, NULL, 0, p + n - tr.tail_len,
		     tr.header_len, &pt);
	if (rc == -ENOMEM)
		return rc;
	if (rc < 0) {
		*why = "header authentication failed";
		return -KL_ECORRUPT;
	}
	rc = kl_pack_header_decode(pt.data, pt.len, tr.header_off, h);
	if (rc == -ENOMEM)
		return rc;
	if (rc < 0) {
		*why = "header does not decode";
		return -KL_ECORRUPT;
	}
	return 0;
}

/*
 * Reads pack idx's header with one small read at its end (two when the
 * header is large). Returns 0, -ENOMEM, or another negative code with *why.
 */
int kl_ck_fetch_header(struct check *c, uint32_t idx, struct kl_pack_header *h, const char **why)
{
	const struct pack *p = &c->packs.v[idx];
	_cleanup_buf_ struct kl_buf tail = KL_BUF_INIT(PACK_MAX);
	char hex[2 * KL_ID_LEN + 1];
	size_t want, need = 0;
	int rc;

	memset(h, 0, sizeof(*h));
	if (p->size < KL_PACK_MIN_SIZE) {
		*why = "too short to be a pack";
		return -KL_ECORRUPT;
	}
	if (p->size > PACK_MAX) {
		*why = "larger than any pack keel writes";
		return -KL_ECORRUPT;
	}
	kl_id_hex(&p->id, hex);
	want = (size_t)KL_MIN(p->size, (uint64_t)HEADER_TAIL);
	for (int round = 0; round < 2; round++) {
		kl_buf_clear(&tail);
		rc = kl_repo_get_raw(c->r, KL_OBJ_DATA, hex, p->size - want, want, &tail);
		if (rc == -ENOMEM)
			return rc;
		if (rc == -KL_ECORRUPT || (rc >= 0 && tail.len != want)) {
			*why = "shorter than listed";
			return -KL_ECORRUPT;
		}
		if (rc < 0) {
			*why = rc == -ENOENT ? "removed while check ran" : kl_strerror(rc);
			return rc;
		}
		rc = kl_ck_parse_tail(c->r, tail.data, tail.len, p->size, h, why, &need);
		if (rc <= 0)
			return rc;
		want = need;
	}
	*why = "header length changed while check ran";
	return -KL_ECORRUPT;
}

static bool entry_eq(const struct kl_blob_entry *a, const struct kl_blob_entry *b)
{
	return kl_id_eq(&a->id, &b->id) && a->type == b->type && a->compression == b->compression &&
	       a->offset == b->offset && a->length == b->length && a->raw_length == b->raw_length;
}

/*
 * Counts the index entries that differ from the header's; with pr, marks
 * the blobs of the differing index entries bad. Both lists are sorted by
 * offset (their decoders require it). A header entry the index leaves out
 * is no difference: an index lists one copy of a blob stored in several
 * packs (docs/FORMAT.md section 5), and the others are unused space that
 * prune reclaims when it repacks. What readers would get wrong is an index
 * entry that is not the header's.
 */
static size_t compare_entries(struct check *c, uint32_t idx, const struct kl_pack_header *ie,
			      const struct kl_pack_header *h, uint32_t pr)
{
	size_t i = 0, j = 0, n = 0;

	while (i < ie->n || j < h->n) {
		const struct kl_blob_entry *a = i < ie->n ? &ie->blobs[i] : NULL;
		const struct kl_blob_entry *b = j < h->n ? &h->blobs[j] : NULL;

		if (a && (!b || a->offset < b->offset)) {
			n++; /* only in the index */
			if (pr)
				kl_ck_mark_entry(c, idx, a, pr);
			i++;
		} else if (!a || b->offset < a->offset) {
			j++; /* only in the pack: a copy the index does not use */
		} else {
			if (!entry_eq(a, b)) {
				n++;
				if (pr)
					kl_ck_mark_entry(c, idx, a, pr);
			}
			i++;
			j++;
		}
	}
	return n;
}

/*
 * Pack idx has a damaged header, or one an index disagrees with: record
 * the problem (once per pack), keep the index's entries for the data
 * pass, and mark the blobs (all: all of the index's, else the differing).
 */
static int header_bad(struct check *c, uint32_t idx, const struct kl_pack_header *ie,
		      const struct kl_pack_header *h, int err, const char *why)
{
	struct pack *p = &c->packs.v[idx];
	struct problem *pr;
	char obj[80];

	p->flags |= P_HDR_BAD;
	if (!p->problem) {
		kl_ck_pack_obj(c, idx, obj);
		p->problem = kl_ck_problem_add(c, C_PACK, err, false, obj, "%s", why);
		pr = kl_ck_problem_get(c, p->problem);
		if (!pr)
			return c->fatal;
		pr->attrib = true;
		pr->maybe = true; /* until its blobs are read */
		pr->pack = idx + 1;
		pr->disagree = h != NULL;
	}
	for (size_t i = 0; i < ie->n; i++) {
		int rc = kl_pack_header_add(&p->saved, &ie->blobs[i]);

		if (rc < 0)
			return rc;
	}
	if (!h) {
		for (size_t i = 0; i < ie->n; i++)
			kl_ck_mark_entry(c, idx, &ie->blobs[i], p->problem);
	} else {
		compare_entries(c, idx, ie, h, p->problem);
	}
	return 0;
}

/*
 * The header's blobs that no index file has named so far are located in
 * pack idx as if it were unindexed (B_ORPHAN), so that a snapshot that
 * needs one hears where it is; an index file read later that names it
 * takes it over. Returns 0 or -ENOMEM.
 */
static int locate_unlisted(struct check *c, uint32_t idx, const struct kl_pack_header *h)
{
	for (size_t j = 0; j < h->n; j++) {
		struct blob *b;
		int rc = kl_ck_blob_insert(&c->blobs, h->blobs[j].id.b, &b);

		if (rc < 0)
			return rc;
		if (!rc)
			continue;
		b->flags |= B_ORPHAN;
		kl_ck_blob_locate(b, idx, &h->blobs[j]);
	}
	return 0;
}

/*
 * Compares pack idx's header, as kl_ck_fetch_header() returned it (rc, h, why),
 * with an index file's entries for it.
 */
int kl_ck_check_header(struct check *c, uint32_t idx, const char *fname,
		       const struct kl_pack_header *ie, int rc, const struct kl_pack_header *h,
		       const char *why)
{
	char msg[256];
	size_t n;

	if (rc < 0) {
		snprintf(msg, sizeof(msg), "%s (%s)", rc == -KL_ECORRUPT ? "damaged" : "unreadable",
			 why);
		return header_bad(c, idx, ie, NULL, rc, msg);
	}
	rc = locate_unlisted(c, idx, h);
	if (rc < 0)
		return rc;
	n = compare_entries(c, idx, ie, h, 0);
	if (!n)
		return 0;
	snprintf(msg, sizeof(msg), "index %.16s disagrees with the pack header (%zu %s)", fname, n,
		 n == 1 ? "entry differs" : "entries differ");
	return header_bad(c, idx, ie, h, -KL_ECORRUPT, msg);
}
