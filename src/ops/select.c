/*
 * Choosing snapshots: filters by host, tag and path, "latest", and unique
 * id prefixes.
 *
 * A filter applies to "latest" only: an id or id prefix names one
 * snapshot, and the user meant that one (restic does the same).
 *
 * "latest" is the newest snapshot or nothing: a snapshot whose object
 * cannot be read may be the newest, and then the answer is an error that
 * names it, never the next older one.
 */
#include "keel/ops.h"

static bool has_string(char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] && !strcmp(v[i], s))
			return true;
	return false;
}

/* Whether s has every tag of the comma-separated list g ("" : s has no tag), as restic. */
static bool has_tag_group(const struct kl_snapshot *s, const char *g)
{
	if (!*g)
		return !s->n_tags;
	while (*g) {
		const char *e = strchrnul(g, ',');
		size_t n = (size_t)(e - g), i;

		for (i = 0; n && i < s->n_tags; i++)
			if (s->tags[i] && strlen(s->tags[i]) == n && !memcmp(s->tags[i], g, n))
				break;
		if (n && i == s->n_tags)
			return false;
		g = *e ? e + 1 : e;
	}
	return true;
}

bool kl_snap_filter_match(const struct kl_snap_filter *f, const struct kl_snapshot *s)
{
	size_t i;

	if (!f)
		return true;
	if (f->kind && s->kind != f->kind)
		return false;
	if (f->n_hosts && (!s->host || !has_string(f->hosts, f->n_hosts, s->host)))
		return false;
	/* --tag a,b --tag c: (a and b) or c */
	for (i = 0; i < f->n_tags; i++)
		if (has_tag_group(s, f->tags[i]))
			break;
	if (f->n_tags && i == f->n_tags)
		return false;
	for (i = 0; i < f->n_paths; i++)
		if (!has_string(s->paths, s->n_paths, f->paths[i]))
			return false;
	return true;
}

/*
 * A damaged snapshot's time cannot be read, so it is older than "than"
 * only where a readable snapshot no newer than "than" names it as its
 * parent (a parent exists before its child starts).
 */
static bool proven_older(const struct kl_snapshot_list *l, const struct kl_id *d,
			 const struct kl_snapshot_ref *than)
{
	for (size_t i = 0; than && i < l->n && l->v[i].s.time_ns <= than->s.time_ns; i++)
		if (l->v[i].s.has_parent && kl_id_eq(&l->v[i].s.parent, d))
			return true;
	return false;
}

const struct kl_id *kl_snapshot_damaged_newer(const struct kl_snapshot_list *l,
					      const struct kl_snapshot_ref *than, size_t *n_ret)
{
	const struct kl_id *first = NULL;
	size_t n = 0;

	for (size_t i = 0; i < l->n_damaged; i++) {
		if (proven_older(l, &l->damaged[i], than))
			continue;
		if (!n++)
			first = &l->damaged[i];
	}
	if (n_ret)
		*n_ret = n;
	return first;
}

static int find_latest(struct kl_repo *r, const struct kl_snap_filter *f,
		       struct kl_snapshot_ref *ret)
{
	struct kl_snapshot_list l;
	struct kl_snapshot_ref *found = NULL;
	const struct kl_id *d;
	char hex[2 * KL_ID_LEN + 1];
	size_t n_d;
	int rc;

	rc = kl_repo_list_snapshots(r, &l);
	if (rc < 0)
		return rc;
	/* the list is sorted oldest first, ties broken by id */
	for (size_t i = l.n; !found && i-- > 0;)
		if (kl_snap_filter_match(f, &l.v[i].s))
			found = &l.v[i];
	/*
	 * A damaged snapshot's host, tags and time are unknown: it may be the
	 * newest that matches, and restoring an older one in its place without
	 * a word is the worst answer. Fail, naming it.
	 */
	d = kl_snapshot_damaged_newer(&l, found, &n_d);
	if (d) {
		kl_id_hex(d, hex);
		rc = kl_repo_fail(r, -KL_ECORRUPT,
				  "snapshot %.16s cannot be read and may be the newest%s: give a "
				  "snapshot id, or remove it with 'keel repair snapshots --forget'",
				  hex, n_d > 1 ? " (so may others: see 'keel snapshots')" : "");
	} else if (!found) {
		rc = kl_repo_fail(r, -KL_ENOTFOUND, "no snapshot matches 'latest' and the filter");
	} else {
		/* hand the decoded snapshot over instead of copying it */
		*ret = *found;
		memset(&found->s, 0, sizeof(found->s));
	}
	kl_snapshot_list_release(&l);
	return rc;
}

struct prefix_ctx {
	const char *prefix;
	size_t len;
	size_t matches;
	struct kl_id first;
	char names[2][2 * KL_ID_LEN + 1]; /* for the ambiguity message */
};

static int prefix_one(const char *name, uint64_t size, void *ud)
{
	struct prefix_ctx *c = ud;
	struct kl_id id;

	if (kl_id_parse(name, &id) < 0 || strncmp(name, c->prefix, c->len))
		return 0; /* not a snapshot's name, or another snapshot */
	if (c->matches < 2)
		kl_id_hex(&id, c->names[c->matches]);
	if (!c->matches)
		c->first = id;
	c->matches++;
	return 0;
}

int kl_snapshot_find(struct kl_repo *r, const char *spec, const struct kl_snap_filter *f,
		     struct kl_snapshot_ref *ret)
{
	struct prefix_ctx c = {0};
	char want[2 * KL_ID_LEN + 1];
	size_t n = spec ? strlen(spec) : 0;
	int rc;

	memset(ret, 0, sizeof(*ret));
	if (!n)
		return kl_repo_fail(r, -KL_EUSAGE, "no snapshot given");
	if (!strcmp(spec, "latest"))
		return find_latest(r, f, ret);
	if (n > 2 * KL_ID_LEN)
		return kl_repo_fail(r, -KL_ENOTFOUND, "no snapshot '%s'", spec);
	for (size_t i = 0; i < n; i++) {
		char ch = spec[i];

		if (ch >= 'A' && ch <= 'F')
			ch = (char)(ch - 'A' + 'a');
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
			return kl_repo_fail(r, -KL_ENOTFOUND,
					    "no snapshot '%s' (give 'latest' or an id prefix)",
					    spec);
		want[i] = ch;
	}
	want[n] = 0;
	if (n == 2 * KL_ID_LEN) {
		/* a whole id: no need to list anything */
		rc = kl_id_parse(want, &ret->id);
	} else {
		c.prefix = want;
		c.len = n;
		rc = kl_repo_list(r, KL_OBJ_SNAPSHOT, prefix_one, &c);
		if (rc < 0)
			return kl_repo_fail(r, rc, "cannot list snapshots");
		if (c.matches > 1)
			return kl_repo_fail(
				r, -KL_EUSAGE,
				"snapshot prefix '%s' is ambiguous: %zu snapshots match "
				"(%.16s, %.16s%s)",
				spec, c.matches, c.names[0], c.names[1],
				c.matches > 2 ? ", ..." : "");
		ret->id = c.first;
	}
	if (rc >= 0 && (c.matches || n == 2 * KL_ID_LEN))
		rc = kl_repo_load_snapshot(r, &ret->id, &ret->s);
	else if (rc >= 0)
		rc = -KL_ENOTFOUND;
	if (rc == -KL_ENOTFOUND)
		return kl_repo_fail(r, rc, "no snapshot '%s'", spec);
	if (rc < 0)
		memset(&ret->s, 0, sizeof(ret->s));
	if (rc < 0 && rc != -KL_ECORRUPT)
		memset(&ret->id, 0, sizeof(ret->id));
	return rc;
}
