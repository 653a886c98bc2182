/* Shared between the files of src/repo only. */
#ifndef KEEL_REPO_INTERNAL_H
#define KEEL_REPO_INTERNAL_H

#include "keel/repo.h"

int kl_index_new_(struct kl_index **ret);
void kl_index_free_(struct kl_index *x);
/* Adds a pack's blobs; pending: also remember it for the next index file. */
int kl_index_add_pack_(struct kl_repo *r, const struct kl_id *pack, const struct kl_pack_header *h,
		       bool pending);

#endif
