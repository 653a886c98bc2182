/*
 * The repository config: read first by every command. Its version is the
 * repository format version, so a newer one gives -KL_EVERSION ("upgrade
 * keel"), not -KL_ECORRUPT.
 */
#include "keel/format.h"
#include "format-internal.h"

enum {
	F_VERSION = 1,
	F_REPO_ID,
	F_CDC_MIN,
	F_CDC_AVG,
	F_CDC_MAX,
	F_COMPRESSION_LEVEL,
	F_PACK_SIZE,
	F_CREATED_NS,
	F_LOCK_MODE,
	F_LOCK_DAYS,
	F_CDC_VARIANT,
	F_CHUNKER_KEY = 24, /* keel init --copy-chunker-params (docs/COPY.md) */
};

#define CDC_MIN_LOW 64u
#define CDC_MAX_HIGH (64u << 20)
#define PACK_SIZE_LOW (1u << 20)
#define PACK_SIZE_HIGH (1u << 30)
#define LEVEL_LOW -7 /* negative levels are zstd's fast modes */
#define LEVEL_HIGH 22

/* Matches what kl_cdc_init() accepts, so a valid config always chunks. */
static bool config_valid(const struct kl_config *c)
{
	if (c->version != KL_REPO_VERSION)
		return false;
	if (c->cdc_min < CDC_MIN_LOW || c->cdc_min >= c->cdc_avg || c->cdc_avg >= c->cdc_max ||
	    c->cdc_max > CDC_MAX_HIGH || (c->cdc_avg & (c->cdc_avg - 1)))
		return false;
	if (c->cdc_variant < 1 || c->cdc_variant > KL_CONFIG_CDC_VARIANT_MAX)
		return false;
	if (c->compression_level < LEVEL_LOW || c->compression_level > LEVEL_HIGH)
		return false;
	if (c->pack_size < PACK_SIZE_LOW || c->pack_size > PACK_SIZE_HIGH)
		return false;
	/* a mode without a period, or a period without a mode, is no setting at all */
	if (c->lock_mode == KL_LOCK_NONE)
		return c->lock_days == 0;
	if (c->lock_mode != KL_LOCK_GOVERNANCE && c->lock_mode != KL_LOCK_COMPLIANCE)
		return false;
	return c->lock_days >= 1 && c->lock_days <= KL_LOCK_DAYS_MAX;
}

int kl_config_encode(const struct kl_config *c, struct kl_buf *out)
{
	size_t start = out->len;
	int r;

	if (!config_valid(c))
		return -EINVAL;
	r = kl_pb_put_uint(out, F_VERSION, c->version);
	if (r >= 0)
		r = kl_pb_put_bytes(out, F_REPO_ID, c->repo_id.b, KL_ID_LEN);
	if (r >= 0)
		r = kl_pb_put_uint(out, F_CDC_MIN, c->cdc_min);
	if (r >= 0)
		r = kl_pb_put_uint(out, F_CDC_AVG, c->cdc_avg);
	if (r >= 0)
		r = kl_pb_put_uint(out, F_CDC_MAX, c->cdc_max);
	if (r >= 0)
		r = kl_pb_put_sint_nz(out, F_COMPRESSION_LEVEL, c->compression_level);
	if (r >= 0)
		r = kl_pb_put_uint(out, F_PACK_SIZE, c->pack_size);
	if (r >= 0)
		r = kl_pb_put_sint_nz(out, F_CREATED_NS, c->created_ns);
	/* absent when off: configs without a lock stay byte-identical to older ones */
	if (r >= 0 && c->lock_mode != KL_LOCK_NONE)
		r = kl_pb_put_uint(out, F_LOCK_MODE, (uint64_t)c->lock_mode);
	if (r >= 0 && c->lock_mode != KL_LOCK_NONE)
		r = kl_pb_put_uint(out, F_LOCK_DAYS, c->lock_days);
	/* absent for variant 1, as in configs written before the field existed */
	if (r >= 0 && c->cdc_variant != 1)
		r = kl_pb_put_uint(out, F_CDC_VARIANT, c->cdc_variant);
	/* absent unless taken from another repository: the key is derived from the master */
	if (r >= 0 && c->has_chunker_key)
		r = kl_pb_put_bytes(out, F_CHUNKER_KEY, c->chunker_key.b, KL_ID_LEN);
	if (r < 0) {
		kl_buf_setlen(out, start);
		return r;
	}
	return 0;
}

int kl_config_decode(const uint8_t *p, size_t n, struct kl_config *ret)
{
	struct kl_pb_reader rd = {p, n};
	struct kl_pb_field f;
	struct kl_pb_scan s;
	struct kl_config c = {.cdc_variant = 1};
	uint64_t seen = 0;
	uint32_t mode;
	int r;

	memset(ret, 0, sizeof(*ret));
	r = kl_pb_scan(p, n, &s);
	if (r < 0)
		return r;
	/* before anything else: a newer format may break any rule below */
	r = kl_pb_check_version(&s, KL_REPO_VERSION);
	if (r < 0)
		return r;
	while ((r = kl_pb_next(&rd, &f)) > 0) {
		if (f.num > F_CDC_VARIANT && f.num != F_CHUNKER_KEY)
			continue;
		r = kl_pb_once(&seen, f.num);
		if (r < 0)
			return r;
		switch (f.num) {
		case F_VERSION:
			r = kl_pb_get_u32(&f, &c.version);
			break;
		case F_REPO_ID:
			r = kl_pb_get_id(&f, &c.repo_id);
			break;
		case F_CDC_MIN:
			r = kl_pb_get_u32(&f, &c.cdc_min);
			break;
		case F_CDC_AVG:
			r = kl_pb_get_u32(&f, &c.cdc_avg);
			break;
		case F_CDC_MAX:
			r = kl_pb_get_u32(&f, &c.cdc_max);
			break;
		case F_COMPRESSION_LEVEL:
			r = kl_pb_get_s32(&f, &c.compression_level);
			break;
		case F_PACK_SIZE:
			r = kl_pb_get_u32(&f, &c.pack_size);
			break;
		case F_CREATED_NS:
			r = kl_pb_get_s64(&f, &c.created_ns);
			break;
		case F_LOCK_MODE:
			r = kl_pb_get_u32(&f, &mode);
			c.lock_mode = (enum kl_lock_mode)KL_MIN(mode, 255u);
			break;
		case F_LOCK_DAYS:
			r = kl_pb_get_u32(&f, &c.lock_days);
			break;
		case F_CDC_VARIANT:
			r = kl_pb_get_u32(&f, &c.cdc_variant);
			break;
		case F_CHUNKER_KEY:
			r = kl_pb_get_id(&f, &c.chunker_key);
			c.has_chunker_key = r >= 0;
			break;
		}
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	/* a chunker this keel does not know: a newer keel wrote it */
	if (c.cdc_variant > KL_CONFIG_CDC_VARIANT_MAX)
		return -KL_EVERSION;
	if (!(seen & (1u << F_REPO_ID)) || !config_valid(&c))
		return -KL_ECORRUPT;
	*ret = c;
	return 0;
}
