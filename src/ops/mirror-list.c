/*
 * Listings of a repository's objects for keel mirror, and the state it
 * keeps in DEST (mirror/<id>, docs/MIRROR.md): all keyless.
 */
#include <stdio.h>
#include <stdlib.h>

#include "keel/crypto.h"
#include "mirror-internal.h"

/* a state object is small: one entry per object DEST holds and SOURCE lacks */
#define STATE_MAX ((size_t)1 << 30)

void kl_mlist_release(struct kl_mlist *l)
{
	kl_free(l->v);
	memset(l, 0, sizeof(*l));
}

static int add_obj(const char *name, uint64_t size, void *ud)
{
	struct kl_mlist *l = ud;
	struct kl_id id;

	/* only objects: what is not named by a hash is no object of the layout */
	if (strlen(name) != KL_MIRROR_NAME_LEN || kl_id_parse(name, &id) < 0)
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 256;
		struct kl_mobj *v = kl_realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	kl_id_hex(&id, l->v[l->n].name); /* canonical: lowercase */
	if (strcmp(l->v[l->n].name, name))
		return 0;
	l->v[l->n++].size = size;
	return 0;
}

static int cmp_obj(const void *a, const void *b)
{
	return strcmp(((const struct kl_mobj *)a)->name, ((const struct kl_mobj *)b)->name);
}

int kl_mlist_load(struct kl_repo *r, enum kl_obj_type t, struct kl_mlist *l)
{
	int rc;

	l->n = 0;
	rc = kl_repo_list(r, t, add_obj, l);
	if (rc < 0)
		return rc;
	if (l->n)
		qsort(l->v, l->n, sizeof(*l->v), cmp_obj);
	return 0;
}

const struct kl_mobj *kl_mlist_find(const struct kl_mlist *l, const char *name)
{
	struct kl_mobj key;

	if (!l->n || strlen(name) > KL_MIRROR_NAME_LEN)
		return NULL;
	snprintf(key.name, sizeof(key.name), "%s", name);
	return bsearch(&key, l->v, l->n, sizeof(*l->v), cmp_obj);
}

bool kl_mlist_subset(const struct kl_mlist *a, const struct kl_mlist *b)
{
	for (size_t i = 0; i < a->n; i++)
		if (!kl_mlist_find(b, a->v[i].name))
			return false;
	return true;
}

int kl_mirror_read_checked(struct kl_repo *r, enum kl_obj_type t, const char *name,
			   struct kl_buf *out)
{
	char hex[KL_MIRROR_NAME_LEN + 1];
	struct kl_id got;
	int rc;

	kl_buf_clear(out);
	rc = kl_repo_get_raw(r, t, name, 0, 0, out);
	if (rc < 0)
		return rc;
	kl_sha256(out->data, out->len, &got);
	kl_id_hex(&got, hex);
	return strcmp(hex, name) == 0;
}

/* ---- the state object ------------------------------------------------------ */

/* by type, then name: kl_mstate_load() sorts, kl_mstate_find() searches */
static int cmp_missing(const void *a, const void *b)
{
	const struct kl_mirror_missing *x = a, *y = b;

	if (x->type != y->type)
		return x->type < y->type ? -1 : 1;
	return memcmp(x->id.b, y->id.b, KL_ID_LEN);
}

void kl_mstate_release(struct kl_mstate *m)
{
	kl_mirror_state_release(&m->s);
	kl_mlist_release(&m->names);
}

static void warn(const struct kl_report *rep, const char *name, int err, const char *what)
{
	char path[sizeof("mirror/") + KL_MIRROR_NAME_LEN];

	snprintf(path, sizeof(path), "mirror/%s", name);
	if (rep && rep->warn)
		rep->warn(rep->ud, path, err, what);
}

int kl_mstate_load(struct kl_repo *dst, const struct kl_report *rep, struct kl_mstate *ret)
{
	_cleanup_buf_ struct kl_buf raw = KL_BUF_INIT(STATE_MAX);
	int rc;

	memset(ret, 0, sizeof(*ret));
	rc = kl_mlist_load(dst, KL_OBJ_MIRROR, &ret->names);
	for (size_t i = 0; rc >= 0 && i < ret->names.n; i++) {
		const char *name = ret->names.v[i].name;
		struct kl_mirror_state s;

		rc = kl_mirror_read_checked(dst, KL_OBJ_MIRROR, name, &raw);
		if (rc == -ENOENT) { /* another run replaced it */
			rc = 0;
			continue;
		}
		if (rc < 0)
			break;
		if (!rc || kl_mirror_state_decode(raw.data, raw.len, &s) < 0) {
			warn(rep, name, 0, "damaged mirror state, skipped");
			rc = 0;
			continue;
		}
		if (s.time_ns >= ret->s.time_ns) {
			kl_mirror_state_release(&ret->s);
			ret->s = s;
		} else {
			kl_mirror_state_release(&s);
		}
	}
	if (rc < 0) {
		kl_mstate_release(ret);
		return rc;
	}
	if (ret->s.n_missing)
		qsort(ret->s.missing, ret->s.n_missing, sizeof(*ret->s.missing), cmp_missing);
	return 0;
}

int kl_mstate_save(struct kl_repo *dst, struct kl_mstate *m)
{
	_cleanup_buf_ struct kl_buf enc = KL_BUF_INIT(STATE_MAX);
	char hex[KL_MIRROR_NAME_LEN + 1];
	struct kl_id id;
	int rc;

	if (m->s.n_missing)
		qsort(m->s.missing, m->s.n_missing, sizeof(*m->s.missing), cmp_missing);
	rc = kl_mirror_state_encode(&m->s, &enc);
	if (rc < 0)
		return rc;
	kl_sha256(enc.data, enc.len, &id);
	kl_id_hex(&id, hex);
	rc = kl_repo_put_raw(dst, KL_OBJ_MIRROR, hex, enc.data, enc.len);
	if (rc == -EEXIST)
		rc = 0;
	if (rc < 0)
		return kl_repo_fail(dst, rc, "cannot write the mirror state");
	/* the old ones: a state left behind is harmless (the latest time wins) */
	for (size_t i = 0; i < m->names.n; i++)
		if (strcmp(m->names.v[i].name, hex))
			kl_repo_delete(dst, KL_OBJ_MIRROR, m->names.v[i].name);
	kl_repo_clear_err(dst);
	return 0;
}

const struct kl_mirror_missing *kl_mstate_find(const struct kl_mstate *m, enum kl_obj_type t,
					       const char *name)
{
	struct kl_mirror_missing key = {0};
	struct kl_id id;

	if (kl_id_parse(name, &id) < 0)
		return NULL;
	key.type = (uint32_t)t;
	key.id = id;
	if (!m->s.n_missing)
		return NULL;
	return bsearch(&key, m->s.missing, m->s.n_missing, sizeof(key), cmp_missing);
}
