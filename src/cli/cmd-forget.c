#include <stdlib.h>

#include "cli.h"
#include "keel/db.h"
#include "keel/forget.h"
#include "keel/maint.h"

static const char usage[] =
	"usage: keel forget [OPTIONS] SNAPSHOT...\n"
	"       keel forget [OPTIONS] --keep-RULE...\n"
	"\n"
	"Remove the snapshots named, or those that no --keep rule keeps. Rules\n"
	"apply to each group of snapshots (same host and paths by default) on\n"
	"its own; a snapshot is kept if any rule keeps it. Hours, days, ISO weeks\n"
	"(Monday first), months and years are in local time (TZ). Only snapshot\n"
	"objects are deleted: 'keel prune' frees their data. See docs/FORGET.md.\n"
	"\n"
	"Rules (N = -1 means no limit):\n"
	"  -l, --keep-last N          keep the N newest snapshots\n"
	"  -H, --keep-hourly N        keep the newest snapshot of each of the N\n"
	"                             newest hours that have snapshots\n"
	"  -d, --keep-daily N         the same for days\n"
	"  -w, --keep-weekly N        ... for ISO weeks\n"
	"  -m, --keep-monthly N       ... for months\n"
	"  -y, --keep-yearly N        ... for years\n"
	"      --keep-within DURATION keep snapshots newer than the group's newest\n"
	"                             minus DURATION, e.g. 1y2m3d4h\n"
	"      --keep-within-hourly DURATION, --keep-within-daily DURATION,\n"
	"      --keep-within-weekly DURATION, --keep-within-monthly DURATION,\n"
	"      --keep-within-yearly DURATION\n"
	"                             the newest snapshot of every hour (day...)\n"
	"                             within DURATION of the group's newest\n"
	"      --keep-tag TAG         keep snapshots with TAG (TAG1,TAG2: with both;\n"
	"                             repeatable: with any)\n"
	"\n"
	"Options:\n"
	"      --host HOST            only consider snapshots of HOST (repeatable)\n"
	"      --tag TAG              only consider snapshots with TAG (TAG1,TAG2:\n"
	"                             both)\n"
	"      --path PATH            only consider snapshots that include PATH\n"
	"  -g, --group-by LIST        host, paths, tags, a comma-separated mix, or\n"
	"                             '' for one group (default: host,paths)\n"
	"  -n, --dry-run              show what would be kept and removed, remove\n"
	"                             nothing\n"
	"      --prune                then run 'keel prune' to free the space\n"
	"      --unreadable           SNAPSHOT may name a snapshot whose object\n"
	"                             cannot be read (damaged): remove it too\n"
	"                             (without, forget refuses it: exit 13)\n"
	"\n"
	"With neither SNAPSHOT nor a rule, forget refuses to run.\n";

enum {
	OPT_WITHIN = 0x200,
	OPT_WITHIN_BUCKET = 0x210, /* + enum kl_bucket */
	OPT_KEEP_TAG = 0x220,
	OPT_PRUNE = 0x230,
	OPT_UNREADABLE = 0x240,
};

/* What the command line asks for. */
struct forget_args {
	struct kl_forget_policy p;
	struct kl_snap_filter f;
	unsigned group_by;
	bool dry_run, prune, unreadable;
};

static int parse_count(struct kl_cli *cli, const char *opt, const char *arg, uint32_t *ret)
{
	uint64_t v;

	if (!strcmp(arg, "-1")) {
		*ret = KL_KEEP_UNLIMITED;
		return 0;
	}
	if (kl_parse_uint(arg, 0, 1000000000, &v) < 0)
		return kl_cli_usage_error(cli, "invalid %s '%s': give a count or -1", opt, arg);
	*ret = (uint32_t)v;
	return 0;
}

static int parse_duration(struct kl_cli *cli, const char *opt, const char *arg,
			  struct kl_duration *ret)
{
	if (kl_duration_parse(arg, ret) < 0)
		return kl_cli_usage_error(
			cli, "invalid %s '%s': give e.g. 1y2m3d4h (years, months, days, hours)",
			opt, arg);
	return 0;
}

static void print_strv_json(char *const *v, size_t n)
{
	putchar('[');
	for (size_t i = 0; i < n; i++) {
		if (i)
			putchar(',');
		kl_json_cstr(stdout, v[i]);
	}
	putchar(']');
}

static void print_snap_json(const struct kl_snapshot_ref *ref, unsigned reasons, bool with_reasons)
{
	char hex[2 * KL_ID_LEN + 1];

	kl_id_hex(&ref->id, hex);
	printf("{\"id\":\"%s\",\"short_id\":\"%.8s\",\"time\":", hex, hex);
	kl_json_time(stdout, ref->s.time_ns);
	printf(",\"hostname\":");
	kl_json_cstr(stdout, ref->s.host);
	printf(",\"paths\":");
	print_strv_json(ref->s.paths, ref->s.n_paths);
	printf(",\"tags\":");
	print_strv_json(ref->s.tags, ref->s.n_tags);
	if (with_reasons) {
		bool first = true;

		printf(",\"reasons\":[");
		for (unsigned b = 0; b < KL_KEEP_REASONS; b++) {
			if (!(reasons & 1u << b))
				continue;
			printf("%s\"%s\"", first ? "" : ",", kl_keep_reason_name(1u << b));
			first = false;
		}
		putchar(']');
	}
	putchar('}');
}

static void print_snap_text(const struct kl_snapshot_ref *ref, unsigned reasons, bool with_reasons)
{
	const struct kl_snapshot *s = &ref->s;
	char hex[2 * KL_ID_LEN + 1], when[40];
	int w = 0;

	kl_id_hex(&ref->id, hex);
	kl_time_format_local(s->time_ns, when);
	printf("%.8s  %s  %-16s  ", hex, when, s->host ? s->host : "");
	for (size_t i = 0; i < s->n_tags; i++)
		w += printf("%s%s", i ? "," : "", s->tags[i]);
	if (!s->n_tags)
		w += printf("-");
	if (with_reasons) {
		bool first = true;

		printf("%*s  ", w < 4 ? 4 - w : 0, "");
		for (unsigned b = 0; b < KL_KEEP_REASONS; b++) {
			if (!(reasons & 1u << b))
				continue;
			printf("%s%s", first ? "" : ", ", kl_keep_reason_name(1u << b));
			first = false;
		}
	}
	putchar('\n');
}

/* "host h, paths /a /b" for the group's key: what group_by selects. */
static void print_group_name(FILE *f, const struct kl_snapshot *s, unsigned group_by)
{
	const char *sep = "";

	if (!group_by) {
		fputs("all snapshots", f);
		return;
	}
	if (group_by & KL_GROUP_HOST) {
		fprintf(f, "host %s", s->host ? s->host : "''");
		sep = ", ";
	}
	if (group_by & KL_GROUP_PATHS) {
		fprintf(f, "%spaths", sep);
		for (size_t i = 0; i < s->n_paths; i++)
			fprintf(f, " %s", s->paths[i]);
		sep = ", ";
	}
	if (group_by & KL_GROUP_TAGS) {
		fprintf(f, "%stags ", sep);
		for (size_t i = 0; i < s->n_tags; i++)
			fprintf(f, "%s%s", i ? "," : "", s->tags[i]);
		if (!s->n_tags)
			fputs("-", f);
	}
}

static void print_group_key_json(const struct kl_snapshot *s, unsigned group_by)
{
	printf("\"group_key\":{\"hostname\":");
	if (group_by & KL_GROUP_HOST)
		kl_json_cstr(stdout, s->host ? s->host : "");
	else
		fputs("null", stdout);
	printf(",\"paths\":");
	if (group_by & KL_GROUP_PATHS)
		print_strv_json(s->paths, s->n_paths);
	else
		fputs("null", stdout);
	printf(",\"tags\":");
	if (group_by & KL_GROUP_TAGS)
		print_strv_json(s->tags, s->n_tags);
	else
		fputs("null", stdout);
	putchar('}');
}

static const char table_head[] = "ID        Time                 Host              Tags";

static void print_plan(struct kl_cli *cli, const struct kl_snapshot_ref *const *refs,
		       const struct kl_forget_plan *plan, unsigned group_by)
{
	if (cli->json)
		putchar('[');
	for (size_t g = 0; g < plan->n_groups; g++) {
		const struct kl_forget_group *gr = &plan->groups[g];
		const struct kl_snapshot *key = &refs[gr->items[0]]->s;
		bool first;

		if (cli->json) {
			printf("%s{", g ? "," : "");
			print_group_key_json(key, group_by);
			for (int keep = 1; keep >= 0; keep--) {
				printf(keep ? ",\"keep\":[" : ",\"remove\":[");
				first = true;
				for (size_t k = 0; k < gr->n; k++) {
					size_t i = gr->items[k];

					if (!plan->reasons[i] == !keep) {
						printf("%s", first ? "" : ",");
						print_snap_json(refs[i], plan->reasons[i], keep);
						first = false;
					}
				}
				putchar(']');
			}
			putchar('}');
			continue;
		}
		if (cli->quiet)
			continue;
		printf("%sgroup: ", g ? "\n" : "");
		print_group_name(stdout, key, group_by);
		printf("\nkeep %zu of %zu snapshots:\n", gr->n_keep, gr->n);
		if (gr->n_keep)
			printf("%s  Reasons\n", table_head);
		for (size_t k = 0; k < gr->n; k++)
			if (plan->reasons[gr->items[k]])
				print_snap_text(refs[gr->items[k]], plan->reasons[gr->items[k]],
						true);
		if (gr->n_keep == gr->n)
			continue;
		printf("remove %zu snapshots:\n%s\n", gr->n - gr->n_keep, table_head);
		for (size_t k = 0; k < gr->n; k++)
			if (!plan->reasons[gr->items[k]])
				print_snap_text(refs[gr->items[k]], 0, false);
	}
	if (cli->json)
		printf("]\n");
}

/* Deletes refs[i] for every i with !reasons[i]: kl_snapshots_forget, reported. */
static int remove_snapshots(struct kl_cli *cli, const struct kl_snapshot_ref *const *refs,
			    const unsigned *reasons, size_t n, size_t *removed)
{
	_cleanup_free_ struct kl_id *ids = kl_calloc(n ? n : 1, sizeof(*ids));
	struct kl_forget_result res;
	size_t m = 0;
	int rc;

	if (!ids)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (!reasons || !reasons[i])
			ids[m++] = refs[i]->id;
	rc = kl_snapshots_forget(cli->repo, ids, m, &res);
	for (size_t i = 0; i < res.n_retained; i++) {
		char hex[2 * KL_ID_LEN + 1];

		kl_id_hex(&res.retained[i], hex);
		kl_cli_warn(cli, "snapshot %.8s is under retention (Object Lock): kept", hex);
	}
	*removed = res.removed;
	kl_forget_result_release(&res);
	if (rc < 0 && rc != -KL_EOBJLOCKED) {
		kl_repo_take_err(cli->repo, &cli->err, &cli->detail);
		kl_cli_error(cli, rc, "stopped after removing %zu snapshots", *removed);
	}
	return rc;
}

static void print_summary(struct kl_cli *cli, bool dry_run, size_t n_remove, size_t n_total)
{
	if (cli->json || cli->quiet)
		return;
	if (dry_run)
		printf("would remove %zu of %zu snapshots (dry run: nothing was removed)\n",
		       n_remove, n_total);
	else
		printf("removed %zu of %zu snapshots\n", n_remove, n_total);
}

static void hint_prune(struct kl_cli *cli, size_t removed)
{
	if (removed && !cli->quiet)
		fprintf(stderr, "hint: run 'keel prune' to free the space their data used\n");
}

/* A snapshot named by id whose object cannot be read: only its id is known. */
static void print_unreadable(struct kl_cli *cli, const struct kl_snapshot_ref *ref, bool first)
{
	char hex[2 * KL_ID_LEN + 1];

	kl_id_hex(&ref->id, hex);
	if (cli->json)
		printf("%s{\"id\":\"%s\",\"short_id\":\"%.8s\",\"unreadable\":true}",
		       first ? "" : ",", hex, hex);
	else if (!cli->quiet)
		printf("%.8s  (cannot be read: damaged)\n", hex);
}

static void print_removal(struct kl_cli *cli, const struct kl_snapshot_ref *const *refs,
			  const bool *unreadable, size_t m, bool dry_run)
{
	if (cli->json)
		printf("[{\"group_key\":null,\"keep\":[],\"remove\":[");
	else if (!cli->quiet)
		printf("%s %zu snapshots:\n%s\n", dry_run ? "would remove" : "remove", m,
		       table_head);
	for (size_t i = 0; i < m; i++) {
		if (unreadable[i]) {
			print_unreadable(cli, refs[i], !i);
		} else if (cli->json) {
			printf("%s", i ? "," : "");
			print_snap_json(refs[i], 0, false);
		} else if (!cli->quiet) {
			print_snap_text(refs[i], 0, false);
		}
	}
	if (cli->json)
		printf("]}]\n");
}

static int forget_ids(struct kl_cli *cli, char **args, size_t n, const struct forget_args *a)
{
	struct kl_snapshot_ref *v = kl_calloc(n, sizeof(*v));
	const struct kl_snapshot_ref **refs = kl_calloc(n, sizeof(*refs));
	bool *unreadable = kl_calloc(n, sizeof(*unreadable));
	size_t m = 0, removed = 0;
	int rc = v && refs && unreadable ? 0 : -ENOMEM;

	/* resolve every name first: a typo must not leave half the work done */
	for (size_t i = 0; rc >= 0 && i < n; i++) {
		bool dup = false;

		if (a->unreadable)
			rc = kl_cli_find_snapshot_id(cli, args[i], &a->f, &v[m]);
		else
			rc = kl_cli_find_snapshot(cli, args[i], &a->f, &v[m], NULL);
		if (rc == -KL_ECORRUPT && !kl_id_eq(&v[m].id, &(struct kl_id){{0}}))
			fprintf(stderr,
				"hint: 'keel forget --unreadable %s' removes a snapshot "
				"that cannot be read\n",
				args[i]);
		if (rc < 0)
			break;
		unreadable[m] = rc > 0;
		for (size_t j = 0; j < m; j++)
			dup |= kl_id_eq(&v[j].id, &v[m].id);
		if (dup)
			kl_snapshot_release(&v[m].s);
		else
			refs[m] = &v[m], m++;
	}
	if (rc >= 0) {
		print_removal(cli, refs, unreadable, m, a->dry_run);
		if (!a->dry_run)
			rc = remove_snapshots(cli, refs, NULL, m, &removed);
		if (rc >= 0)
			print_summary(cli, a->dry_run, m, m);
		hint_prune(cli, a->prune ? 0 : removed);
	}
	for (size_t i = 0; i < m; i++)
		kl_snapshot_release(&v[i].s);
	kl_free(v);
	kl_free(refs);
	kl_free(unreadable);
	return rc;
}

/* forget holds a shared lock; prune needs its own kind, taken before it reads the index */
static int then_prune(struct kl_cli *cli)
{
	struct kl_prune_opts o = {.max_unused_permille = KL_PRUNE_MAX_UNUSED_DEFAULT};
	int rc, u;

	/* as kl_cli_close does: forget's leaked lock is said, and prune still runs (a shared lock
	 * does not hold prune back, it only makes it keep more) */
	u = kl_repo_unlock_repo(cli->repo);
	if (u < 0) {
		kl_repo_take_err(cli->repo, &cli->err, &cli->detail);
		kl_cli_error(
			cli, u,
			"forget is done, but its lock is left in the repository; it goes stale in "
			"30 minutes, or remove it with 'keel unlock' once no keel runs here");
	}
	rc = kl_repo_lock(cli->repo, KL_LOCK_PRUNE, "prune");
	if (rc >= 0)
		rc = kl_repo_refresh_index(cli->repo);
	if (rc < 0) {
		kl_repo_take_err(cli->repo, &cli->err, &cli->detail);
		kl_cli_error(cli, rc, "cannot prune");
		return rc;
	}
	rc = kl_cli_prune(cli, &o);
	return rc >= 0 && u < 0 ? -KL_ELOCKLEFT : rc;
}

/*
 * The log records that go with the base backups the policy removes
 * (docs/DATABASES.md, "Retention"): *ret (pointers into l, the caller's to
 * free) and their count, or -ENOMEM.
 */
static int db_logs(const struct kl_snapshot_list *l, const struct kl_snapshot_ref *const *refs,
		   const unsigned *reasons, size_t n, const struct kl_snapshot_ref ***ret)
{
	bool *gone = kl_calloc(l->n + 1, 3 * sizeof(bool)), *touched, *drop;
	int count;

	*ret = NULL;
	if (!gone)
		return -ENOMEM;
	touched = gone + l->n + 1;
	drop = touched + l->n + 1;
	for (size_t k = 0; k < n; k++) {
		touched[refs[k] - l->v] = true;
		gone[refs[k] - l->v] = !reasons[k];
	}
	count = kl_db_retention(l->v, l->n, gone, touched, drop);
	if (count > 0 && !(*ret = kl_calloc((size_t)count, sizeof(**ret))))
		count = -ENOMEM;
	for (size_t i = 0, m = 0; count > 0 && i < l->n; i++)
		if (drop[i])
			(*ret)[m++] = &l->v[i];
	kl_free(gone);
	return count;
}

static int forget_policy(struct kl_cli *cli, const struct kl_forget_policy *p,
			 const struct kl_snap_filter *f, unsigned group_by, bool dry_run,
			 bool prune_next)
{
	struct kl_snapshot_list l = {0};
	struct kl_forget_plan plan = {0};
	struct kl_forget_item *items = NULL;
	const struct kl_snapshot_ref **refs = NULL, **logs = NULL;
	size_t n = 0, n_remove = 0, removed = 0, removed_logs = 0;
	int rc, n_logs = 0;

	rc = kl_repo_list_snapshots(cli->repo, &l);
	if (rc < 0) {
		kl_repo_take_err(cli->repo, &cli->err, &cli->detail);
		kl_cli_error(cli, rc, "cannot list snapshots");
		return rc;
	}
	items = kl_calloc(l.n ? l.n : 1, sizeof(*items));
	refs = kl_calloc(l.n ? l.n : 1, sizeof(*refs));
	if (!items || !refs) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < l.n; i++) {
		const struct kl_snapshot *s = &l.v[i].s;

		if (!kl_snap_filter_match(f, s))
			continue;
		/*
		 * A database's log records are never counted by a policy:
		 * dropping one would cut a hole in its timeline. Its base
		 * backups are, and db_logs() removes the records older than
		 * the oldest one kept (docs/DATABASES.md, "Retention").
		 */
		if (s->kind == KL_SNAP_DBLOG)
			continue;
		refs[n] = &l.v[i];
		items[n++] = (struct kl_forget_item){
			.id = l.v[i].id,
			.time_ns = s->time_ns,
			.host = s->host,
			.paths = s->paths,
			.n_paths = s->n_paths,
			.tags = s->tags,
			.n_tags = s->n_tags,
		};
	}
	rc = kl_forget_plan(items, n, p, group_by, &plan);
	if (rc < 0) {
		kl_cli_error(cli, rc, "cannot apply the policy");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		n_remove += !plan.reasons[i];
	print_plan(cli, refs, &plan, group_by);
	for (size_t g = 0; g < plan.n_groups; g++) {
		if (plan.groups[g].n_keep)
			continue;
		fprintf(stderr, "keel: forget: warning: no rule keeps a snapshot of group '");
		print_group_name(stderr, &refs[plan.groups[g].items[0]]->s, group_by);
		fprintf(stderr, "': all %zu are removed\n", plan.groups[g].n);
	}
	n_logs = db_logs(&l, refs, plan.reasons, n, &logs);
	if (n_logs < 0) {
		rc = n_logs;
		goto out;
	}
	if (!dry_run)
		rc = remove_snapshots(cli, refs, plan.reasons, n, &removed);
	/* the base backups first: a crash between leaves records, never a base without them */
	if (!dry_run && rc >= 0 && n_logs)
		rc = remove_snapshots(cli, logs, NULL, (size_t)n_logs, &removed_logs);
	if (rc >= 0)
		print_summary(cli, dry_run, n_remove, n);
	if (rc >= 0 && n_logs && !cli->json && !cli->quiet)
		printf("%s %d database log record%s older than the oldest kept base backup\n",
		       dry_run ? "would remove" : "removed", n_logs, n_logs == 1 ? "" : "s");
	hint_prune(cli, prune_next ? 0 : removed + removed_logs);
	for (size_t i = 0; i < l.n_damaged; i++) {
		char hex[2 * KL_ID_LEN + 1];

		kl_id_hex(&l.damaged[i], hex);
		fprintf(stderr,
			"keel: forget: snapshot %.8s is damaged and was left alone "
			"(file snapshots/%s; 'keel forget --unreadable %.8s' removes it)\n",
			hex, hex, hex);
	}
	if (rc >= 0 && l.n_damaged)
		rc = -KL_ECORRUPT;
out:
	kl_forget_plan_release(&plan);
	kl_free(items);
	kl_free(refs);
	kl_free(logs);
	kl_snapshot_list_release(&l);
	return rc;
}

/* One option of the command line into a; 0, or a usage error. */
static int parse_opt(struct kl_cli *cli, int c, char **argv, struct forget_args *a)
{
	static const char *const bucket_opt[KL_BUCKETS] = {"--keep-hourly", "--keep-daily",
							   "--keep-weekly", "--keep-monthly",
							   "--keep-yearly"};
	static const char *const within_opt[KL_BUCKETS] = {
		"--keep-within-hourly", "--keep-within-daily", "--keep-within-weekly",
		"--keep-within-monthly", "--keep-within-yearly"};
	struct kl_forget_policy *p = &a->p;
	int rc = 0;

	switch (c) {
	case 'l':
		return parse_count(cli, "--keep-last", optarg, &p->last);
	case 'H':
	case 'd':
	case 'w':
	case 'm':
	case 'y': {
		static const char letters[] = "Hdwmy";
		int b = (int)(strchr(letters, c) - letters);

		return parse_count(cli, bucket_opt[b], optarg, &p->buckets[b]);
	}
	case OPT_WITHIN:
		return parse_duration(cli, "--keep-within", optarg, &p->within);
	case OPT_WITHIN_BUCKET + KL_BUCKET_HOUR:
	case OPT_WITHIN_BUCKET + KL_BUCKET_DAY:
	case OPT_WITHIN_BUCKET + KL_BUCKET_WEEK:
	case OPT_WITHIN_BUCKET + KL_BUCKET_MONTH:
	case OPT_WITHIN_BUCKET + KL_BUCKET_YEAR:
		return parse_duration(cli, within_opt[c - OPT_WITHIN_BUCKET], optarg,
				      &p->within_bucket[c - OPT_WITHIN_BUCKET]);
	case OPT_KEEP_TAG:
		if (!optarg[strspn(optarg, ",")])
			return kl_cli_usage_error(cli, "--keep-tag needs a tag");
		return kl_strv_push(&p->keep_tags, &p->n_keep_tags, optarg);
	case 'g':
		if (kl_group_by_parse(optarg, &a->group_by) < 0)
			return kl_cli_usage_error(cli,
						  "invalid --group-by '%s': give host, paths, "
						  "tags, a comma-separated mix, or ''",
						  optarg);
		return 0;
	case 'n':
		a->dry_run = true;
		return 0;
	case OPT_PRUNE:
		a->prune = true;
		return 0;
	case OPT_UNREADABLE:
		a->unreadable = true;
		return 0;
	default:
		rc = kl_cli_snap_filter_opt(&a->f, c, optarg);
		if (rc > 0)
			return 0;
		if (rc == 0)
			rc = kl_cli_default_opt(cli, c, usage, argv);
		return rc;
	}
}

int cmd_forget(int argc, char **argv, struct kl_cli *cli)
{
	static const struct option opts[] = {
		KL_GLOBAL_OPTS,
		KL_SNAP_FILTER_OPTS,
		{"keep-last", required_argument, NULL, 'l'},
		{"keep-hourly", required_argument, NULL, 'H'},
		{"keep-daily", required_argument, NULL, 'd'},
		{"keep-weekly", required_argument, NULL, 'w'},
		{"keep-monthly", required_argument, NULL, 'm'},
		{"keep-yearly", required_argument, NULL, 'y'},
		{"keep-within", required_argument, NULL, OPT_WITHIN},
		{"keep-within-hourly", required_argument, NULL, OPT_WITHIN_BUCKET + KL_BUCKET_HOUR},
		{"keep-within-daily", required_argument, NULL, OPT_WITHIN_BUCKET + KL_BUCKET_DAY},
		{"keep-within-weekly", required_argument, NULL, OPT_WITHIN_BUCKET + KL_BUCKET_WEEK},
		{"keep-within-monthly", required_argument, NULL,
		 OPT_WITHIN_BUCKET + KL_BUCKET_MONTH},
		{"keep-within-yearly", required_argument, NULL, OPT_WITHIN_BUCKET + KL_BUCKET_YEAR},
		{"keep-tag", required_argument, NULL, OPT_KEEP_TAG},
		{"group-by", required_argument, NULL, 'g'},
		{"dry-run", no_argument, NULL, 'n'},
		{"prune", no_argument, NULL, OPT_PRUNE},
		{"unreadable", no_argument, NULL, OPT_UNREADABLE},
		{NULL, 0, NULL, 0},
	};
	struct forget_args a = {.group_by = KL_GROUP_HOST | KL_GROUP_PATHS};
	int c, rc = 0;

	while ((c = getopt_long(argc, argv, ":" KL_GLOBAL_SHORT "l:H:d:w:m:y:g:n", opts, NULL)) !=
	       -1) {
		rc = parse_opt(cli, c, argv, &a);
		if (rc)
			goto out;
	}
	if (optind < argc && !kl_forget_policy_is_empty(&a.p)) {
		rc = kl_cli_usage_error(cli, "give snapshots or --keep rules, not both");
		goto out;
	}
	if (optind == argc && kl_forget_policy_is_empty(&a.p)) {
		rc = kl_cli_usage_error(cli, "no snapshots and no --keep rule given: nothing to do "
					     "(forget never removes everything by default)");
		goto out;
	}
	if (a.unreadable && optind == argc) {
		rc = kl_cli_usage_error(cli,
					"--unreadable is for snapshots named by id, not rules");
		goto out;
	}
	rc = kl_cli_open(cli);
	if (rc < 0)
		goto out;
	if (optind < argc)
		rc = forget_ids(cli, argv + optind, (size_t)(argc - optind), &a);
	else
		rc = forget_policy(cli, &a.p, &a.f, a.group_by, a.dry_run, a.prune);
	if ((rc >= 0 || rc == -KL_EOBJLOCKED) && a.prune && !a.dry_run) {
		int prc = then_prune(cli);

		if (prc < 0)
			rc = prc;
	}
out:
	kl_strv_free(a.p.keep_tags, a.p.n_keep_tags);
	kl_snap_filter_release(&a.f);
	return rc;
}
