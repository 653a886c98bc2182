/*
 * Fuzzes key file parsing: kl_keyfile_info and kl_keyfile_open on
 * arbitrary bytes, with a fixed passphrase.
 *
 * Oracles, beyond "did not crash":
 *  - info returns only 0, -KL_ECORRUPT or -KL_EVERSION, and what it
 *    accepts respects the documented bounds (ops 1..100, mem 8 KiB..4 GiB,
 *    NUL-terminated host and user);
 *  - open rejects exactly what info rejects, with the same code, before
 *    deriving any key;
 *  - a file that opens re-wraps: keyfile_create with the same parameters
 *    gives a file that opens to the same keys.
 *
 * Opening costs what the file's Argon2id parameters say, so open runs
 * only for cheap ones (ops 1, mem up to 64 KiB); the seed corpus holds
 * such files made with FUZZ_PASS. No main() here: the libFuzzer build
 * supplies one, and the replay driver does for plain test runs.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keel/crypto.h"

#define FUZZ_PASS "fuzz"
#define FUZZ_OPS_MAX 1
#define FUZZ_MEM_MAX ((uint64_t)64 << 10)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
	if (!ok)
		abort();
}

static void check_rewrap(const struct kl_keys *k, const struct kl_pass *pass,
			 const struct kl_keyfile_info *info)
{
	struct kl_buf kf = KL_BUF_INIT((size_t)1 << 16);
	struct kl_keys *k2 = NULL;

	check(kl_keyfile_create(k, pass, &info->kdf, info->host[0] ? info->host : NULL,
				info->user[0] ? info->user : NULL, &kf) == 0);
	check(kl_keyfile_open(kf.data, kf.len, pass, &k2) == 0);
	check(memcmp(k2->master.b, k->master.b, KL_KEY_LEN) == 0);
	check(memcmp(k2->enc.b, k->enc.b, KL_KEY_LEN) == 0);
	check(memcmp(k2->id.b, k->id.b, KL_KEY_LEN) == 0);
	check(memcmp(k2->chunker.b, k->chunker.b, KL_KEY_LEN) == 0);
	kl_keys_free(k2);
	kl_buf_release(&kf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kl_keyfile_info info;
	struct kl_pass *pass = NULL;
	struct kl_keys *k = NULL;
	int r, ro;

	/* idempotent and cheap after the first call */
	check(kl_crypto_init() == 0);

	r = kl_keyfile_info(data, size, &info);
	check(r == 0 || r == -KL_ECORRUPT || r == -KL_EVERSION);
	if (r == 0) {
		check(memchr(info.host, 0, sizeof(info.host)) != NULL);
		check(memchr(info.user, 0, sizeof(info.user)) != NULL);
		check(info.kdf.ops >= 1 && info.kdf.ops <= 100);
		check(info.kdf.mem >= 8192 && info.kdf.mem <= ((uint64_t)4 << 30));
		if (info.kdf.ops > FUZZ_OPS_MAX || info.kdf.mem > FUZZ_MEM_MAX)
			return 0; /* valid, but too slow to open in a fuzz loop */
	}

	check(kl_pass_new(FUZZ_PASS, strlen(FUZZ_PASS), &pass) == 0);
	ro = kl_keyfile_open(data, size, pass, &k);
	if (r < 0)
		check(ro == r && k == NULL);
	else
		check(ro == 0 || ro == -KL_EBADPASS);
	if (ro == 0) {
		check(k != NULL);
		check_rewrap(k, pass, &info);
	}
	kl_keys_free(k);
	kl_pass_free(pass);
	return 0;
}
