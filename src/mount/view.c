/*
 * The snapshots a mount shows and the directories of restic's layout made
 * of them: snapshots/TIME, ids/SHORTID, hosts/HOST/TIME, tags/TAG/TIME,
 * and a "latest" symlink beside each list of TIMEs. A view is one listing
 * of the repository, immutable once built and shared by reference, so a
 * refresh swaps in a new one while readers finish with the old. A refresh
 * lists the snapshot objects' names and reads only those it has not read
 * before (on S3 a listing is cheap, reading every snapshot again is not).
 */
#include <stdio.h>
#include <stdlib.h>

#include "mount-internal.h"

struct names {
	struct kl_id *v;
	size_t n, cap;
};

static int add_name(const char *name, uint64_t size, void *ud)
{
	struct names *l = ud;
	struct kl_id id;

	(void)size;
	if (kl_id_parse(name, &id) < 0)
		return 0; /* not a snapshot's name: the repository layer's business */
	if (kl_array_grow(&l->v, &l->cap, l->n, sizeof(*l->v), 64) < 0)
		return -ENOMEM;
	l->v[l->n++] = id;
	return 0;
}

static int cmp_time(const void *a, const void *b)
{
	const struct kl_msnap *x = a, *y = b;

	if (x->s.time_ns != y->s.time_ns)
		return x->s.time_ns < y->s.time_ns ? -1 : 1;
	return memcmp(x->id.b, y->id.b, KL_ID_LEN);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A name that can be one directory entry: not "", ".", "..", no '/'. */
static bool entry_name_ok(const char *s)
{
	return s && *s && strcmp(s, ".") && strcmp(s, "..") && !strchr(s, '/');
}

static int strv_add_unique(char ***v, size_t *n, size_t *cap, const char *s)
{
	if (!entry_name_ok(s))
		return 0;
	for (size_t i = 0; i < *n; i++)
		if (!strcmp((*v)[i], s))
			return 0;
	if (kl_array_grow(v, cap, *n, sizeof(**v), 16) < 0)
		return -ENOMEM;
	(*v)[*n] = kl_strdup(s);
	if (!(*v)[*n])
		return -ENOMEM;
	(*n)++;
	return 0;
}

static int cmp_snap_id(const void *a, const void *b)
{
	const struct kl_msnap *const *x = a, *const *y = b;

	return memcmp((*x)->id.b, (*y)->id.b, KL_ID_LEN);
}

/* The old view's snapshots sorted by id (NULL and 0 without one), for old_find. */
static int old_index(const struct kl_mview *old, const struct kl_msnap ***ret)
{
	*ret = NULL;
	if (!old || !old->n)
		return 0;
	*ret = kl_calloc(old->n, sizeof(**ret));
	if (!*ret)
		return -ENOMEM;
	for (size_t i = 0; i < old->n; i++)
		(*ret)[i] = &old->v[i];
	qsort(*ret, old->n, sizeof(**ret), cmp_snap_id);
	return 0;
}

static const struct kl_msnap *old_find(const struct kl_msnap **idx, size_t n,
				       const struct kl_id *id)
{
	struct kl_msnap key = {.id = *id};
	const struct kl_msnap *k = &key, **hit;

	if (!idx)
		return NULL;
	hit = bsearch(&k, idx, n, sizeof(*idx), cmp_snap_id);
	return hit ? *hit : NULL;
}

/* Copies a snapshot (the old view's, which stays as it is) by encoding and decoding it. */
static int snap_copy(const struct kl_snapshot *s, struct kl_snapshot *ret)
{
	_cleanup_buf_ struct kl_buf b = KL_BUF_INIT(64u << 20);
	int rc = kl_snapshot_encode(s, &b);

	if (rc < 0)
		return rc;
	memset(ret, 0, sizeof(*ret));
	return kl_snapshot_decode(b.data, b.len, ret);
}

/* Names, hosts and tags of a view whose snapshots are read and sorted. */
static int index_view(struct kl_mview *v)
{
	size_t cap_h = 0, cap_t = 0;
	int rc;

	for (size_t i = 0; i < v->n; i++) {
		struct kl_msnap *s = &v->v[i];
		char t[40];
		unsigned dup = 0;

		kl_time_format_utc(s->s.time_ns, t);
		/* restic's names: a second suffix for snapshots of the same second */
		for (size_t j = i; j > 0 && kl_time_floor_sec(v->v[j - 1].s.time_ns) ==
						    kl_time_floor_sec(s->s.time_ns);
		     j--)
			dup++;
		if (dup)
			snprintf(s->name, sizeof(s->name), "%s-%u", t, dup);
		else
			snprintf(s->name, sizeof(s->name), "%s", t);
		kl_hex_encode(s->id.b, 4, s->short_id);
		rc = strv_add_unique(&v->hosts, &v->n_hosts, &cap_h, s->s.host);
		for (size_t k = 0; rc >= 0 && k < s->s.n_tags; k++)
			rc = strv_add_unique(&v->tags, &v->n_tags, &cap_t, s->s.tags[k]);
		if (rc < 0)
			return rc;
		if (s->s.time_ns > v->newest_ns)
			v->newest_ns = s->s.time_ns;
	}
	if (v->n_hosts)
		qsort(v->hosts, v->n_hosts, sizeof(char *), cmp_str);
	if (v->n_tags)
		qsort(v->tags, v->n_tags, sizeof(char *), cmp_str);
	return 0;
}

int kl_mview_build(struct kl_repo *r, const struct kl_snap_filter *f, const struct kl_mview *old,
		   struct kl_mview **ret)
{
	struct names l = {0};
	struct kl_mview *v = kl_calloc(1, sizeof(*v));
	const struct kl_msnap **idx = NULL;
	int rc;

	if (!v)
		return -ENOMEM;
	v->refs = 1;
	rc = old_index(old, &idx);
	if (rc >= 0)
		rc = kl_repo_list(r, KL_OBJ_SNAPSHOT, add_name, &l);
	if (rc >= 0 && l.n)
		v->v = kl_calloc(l.n, sizeof(*v->v));
	if (rc >= 0 && l.n && !v->v)
		rc = -ENOMEM;
	for (size_t i = 0; rc >= 0 && i < l.n; i++) {
		const struct kl_msnap *o = old_find(idx, old ? old->n : 0, &l.v[i]);
		struct kl_msnap *s = &v->v[v->n];

		s->id = l.v[i];
		if (o) {
			rc = snap_copy(&o->s, &s->s);
		} else {
			rc = kl_repo_load_snapshot(r, &s->id, &s->s);
			if (rc < 0) {
				/* damaged, or deleted since the listing: not shown ('keel check'
				 * says) */
				kl_repo_clear_err(r);
				rc = 0;
				continue;
			}
		}
		if (rc < 0)
			break;
		if (!kl_snap_filter_match(f, &s->s)) {
			kl_snapshot_release(&s->s);
			continue;
		}
		v->n_new += !o;
		v->n++;
	}
	kl_free(idx);
	kl_free(l.v);
	if (rc >= 0 && v->n)
		qsort(v->v, v->n, sizeof(*v->v), cmp_time);
	if (rc >= 0)
		rc = index_view(v);
	if (rc < 0) {
		kl_mview_unref(v);
		return rc;
	}
	*ret = v;
	return 0;
}

void kl_mview_unref(struct kl_mview *v)
{
	if (!v || __atomic_sub_fetch(&v->refs, 1, __ATOMIC_ACQ_REL))
		return;
	for (size_t i = 0; i < v->n; i++)
		kl_snapshot_release(&v->v[i].s);
	kl_free(v->v);
	for (size_t i = 0; i < v->n_hosts; i++)
		kl_free(v->hosts[i]);
	kl_free(v->hosts);
	for (size_t i = 0; i < v->n_tags; i++)
		kl_free(v->tags[i]);
	kl_free(v->tags);
	kl_free(v);
}

static bool has_tag(const struct kl_snapshot *s, const char *tag)
{
	for (size_t i = 0; i < s->n_tags; i++)
		if (!strcmp(s->tags[i], tag))
			return true;
	return false;
}

/* Whether snapshot s belongs in layout directory dir (of key). */
static bool in_dir(const struct kl_msnap *s, enum kl_mdir dir, const char *key)
{
	switch (dir) {
	case KL_MDIR_SNAPSHOTS:
		return true;
	case KL_MDIR_HOST:
		return s->s.host && !strcmp(s->s.host, key);
	case KL_MDIR_TAG:
		return has_tag(&s->s, key);
	default:
		return false;
	}
}

static const char *find_key(char *const *v, size_t n, const char *s, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(v[i]) == len && !memcmp(v[i], s, len))
			return v[i];
	return NULL;
}

/* The next component of *p (its length in *len), or NULL at the end. */
static const char *next_comp(const char **p, size_t *len)
{
	const char *s = *p, *e;

	while (*s == '/')
		s++;
	if (!*s)
		return NULL;
	e = strchrnul(s, '/');
	*len = (size_t)(e - s);
	*p = e;
	return s;
}

/* In a list of TIMEs (snapshots/, hosts/H/, tags/T/): the name c of len at *p. */
static int resolve_in_list(const struct kl_mview *v, struct kl_mpath *ret, const char *c,
			   size_t len, const char *rest)
{
	const struct kl_msnap *latest = NULL;

	for (size_t i = 0; i < v->n; i++) {
		const struct kl_msnap *s = &v->v[i];

		if (!in_dir(s, ret->dir, ret->key))
			continue;
		latest = s;
		if (strlen(s->name) == len && !memcmp(s->name, c, len)) {
			ret->kind = KL_MPATH_SNAP;
			ret->snap = s;
			ret->rest = rest;
			return 0;
		}
	}
	if (latest && len == 6 && !memcmp(c, "latest", 6)) {
		if (*rest && rest[strspn(rest, "/")])
			return -ENOTDIR;
		ret->kind = KL_MPATH_LINK;
		snprintf(ret->link, sizeof(ret->link), "%s", latest->name);
		return 0;
	}
	return -ENOENT;
}

int kl_mview_resolve(const struct kl_mview *v, const char *path, struct kl_mpath *ret)
{
	const char *p = path, *c;
	size_t len;

	memset(ret, 0, sizeof(*ret));
	ret->kind = KL_MPATH_DIR;
	ret->dir = KL_MDIR_ROOT;
	c = next_comp(&p, &len);
	if (!c)
		return 0;
	if (len == 9 && !memcmp(c, "snapshots", 9)) {
		ret->dir = KL_MDIR_SNAPSHOTS;
	} else if (len == 3 && !memcmp(c, "ids", 3)) {
		ret->dir = KL_MDIR_IDS;
		c = next_comp(&p, &len);
		if (!c)
			return 0;
		for (size_t i = 0; i < v->n; i++) {
			if (len == 8 && !memcmp(v->v[i].short_id, c, 8)) {
				ret->kind = KL_MPATH_SNAP;
				ret->snap = &v->v[i];
				ret->rest = p;
				return 0;
			}
		}
		return -ENOENT;
	} else if (len == 5 && !memcmp(c, "hosts", 5)) {
		ret->dir = KL_MDIR_HOSTS;
		c = next_comp(&p, &len);
		if (!c)
			return 0;
		ret->key = find_key(v->hosts, v->n_hosts, c, len);
		ret->dir = KL_MDIR_HOST;
	} else if (len == 4 && !memcmp(c, "tags", 4)) {
		ret->dir = KL_MDIR_TAGS;
		c = next_comp(&p, &len);
		if (!c)
			return 0;
		ret->key = find_key(v->tags, v->n_tags, c, len);
		ret->dir = KL_MDIR_TAG;
	} else {
		return -ENOENT;
	}
	if ((ret->dir == KL_MDIR_HOST || ret->dir == KL_MDIR_TAG) && !ret->key)
		return -ENOENT;
	c = next_comp(&p, &len);
	if (!c)
		return 0;
	return resolve_in_list(v, ret, c, len, p);
}

int kl_mview_list(const struct kl_mview *v, const struct kl_mpath *p,
		  int (*fill)(void *ud, const char *name), void *ud)
{
	static const char *const top[] = {"snapshots", "ids", "hosts", "tags"};
	bool any = false;
	int rc = 0;

	switch (p->dir) {
	case KL_MDIR_ROOT:
		for (size_t i = 0; rc >= 0 && i < KL_ARRAY_SIZE(top); i++)
			rc = fill(ud, top[i]);
		return rc;
	case KL_MDIR_IDS:
		for (size_t i = 0; rc >= 0 && i < v->n; i++)
			rc = fill(ud, v->v[i].short_id);
		return rc;
	case KL_MDIR_HOSTS:
		for (size_t i = 0; rc >= 0 && i < v->n_hosts; i++)
			rc = fill(ud, v->hosts[i]);
		return rc;
	case KL_MDIR_TAGS:
		for (size_t i = 0; rc >= 0 && i < v->n_tags; i++)
			rc = fill(ud, v->tags[i]);
		return rc;
	default:
		break;
	}
	for (size_t i = 0; rc >= 0 && i < v->n; i++) {
		if (!in_dir(&v->v[i], p->dir, p->key))
			continue;
		any = true;
		rc = fill(ud, v->v[i].name);
	}
	if (rc >= 0 && any)
		rc = fill(ud, "latest");
	return rc;
}
