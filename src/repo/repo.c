#include <stdio.h>
#include <zstd.h>

#include "repo-internal.h"

void kl_init_opts_default(struct kl_init_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->kdf.ops = KL_KDF_OPS_DEFAULT;
	o->kdf.mem = KL_KDF_MEM_DEFAULT;
	o->compression_level = 3;
	o->pack_size = 16u << 20;
	o->cdc.min = KL_CDC_MIN_DEFAULT;
	o->cdc.avg = KL_CDC_AVG_DEFAULT;
	o->cdc.max = KL_CDC_MAX_DEFAULT;
	o->cdc.variant = KL_CDC_VARIANT_DEFAULT;
}

static int repo_alloc(struct kl_backend *be, struct kl_repo **ret)
{
	struct kl_repo *r = kl_calloc(1, sizeof(*r));
	int rc;

	if (!r)
		return -ENOMEM;
	rc = kl_index_new_(&r->idx);
	if (rc >= 0)
		rc = kl_writer_new_(r, &r->writer);
	if (rc < 0) {
		kl_index_free_(r->idx);
		kl_free(r);
		return rc;
	}
	r->be = be;
	pthread_mutex_init(&r->lock_mu, NULL);
	pthread_mutex_init(&r->err_mu, NULL);
	*ret = r;
	return 0;
}

void kl_repo_set_cancel(struct kl_repo *r, const atomic_bool *flag)
{
	r->cancel = flag;
}

int kl_repo_cancelled(const struct kl_repo *r)
{
	return r->cancel && atomic_load_explicit(r->cancel, memory_order_relaxed) ? -KL_EINTERRUPTED
										  : 0;
}

uint64_t kl_repo_packs_written(struct kl_repo *r)
{
	return kl_writer_written_(r->writer);
}

void kl_repo_free(struct kl_repo *r)
{
	if (!r)
		return;
	kl_repo_unlock_repo(r);
	kl_writer_free_(r->writer);
	kl_index_free_(r->idx);
	kl_keys_free(r->keys);
	kl_backend_free(r->be);
	kl_wipe(&r->cdc, sizeof(r->cdc));
	kl_wipe(&r->cfg, sizeof(r->cfg));
	kl_wipe(&r->chunker, sizeof(r->chunker));
	pthread_mutex_destroy(&r->lock_mu);
	pthread_mutex_destroy(&r->err_mu);
	kl_free(r);
}

static int apply_config(struct kl_repo *r)
{
	struct kl_cdc_params p = {r->cfg.cdc_min, r->cfg.cdc_avg, r->cfg.cdc_max,
				  r->cfg.cdc_variant};
	int rc;

	if (r->cfg.version > KL_REPO_VERSION)
		return -KL_EVERSION;
	/* a repository made to deduplicate with another cuts with that one's key */
	r->chunker = r->keys->chunker;
	if (r->cfg.has_chunker_key)
		memcpy(r->chunker.b, r->cfg.chunker_key.b, KL_KEY_LEN);
	rc = kl_cdc_init(&r->cdc, &r->chunker, &p);
	if (rc < 0)
		return -KL_ECORRUPT;
	/* every object written from here on carries the retention (S3 only) */
	return kl_backend_set_object_lock(r->be, r->cfg.lock_mode, r->cfg.lock_days) < 0
		       ? -KL_ECORRUPT
		       : 0;
}

int kl_repo_add_key(struct kl_repo *r, const struct kl_pass *pass, const struct kl_kdf_params *kdf,
		    const char *host, const char *user, struct kl_id *ret)
{
	_cleanup_buf_ struct kl_buf kf = KL_BUF_INIT(1u << 20);
	char hex[2 * KL_ID_LEN + 1];
	struct kl_id id;
	int rc;

	rc = kl_keyfile_create(r->keys, pass, kdf, host, user, &kf);
	if (rc < 0)
		return rc;
	kl_sha256(kf.data, kf.len, &id);
	kl_id_hex(&id, hex);
	rc = r->be->ops->put(r->be, KL_OBJ_KEY, hex, kf.data, kf.len);
	if (rc < 0)
		return kl_repo_fail(r, rc, "cannot write key file '%s'", hex);
	if (ret)
		*ret = id;
	return 0;
}

static int stop_at_first(const char *name, uint64_t size, void *ud)
{
	(void)name;
	(void)size;
	*(bool *)ud = true;
	return -ECANCELED; /* one object is enough */
}

/*
 * The first of keys/, snapshots/, index/ and data/ that holds an object,
 * or NULL: a location with no config but such objects is a repository
 * whose config was lost, not an empty place. A listing that fails proves
 * nothing either way (a bucket that does not exist): NULL.
 */
static const char *find_leftovers(struct kl_backend *be)
{
	static const enum kl_obj_type types[] = {KL_OBJ_KEY, KL_OBJ_SNAPSHOT, KL_OBJ_INDEX,
						 KL_OBJ_DATA};

	for (size_t i = 0; i < KL_ARRAY_SIZE(types); i++) {
		bool found = false;

		be->ops->list(be, types[i], stop_at_first, &found);
		if (found)
			return kl_obj_type_name(types[i]);
	}
	return NULL;
}

/* Why a location without a config but with objects cannot be opened, and what helps. */
static int config_missing(struct kl_err *err, const char *dir)
{
	return kl_fail(err, -KL_ECORRUPT,
		       "the repository config is missing, although %s/ holds objects: keel "
		       "cannot make it again; restore the file 'config' from a copy or mirror "
		       "of this repository (docs/FORMAT.md, \"A lost config\")",
		       dir);
}

int kl_repo_create(const char *location, const struct kl_pass *pass, const struct kl_init_opts *o,
		   struct kl_repo **ret)
{
	return kl_repo_create_err(location, pass, o, NULL, ret);
}

int kl_repo_create_err(const char *location, const struct kl_pass *pass,
		       const struct kl_init_opts *o, struct kl_err *err, struct kl_repo **ret)
{
	struct kl_backend *be = NULL;
	struct kl_repo *r = NULL;
	_cleanup_buf_ struct kl_buf enc = KL_BUF_INIT(1u << 20);
	struct kl_cdc_params cp = o->cdc;
	int rc;

	if (kl_cdc_init(&(struct kl_cdc){0}, &(struct kl_key){{0}}, &cp) < 0)
		return -KL_EUSAGE;
	if (o->pack_size < (1u << 20) || o->pack_size > (1u << 30))
		return -KL_EUSAGE;
	if (o->compression_level < -7 || o->compression_level > 22)
		return -KL_EUSAGE;
	if (kl_backend_set_object_lock(NULL, o->lock_mode, o->lock_days) < 0)
		return -KL_EUSAGE;
	rc = kl_backend_open(location, err, &be);
	if (rc < 0)
		return rc;
	rc = repo_alloc(be, &r);
	if (rc < 0) {
		kl_backend_free(be);
		return rc;
	}
	/* a config's absence alone is no proof of an empty place: a new key would break it */
	{
		const char *dir = NULL;
		uint64_t size;

		rc = be->ops->stat(be, KL_OBJ_CONFIG, "config", &size);
		if (rc == -ENOENT || rc == -ENOTDIR)
			dir = find_leftovers(be);
		rc = 0;
		if (dir)
			rc = kl_fail(
				err, -KL_EEXIST_REPO,
				"%s/ is not empty: this is a repository whose config is lost, "
				"and a new one would make it unopenable; restore its config "
				"(docs/FORMAT.md, \"A lost config\") or choose an empty location",
				dir);
		if (rc < 0) {
			kl_backend_take_err(r->be, err);
			kl_repo_free(r);
			return rc;
		}
	}
	rc = be->ops->create(be);
	if (rc == -EEXIST)
		rc = -KL_EEXIST_REPO;
	if (rc >= 0)
		rc = kl_keys_new(&r->keys);
	if (rc >= 0) {
		r->cfg.version = KL_REPO_VERSION;
		kl_random(r->cfg.repo_id.b, KL_ID_LEN);
		r->cfg.cdc_min = cp.min;
		r->cfg.cdc_avg = cp.avg;
		r->cfg.cdc_max = cp.max;
		r->cfg.cdc_variant = cp.variant ? cp.variant : 1;
		r->cfg.compression_level = o->compression_level;
		r->cfg.pack_size = o->pack_size;
		r->cfg.created_ns = kl_time_now_ns();
		r->cfg.lock_mode = o->lock_mode;
		r->cfg.lock_days = o->lock_days;
		if (o->chunker_key) {
			memcpy(r->cfg.chunker_key.b, o->chunker_key->b, KL_ID_LEN);
			r->cfg.has_chunker_key = true;
		}
		rc = apply_config(r);
	}
	/* the key file first: a config without a key would be an unopenable repository */
	if (rc >= 0)
		rc = kl_repo_add_key(r, pass, &o->kdf, o->host, o->user, &r->key_id);
	if (rc >= 0)
		rc = kl_config_encode(&r->cfg, &enc);
	if (rc >= 0)
		rc = kl_repo_put_object(r, KL_OBJ_CONFIG, KL_KIND_CONFIG, enc.data, enc.len, NULL);
	if (rc < 0) {
		/* before kl_repo_free(), whose clean-up may fail too and say why */
		kl_backend_take_err(r->be, err);
		kl_repo_free(r);
		return rc;
	}
	*ret = r;
	return 0;
}

int kl_repo_open(const char *location, struct kl_repo **ret)
{
	return kl_repo_open_err(location, NULL, ret);
}

int kl_repo_open_err(const char *location, struct kl_err *err, struct kl_repo **ret)
{
	struct kl_backend *be = NULL;
	struct kl_repo *r = NULL;
	uint64_t size;
	int rc;

	rc = kl_backend_open(location, err, &be);
	if (rc == -ENOTDIR)
		/* a file, or below one: nothing there is a repository */
		return kl_fail(err, -KL_ENOREPO,
			       "a file (or below one), not a directory: no repository there");
	if (rc < 0)
		return rc == -ENOENT ? -KL_ENOREPO : rc;
	rc = be->ops->stat(be, KL_OBJ_CONFIG, "config", &size);
	if (rc == -ENOENT || rc == -ENOTDIR) {
		const char *dir = find_leftovers(be);

		rc = dir ? config_missing(err, dir) : -KL_ENOREPO;
	}
	if (rc < 0) {
		kl_backend_take_err(be, err);
		kl_backend_free(be);
		return rc;
	}
	rc = repo_alloc(be, &r);
	if (rc < 0) {
		kl_backend_free(be);
		return rc;
	}
	*ret = r;
	return 0;
}

int kl_repo_open_dest(const char *location, bool object_lock, struct kl_err *err,
		      struct kl_repo **ret)
{
	struct kl_backend *be = NULL;
	struct kl_repo *r = NULL;
	uint64_t size;
	int rc;

	rc = kl_backend_open(location, err, &be);
	if (rc < 0)
		return rc;
	/* before the layout: an S3 bucket gets Object Lock only when it is made */
	rc = object_lock ? kl_backend_prepare_object_lock(be) : 0;
	if (rc >= 0)
		rc = be->ops->stat(be, KL_OBJ_CONFIG, "config", &size);
	if (rc == -ENOENT || rc == -ENOTDIR) {
		/* a new copy, or one whose config a mirror may restore: lay it out */
		rc = be->ops->create(be);
		if (rc == -EEXIST)
			rc = 0;
	}
	if (rc >= 0)
		rc = repo_alloc(be, &r);
	if (rc < 0) {
		kl_backend_take_err(be, err);
		kl_backend_free(be);
		return rc;
	}
	*ret = r;
	return 0;
}

struct unlock_ctx {
	struct kl_repo *r;
	const struct kl_pass *pass;
	int tried, corrupt;
	int last_err;
	char damaged[2 * KL_ID_LEN + 1]; /* the first damaged key file */
};

/* a key file is named by the SHA-256 of its bytes; one that is not was damaged */
static bool key_damaged(const char *name, const struct kl_buf *kf)
{
	struct kl_id want, got;

	if (kl_id_parse(name, &want) < 0)
		return true;
	kl_sha256(kf->data, kf->len, &got);
	return memcmp(want.b, got.b, KL_ID_LEN) != 0;
}

static int try_key(const char *name, uint64_t size, void *ud)
{
	struct unlock_ctx *c = ud;
	_cleanup_buf_ struct kl_buf kf = KL_BUF_INIT(1u << 20);
	bool damaged;
	int rc;

	if (c->r->keys)
		return 0;
	rc = c->r->be->ops->get(c->r->be, KL_OBJ_KEY, name, 0, 0, &kf);
	if (rc < 0)
		return rc;
	c->tried++;
	/*
	 * A damaged key file is still tried: its sealed master key is authenticated, so if it
	 * opens the key is right. If none opens, the damage is the likelier cause than the
	 * password, and it is reported as such.
	 */
	damaged = key_damaged(name, &kf);
	rc = kl_keyfile_open(kf.data, kf.len, c->pass, &c->r->keys);
	if (rc == -KL_EBADPASS || rc == -KL_ECORRUPT) {
		if ((damaged || rc == -KL_ECORRUPT) && !c->corrupt++)
			snprintf(c->damaged, sizeof(c->damaged), "%s", name);
		return 0;
	}
	if (rc < 0)
		return rc;
	kl_id_parse(name, &c->r->key_id);
	return 0;
}

int kl_repo_unlock(struct kl_repo *r, const struct kl_pass *pass)
{
	struct unlock_ctx c = {.r = r, .pass = pass};
	_cleanup_buf_ struct kl_buf cfg = KL_BUF_INIT(1u << 20);
	int rc;

	rc = r->be->ops->list(r->be, KL_OBJ_KEY, try_key, &c);
	if (rc < 0)
		return rc;
	if (!r->keys) {
		if (!c.tried)
			return kl_repo_fail(r, -KL_ECORRUPT, "repository has no key files");
		/* "wrong password" only when every key file was intact */
		if (c.corrupt)
			return kl_repo_fail(
				r, -KL_ECORRUPT,
				"no key file opens, and key file %s%s is damaged (its content "
				"does not match its name)",
				c.damaged, c.corrupt > 1 ? " and others" : "");
		return -KL_EBADPASS;
	}
	rc = kl_repo_get_object(r, KL_OBJ_CONFIG, KL_KIND_CONFIG, "config", &cfg);
	if (rc == -KL_ENOTFOUND)
		return -KL_ENOREPO;
	if (rc >= 0)
		rc = kl_config_decode(cfg.data, cfg.len, &r->cfg);
	if (rc < 0)
		return kl_repo_fail(r, rc, "repository config is unreadable");
	return apply_config(r);
}

int kl_repo_open_blob(struct kl_repo *r, const struct kl_blob_entry *e, const uint8_t *sealed,
		      struct kl_buf *out)
{
	_cleanup_buf_ struct kl_buf pt = KL_BUF_INIT((size_t)128 << 20);
	struct kl_id got;
	int rc;

	kl_buf_clear(out);
	rc = kl_open(&r->keys->enc, e->type == KL_BLOB_TREE ? KL_KIND_TREE_BLOB : KL_KIND_DATA_BLOB,
		     e->id.b, KL_ID_LEN, sealed, e->length,
		     e->compression == KL_COMP_ZSTD ? &pt : out);
	if (rc < 0)
		return rc;
	if (e->compression == KL_COMP_ZSTD) {
		size_t z;

		rc = kl_buf_grow(out, e->raw_length);
		if (rc < 0)
			return rc;
		z = ZSTD_decompress(out->data, e->raw_length, pt.data, pt.len);
		if (ZSTD_isError(z) || z != e->raw_length)
			return -KL_ECORRUPT;
		kl_buf_setlen(out, z);
	} else if (out->len != e->raw_length) {
		return -KL_ECORRUPT;
	}
	kl_typed_blob_id(r->keys, e->type, out->data, out->len, &got);
	if (!kl_ct_equal(got.b, e->id.b, KL_ID_LEN))
		return -KL_ECORRUPT;
	return 0;
}

/* Reads and opens the blob at loc: 0, or -KL_ECORRUPT when the pack is gone, short or damaged. */
static int read_blob_at(struct kl_repo *r, const struct kl_blob_loc *loc, struct kl_buf *sealed,
			struct kl_buf *out)
{
	char hex[2 * KL_ID_LEN + 1];
	int rc;

	kl_id_hex(&loc->pack, hex);
	kl_buf_clear(sealed);
	rc = r->be->ops->get(r->be, KL_OBJ_DATA, hex, loc->e.offset, loc->e.length, sealed);
	if (rc == -ENOENT)
		rc = -KL_ECORRUPT; /* the index names a pack that is gone */
	if (rc >= 0 && sealed->len != loc->e.length)
		rc = -KL_ECORRUPT; /* read short: open_blob would read past what we got */
	if (rc >= 0)
		rc = kl_repo_open_blob(r, &loc->e, sealed->data, out);
	return rc;
}

int kl_repo_read_blob(struct kl_repo *r, const struct kl_id *id, struct kl_buf *out)
{
	_cleanup_buf_ struct kl_buf sealed = KL_BUF_INIT((size_t)128 << 20);
	char hex[2 * KL_ID_LEN + 1], bhex[2 * KL_ID_LEN + 1];
	struct kl_blob_loc loc, alt;
	size_t cursor = 0;
	int rc;

	if (!kl_repo_lookup(r, id, &loc))
		return -KL_ENOTFOUND;
	rc = read_blob_at(r, &loc, &sealed, out);
	/*
	 * A damaged or lost pack need not lose the blob: another pack may hold
	 * a copy (two backups that stored it at once). keel check still
	 * reports the damaged one; reading goes on from the good copy.
	 */
	while (rc == -KL_ECORRUPT && kl_index_lookup_alt_(r, id, &cursor, &alt))
		if (!kl_id_eq(&alt.pack, &loc.pack))
			rc = read_blob_at(r, &alt, &sealed, out);
	if (rc < 0) {
		kl_id_hex(&loc.pack, hex);
		kl_id_hex(id, bhex);
		return kl_repo_fail(r, rc, "blob %.16s in pack %.16s: %s", bhex, hex,
				    kl_strerror(rc));
	}
	return 0;
}

/* Reads and decodes one tree blob, head or part. */
static int read_one_tree(struct kl_repo *r, const struct kl_id *id, struct kl_buf *raw,
			 struct kl_tree *ret)
{
	struct kl_blob_loc loc;
	int rc;

	if (kl_repo_lookup(r, id, &loc) && loc.e.type != KL_BLOB_TREE)
		return -KL_ECORRUPT;
	kl_buf_clear(raw);
	rc = kl_repo_read_blob(r, id, raw);
	if (rc < 0)
		return rc;
	return kl_tree_decode(raw->data, raw->len, ret);
}

int kl_repo_read_tree_blob(struct kl_repo *r, const struct kl_id *id, struct kl_tree *ret)
{
	_cleanup_buf_ struct kl_buf raw = KL_BUF_INIT((size_t)128 << 20);

	memset(ret, 0, sizeof(*ret));
	return read_one_tree(r, id, &raw, ret);
}

int kl_repo_read_tree(struct kl_repo *r, const struct kl_id *id, struct kl_tree *ret)
{
	_cleanup_buf_ struct kl_buf raw = KL_BUF_INIT((size_t)128 << 20);
	struct kl_tree t;
	int rc;

	memset(ret, 0, sizeof(*ret));
	rc = read_one_tree(r, id, &raw, &t);
	if (rc < 0)
		return rc;
	/* a directory too big for one blob: its nodes continue in these */
	for (size_t i = 0; i < t.n_more; i++) {
		struct kl_tree part;

		rc = read_one_tree(r, &t.more[i], &raw, &part);
		if (rc >= 0)
			rc = kl_tree_join(&t, &part);
		if (rc < 0) {
			kl_tree_release(&t);
			return rc;
		}
	}
	*ret = t;
	return 0;
}

int kl_repo_read_pack_header(struct kl_repo *r, const char *name, uint64_t size,
			     struct kl_pack_header *ret)
{
	_cleanup_buf_ struct kl_buf tail = KL_BUF_INIT((size_t)256 << 20);
	_cleanup_buf_ struct kl_buf pt = KL_BUF_INIT((size_t)256 << 20);
	struct kl_pack_trailer tr;
	int rc;

	if (size < KL_PACK_MIN_SIZE)
		return -KL_ECORRUPT;
	rc = r->be->ops->get(r->be, KL_OBJ_DATA, name, size - 4, 4, &tail);
	if (rc < 0)
		return rc;
	rc = kl_pack_trailer_parse(tail.data, tail.len, size, &tr);
	if (rc < 0)
		return rc;
	kl_buf_clear(&tail);
	rc = r->be->ops->get(r->be, KL_OBJ_DATA, name, tr.header_off, tr.header_len, &tail);
	if (rc < 0)
		return rc;
	rc = kl_open(&r->keys->enc, KL_KIND_PACK_HEADER, NULL, 0, tail.data, tail.len, &pt);
	if (rc < 0)
		return rc;
	memset(ret, 0, sizeof(*ret));
	return kl_pack_header_decode(pt.data, pt.len, tr.header_off, ret);
}
