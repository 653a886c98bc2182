/*
 * Library start-up and the small primitives: randomness, wiping,
 * constant-time comparison, plain SHA-256 and passphrases in guarded
 * memory.
 */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <sodium.h>

#include "keel/crypto.h"

/*
 * Known answers checked at start-up, so a broken or misconfigured OpenSSL
 * (no default provider, a FIPS provider without AES-GCM) fails early and
 * loudly instead of on the first backup.
 *
 * SHA-256("abc"), FIPS 180-2 appendix B.1.
 */
static const uint8_t sha256_abc[32] = {
	0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
	0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
	0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
};

/*
 * AES-256-GCM with an all-zero key and nonce over 16 zero bytes and no
 * AAD: test case 14 of McGrew and Viega, "The Galois/Counter Mode of
 * Operation", ciphertext followed by the tag.
 */
static const uint8_t gcm_tc14[32] = {
	0xce, 0xa7, 0x40, 0x3d, 0x4d, 0x60, 0x6b, 0x6e, 0x07, 0x4e, 0xc5,
	0xd3, 0xba, 0xf3, 0x9d, 0x18, 0xd0, 0xd1, 0xc8, 0xa7, 0x99, 0x99,
	0x6b, 0xf0, 0x26, 0x5b, 0x98, 0xb5, 0xd4, 0x8a, 0xb9, 0x19,
};

static bool openssl_works(void)
{
	static const uint8_t zero[32];
	uint8_t ct[32];
	struct kl_id id;
	EVP_CIPHER_CTX *ctx;
	EVP_CIPHER *aes;
	EVP_MD *sha;
	int l1 = 0, l2 = 0;
	bool ok;

	/* explicit fetches: fail if no loaded provider implements them */
	aes = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	sha = EVP_MD_fetch(NULL, "SHA256", NULL);
	ok = aes && sha;
	EVP_CIPHER_free(aes);
	EVP_MD_free(sha);
	if (!ok)
		return false;

	/* EVP_Digest itself: kl_sha256 would fall back to libsodium */
	if (EVP_Digest("abc", 3, id.b, NULL, EVP_sha256(), NULL) != 1 ||
	    memcmp(id.b, sha256_abc, sizeof(id.b)))
		return false;

	/* the same calls kl_seal makes */
	ctx = EVP_CIPHER_CTX_new();
	ok = ctx && EVP_EncryptInit_ex2(ctx, EVP_aes_256_gcm(), zero, zero, NULL) == 1 &&
	     EVP_EncryptUpdate(ctx, ct, &l1, zero, 16) == 1 && l1 == 16 &&
	     EVP_EncryptFinal_ex(ctx, ct + l1, &l2) == 1 && l2 == 0 &&
	     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, ct + 16) == 1 &&
	     memcmp(ct, gcm_tc14, sizeof(ct)) == 0;
	EVP_CIPHER_CTX_free(ctx);
	return ok;
}

int kl_crypto_init(void)
{
	if (sodium_init() < 0)
		return -ENOSYS;
	if (!openssl_works()) {
		ERR_clear_error();
		return -ENOSYS;
	}
	return 0;
}

void kl_random(void *p, size_t n)
{
	randombytes_buf(p, n);
}

void kl_wipe(void *p, size_t n)
{
	sodium_memzero(p, n);
}

bool kl_ct_equal(const void *a, const void *b, size_t n)
{
	return sodium_memcmp(a, b, n) == 0;
}

void kl_sha256(const void *data, size_t n, struct kl_id *ret)
{
	/*
	 * EVP_Digest uses SHA-NI where the CPU has it. It can only fail to
	 * allocate its context; libsodium's portable SHA-256 gives the same
	 * bytes without allocating, so this function cannot fail.
	 */
	if (EVP_Digest(data, n, ret->b, NULL, EVP_sha256(), NULL) == 1)
		return;
	ERR_clear_error();
	crypto_hash_sha256(ret->b, data, n);
}

int kl_pass_new(const char *s, size_t len, struct kl_pass **ret)
{
	struct kl_pass *pw;

	if (len == SIZE_MAX)
		return -E2BIG;
	pw = kl_calloc(1, sizeof(*pw));
	if (!pw)
		return -ENOMEM;
	pw->p = sodium_malloc(len + 1);
	if (!pw->p) {
		kl_free(pw);
		return -ENOMEM;
	}
	if (len)
		memcpy(pw->p, s, len);
	pw->p[len] = 0;
	pw->len = len;
	*ret = pw;
	return 0;
}

void kl_pass_free(struct kl_pass *p)
{
	if (!p)
		return;
	sodium_free(p->p); /* wipes */
	kl_free(p);
}
