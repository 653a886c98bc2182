#include <stdlib.h>

#include "cli.h"

static int find(struct kl_cli *cli, const char *arg, const struct kl_snap_filter *f,
		struct kl_snapshot_ref *ret, const char **path_ret, bool unreadable_ok)
{
	static const struct kl_id zero;
	char spec[128];
	const char *colon = strchr(arg, ':');
	size_t n = colon ? (size_t)(colon - arg) : strlen(arg);
	int rc;

	if (n == 0 || n >= sizeof(spec))
		return kl_cli_usage_error(cli, "invalid snapshot '%s'", arg);
	memcpy(spec, arg, n);
	spec[n] = 0;
	if (path_ret)
		*path_ret = colon ? colon + 1 : "";
	else if (colon)
		return kl_cli_usage_error(cli, "a subpath is not allowed here: '%s'", arg);
	rc = kl_snapshot_find(cli->repo, spec, f, ret);
	/* only an id names a damaged snapshot: 'latest' may be any of them */
	if (rc == -KL_ECORRUPT && unreadable_ok && !kl_id_eq(&ret->id, &zero)) {
		kl_repo_clear_err(cli->repo);
		return 1;
	}
	if (rc < 0) {
		kl_repo_take_err(cli->repo, &cli->err, &cli->detail);
		kl_cli_error(cli, rc, "snapshot '%s'", spec);
	}
	return rc;
}

/*
 * Resolves "ID[:PATH]" or "latest[:PATH]" with the filter. path_ret gets
 * the part after ':' (borrowed from arg) or "".
 */
int kl_cli_find_snapshot(struct kl_cli *cli, const char *arg, const struct kl_snap_filter *f,
			 struct kl_snapshot_ref *ret, const char **path_ret)
{
	return find(cli, arg, f, ret, path_ret, false);
}

int kl_cli_find_snapshot_id(struct kl_cli *cli, const char *arg, const struct kl_snap_filter *f,
			    struct kl_snapshot_ref *ret)
{
	return find(cli, arg, f, ret, NULL, true);
}

/* "4361fab4 of host:/a,/b at 2026-12-06 03:00:00 (tags x,y)": which snapshot was chosen. */
void kl_cli_print_snapshot(FILE *out, const struct kl_snapshot_ref *s)
{
	char hex[2 * KL_ID_LEN + 1], when[40];

	kl_id_hex(&s->id, hex);
	kl_time_format_local(s->s.time_ns, when);
	fprintf(out, "%.8s of %s:", hex, s->s.host ? s->s.host : "?");
	for (size_t i = 0; i < s->s.n_paths; i++)
		fprintf(out, "%s%s", i ? "," : "", s->s.paths[i]);
	fprintf(out, " at %s", when);
	for (size_t i = 0; i < s->s.n_tags; i++)
		fprintf(out, "%s%s", i ? "," : " (tags ", s->s.tags[i]);
	if (s->s.n_tags)
		fputc(')', out);
}

static int by_time(const void *a, const void *b)
{
	const struct kl_snapshot_ref *x = a, *y = b;

	return (x->s.time_ns > y->s.time_ns) - (x->s.time_ns < y->s.time_ns);
}

int kl_cli_pick_snapshots(struct kl_cli *cli, char *const *ids, size_t n,
			  const struct kl_snap_filter *f, struct kl_snapshot_list *l)
{
	size_t j = 0;
	int rc;

	if (n) {
		l->v = kl_calloc(n, sizeof(*l->v));
		if (!l->v)
			return -ENOMEM;
		for (size_t i = 0; i < n; i++) {
			bool dup = false;

			rc = kl_cli_find_snapshot(cli, ids[i], f, &l->v[l->n], NULL);
			if (rc < 0)
				return rc; /* the caller releases what was found */
			for (size_t k = 0; k < l->n; k++)
				dup |= kl_id_eq(&l->v[k].id, &l->v[l->n].id);
			if (dup)
				kl_snapshot_release(&l->v[l->n].s);
			else
				l->n++;
		}
		qsort(l->v, l->n, sizeof(*l->v), by_time);
		return 0;
	}
	rc = kl_repo_list_snapshots(cli->repo, l);
	if (rc < 0) {
		kl_repo_take_err(cli->repo, &cli->err, &cli->detail);
		kl_cli_error(cli, rc, "cannot list snapshots");
		return rc;
	}
	if (l->n_damaged)
		kl_cli_warn(cli, "%zu snapshot%s cannot be read and %s left out ('keel check')",
			    l->n_damaged, l->n_damaged == 1 ? "" : "s",
			    l->n_damaged == 1 ? "is" : "are");
	for (size_t i = 0; i < l->n; i++) {
		if (kl_snap_filter_match(f, &l->v[i].s))
			l->v[j++] = l->v[i];
		else
			kl_snapshot_release(&l->v[i].s);
	}
	l->n = j;
	return 0;
}
