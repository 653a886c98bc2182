/*
 * Filling the blob index from the repository: reading every index file
 * (and the deletion records among them), applying the reader rules of
 * docs/FORMAT.md section 5 (deletion records, superseded files),
 * refreshing with the files that appeared since, adopting packs no index
 * file names, and writing the index file for the packs written here.
 */
#include <pthread.h>
#include <stdlib.h>

#include "index-internal.h"

static int push_id(struct kl_id **v, size_t *n, size_t *cap, const struct kl_id *id)
{
	if (kl_array_grow(v, cap, *n, sizeof(**v), 16) < 0)
		return -ENOMEM;
	(*v)[(*n)++] = *id;
	return 0;
}

int kl_repo_put_index_file(struct kl_repo *r, const struct kl_index_file *f, struct kl_id *ret)
{
	_cleanup_buf_ struct kl_buf enc = KL_BUF_INIT(1u << 30);
	int rc;

	rc = kl_index_file_encode(f, &enc);
	if (rc < 0)
		return rc;
	return kl_repo_put_object(r, KL_OBJ_INDEX, KL_KIND_INDEX, enc.data, enc.len, ret);
}

int kl_repo_get_index_file(struct kl_repo *r, const struct kl_id *id, struct kl_index_file *ret)
{
	_cleanup_buf_ struct kl_buf raw = KL_BUF_INIT(1u << 30);
	char hex[2 * KL_ID_LEN + 1];
	int rc;

	kl_id_hex(id, hex);
	memset(ret, 0, sizeof(*ret));
	rc = kl_repo_get_object(r, KL_OBJ_INDEX, KL_KIND_INDEX, hex, &raw);
	if (rc < 0)
		return rc;
	return kl_index_file_decode(raw.data, raw.len, ret);
}

static int cmp_id(const void *a, const void *b)
{
	return memcmp(a, b, KL_ID_LEN);
}

struct load_ctx {
	struct kl_repo *r;
	size_t files;
};

static int load_one(const char *name, uint64_t size, void *ud)
{
	struct load_ctx *c = ud;
	struct kl_index *x = c->r->idx;
	_cleanup_buf_ struct kl_buf raw = KL_BUF_INIT(1u << 30);
	struct kl_index_file f = {0};
	struct kl_id fid;
	uint32_t file;
	int rc;

	if (kl_id_parse(name, &fid) < 0)
		return 0; /* not ours */
	rc = kl_repo_get_object(c->r, KL_OBJ_INDEX, KL_KIND_INDEX, name, &raw);
	if (rc == -KL_ENOTFOUND)
		return -EAGAIN; /* a prune replaced it after we listed: list again */
	if (rc >= 0)
		rc = kl_index_file_decode(raw.data, raw.len, &f);
	if (rc == -KL_ECORRUPT) {
		c->r->bad_index_files++;
		kl_index_file_release(&f);
		return 0;
	}
	if (rc < 0)
		return kl_repo_fail(c->r, rc, "index file '%s' is unreadable", name);
	pthread_mutex_lock(&x->lock);
	file = f.deleting ? NO_FILE : (uint32_t)x->n_files;
	if (f.deleting)
		rc = push_id(&x->records, &x->n_records, &x->cap_records, &fid);
	else
		rc = push_id(&x->files, &x->n_files, &x->cap_files, &fid);
	for (size_t i = 0; rc >= 0 && f.deleting && i < f.n; i++)
		rc = push_id(&x->deleting, &x->n_deleting, &x->cap_deleting, &f.packs[i].pack);
	for (size_t i = 0; rc >= 0 && i < f.n_supersedes; i++)
		rc = push_id(&x->superseded, &x->n_superseded, &x->cap_superseded,
			     &f.supersedes[i]);
	pthread_mutex_unlock(&x->lock);
	for (size_t i = 0; rc >= 0 && i < f.n; i++)
		rc = kl_index_add_(c->r, &f.packs[i].pack, &f.packs[i].h,
				   f.deleting ? KL_INDEX_DELETING : 0, file);
	kl_index_file_release(&f);
	c->files++;
	return rc;
}

struct pack_ref {
	struct kl_id id;
	uint32_t entry;
	bool live;
};

static int cmp_pack_ref(const void *a, const void *b)
{
	return memcmp(a, b, KL_ID_LEN);
}

/*
 * Marks in dead[] the pack entries whose pack no live index file lists. An
 * index file that another one supersedes may outlive its successor's
 * writing (a crash, or storage that keeps it under retention): it only
 * repeats what its successor lists, except for packs that were condemned
 * since, and those may be gone. So a pack that only superseded files (or
 * deletion records) list is deleting. Returns 0, or -ENOMEM.
 */
static int mark_superseded(struct kl_index *x, uint8_t *dead)
{
	struct pack_ref *v;
	bool *gone, any = false;

	if (!x->n_superseded || !x->n_files)
		return 0;
	qsort(x->superseded, x->n_superseded, sizeof(struct kl_id), cmp_id);
	gone = kl_calloc(x->n_files, sizeof(*gone));
	if (!gone)
		return -ENOMEM;
	for (size_t i = 0; i < x->n_files; i++) {
		gone[i] = bsearch(&x->files[i], x->superseded, x->n_superseded,
				  sizeof(struct kl_id), cmp_id) != NULL;
		any |= gone[i];
	}
	if (!any) {
		kl_free(gone);
		return 0;
	}
	v = kl_calloc(x->n_packs ? x->n_packs : 1, sizeof(*v));
	if (!v) {
		kl_free(gone);
		return -ENOMEM;
	}
	for (size_t p = 0; p < x->n_packs; p++) {
		uint32_t f = x->pack_file[p];

		v[p].id = x->packs[p];
		v[p].entry = (uint32_t)p;
		/* NO_FILE: written here, or a deletion record's (which marks it anyway) */
		v[p].live = f == NO_FILE ? true : !gone[f];
	}
	qsort(v, x->n_packs, sizeof(*v), cmp_pack_ref);
	/* a pack is live if any entry for it is */
	for (size_t i = 0, j; i < x->n_packs; i = j) {
		bool live = false;

		for (j = i; j < x->n_packs && kl_id_eq(&v[j].id, &v[i].id); j++)
			live |= v[j].live;
		for (size_t k = i; !live && k < j; k++)
			dead[v[k].entry] = 1;
	}
	kl_free(v);
	kl_free(gone);
	return 0;
}

/*
 * Applies the reader rules of docs/FORMAT.md section 5 once every index
 * file is read, whatever order they were read in: a pack a deletion record
 * names, or that only superseded files list, is deleting; a blob whose
 * slot holds a copy in such a pack takes a live copy if loading met one
 * (a live copy always wins). Lock held.
 */
static int apply_rules(struct kl_index *x)
{
	uint8_t *dead;
	size_t w = 0;
	int rc;

	if (!x->n_deleting && !x->n_superseded)
		return 0;
	dead = kl_calloc(x->n_packs ? x->n_packs : 1, 1);
	if (!dead)
		return -ENOMEM;
	if (x->n_deleting) {
		qsort(x->deleting, x->n_deleting, sizeof(struct kl_id), cmp_id);
		for (size_t p = 0; p < x->n_packs; p++)
			dead[p] = bsearch(&x->packs[p], x->deleting, x->n_deleting,
					  sizeof(struct kl_id), cmp_id) != NULL;
	}
	rc = mark_superseded(x, dead);
	if (rc < 0) {
		kl_free(dead);
		return rc;
	}
	for (size_t i = 0; i < x->cap; i++)
		if (x->slots[i].state == SLOT_STORED && dead[x->slots[i].pack])
			x->slots[i].deleting = 1;
	/*
	 * Copies in deleting packs are dropped: a condemned pack is not live
	 * again for a reader (records are only added while it runs). The live
	 * ones stay for a later refresh that may condemn a slot's pack.
	 */
	for (size_t i = 0; i < x->n_alts; i++) {
		struct slot *a = &x->alts[i], *s;

		if (dead[a->pack])
			continue;
		s = kl_index_find_slot_(x, a->id);
		if (s && s->state != SLOT_EMPTY && s->deleting)
			*s = *a; /* STORED, not deleting */
		x->alts[w++] = *a;
	}
	x->n_alts = w;
	kl_free(dead);
	return 0;
}

static void index_clear(struct kl_index *x)
{
	for (size_t i = 0; i < x->n_pending; i++)
		kl_pack_header_release(&x->pending[i].h);
	x->n_pending = 0;
	if (x->cap) /* no slots before the first blob: memset(NULL) is undefined */
		memset(x->slots, 0, x->cap * sizeof(*x->slots));
	x->used = 0;
	x->n_packs = x->n_files = x->n_records = x->n_deleting = x->n_superseded = 0;
	x->n_alts = 0;
}

static int adopt(struct kl_repo *r, bool write);

int kl_repo_load_index(struct kl_repo *r)
{
	int rc;

	/* NEEDSWORK: decode index files on both cores for very large repositories */
	for (int attempt = 0;; attempt++) {
		struct load_ctx c = {.r = r};

		r->bad_index_files = 0;
		rc = r->be->ops->list(r->be, KL_OBJ_INDEX, load_one, &c);
		if (rc != -EAGAIN || attempt == 4)
			break;
		index_clear(r->idx);
	}
	if (rc == -EAGAIN)
		return kl_repo_fail(r, -KL_ECORRUPT, "index files keep vanishing while being read");
	if (rc >= 0) {
		pthread_mutex_lock(&r->idx->lock);
		rc = apply_rules(r->idx);
		pthread_mutex_unlock(&r->idx->lock);
	}
	if (rc >= 0 && r->bad_index_files)
		rc = adopt(r, false);
	r->idx->loaded = rc >= 0;
	kl_test_point("index-loaded");
	return rc < 0 ? rc : 0;
}

struct refresh_ctx {
	struct load_ctx lc;
	struct kl_id *seen; /* sorted: files and records loaded before */
	size_t n_seen;
};

static int load_if_new(const char *name, uint64_t size, void *ud)
{
	struct refresh_ctx *c = ud;
	struct kl_id id;

	if (kl_id_parse(name, &id) < 0 ||
	    bsearch(&id, c->seen, c->n_seen, sizeof(struct kl_id), cmp_id))
		return 0;
	return load_one(name, size, &c->lc);
}

/* One pass of kl_repo_refresh_index(): -EAGAIN when a listed file vanished. */
static int refresh_once(struct kl_repo *r)
{
	struct kl_index *x = r->idx;
	struct refresh_ctx c = {.lc = {.r = r}};
	int rc;

	pthread_mutex_lock(&x->lock);
	c.n_seen = x->n_files + x->n_records;
	c.seen = kl_malloc((c.n_seen ? c.n_seen : 1) * sizeof(struct kl_id));
	if (c.seen && x->n_files)
		memcpy(c.seen, x->files, x->n_files * sizeof(struct kl_id));
	if (c.seen && x->n_records)
		memcpy(c.seen + x->n_files, x->records, x->n_records * sizeof(struct kl_id));
	pthread_mutex_unlock(&x->lock);
	if (!c.seen)
		return -ENOMEM;
	qsort(c.seen, c.n_seen, sizeof(struct kl_id), cmp_id);
	rc = r->be->ops->list(r->be, KL_OBJ_INDEX, load_if_new, &c);
	kl_free(c.seen);
	return rc;
}

int kl_repo_refresh_index(struct kl_repo *r)
{
	struct kl_index *x = r->idx;
	int rc;

	/*
	 * A file deleted between listing and reading was replaced by a prune
	 * whose successor the listing may have missed: list again (what was
	 * read is not read twice).
	 */
	for (int attempt = 0;; attempt++) {
		rc = refresh_once(r);
		if (rc != -EAGAIN || attempt == 4)
			break;
		kl_repo_err_clear_(r);
	}
	if (rc == -EAGAIN)
		return kl_repo_fail(r, -KL_ECORRUPT, "index files keep vanishing while being read");
	if (rc >= 0) {
		pthread_mutex_lock(&x->lock);
		rc = apply_rules(x);
		pthread_mutex_unlock(&x->lock);
	}
	return rc;
}

bool kl_repo_index_loaded(const struct kl_repo *r)
{
	return r->idx->loaded;
}

int kl_repo_index_files(struct kl_repo *r, struct kl_id **files, size_t *n_files,
			struct kl_id **records, size_t *n_records)
{
	struct kl_index *x = r->idx;
	int rc = 0;

	pthread_mutex_lock(&x->lock);
	*files = kl_memdup(x->files, x->n_files * sizeof(struct kl_id));
	*n_files = x->n_files;
	*records = kl_memdup(x->records, x->n_records * sizeof(struct kl_id));
	*n_records = x->n_records;
	pthread_mutex_unlock(&x->lock);
	if ((!*files && *n_files) || (!*records && *n_records)) {
		kl_free(*files);
		kl_free(*records);
		*files = *records = NULL;
		rc = -ENOMEM;
	}
	return rc;
}

int kl_repo_index_pack_ids(struct kl_repo *r, struct kl_id **ret, size_t *n_ret)
{
	struct kl_index *x = r->idx;
	struct kl_id *v;
	size_t n = 0;

	pthread_mutex_lock(&x->lock);
	v = kl_malloc((x->n_packs ? x->n_packs : 1) * sizeof(*v));
	if (v) {
		if (x->n_packs)
			memcpy(v, x->packs, x->n_packs * sizeof(*v));
		n = x->n_packs;
	}
	pthread_mutex_unlock(&x->lock);
	if (!v)
		return -ENOMEM;
	qsort(v, n, sizeof(*v), cmp_id);
	/* a pack named by several index files is listed once */
	size_t w = 0;
	for (size_t i = 0; i < n; i++)
		if (!w || !kl_id_eq(&v[w - 1], &v[i]))
			v[w++] = v[i];
	*ret = v;
	*n_ret = w;
	return 0;
}

bool kl_repo_index_file_superseded(struct kl_repo *r, const struct kl_id *file)
{
	struct kl_index *x = r->idx;
	bool found = false;

	pthread_mutex_lock(&x->lock);
	for (size_t i = 0; !found && i < x->n_superseded; i++)
		found = kl_id_eq(&x->superseded[i], file);
	pthread_mutex_unlock(&x->lock);
	return found;
}

bool kl_repo_pack_deleting(struct kl_repo *r, const struct kl_id *pack)
{
	struct kl_index *x = r->idx;
	bool found;

	pthread_mutex_lock(&x->lock);
	found = x->n_deleting &&
		bsearch(pack, x->deleting, x->n_deleting, sizeof(struct kl_id), cmp_id);
	pthread_mutex_unlock(&x->lock);
	return found;
}

int kl_repo_flush_index(struct kl_repo *r)
{
	int rc = kl_writer_wait_(r->writer), w;

	/* interrupted: the packs written are durable; indexed, the next backup reuses them */
	if (rc < 0 && rc != -KL_EINTERRUPTED)
		return rc;
	w = kl_index_write_pending_(r);
	return rc < 0 ? rc : w;
}

int kl_index_write_pending_(struct kl_repo *r)
{
	struct kl_index *x = r->idx;
	struct kl_index_file f = {0};
	_cleanup_buf_ struct kl_buf enc = KL_BUF_INIT(1u << 30);
	size_t n;
	int rc = 0;

	/*
	 * Take the pending list out under the lock; on failure put nothing
	 * back: the packs stay durable and unindexed, and the next backup's
	 * kl_repo_adopt_orphans() indexes them.
	 */
	pthread_mutex_lock(&x->lock);
	n = x->n_pending;
	for (size_t i = 0; i < n; i++) {
		if (rc >= 0)
			rc = kl_index_file_add(&f, &x->pending[i].pack, &x->pending[i].h);
		else
			kl_pack_header_release(&x->pending[i].h);
	}
	x->n_pending = 0;
	pthread_mutex_unlock(&x->lock);
	if (rc >= 0 && f.n) {
		rc = kl_index_file_encode(&f, &enc);
		if (rc >= 0)
			rc = kl_repo_put_object(r, KL_OBJ_INDEX, KL_KIND_INDEX, enc.data, enc.len,
						NULL);
	}
	if (rc < 0) /* these packs are orphans now: the next backup of this process looks again */
		atomic_store(&r->orphans_scanned, false);
	kl_index_file_release(&f);
	return rc;
}

struct orphan_ctx {
	struct kl_repo *r;
	bool write;
	struct kl_id *known;
	size_t n_known;
	int adopted;
};

static int adopt_one(const char *name, uint64_t size, void *ud)
{
	struct orphan_ctx *c = ud;
	struct kl_pack_header h = {0};
	struct kl_id id;
	int rc;

	if (kl_id_parse(name, &id) < 0)
		return 0; /* not ours */
	if (c->n_known && bsearch(&id, c->known, c->n_known, sizeof(struct kl_id), cmp_id))
		return 0;
	rc = kl_repo_read_pack_header(c->r, name, size, &h);
	if (rc == -KL_ECORRUPT)
		return 0; /* left for check/repair to report; never index bad data */
	if (rc < 0)
		return rc;
	/* pending either way: the next index file written names these packs */
	rc = kl_index_add_pack_(c->r, &id, &h, KL_INDEX_PENDING);
	kl_pack_header_release(&h);
	if (rc >= 0)
		c->adopted++;
	return rc;
}

int kl_repo_adopt_orphans(struct kl_repo *r)
{
	int rc;

	if (atomic_load(&r->orphans_scanned))
		return 0;
	rc = adopt(r, true);
	if (rc >= 0)
		atomic_store(&r->orphans_scanned, true);
	return rc;
}

static int adopt(struct kl_repo *r, bool write)
{
	struct orphan_ctx c = {.r = r, .write = write};
	int rc;

	pthread_mutex_lock(&r->idx->lock);
	c.n_known = r->idx->n_packs;
	c.known = kl_memdup(r->idx->packs, c.n_known * sizeof(struct kl_id));
	pthread_mutex_unlock(&r->idx->lock);
	if (!c.known && c.n_known)
		return -ENOMEM;
	if (c.n_known) /* qsort of NULL is undefined even for 0 entries */
		qsort(c.known, c.n_known, sizeof(struct kl_id), cmp_id);
	rc = r->be->ops->list(r->be, KL_OBJ_DATA, adopt_one, &c);
	kl_free(c.known);
	if (rc >= 0 && c.adopted && write)
		rc = kl_repo_flush_index(r);
	return rc < 0 ? rc : c.adopted;
}
