/*
 * Sealed whole-file objects (config, snapshots, indexes, locks):
 * plaintext = compression byte (0 none, 1 zstd) | payload, sealed with the
 * repository key; stored under the SHA-256 of the stored bytes so that a
 * reader can check a file's integrity before it even decrypts it.
 */
#include <zstd.h>

#include "repo-internal.h"

/* a config this keel accepts must name a chunker this keel has */
_Static_assert(KL_CDC_VARIANT_MAX == KL_CONFIG_CDC_VARIANT_MAX, "chunker and config disagree");
_Static_assert(KL_SEAL_OVERHEAD == KL_FORMAT_SEAL_OVERHEAD, "crypto and format disagree");

#define OBJECT_MAX ((size_t)1 << 30)

void kl_id_hex(const struct kl_id *id, char out[2 * KL_ID_LEN + 1])
{
	kl_hex_encode(id->b, KL_ID_LEN, out);
}

int kl_id_parse(const char *hex, struct kl_id *ret)
{
	return kl_hex_decode(hex, KL_ID_LEN, ret->b) < 0 ? -KL_ECORRUPT : 0;
}

static int seal_payload(struct kl_repo *r, enum kl_obj_kind kind, const void *payload, size_t n,
			struct kl_buf *out)
{
	_cleanup_buf_ struct kl_buf pt = KL_BUF_INIT(OBJECT_MAX);
	size_t bound = ZSTD_compressBound(n), z;
	int rc;

	rc = kl_buf_grow(&pt, bound + 1);
	if (rc < 0)
		return rc;
	z = ZSTD_compress(pt.data + 1, bound, payload, n, 3);
	if (!ZSTD_isError(z) && z + 16 < n) {
		pt.data[0] = KL_COMP_ZSTD;
		pt.len = z + 1;
	} else {
		pt.data[0] = KL_COMP_NONE;
		memcpy(pt.data + 1, payload, n);
		pt.len = n + 1;
	}
	rc = kl_seal(&r->keys->enc, kind, NULL, 0, pt.data, pt.len, out);
	kl_wipe(pt.data, pt.len);
	return rc;
}

int kl_repo_put_object(struct kl_repo *r, enum kl_obj_type t, enum kl_obj_kind kind,
		       const void *payload, size_t n, struct kl_id *ret)
{
	_cleanup_buf_ struct kl_buf sealed = KL_BUF_INIT(OBJECT_MAX);
	char hex[2 * KL_ID_LEN + 1];
	struct kl_id id;
	int rc;

	rc = seal_payload(r, kind, payload, n, &sealed);
	if (rc < 0)
		return rc;
	kl_sha256(sealed.data, sealed.len, &id);
	kl_id_hex(&id, hex);
	rc = r->be->ops->put(r->be, t, t == KL_OBJ_CONFIG ? "config" : hex, sealed.data,
			     sealed.len);
	if (rc < 0)
		return kl_repo_fail(r, rc, "cannot write %s/%s", kl_obj_type_name(t), hex);
	if (ret)
		*ret = id;
	return 0;
}

int kl_repo_get_object(struct kl_repo *r, enum kl_obj_type t, enum kl_obj_kind kind,
		       const char *name, struct kl_buf *out)
{
	_cleanup_buf_ struct kl_buf raw = KL_BUF_INIT(OBJECT_MAX);
	_cleanup_buf_ struct kl_buf pt = KL_BUF_INIT(OBJECT_MAX);
	unsigned long long size;
	struct kl_id want, got;
	int rc;

	rc = r->be->ops->get(r->be, t, name, 0, 0, &raw);
	if (rc < 0)
		return rc == -ENOENT ? -KL_ENOTFOUND : rc;
	if (t != KL_OBJ_CONFIG) {
		if (kl_id_parse(name, &want) < 0)
			return -KL_ECORRUPT;
		kl_sha256(raw.data, raw.len, &got);
		if (!kl_id_eq(&want, &got))
			return -KL_ECORRUPT;
	}
	rc = kl_open(&r->keys->enc, kind, NULL, 0, raw.data, raw.len, &pt);
	if (rc < 0)
		return rc;
	if (pt.len < 1)
		return -KL_ECORRUPT;
	kl_buf_clear(out);
	if (pt.data[0] == KL_COMP_NONE)
		return kl_buf_add(out, pt.data + 1, pt.len - 1);
	if (pt.data[0] != KL_COMP_ZSTD)
		return -KL_ECORRUPT;
	size = ZSTD_getFrameContentSize(pt.data + 1, pt.len - 1);
	if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size > OBJECT_MAX)
		return -KL_ECORRUPT;
	rc = kl_buf_grow(out, (size_t)size);
	if (rc < 0)
		return rc;
	size_t z = ZSTD_decompress(out->data, (size_t)size, pt.data + 1, pt.len - 1);
	if (ZSTD_isError(z) || z != size)
		return -KL_ECORRUPT;
	return kl_buf_setlen(out, z);
}
