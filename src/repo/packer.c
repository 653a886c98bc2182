/*
 * Packers turn blobs into pack files:
 *   sealed blob 0 | sealed blob 1 | ... | sealed header | header length (u32 LE)
 * Each blob is compressed (when that saves space) and sealed with its id as
 * associated data, so a blob cannot be moved to another id. The header
 * repeats the index entries, so indexes can be rebuilt from packs alone.
 * The pack is named by the SHA-256 of its bytes.
 */
#include <zstd.h>

#include "repo-internal.h"

struct kl_packer {
	struct kl_repo *r;
	struct kl_buf pack;
	struct kl_buf z;
	struct kl_pack_header h;
	ZSTD_CCtx *zc;
	struct kl_write_stats st;
};

int kl_packer_new(struct kl_repo *r, struct kl_packer **ret)
{
	struct kl_packer *p = kl_calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->r = r;
	kl_buf_init(&p->pack, (size_t)UINT32_MAX);
	kl_buf_init(&p->z, (size_t)128 << 20);
	p->zc = ZSTD_createCCtx();
	if (!p->zc) {
		kl_free(p);
		return -ENOMEM;
	}
	if (r->cfg.compression_level)
		ZSTD_CCtx_setParameter(p->zc, ZSTD_c_compressionLevel, r->cfg.compression_level);
	*ret = p;
	return 0;
}

void kl_packer_free(struct kl_packer *p)
{
	if (!p)
		return;
	kl_buf_release(&p->pack);
	kl_buf_release(&p->z);
	kl_pack_header_release(&p->h);
	ZSTD_freeCCtx(p->zc);
	kl_free(p);
}

void kl_packer_stats(const struct kl_packer *p, struct kl_write_stats *ret)
{
	*ret = p->st;
}

int kl_packer_flush(struct kl_packer *p)
{
	struct kl_repo *r = p->r;
	_cleanup_buf_ struct kl_buf hdr = KL_BUF_INIT((size_t)256 << 20);
	struct kl_id id;
	uint8_t len4[4];
	size_t before;
	int rc;

	if (!p->h.n)
		return 0;
	rc = kl_pack_header_encode(&p->h, &hdr);
	if (rc < 0)
		return rc;
	before = p->pack.len;
	rc = kl_seal(&r->keys->enc, KL_KIND_PACK_HEADER, NULL, 0, hdr.data, hdr.len, &p->pack);
	if (rc < 0)
		return rc;
	kl_put_le32(len4, (uint32_t)(p->pack.len - before));
	rc = kl_buf_add(&p->pack, len4, 4);
	if (rc < 0)
		return rc;
	kl_sha256(p->pack.data, p->pack.len, &id);
	p->st.packs++;
	p->st.bytes_stored += p->pack.len;
	{
		size_t len = p->pack.len;
		uint8_t *data = kl_buf_detach(&p->pack, NULL);

		if (!data)
			return -ENOMEM;
		rc = kl_writer_enqueue_(r->writer, &id, data, len, &p->h);
		/* one allocation per pack instead of doubling up to its size */
		if (rc >= 0)
			kl_buf_grow(&p->pack, r->cfg.pack_size + (r->cfg.pack_size >> 3));
	}
	if (rc < 0)
		return rc;
	kl_pack_header_release(&p->h);
	return 0;
}

int kl_packer_add(struct kl_packer *p, enum kl_blob_type type, const struct kl_id *id,
		  const void *data, size_t n)
{
	struct kl_repo *r = p->r;
	struct kl_blob_entry e = {.id = *id, .type = (uint8_t)type, .raw_length = (uint32_t)n};
	const void *payload = data;
	size_t payload_len = n;
	size_t before = p->pack.len;
	int rc;

	if (n > (64u << 20))
		return -E2BIG;
	rc = kl_repo_cancelled(r);
	if (rc < 0)
		return rc;
	if (r->cfg.compression_level && n >= 64) {
		size_t bound = ZSTD_compressBound(n), z;

		rc = kl_buf_grow(&p->z, bound);
		if (rc < 0)
			return rc;
		z = ZSTD_compress2(p->zc, p->z.data, bound, data, n);
		/* store raw unless compression saves at least 1/32: decompressing costs time */
		if (!ZSTD_isError(z) && z < n - n / 32) {
			payload = p->z.data;
			payload_len = z;
			e.compression = KL_COMP_ZSTD;
		}
	}
	rc = kl_seal(&r->keys->enc, type == KL_BLOB_TREE ? KL_KIND_TREE_BLOB : KL_KIND_DATA_BLOB,
		     id->b, KL_ID_LEN, payload, payload_len, &p->pack);
	if (rc < 0)
		return rc;
	e.offset = (uint32_t)before;
	e.length = (uint32_t)(p->pack.len - before);
	rc = kl_pack_header_add(&p->h, &e);
	if (rc < 0) {
		p->pack.len = before;
		return rc;
	}
	p->st.blobs++;
	p->st.bytes_plain += n;
	if (p->pack.len >= r->cfg.pack_size)
		return kl_packer_flush(p);
	return 0;
}

int kl_packer_add_sealed(struct kl_packer *p, const struct kl_blob_entry *e, const uint8_t *sealed)
{
	struct kl_blob_entry ne = *e;
	size_t before = p->pack.len;
	int rc;

	rc = kl_repo_cancelled(p->r);
	if (rc < 0)
		return rc;
	rc = kl_buf_add(&p->pack, sealed, e->length);
	if (rc < 0)
		return rc;
	ne.offset = (uint32_t)before;
	rc = kl_pack_header_add(&p->h, &ne);
	if (rc < 0) {
		p->pack.len = before;
		return rc;
	}
	p->st.blobs++;
	p->st.bytes_plain += e->raw_length;
	if (p->pack.len >= p->r->cfg.pack_size)
		return kl_packer_flush(p);
	return 0;
}

int kl_packer_store(struct kl_packer *p, enum kl_blob_type type, const void *data, size_t n,
		    struct kl_id *ret)
{
	int rc;

	kl_typed_blob_id(p->r->keys, type, data, n, ret);
	rc = kl_repo_claim(p->r, ret);
	if (rc != 0)
		return rc < 0 ? rc : 0;
	return kl_packer_add(p, type, ret, data, n);
}
_Static_assert(KL_BLOB_TREE == 2, "kl_typed_blob_id assumes tree blobs are type 2");
