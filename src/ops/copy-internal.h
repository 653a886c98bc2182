/* Shared by src/ops/copy*.c only. */
#ifndef KEEL_OPS_COPY_INTERNAL_H
#define KEEL_OPS_COPY_INTERNAL_H

#include "keel/copy.h"
#include "keel/pipeline.h"

/*
 * SOURCE's ids to DEST's: a tree to its rewritten tree, a data blob to
 * DEST's blob of the same bytes, a file's content (keyed by the SHA-256
 * of its blob list) to DEST's blob list. Open addressing on the ids,
 * which are hashes already.
 */
struct kl_copy_entry {
	struct kl_id key;
	struct kl_id one; /* n == 1 */
	struct kl_id *v;  /* n > 1 */
	size_t n;
	bool used;
};
struct kl_copy_map {
	struct kl_copy_entry *e;
	size_t cap, n;
};
struct kl_copy_run;
/* Adds key -> v[0..n) (copied) unless key is there. 0 or -ENOMEM. */
int kl_copy_map_put(struct kl_copy_map *m, const struct kl_id *key, const struct kl_id *v,
		    size_t n);
/* The ids key maps to (count in *n_ret), or NULL. */
const struct kl_id *kl_copy_map_get(const struct kl_copy_map *m, const struct kl_id *key,
				    size_t *n_ret);
void kl_copy_map_release(struct kl_copy_map *m);
/* The key of a file's content in file_map. */
void kl_copy_content_key(const struct kl_copy_run *c, const struct kl_node *n, struct kl_id *ret);
/* The key of a tree of SOURCE in tree_map. */
void kl_copy_tree_key(const struct kl_copy_run *c, const struct kl_id *tree, struct kl_id *ret);

struct kl_copy_run {
	struct kl_repo *src, *dst;
	const struct kl_copy_opts *o;
	struct kl_copy_stats *st;
	bool same_chunker; /* the chunkers cut alike */
	/*
	 * The snapshot being copied is a disk image, whose fixed chunks keep
	 * their boundaries though DEST cuts files otherwise (keel image serve
	 * and --dirty-bitmap count on them). Its trees and files are keyed
	 * apart in tree_map and file_map: the same source content is cut
	 * again when it is a file.
	 */
	bool fixed;
	bool reuse; /* same_chunker or fixed: keep SOURCE's blob boundaries */
	unsigned threads;
	struct kl_pipeline pl;
	struct kl_packer *trees; /* NULL on a dry run */
	struct kl_copy_map tree_map, file_map, blob_map;
	struct kl_buf blob; /* one blob read from SOURCE */
	struct kl_buf pend; /* re-chunking: bytes read and not cut yet */
	struct kl_progress prog;
	int64_t next_progress_ns;
};

/*
 * Rewrites the directory src_tree of SOURCE (and all below it) for DEST
 * through the run's pipeline; *ret is DEST's tree id.
 */
int kl_copy_dir(struct kl_copy_run *c, const struct kl_id *src_tree, struct kl_id *ret);
/*
 * Learns from a copy made before: dst_tree is DEST's rewrite of src_tree.
 * Fills the maps for every directory below whose data DEST holds whole,
 * so that the copy of a related snapshot reads only what changed.
 * Returns 1 when all of dst_tree is present, 0 when not, < 0 on error
 * (a tree that cannot be read counts as not present).
 */
int kl_copy_seed(struct kl_copy_run *c, const struct kl_id *src_tree, const struct kl_id *dst_tree);

#endif
