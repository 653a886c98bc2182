/*
 * Shared by the files of check: src/ops/check.c (kl_check and the order
 * of its passes), check-tables.c (blobs, packs, names), check-problems.c
 * (recording and attributing problems), check-headers.c (pack headers),
 * check-index.c (index files), check-data.c (reading packs whole),
 * check-trees.c (snapshots and their trees), check-report.c (the result).
 */
#ifndef KEEL_OPS_CHECK_INTERNAL_H
#define KEEL_OPS_CHECK_INTERNAL_H

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

enum blob_flags {
	B_LIVE = 1 << 0,      /* slot in use */
	B_INDEXED = 1 << 1,   /* an index file lists it; the location fields are valid */
	B_ORPHAN = 1 << 2,    /* only in packs' headers, no index entry; location valid */
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
	bool io;       /* the storage failed to answer: no proof of damage */
	bool disagree; /* an authentic header that an index disagrees with */
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
	int io_err;		  /* the first read error of a problem (see check-report.c) */
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

/* check-tables.c */
struct blob *kl_ck_blob_find(struct blob_table *t, const uint8_t *id);
int kl_ck_blob_insert(struct blob_table *t, const uint8_t *id, struct blob **ret);
void kl_ck_blob_entry(const struct blob *b, struct kl_blob_entry *e);
void kl_ck_blob_locate(struct blob *b, uint32_t pack, const struct kl_blob_entry *e);
int kl_ck_pack_find(struct pack_table *t, const struct kl_id *id);
int kl_ck_pack_get(struct pack_table *t, const struct kl_id *id, uint32_t *ret);
int kl_ck_names_add(const char *name, uint64_t size, void *ud);
void kl_ck_names_release(struct names *l);

/* check-problems.c */
uint32_t kl_ck_problem_add(struct check *c, enum problem_cat cat, int err, bool note,
			   const char *obj, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
void kl_ck_pack_obj(const struct check *c, uint32_t idx, char out[static 80]);
void kl_ck_blob_obj(const uint8_t *id, char out[static 80]);
int kl_ck_attribute(struct check *c, uint32_t pr, size_t si);
void kl_ck_mark_entry(struct check *c, uint32_t idx, const struct kl_blob_entry *e, uint32_t pr);
void kl_ck_progress(struct check *c, const char *current, bool force);
const char *kl_ck_object_reason(struct check *c, enum kl_obj_type t, enum kl_obj_kind kind,
				const char *name, int rc);
const char *kl_ck_blob_reason(struct check *c, const struct kl_blob_entry *e,
			      const uint8_t *sealed);

static inline struct problem *kl_ck_problem_get(struct check *c, uint32_t n)
{
	return n ? &c->problems[n - 1] : NULL;
}

/*
 * Whether problem pr leaves a snapshot unrestorable. Blobs in an unindexed
 * pack do not while an index file is damaged: kl_repo_load_index then
 * indexes such packs from their headers. The walk names only the first
 * snapshots needing them, so that a damaged index file does not make it
 * walk every tree again for every snapshot.
 */
static inline bool kl_ck_damages(struct check *c, uint32_t pr)
{
	return pr && !kl_ck_problem_get(c, pr)->fallback;
}

/* check-headers.c */
int kl_ck_parse_tail(struct kl_repo *r, const uint8_t *p, size_t n, uint64_t size,
		     struct kl_pack_header *h, const char **why, size_t *need);
int kl_ck_fetch_header(struct check *c, uint32_t idx, struct kl_pack_header *h, const char **why);
int kl_ck_check_header(struct check *c, uint32_t idx, const char *fname,
		       const struct kl_pack_header *ie, int rc, const struct kl_pack_header *h,
		       const char *why);

/* check-index.c: passes 1 and 2 */
int kl_ck_list_pack(const char *name, uint64_t size, void *ud);
int kl_ck_check_indexes(struct check *c);
int kl_ck_scan_orphans(struct check *c);

/* check-data.c: pass 3 */
int kl_ck_data_pass(struct check *c);

/* check-trees.c: pass 4 */
int kl_ck_load_snapshots(struct check *c);
int kl_ck_walk_snapshots(struct check *c);

/* check-report.c: pass 5 */
int kl_ck_finish(struct check *c);

#endif
