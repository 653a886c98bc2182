/*
 * Sealed objects: AES-256-GCM with a random 96-bit nonce.
 *
 *   version (1 byte, 0x01) | nonce (12) | ciphertext (= plaintext length) | tag (16)
 *
 * The associated data is the object kind (1 byte) followed by the
 * caller's extra bytes (a blob id, a key file's salt), so an object cannot
 * be passed off as another kind or as another blob. The version byte is
 * not authenticated; it is checked to be exactly 1 instead.
 *
 * Each call makes its own EVP_CIPHER_CTX, so both functions are
 * thread-safe; the context costs a few hundred nanoseconds, nothing next
 * to sealing a chunk of a mebibyte.
 */
#include <limits.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <sodium.h>

#include "keel/crypto.h"

/* NIST SP 800-38D: at most 2^39 - 256 bits of plaintext per message. */
#define GCM_MAX_PT (((uint64_t)1 << 36) - 32)
/* EVP_*Update take an int length: feed larger inputs in steps. */
#define EVP_STEP ((size_t)1 << 30)

enum aead_dir { SEAL, OPEN };

/* AAD = kind | extra. Returns true on success. */
static bool add_aad(EVP_CIPHER_CTX *ctx, enum aead_dir dir, uint8_t kind, const uint8_t *extra,
		    size_t extra_len)
{
	int (*update)(EVP_CIPHER_CTX *, unsigned char *, int *, const unsigned char *, int) =
		dir == SEAL ? EVP_EncryptUpdate : EVP_DecryptUpdate;
	size_t off, step;
	int l;

	if (update(ctx, NULL, &l, &kind, 1) != 1)
		return false;
	for (off = 0; off < extra_len; off += step) {
		step = KL_MIN(extra_len - off, EVP_STEP);
		if (update(ctx, NULL, &l, extra + off, (int)step) != 1)
			return false;
	}
	return true;
}

/* Encrypts or decrypts n bytes from in to out. GCM is a stream mode: out gets exactly n. */
static bool aead_crypt(EVP_CIPHER_CTX *ctx, enum aead_dir dir, const uint8_t *in, size_t n,
		       uint8_t *out)
{
	int (*update)(EVP_CIPHER_CTX *, unsigned char *, int *, const unsigned char *, int) =
		dir == SEAL ? EVP_EncryptUpdate : EVP_DecryptUpdate;
	size_t off, step;
	int l;

	for (off = 0; off < n; off += step) {
		step = KL_MIN(n - off, EVP_STEP);
		if (update(ctx, out + off, &l, in + off, (int)step) != 1 ||
		    KL_NEVER((size_t)l != step))
			return false;
	}
	return true;
}

int kl_seal(const struct kl_key *key, enum kl_obj_kind kind, const void *extra, size_t extra_len,
	    const void *pt, size_t pt_len, struct kl_buf *out)
{
	EVP_CIPHER_CTX *ctx;
	uint8_t *p;
	bool ok;
	int l = 0, r;

	if (KL_NEVER(kind < 1 || kind > 255))
		return -EINVAL;
	if (pt_len > GCM_MAX_PT)
		return -E2BIG;
	/*
	 * Grow once, then write in place. pt must not point into out: the
	 * grow may move out's bytes.
	 */
	r = kl_buf_grow(out, KL_SEAL_OVERHEAD + pt_len);
	if (r < 0)
		return r;
	p = out->data + out->len;
	p[0] = KL_SEAL_VERSION;
	kl_random(p + 1, KL_NONCE_LEN);

	ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return -ENOMEM;
	/* the default GCM nonce length is 12 bytes, as we want */
	ok = EVP_EncryptInit_ex2(ctx, EVP_aes_256_gcm(), key->b, p + 1, NULL) == 1 &&
	     add_aad(ctx, SEAL, (uint8_t)kind, extra, extra_len) &&
	     aead_crypt(ctx, SEAL, pt, pt_len, p + 1 + KL_NONCE_LEN) &&
	     EVP_EncryptFinal_ex(ctx, p + 1 + KL_NONCE_LEN + pt_len, &l) == 1 && l == 0 &&
	     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, KL_TAG_LEN,
				 p + 1 + KL_NONCE_LEN + pt_len) == 1;
	EVP_CIPHER_CTX_free(ctx);
	if (!ok) {
		/* with valid arguments OpenSSL only fails to allocate */
		ERR_clear_error();
		out->data[out->len] = 0;
		return -ENOMEM;
	}
	out->len += KL_SEAL_OVERHEAD + pt_len;
	out->data[out->len] = 0;
	return 0;
}

int kl_open(const struct kl_key *key, enum kl_obj_kind kind, const void *extra, size_t extra_len,
	    const void *sealed, size_t sealed_len, struct kl_buf *out)
{
	const uint8_t *s = sealed;
	uint8_t tag[KL_TAG_LEN];
	EVP_CIPHER_CTX *ctx;
	size_t ct_len;
	uint8_t *p;
	int l = 0, r, v;

	if (sealed_len < KL_SEAL_OVERHEAD || s[0] != KL_SEAL_VERSION)
		return -KL_ECORRUPT;
	ct_len = sealed_len - KL_SEAL_OVERHEAD;
	if (ct_len > GCM_MAX_PT || kind < 1 || kind > 255)
		return -KL_ECORRUPT;
	r = kl_buf_grow(out, ct_len);
	if (r < 0)
		return r;
	p = out->data + out->len;
	memcpy(tag, s + 1 + KL_NONCE_LEN + ct_len, KL_TAG_LEN);

	ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return -ENOMEM;
	if (EVP_DecryptInit_ex2(ctx, EVP_aes_256_gcm(), key->b, s + 1, NULL) != 1 ||
	    !add_aad(ctx, OPEN, (uint8_t)kind, extra, extra_len) ||
	    !aead_crypt(ctx, OPEN, s + 1 + KL_NONCE_LEN, ct_len, p) ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, KL_TAG_LEN, tag) != 1) {
		r = -ENOMEM; /* as in kl_seal: only allocation fails here */
		goto fail;
	}
	/* compares the tag in constant time (CRYPTO_memcmp) */
	v = EVP_DecryptFinal_ex(ctx, p + ct_len, &l);
	if (v != 1 || l != 0) {
		r = -KL_ECORRUPT;
		goto fail;
	}
	EVP_CIPHER_CTX_free(ctx);
	out->len += ct_len;
	out->data[out->len] = 0;
	return 0;

fail:
	EVP_CIPHER_CTX_free(ctx);
	ERR_clear_error();
	/* unauthenticated plaintext must not outlive the call */
	sodium_memzero(p, ct_len);
	out->data[out->len] = 0;
	return r;
}
