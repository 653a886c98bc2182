/* keel mirror: a keyless, verified copy of a repository (docs/MIRROR.md). */
#include <stdlib.h>

#include "cli.h"
#include "keel/mirror.h"

static const char usage[] =
	"usage: keel mirror [options] SOURCE DEST\n"
	"       keel mirror --status [--snapshots] [--json] SOURCE DEST\n"
	"\n"
	"Copy the repository SOURCE to DEST object by object (local paths, ssh://,\n"
	"s3:), without a password: only the encrypted objects move. Each object is\n"
	"checked against its SHA-256 name before it is written; packs and index\n"
	"files arrive before the snapshots that need them, so DEST is a valid\n"
	"repository at every moment, and a rerun sends only what is missing.\n"
	"Objects SOURCE deleted stay in DEST for the quarantine (--delete-after).\n"
	"Restore from DEST with 'keel -r DEST restore' and the password.\n"
	"\n"
	"Options:\n"
	"      --connections N       objects in flight at once (default 4)\n"
	"      --limit-upload RATE   bytes a second written to DEST (10M: 10 MiB/s)\n"
	"      --dry-run             compare only; write and delete nothing\n"
	"      --verify              read every object of DEST back and check it\n"
	"      --delete-after D      delete what SOURCE deleted once missing for D\n"
	"                            (7d default; 12h, 30m, 0s; never: keep)\n"
	"      --object-lock-mode governance|compliance|none\n"
	"                            S3 Object Lock on every object written to DEST\n"
	"                            from now on (kept for later runs; none stops it)\n"
	"      --object-lock-days N  its retention in days (1-36500)\n"
	"      --status              show what DEST lacks, its last run and its lag\n"
	"      --snapshots           with --status: per host and paths, the newest\n"
	"                            snapshot in SOURCE and in DEST (needs the password)\n"
	"      --json                one JSON summary on stdout\n"
	"\n"
	"Exit status: 13 when objects of SOURCE are damaged (not copied; the rest\n"
	"is), 10 when SOURCE is no repository (docs/EXIT-CODES.md).\n";

enum {
	OPT_CONNECTIONS = 1,
	OPT_LIMIT_UPLOAD,
	OPT_DRY_RUN,
	OPT_VERIFY,
	OPT_DELETE_AFTER,
	OPT_STATUS,
	OPT_SNAPSHOTS,
	OPT_OBJECT_LOCK_MODE,
	OPT_OBJECT_LOCK_DAYS,
};

/* "never", or digits and one unit of s, m, h, d */
static int parse_delete_after(const char *s, int64_t *ret)
{
	static const struct {
		char unit;
		int64_t sec;
	} units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
	_cleanup_free_ char *digits = NULL;
	size_t n = strlen(s);
	uint64_t v;

	if (!strcmp(s, "never")) {
		*ret = KL_MIRROR_NEVER;
		return 0;
	}
	if (n < 2)
		return -KL_EUSAGE;
	digits = kl_malloc(n);
	if (!digits)
		return -ENOMEM;
	memcpy(digits, s, n - 1);
	digits[n - 1] = 0;
	for (size_t i = 0; i < KL_ARRAY_SIZE(units); i++) {
		if (s[n - 1] != units[i].unit)
			continue;
		if (kl_parse_uint(digits, 0, (uint64_t)100 * 365 * 86400 / units[i].sec, &v) < 0)
			return -KL_EUSAGE;
		*ret = (int64_t)v * units[i].sec * KL_NSEC_PER_SEC;
		return 0;
	}
	return -KL_EUSAGE;
}

static void json_count(const char *name, const struct kl_mirror_count *c)
{
	printf(",\"%s\":%llu,\"%s_bytes\":%llu", name, (unsigned long long)c->objects, name,
	       (unsigned long long)c->bytes);
}

static const char *lock_name(uint32_t mode)
{
	return mode == KL_LOCK_COMPLIANCE   ? "compliance"
	       : mode == KL_LOCK_GOVERNANCE ? "governance"
					    : "none";
}

static void print_summary(struct kl_cli *cli, const struct kl_mirror_stats *st, bool dry_run)
{
	char b[32];

	if (cli->json) {
		printf("{\"message_type\":\"summary\",\"dry_run\":%s", dry_run ? "true" : "false");
		json_count("copied", &st->copied);
		json_count("skipped", &st->skipped);
		json_count("repaired", &st->repaired);
		json_count("deleted", &st->deleted);
		json_count("quarantined", &st->quarantined);
		json_count("retained", &st->retained);
		printf(",\"object_lock_mode\":\"%s\",\"object_lock_days\":%u",
		       lock_name(st->lock_mode), st->lock_days);
		printf(",\"source_damaged\":%llu,\"vanished\":%llu,\"tmp_removed\":%llu,"
		       "\"passes\":%u,\"complete\":%s,\"duration_ns\":%lld}\n",
		       (unsigned long long)st->source_damaged, (unsigned long long)st->vanished,
		       (unsigned long long)st->tmp_removed, st->passes,
		       st->complete ? "true" : "false", (long long)st->duration_ns);
		return;
	}
	if (cli->quiet)
		return;
	kl_print_bytes(b, sizeof(b), st->copied.bytes);
	printf("%s %llu objects (%s)", dry_run ? "would copy" : "copied",
	       (unsigned long long)st->copied.objects, b);
	printf(", %llu already there", (unsigned long long)st->skipped.objects);
	if (st->repaired.objects)
		printf(", %llu damaged in DEST %s", (unsigned long long)st->repaired.objects,
		       dry_run ? "to replace" : "replaced");
	printf(", %llu deleted, %llu in quarantine", (unsigned long long)st->deleted.objects,
	       (unsigned long long)st->quarantined.objects);
	if (st->retained.objects)
		printf(" (%llu of them under Object Lock until their date)",
		       (unsigned long long)st->retained.objects);
	printf(", %.1f s\n", (double)st->duration_ns / KL_NSEC_PER_SEC);
	if (st->lock_mode != KL_LOCK_NONE)
		printf("new objects in DEST are under %s Object Lock for %u days\n",
		       lock_name(st->lock_mode), st->lock_days);
}

static void json_snap(const struct kl_snapshot_ref *r)
{
	if (!r) {
		printf("null");
		return;
	}
	printf("{\"id\":");
	kl_json_id(stdout, &r->id);
	printf(",\"time\":");
	kl_json_time(stdout, r->s.time_ns);
	printf("}");
}

static void text_snap(const struct kl_snapshot_ref *r)
{
	char hex[2 * KL_ID_LEN + 1], t[40];

	if (!r) {
		printf("  %-28s", "none");
		return;
	}
	kl_id_hex(&r->id, hex);
	kl_time_format_local(r->s.time_ns, t);
	printf("  %.8s %-19.19s", hex, t);
}

/* per host and paths: one line each, or a "groups" array of the JSON document */
static void print_groups(struct kl_cli *cli, const struct kl_mirror_group *g, size_t n)
{
	if (!cli->json)
		printf("host paths: newest in SOURCE, newest in DEST, lag\n");
	for (size_t i = 0; i < n; i++) {
		const struct kl_snapshot *s = &g[i].newest->s;

		if (cli->json) {
			printf("%s{\"host\":", i ? "," : "");
			kl_json_cstr(stdout, s->host);
			printf(",\"paths\":[");
			for (size_t k = 0; k < s->n_paths; k++) {
				printf("%s", k ? "," : "");
				kl_json_cstr(stdout, s->paths[k]);
			}
			printf("],\"newest_source\":");
			json_snap(g[i].newest);
			printf(",\"newest_dest\":");
			json_snap(g[i].newest_dst);
			printf(",\"lag_seconds\":");
			g[i].lag_ns < 0
				? (void)printf("null")
				: (void)printf("%lld", (long long)(g[i].lag_ns / KL_NSEC_PER_SEC));
			printf("}");
			continue;
		}
		printf("%s", s->host ? s->host : "?");
		for (size_t k = 0; k < s->n_paths; k++)
			printf(" %s", s->paths[k]);
		printf(":");
		text_snap(g[i].newest);
		text_snap(g[i].newest_dst);
		if (g[i].lag_ns < 0)
			printf("  -\n");
		else
			printf("  %lld s\n", (long long)(g[i].lag_ns / KL_NSEC_PER_SEC));
	}
}

static void print_status(struct kl_cli *cli, const struct kl_mirror_status *s,
			 const struct kl_mirror_group *g, size_t n_groups, bool groups)
{
	static const enum kl_obj_type types[] = {KL_OBJ_KEY, KL_OBJ_SNAPSHOT, KL_OBJ_INDEX,
						 KL_OBJ_DATA};
	char t[40];

	if (cli->json) {
		printf("{\"message_type\":\"status\",\"pending\":{");
		for (size_t i = 0; i < KL_ARRAY_SIZE(types); i++) {
			const struct kl_mirror_count *c =
				&s->pending[KL_MIRROR_PENDING_INDEX(types[i])];

			printf("%s\"%s\":{\"objects\":%llu,\"bytes\":%llu}", i ? "," : "",
			       kl_repo_type_name(types[i]), (unsigned long long)c->objects,
			       (unsigned long long)c->bytes);
		}
		printf("},\"quarantined\":%llu,\"last_run\":",
		       (unsigned long long)s->quarantined.objects);
		s->last_run_ns ? kl_json_time(stdout, s->last_run_ns) : (void)printf("null");
		printf(",\"last_complete_run\":");
		s->last_complete_ns ? kl_json_time(stdout, s->last_complete_ns)
				    : (void)printf("null");
		printf(",\"lag_seconds\":");
		s->lag_ns < 0 ? (void)printf("null")
			      : (void)printf("%lld", (long long)(s->lag_ns / KL_NSEC_PER_SEC));
		printf(",\"lag_exact\":%s", s->lag_exact ? "true" : "false");
		if (groups) {
			printf(",\"groups\":[");
			print_groups(cli, g, n_groups);
			printf("]");
		}
		printf("}\n");
		return;
	}
	for (size_t i = 0; i < KL_ARRAY_SIZE(types); i++) {
		const struct kl_mirror_count *c = &s->pending[KL_MIRROR_PENDING_INDEX(types[i])];

		kl_print_bytes(t, sizeof(t), c->bytes);
		printf("%-10s %llu missing in DEST (%s)\n", kl_repo_type_name(types[i]),
		       (unsigned long long)c->objects, t);
	}
	printf("quarantine %llu objects SOURCE no longer has\n",
	       (unsigned long long)s->quarantined.objects);
	if (s->last_complete_ns)
		kl_time_format_local(s->last_complete_ns, t);
	printf("last complete run: %s\n", s->last_complete_ns ? t : "never");
	if (s->lag_ns < 0)
		printf("lag: unknown\n");
	else
		printf("lag: %s%lld s\n", s->lag_exact ? "" : "at most ",
		       (long long)(s->lag_ns / KL_NSEC_PER_SEC));
	if (groups)
		print_groups(cli, g, n_groups);
}

/* --status: keyless, and with --snapshots the groups, which need the key */
static int status(struct kl_cli *cli, struct kl_repo *src, struct kl_repo *dst, bool snapshots)
{
	struct kl_snapshot_list snaps = {0};
	_cleanup_free_ struct kl_mirror_group *g = NULL;
	struct kl_mirror_status st;
	struct kl_pass *pass = NULL;
	bool check = false;
	size_t n = 0;
	int rc;

	rc = kl_mirror_status(src, dst, &st);
	if (rc < 0 || !snapshots)
		goto out;
	rc = kl_cli_read_password(cli, false, &pass);
	if (rc < 0)
		return rc;
	rc = kl_repo_unlock(src, pass);
	/*
	 * DEST holds SOURCE's keys: with its index, the newest snapshot of DEST
	 * counts only when its data is all there (kl_presence_check); a DEST
	 * that cannot be read so is judged by its listing alone, as before
	 */
	if (rc >= 0)
		check = kl_repo_unlock(dst, pass) >= 0 && kl_repo_load_index(dst) >= 0;
	if (rc >= 0 && !check) {
		kl_repo_clear_err(dst);
		kl_cli_warn(cli, "cannot read DEST's index: its snapshots are not checked for "
				 "missing data");
	}
	kl_pass_free(pass);
	if (rc >= 0)
		rc = kl_repo_list_snapshots(src, &snaps);
	if (rc >= 0)
		rc = kl_mirror_status_groups(dst, &snaps, check, &g, &n);
out:
	if (rc >= 0)
		print_status(cli, &st, g, n, snapshots);
	kl_snapshot_list_release(&snaps);
	return rc;
}

struct mirror_args {
	struct kl_mirror_opts o;
	bool status, snapshots;
};

static int parse_args(int argc, char **argv, struct kl_cli *cli, struct mirror_args *a)
{
	static const struct option opts[] = {
		KL_GLOBAL_OPTS,
		{"connections", required_argument, NULL, OPT_CONNECTIONS},
		{"limit-upload", required_argument, NULL, OPT_LIMIT_UPLOAD},
		{"dry-run", no_argument, NULL, OPT_DRY_RUN},
		{"verify", no_argument, NULL, OPT_VERIFY},
		{"delete-after", required_argument, NULL, OPT_DELETE_AFTER},
		{"status", no_argument, NULL, OPT_STATUS},
		{"snapshots", no_argument, NULL, OPT_SNAPSHOTS},
		{"object-lock-mode", required_argument, NULL, OPT_OBJECT_LOCK_MODE},
		{"object-lock-days", required_argument, NULL, OPT_OBJECT_LOCK_DAYS},
		{NULL, 0, NULL, 0},
	};
	uint64_t v;
	int ch, rc;

	while ((ch = getopt_long(argc, argv, ":" KL_GLOBAL_SHORT, opts, NULL)) != -1) {
		switch (ch) {
		case OPT_CONNECTIONS:
			if (kl_parse_uint(optarg, 1, KL_MIRROR_CONNECTIONS_MAX, &v) < 0)
				return kl_cli_usage_error(cli, "--connections wants 1 to %d",
							  KL_MIRROR_CONNECTIONS_MAX);
			a->o.connections = (unsigned)v;
			break;
		case OPT_LIMIT_UPLOAD:
			if (kl_parse_size(optarg, &a->o.limit_upload) < 0 || !a->o.limit_upload)
				return kl_cli_usage_error(cli, "invalid --limit-upload '%s'",
							  optarg);
			break;
		case OPT_DRY_RUN:
			a->o.dry_run = true;
			break;
		case OPT_VERIFY:
			a->o.verify = true;
			break;
		case OPT_DELETE_AFTER:
			if (parse_delete_after(optarg, &a->o.delete_after_ns) < 0)
				return kl_cli_usage_error(cli, "invalid --delete-after '%s'",
							  optarg);
			break;
		case OPT_STATUS:
			a->status = true;
			break;
		case OPT_SNAPSHOTS:
			a->snapshots = true;
			break;
		case OPT_OBJECT_LOCK_MODE:
			a->o.lock_given = true;
			if (!strcmp(optarg, "governance"))
				a->o.lock_mode = KL_LOCK_GOVERNANCE;
			else if (!strcmp(optarg, "compliance"))
				a->o.lock_mode = KL_LOCK_COMPLIANCE;
			else if (!strcmp(optarg, "none"))
				a->o.lock_mode = KL_LOCK_NONE;
			else
				return kl_cli_usage_error(cli, "invalid --object-lock-mode '%s'",
							  optarg);
			break;
		case OPT_OBJECT_LOCK_DAYS:
			if (kl_parse_uint(optarg, 1, KL_LOCK_DAYS_MAX, &v) < 0)
				return kl_cli_usage_error(cli, "--object-lock-days wants 1 to %d",
							  KL_LOCK_DAYS_MAX);
			a->o.lock_days = (uint32_t)v;
			break;
		default:
			rc = kl_cli_default_opt(cli, ch, usage, argv);
			if (rc)
				return rc;
		}
	}
	if (argc - optind != 2)
		return kl_cli_usage_error(cli, "give SOURCE and DEST");
	if (a->snapshots && !a->status)
		return kl_cli_usage_error(cli, "--snapshots goes with --status");
	if ((a->o.lock_mode != KL_LOCK_NONE && !a->o.lock_days) ||
	    (a->o.lock_mode == KL_LOCK_NONE && a->o.lock_days))
		return kl_cli_usage_error(cli, "'--object-lock-mode' and '--object-lock-days' go "
					       "together ('--object-lock-mode none' alone)");
	return 0;
}

int cmd_mirror(int argc, char **argv, struct kl_cli *cli)
{
	_cleanup_(kl_repo_freep) struct kl_repo *src = NULL, *dst = NULL;
	struct mirror_args a = {0};
	struct kl_cli_report rep;
	struct kl_mirror_stats st;
	const char *source, *dest;
	int rc;

	kl_mirror_opts_init(&a.o);
	rc = parse_args(argc, argv, cli, &a);
	if (rc)
		return rc;
	source = argv[optind];
	dest = argv[optind + 1];
	/* the storage's own bytes, never the metadata cache's copies */
	setenv("KEEL_NO_CACHE", "1", 1);
	rc = kl_repo_open_err(source, &cli->detail, &src);
	if (rc < 0) {
		kl_cli_error(cli, rc, "cannot open repository '%s'", source);
		return rc;
	}
	rc = a.status ? kl_repo_open_err(dest, &cli->detail, &dst)
		      : kl_repo_open_dest(dest, a.o.lock_mode != KL_LOCK_NONE, &cli->detail, &dst);
	if (rc == -EOPNOTSUPP)
		return kl_cli_usage_error(cli, "Object Lock needs a copy on S3; '%s' is not", dest);
	if (rc < 0) {
		kl_cli_error(cli, rc, "cannot open the copy '%s'", dest);
		return rc;
	}
	if (a.status) {
		rc = status(cli, src, dst, a.snapshots);
	} else {
		kl_cli_report_init(&rep, cli, &a.o.report);
		rep.unit = "objects";
		rc = kl_mirror(src, dst, &a.o, &st);
		kl_cli_report_done(&rep);
		if (rc >= 0 || rc == -KL_ECORRUPT)
			print_summary(cli, &st, a.o.dry_run);
	}
	if (rc < 0) {
		kl_repo_take_err(src, &cli->err, &cli->detail);
		if (!cli->err.code)
			kl_repo_take_err(dst, &cli->err, &cli->detail);
		kl_cli_error(cli, rc, "cannot mirror '%s' to '%s'", source, dest);
	}
	return rc;
}
