/*
 * check's pass 3, with read_data: choosing the packs to read and reading
 * them whole on worker threads, every blob opened.
 */
#include "check-internal.h"

struct rank {
	uint64_t key;
	uint32_t idx;
};

static int rank_cmp(const void *a, const void *b)
{
	const struct rank *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Group 1..m of pack id: its first 8 bytes (a SHA-256, so uniform) modulo m. */
static unsigned pack_group(const struct kl_id *id, unsigned m)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | id->b[i];
	return (unsigned)(v % m) + 1;
}

/*
 * Chooses the packs to read: every indexed pack that exists; or with
 * subset n/m, those of group n; or with 0 < subset_permille < 1000, that
 * share of them (rounded up, at least one), ranked by SHA-256(seed | pack
 * id) for a uniform sample.
 */
static int select_packs(struct check *c, const uint8_t seed[static 16])
{
	unsigned pm = c->o->subset_permille, sn = c->o->subset_n, sm = c->o->subset_m;
	size_t n = 0;

	c->sel = kl_calloc(c->packs.n ? c->packs.n : 1, sizeof(*c->sel));
	if (!c->sel)
		return -ENOMEM;
	for (uint32_t k = 0; k < c->packs.n; k++) {
		if ((c->packs.v[k].flags & (P_PRESENT | P_INDEXED)) != (P_PRESENT | P_INDEXED))
			continue;
		if (sm && pack_group(&c->packs.v[k].id, sm) != sn)
			continue;
		c->sel[n++] = k;
	}
	if (!sm && pm && pm < 1000 && n) {
		size_t want = (size_t)(((uint64_t)n * pm + 999) / 1000);
		struct rank *rk = kl_calloc(n, sizeof(*rk));

		if (!rk)
			return -ENOMEM;
		for (size_t i = 0; i < n; i++) {
			uint8_t in[16 + KL_ID_LEN];
			struct kl_id h;

			memcpy(in, seed, 16);
			memcpy(in + 16, c->packs.v[c->sel[i]].id.b, KL_ID_LEN);
			kl_sha256(in, sizeof(in), &h);
			memcpy(&rk[i].key, h.b, sizeof(rk[i].key));
			rk[i].idx = c->sel[i];
		}
		qsort(rk, n, sizeof(*rk), rank_cmp);
		n = KL_MAX(want, (size_t)1);
		for (size_t i = 0; i < n; i++)
			c->sel[i] = rk[i].idx;
		kl_free(rk);
		qsort(c->sel, n, sizeof(*c->sel), u32_cmp);
	}
	c->n_sel = n;
	return 0;
}

/* A blob of pack idx failed to open. c->lock held. */
static void blob_damaged(struct check *c, uint32_t idx, const struct kl_blob_entry *e, int err,
			 const char *why)
{
	struct blob *b = kl_ck_blob_find(&c->blobs, e->id.b);
	bool in_use = b && (b->flags & B_LOCATED) && b->pack == idx && b->offset == e->offset;
	char obj[80], phex[2 * KL_ID_LEN + 1];
	struct problem *p;
	uint32_t pr;

	if (in_use && (b->flags & B_BAD)) {
		/* already blamed on its pack, which is now known to be damaged */
		p = kl_ck_problem_get(c, b->problem);
		if (p)
			p->maybe = false;
		return;
	}
	kl_ck_blob_obj(e->id.b, obj);
	kl_id_hex(&c->packs.v[idx].id, phex);
	pr = kl_ck_problem_add(c, C_BLOB, err, false, obj, "damaged in pack %.16s (%s)%s", phex,
			       why, in_use ? "" : "; readers use another copy");
	p = kl_ck_problem_get(c, pr);
	if (p && in_use) {
		p->attrib = true;
		b->flags |= B_BAD;
		b->problem = pr;
	}
}

/* A blob of pack idx, whose header is bad, opened fine. c->lock held. */
static void blob_intact(struct check *c, uint32_t idx, const struct kl_blob_entry *e)
{
	struct blob *b = kl_ck_blob_find(&c->blobs, e->id.b);

	if (b && (b->flags & B_LOCATED) && (b->flags & B_BAD) && b->pack == idx &&
	    b->offset == e->offset && b->problem == c->packs.v[idx].problem) {
		b->flags &= ~B_BAD;
		b->problem = 0;
	}
}

/* The whole pack is unusable: every blob in it is bad. c->lock held. */
static void pack_unusable(struct check *c, uint32_t idx, int err, const char *what, const char *why)
{
	struct pack *p = &c->packs.v[idx];
	struct problem *pr;
	char obj[80];

	p->flags |= P_ALL_BAD;
	if (!p->problem) {
		kl_ck_pack_obj(c, idx, obj);
		p->problem = kl_ck_problem_add(c, C_PACK, err, false, obj, "%s (%s)", what, why);
	}
	pr = kl_ck_problem_get(c, p->problem);
	if (pr) {
		pr->attrib = true;
		pr->maybe = false;
		pr->pack = idx + 1;
	}
}

/* Reads pack idx whole and opens every blob in it. Returns < 0 only to stop the check. */
static int verify_pack(struct check *c, uint32_t idx, struct kl_buf *pk, struct kl_buf *plain)
{
	struct kl_repo *r = c->r;
	struct pack *p = &c->packs.v[idx]; /* c->packs does not grow during this pass */
	struct kl_pack_header h = {0};
	const struct kl_blob_entry *ents = NULL;
	size_t n_ents = 0, n_bad = 0, need = 0;
	char hex[2 * KL_ID_LEN + 1];
	const char *why = NULL;
	struct kl_id got;
	bool hash_ok = false, hdr_bad = p->flags & P_HDR_BAD;
	int rc;

	kl_id_hex(&p->id, hex);
	kl_buf_clear(pk);
	rc = kl_repo_get_raw(r, KL_OBJ_DATA, hex, 0, 0, pk);
	if (rc == -ENOMEM)
		return rc;
	if (rc >= 0) {
		kl_sha256(pk->data, pk->len, &got);
		hash_ok = kl_id_eq(&got, &p->id);
		if (hdr_bad) {
			/* the index's view: what readers would open */
			ents = p->saved.blobs;
			n_ents = p->saved.n;
		} else {
			rc = kl_ck_parse_tail(r, pk->data, pk->len, pk->len, &h, &why, &need);
			if (rc == -ENOMEM)
				return rc;
			if (KL_NEVER(rc > 0))
				rc = -KL_ECORRUPT;
			ents = h.blobs;
			n_ents = h.n;
		}
	}
	if (rc < 0) {
		pthread_mutex_lock(&c->lock);
		/* condemned, so a prune may delete it while we run (index_pack): no damage */
		if (rc == -ENOENT && !(p->flags & P_NAMED_LIVE))
			p->flags &= ~P_PRESENT;
		else if (why)
			pack_unusable(c, idx, rc, "damaged", why);
		else
			pack_unusable(c, idx, rc, "unreadable",
				      rc == -ENOENT ? "removed while check ran" : kl_strerror(rc));
		goto done;
	}
	for (size_t i = 0; i < n_ents; i++) {
		const struct kl_blob_entry *e = &ents[i];

		if ((uint64_t)e->offset + e->length > pk->len) {
			rc = -KL_ECORRUPT;
			why = "beyond the end of the pack";
		} else {
			rc = kl_repo_open_blob(r, e, pk->data + e->offset, plain);
			if (rc == -ENOMEM) {
				kl_pack_header_release(&h);
				return rc;
			}
			if (rc < 0)
				why = kl_ck_blob_reason(c, e, pk->data + e->offset);
		}
		if (rc >= 0 && !hdr_bad)
			continue;
		pthread_mutex_lock(&c->lock);
		if (rc < 0) {
			n_bad++;
			blob_damaged(c, idx, e, rc, why);
		} else {
			blob_intact(c, idx, e);
		}
		pthread_mutex_unlock(&c->lock);
	}
	pthread_mutex_lock(&c->lock);
	p->flags |= P_READ;
	p->n_bad = (uint32_t)KL_MIN(n_bad, (size_t)UINT32_MAX);
	if (p->problem)
		kl_ck_problem_get(c, p->problem)->maybe = false;
	/* a disagreement may turn out harmless (check-report.c): not so a changed byte */
	if (!hash_ok && (!p->problem || kl_ck_problem_get(c, p->problem)->disagree)) {
		char obj[80];

		kl_ck_pack_obj(c, idx, obj);
		kl_ck_problem_add(c, C_PACK, -KL_ECORRUPT, false, obj,
				  "content does not match its name (%zu of %zu blobs damaged)",
				  n_bad, n_ents);
	}
done:
	c->res->packs_read++;
	c->res->bytes_read += pk->len;
	c->prog.files_done++;
	c->prog.bytes_done += p->size;
	kl_ck_progress(c, hex, false);
	rc = c->fatal;
	pthread_mutex_unlock(&c->lock);
	kl_pack_header_release(&h);
	return rc;
}

struct worker {
	struct check *c;
	pthread_t t;
};

static void *data_worker(void *arg)
{
	struct worker *w = arg;
	struct check *c = w->c;
	struct kl_buf pk = KL_BUF_INIT(PACK_MAX);
	struct kl_buf plain = KL_BUF_INIT(TREE_MAX);

	for (;;) {
		uint32_t idx;
		int rc;

		pthread_mutex_lock(&c->lock);
		if (!c->fatal)
			c->fatal = kl_repo_cancelled(c->r); /* SIGINT, SIGTERM */
		if (c->fatal || c->next >= c->n_sel) {
			pthread_mutex_unlock(&c->lock);
			break;
		}
		idx = c->sel[c->next++];
		pthread_mutex_unlock(&c->lock);
		rc = verify_pack(c, idx, &pk, &plain);
		if (rc < 0) {
			pthread_mutex_lock(&c->lock);
			if (!c->fatal)
				c->fatal = rc;
			pthread_mutex_unlock(&c->lock);
			break;
		}
	}
	kl_buf_release(&pk);
	kl_buf_release(&plain);
	return NULL;
}

int kl_ck_data_pass(struct check *c)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned nt = c->o->threads;
	struct worker *w;
	uint8_t seed[16];
	size_t started = 0;
	int rc;

	if (c->o->has_seed)
		memcpy(seed, c->o->seed, sizeof(seed));
	else
		kl_random(seed, sizeof(seed));
	memcpy(c->res->seed, seed, sizeof(seed));
	rc = select_packs(c, seed);
	if (rc < 0 || !c->n_sel)
		return rc;
	if (!nt) /* one per core; two even on one core, to overlap reading and hashing */
		nt = ncpu > 1 ? (unsigned)KL_MIN(ncpu, (long)MAX_THREADS) : 2;
	memset(&c->prog, 0, sizeof(c->prog));
	c->prog.files_total = c->n_sel;
	for (size_t i = 0; i < c->n_sel; i++)
		c->prog.bytes_total += c->packs.v[c->sel[i]].size;
	nt = (unsigned)KL_MIN(KL_MIN(nt, (unsigned)MAX_THREADS), c->n_sel);
	w = kl_calloc(nt, sizeof(*w));
	if (!w)
		return -ENOMEM;
	for (unsigned i = 0; nt > 1 && i < nt; i++) {
		w[i].c = c;
		if (pthread_create(&w[i].t, NULL, data_worker, &w[i]) != 0)
			break;
		started++;
	}
	if (!started) {
		w[0].c = c;
		data_worker(&w[0]); /* one thread asked for, or none could start */
	}
	for (size_t i = 0; i < started; i++)
		pthread_join(w[i].t, NULL);
	kl_free(w);
	kl_ck_progress(c, NULL, true);
	if (c->fatal)
		return c->fatal;
	/* a pack that could not be used at all takes all its blobs with it */
	for (size_t i = 0; i < c->blobs.cap; i++) {
		struct blob *b = &c->blobs.v[i];

		if ((b->flags & B_LOCATED) && !(b->flags & B_BAD) &&
		    (c->packs.v[b->pack].flags & P_ALL_BAD)) {
			b->flags |= B_BAD;
			b->problem = c->packs.v[b->pack].problem;
		}
	}
	return 0;
}
