/*
 * The blob index's table and its bookkeeping of index files, shared by
 * index.c (the table: adding, looking up and claiming blobs) and
 * index-load.c (reading index files and applying their rules, refreshing,
 * adopting orphan packs, writing the pending index file). Not for use
 * elsewhere, not even in the rest of src/repo.
 */
#ifndef KEEL_REPO_INDEX_INTERNAL_H
#define KEEL_REPO_INDEX_INTERNAL_H

#include <pthread.h>

#include "repo-internal.h"

enum { SLOT_EMPTY = 0, SLOT_STORED = 1, SLOT_CLAIMED = 2 };
/* a pack entry not from an index file: written or adopted by this process, or a record's */
#define NO_FILE UINT32_MAX

struct slot {
	uint8_t id[KL_ID_LEN];
	uint32_t pack;
	uint32_t offset;
	uint32_t length;
	uint32_t raw_length;
	uint8_t type, compression, state;
	/*
	 * The location is in a pack that awaits deletion (a prune's deletion
	 * record names it): readable, but never a reason to skip storing the
	 * blob again, so that nothing new comes to depend on that pack.
	 */
	uint8_t deleting;
};

struct pending_pack {
	struct kl_id pack;
	struct kl_pack_header h;
};

struct kl_index {
	pthread_mutex_t lock;
	struct slot *slots;
	size_t cap, used; /* used counts STORED and CLAIMED */
	struct kl_id *packs;
	uint32_t *pack_file; /* per entry of packs: which of files listed it, or NO_FILE */
	size_t n_packs, cap_packs;
	struct kl_id *superseded; /* what the index files loaded say they replace */
	size_t n_superseded, cap_superseded;
	/*
	 * Copies of blobs in other packs than their slot's, met while loading
	 * (a slot keeps the first live copy). Only until every index file is
	 * read is it known which packs are deleting; a slot found to be in
	 * one then takes a live copy from here, so no file is read twice.
	 * Only blobs stored in several packs have one: after a prune that
	 * repacked them, or two backups that stored the same new blob.
	 */
	struct slot *alts;
	size_t n_alts, cap_alts;
	struct pending_pack *pending; /* packs written but not yet in an index file */
	size_t n_pending, cap_pending;
	struct kl_id *files; /* index files loaded (not deletion records) */
	size_t n_files, cap_files;
	struct kl_id *records; /* deletion records loaded */
	size_t n_records, cap_records;
	struct kl_id *deleting; /* packs that deletion records name, sorted after loading */
	size_t n_deleting, cap_deleting;
	bool loaded; /* kl_repo_load_index() succeeded */
};

/* The slot holding id, or an empty one where it would go; NULL before the first blob. Lock held. */
struct slot *kl_index_find_slot_(struct kl_index *x, const uint8_t *id);
/* Adds a pack's blobs, file the entry of x->files that lists the pack, or NO_FILE. */
int kl_index_add_(struct kl_repo *r, const struct kl_id *pack, const struct kl_pack_header *h,
		  unsigned flags, uint32_t file);

#endif
