/*
 * Unit tests for src/crypto: sealed objects, blob ids, key derivation and
 * key files.
 *
 * Where a result cannot be a published test vector (random nonces, keys
 * derived from a random master), it is checked against an independent
 * implementation: libsodium's HMAC-SHA-256 and AES-256-GCM, and an HKDF
 * written here on top of libsodium's HMAC and itself checked against
 * RFC 5869.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>
#include <sodium.h>

#include "keel/crypto.h"
#include "keel/format.h"
#include "keel/util.h"

#define MiB ((size_t)1 << 20)

/* the small KDF parameters every key file test uses */
static const struct kl_kdf_params test_kdf = {.ops = 1, .mem = 8 * MiB};
#define TEST_PASS "correct horse battery staple"

struct fixture {
	struct kl_keys *a, *b;
	struct kl_pass *pass, *wrong;
	struct kl_buf keyfile; /* made from a with pass and test_kdf */
	int64_t created_before, created_after;
};

static void fill_random(void *p, size_t n)
{
	randombytes_buf(p, n);
}

static int hexval(char c)
{
	return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

static void unhex(const char *hex, uint8_t *out, size_t n)
{
	size_t i;

	assert_int_equal(strlen(hex), 2 * n);
	for (i = 0; i < n; i++)
		out[i] = (uint8_t)(hexval(hex[2 * i]) << 4 | hexval(hex[2 * i + 1]));
}

/* ---- reference implementations (libsodium) ---------------------------- */

static void ref_hmac(const uint8_t *key, size_t keylen, const void *data, size_t n, uint8_t out[32])
{
	crypto_auth_hmacsha256_state st;

	crypto_auth_hmacsha256_init(&st, key, keylen);
	crypto_auth_hmacsha256_update(&st, data, n);
	crypto_auth_hmacsha256_final(&st, out);
}

/* RFC 5869, salt given (possibly empty), any output length */
static void ref_hkdf(const uint8_t *salt, size_t salt_len, const uint8_t *ikm, size_t ikm_len,
		     const void *info, size_t info_len, uint8_t *out, size_t len)
{
	uint8_t prk[32], t[32];
	size_t done = 0, tlen = 0;
	uint8_t i = 1;

	ref_hmac(salt, salt_len, ikm, ikm_len, prk);
	while (done < len) {
		crypto_auth_hmacsha256_state st;
		size_t k;

		crypto_auth_hmacsha256_init(&st, prk, sizeof(prk));
		crypto_auth_hmacsha256_update(&st, t, tlen);
		crypto_auth_hmacsha256_update(&st, info, info_len);
		crypto_auth_hmacsha256_update(&st, &i, 1);
		crypto_auth_hmacsha256_final(&st, t);
		tlen = sizeof(t);
		k = KL_MIN(len - done, sizeof(t));
		memcpy(out + done, t, k);
		done += k;
		i++;
	}
}

/* ---- fixture ---------------------------------------------------------- */

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	if (!fx || kl_crypto_init() < 0)
		return -1;
	if (kl_keys_new(&fx->a) < 0 || kl_keys_new(&fx->b) < 0)
		return -1;
	if (kl_pass_new(TEST_PASS, strlen(TEST_PASS), &fx->pass) < 0 ||
	    kl_pass_new("correct horse battery stapl", 27, &fx->wrong) < 0)
		return -1;
	kl_buf_init(&fx->keyfile, 1 << 16);
	fx->created_before = kl_time_now_ns();
	if (kl_keyfile_create(fx->a, fx->pass, &test_kdf, "backup-host", "alice", &fx->keyfile) < 0)
		return -1;
	fx->created_after = kl_time_now_ns();
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	kl_keys_free(fx->a);
	kl_keys_free(fx->b);
	kl_pass_free(fx->pass);
	kl_pass_free(fx->wrong);
	kl_buf_release(&fx->keyfile);
	free(fx);
	return 0;
}

/* ---- small primitives ------------------------------------------------- */

static void primitives_behave(void **state)
{
	uint8_t a[32], b[32], zero[32] = {0};

	fill_random(a, sizeof(a));
	memcpy(b, a, sizeof(a));
	assert_true(kl_ct_equal(a, b, sizeof(a)));
	assert_true(kl_ct_equal(a, b, 0));
	b[0] ^= 1;
	assert_false(kl_ct_equal(a, b, sizeof(a)));
	b[0] ^= 1;
	b[31] ^= 0x80;
	assert_false(kl_ct_equal(a, b, sizeof(a)));

	kl_wipe(a, sizeof(a));
	assert_memory_equal(a, zero, sizeof(a));

	kl_random(a, sizeof(a));
	kl_random(b, sizeof(b));
	assert_memory_not_equal(a, b, sizeof(a));
	assert_memory_not_equal(a, zero, sizeof(a));
}

static void pass_is_copied_and_terminated(void **state)
{
	struct kl_pass *p = NULL;

	assert_int_equal(kl_pass_new("secret-and-more", 6, &p), 0);
	assert_int_equal(p->len, 6);
	assert_string_equal(p->p, "secret");
	kl_pass_free(p);

	assert_int_equal(kl_pass_new("", 0, &p), 0);
	assert_int_equal(p->len, 0);
	assert_string_equal(p->p, "");
	kl_pass_free(p);
	kl_pass_free(NULL);
	kl_keys_free(NULL);
}

static void sha256_known_answers(void **state)
{
	uint8_t want[32], ref[32];
	struct kl_id id;
	uint8_t *big;

	kl_sha256("", 0, &id);
	unhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", want, 32);
	assert_memory_equal(id.b, want, 32);
	kl_sha256("abc", 3, &id);
	unhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", want, 32);
	assert_memory_equal(id.b, want, 32);

	big = malloc(MiB + 7);
	assert_non_null(big);
	fill_random(big, MiB + 7);
	kl_sha256(big, MiB + 7, &id);
	crypto_hash_sha256(ref, big, MiB + 7);
	assert_memory_equal(id.b, ref, 32);
	free(big);
}

/* ---- sealed objects --------------------------------------------------- */

static void seal_open_round_trip(void **state)
{
	struct fixture *fx = *state;
	static const size_t sizes[] = {0, 1, 15, 16, 17, MiB};
	uint8_t extra[KL_ID_LEN];
	size_t i;

	fill_random(extra, sizeof(extra));
	for (i = 0; i < KL_ARRAY_SIZE(sizes); i++) {
		size_t n = sizes[i];
		struct kl_buf sealed = KL_BUF_INIT(KL_BUF_MAX_DEFAULT);
		struct kl_buf opened = KL_BUF_INIT(KL_BUF_MAX_DEFAULT);
		uint8_t *pt = malloc(n + 1);

		assert_non_null(pt);
		fill_random(pt, n);
		/* both append: what is already in the buffers stays */
		assert_int_equal(kl_buf_addstr(&sealed, "head"), 0);
		assert_int_equal(kl_buf_addstr(&opened, "prefix"), 0);

		assert_int_equal(kl_seal(&fx->a->enc, KL_KIND_DATA_BLOB, extra, sizeof(extra), pt,
					 n, &sealed),
				 0);
		assert_int_equal(sealed.len, 4 + KL_SEAL_OVERHEAD + n);
		assert_memory_equal(sealed.data, "head", 4);
		assert_int_equal(sealed.data[4], KL_SEAL_VERSION);
		assert_int_equal(sealed.data[sealed.len], 0);
		if (n >= 16) /* it is encrypted */
			assert_memory_not_equal(sealed.data + 4 + 1 + KL_NONCE_LEN, pt, 16);

		assert_int_equal(kl_open(&fx->a->enc, KL_KIND_DATA_BLOB, extra, sizeof(extra),
					 sealed.data + 4, sealed.len - 4, &opened),
				 0);
		assert_int_equal(opened.len, 6 + n);
		assert_memory_equal(opened.data, "prefix", 6);
		if (n)
			assert_memory_equal(opened.data + 6, pt, n);
		assert_int_equal(opened.data[opened.len], 0);

		kl_buf_release(&sealed);
		kl_buf_release(&opened);
		free(pt);
	}
}

static void seal_uses_fresh_nonces(void **state)
{
	struct fixture *fx = *state;
	struct kl_buf s1 = KL_BUF_INIT(1 << 20), s2 = KL_BUF_INIT(1 << 20);

	assert_int_equal(kl_seal(&fx->a->enc, KL_KIND_CONFIG, NULL, 0, "same", 4, &s1), 0);
	assert_int_equal(kl_seal(&fx->a->enc, KL_KIND_CONFIG, NULL, 0, "same", 4, &s2), 0);
	assert_int_equal(s1.len, s2.len);
	assert_memory_not_equal(s1.data + 1, s2.data + 1, KL_NONCE_LEN);
	assert_memory_not_equal(s1.data, s2.data, s1.len);
	kl_buf_release(&s1);
	kl_buf_release(&s2);
}

/*
 * Opening must fail with -KL_ECORRUPT and leave out exactly as it was:
 * same length, same bytes, NUL after them, and no unauthenticated
 * plaintext left in the spare capacity.
 */
static void expect_open_fails(const struct kl_key *key, enum kl_obj_kind kind, const void *extra,
			      size_t extra_len, const uint8_t *sealed, size_t n)
{
	struct kl_buf out = KL_BUF_INIT(KL_BUF_MAX_DEFAULT);
	size_t i;

	assert_int_equal(kl_buf_addstr(&out, "prefix"), 0);
	/* room for the plaintext, so kl_open writes into memory we zeroed */
	assert_int_equal(kl_buf_grow(&out, n), 0);
	memset(out.data + out.len, 0, out.cap - out.len);
	assert_int_equal(kl_open(key, kind, extra, extra_len, sealed, n, &out), -KL_ECORRUPT);
	assert_int_equal(out.len, 6);
	assert_memory_equal(out.data, "prefix", 7);
	for (i = out.len; i < out.cap; i++)
		if (out.data[i] != 0)
			fail_msg("plaintext left at byte %zu after a failed open", i);
	kl_buf_release(&out);
}

static void open_detects_tampering(void **state)
{
	struct fixture *fx = *state;
	struct kl_buf sealed = KL_BUF_INIT(KL_BUF_MAX_DEFAULT);
	const uint8_t extra[] = "blob-id";
	uint8_t pt[64], *t;
	size_t i, n;

	fill_random(pt, sizeof(pt));
	assert_int_equal(kl_seal(&fx->a->enc, KL_KIND_TREE_BLOB, extra, sizeof(extra), pt,
				 sizeof(pt), &sealed),
			 0);
	n = sealed.len;
	t = malloc(n);
	assert_non_null(t);
	/* every byte: version, nonce, ciphertext, tag; a low and a high bit */
	for (i = 0; i < n; i++) {
		memcpy(t, sealed.data, n);
		t[i] ^= 0x01;
		expect_open_fails(&fx->a->enc, KL_KIND_TREE_BLOB, extra, sizeof(extra), t, n);
		t[i] ^= 0x81;
		expect_open_fails(&fx->a->enc, KL_KIND_TREE_BLOB, extra, sizeof(extra), t, n);
	}
	/* the untouched copy still opens, so the failures above were the flips */
	memcpy(t, sealed.data, n);
	{
		struct kl_buf out = KL_BUF_INIT(1024);

		assert_int_equal(
			kl_open(&fx->a->enc, KL_KIND_TREE_BLOB, extra, sizeof(extra), t, n, &out),
			0);
		assert_memory_equal(out.data, pt, sizeof(pt));
		kl_buf_release(&out);
	}
	free(t);
	kl_buf_release(&sealed);
}

static void open_detects_tampering_large(void **state)
{
	struct fixture *fx = *state;
	struct kl_buf sealed = KL_BUF_INIT(KL_BUF_MAX_DEFAULT);
	const size_t flips[] = {
		0, 1, 12, 13, 14, 13 + MiB / 2, 13 + MiB - 1, 13 + MiB, 13 + MiB + 15};
	uint8_t *pt = malloc(MiB);
	size_t i;

	assert_non_null(pt);
	fill_random(pt, MiB);
	assert_int_equal(kl_seal(&fx->a->enc, KL_KIND_DATA_BLOB, NULL, 0, pt, MiB, &sealed), 0);
	assert_int_equal(sealed.len, MiB + KL_SEAL_OVERHEAD);
	for (i = 0; i < KL_ARRAY_SIZE(flips); i++) {
		sealed.data[flips[i]] ^= 0x10;
		expect_open_fails(&fx->a->enc, KL_KIND_DATA_BLOB, NULL, 0, sealed.data, sealed.len);
		sealed.data[flips[i]] ^= 0x10;
	}
	free(pt);
	kl_buf_release(&sealed);
}

static void open_checks_kind_extra_and_key(void **state)
{
	struct fixture *fx = *state;
	struct kl_buf sealed = KL_BUF_INIT(KL_BUF_MAX_DEFAULT);
	struct kl_buf out = KL_BUF_INIT(KL_BUF_MAX_DEFAULT);
	uint8_t extra[KL_ID_LEN], other[KL_ID_LEN];
	const uint8_t *s;
	size_t n;

	fill_random(extra, sizeof(extra));
	memcpy(other, extra, sizeof(other));
	other[KL_ID_LEN - 1] ^= 1;
	assert_int_equal(kl_seal(&fx->a->enc, KL_KIND_DATA_BLOB, extra, sizeof(extra), "payload", 7,
				 &sealed),
			 0);
	s = sealed.data;
	n = sealed.len;

	expect_open_fails(&fx->a->enc, KL_KIND_TREE_BLOB, extra, sizeof(extra), s, n);
	expect_open_fails(&fx->a->enc, KL_KIND_SNAPSHOT, extra, sizeof(extra), s, n);
	expect_open_fails(&fx->a->enc, KL_KIND_DATA_BLOB, other, sizeof(other), s, n);
	expect_open_fails(&fx->a->enc, KL_KIND_DATA_BLOB, extra, sizeof(extra) - 1, s, n);
	expect_open_fails(&fx->a->enc, KL_KIND_DATA_BLOB, NULL, 0, s, n);
	expect_open_fails(&fx->b->enc, KL_KIND_DATA_BLOB, extra, sizeof(extra), s, n);
	expect_open_fails(&fx->a->id, KL_KIND_DATA_BLOB, extra, sizeof(extra), s, n);

	assert_int_equal(kl_open(&fx->a->enc, KL_KIND_DATA_BLOB, extra, sizeof(extra), s, n, &out),
			 0);
	assert_int_equal(out.len, 7);
	assert_memory_equal(out.data, "payload", 7);
	kl_buf_release(&out);

	/* no extra at all is distinct from an extra of zero bytes and from one zero byte */
	kl_buf_clear(&sealed);
	assert_int_equal(kl_seal(&fx->a->enc, KL_KIND_INDEX, NULL, 0, "x", 1, &sealed), 0);
	expect_open_fails(&fx->a->enc, KL_KIND_INDEX, "\0", 1, sealed.data, sealed.len);
	assert_int_equal(kl_open(&fx->a->enc, KL_KIND_INDEX, "", 0, sealed.data, sealed.len, &out),
			 0);
	kl_buf_release(&out);
	kl_buf_release(&sealed);
}

static void open_rejects_truncated_and_extended(void **state)
{
	struct fixture *fx = *state;
	struct kl_buf sealed = KL_BUF_INIT(KL_BUF_MAX_DEFAULT);
	size_t len;

	assert_int_equal(
		kl_seal(&fx->a->enc, KL_KIND_LOCK, NULL, 0, "twenty bytes of text", 20, &sealed),
		0);
	for (len = 0; len < sealed.len; len++)
		expect_open_fails(&fx->a->enc, KL_KIND_LOCK, NULL, 0, sealed.data, len);
	assert_int_equal(kl_buf_addch(&sealed, 0), 0);
	expect_open_fails(&fx->a->enc, KL_KIND_LOCK, NULL, 0, sealed.data, sealed.len);
	/* the shortest object there is: empty plaintext */
	kl_buf_clear(&sealed);
	assert_int_equal(kl_seal(&fx->a->enc, KL_KIND_LOCK, NULL, 0, NULL, 0, &sealed), 0);
	assert_int_equal(sealed.len, KL_SEAL_OVERHEAD);
	for (len = 0; len < sealed.len; len++)
		expect_open_fails(&fx->a->enc, KL_KIND_LOCK, NULL, 0, sealed.data, len);
	kl_buf_release(&sealed);
}

/* An independent AES-256-GCM (libsodium's) reads what we write, and we read what it writes. */
static void seal_matches_libsodium_gcm(void **state)
{
	struct fixture *fx = *state;
	struct kl_buf sealed = KL_BUF_INIT(KL_BUF_MAX_DEFAULT);
	struct kl_buf out = KL_BUF_INIT(KL_BUF_MAX_DEFAULT);
	uint8_t pt[1000], back[1000], ad[1 + KL_ID_LEN];
	uint8_t mine[KL_SEAL_OVERHEAD + sizeof(pt)];
	unsigned long long mlen, clen;

	if (!crypto_aead_aes256gcm_is_available())
		skip();
	fill_random(pt, sizeof(pt));
	ad[0] = KL_KIND_PACK_HEADER;
	fill_random(ad + 1, KL_ID_LEN);

	assert_int_equal(kl_seal(&fx->a->enc, KL_KIND_PACK_HEADER, ad + 1, KL_ID_LEN, pt,
				 sizeof(pt), &sealed),
			 0);
	assert_int_equal(crypto_aead_aes256gcm_decrypt(back, &mlen, NULL,
						       sealed.data + 1 + KL_NONCE_LEN,
						       sealed.len - 1 - KL_NONCE_LEN, ad,
						       sizeof(ad), sealed.data + 1, fx->a->enc.b),
			 0);
	assert_int_equal(mlen, sizeof(pt));
	assert_memory_equal(back, pt, sizeof(pt));

	mine[0] = KL_SEAL_VERSION;
	fill_random(mine + 1, KL_NONCE_LEN);
	assert_int_equal(crypto_aead_aes256gcm_encrypt(mine + 1 + KL_NONCE_LEN, &clen, pt,
						       sizeof(pt), ad, sizeof(ad), NULL, mine + 1,
						       fx->a->enc.b),
			 0);
	assert_int_equal(clen, sizeof(pt) + KL_TAG_LEN);
	assert_int_equal(kl_open(&fx->a->enc, KL_KIND_PACK_HEADER, ad + 1, KL_ID_LEN, mine,
				 sizeof(mine), &out),
			 0);
	assert_int_equal(out.len, sizeof(pt));
	assert_memory_equal(out.data, pt, sizeof(pt));
	kl_buf_release(&sealed);
	kl_buf_release(&out);
}

static void seal_and_open_report_limits(void **state)
{
	struct fixture *fx = *state;
	struct kl_buf small = KL_BUF_INIT(KL_SEAL_OVERHEAD + 3);
	struct kl_buf sealed = KL_BUF_INIT(KL_BUF_MAX_DEFAULT);
	struct kl_buf out = KL_BUF_INIT(3);

	/* the cap is respected and nothing is appended */
	assert_int_equal(kl_seal(&fx->a->enc, KL_KIND_CONFIG, NULL, 0, "abcd", 4, &small), -E2BIG);
	assert_int_equal(small.len, 0);
	assert_int_equal(kl_seal(&fx->a->enc, KL_KIND_CONFIG, NULL, 0, "abc", 3, &small), 0);

	assert_int_equal(kl_seal(&fx->a->enc, KL_KIND_CONFIG, NULL, 0, "abcd", 4, &sealed), 0);
	assert_int_equal(
		kl_open(&fx->a->enc, KL_KIND_CONFIG, NULL, 0, sealed.data, sealed.len, &out),
		-E2BIG);
	assert_int_equal(out.len, 0);

	/* allocation failure is -ENOMEM, not corruption, and appends nothing */
	kl_buf_release(&out);
	kl_buf_init(&out, KL_BUF_MAX_DEFAULT);
	kl_alloc_fail_after(1);
	assert_int_equal(
		kl_open(&fx->a->enc, KL_KIND_CONFIG, NULL, 0, sealed.data, sealed.len, &out),
		-ENOMEM);
	kl_alloc_fail_after(0);
	assert_int_equal(out.len, 0);
	kl_buf_release(&small);
	kl_alloc_fail_after(1);
	assert_int_equal(kl_seal(&fx->a->enc, KL_KIND_CONFIG, NULL, 0, "abc", 3, &small), -ENOMEM);
	kl_alloc_fail_after(0);
	assert_int_equal(small.len, 0);

	kl_buf_release(&small);
	kl_buf_release(&sealed);
	kl_buf_release(&out);
}

/* ---- blob ids --------------------------------------------------------- */

static void blob_id_is_hmac_of_id_key(void **state)
{
	struct fixture *fx = *state;
	/* around the SHA-256 block and padding boundaries, and large */
	static const size_t sizes[] = {0,  1,	31,  32,  55,  56,   63,     64,
				       65, 119, 120, 127, 128, 1000, MiB + 3};
	uint8_t *data = malloc(MiB + 3), ref[32];
	struct kl_id id, again;
	size_t i;

	assert_non_null(data);
	fill_random(data, MiB + 3);
	for (i = 0; i < KL_ARRAY_SIZE(sizes); i++) {
		kl_blob_id(fx->a, data, sizes[i], &id);
		ref_hmac(fx->a->id.b, KL_KEY_LEN, data, sizes[i], ref);
		assert_memory_equal(id.b, ref, 32);
		kl_blob_id(fx->a, data, sizes[i], &again);
		assert_memory_equal(id.b, again.b, 32);
	}
	free(data);
}

static void blob_id_depends_on_key_and_data(void **state)
{
	struct fixture *fx = *state;
	uint8_t data[4096];
	struct kl_id ia, ib, ic;

	fill_random(data, sizeof(data));
	kl_blob_id(fx->a, data, sizeof(data), &ia);
	kl_blob_id(fx->b, data, sizeof(data), &ib);
	assert_memory_not_equal(ia.b, ib.b, KL_ID_LEN);
	/* keyed: not the plain hash */
	kl_sha256(data, sizeof(data), &ic);
	assert_memory_not_equal(ia.b, ic.b, KL_ID_LEN);
	data[sizeof(data) - 1] ^= 1;
	kl_blob_id(fx->a, data, sizeof(data), &ic);
	assert_memory_not_equal(ia.b, ic.b, KL_ID_LEN);
	kl_blob_id(fx->a, data, sizeof(data) - 1, &ic);
	assert_memory_not_equal(ia.b, ic.b, KL_ID_LEN);
}

/*
 * RFC 4231 test cases 1 and 2. HMAC pads keys with zeros to the block
 * size, so the 20-byte key of case 1 and the 4-byte key of case 2 are the
 * same keys as those bytes followed by zeros up to 32.
 */
static void blob_id_known_answers(void **state)
{
	static const struct {
		uint8_t key[32];
		size_t key_len;
		const char *data;
		const char *mac;
	} tc[] = {
		{{0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b,
		  0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b},
		 20,
		 "Hi There",
		 "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
		{"Jefe", 4, "what do ya want for nothing?",
		 "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
	};
	struct kl_keys *derived;
	size_t i;

	assert_int_equal(kl_keys_new(&derived), 0);
	for (i = 0; i < KL_ARRAY_SIZE(tc); i++) {
		struct kl_keys by_hand = {0};
		uint8_t want[32], ref[32];
		struct kl_id id;

		unhex(tc[i].mac, want, 32);
		/* the reference agrees with the RFC, key at its own length */
		ref_hmac(tc[i].key, tc[i].key_len, tc[i].data, strlen(tc[i].data), ref);
		assert_memory_equal(ref, want, 32);

		/* a struct filled in by hand: no precomputed state */
		memcpy(by_hand.id.b, tc[i].key, 32);
		kl_blob_id(&by_hand, tc[i].data, strlen(tc[i].data), &id);
		assert_memory_equal(id.b, want, 32);

		/* keys whose id was replaced after derivation: the stale state must not be used */
		memcpy(derived->id.b, tc[i].key, 32);
		kl_blob_id(derived, tc[i].data, strlen(tc[i].data), &id);
		assert_memory_equal(id.b, want, 32);
	}
	kl_keys_free(derived);
}

struct thread_job {
	const struct kl_keys *k;
	const uint8_t *data;
	size_t n, chunk;
	const struct kl_id *want; /* n / chunk ids */
	int failures;
};

static void *thread_main(void *arg)
{
	struct thread_job *j = arg;
	struct kl_buf sealed = KL_BUF_INIT(KL_BUF_MAX_DEFAULT);
	struct kl_buf opened = KL_BUF_INIT(KL_BUF_MAX_DEFAULT);
	size_t i, round;

	for (round = 0; round < 4; round++) {
		for (i = 0; i < j->n / j->chunk; i++) {
			const uint8_t *p = j->data + i * j->chunk;
			struct kl_id id;

			kl_blob_id(j->k, p, j->chunk, &id);
			if (memcmp(id.b, j->want[i].b, KL_ID_LEN))
				j->failures++;
			kl_buf_clear(&sealed);
			kl_buf_clear(&opened);
			if (kl_seal(&j->k->enc, KL_KIND_DATA_BLOB, id.b, KL_ID_LEN, p, j->chunk,
				    &sealed) < 0 ||
			    kl_open(&j->k->enc, KL_KIND_DATA_BLOB, id.b, KL_ID_LEN, sealed.data,
				    sealed.len, &opened) < 0 ||
			    opened.len != j->chunk || memcmp(opened.data, p, j->chunk))
				j->failures++;
		}
	}
	kl_buf_release(&sealed);
	kl_buf_release(&opened);
	return NULL;
}

/* Two threads share one struct kl_keys, as the backup pipeline does. */
static void crypto_is_thread_safe(void **state)
{
	struct fixture *fx = *state;
	const size_t chunk = 64 << 10, n = 32 * chunk;
	struct kl_id want[32];
	struct thread_job jobs[2];
	pthread_t t[2];
	uint8_t *data = malloc(n);
	size_t i;

	assert_non_null(data);
	fill_random(data, n);
	for (i = 0; i < n / chunk; i++)
		ref_hmac(fx->a->id.b, KL_KEY_LEN, data + i * chunk, chunk, want[i].b);
	for (i = 0; i < 2; i++) {
		jobs[i] = (struct thread_job){fx->a, data, n, chunk, want, 0};
		assert_int_equal(pthread_create(&t[i], NULL, thread_main, &jobs[i]), 0);
	}
	for (i = 0; i < 2; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(jobs[i].failures, 0);
	}
	free(data);
}

/* ---- key derivation --------------------------------------------------- */

static void hkdf_reference_matches_rfc5869(void **state)
{
	/* RFC 5869 test case 3: SHA-256, empty salt and info */
	uint8_t ikm[22], okm[42], want[42];

	memset(ikm, 0x0b, sizeof(ikm));
	unhex("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c"
	      "8",
	      want, sizeof(want));
	ref_hkdf((const uint8_t *)"", 0, ikm, sizeof(ikm), "", 0, okm, sizeof(okm));
	assert_memory_equal(okm, want, sizeof(okm));
}

static void subkeys_follow_the_spec(void **state)
{
	struct fixture *fx = *state;
	static const char *const labels[] = {"keel enc v1", "keel id v1", "keel chunker v1"};
	const struct kl_key *got[] = {&fx->a->enc, &fx->a->id, &fx->a->chunker};
	size_t i;

	for (i = 0; i < KL_ARRAY_SIZE(labels); i++) {
		uint8_t want[32], zeros[32] = {0};

		ref_hkdf((const uint8_t *)"", 0, fx->a->master.b, KL_KEY_LEN, labels[i],
			 strlen(labels[i]), want, 32);
		assert_memory_equal(got[i]->b, want, 32);
		/* RFC 5869: an absent salt is HashLen zero bytes; same result */
		ref_hkdf(zeros, sizeof(zeros), fx->a->master.b, KL_KEY_LEN, labels[i],
			 strlen(labels[i]), want, 32);
		assert_memory_equal(got[i]->b, want, 32);
	}
}

static void subkeys_are_deterministic_and_distinct(void **state)
{
	struct fixture *fx = *state;
	struct kl_keys *k1, *k2;
	struct kl_id i1, i2;

	assert_int_equal(kl_keys_from_master(&fx->a->master, &k1), 0);
	assert_int_equal(kl_keys_from_master(&fx->a->master, &k2), 0);
	assert_memory_equal(k1, fx->a, offsetof(struct kl_keys, hmac));
	assert_memory_equal(k2, fx->a, offsetof(struct kl_keys, hmac));
	kl_blob_id(k1, "x", 1, &i1);
	kl_blob_id(fx->a, "x", 1, &i2);
	assert_memory_equal(i1.b, i2.b, KL_ID_LEN);

	assert_memory_not_equal(k1->enc.b, k1->id.b, KL_KEY_LEN);
	assert_memory_not_equal(k1->enc.b, k1->chunker.b, KL_KEY_LEN);
	assert_memory_not_equal(k1->id.b, k1->chunker.b, KL_KEY_LEN);
	assert_memory_not_equal(k1->master.b, k1->enc.b, KL_KEY_LEN);

	/* fresh keys are fresh */
	assert_memory_not_equal(fx->a->master.b, fx->b->master.b, KL_KEY_LEN);
	assert_memory_not_equal(fx->a->enc.b, fx->b->enc.b, KL_KEY_LEN);
	kl_keys_free(k1);
	kl_keys_free(k2);
}

/* ---- key files -------------------------------------------------------- */

static void assert_same_keys(const struct kl_keys *x, const struct kl_keys *y)
{
	assert_memory_equal(x->master.b, y->master.b, KL_KEY_LEN);
	assert_memory_equal(x->enc.b, y->enc.b, KL_KEY_LEN);
	assert_memory_equal(x->id.b, y->id.b, KL_KEY_LEN);
	assert_memory_equal(x->chunker.b, y->chunker.b, KL_KEY_LEN);
}

static void keyfile_opens_with_right_pass_only(void **state)
{
	struct fixture *fx = *state;
	struct kl_keys *k = NULL;
	struct kl_pass *longer;

	assert_int_equal(kl_keyfile_open(fx->keyfile.data, fx->keyfile.len, fx->pass, &k), 0);
	assert_non_null(k);
	assert_same_keys(k, fx->a);
	kl_keys_free(k);

	k = NULL;
	assert_int_equal(kl_keyfile_open(fx->keyfile.data, fx->keyfile.len, fx->wrong, &k),
			 -KL_EBADPASS);
	assert_null(k);
	assert_int_equal(kl_pass_new(TEST_PASS "!", strlen(TEST_PASS) + 1, &longer), 0);
	assert_int_equal(kl_keyfile_open(fx->keyfile.data, fx->keyfile.len, longer, &k),
			 -KL_EBADPASS);
	kl_pass_free(longer);
}

static void keyfile_info_reads_public_fields(void **state)
{
	struct fixture *fx = *state;
	struct kl_keyfile_info info;
	struct kl_buf kf = KL_BUF_INIT(1 << 16);
	struct kl_keys *k;

	memset(&info, 0xa5, sizeof(info));
	assert_int_equal(kl_keyfile_info(fx->keyfile.data, fx->keyfile.len, &info), 0);
	assert_string_equal(info.host, "backup-host");
	assert_string_equal(info.user, "alice");
	assert_int_equal(info.kdf.ops, test_kdf.ops);
	assert_int_equal(info.kdf.mem, test_kdf.mem);
	assert_in_range(info.created_ns, fx->created_before, fx->created_after);

	/* no host, no user; the smallest parameters libsodium allows */
	{
		const struct kl_kdf_params tiny = {1, 8192};

		assert_int_equal(kl_keyfile_create(fx->b, fx->pass, &tiny, NULL, NULL, &kf), 0);
	}
	memset(&info, 0xa5, sizeof(info));
	assert_int_equal(kl_keyfile_info(kf.data, kf.len, &info), 0);
	assert_string_equal(info.host, "");
	assert_string_equal(info.user, "");
	assert_int_equal(info.kdf.mem, 8192);
	assert_int_equal(kl_keyfile_open(kf.data, kf.len, fx->pass, &k), 0);
	assert_same_keys(k, fx->b);
	kl_keys_free(k);
	kl_buf_release(&kf);
}

static void keyfile_create_salts_and_validates(void **state)
{
	struct fixture *fx = *state;
	const struct kl_kdf_params bad[] = {
		{0, 8 * MiB}, {101, 8 * MiB}, {1, 8191}, {1, (4ull << 30) + 1}, {1, UINT64_MAX},
	};
	struct kl_buf kf = KL_BUF_INIT(1 << 16);
	char longname[300];
	size_t i;

	/* same keys, same pass: a new salt, so different bytes */
	assert_int_equal(kl_keyfile_create(fx->a, fx->pass, &test_kdf, "backup-host", "alice", &kf),
			 0);
	assert_int_equal(kf.len, fx->keyfile.len);
	assert_memory_not_equal(kf.data, fx->keyfile.data, kf.len);

	kl_buf_clear(&kf);
	for (i = 0; i < KL_ARRAY_SIZE(bad); i++)
		assert_int_equal(kl_keyfile_create(fx->a, fx->pass, &bad[i], NULL, NULL, &kf),
				 -EINVAL);
	memset(longname, 'h', sizeof(longname));
	longname[256] = 0;
	assert_int_equal(kl_keyfile_create(fx->a, fx->pass, &test_kdf, longname, NULL, &kf),
			 -EINVAL);
	assert_int_equal(kl_keyfile_create(fx->a, fx->pass, &test_kdf, NULL, longname, &kf),
			 -EINVAL);
	assert_int_equal(kf.len, 0);
	kl_buf_release(&kf);
}

static void keyfile_create_fails_cleanly_without_memory(void **state)
{
	struct fixture *fx = *state;
	const struct kl_kdf_params tiny = {1, 8192};
	struct kl_buf kf = KL_BUF_INIT(1 << 16);
	struct kl_keys *k;
	long n;
	int r;

	assert_int_equal(kl_buf_addstr(&kf, "keep"), 0);
	for (n = 1; n < 100; n++) {
		kl_alloc_fail_after(n);
		r = kl_keyfile_create(fx->a, fx->pass, &tiny, "h", "u", &kf);
		kl_alloc_fail_after(0);
		if (r == 0)
			break;
		assert_int_equal(r, -ENOMEM);
		assert_int_equal(kf.len, 4);
		assert_memory_equal(kf.data, "keep", 5);
	}
	assert_int_equal(r, 0);
	assert_true(n > 1); /* at least one allocation was failed */
	assert_int_equal(kl_keyfile_open(kf.data + 4, kf.len - 4, fx->pass, &k), 0);
	assert_same_keys(k, fx->a);
	kl_keys_free(k);
	kl_buf_release(&kf);
}

/*
 * A key file taken apart into fields and put back together, so tests can
 * change one thing at a time.
 */
struct pb_field {
	uint32_t num;
	enum kl_pb_wire wire;
	uint64_t v;
	uint8_t bytes[400];
	size_t len;
};
struct pb_msg {
	struct pb_field f[24];
	size_t n;
};

static void msg_parse(const uint8_t *p, size_t n, struct pb_msg *m)
{
	struct kl_pb_reader rd = {p, n};
	struct kl_pb_field f;
	int r;

	memset(m, 0, sizeof(*m));
	while ((r = kl_pb_next(&rd, &f)) > 0) {
		struct pb_field *o = &m->f[m->n++];

		assert_true(m->n <= KL_ARRAY_SIZE(m->f));
		o->num = f.num;
		o->wire = f.wire;
		o->v = f.v;
		assert_true(f.len <= sizeof(o->bytes));
		if (f.len)
			memcpy(o->bytes, f.p, f.len);
		o->len = f.len;
	}
	assert_int_equal(r, 0);
}

static void msg_encode(const struct pb_msg *m, struct kl_buf *out)
{
	size_t i;

	kl_buf_clear(out);
	for (i = 0; i < m->n; i++) {
		const struct pb_field *f = &m->f[i];

		if (f->wire == KL_PB_LEN)
			assert_int_equal(kl_pb_put_bytes(out, f->num, f->bytes, f->len), 0);
		else
			assert_int_equal(kl_pb_put_uint(out, f->num, f->v), 0);
	}
}

static struct pb_field *msg_get(struct pb_msg *m, uint32_t num)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		if (m->f[i].num == num)
			return &m->f[i];
	fail_msg("no field %u", num);
	return NULL;
}

static void msg_del(struct pb_msg *m, uint32_t num)
{
	size_t i;

	for (i = 0; i < m->n; i++) {
		if (m->f[i].num == num) {
			memmove(&m->f[i], &m->f[i + 1], (m->n - i - 1) * sizeof(m->f[0]));
			m->n--;
			return;
		}
	}
	fail_msg("no field %u", num);
}

static struct pb_field *msg_add(struct pb_msg *m, uint32_t num, enum kl_pb_wire wire)
{
	struct pb_field *f = &m->f[m->n++];

	assert_true(m->n <= KL_ARRAY_SIZE(m->f));
	memset(f, 0, sizeof(*f));
	f->num = num;
	f->wire = wire;
	return f;
}

static void set_bytes(struct pb_field *f, const void *p, size_t n)
{
	assert_true(n <= sizeof(f->bytes));
	f->wire = KL_PB_LEN;
	memcpy(f->bytes, p, n);
	f->len = n;
}

/*
 * info and open must both give want (for -KL_EBADPASS, info succeeds).
 * The message is re-encoded from m.
 */
static void expect_keyfile(const struct fixture *fx, const struct pb_msg *m, int want, int line)
{
	struct kl_buf kf = KL_BUF_INIT(1 << 20);
	struct kl_keyfile_info info;
	struct kl_keys *k = NULL;
	int r;

	msg_encode(m, &kf);
	r = kl_keyfile_info(kf.data, kf.len, &info);
	if (r != (want == -KL_EBADPASS ? 0 : want))
		fail_msg("line %d: info gave %d (%s)", line, r, kl_strerror(r));
	r = kl_keyfile_open(kf.data, kf.len, fx->pass, &k);
	if (r != want)
		fail_msg("line %d: open gave %d (%s), want %d", line, r, kl_strerror(r), want);
	if (r == 0)
		assert_same_keys(k, fx->a);
	kl_keys_free(k);
	kl_buf_release(&kf);
}
#define EXPECT_KEYFILE(m, want) expect_keyfile(fx, (m), (want), __LINE__)

static void keyfile_rejects_tampered_fields(void **state)
{
	struct fixture *fx = *state;
	struct pb_msg orig, m;
	uint8_t bytes[300];

	msg_parse(fx->keyfile.data, fx->keyfile.len, &orig);
	assert_int_equal(orig.n, 9);
	m = orig;
	EXPECT_KEYFILE(&m, 0); /* the parse and re-encode are faithful */

	/* KDF costs out of bounds: refused before Argon2 runs */
	{
		static const uint64_t mems[] = {0,	    8191,	(4ull << 30) + 1,
						5ull << 30, 1ull << 42, UINT64_MAX};
		static const uint64_t ops[] = {0, 101, 1ull << 32, UINT64_MAX};
		size_t i;

		for (i = 0; i < KL_ARRAY_SIZE(mems); i++) {
			m = orig;
			msg_get(&m, 4)->v = mems[i];
			EXPECT_KEYFILE(&m, -KL_ECORRUPT);
		}
		for (i = 0; i < KL_ARRAY_SIZE(ops); i++) {
			m = orig;
			msg_get(&m, 3)->v = ops[i];
			EXPECT_KEYFILE(&m, -KL_ECORRUPT);
		}
	}
	/* version */
	m = orig;
	msg_get(&m, 1)->v = 0;
	EXPECT_KEYFILE(&m, -KL_ECORRUPT);
	m = orig;
	msg_get(&m, 1)->v = 2;
	EXPECT_KEYFILE(&m, -KL_EVERSION);
	/* kdf name */
	m = orig;
	set_bytes(msg_get(&m, 2), "argon2i", 7);
	EXPECT_KEYFILE(&m, -KL_ECORRUPT);
	m = orig;
	set_bytes(msg_get(&m, 2), "argon2id\0", 9);
	EXPECT_KEYFILE(&m, -KL_ECORRUPT);
	/* salt and wrapped lengths */
	m = orig;
	msg_get(&m, 5)->len = 15;
	EXPECT_KEYFILE(&m, -KL_ECORRUPT);
	m = orig;
	msg_get(&m, 5)->len = 17;
	EXPECT_KEYFILE(&m, -KL_ECORRUPT);
	m = orig;
	msg_get(&m, 6)->len = 60;
	EXPECT_KEYFILE(&m, -KL_ECORRUPT);
	m = orig;
	msg_get(&m, 6)->len = 62;
	EXPECT_KEYFILE(&m, -KL_ECORRUPT);
	m = orig;
	msg_get(&m, 6)->bytes[0] = 2; /* sealed-object version */
	EXPECT_KEYFILE(&m, -KL_ECORRUPT);
	/* each required field missing */
	{
		static const uint32_t required[] = {1, 2, 3, 4, 5, 6};
		size_t i;

		for (i = 0; i < KL_ARRAY_SIZE(required); i++) {
			m = orig;
			msg_del(&m, required[i]);
			EXPECT_KEYFILE(&m, -KL_ECORRUPT);
		}
	}
	/* duplicates and wrong wire types */
	m = orig;
	*msg_add(&m, 3, KL_PB_VARINT) = *msg_get(&m, 3);
	EXPECT_KEYFILE(&m, -KL_ECORRUPT);
	m = orig;
	*msg_add(&m, 5, KL_PB_LEN) = *msg_get(&m, 5);
	EXPECT_KEYFILE(&m, -KL_ECORRUPT);
	m = orig;
	set_bytes(msg_get(&m, 4), "\x01\x00\x80", 3);
	EXPECT_KEYFILE(&m, -KL_ECORRUPT);
	m = orig;
	msg_get(&m, 8)->wire = KL_PB_VARINT;
	EXPECT_KEYFILE(&m, -KL_ECORRUPT);
	/* host and user: at most 255 bytes, no NUL */
	m = orig;
	memset(bytes, 'h', sizeof(bytes));
	set_bytes(msg_get(&m, 8), bytes, 256);
	EXPECT_KEYFILE(&m, -KL_ECORRUPT);
	m = orig;
	set_bytes(msg_get(&m, 9), "al\0ce", 5);
	EXPECT_KEYFILE(&m, -KL_ECORRUPT);
	m = orig;
	set_bytes(msg_get(&m, 8), bytes, 255);
	EXPECT_KEYFILE(&m, 0);
}

static void keyfile_wrong_secrets_are_bad_pass(void **state)
{
	struct fixture *fx = *state;
	struct pb_msg orig, m;

	msg_parse(fx->keyfile.data, fx->keyfile.len, &orig);
	/* well-formed, but the derived key or the sealed secret changed */
	m = orig;
	msg_get(&m, 5)->bytes[0] ^= 1;
	EXPECT_KEYFILE(&m, -KL_EBADPASS);
	m = orig;
	msg_get(&m, 3)->v = 2;
	EXPECT_KEYFILE(&m, -KL_EBADPASS);
	m = orig;
	msg_get(&m, 4)->v += 1024;
	EXPECT_KEYFILE(&m, -KL_EBADPASS);
	m = orig;
	msg_get(&m, 6)->bytes[20] ^= 1; /* ciphertext */
	EXPECT_KEYFILE(&m, -KL_EBADPASS);
	m = orig;
	msg_get(&m, 6)->bytes[60] ^= 1; /* tag */
	EXPECT_KEYFILE(&m, -KL_EBADPASS);
	m = orig;
	msg_get(&m, 6)->bytes[5] ^= 1; /* nonce */
	EXPECT_KEYFILE(&m, -KL_EBADPASS);
}

static void keyfile_tolerates_optional_and_unknown_fields(void **state)
{
	struct fixture *fx = *state;
	struct kl_buf kf = KL_BUF_INIT(1 << 20);
	struct kl_keyfile_info info;
	struct pb_msg orig, m;

	msg_parse(fx->keyfile.data, fx->keyfile.len, &orig);
	/* a later version's fields are skipped */
	m = orig;
	msg_add(&m, 10, KL_PB_VARINT)->v = 7;
	set_bytes(msg_add(&m, 200, KL_PB_LEN), "future", 6);
	EXPECT_KEYFILE(&m, 0);
	/* created, host and user are optional */
	m = orig;
	msg_del(&m, 7);
	msg_del(&m, 8);
	msg_del(&m, 9);
	EXPECT_KEYFILE(&m, 0);
	/* and they are not authenticated: informational only */
	m = orig;
	set_bytes(msg_get(&m, 8), "elsewhere", 9);
	EXPECT_KEYFILE(&m, 0);
	msg_encode(&m, &kf);
	assert_int_equal(kl_keyfile_info(kf.data, kf.len, &info), 0);
	assert_string_equal(info.host, "elsewhere");
	/* but the file as a whole is bounded */
	assert_int_equal(kl_buf_setlen(&kf, kf.len), 0);
	{
		uint8_t *pad = calloc(1, 64 << 10);

		assert_non_null(pad);
		assert_int_equal(kl_pb_put_bytes(&kf, 20, pad, 64 << 10), 0);
		free(pad);
	}
	assert_int_equal(kl_keyfile_info(kf.data, kf.len, &info), -KL_ECORRUPT);
	kl_buf_release(&kf);
}

static void keyfile_rejects_truncation_and_garbage(void **state)
{
	struct fixture *fx = *state;
	const uint8_t *kf = fx->keyfile.data;
	size_t n = fx->keyfile.len, len, end_wrapped = 0;
	struct kl_pb_reader rd = {kf, n};
	struct kl_pb_field f;
	struct kl_keyfile_info info;
	struct kl_keys *k = NULL;
	uint8_t *more;

	/* where the last required field ends: a cut before it must fail */
	while (kl_pb_next(&rd, &f) > 0)
		if (f.num == 6)
			end_wrapped = n - rd.n;
	assert_true(end_wrapped > 0);
	for (len = 0; len < n; len++) {
		int r = kl_keyfile_info(kf, len, &info);

		if (len < end_wrapped) {
			assert_int_equal(r, -KL_ECORRUPT);
			assert_int_equal(kl_keyfile_open(kf, len, fx->pass, &k), -KL_ECORRUPT);
		} else {
			/* cut between or inside the optional fields */
			assert_true(r == 0 || r == -KL_ECORRUPT);
		}
	}
	assert_null(k);
	more = malloc(n + 1);
	assert_non_null(more);
	memcpy(more, kf, n);
	more[n] = 0x80; /* an unfinished tag */
	assert_int_equal(kl_keyfile_info(more, n + 1, &info), -KL_ECORRUPT);
	assert_int_equal(kl_keyfile_open(more, n + 1, fx->pass, &k), -KL_ECORRUPT);
	free(more);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(primitives_behave),
		cmocka_unit_test(pass_is_copied_and_terminated),
		cmocka_unit_test(sha256_known_answers),
		cmocka_unit_test(seal_open_round_trip),
		cmocka_unit_test(seal_uses_fresh_nonces),
		cmocka_unit_test(open_detects_tampering),
		cmocka_unit_test(open_detects_tampering_large),
		cmocka_unit_test(open_checks_kind_extra_and_key),
		cmocka_unit_test(open_rejects_truncated_and_extended),
		cmocka_unit_test(seal_matches_libsodium_gcm),
		cmocka_unit_test(seal_and_open_report_limits),
		cmocka_unit_test(blob_id_is_hmac_of_id_key),
		cmocka_unit_test(blob_id_depends_on_key_and_data),
		cmocka_unit_test(blob_id_known_answers),
		cmocka_unit_test(crypto_is_thread_safe),
		cmocka_unit_test(hkdf_reference_matches_rfc5869),
		cmocka_unit_test(subkeys_follow_the_spec),
		cmocka_unit_test(subkeys_are_deterministic_and_distinct),
		cmocka_unit_test(keyfile_opens_with_right_pass_only),
		cmocka_unit_test(keyfile_info_reads_public_fields),
		cmocka_unit_test(keyfile_create_salts_and_validates),
		cmocka_unit_test(keyfile_create_fails_cleanly_without_memory),
		cmocka_unit_test(keyfile_rejects_tampered_fields),
		cmocka_unit_test(keyfile_wrong_secrets_are_bad_pass),
		cmocka_unit_test(keyfile_tolerates_optional_and_unknown_fields),
		cmocka_unit_test(keyfile_rejects_truncation_and_garbage),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
