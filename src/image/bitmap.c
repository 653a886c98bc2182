/*
 * keel image backup --dirty-bitmap: whether the parent snapshot's chunks
 * may stand for the chunks the bitmap calls clean. A QEMU dirty bitmap
 * says what changed since it was started, which is relative to the parent
 * only when the parent is this disk, read while the bitmap ran.
 */
#include <stdarg.h>
#include <stdio.h>

#include "image-internal.h"

static size_t chunk_len(const struct kl_img_bitmap_parent *bp, const struct kl_node *n, uint64_t k)
{
	uint64_t off = k * bp->chunk;

	return (size_t)(n->size - off < bp->chunk ? n->size - off : bp->chunk);
}

/* Why the bitmap is not used for image n, for the user: the first note only. Returns 0. */
__attribute__((format(printf, 3, 4))) static int
bitmap_note(const struct kl_img_bitmap_parent *bp, const struct kl_node *n, const char *fmt, ...)
{
	char why[200];
	va_list ap;

	if (bp->note[0])
		return 0;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	snprintf(bp->note, bp->note_len, "--dirty-bitmap: image '%.*s' read in full: %s",
		 (int)n->name_len, (const char *)n->name, why);
	return 0;
}

/*
 * Whether chunk k reads as the parent's chunk k: the bitmap says it is
 * clean, so it must. Returns 1 when it does, 0 when not, < 0 on error.
 */
static int same_as_parent(const struct kl_img_bitmap_parent *bp, struct kl_img_nbd *nbd,
			  const char *path, const struct kl_node *p, const struct kl_node *n,
			  uint64_t k)
{
	size_t len = chunk_len(bp, n, k);
	_cleanup_free_ uint8_t *buf = kl_malloc(len);
	struct kl_id id;
	int rc;

	if (!buf)
		return -ENOMEM;
	rc = kl_img_nbd_read(nbd, buf, len, k * bp->chunk);
	if (rc < 0)
		return kl_repo_fail(bp->r, rc, "cannot read '%s' at offset %llu", path,
				    (unsigned long long)k * bp->chunk);
	kl_blob_id(kl_repo_keys(bp->r), buf, len, &id);
	return kl_id_eq(&id, &p->content[k]);
}

/*
 * The bitmap against the parent, on a sample: in each quarter of the
 * image, the first chunk that is clean and holds data in the parent must
 * read as the parent's (one chunk read each). Returns 1 when all do, 0
 * (with a note) when one does not.
 */
static int sample_clean(const struct kl_img_bitmap_parent *bp, struct kl_img_nbd *nbd,
			const char *path, const struct kl_node *p, const struct kl_node *n)
{
	uint64_t nchunks = p->n_content;
	_cleanup_free_ uint8_t *zeros = kl_calloc(1, bp->chunk);
	struct kl_id zero;
	int rc;

	if (!zeros)
		return -ENOMEM;
	kl_blob_id(kl_repo_keys(bp->r), zeros, bp->chunk, &zero);
	for (unsigned q = 0; q < 4; q++) {
		for (uint64_t k = nchunks * q / 4; k < nchunks * (q + 1) / 4; k++) {
			if (kl_id_eq(&p->content[k], &zero))
				continue; /* a hole in both says little about which disk it is */
			rc = kl_img_nbd_is_dirty(nbd, k * bp->chunk, chunk_len(bp, n, k));
			if (rc < 0)
				return kl_repo_fail(bp->r, rc,
						    "cannot read the dirty bitmap of '%s'", path);
			if (rc > 0)
				continue;
			rc = same_as_parent(bp, nbd, path, p, n, k);
			if (rc < 0)
				return rc;
			if (rc == 0)
				return bitmap_note(
					bp, n,
					"chunk %llu is clean in the bitmap but differs from "
					"the parent snapshot's (another disk, or a bitmap "
					"started after it)",
					(unsigned long long)k);
			break;
		}
	}
	return 1;
}

int kl_img_bitmap_parent(const struct kl_img_bitmap_parent *bp, struct kl_img_nbd *nbd,
			 const char *path, const struct kl_node *n, size_t idx,
			 const struct kl_node **ret)
{
	const struct kl_snapshot *ps = bp->snap;
	const char *m = ps->image_method, *ident = bp->ident;
	const struct kl_node *p;
	int rc;

	*ret = NULL;
	p = kl_tree_find(bp->tree, n->name, n->name_len);
	if (!p || p->type != KL_NODE_FILE)
		return bitmap_note(bp, n, "the parent snapshot has no image of that name");
	if (p->size != n->size || p->n_content != (n->size + bp->chunk - 1) / bp->chunk)
		return bitmap_note(bp, n, "it is %llu bytes, the parent snapshot's %llu",
				   (unsigned long long)n->size, (unsigned long long)p->size);
	if (!m || (strcmp(m, KL_IMAGE_METHOD_READ) && strcmp(m, KL_IMAGE_METHOD_DIRTY)))
		return bitmap_note(bp, n, "the parent snapshot was not taken by reading the disk");
	/*
	 * Another bitmap's changes are since that one was started: not since
	 * the parent. A parent without a name was a plain read (or is older
	 * than the field): the checks below stand for it.
	 */
	if (ps->image_bitmap && strcmp(ps->image_bitmap, bp->bitmap))
		return bitmap_note(bp, n,
				   "the parent snapshot was taken with the dirty bitmap '%s'",
				   ps->image_bitmap);
	if (ps->n_image_ident != bp->n_sources || strcmp(ps->image_ident[idx], ident))
		return bitmap_note(bp, n, "the parent snapshot is of another disk ('%s', now '%s')",
				   ps->n_image_ident == bp->n_sources ? ps->image_ident[idx] : "?",
				   ident);
	rc = sample_clean(bp, nbd, path, p, n);
	if (rc > 0)
		*ret = p;
	return rc < 0 ? rc : 0;
}
