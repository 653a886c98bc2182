/*
 * keel tag: a snapshot's tags change by writing a copy that names the old
 * snapshot in its "replaces" field, then deleting the old one. A copy is
 * written before anything is deleted, so an interruption leaves both
 * (recognisable, finished by the next tag), never neither.
 */
#include "keel/forget.h"
#include "keel/query.h"

static bool has(char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] && !strcmp(v[i], s))
			return true;
	return false;
}

static int push(char ***v, size_t *n, const char *s)
{
	char **nv;

	if (has(*v, *n, s))
		return 0;
	nv = kl_realloc(*v, (*n + 1) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	*v = nv;
	nv[*n] = kl_strdup(s);
	if (!nv[*n])
		return -ENOMEM;
	(*n)++;
	return 0;
}

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		kl_free(v[i]);
	kl_free(v);
}

static bool same_set(char *const *a, size_t na, char *const *b, size_t nb)
{
	for (size_t i = 0; i < na; i++)
		if (!has(b, nb, a[i]))
			return false;
	for (size_t i = 0; i < nb; i++)
		if (!has(a, na, b[i]))
			return false;
	return true;
}

int kl_tags_apply(const struct kl_tag_change *c, struct kl_snapshot *s)
{
	char **v = NULL;
	size_t n = 0;
	int rc = 0;

	if (c->set_given) {
		for (size_t i = 0; i < c->n_set && rc >= 0; i++)
			rc = push(&v, &n, c->set[i]);
	} else {
		for (size_t i = 0; i < s->n_tags && rc >= 0; i++)
			if (s->tags[i] && !has(c->remove, c->n_remove, s->tags[i]))
				rc = push(&v, &n, s->tags[i]);
		for (size_t i = 0; i < c->n_add && rc >= 0; i++)
			rc = push(&v, &n, c->add[i]);
	}
	if (rc < 0 || same_set(v, n, s->tags, s->n_tags)) {
		strv_free(v, n);
		return rc;
	}
	strv_free(s->tags, s->n_tags);
	s->tags = v;
	s->n_tags = n;
	return 1;
}

int kl_snapshot_retag(struct kl_repo *r, const struct kl_id *old, struct kl_snapshot *s,
		      struct kl_id *ret)
{
	char hex[2 * KL_ID_LEN + 1];
	int rc;

	kl_id_hex(old, hex);
	if (kl_repo_append_only(r))
		return kl_repo_fail(r, -KL_EAPPENDONLY,
				    "the storage is append-only: snapshot %.8s cannot be replaced",
				    hex);
	s->replaces = *old;
	s->has_replaces = true;
	rc = kl_repo_save_snapshot(r, s, ret);
	if (rc < 0)
		return kl_repo_fail(r, rc, "cannot write the new snapshot for %.8s", hex);
	kl_test_point("tag-written");
	return kl_snapshot_forget(r, old);
}

/* The snapshot of l that replaces l->v[i], or NULL. */
static const struct kl_snapshot_ref *replaced_by(const struct kl_snapshot_list *l, size_t i)
{
	for (size_t k = 0; k < l->n; k++)
		if (k != i && l->v[k].s.has_replaces &&
		    kl_id_eq(&l->v[k].s.replaces, &l->v[i].id) &&
		    kl_id_eq(&l->v[k].s.tree, &l->v[i].s.tree))
			return &l->v[k];
	return NULL;
}

int kl_snapshots_finish_retag(struct kl_repo *r, struct kl_snapshot_list *l,
			      void (*cb)(const struct kl_id *old, const struct kl_id *by, int err,
					 void *ud),
			      void *ud)
{
	_cleanup_free_ bool *gone = kl_calloc(l->n ? l->n : 1, sizeof(*gone));
	size_t j = 0;
	int rc = 0, count = 0;

	if (!gone)
		return -ENOMEM;
	for (size_t i = 0; i < l->n && rc >= 0; i++) {
		const struct kl_snapshot_ref *by = replaced_by(l, i);

		if (!by)
			continue;
		if (kl_repo_append_only(r))
			return kl_repo_fail(r, -KL_EAPPENDONLY,
					    "the storage is append-only: cannot remove a snapshot "
					    "an interrupted tag replaced");
		rc = kl_snapshot_forget(r, &l->v[i].id);
		if (rc == -KL_EOBJLOCKED) {
			/* kept until its retention ends; it is not tagged again meanwhile */
			kl_repo_clear_err(r);
			gone[i] = true;
			if (cb)
				cb(&l->v[i].id, &by->id, rc, ud);
			rc = 0;
			continue;
		}
		if (rc < 0)
			break;
		gone[i] = true;
		count++;
		if (cb)
			cb(&l->v[i].id, &by->id, 0, ud);
	}
	for (size_t i = 0; i < l->n; i++) {
		if (gone[i])
			kl_snapshot_release(&l->v[i].s);
		else
			l->v[j++] = l->v[i];
	}
	l->n = j;
	return rc < 0 ? rc : count;
}
