#include "cli.h"

static const char usage[] =
	"usage: keel restore [OPTIONS] SNAPSHOT[:PATH] --target DIR\n"
	"\n"
	"Restore a snapshot, or the subtree PATH of it, into DIR. SNAPSHOT is an\n"
	"id prefix or 'latest'.\n"
	"\n"
	"Options:\n"
	"  -t, --target DIR       where to restore (required)\n"
	"  -i, --include PATTERN  restore only matching paths (repeatable)\n"
	"  -e, --exclude PATTERN  do not restore matching paths (repeatable)\n"
	"      --verify           read the restored files back and compare\n"
	"      --no-owner         keep the restoring user as owner (not root: the\n"
	"                         default, but then each other owner is an omission)\n"
	"      --threads N        worker threads (default: one per core)\n"
	"      --host HOST        with 'latest': newest snapshot of this host\n"
	"      --tag TAG          with 'latest': newest snapshot with this tag\n"
	"      --path PATH        with 'latest': newest snapshot of this path\n"
	"\n"
	"Exit status 15 means --verify found differences; 13 that damaged data\n"
	"kept some files from being restored (they are listed on stderr). A file\n"
	"restored incompletely is never left under its own name: what could be\n"
	"read is kept as NAME.keel-damaged, without the file's metadata.\n"
	"Exit status 3 means all was restored but not all as recorded: owners (not\n"
	"root), devices, extended attributes needing privilege, setuid\n"
	"and setgid bits (cleared on files not owned by their recorded owner).\n";

/* What was restored, but not as recorded: one line, or none. */
static void print_omissions(const struct kl_restore_stats *st)
{
	const char *sep = "";

	if (!st->owners_omitted && !st->specials_omitted && !st->xattrs_omitted &&
	    !st->setid_cleared)
		return;
	printf("not restored as recorded:");
	if (st->owners_omitted) {
		printf(" owners of %llu (not root)", (unsigned long long)st->owners_omitted);
		sep = ",";
	}
	if (st->specials_omitted) {
		printf("%s %llu devices", sep, (unsigned long long)st->specials_omitted);
		sep = ",";
	}
	if (st->xattrs_omitted) {
		printf("%s %llu extended attributes", sep, (unsigned long long)st->xattrs_omitted);
		sep = ",";
	}
	if (st->setid_cleared)
		printf("%s setuid/setgid bits of %llu files cleared", sep,
		       (unsigned long long)st->setid_cleared);
	putchar('\n');
}

/* ids of the long options without a short form */
enum {
	OPT_VERIFY = 1,
	OPT_NO_OWNER,
	OPT_THREADS,
};

/* The summary: a JSON object, or lines for people. */
static void print_summary(struct kl_cli *cli, const struct kl_snapshot_ref *snap,
			  const struct kl_restore_opts *o, const struct kl_restore_stats *st,
			  int64_t start)
{
	if (cli->json) {
		printf("{\"message_type\":\"summary\",\"snapshot_id\":");
		kl_json_id(stdout, &snap->id);
		printf(",\"files_restored\":%llu,\"dirs_restored\":%llu,\"other_restored\":%llu,"
		       "\"bytes_restored\":%llu,\"errors\":%llu,\"verify_failures\":%llu,"
		       "\"damaged_files\":%llu,\"owners_omitted\":%llu,\"specials_omitted\":%llu,"
		       "\"xattrs_omitted\":%llu,\"setid_cleared\":%llu,"
		       "\"verified\":%s,\"duration_seconds\":%.3f}\n",
		       (unsigned long long)st->files, (unsigned long long)st->dirs,
		       (unsigned long long)st->others, (unsigned long long)st->bytes,
		       (unsigned long long)st->errors, (unsigned long long)st->verify_failures,
		       (unsigned long long)st->damaged, (unsigned long long)st->owners_omitted,
		       (unsigned long long)st->specials_omitted,
		       (unsigned long long)st->xattrs_omitted,
		       (unsigned long long)st->setid_cleared, o->verify ? "true" : "false",
		       (double)(kl_time_mono_ns() - start) / KL_NSEC_PER_SEC);
	} else if (!cli->quiet) {
		char bytes[32];

		kl_print_bytes(bytes, sizeof(bytes), st->bytes);
		printf("restored %llu files, %llu directories, %llu others, %s in %.2f s",
		       (unsigned long long)st->files, (unsigned long long)st->dirs,
		       (unsigned long long)st->others, bytes,
		       (double)(kl_time_mono_ns() - start) / KL_NSEC_PER_SEC);
		if (o->verify)
			printf("; verified, %llu differences",
			       (unsigned long long)st->verify_failures);
		putchar('\n');
		if (st->damaged)
			printf("%llu damaged files restored as NAME.keel-damaged, without their "
			       "metadata (listed on stderr)\n",
			       (unsigned long long)st->damaged);
		print_omissions(st);
	}
}

/* Why the restore failed or was incomplete: one message, with its exit code. */
static void report_failure(struct kl_cli *cli, int rc, const struct kl_restore_stats *st)
{
	kl_repo_take_err(cli->repo, &cli->err, &cli->detail);
	if (rc == -KL_EPARTIAL)
		kl_cli_error(cli, 0, "restored with omissions (listed above)");
	else if (rc == -KL_EVERIFY)
		kl_cli_error(cli, rc, "%llu restored files differ from the snapshot",
			     (unsigned long long)st->verify_failures);
	else if (rc == -KL_ECORRUPT && st->unindexed && st->unindexed == st->errors)
		/* no tampering: the index lacks what the snapshot needs */
		kl_cli_error(cli, 0,
			     "restore incomplete, %llu errors: data the snapshot needs is "
			     "not in the index; run 'keel repair index'",
			     (unsigned long long)st->errors);
	else if (!st->errors)
		/* nothing restored: the reason is in the repository's message */
		kl_cli_error(cli, strstr(cli->err.msg, "not in the index") ? 0 : rc,
			     "cannot restore");
	else
		kl_cli_error(cli, rc, "restore incomplete, %llu errors",
			     (unsigned long long)st->errors);
}

int cmd_restore(int argc, char **argv, struct kl_cli *cli)
{
	static const struct option opts[] = {
		KL_GLOBAL_OPTS,
		KL_SNAP_FILTER_OPTS,
		{"target", required_argument, NULL, 't'},
		{"include", required_argument, NULL, 'i'},
		{"exclude", required_argument, NULL, 'e'},
		{"verify", no_argument, NULL, OPT_VERIFY},
		{"no-owner", no_argument, NULL, OPT_NO_OWNER},
		{"threads", required_argument, NULL, OPT_THREADS},
		{NULL, 0, NULL, 0},
	};
	struct kl_snap_filter f = {0};
	struct kl_snapshot_ref snap = {0};
	struct kl_restore_opts o = {0};
	struct kl_restore_stats st = {0};
	struct kl_cli_report rep;
	const char *path = "";
	uint64_t threads;
	int64_t start;
	int c, rc = 0;

	while ((c = getopt_long(argc, argv, ":" KL_GLOBAL_SHORT "t:i:e:", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			o.target = optarg;
			continue;
		case 'i':
			rc = kl_patterns_add(&o.includes, optarg);
			break;
		case 'e':
			rc = kl_patterns_add(&o.excludes, optarg);
			break;
		case OPT_VERIFY:
			o.verify = true;
			continue;
		case OPT_NO_OWNER:
			o.no_owner = true;
			continue;
		case OPT_THREADS:
			if (kl_parse_uint(optarg, 1, 64, &threads) < 0) {
				rc = kl_cli_usage_error(cli, "invalid --threads '%s'", optarg);
				goto out;
			}
			o.threads = (unsigned)threads;
			continue;
		default:
			rc = kl_cli_snap_filter_opt(&f, c, optarg);
			if (rc > 0)
				continue;
			if (rc == 0)
				rc = kl_cli_default_opt(cli, c, usage, argv);
		}
		if (rc)
			goto out;
	}
	if (optind >= argc) {
		rc = kl_cli_usage_error(cli, "no snapshot given");
		goto out;
	}
	if (optind + 1 < argc) {
		rc = kl_cli_usage_error(cli, "unexpected argument '%s'", argv[optind + 1]);
		goto out;
	}
	if (!o.target || !*o.target) {
		rc = kl_cli_usage_error(cli, "--target is required");
		goto out;
	}
	rc = kl_cli_open(cli);
	if (rc < 0)
		goto out;
	rc = kl_cli_find_snapshot(cli, argv[optind], &f, &snap, &path);
	if (rc < 0)
		goto out;
	kl_cli_report_init(&rep, cli, &o.report);
	start = kl_time_mono_ns();
	rc = kl_restore(cli->repo, &snap.s.tree, path, &o, &st);
	kl_cli_report_done(&rep);
	if (rc != -KL_EINTERRUPTED) /* then main() says what was kept, in one line */
		print_summary(cli, &snap, &o, &st, start);
	if (rc < 0)
		report_failure(cli, rc, &st);
out:
	kl_snapshot_release(&snap.s);
	kl_snap_filter_release(&f);
	kl_patterns_release(&o.includes);
	kl_patterns_release(&o.excludes);
	return rc;
}
