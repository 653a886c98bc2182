/*
 * Key files: the master secret sealed under a key derived from a
 * passphrase with Argon2id. The bytes are a protobuf-wire message:
 *
 *   message KeyFile {
 *     uint32 version = 1;    // 1
 *     string kdf = 2;        // "argon2id"
 *     uint64 ops = 3;        // Argon2id passes, 1..100
 *     uint64 mem = 4;        // Argon2id memory in bytes, 8 KiB..4 GiB
 *     bytes salt = 5;        // 16 bytes
 *     bytes wrapped = 6;     // kl_seal(wrapkey, KL_KIND_KEY, extra = salt, master), 61 bytes
 *     sint64 created_ns = 7;
 *     string host = 8;
 *     string user = 9;
 *   }
 *
 * A key file is read before anything authenticates it, and opening one
 * costs what its ops and mem say, so both are bounded before Argon2 runs:
 * a tampered file cannot make us allocate 4 TiB or spin for hours.
 */
#include <sodium.h>

#include "keel/crypto.h"
#include "keel/pb.h"

#define KEYFILE_VERSION 1
#define KEYFILE_KDF "argon2id"
#define KEYFILE_SALT_LEN 16
#define KEYFILE_WRAPPED_LEN (KL_SEAL_OVERHEAD + KL_KEY_LEN)
/* real key files are about 150 bytes; this leaves room for later fields */
#define KEYFILE_MAX ((size_t)64 << 10)
/* host and user, so they fit struct kl_keyfile_info with their NUL */
#define KEYFILE_STR_MAX 255
_Static_assert(sizeof(((struct kl_keyfile_info *)0)->host) > KEYFILE_STR_MAX, "host");
_Static_assert(sizeof(((struct kl_keyfile_info *)0)->user) > KEYFILE_STR_MAX, "user");

#define KDF_OPS_MIN ((uint64_t)crypto_pwhash_argon2id_OPSLIMIT_MIN)
#define KDF_OPS_MAX ((uint64_t)100)
#define KDF_MEM_MIN ((uint64_t)crypto_pwhash_argon2id_MEMLIMIT_MIN)
#define KDF_MEM_MAX ((uint64_t)4 << 30)

enum {
	F_VERSION = 1,
	F_KDF = 2,
	F_OPS = 3,
	F_MEM = 4,
	F_SALT = 5,
	F_WRAPPED = 6,
	F_CREATED = 7,
	F_HOST = 8,
	F_USER = 9,
};

/* A decoded key file; the pointers point into the input. */
struct keyfile {
	struct kl_kdf_params kdf;
	const uint8_t *salt;
	const uint8_t *wrapped;
	int64_t created_ns;
	const uint8_t *host, *user;
	size_t host_len, user_len;
};

static bool kdf_params_ok(const struct kl_kdf_params *p)
{
	/* the libsodium limits as well, in case a platform's are tighter than ours */
	return p->ops >= KDF_OPS_MIN && p->ops <= KDF_OPS_MAX &&
	       p->ops <= crypto_pwhash_argon2id_OPSLIMIT_MAX && p->mem >= KDF_MEM_MIN &&
	       p->mem <= KDF_MEM_MAX && p->mem <= crypto_pwhash_argon2id_MEMLIMIT_MAX;
}

static bool str_ok(const uint8_t *p, size_t n, size_t max)
{
	return n <= max && (n == 0 || !memchr(p, 0, n));
}

/*
 * Checks everything that can be checked without the passphrase. Unknown
 * fields are skipped (later versions may add some); known ones must
 * appear at most once, with the right wire type.
 */
static int keyfile_decode(const void *data, size_t n, struct keyfile *ret)
{
	struct kl_pb_reader rd = {data, n};
	struct kl_pb_field f;
	uint32_t seen = 0;
	uint64_t version = 0;
	bool kdf_ok = false;
	int r;

	memset(ret, 0, sizeof(*ret));
	if (n > KEYFILE_MAX)
		return -KL_ECORRUPT;
	while ((r = kl_pb_next(&rd, &f)) > 0) {
		enum kl_pb_wire want;

		if (f.num < F_VERSION || f.num > F_USER)
			continue;
		if (seen & (1u << f.num))
			return -KL_ECORRUPT;
		seen |= 1u << f.num;
		switch (f.num) {
		case F_VERSION:
		case F_OPS:
		case F_MEM:
		case F_CREATED:
			want = KL_PB_VARINT;
			break;
		default:
			want = KL_PB_LEN;
			break;
		}
		if (f.wire != want)
			return -KL_ECORRUPT;
		switch (f.num) {
		case F_VERSION:
			version = f.v;
			break;
		case F_KDF:
			kdf_ok = f.len == strlen(KEYFILE_KDF) && !memcmp(f.p, KEYFILE_KDF, f.len);
			break;
		case F_OPS:
			ret->kdf.ops = f.v;
			break;
		case F_MEM:
			ret->kdf.mem = f.v;
			break;
		case F_SALT:
			if (f.len != KEYFILE_SALT_LEN)
				return -KL_ECORRUPT;
			ret->salt = f.p;
			break;
		case F_WRAPPED:
			if (f.len != KEYFILE_WRAPPED_LEN || f.p[0] != KL_SEAL_VERSION)
				return -KL_ECORRUPT;
			ret->wrapped = f.p;
			break;
		case F_CREATED:
			ret->created_ns = kl_pb_unzigzag(f.v);
			break;
		case F_HOST:
			if (!str_ok(f.p, f.len, KEYFILE_STR_MAX))
				return -KL_ECORRUPT;
			ret->host = f.p;
			ret->host_len = f.len;
			break;
		case F_USER:
			if (!str_ok(f.p, f.len, KEYFILE_STR_MAX))
				return -KL_ECORRUPT;
			ret->user = f.p;
			ret->user_len = f.len;
			break;
		}
	}
	if (r < 0)
		return -KL_ECORRUPT;
	/* a newer key file is not damaged, just not ours to read */
	if (version > KEYFILE_VERSION)
		return -KL_EVERSION;
	if (version != KEYFILE_VERSION || !kdf_ok || !ret->salt || !ret->wrapped ||
	    !(seen & (1u << F_OPS)) || !(seen & (1u << F_MEM)) || !kdf_params_ok(&ret->kdf))
		return -KL_ECORRUPT;
	return 0;
}

/*
 * Argon2id(pass, salt, ops, mem) -> 32 bytes, written into guarded
 * memory by the caller. Parameters must have passed kdf_params_ok().
 */
static int derive_wrapkey(const struct kl_pass *pass, const uint8_t salt[KEYFILE_SALT_LEN],
			  const struct kl_kdf_params *kdf, struct kl_key *ret)
{
	if (crypto_pwhash(ret->b, KL_KEY_LEN, pass->p, pass->len, salt, kdf->ops, (size_t)kdf->mem,
			  crypto_pwhash_ALG_ARGON2ID13) != 0) {
		/* the arguments were checked: what is left is the allocation */
		sodium_memzero(ret->b, KL_KEY_LEN);
		return -ENOMEM;
	}
	return 0;
}

/*
 * Scratch secrets for one key file operation, in one guarded region: the
 * wrapping key and the unwrapped master secret (plus the NUL a kl_buf
 * keeps after its bytes).
 */
struct scratch {
	struct kl_key wrapkey;
	uint8_t opened[KL_KEY_LEN + 1];
	struct kl_key master;
};
#define SCRATCH_SIZE ((sizeof(struct scratch) + 15) & ~(size_t)15)

int kl_keyfile_create(const struct kl_keys *k, const struct kl_pass *pass,
		      const struct kl_kdf_params *kdf, const char *host, const char *user,
		      struct kl_buf *out)
{
	static const struct kl_kdf_params defaults = {KL_KDF_OPS_DEFAULT, KL_KDF_MEM_DEFAULT};
	struct kl_buf wrapped = KL_BUF_INIT(KEYFILE_WRAPPED_LEN);
	uint8_t salt[KEYFILE_SALT_LEN];
	struct scratch *s;
	size_t start = out->len;
	int r;

	if (!kdf)
		kdf = &defaults;
	if (!kdf_params_ok(kdf))
		return -EINVAL;
	if ((host && strlen(host) > KEYFILE_STR_MAX) || (user && strlen(user) > KEYFILE_STR_MAX))
		return -EINVAL;

	s = sodium_malloc(SCRATCH_SIZE);
	if (!s)
		return -ENOMEM;
	kl_random(salt, sizeof(salt));
	r = derive_wrapkey(pass, salt, kdf, &s->wrapkey);
	if (r >= 0)
		r = kl_seal(&s->wrapkey, KL_KIND_KEY, salt, sizeof(salt), k->master.b, KL_KEY_LEN,
			    &wrapped);
	sodium_free(s);
	if (r < 0)
		goto out;

	/* fields in number order, every one written: the encoding is canonical */
	r = kl_pb_put_uint(out, F_VERSION, KEYFILE_VERSION);
	if (r >= 0)
		r = kl_pb_put_str(out, F_KDF, KEYFILE_KDF);
	if (r >= 0)
		r = kl_pb_put_uint(out, F_OPS, kdf->ops);
	if (r >= 0)
		r = kl_pb_put_uint(out, F_MEM, kdf->mem);
	if (r >= 0)
		r = kl_pb_put_bytes(out, F_SALT, salt, sizeof(salt));
	if (r >= 0)
		r = kl_pb_put_bytes(out, F_WRAPPED, wrapped.data, wrapped.len);
	if (r >= 0)
		r = kl_pb_put_sint(out, F_CREATED, kl_time_now_ns());
	if (r >= 0)
		r = kl_pb_put_str(out, F_HOST, host);
	if (r >= 0)
		r = kl_pb_put_str(out, F_USER, user);
out:
	kl_buf_release(&wrapped);
	if (r < 0) {
		kl_buf_setlen(out, start);
		return r;
	}
	return 0;
}

int kl_keyfile_open(const void *data, size_t n, const struct kl_pass *pass, struct kl_keys **ret)
{
	struct kl_buf master;
	struct keyfile kf;
	struct scratch *s;
	int r;

	r = keyfile_decode(data, n, &kf);
	if (r < 0)
		return r;
	s = sodium_malloc(SCRATCH_SIZE);
	if (!s)
		return -ENOMEM;
	r = derive_wrapkey(pass, kf.salt, &kf.kdf, &s->wrapkey);
	if (r < 0)
		goto out;
	/*
	 * kl_open appends to a kl_buf. This one is laid over the guarded
	 * scratch region, with max one less than cap, so kl_buf_grow never
	 * needs to reallocate: the master secret never touches the ordinary
	 * heap. It must not be released.
	 */
	master.data = s->opened;
	master.len = 0;
	master.cap = sizeof(s->opened);
	master.max = KL_KEY_LEN;
	r = kl_open(&s->wrapkey, KL_KIND_KEY, kf.salt, KEYFILE_SALT_LEN, kf.wrapped,
		    KEYFILE_WRAPPED_LEN, &master);
	if (r == -KL_ECORRUPT) {
		/* the bytes were well-formed: the passphrase derived the wrong key */
		r = -KL_EBADPASS;
		goto out;
	}
	if (r < 0)
		goto out;
	if (KL_NEVER(master.data != s->opened || master.len != KL_KEY_LEN)) {
		r = -KL_ECORRUPT;
		goto out;
	}
	memcpy(s->master.b, s->opened, KL_KEY_LEN);
	r = kl_keys_from_master(&s->master, ret);
out:
	sodium_free(s);
	return r;
}

int kl_keyfile_info(const void *data, size_t n, struct kl_keyfile_info *ret)
{
	struct keyfile kf;
	int r;

	r = keyfile_decode(data, n, &kf);
	if (r < 0)
		return r;
	memset(ret, 0, sizeof(*ret));
	ret->created_ns = kf.created_ns;
	ret->kdf = kf.kdf;
	if (kf.host_len)
		memcpy(ret->host, kf.host, kf.host_len);
	if (kf.user_len)
		memcpy(ret->user, kf.user, kf.user_len);
	return 0;
}
