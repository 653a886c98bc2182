/*
 * keel image backup --from-overlay FILE: the image that an overlay file of
 * keel image serve makes of its snapshot's image (the repository's chunks,
 * the overlay's blocks over them), read through the same export that
 * serve uses, without nbdkit. The overlay's header names the snapshot and
 * the image.
 */
#include <fcntl.h>

#include "image-internal.h"

struct kl_img_ovsrc {
	struct kl_snapshot snap;
	struct kl_tree tree;
	const struct kl_node *node;
	struct kl_image_export *e;
};

void kl_img_ovsrc_free(struct kl_img_ovsrc *s)
{
	if (!s)
		return;
	kl_image_export_free(s->e);
	kl_tree_release(&s->tree);
	kl_snapshot_release(&s->snap);
	kl_free(s);
}

static int read_header(struct kl_repo *r, const char *path, struct kl_image_overlay_hdr *h)
{
	uint8_t b[KL_IMAGE_OVERLAY_HDR_LEN];
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	int rc = fd < 0 ? -errno : kl_fs_pread_full(fd, b, sizeof(b), 0);

	if (rc < 0 && rc != -EIO && rc != -ENODATA)
		return kl_repo_fail(r, rc, "cannot read the overlay '%s'", path);
	if (rc >= 0)
		rc = kl_image_overlay_hdr_decode(b, sizeof(b), h);
	/* a file the user named, not the repository: a usage error, not damage (13) */
	if (rc < 0)
		return kl_repo_fail(r, -KL_EUSAGE, "'%s' is not a keel overlay file%s", path,
				    rc == -KL_EVERSION ? " of a version this keel reads" : "");
	return 0;
}

int kl_img_ovsrc_open(struct kl_repo *r, const char *path, struct kl_img_ovsrc **ret)
{
	struct kl_image_export_opts eo = {.readahead = 8, .fetchers = 2};
	struct kl_image_overlay_hdr h;
	struct kl_img_ovsrc *s;
	struct kl_err err = {0};
	char hex[2 * KL_ID_LEN + 1];
	int rc = read_header(r, path, &h);

	*ret = NULL;
	if (rc < 0)
		return rc;
	s = kl_calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	kl_id_hex(&h.snapshot, hex);
	rc = kl_repo_load_snapshot(r, &h.snapshot, &s->snap);
	if (rc >= 0 && s->snap.kind != KL_SNAP_DISK)
		rc = -KL_ECORRUPT;
	if (rc >= 0)
		rc = kl_repo_read_tree(r, &s->snap.tree, &s->tree);
	if (rc < 0) {
		kl_img_ovsrc_free(s);
		return kl_repo_fail(r, rc, "cannot read snapshot %.8s, which overlay '%s' is of",
				    hex, path);
	}
	s->node = kl_tree_find(&s->tree, (const uint8_t *)h.name, strlen(h.name));
	if (!s->node || s->node->size != h.image_size) {
		kl_img_ovsrc_free(s);
		return kl_repo_fail(r, -KL_ECORRUPT,
				    "snapshot %.8s has no image '%s' of %llu bytes", hex, h.name,
				    (unsigned long long)h.image_size);
	}
	rc = kl_image_overlay_open(path, &h, &eo.overlay, &err);
	if (rc < 0) {
		kl_img_ovsrc_free(s);
		return kl_repo_fail(r, rc, "%s", err.msg);
	}
	rc = kl_image_export_open(r, s->node, s->snap.image_chunk_size, &eo, &s->e);
	if (rc < 0)
		kl_image_overlay_free(eo.overlay);
	if (rc >= 0)
		rc = kl_image_export_start(s->e);
	if (rc < 0) {
		kl_img_ovsrc_free(s);
		return rc;
	}
	*ret = s;
	return 0;
}

const struct kl_node *kl_img_ovsrc_node(const struct kl_img_ovsrc *s)
{
	return s->node;
}

uint32_t kl_img_ovsrc_chunk_size(const struct kl_img_ovsrc *s)
{
	return s->snap.image_chunk_size;
}

struct kl_image_export *kl_img_ovsrc_export(struct kl_img_ovsrc *s)
{
	return s->e;
}
