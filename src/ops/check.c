/*
 * keel check: can every snapshot be restored?
 *
 * The passes, in order:
 *  1. list data/: which packs exist, and their sizes;
 *  2. read every index file; every pack it names must exist, and the
 *     pack's header (a small read at its end) must agree with the index;
 *     packs no index names are counted, and their headers read so that a
 *     blob a snapshot needs can be traced to them;
 *  3. with read_data, read packs whole (all, or a random subset) on
 *     o->threads workers: SHA-256 against the name, every blob opened
 *     (authenticated, decompressed, re-hashed against its id);
 *  4. load every snapshot and walk its trees, each distinct tree once
 *     (one with damage below it once per snapshot, to name its paths):
 *     every blob a file or directory needs must be indexed and not found
 *     damaged above. The walk runs last so that it can name the snapshots
 *     and paths that each damaged object affects;
 *  5. report each problem once, sorted, through o->report.warn;
 *  6. count the temporary files interrupted writes left (not damage:
 *     nothing refers to them) and, if asked, remove those older than an
 *     hour, which no running write can still be using.
 *
 * check builds its own table of blobs from the index files instead of
 * using the repository's index: it must see entries of index files that
 * kl_repo_load_index() failed on (or was never called for), duplicate
 * copies, and blobs no index names. The table takes 75 to 150 bytes per
 * blob; pack data is held one pack per worker, so memory grows with the
 * number of blobs, never with the size of the data.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "keel/ops.h"

#define MAX_REFS 20 /* (snapshot, path) pairs shown per problem */
#define MAX_THREADS 64
#define HEADER_TAIL ((size_t)64 << 10) /* first read at a pack's end: header and length */
#define TREE_MAX ((size_t)128 << 20)
#define OBJECT_MAX ((size_t)1 << 30)
#define PACK_MAX ((size_t)UINT32_MAX) /* blob offsets are 32-bit */
#define PROGRESS_NS (200 * KL_NSEC_PER_MSEC)

/* ---- the blob table ---------------------------------------------------- */

enum blob_flags {
	B_LIVE = 1 << 0,      /* slot in use */
	B_INDEXED = 1 << 1,   /* an index file lists it; the location fields are valid */
	B_ORPHAN = 1 << 2,    /* only in a pack no index names; location valid */
	B_USED = 1 << 3,      /* a snapshot needs it */
	B_VISITED = 1 << 4,   /* tree walked once */
	B_BAD = 1 << 5,	      /* missing or damaged: see problem */
	B_BAD_BELOW = 1 << 6, /* tree from which a bad object is reachable */
	B_MAY_GO = 1 << 7,    /* located in a pack that may be deleted while we run */
};
#define B_LOCATED (B_INDEXED | B_ORPHAN)

struct blob {
	uint8_t id[KL_ID_LEN];
	uint32_t pack; /* index into check.packs */
	uint32_t offset, length, raw_length;
	uint32_t problem; /* 1-based index into check.problems; 0: none */
	uint8_t type, compression;
	uint16_t flags;
};

/* Open addressing keyed by the id's first bytes: ids are MACs or SHA-256. */
struct blob_table {
	struct blob *v;
	size_t cap, used;
};

static size_t id_slot(const uint8_t *id, size_t mask)
{
	uint64_t h;

	memcpy(&h, id, sizeof(h));
	return (size_t)h & mask;
}

static struct blob *blob_probe(struct blob *v, size_t cap, const uint8_t *id)
{
	size_t mask = cap - 1;

	for (size_t i = id_slot(id, mask);; i = (i + 1) & mask)
		if (!v[i].flags || !memcmp(v[i].id, id, KL_ID_LEN))
			return &v[i];
}

static struct blob *blob_find(struct blob_table *t, const uint8_t *id)
{
	struct blob *b;

	if (!t->cap)
		return NULL;
	b = blob_probe(t->v, t->cap, id);
	return b->flags ? b : NULL;
}

/*
 * Finds or adds id. Returns 1 if it was added (flags B_LIVE, the rest
 * zero), 0 if it was there. Invalidates pointers into the table.
 */
static int blob_insert(struct blob_table *t, const uint8_t *id, struct blob **ret)
{
	struct blob *b;

	if ((t->used + 1) * 4 > t->cap * 3) {
		size_t ncap = t->cap ? t->cap * 2 : 4096;
		struct blob *nv;

		if (ncap > SIZE_MAX / sizeof(*nv))
			return -ENOMEM;
		nv = kl_calloc(ncap, sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		for (size_t i = 0; i < t->cap; i++)
			if (t->v[i].flags)
				*blob_probe(nv, ncap, t->v[i].id) = t->v[i];
		kl_free(t->v);
		t->v = nv;
		t->cap = ncap;
	}
	b = blob_probe(t->v, t->cap, id);
	*ret = b;
	if (b->flags)
		return 0;
	memset(b, 0, sizeof(*b));
	memcpy(b->id, id, KL_ID_LEN);
	b->flags = B_LIVE;
	t->used++;
	return 1;
}

static void blob_entry(const struct blob *b, struct kl_blob_entry *e)
{
	memcpy(e->id.b, b->id, KL_ID_LEN);
	e->type = b->type;
	e->compression = b->compression;
	e->offset = b->offset;
	e->length = b->length;
	e->raw_length = b->raw_length;
}

/* The reverse: b is located at e in pack number pack. */
static void blob_locate(struct blob *b, uint32_t pack, const struct kl_blob_entry *e)
{
	b->pack = pack;
	b->offset = e->offset;
	b->length = e->length;
	b->raw_length = e->raw_length;
	b->type = e->type;
	b->compression = e->compression;
}

static bool entry_eq(const struct kl_blob_entry *a, const struct kl_blob_entry *b)
{
	return kl_id_eq(&a->id, &b->id) && a->type == b->type && a->compression == b->compression &&
	       a->offset == b->offset && a->length == b->length && a->raw_length == b->raw_length;
}

/* ---- packs ---------------------------------------------------------------- */

enum pack_flags {
	P_PRESENT = 1 << 0,    /* listed in data/ */
	P_INDEXED = 1 << 1,    /* some index file names it */
	P_HDR_BAD = 1 << 2,    /* header unreadable or disagrees with an index */
	P_ALL_BAD = 1 << 3,    /* data pass: unusable as a whole; every blob in it is bad */
	P_READ = 1 << 4,       /* data pass opened its blobs */
	P_NAMED_LIVE = 1 << 5, /* an index file names it as live (not as a pack that may go) */
	P_ASKED = 1 << 6,      /* not listed in data/, and the storage said it is not there */
};

struct pack {
	struct kl_id id;
	uint64_t size;
	uint32_t flags;
	uint32_t problem;	 /* structural or whole-pack problem */
	uint32_t orphan_problem; /* in no index, but snapshots need its blobs */
	uint32_t n_bad;		 /* blobs that failed in the data pass */
	/* index entries of a pack with a bad header: the data pass opens these */
	struct kl_pack_header saved;
};

struct pack_table {
	struct pack *v;
	size_t n, cap;
	uint32_t *slots; /* open addressing: index + 1, 0 empty */
	size_t nslots;
};

static uint32_t *pack_probe(struct pack_table *t, uint32_t *slots, size_t nslots,
			    const struct kl_id *id)
{
	size_t mask = nslots - 1;

	for (size_t i = id_slot(id->b, mask);; i = (i + 1) & mask)
		if (!slots[i] || kl_id_eq(&t->v[slots[i] - 1].id, id))
			return &slots[i];
}

static int pack_find(struct pack_table *t, const struct kl_id *id)
{
	uint32_t *s;

	if (!t->nslots)
		return -1;
	s = pack_probe(t, t->slots, t->nslots, id);
	return *s ? (int)(*s - 1) : -1;
}

/* Returns the pack's index, adding it if absent. */
static int pack_get(struct pack_table *t, const struct kl_id *id, uint32_t *ret)
{
	int i = pack_find(t, id);

	if (i >= 0) {
		*ret = (uint32_t)i;
		return 0;
	}
	if (t->n >= INT32_MAX)
		return -E2BIG;
	if ((t->n + 1) * 2 > t->nslots) {
		size_t ns = t->nslots ? t->nslots * 2 : 256;
		uint32_t *nv = kl_calloc(ns, sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		for (size_t k = 0; k < t->n; k++)
			*pack_probe(t, nv, ns, &t->v[k].id) = (uint32_t)k + 1;
		kl_free(t->slots);
		t->slots = nv;
		t->nslots = ns;
	}
	if (t->n == t->cap) {
		size_t nc = t->cap ? t->cap * 2 : 64;
		struct pack *nv = kl_realloc(t->v, nc * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		t->v = nv;
		t->cap = nc;
	}
	memset(&t->v[t->n], 0, sizeof(t->v[t->n]));
	t->v[t->n].id = *id;
	*pack_probe(t, t->slots, t->nslots, id) = (uint32_t)t->n + 1;
	*ret = (uint32_t)t->n++;
	return 0;
}

/* ---- problems -------------------------------------------------------------- */

/* Output order: damaged index files first, then snapshots, packs, blobs. */
enum problem_cat { C_INDEX, C_SNAPSHOT, C_PACK, C_BLOB };

struct problem {
	enum problem_cat cat;
	char obj[80]; /* "pack <hex>": the warn() path argument */
	char *why;
	int err;
	bool note;     /* informational: reported with err 0, not counted */
	bool attrib;   /* list the snapshots it affects */
	bool maybe;    /* a pack header is damaged, its blobs were not read: "may affect" */
	bool orphan;   /* intact blobs in a pack no index names */
	bool fallback; /* ... which readers find anyway: an index file is damaged */
	uint32_t pack; /* pack index + 1 for pack problems */
	uint64_t n_refs;
	size_t n_shown;
	struct kl_buf refs;
};

struct snap {
	char *name; /* hex id, or the odd file name of an unreadable one */
	int64_t time_ns;
	struct kl_id tree;
	bool unreadable;
	bool damaged;
};

struct names {
	char **v;
	size_t n, cap;
};

struct check {
	/*
	 * Snapshot names are listed before anything else: a snapshot is
	 * written only after the packs and index files it needs, so every one
	 * listed first finds its data in the listings that follow, even while
	 * other hosts back up.
	 */
	struct names snap_names;
	struct kl_repo *r;
	const struct kl_check_opts *o;
	struct kl_check_result *res;
	struct blob_table blobs;
	struct pack_table packs;
	struct problem *problems;
	size_t n_problems, cap_problems;
	struct snap *snaps;
	size_t n_snaps;
	int fatal;		  /* -ENOMEM and the like: stop and return it */
	unsigned bad_index_files; /* damaged, as kl_repo_load_index counts them */

	/*
	 * The data pass: while the workers run, lock guards everything they
	 * share: these fields, fatal, res, the problems and the blob flags.
	 */
	pthread_mutex_t lock;
	uint32_t *sel;
	size_t n_sel, next;
	struct kl_progress prog;
	int64_t last_progress;

	/* the walk */
	struct kl_buf path;
	struct kl_buf sealed, plain;
	uint32_t fp[64]; /* problems already attributed to the current file */
	size_t n_fp;
};

/*
 * Records a problem; returns its number (1-based), or 0 when out of
 * memory, which sets c->fatal. While the workers run, callers hold c->lock.
 */
static uint32_t problem_add(struct check *c, enum problem_cat cat, int err, bool note,
			    const char *obj, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
static uint32_t problem_add(struct check *c, enum problem_cat cat, int err, bool note,
			    const char *obj, const char *fmt, ...)
{
	struct problem *p;
	char why[512];
	va_list ap;

	if (c->n_problems == c->cap_problems) {
		size_t nc = c->cap_problems ? c->cap_problems * 2 : 32;
		struct problem *nv = kl_realloc(c->problems, nc * sizeof(*nv));

		if (!nv)
			goto oom;
		c->problems = nv;
		c->cap_problems = nc;
	}
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	p = &c->problems[c->n_problems];
	memset(p, 0, sizeof(*p));
	p->why = kl_strdup(why);
	if (!p->why)
		goto oom;
	p->cat = cat;
	snprintf(p->obj, sizeof(p->obj), "%s", obj);
	p->err = note ? 0 : err;
	p->note = note;
	kl_buf_init(&p->refs, (size_t)64 << 10);
	if (!note)
		c->res->errors++;
	return (uint32_t)++c->n_problems;
oom:
	if (!c->fatal)
		c->fatal = -ENOMEM;
	return 0;
}

static struct problem *problem_get(struct check *c, uint32_t n)
{
	return n ? &c->problems[n - 1] : NULL;
}

static void pack_obj(const struct check *c, uint32_t idx, char out[static 80])
{
	char hex[2 * KL_ID_LEN + 1];

	kl_id_hex(&c->packs.v[idx].id, hex);
	snprintf(out, 80, "pack %s", hex);
}

static void blob_obj(const uint8_t *id, char out[static 80])
{
	char hex[2 * KL_ID_LEN + 1];

	kl_hex_encode(id, KL_ID_LEN, hex);
	snprintf(out, 80, "blob %s", hex);
}

/* Appends a path, escaping bytes that could disturb a terminal or a log. */
static int add_escaped(struct kl_buf *b, const uint8_t *p, size_t n)
{
	int rc = 0;

	if (!n)
		return kl_buf_addch(b, '/');
	for (size_t i = 0; rc >= 0 && i < n; i++) {
		if (p[i] < 0x20 || p[i] == 0x7f || p[i] == '\\')
			rc = kl_buf_addf(b, "\\x%02x", p[i]);
		else
			rc = kl_buf_addch(b, p[i]);
	}
	return rc;
}

/* Problem pr affects snapshot si at the current path (c->path). */
static int attribute(struct check *c, uint32_t pr, size_t si)
{
	struct problem *p = problem_get(c, pr);
	int rc;

	if (!p)
		return 0;
	if (!p->fallback)
		c->snaps[si].damaged = true;
	p->attrib = true;
	p->n_refs++;
	if (p->n_shown >= MAX_REFS)
		return 0;
	rc = kl_buf_addf(&p->refs, "%ssnapshot %.8s ", p->n_shown ? ", " : "", c->snaps[si].name);
	if (rc >= 0)
		rc = add_escaped(&p->refs, c->path.data, c->path.len);
	p->n_shown++;
	return rc == -ENOMEM ? rc : 0; /* -E2BIG: the list is long enough */
}

/*
 * Whether problem pr leaves a snapshot unrestorable. Blobs in an unindexed
 * pack do not while an index file is damaged: kl_repo_load_index then
 * indexes such packs from their headers. The walk names only the first
 * snapshots needing them, so that a damaged index file does not make it
 * walk every tree again for every snapshot.
 */
static bool damages(struct check *c, uint32_t pr)
{
	return pr && !problem_get(c, pr)->fallback;
}

/* Marks the copy of e in pack idx bad with problem pr, if readers use that copy. */
static void mark_entry(struct check *c, uint32_t idx, const struct kl_blob_entry *e, uint32_t pr)
{
	struct blob *b = blob_find(&c->blobs, e->id.b);

	if (!b || !(b->flags & B_LOCATED) || b->pack != idx || b->offset != e->offset)
		return;
	if (!(b->flags & B_BAD)) {
		b->flags |= B_BAD;
		b->problem = pr;
	}
}

/* ---- progress ---------------------------------------------------------------- */

/* c->lock held while the workers run. */
static void progress(struct check *c, const char *current, bool force)
{
	int64_t now;

	if (!c->o->report.progress)
		return;
	now = kl_time_mono_ns();
	if (!force && now - c->last_progress < PROGRESS_NS)
		return;
	c->last_progress = now;
	c->prog.errors = c->res->errors;
	c->prog.current = current;
	c->o->report.progress(c->o->report.ud, &c->prog);
	c->prog.current = NULL;
}

/* ---- reading --------------------------------------------------------------------- */

/* Why a whole-file object (index file, snapshot) did not load. */
static const char *object_reason(struct check *c, enum kl_obj_type t, enum kl_obj_kind kind,
				 const char *name, int rc)
{
	_cleanup_buf_ struct kl_buf raw = KL_BUF_INIT(OBJECT_MAX);
	_cleanup_buf_ struct kl_buf pt = KL_BUF_INIT(OBJECT_MAX);
	struct kl_id want, got;

	if (rc == -KL_ENOTFOUND)
		return "removed while check ran";
	if (rc != -KL_ECORRUPT)
		return kl_strerror(rc);
	if (kl_id_parse(name, &want) < 0)
		return "its name is not an id";
	if (kl_repo_get_raw(c->r, t, name, 0, 0, &raw) < 0)
		return "cannot be read again";
	kl_sha256(raw.data, raw.len, &got);
	if (!kl_id_eq(&want, &got))
		return "content does not match its name";
	rc = kl_open(&kl_repo_keys(c->r)->enc, kind, NULL, 0, raw.data, raw.len, &pt);
	if (rc == -ENOMEM)
		return kl_strerror(rc);
	if (rc < 0)
		return "authentication failed";
	return "content does not decode";
}

/* Why kl_repo_open_blob() refused a sealed blob. */
static const char *blob_reason(struct check *c, const struct kl_blob_entry *e,
			       const uint8_t *sealed)
{
	_cleanup_buf_ struct kl_buf pt = KL_BUF_INIT(TREE_MAX);
	enum kl_obj_kind kind = e->type == KL_BLOB_TREE ? KL_KIND_TREE_BLOB : KL_KIND_DATA_BLOB;
	int rc;

	rc = kl_open(&kl_repo_keys(c->r)->enc, kind, e->id.b, KL_ID_LEN, sealed, e->length, &pt);
	if (rc == -ENOMEM)
		return kl_strerror(rc);
	if (rc < 0)
		return "authentication failed";
	/* authentic bytes that do not give the id: a bug or a leaked key, never bit rot */
	return "authentic, but does not decompress to its id";
}

/*
 * Parses the header at the end of a pack of size bytes from its last n
 * bytes: sealed header, then its length (u32 LE). Returns 0; 1 with *need
 * set when more of the tail is needed; -KL_ECORRUPT with *why set.
 */
static int parse_tail(struct kl_repo *r, const uint8_t *p, size_t n, uint64_t size,
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
static int fetch_header(struct check *c, uint32_t idx, struct kl_pack_header *h, const char **why)
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
		rc = parse_tail(c->r, tail.data, tail.len, p->size, h, why, &need);
		if (rc <= 0)
			return rc;
		want = need;
	}
	*why = "header length changed while check ran";
	return -KL_ECORRUPT;
}

/* ---- pass 1 and 2: packs and index files ---------------------------------------- */

/* Records a pack found in data/, with its size; its index in *idx. */
static int pack_present(struct check *c, const struct kl_id *id, uint64_t size, uint32_t *idx)
{
	int rc = pack_get(&c->packs, id, idx);

	if (rc < 0)
		return rc;
	c->packs.v[*idx].flags |= P_PRESENT;
	c->packs.v[*idx].size = size;
	c->prog.files_total++;
	return 0;
}

static int list_pack(const char *name, uint64_t size, void *ud)
{
	struct check *c = ud;
	struct kl_id id;
	uint32_t idx;

	if (kl_id_parse(name, &id) < 0) {
		char obj[80];

		snprintf(obj, sizeof(obj), "data/%.64s", name);
		problem_add(c, C_PACK, 0, true, obj, "not a pack name; ignored");
		return c->fatal;
	}
	return pack_present(c, &id, size, &idx);
}

static int names_add(const char *name, uint64_t size, void *ud)
{
	struct names *l = ud;

	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 64;
		char **nv = kl_realloc(l->v, nc * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		l->v = nv;
		l->cap = nc;
	}
	l->v[l->n] = kl_strdup(name);
	if (!l->v[l->n])
		return -ENOMEM;
	l->n++;
	return 0;
}

static void names_release(struct names *l)
{
	for (size_t i = 0; i < l->n; i++)
		kl_free(l->v[i]);
	kl_free(l->v);
	memset(l, 0, sizeof(*l));
}

/*
 * Counts the index entries that differ from the header's; with pr, marks
 * the blobs of the differing index entries bad. Both lists are sorted by
 * offset (their decoders require it).
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
				mark_entry(c, idx, a, pr);
			i++;
		} else if (!a || b->offset < a->offset) {
			n++; /* only in the pack */
			j++;
		} else {
			if (!entry_eq(a, b)) {
				n++;
				if (pr)
					mark_entry(c, idx, a, pr);
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
		pack_obj(c, idx, obj);
		p->problem = problem_add(c, C_PACK, err, false, obj, "%s", why);
		pr = problem_get(c, p->problem);
		if (!pr)
			return c->fatal;
		pr->attrib = true;
		pr->maybe = true; /* until its blobs are read */
		pr->pack = idx + 1;
	}
	for (size_t i = 0; i < ie->n; i++) {
		int rc = kl_pack_header_add(&p->saved, &ie->blobs[i]);

		if (rc < 0)
			return rc;
	}
	if (!h) {
		for (size_t i = 0; i < ie->n; i++)
			mark_entry(c, idx, &ie->blobs[i], p->problem);
	} else {
		compare_entries(c, idx, ie, h, p->problem);
	}
	return 0;
}

/*
 * Compares pack idx's header, as fetch_header() returned it (rc, h, why),
 * with an index file's entries for it.
 */
static int check_header(struct check *c, uint32_t idx, const char *fname,
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
	n = compare_entries(c, idx, ie, h, 0);
	if (!n)
		return 0;
	snprintf(msg, sizeof(msg), "index %.16s disagrees with the pack header (%zu %s)", fname, n,
		 n == 1 ? "entry differs" : "entries differ");
	return header_bad(c, idx, ie, h, -KL_ECORRUPT, msg);
}

/*
 * A pack that an index file names but the listing of data/ did not hold
 * may have been written since: a backup beside us writes its packs, then
 * their index file, and we list data/ before the index files. One request
 * tells (one per pack); the pack is then checked like the others. Returns
 * 1 and the pack in *k when it is there, 0 when not, or a negative error.
 */
static int pack_arrived(struct check *c, const struct kl_id *id, int *k)
{
	char hex[2 * KL_ID_LEN + 1];
	uint64_t size;
	uint32_t idx;
	int rc;

	*k = pack_find(&c->packs, id);
	if (*k >= 0 && (c->packs.v[*k].flags & P_ASKED))
		return 0; /* several index files name it: one answer is enough */
	kl_id_hex(id, hex);
	rc = kl_repo_stat(c->r, KL_OBJ_DATA, hex, &size);
	if (rc == -ENOENT || rc == -KL_ENOTFOUND) {
		rc = pack_get(&c->packs, id, &idx);
		if (rc < 0)
			return rc;
		c->packs.v[idx].flags |= P_ASKED;
		*k = (int)idx;
		return 0;
	}
	if (rc < 0)
		return kl_repo_fail(c->r, rc, "cannot look for pack %s: %s", hex, kl_strerror(rc));
	rc = pack_present(c, id, size, &idx);
	if (rc < 0)
		return rc;
	*k = (int)idx;
	return 1;
}

/*
 * One pack of an index file. may_be_gone: the file is a deletion record or
 * superseded, or a deletion record names the pack, so the pack may be one
 * prune has deleted already, or deletes while we check (it waits only for
 * locks alive when its record became durable, and ours may be younger: then
 * we loaded the index after the record, so our view has it); then only a
 * pack still there is checked. A snapshot that needs a blob of such a pack
 * still finds it missing (the blob is indexed nowhere else). Which were
 * there, the listing of data/ in pass 1 says; which still are, reading the
 * header (needed anyway) says: no request per pack to ask. Anything else
 * such files list, their successor lists too. A blob's copy in such a pack
 * gives way to a live one, as it does for readers.
 */
static int index_pack(struct check *c, const char *fname, const struct kl_index_pack *ip,
		      bool may_be_gone)
{
	const struct kl_pack_header *ie = &ip->h;
	struct kl_pack_header h = {0};
	const char *why = NULL;
	int k = pack_find(&c->packs, &ip->pack);
	bool present = k >= 0 && (c->packs.v[k].flags & P_PRESENT);
	struct pack *p;
	uint32_t idx;
	int rc, hrc = 0;

	may_be_gone |= kl_repo_pack_deleting(c->r, &ip->pack);
	if (may_be_gone && !present)
		return 0;
	if (!present) {
		rc = pack_arrived(c, &ip->pack, &k);
		if (rc < 0)
			return rc;
		present = rc > 0;
	}
	if (present) {
		hrc = fetch_header(c, (uint32_t)k, &h, &why);
		if (hrc == -ENOMEM)
			return hrc;
		if (hrc == -ENOENT && may_be_gone) {
			/* deleted since data/ was listed: a live file naming it finds it missing */
			c->packs.v[k].flags &= ~P_PRESENT;
			return 0;
		}
	}
	rc = pack_get(&c->packs, &ip->pack, &idx);
	if (rc < 0)
		goto out;
	c->packs.v[idx].flags |= P_INDEXED | (may_be_gone ? 0 : P_NAMED_LIVE);
	for (size_t i = 0; i < ie->n; i++) {
		const struct kl_blob_entry *e = &ie->blobs[i];
		struct blob *b;

		rc = blob_insert(&c->blobs, e->id.b, &b);
		if (rc < 0)
			goto out;
		/*
		 * Another copy: readers use the first, as the index does, but a
		 * live copy over one in a pack that may go (docs/FORMAT.md
		 * section 5): a prune may delete that pack while we run.
		 */
		if ((b->flags & B_INDEXED) && (may_be_gone || !(b->flags & B_MAY_GO)))
			continue;
		if ((b->flags & B_BAD) && b->problem && b->problem == c->packs.v[b->pack].problem) {
			b->flags &= ~B_BAD; /* blamed on the copy no longer used */
			b->problem = 0;
		}
		b->flags = (uint16_t)((b->flags & ~B_MAY_GO) | B_INDEXED |
				      (may_be_gone ? B_MAY_GO : 0));
		blob_locate(b, idx, e);
	}
	p = &c->packs.v[idx];
	if (present) {
		rc = check_header(c, idx, fname, ie, hrc, &h, why);
		c->prog.files_done++;
		progress(c, NULL, false);
		goto out;
	}
	if (!p->problem) {
		struct problem *pr;
		char obj[80];

		pack_obj(c, idx, obj);
		p->problem = problem_add(c, C_PACK, -KL_ENOTFOUND, false, obj,
					 "missing (named by index %.16s)", fname);
		pr = problem_get(c, p->problem);
		if (!pr) {
			rc = c->fatal;
			goto out;
		}
		pr->attrib = true;
		pr->pack = idx + 1;
	}
	for (size_t i = 0; i < ie->n; i++)
		mark_entry(c, idx, &ie->blobs[i], p->problem);
	rc = 0;
out:
	kl_pack_header_release(&h);
	return rc;
}

/* Returns 1 when the file is gone since it was listed (a prune replaced it). */
static int check_index_file(struct check *c, const char *name)
{
	_cleanup_buf_ struct kl_buf raw = KL_BUF_INIT(OBJECT_MAX);
	struct kl_index_file f = {0};
	struct kl_id fid;
	bool may_be_gone;
	int rc;

	rc = kl_repo_get_object(c->r, KL_OBJ_INDEX, KL_KIND_INDEX, name, &raw);
	if (rc == -KL_ENOTFOUND) {
		kl_repo_clear_err(c->r);
		return 1;
	}
	c->res->index_files++;
	if (rc >= 0)
		rc = kl_index_file_decode(raw.data, raw.len, &f);
	if (rc == -ENOMEM)
		return rc;
	if (rc < 0) {
		char obj[80];

		c->bad_index_files += rc == -KL_ECORRUPT;
		snprintf(obj, sizeof(obj), "index %.64s", name);
		problem_add(c, C_INDEX, rc, false, obj, "unreadable (%s)",
			    object_reason(c, KL_OBJ_INDEX, KL_KIND_INDEX, name, rc));
		return c->fatal;
	}
	/* a superseded file may outlive its successor (a crash, or storage under retention) */
	may_be_gone = f.deleting ||
		      (kl_id_parse(name, &fid) >= 0 && kl_repo_index_file_superseded(c->r, &fid));
	for (size_t i = 0; rc >= 0 && i < f.n; i++)
		rc = index_pack(c, name, &f.packs[i], may_be_gone);
	kl_index_file_release(&f);
	return rc < 0 ? rc : 0;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * A prune beside us replaces index files: it writes their successor, then
 * deletes them. A file gone since the listing is no damage, but its
 * successor may be newer than the listing: then the index files are listed
 * again and the new ones checked (as kl_repo_load_index() does).
 */
static int check_indexes(struct check *c)
{
	struct names seen = {0};
	int rc = 0;

	for (int round = 0; rc >= 0; round++) {
		struct names l = {0};
		size_t n_seen = seen.n;
		bool vanished = false;

		rc = kl_repo_list(c->r, KL_OBJ_INDEX, names_add, &l);
		for (size_t i = 0; rc >= 0 && i < l.n; i++) {
			if (n_seen && bsearch(&l.v[i], seen.v, n_seen, sizeof(*seen.v), cmp_name))
				continue;
			rc = check_index_file(c, l.v[i]);
			vanished |= rc == 1;
			if (rc >= 0)
				rc = names_add(l.v[i], 0, &seen);
		}
		names_release(&l);
		if (rc < 0 || !vanished)
			break;
		if (round == 4) {
			rc = kl_repo_fail(c->r, -KL_ECORRUPT,
					  "index files keep vanishing while being checked");
			break;
		}
		qsort(seen.v, seen.n, sizeof(*seen.v), cmp_name);
	}
	names_release(&seen);
	return rc < 0 ? rc : 0;
}

/*
 * Packs no index names are harmless (left by an interrupted backup, which
 * the next backup adopts); their headers are read so that a blob a
 * snapshot needs but no index lists can be found in them.
 */
static int scan_orphans(struct check *c)
{
	for (uint32_t k = 0; k < c->packs.n; k++) {
		struct kl_pack_header h;
		const char *why = NULL;
		int rc;

		if ((c->packs.v[k].flags & (P_PRESENT | P_INDEXED)) != P_PRESENT)
			continue;
		c->res->unindexed_packs++;
		rc = fetch_header(c, k, &h, &why);
		c->prog.files_done++;
		progress(c, NULL, false);
		if (rc == -ENOMEM)
			return rc;
		if (rc < 0) {
			char obj[80];

			pack_obj(c, k, obj);
			problem_add(c, C_PACK, 0, true, obj,
				    "in no index, and %s (%s): it cannot be adopted",
				    rc == -KL_ECORRUPT ? "damaged" : "unreadable", why);
			if (c->fatal)
				return c->fatal;
			continue;
		}
		for (size_t i = 0; i < h.n; i++) {
			const struct kl_blob_entry *e = &h.blobs[i];
			struct blob *b;

			rc = blob_insert(&c->blobs, e->id.b, &b);
			if (rc < 0) {
				kl_pack_header_release(&h);
				return rc;
			}
			if (!rc)
				continue;
			b->flags |= B_ORPHAN;
			blob_locate(b, k, e);
		}
		kl_pack_header_release(&h);
	}
	progress(c, NULL, true);
	return 0;
}

/* ---- pass 3: reading packs whole ------------------------------------------------- */

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
	struct blob *b = blob_find(&c->blobs, e->id.b);
	bool in_use = b && (b->flags & B_LOCATED) && b->pack == idx && b->offset == e->offset;
	char obj[80], phex[2 * KL_ID_LEN + 1];
	struct problem *p;
	uint32_t pr;

	if (in_use && (b->flags & B_BAD)) {
		/* already blamed on its pack, which is now known to be damaged */
		p = problem_get(c, b->problem);
		if (p)
			p->maybe = false;
		return;
	}
	blob_obj(e->id.b, obj);
	kl_id_hex(&c->packs.v[idx].id, phex);
	pr = problem_add(c, C_BLOB, err, false, obj, "damaged in pack %.16s (%s)%s", phex, why,
			 in_use ? "" : "; readers use another copy");
	p = problem_get(c, pr);
	if (p && in_use) {
		p->attrib = true;
		b->flags |= B_BAD;
		b->problem = pr;
	}
}

/* A blob of pack idx, whose header is bad, opened fine. c->lock held. */
static void blob_intact(struct check *c, uint32_t idx, const struct kl_blob_entry *e)
{
	struct blob *b = blob_find(&c->blobs, e->id.b);

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
		pack_obj(c, idx, obj);
		p->problem = problem_add(c, C_PACK, err, false, obj, "%s (%s)", what, why);
	}
	pr = problem_get(c, p->problem);
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
			rc = parse_tail(r, pk->data, pk->len, pk->len, &h, &why, &need);
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
				why = blob_reason(c, e, pk->data + e->offset);
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
		problem_get(c, p->problem)->maybe = false;
	if (!hash_ok && !p->problem) {
		char obj[80];

		pack_obj(c, idx, obj);
		problem_add(c, C_PACK, -KL_ECORRUPT, false, obj,
			    "content does not match its name (%zu of %zu blobs damaged)", n_bad,
			    n_ents);
	}
done:
	c->res->packs_read++;
	c->res->bytes_read += pk->len;
	c->prog.files_done++;
	c->prog.bytes_done += p->size;
	progress(c, hex, false);
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

static int data_pass(struct check *c)
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
	progress(c, NULL, true);
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

/* ---- pass 4: snapshots and their trees ----------------------------------------- */

static int snap_cmp(const void *a, const void *b)
{
	const struct snap *x = a, *y = b;

	if (x->unreadable != y->unreadable)
		return x->unreadable ? 1 : -1;
	if (x->time_ns != y->time_ns)
		return x->time_ns > y->time_ns ? -1 : 1; /* newest first */
	return strcmp(x->name, y->name);
}

static int load_snapshots(struct check *c)
{
	_cleanup_buf_ struct kl_buf raw = KL_BUF_INIT(OBJECT_MAX);
	struct names l = c->snap_names;
	int rc = 0;

	memset(&c->snap_names, 0, sizeof(c->snap_names));
	if (l.n) {
		c->snaps = kl_calloc(l.n, sizeof(*c->snaps));
		if (!c->snaps)
			rc = -ENOMEM;
	}
	for (size_t i = 0; rc >= 0 && i < l.n; i++) {
		struct snap *s = &c->snaps[c->n_snaps];
		struct kl_snapshot snap;

		rc = kl_repo_get_object(c->r, KL_OBJ_SNAPSHOT, KL_KIND_SNAPSHOT, l.v[i], &raw);
		if (rc >= 0)
			rc = kl_snapshot_decode(raw.data, raw.len, &snap);
		if (rc == -ENOMEM)
			break;
		if (rc == -KL_ENOTFOUND) {
			rc = 0; /* forgotten while we listed */
			continue;
		}
		s->name = KL_TAKE_PTR(l.v[i]);
		c->n_snaps++;
		c->res->snapshots++;
		if (rc < 0) {
			char obj[80];

			s->unreadable = s->damaged = true;
			snprintf(obj, sizeof(obj), "snapshot %.64s", s->name);
			problem_add(
				c, C_SNAPSHOT, rc, false, obj, "unreadable (%s)",
				object_reason(c, KL_OBJ_SNAPSHOT, KL_KIND_SNAPSHOT, s->name, rc));
			rc = c->fatal;
			continue;
		}
		s->time_ns = snap.time_ns;
		s->tree = snap.tree;
		kl_snapshot_release(&snap);
	}
	names_release(&l);
	if (rc >= 0 && c->n_snaps)
		qsort(c->snaps, c->n_snaps, sizeof(*c->snaps), snap_cmp);
	return rc;
}

/*
 * A snapshot needs blob id (a tree if tree). Marks it used; sets *pr to
 * the problem that makes it unusable, recording a new one when it is
 * missing, only in an unindexed pack, or not a tree where one is needed.
 */
static int need_blob(struct check *c, const struct kl_id *id, bool tree, uint32_t *pr)
{
	static const char orphan_why[] = "in no index, but snapshots need its blobs "
					 "(intact: the next backup indexes it again)";
	static const char fallback_why[] = "in no index, but snapshots need its blobs "
					   "(intact: readers find them through the pack header "
					   "while an index file is damaged)";
	struct blob *b;
	char obj[80];
	int rc;

	*pr = 0;
	rc = blob_insert(&c->blobs, id->b, &b);
	if (rc < 0)
		return rc;
	b->flags |= B_USED;
	if (b->flags & B_BAD) {
		*pr = b->problem;
		return 0;
	}
	if (!(b->flags & B_LOCATED)) {
		blob_obj(id->b, obj);
		*pr = problem_add(c, C_BLOB, -KL_ENOTFOUND, false, obj,
				  "missing: in no index and no pack");
	} else if (!(b->flags & B_INDEXED)) {
		struct pack *p = &c->packs.v[b->pack];

		if (!p->orphan_problem) {
			pack_obj(c, b->pack, obj);
			p->orphan_problem =
				problem_add(c, C_PACK, -KL_ENOTFOUND, false, obj, "%s",
					    c->bad_index_files ? fallback_why : orphan_why);
			if (p->orphan_problem) {
				problem_get(c, p->orphan_problem)->orphan = true;
				problem_get(c, p->orphan_problem)->fallback =
					c->bad_index_files > 0;
			}
		}
		*pr = p->orphan_problem;
	} else if (tree && b->type != KL_BLOB_TREE) {
		blob_obj(id->b, obj);
		*pr = problem_add(c, C_BLOB, -KL_ECORRUPT, false, obj,
				  "a data blob where a tree is expected");
	} else {
		return 0;
	}
	if (!*pr)
		return c->fatal;
	problem_get(c, *pr)->attrib = true;
	b->flags |= B_BAD;
	b->problem = *pr;
	return 0;
}

/* Reads and decodes a tree from where the table says it is. */
static int read_tree(struct check *c, uint32_t pidx, const struct kl_blob_entry *e,
		     struct kl_tree *t, const char **why)
{
	char hex[2 * KL_ID_LEN + 1];
	int rc;

	memset(t, 0, sizeof(*t));
	kl_id_hex(&c->packs.v[pidx].id, hex);
	kl_buf_clear(&c->sealed);
	rc = kl_repo_get_raw(c->r, KL_OBJ_DATA, hex, e->offset, e->length, &c->sealed);
	if (rc == -ENOMEM)
		return rc;
	if (rc >= 0 && c->sealed.len != e->length)
		rc = -KL_ECORRUPT;
	if (rc < 0) {
		*why = rc == -KL_ECORRUPT ? "its pack is too short"
		       : rc == -ENOENT	  ? "its pack was removed while check ran"
					  : kl_strerror(rc);
		return rc;
	}
	rc = kl_repo_open_blob(c->r, e, c->sealed.data, &c->plain);
	if (rc == -ENOMEM)
		return rc;
	if (rc < 0) {
		*why = blob_reason(c, e, c->sealed.data);
		return rc;
	}
	rc = kl_tree_decode(c->plain.data, c->plain.len, t);
	/* intact, but in a format only a newer keel reads: not damage to repair */
	if (rc == -KL_EVERSION)
		*why = "its format is newer than this keel: check it with a newer keel";
	else if (rc < 0 && rc != -ENOMEM)
		*why = "does not decode as a tree";
	return rc;
}

/*
 * Reads the continuation parts of a directory too big for one tree blob
 * and joins their nodes to t, its head. Each part is a blob the snapshot
 * needs, checked like the head. Sets *unusable to the problem of the
 * first part that cannot be read (the directory cannot be walked then);
 * problems that leave a part readable are attributed to snapshot si and
 * set *bad when they damage it.
 */
static int read_parts(struct check *c, size_t si, struct kl_tree *t, bool *bad, uint32_t *unusable)
{
	*unusable = 0;
	for (size_t i = 0; i < t->n_more; i++) {
		const struct kl_id *id = &t->more[i];
		struct kl_tree part;
		struct kl_blob_entry e;
		struct problem *p;
		struct blob *b;
		const char *why = NULL;
		char obj[80];
		uint32_t pr;
		int rc;

		rc = need_blob(c, id, true, &pr);
		if (rc < 0)
			return rc;
		b = blob_find(&c->blobs, id->b);
		if (KL_NEVER(!b))
			return -EINVAL;
		p = problem_get(c, pr);
		if (p && !((p->maybe || p->orphan) && (b->flags & B_LOCATED) &&
			   b->type == KL_BLOB_TREE)) {
			*unusable = pr;
			return 0;
		}
		blob_entry(b, &e);
		rc = read_tree(c, b->pack, &e, &part, &why);
		if (rc >= 0) {
			rc = kl_tree_join(t, &part);
			why = "does not continue its directory's tree in order";
		}
		if (rc == -ENOMEM)
			return rc;
		if (rc < 0) {
			if (p && p->maybe) {
				p->maybe = false; /* its pack's damage is confirmed */
				*unusable = pr;
				return 0;
			}
			blob_obj(id->b, obj);
			pr = problem_add(c, C_BLOB, rc, false, obj, "tree unreadable (%s)", why);
			if (!pr)
				return c->fatal;
			problem_get(c, pr)->attrib = true;
			b->flags |= B_BAD;
			b->problem = pr;
			*unusable = pr;
			return 0;
		}
		if (p && p->maybe) {
			/* its pack's header is damaged, but this blob is intact */
			b->flags &= ~B_BAD;
			b->problem = 0;
		} else if (pr) {
			*bad |= damages(c, pr);
			rc = attribute(c, pr, si);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

static int check_file(struct check *c, size_t si, const struct kl_node *n, bool *bad)
{
	c->n_fp = 0;
	for (size_t k = 0; k < n->n_content; k++) {
		uint32_t pr;
		bool seen = false;
		int rc;

		rc = need_blob(c, &n->content[k], false, &pr);
		if (rc < 0)
			return rc;
		if (!pr)
			continue;
		*bad |= damages(c, pr);
		/* name each file once per problem, however many of its blobs it has */
		for (size_t j = 0; !seen && j < c->n_fp; j++)
			seen = c->fp[j] == pr;
		if (seen)
			continue;
		if (c->n_fp < KL_ARRAY_SIZE(c->fp))
			c->fp[c->n_fp++] = pr;
		rc = attribute(c, pr, si);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/*
 * A tree whose children are being walked. The walk keeps these on a heap
 * stack, so a snapshot of any depth can be checked.
 */
struct cframe {
	struct cframe *up;
	struct kl_id id;
	struct kl_tree t;
	size_t next; /* the next node of t */
	size_t base; /* c->path.len of the tree's own path */
	bool bad;    /* something at or below it is bad */
	bool revisit;
};

/*
 * Enters tree id of snapshot si at c->path. Clean trees are read once for
 * all snapshots; a tree below which something is bad is read again for
 * each snapshot that holds it, to name that snapshot's affected paths.
 * Returns 1 when its children are to be walked (a frame pushed on *top),
 * 0 when it is done, with *bad_ret set when something at or below it is
 * bad.
 */
static int tree_enter(struct check *c, size_t si, const struct kl_id *id, bool *bad_ret,
		      struct cframe **top)
{
	struct kl_tree t = {0};
	struct kl_blob_entry e;
	struct problem *p;
	struct blob *b;
	struct cframe *f;
	const char *why = NULL;
	bool bad = false, revisit;
	uint32_t pr, pidx, part_pr;
	int rc;

	*bad_ret = false;
	rc = need_blob(c, id, true, &pr);
	if (rc < 0)
		return rc;
	b = blob_find(&c->blobs, id->b);
	if (KL_NEVER(!b))
		return -EINVAL;
	revisit = b->flags & B_VISITED;
	if (revisit && !damages(c, pr) && !(b->flags & B_BAD_BELOW))
		return 0;
	p = problem_get(c, pr);
	/*
	 * Still read a tree whose pack has a damaged header (its blobs may be
	 * intact) or is in no index (to check what lies below it).
	 */
	if (p && !((p->maybe || p->orphan) && (b->flags & B_LOCATED) && b->type == KL_BLOB_TREE)) {
		*bad_ret = true;
		return attribute(c, pr, si);
	}
	blob_entry(b, &e);
	pidx = b->pack;
	rc = read_tree(c, pidx, &e, &t, &why);
	if (rc == -ENOMEM)
		return rc;
	if (rc < 0) {
		if (p && p->maybe) {
			p->maybe = false; /* its pack's damage is confirmed */
		} else {
			char obj[80];

			blob_obj(id->b, obj);
			pr = problem_add(c, C_BLOB, rc, false, obj, "tree unreadable (%s)", why);
			if (!pr)
				return c->fatal;
			problem_get(c, pr)->attrib = true;
			b->flags |= B_BAD;
			b->problem = pr;
		}
		*bad_ret = true;
		return attribute(c, pr, si);
	}
	if (p && p->maybe) {
		/* its pack's header is damaged, but this blob is intact */
		b->flags &= ~B_BAD;
		b->problem = 0;
		pr = 0;
	}
	if (pr) {
		bad = damages(c, pr);
		rc = attribute(c, pr, si);
		if (rc < 0) {
			kl_tree_release(&t);
			return rc;
		}
	}
	rc = read_parts(c, si, &t, &bad, &part_pr);
	/* a missing part grows the blob table, which moves b */
	b = rc < 0 ? NULL : blob_find(&c->blobs, id->b);
	if (rc >= 0 && KL_NEVER(!b))
		rc = -EINVAL;
	if (rc < 0 || part_pr) {
		kl_tree_release(&t);
		if (rc < 0)
			return rc;
		/* read again for each snapshot, to name its affected paths */
		b->flags |= B_BAD_BELOW;
		*bad_ret = true;
		return attribute(c, part_pr, si);
	}
	if (!revisit) {
		b->flags |= B_VISITED;
		c->res->trees++;
		c->prog.files_done++;
		progress(c, NULL, false);
	}
	f = kl_calloc(1, sizeof(*f));
	if (!f) {
		kl_tree_release(&t);
		return -ENOMEM;
	}
	f->up = *top;
	f->id = *id;
	f->t = t;
	f->base = c->path.len;
	f->bad = bad;
	f->revisit = revisit;
	*top = f;
	return 1;
}

/* Walks tree id of snapshot si and everything below it. */
static int walk_tree(struct check *c, size_t si, const struct kl_id *id)
{
	struct cframe *top = NULL;
	bool nb;
	int rc = tree_enter(c, si, id, &nb, &top);

	while (rc >= 0 && top) {
		struct cframe *f = top;

		if (f->next < f->t.n) {
			const struct kl_node *n = &f->t.nodes[f->next++];

			nb = false;
			kl_buf_setlen(&c->path, f->base);
			rc = kl_buf_addch(&c->path, '/');
			if (rc >= 0)
				rc = kl_buf_add(&c->path, n->name, n->name_len);
			if (rc >= 0 && n->type == KL_NODE_FILE)
				rc = check_file(c, si, n, &nb);
			else if (rc >= 0 && n->type == KL_NODE_DIR && n->has_subtree)
				rc = tree_enter(c, si, &n->subtree, &nb, &top);
			f->bad |= nb; /* a pushed frame reports when it is done */
			continue;
		}
		if (f->bad && !f->revisit) {
			struct blob *b = blob_find(&c->blobs, f->id.b);

			if (b)
				b->flags |= B_BAD_BELOW;
		}
		top = f->up;
		if (top)
			top->bad |= f->bad;
		kl_tree_release(&f->t);
		kl_free(f);
	}
	while (top) {
		struct cframe *f = top;

		top = f->up;
		kl_tree_release(&f->t);
		kl_free(f);
	}
	return rc < 0 ? rc : 0;
}

static int walk_snapshots(struct check *c)
{
	memset(&c->prog, 0, sizeof(c->prog));
	for (size_t si = 0; si < c->n_snaps; si++) {
		int rc;

		if (c->snaps[si].unreadable)
			continue;
		kl_buf_clear(&c->path);
		rc = walk_tree(c, si, &c->snaps[si].tree);
		if (rc < 0)
			return rc;
	}
	progress(c, NULL, true);
	return 0;
}

/* ---- pass 5: the report ------------------------------------------------------------- */

static int problem_cmp(const void *a, const void *b)
{
	const struct problem *x = a, *y = b;
	int d;

	if (x->cat != y->cat)
		return x->cat < y->cat ? -1 : 1;
	d = strcmp(x->obj, y->obj);
	return d ? d : strcmp(x->why, y->why);
}

static int report(struct check *c)
{
	_cleanup_buf_ struct kl_buf msg = KL_BUF_INIT((size_t)1 << 20);

	/* sorted so that the report does not depend on thread timing; problem numbers die here */
	if (c->n_problems)
		qsort(c->problems, c->n_problems, sizeof(*c->problems), problem_cmp);
	for (size_t i = 0; i < c->n_problems; i++) {
		const struct problem *p = &c->problems[i];
		const struct pack *pk = p->pack ? &c->packs.v[p->pack - 1] : NULL;
		bool intact = pk && (pk->flags & P_READ) && (pk->flags & P_HDR_BAD) &&
			      !(pk->flags & P_ALL_BAD) && !pk->n_bad;
		int rc;

		kl_buf_clear(&msg);
		rc = kl_buf_addstr(&msg, p->why);
		if (rc >= 0 && intact)
			rc = kl_buf_addstr(&msg, "; its blobs are intact");
		else if (rc >= 0 && p->attrib && !p->n_refs)
			rc = kl_buf_addstr(&msg, "; no snapshot is affected");
		else if (rc >= 0 && p->attrib)
			rc = kl_buf_addf(&msg, "; %s %s",
					 p->fallback ? "needed by"
					 : p->maybe  ? "may affect"
						     : "affects",
					 (const char *)p->refs.data);
		if (rc >= 0 && p->attrib && p->n_refs > p->n_shown)
			rc = kl_buf_addf(&msg, " and %llu more",
					 (unsigned long long)(p->n_refs - p->n_shown));
		if (rc < 0)
			return rc;
		if (c->o->report.warn)
			c->o->report.warn(c->o->report.ud, p->obj, p->err, (const char *)msg.data);
	}
	return 0;
}

static int finish(struct check *c)
{
	struct kl_check_result *res = c->res;
	size_t n = 0;
	int rc;

	for (size_t i = 0; i < c->blobs.cap; i++) {
		const struct blob *b = &c->blobs.v[i];

		if (!(b->flags & B_INDEXED))
			continue;
		res->blobs++;
		res->unused_blobs += !(b->flags & B_USED);
	}
	for (size_t i = 0; i < c->packs.n; i++)
		res->packs += !!(c->packs.v[i].flags & P_INDEXED);
	for (size_t i = 0; i < c->n_snaps; i++)
		n += c->snaps[i].damaged;
	if (n) {
		res->damaged_snapshots = kl_calloc(n, sizeof(char *));
		if (!res->damaged_snapshots)
			return -ENOMEM;
		for (size_t i = 0; i < c->n_snaps; i++)
			if (c->snaps[i].damaged)
				res->damaged_snapshots[res->n_damaged++] =
					KL_TAKE_PTR(c->snaps[i].name);
	}
	rc = report(c);
	return rc;
}

static void check_release(struct check *c)
{
	names_release(&c->snap_names);
	for (size_t i = 0; i < c->packs.n; i++)
		kl_pack_header_release(&c->packs.v[i].saved);
	kl_free(c->packs.v);
	kl_free(c->packs.slots);
	kl_free(c->blobs.v);
	for (size_t i = 0; i < c->n_problems; i++) {
		kl_free(c->problems[i].why);
		kl_buf_release(&c->problems[i].refs);
	}
	kl_free(c->problems);
	for (size_t i = 0; i < c->n_snaps; i++)
		kl_free(c->snaps[i].name);
	kl_free(c->snaps);
	kl_free(c->sel);
	kl_buf_release(&c->path);
	kl_buf_release(&c->sealed);
	kl_buf_release(&c->plain);
	pthread_mutex_destroy(&c->lock);
}

void kl_check_result_release(struct kl_check_result *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_damaged; i++)
		kl_free(c->damaged_snapshots[i]);
	kl_free(c->damaged_snapshots);
	memset(c, 0, sizeof(*c));
}

int kl_check(struct kl_repo *r, const struct kl_check_opts *o, struct kl_check_result *ret)
{
	static const struct kl_check_opts defaults = {.read_data = false};
	struct check c = {.r = r, .o = o ? o : &defaults, .res = ret};
	int rc;

	memset(ret, 0, sizeof(*ret));
	if (KL_NEVER(!kl_repo_keys(r)))
		return -EINVAL;
	if (c.o->subset_m && (!c.o->subset_n || c.o->subset_n > c.o->subset_m))
		return -KL_EUSAGE;
	pthread_mutex_init(&c.lock, NULL);
	kl_buf_init(&c.path, KL_BUF_MAX_DEFAULT);
	kl_buf_init(&c.sealed, TREE_MAX);
	kl_buf_init(&c.plain, TREE_MAX);

	rc = kl_repo_list(r, KL_OBJ_SNAPSHOT, names_add, &c.snap_names);
	if (rc >= 0)
		rc = kl_repo_list(r, KL_OBJ_DATA, list_pack, &c);
	if (rc >= 0)
		rc = check_indexes(&c);
	if (rc >= 0)
		rc = scan_orphans(&c);
	if (rc >= 0 && c.o->read_data)
		rc = data_pass(&c);
	if (rc >= 0)
		rc = load_snapshots(&c);
	if (rc >= 0)
		rc = walk_snapshots(&c);
	if (rc >= 0 && c.fatal)
		rc = c.fatal;
	if (rc >= 0) {
		uint64_t age = c.o->stale_tmp_age_s ? c.o->stale_tmp_age_s : 3600;

		rc = kl_repo_sweep_tmp(r, age, c.o->remove_stale_tmp, &ret->tmp);
		if (rc < 0)
			rc = kl_repo_fail(r, rc, "cannot look for temporary files");
	}
	if (rc >= 0)
		rc = finish(&c);
	check_release(&c);
	if (rc < 0)
		return rc;
	return ret->errors ? -KL_ECHECK : 0;
}
