/*
 * What ops and the CLI may know of a repository: its state, its raw
 * objects and the detail of its latest failure. struct kl_repo itself
 * stays inside src/repo, so that the storage is reached in one place.
 */
#include <stdio.h>

#include "repo-internal.h"

const struct kl_config *kl_repo_config(const struct kl_repo *r)
{
	return &r->cfg;
}

const struct kl_keys *kl_repo_keys(const struct kl_repo *r)
{
	return r->keys;
}

const struct kl_cdc *kl_repo_cdc(const struct kl_repo *r)
{
	return &r->cdc;
}

const struct kl_key *kl_repo_chunker_key(const struct kl_repo *r)
{
	return &r->chunker;
}

bool kl_repo_same_chunker(const struct kl_repo *a, const struct kl_repo *b)
{
	/* the gear table and masks follow from key, parameters and variant */
	return a->cdc.min == b->cdc.min && a->cdc.avg == b->cdc.avg && a->cdc.max == b->cdc.max &&
	       a->cdc.mask_s == b->cdc.mask_s && a->cdc.mask_l == b->cdc.mask_l &&
	       kl_ct_equal(a->cdc.gear, b->cdc.gear, sizeof(a->cdc.gear));
}

const struct kl_id *kl_repo_key_id(const struct kl_repo *r)
{
	return &r->key_id;
}

unsigned kl_repo_bad_index_files(const struct kl_repo *r)
{
	return r->bad_index_files;
}

bool kl_repo_append_only(const struct kl_repo *r)
{
	return r->be->append_only;
}

int kl_repo_fail(struct kl_repo *r, int code, const char *fmt, ...)
{
	char msg[sizeof(r->err.msg)];
	va_list ap;

	/* kl_fail() has no va_list form: format here, keep its first-wins rule */
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&r->err_mu);
	kl_fail(&r->err, code, "%s", msg);
	pthread_mutex_unlock(&r->err_mu);
	return code;
}

void kl_repo_err_clear_(struct kl_repo *r)
{
	pthread_mutex_lock(&r->err_mu);
	kl_err_clear(&r->err);
	pthread_mutex_unlock(&r->err_mu);
}

struct kl_err kl_repo_err_get_(struct kl_repo *r)
{
	struct kl_err e;

	pthread_mutex_lock(&r->err_mu);
	e = r->err;
	pthread_mutex_unlock(&r->err_mu);
	return e;
}

void kl_repo_err_set_(struct kl_repo *r, const struct kl_err *e)
{
	pthread_mutex_lock(&r->err_mu);
	r->err = *e;
	pthread_mutex_unlock(&r->err_mu);
}

void kl_repo_clear_err(struct kl_repo *r)
{
	kl_repo_err_clear_(r);
	kl_backend_take_err(r->be, NULL);
}

void kl_repo_take_err(struct kl_repo *r, struct kl_err *err, struct kl_err *detail)
{
	if (!r)
		return;
	/* one step: a worker's message lands wholly before or wholly after it */
	pthread_mutex_lock(&r->err_mu);
	if (err)
		*err = r->err;
	kl_err_clear(&r->err);
	pthread_mutex_unlock(&r->err_mu);
	kl_backend_take_err(r->be, detail);
}

int kl_repo_list(struct kl_repo *r, enum kl_obj_type t, kl_list_cb cb, void *userdata)
{
	return r->be->ops->list(r->be, t, cb, userdata);
}

int kl_repo_list_mtime(struct kl_repo *r, enum kl_obj_type t, kl_list_mtime_cb cb, void *userdata)
{
	return kl_backend_list_mtime(r->be, t, cb, userdata);
}

int kl_repo_get_raw(struct kl_repo *r, enum kl_obj_type t, const char *name, uint64_t off,
		    uint64_t len, struct kl_buf *out)
{
	return r->be->ops->get(r->be, t, name, off, len, out);
}

int kl_repo_dest_object_lock(struct kl_repo *r, enum kl_lock_mode mode, uint32_t days)
{
	int rc;

	if (mode != KL_LOCK_NONE) {
		rc = kl_backend_prepare_object_lock(r->be);
		if (rc < 0)
			return rc;
	}
	rc = kl_backend_set_object_lock(r->be, mode, days);
	if (rc == 0 && mode != KL_LOCK_NONE)
		return -EOPNOTSUPP;
	return rc < 0 ? rc : 0;
}

int kl_repo_put_raw(struct kl_repo *r, enum kl_obj_type t, const char *name, const void *data,
		    size_t len)
{
	return r->be->ops->put(r->be, t, name, data, len);
}

int kl_repo_stat(struct kl_repo *r, enum kl_obj_type t, const char *name, uint64_t *size_ret)
{
	return r->be->ops->stat(r->be, t, name, size_ret);
}

int kl_repo_delete(struct kl_repo *r, enum kl_obj_type t, const char *name)
{
	return r->be->ops->del(r->be, t, name);
}

const char *kl_repo_type_name(enum kl_obj_type t)
{
	return kl_obj_type_name(t);
}

int kl_repo_sweep_tmp(struct kl_repo *r, uint64_t min_age_s, bool remove, struct kl_tmp_stats *ret)
{
	if (!r->be->ops->sweep_tmp) {
		memset(ret, 0, sizeof(*ret));
		return 0;
	}
	return r->be->ops->sweep_tmp(r->be, min_age_s, remove, ret);
}
