/*
 * Cryptography: keys, authenticated encryption of objects, keyed blob ids,
 * passphrase-derived key wrapping. OpenSSL 3 does AES-256-GCM and
 * HMAC-SHA-256 (AES-NI, VAES and SHA-NI), libsodium does Argon2id,
 * guarded memory, wiping and constant-time comparison.
 */
#ifndef KEEL_CRYPTO_H
#define KEEL_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keel/util.h"

#define KL_KEY_LEN 32
#define KL_NONCE_LEN 12
#define KL_TAG_LEN 16
#define KL_SEAL_VERSION 1
/* sealed object: version(1) | nonce(12) | ciphertext | tag(16) */
#define KL_SEAL_OVERHEAD (1 + KL_NONCE_LEN + KL_TAG_LEN)

/* A struct, never a char *, so a key cannot reach a %s. */
struct kl_key {
	uint8_t b[KL_KEY_LEN];
};

/*
 * The repository's secrets: all derived from one 32-byte master secret
 * with HKDF-SHA-256 (see docs/FORMAT.md). Allocated with sodium_malloc
 * (guard pages, mlock) and wiped on free.
 */
struct kl_keys {
	struct kl_key master;
	struct kl_key enc;     /* AES-256-GCM for every object */
	struct kl_key id;      /* HMAC-SHA-256 key for blob ids */
	struct kl_key chunker; /* seeds the chunker's gear table */
	struct kl_key tree_id; /* HMAC-SHA-256 key for tree blob ids */
	/*
	 * Private to src/crypto: kl_blob_id's precomputed HMAC state. NULL
	 * (a struct filled in by hand) is valid, and the state is ignored when
	 * id no longer holds the key it was made from, so callers may set the
	 * key fields directly; kl_blob_id is then slower, never wrong.
	 */
	struct kl_hmac_state *hmac;
};

/* What a sealed object is; bound into the AEAD's associated data. */
enum kl_obj_kind {
	KL_KIND_CONFIG = 1,
	KL_KIND_KEY = 2,
	KL_KIND_SNAPSHOT = 3,
	KL_KIND_INDEX = 4,
	KL_KIND_PACK_HEADER = 5,
	KL_KIND_DATA_BLOB = 6,
	KL_KIND_TREE_BLOB = 7,
	KL_KIND_LOCK = 8,
};

/* Must be called once by main() before threads start; 0 or -ENOSYS. */
int kl_crypto_init(void);

/* Generates a fresh master secret and derives the subkeys. */
int kl_keys_new(struct kl_keys **ret);
/* Derives subkeys from a given master secret (after unwrapping). */
int kl_keys_from_master(const struct kl_key *master, struct kl_keys **ret);
void kl_keys_free(struct kl_keys *k); /* wipes; NULL is a no-op */

void kl_random(void *p, size_t n);
void kl_wipe(void *p, size_t n);
/* Constant-time comparison of n bytes. */
bool kl_ct_equal(const void *a, const void *b, size_t n);

/* Data blob id: HMAC-SHA-256(keys->id, data). Thread-safe. */
void kl_blob_id(const struct kl_keys *k, const void *data, size_t n, struct kl_id *ret);
/*
 * Tree blob id: HMAC-SHA-256(keys->tree_id, data). A separate key, so
 * that a file whose bytes equal some directory's encoding can never be
 * taken for that directory (or the other way round).
 */
void kl_tree_blob_id(const struct kl_keys *k, const void *data, size_t n, struct kl_id *ret);
/* The id of a blob of either type. */
void kl_typed_blob_id(const struct kl_keys *k, int blob_type, const void *data, size_t n,
		      struct kl_id *ret);
/* Plain SHA-256 (names of files in the repository). */
void kl_sha256(const void *data, size_t n, struct kl_id *ret);

/*
 * Seals plaintext into out (appending): version | nonce | ct | tag.
 * aad is kind (1 byte) followed by the optional extra bytes (e.g. a blob
 * id). Thread-safe. pt must not point into out. Returns 0 or
 * -ENOMEM/-E2BIG; out is unchanged on failure.
 */
int kl_seal(const struct kl_key *key, enum kl_obj_kind kind, const void *extra, size_t extra_len,
	    const void *pt, size_t pt_len, struct kl_buf *out);
/*
 * Opens a sealed object into out (appending). Returns 0, -KL_ECORRUPT on
 * a bad version, short input or authentication failure, -E2BIG if the
 * plaintext would pass out->max, -ENOMEM. On failure out is unchanged and
 * no unauthenticated plaintext is left in its spare room.
 */
int kl_open(const struct kl_key *key, enum kl_obj_kind kind, const void *extra, size_t extra_len,
	    const void *sealed, size_t sealed_len, struct kl_buf *out);

/* ---- key files ------------------------------------------------------- */

struct kl_kdf_params {
	uint64_t ops; /* Argon2id opslimit (passes) */
	uint64_t mem; /* Argon2id memlimit in bytes */
};
#define KL_KDF_OPS_DEFAULT 3
#define KL_KDF_MEM_DEFAULT (64ull << 20)

/* Passphrase in guarded memory. */
struct kl_pass {
	char *p; /* sodium_malloc'd, NUL-terminated */
	size_t len;
};
int kl_pass_new(const char *s, size_t len, struct kl_pass **ret);
void kl_pass_free(struct kl_pass *p);

/*
 * A key file wraps the master secret with a key derived from a passphrase.
 * Its bytes are a protobuf-wire message (docs/FORMAT.md "Key files").
 */
struct kl_keyfile_info {
	int64_t created_ns;
	char host[256];
	char user[256];
	struct kl_kdf_params kdf;
};

/*
 * Appends a new key file (fresh salt) to out. kdf NULL means the defaults;
 * host and user may be NULL. Returns 0, -EINVAL for KDF parameters out of
 * range (ops 1..100, mem 8 KiB..4 GiB) or host/user over 255 bytes,
 * -ENOMEM, -E2BIG.
 */
int kl_keyfile_create(const struct kl_keys *k, const struct kl_pass *pass,
		      const struct kl_kdf_params *kdf, const char *host, const char *user,
		      struct kl_buf *out);
/*
 * Returns 0, -KL_EBADPASS if the passphrase does not open it, -KL_ECORRUPT
 * on bad bytes (checked before Argon2id runs), -KL_EVERSION for a key file
 * version newer than 1, -ENOMEM.
 */
int kl_keyfile_open(const void *data, size_t n, const struct kl_pass *pass, struct kl_keys **ret);
/* Reads the public fields without a passphrase: 0, -KL_ECORRUPT or -KL_EVERSION. */
int kl_keyfile_info(const void *data, size_t n, struct kl_keyfile_info *ret);

#endif
