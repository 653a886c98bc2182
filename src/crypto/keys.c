/*
 * The repository's keys and blob ids.
 *
 * Every subkey comes from the 32-byte master secret through HKDF-SHA-256
 * (RFC 5869) with an empty salt and a label as info, so a leak of one
 * subkey (say, the chunker key through timing of chunk boundaries) tells
 * nothing about the others:
 *
 *   enc     = HKDF(master, "keel enc v1")
 *   id      = HKDF(master, "keel id v1")
 *   chunker = HKDF(master, "keel chunker v1")
 *   tree_id = HKDF(master, "keel tree id v1")
 *
 * Blob ids are HMAC-SHA-256 under the id key. They are computed for every
 * chunk from several threads, so the two HMAC key blocks are absorbed
 * once: struct kl_hmac_state keeps SHA-256 contexts that have already
 * hashed (key ^ ipad) and (key ^ opad), and each call copies them. That
 * runs at raw SHA-256 speed (SHA-NI) with no per-call key setup; OpenSSL's
 * EVP_MAC API would fetch and key a new HMAC on each call.
 */
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <sodium.h>

#include "keel/crypto.h"

#define SHA256_BLOCK 64

struct kl_hmac_state {
	struct kl_key key; /* the id key the two contexts were made from */
	EVP_MD_CTX *inner; /* SHA-256 that has absorbed key ^ ipad (one block) */
	EVP_MD_CTX *outer; /* SHA-256 that has absorbed key ^ opad */
};

/*
 * One sodium_malloc region holds both, so the keys and the HMAC state
 * share the guard pages and are wiped together. keys comes first: a
 * struct kl_keys * from kl_keys_new is a struct keys_box *.
 */
struct keys_box {
	struct kl_keys keys;
	struct kl_hmac_state hmac;
};

/*
 * sodium_malloc places the region right before a guard page, so its
 * alignment is that of the size: round up.
 */
#define BOX_SIZE ((sizeof(struct keys_box) + 15) & ~(size_t)15)

static const uint8_t empty[1];

/* ---- HKDF ------------------------------------------------------------- */

static int hkdf_sha256(const struct kl_key *ikm, const char *const *labels,
		       struct kl_key *const *out, size_t n)
{
	EVP_KDF_CTX *kctx = NULL;
	EVP_KDF *kdf;
	size_t i;
	int r = 0;

	kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	if (!kdf)
		return -ENOSYS;
	kctx = EVP_KDF_CTX_new(kdf);
	EVP_KDF_free(kdf);
	if (!kctx)
		return -ENOMEM;
	for (i = 0; i < n && r == 0; i++) {
		/* no salt parameter: HKDF-Extract then keys HMAC with the empty string */
		OSSL_PARAM params[] = {
			OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256",
							 0),
			OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm->b,
							  KL_KEY_LEN),
			OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)labels[i],
							  strlen(labels[i])),
			OSSL_PARAM_construct_end(),
		};

		if (EVP_KDF_derive(kctx, out[i]->b, KL_KEY_LEN, params) != 1)
			r = -ENOMEM;
	}
	EVP_KDF_CTX_free(kctx); /* cleanses its copy of the key */
	if (r < 0)
		ERR_clear_error();
	return r;
}

/* ---- HMAC state ------------------------------------------------------- */

static void hmac_state_release(struct kl_hmac_state *st)
{
	EVP_MD_CTX_free(st->inner); /* the provider wipes the SHA-256 state */
	EVP_MD_CTX_free(st->outer);
	st->inner = st->outer = NULL;
	sodium_memzero(&st->key, sizeof(st->key));
}

/* Absorbs (key ^ pad) into a fresh SHA-256 context. */
static EVP_MD_CTX *hmac_half(EVP_MD *md, const struct kl_key *key, uint8_t pad)
{
	uint8_t block[SHA256_BLOCK];
	EVP_MD_CTX *c;
	size_t i;

	c = EVP_MD_CTX_new();
	if (!c)
		return NULL;
	/* RFC 2104: the key, zero-padded to the block size, xor the pad byte */
	memset(block, pad, sizeof(block));
	for (i = 0; i < KL_KEY_LEN; i++)
		block[i] ^= key->b[i];
	if (EVP_DigestInit_ex2(c, md, NULL) != 1 ||
	    EVP_DigestUpdate(c, block, sizeof(block)) != 1) {
		EVP_MD_CTX_free(c);
		c = NULL;
	}
	sodium_memzero(block, sizeof(block));
	return c;
}

static int hmac_state_init(struct kl_hmac_state *st, const struct kl_key *key)
{
	EVP_MD *md;

	md = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (!md)
		return -ENOSYS;
	st->inner = hmac_half(md, key, 0x36);
	st->outer = hmac_half(md, key, 0x5c);
	EVP_MD_free(md); /* the contexts hold their own references */
	if (!st->inner || !st->outer) {
		hmac_state_release(st);
		ERR_clear_error();
		return -ENOMEM;
	}
	st->key = *key;
	return 0;
}

/* HMAC-SHA-256 from the precomputed state. False only if OpenSSL cannot allocate. */
static bool hmac_fast(const struct kl_hmac_state *st, const void *data, size_t n, uint8_t out[32])
{
	uint8_t ih[32];
	EVP_MD_CTX *c;
	bool ok;

	c = EVP_MD_CTX_new();
	if (!c)
		return false;
	/* EVP_MD_CTX_copy_ex only reads its source: safe from any number of threads */
	ok = EVP_MD_CTX_copy_ex(c, st->inner) == 1 && EVP_DigestUpdate(c, data, n) == 1 &&
	     EVP_DigestFinal_ex(c, ih, NULL) == 1 && EVP_MD_CTX_copy_ex(c, st->outer) == 1 &&
	     EVP_DigestUpdate(c, ih, sizeof(ih)) == 1 && EVP_DigestFinal_ex(c, out, NULL) == 1;
	EVP_MD_CTX_free(c);
	return ok;
}

/* ---- keys ------------------------------------------------------------- */

static struct keys_box *box_new(void)
{
	struct keys_box *b;

	b = sodium_malloc(BOX_SIZE);
	if (!b)
		return NULL;
	memset(b, 0, BOX_SIZE);
	return b;
}

static void box_free(struct keys_box *b)
{
	if (!b)
		return;
	hmac_state_release(&b->hmac);
	sodium_free(b); /* wipes */
}

/* Derives the subkeys and the HMAC state from b->keys.master. */
static int box_derive(struct keys_box *b)
{
	static const char *const labels[] = {"keel enc v1", "keel id v1", "keel chunker v1",
					     "keel tree id v1"};
	struct kl_key *const out[] = {&b->keys.enc, &b->keys.id, &b->keys.chunker,
				      &b->keys.tree_id};
	int r;

	r = hkdf_sha256(&b->keys.master, labels, out, KL_ARRAY_SIZE(labels));
	if (r < 0)
		return r;
	r = hmac_state_init(&b->hmac, &b->keys.id);
	if (r < 0)
		return r;
	b->keys.hmac = &b->hmac;
	return 0;
}

int kl_keys_new(struct kl_keys **ret)
{
	struct keys_box *b;
	int r;

	b = box_new();
	if (!b)
		return -ENOMEM;
	kl_random(b->keys.master.b, KL_KEY_LEN); /* generated in guarded memory */
	r = box_derive(b);
	if (r < 0) {
		box_free(b);
		return r;
	}
	*ret = &b->keys;
	return 0;
}

int kl_keys_from_master(const struct kl_key *master, struct kl_keys **ret)
{
	struct keys_box *b;
	int r;

	b = box_new();
	if (!b)
		return -ENOMEM;
	b->keys.master = *master;
	r = box_derive(b);
	if (r < 0) {
		box_free(b);
		return r;
	}
	*ret = &b->keys;
	return 0;
}

void kl_keys_free(struct kl_keys *k)
{
	/* keys is the first member of the box */
	box_free((struct keys_box *)k);
}

void kl_blob_id(const struct kl_keys *k, const void *data, size_t n, struct kl_id *ret)
{
	const struct kl_hmac_state *st = k->hmac;
	unsigned int len = 0;

	if (!data)
		data = empty;
	/*
	 * The state is used only if it was made from the key now in id
	 * (someone may have set id by hand). Both are secret, so compare in
	 * constant time; 32 bytes cost nothing next to the hash.
	 */
	if (st && st->inner && sodium_memcmp(st->key.b, k->id.b, KL_KEY_LEN) == 0 &&
	    hmac_fast(st, data, n, ret->b))
		return;
	/* keyed on each call: correct, slower */
	if (HMAC(EVP_sha256(), k->id.b, KL_KEY_LEN, data, n, ret->b, &len) && len == KL_ID_LEN)
		return;
	/*
	 * OpenSSL could not allocate. libsodium gives the same bytes with no
	 * allocation, slowly (no SHA-NI), so a blob id never fails.
	 */
	ERR_clear_error();
	crypto_auth_hmacsha256(ret->b, data, n, k->id.b);
}

void kl_tree_blob_id(const struct kl_keys *k, const void *data, size_t n, struct kl_id *ret)
{
	unsigned int len = 0;

	if (!data)
		data = empty;
	/* trees are few and small: the one-shot HMAC's key setup does not matter */
	if (HMAC(EVP_sha256(), k->tree_id.b, KL_KEY_LEN, data, n, ret->b, &len) && len == KL_ID_LEN)
		return;
	ERR_clear_error();
	crypto_auth_hmacsha256(ret->b, data, n, k->tree_id.b);
}

void kl_typed_blob_id(const struct kl_keys *k, int blob_type, const void *data, size_t n,
		      struct kl_id *ret)
{
	/* 2 is KL_BLOB_TREE (format.h); crypto does not depend on format */
	if (blob_type == 2)
		kl_tree_blob_id(k, data, n, ret);
	else
		kl_blob_id(k, data, n, ret);
}
