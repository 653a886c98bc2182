#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static const char usage[] =
	"usage: keel restore [OPTIONS] SNAPSHOT[:PATH] --target DIR\n"
	"\n"
	"Restore a snapshot, or the subtree PATH of it, into DIR. SNAPSHOT is an\n"
	"id prefix or 'latest' (the newest snapshot that --host, --tag and --path\n"
	"select). A directory PATH's contents go into DIR, as restic does:\n"
	"'SNAP:/usr/share/doc/bash --target r' gives r/README, not r/bash/README;\n"
	"a file PATH becomes DIR/NAME. The snapshot chosen is named first.\n"
	"\n"
	"Options:\n"
	"  -t, --target DIR       where to restore (required; '/' needs --force)\n"
	"  -i, --include PATTERN  restore only matching paths (repeatable); a\n"
	"                         pattern that matches nothing is an error (14)\n"
	"  -e, --exclude PATTERN  do not restore matching paths (repeatable)\n"
	"      --overwrite WHEN   what is in a node's place already: if-changed\n"
	"                         (default: kept when the same, same size and\n"
	"                         every piece hashing to the snapshot's blob,\n"
	"                         else replaced), always, if-newer (replaced\n"
	"                         only when the snapshot's mtime is newer), never\n"
	"      --delete           remove what the snapshot does not have from the\n"
	"                         directories restored whole (only below DIR;\n"
	"                         excluded paths are kept; symlinks are never\n"
	"                         followed)\n"
	"      --dry-run          change nothing: list what would be created,\n"
	"                         replaced and deleted (-v: also what is kept)\n"
	"      --force            restore into '/' without asking\n"
	"      --verify           read the restored files back and compare\n"
	"      --no-owner         keep the restoring user as owner (not root: the\n"
	"                         default, but then each other owner is an omission)\n"
	"      --threads N        worker threads (default: one per core)\n"
	"      --host HOST        with 'latest': newest snapshot of this host\n"
	"      --tag TAG          with 'latest': newest snapshot with this tag\n"
	"      --path PATH        with 'latest': newest snapshot of this path\n"
	"\n"
	"The summary counts the files (and links, devices) created, replaced,\n"
	"unchanged and skipped, and what --delete removed; -v lists each change.\n"
	"Exit status 2: DIR is not a directory, or '/' without --force. 14: no\n"
	"such snapshot or PATH, or --include matched nothing. 15 means --verify\n"
	"found differences; 13 that damaged data\n"
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
	OPT_OVERWRITE,
	OPT_DELETE,
	OPT_DRY_RUN,
	OPT_FORCE,
};

static const char *const action_words[] = {
	[KL_RESTORE_CREATE] = "create",	      [KL_RESTORE_REPLACE] = "replace",
	[KL_RESTORE_UNCHANGED] = "unchanged", [KL_RESTORE_SKIP] = "skip",
	[KL_RESTORE_DELETE] = "delete",
};

struct restore_out {
	struct kl_cli *cli;
	struct kl_cli_report *rep;
	const char *target;
	size_t target_len; /* without trailing slashes */
	bool dry_run;
};

static void print_escaped(const char *p)
{
	for (; *p; p++) {
		unsigned char ch = (unsigned char)*p;

		if (ch < 0x20 || ch == 0x7f)
			printf("\\x%02x", ch);
		else
			putchar(ch);
	}
}

/* One change (with -v, or a dry run): "create   DIR/a/b". */
static void on_action(void *ud, enum kl_restore_action a, const char *rel, bool dir)
{
	struct restore_out *o = ud;
	struct kl_cli *cli = o->cli;
	bool change = a == KL_RESTORE_CREATE || a == KL_RESTORE_REPLACE || a == KL_RESTORE_DELETE;

	if (cli->quiet || (!o->dry_run && !cli->verbose) || (!change && !cli->verbose))
		return;
	kl_cli_report_clear(o->rep);
	if (cli->json) {
		_cleanup_buf_ struct kl_buf item = KL_BUF_INIT((size_t)1 << 30);

		printf("{\"message_type\":\"verbose_status\",\"action\":\"%s\",\"dry_run\":%s,"
		       "\"item\":",
		       action_words[a], o->dry_run ? "true" : "false");
		/* the path in the target; without memory for it, the target */
		if (kl_buf_add(&item, o->target, o->target_len) >= 0 &&
		    kl_buf_addch(&item, '/') >= 0 && kl_buf_add(&item, rel, strlen(rel)) >= 0)
			kl_json_str(stdout, item.data, item.len);
		else
			kl_json_str(stdout, o->target, o->target_len);
		printf(",\"directory\":%s}\n", dir ? "true" : "false");
		return;
	}
	printf("%-9s ", action_words[a]);
	fwrite(o->target, 1, o->target_len, stdout);
	putchar('/');
	print_escaped(rel);
	if (dir)
		putchar('/');
	putchar('\n');
}

/* The summary: a JSON object, or lines for people. */
static void print_summary(struct kl_cli *cli, const struct kl_snapshot_ref *snap,
			  const struct kl_restore_opts *o, const struct kl_restore_stats *st,
			  int64_t start)
{
	if (cli->json) {
		printf("{\"message_type\":\"summary\",\"snapshot_id\":");
		kl_json_id(stdout, &snap->id);
		printf(",\"dry_run\":%s,\"created\":%llu,\"replaced\":%llu,\"unchanged\":%llu,"
		       "\"skipped\":%llu,\"deleted\":%llu",
		       o->dry_run ? "true" : "false", (unsigned long long)st->created,
		       (unsigned long long)st->replaced, (unsigned long long)st->unchanged,
		       (unsigned long long)st->skipped, (unsigned long long)st->deleted);
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
	} else if (!cli->quiet && o->dry_run) {
		printf("dry run, nothing changed: would create %llu, replace %llu, delete %llu; "
		       "%llu unchanged, %llu skipped\n",
		       (unsigned long long)st->created, (unsigned long long)st->replaced,
		       (unsigned long long)st->deleted, (unsigned long long)st->unchanged,
		       (unsigned long long)st->skipped);
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
		printf("\ncreated %llu, replaced %llu, unchanged %llu, skipped %llu, deleted "
		       "%llu\n",
		       (unsigned long long)st->created, (unsigned long long)st->replaced,
		       (unsigned long long)st->unchanged, (unsigned long long)st->skipped,
		       (unsigned long long)st->deleted);
		if (st->damaged)
			printf("%llu damaged files restored as NAME.keel-damaged, without their "
			       "metadata (listed on stderr)\n",
			       (unsigned long long)st->damaged);
		print_omissions(st);
	}
}

/* Why the restore failed or was incomplete: one message, with its exit code. */
static void report_failure(struct kl_cli *cli, int rc, const struct kl_snapshot_ref *snap,
			   const struct kl_restore_stats *st)
{
	char hex[2 * KL_ID_LEN + 1];

	kl_id_hex(&snap->id, hex);
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
	else if (rc == -KL_ENOTFOUND && !st->errors)
		/* the path, or what --include asked for, is not in the snapshot chosen */
		kl_cli_error(cli, 0, "cannot restore from snapshot %.8s", hex);
	else if (!st->errors)
		/* nothing restored: the reason is in the repository's message */
		kl_cli_error(cli, strstr(cli->err.msg, "not in the index") ? 0 : rc,
			     "cannot restore");
	else
		kl_cli_error(cli, rc, "restore incomplete, %llu errors",
			     (unsigned long long)st->errors);
}

static int parse_overwrite(const char *s, enum kl_overwrite *ret)
{
	static const char *const names[] = {
		[KL_OVERWRITE_IF_CHANGED] = "if-changed",
		[KL_OVERWRITE_ALWAYS] = "always",
		[KL_OVERWRITE_IF_NEWER] = "if-newer",
		[KL_OVERWRITE_NEVER] = "never",
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(s, names[i])) {
			*ret = (enum kl_overwrite)i;
			return 0;
		}
	return -KL_EUSAGE;
}

/* A person at a terminal says yes to a restore into '/'. */
static bool confirm_root(void)
{
	char line[16];

	if (!isatty(STDIN_FILENO) || !isatty(STDERR_FILENO))
		return false;
	fprintf(stderr, "keel: restore: restore into '/', replacing this system's files? "
			"[y/N] ");
	if (!fgets(line, sizeof(line), stdin))
		return false;
	return !strcmp(line, "y\n") || !strcmp(line, "yes\n");
}

/* Before anything is read: the target is a directory (or not there), '/' only when meant. */
static int check_target(struct kl_cli *cli, const char *target, bool force, bool dry_run)
{
	struct stat st;
	char *real;
	bool root;

	if (stat(target, &st) == 0 && !S_ISDIR(st.st_mode))
		return kl_cli_usage_error(cli, "restore target '%s' is not a directory", target);
	real = realpath(target, NULL);
	root = real && !strcmp(real, "/");
	free(real); /* realpath's, from malloc */
	if (!root || force || dry_run || confirm_root())
		return 0;
	return kl_cli_usage_error(cli,
				  "restoring into '/' replaces this system's files: give --force "
				  "(see what it would do with --dry-run)");
}

static int parse_opts(int argc, char **argv, struct kl_cli *cli, struct kl_restore_opts *o,
		      struct kl_snap_filter *f, bool *force)
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
		{"overwrite", required_argument, NULL, OPT_OVERWRITE},
		{"delete", no_argument, NULL, OPT_DELETE},
		{"dry-run", no_argument, NULL, OPT_DRY_RUN},
		{"force", no_argument, NULL, OPT_FORCE},
		{NULL, 0, NULL, 0},
	};
	uint64_t threads;
	int c, rc = 0;

	while ((c = getopt_long(argc, argv, ":" KL_GLOBAL_SHORT "t:i:e:", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			o->target = optarg;
			continue;
		case 'i':
			rc = kl_patterns_add(&o->includes, optarg);
			break;
		case 'e':
			rc = kl_patterns_add(&o->excludes, optarg);
			break;
		case OPT_VERIFY:
			o->verify = true;
			continue;
		case OPT_NO_OWNER:
			o->no_owner = true;
			continue;
		case OPT_DELETE:
			o->delete_extra = true;
			continue;
		case OPT_DRY_RUN:
			o->dry_run = true;
			continue;
		case OPT_FORCE:
			*force = true;
			continue;
		case OPT_OVERWRITE:
			if (parse_overwrite(optarg, &o->overwrite) < 0)
				return kl_cli_usage_error(cli,
							  "invalid --overwrite '%s' (always, "
							  "if-changed, if-newer or never)",
							  optarg);
			continue;
		case OPT_THREADS:
			if (kl_parse_uint(optarg, 1, 64, &threads) < 0)
				return kl_cli_usage_error(cli, "invalid --threads '%s'", optarg);
			o->threads = (unsigned)threads;
			continue;
		default:
			rc = kl_cli_snap_filter_opt(f, c, optarg);
			if (rc > 0)
				continue;
			if (rc == 0)
				rc = kl_cli_default_opt(cli, c, usage, argv);
		}
		if (rc)
			return rc;
	}
	if (optind >= argc)
		return kl_cli_usage_error(cli, "no snapshot given");
	if (optind + 1 < argc)
		return kl_cli_usage_error(cli, "unexpected argument '%s'", argv[optind + 1]);
	if (!o->target || !*o->target)
		return kl_cli_usage_error(cli, "--target is required");
	if (o->verify && o->dry_run)
		return kl_cli_usage_error(cli, "--verify and --dry-run do not go together");
	return 0;
}

/* "restoring snapshot 4361fab4 of host:/paths at TIME to TARGET", first. */
static void print_start(struct kl_cli *cli, const struct kl_snapshot_ref *snap, const char *path,
			const struct kl_restore_opts *o)
{
	if (cli->json) {
		printf("{\"message_type\":\"start\",\"snapshot_id\":");
		kl_json_id(stdout, &snap->id);
		printf(",\"path\":");
		kl_json_cstr(stdout, *path ? path : "/");
		printf(",\"target\":");
		kl_json_cstr(stdout, o->target);
		printf(",\"dry_run\":%s}\n", o->dry_run ? "true" : "false");
	} else if (!cli->quiet) {
		printf("%s snapshot ", o->dry_run ? "dry run: restoring" : "restoring");
		kl_cli_print_snapshot(stdout, snap);
		if (*path)
			printf(", path %s,", path);
		printf(" to %s\n", o->target);
	}
	fflush(stdout);
}

int cmd_restore(int argc, char **argv, struct kl_cli *cli)
{
	struct kl_snap_filter f = {0};
	struct kl_snapshot_ref snap = {0};
	struct kl_restore_opts o = {0};
	struct kl_restore_stats st = {0};
	struct kl_cli_report rep;
	struct restore_out out = {.cli = cli, .rep = &rep};
	const char *path = "";
	bool force = false;
	int64_t start;
	int rc;

	rc = parse_opts(argc, argv, cli, &o, &f, &force);
	if (rc == 0)
		rc = check_target(cli, o.target, force, o.dry_run);
	if (rc != 0)
		goto out; /* a usage error, or --help */
	rc = kl_cli_open(cli);
	if (rc < 0)
		goto out;
	rc = kl_cli_find_snapshot(cli, argv[optind], &f, &snap, &path);
	if (rc < 0)
		goto out;
	print_start(cli, &snap, path, &o);
	out.target = o.target;
	out.target_len = strlen(o.target);
	while (out.target_len > 1 && o.target[out.target_len - 1] == '/')
		out.target_len--;
	out.dry_run = o.dry_run;
	o.action = on_action;
	o.action_ud = &out;
	kl_cli_report_init(&rep, cli, &o.report);
	start = kl_time_mono_ns();
	rc = kl_restore(cli->repo, &snap.s.tree, path, &o, &st);
	kl_cli_report_done(&rep);
	/* after an interrupt main() says what was kept, in one line */
	if (rc != -KL_EINTERRUPTED &&
	    (rc >= 0 || rc == -KL_EPARTIAL || st.files || st.dirs || st.errors))
		print_summary(cli, &snap, &o, &st, start);
	if (rc < 0)
		report_failure(cli, rc, &snap, &st);
out:
	kl_snapshot_release(&snap.s);
	kl_snap_filter_release(&f);
	kl_patterns_release(&o.includes);
	kl_patterns_release(&o.excludes);
	return rc;
}
