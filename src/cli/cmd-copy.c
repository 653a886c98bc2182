/* keel copy: snapshots from another repository, re-encrypted (docs/COPY.md). */
#include <stdlib.h>

#include "cli.h"
#include "keel/copy.h"

static const char usage[] =
	"usage: keel -r DEST copy --from-repo SOURCE [OPTIONS] [SNAPSHOT...]\n"
	"\n"
	"Copy snapshots of the repository SOURCE into DEST (-r), which has its own\n"
	"password and may have other chunker settings: those named (an id prefix or\n"
	"'latest'), or without SNAPSHOT every one the filters let through. Data is\n"
	"decrypted, cut again with DEST's chunker when the two differ, and sealed\n"
	"with DEST's key; only what DEST lacks is stored. Each copy records the\n"
	"snapshot it came from, and a snapshot DEST has a copy of is skipped.\n"
	"\n"
	"Options:\n"
	"      --from-repo SOURCE            the repository to copy from\n"
	"                                    (env KEEL_FROM_REPOSITORY)\n"
	"      --from-password-file FILE     SOURCE's password from FILE\n"
	"                                    (env KEEL_FROM_PASSWORD_FILE)\n"
	"      --from-password-command CMD   SOURCE's password from CMD's output\n"
	"                                    (env KEEL_FROM_PASSWORD_COMMAND;\n"
	"                                    or KEEL_FROM_PASSWORD)\n"
	"      --host HOST                   only snapshots of this host\n"
	"      --tag TAG                     only snapshots with this tag ('a,b': both)\n"
	"      --path PATH                   only snapshots of this source path\n"
	"  -n, --dry-run                     read and compare only; store nothing\n"
	"      --json                        one JSON summary on stdout\n"
	"\n"
	"DEST's password comes as for every command (--password-file, KEEL_PASSWORD,\n"
	"...). Create DEST with 'keel init --from-repo SOURCE --copy-chunker-params'\n"
	"to have its chunks deduplicate with SOURCE's.\n";

enum {
	OPT_FROM_REPO = 1,
	OPT_FROM_PASSWORD_FILE,
	OPT_FROM_PASSWORD_COMMAND,
};

struct copy_args {
	const char *from, *from_file, *from_cmd;
	bool dry_run;
	struct kl_snap_filter f;
};

static int parse(int argc, char **argv, struct kl_cli *cli, struct copy_args *a)
{
	static const struct option opts[] = {
		KL_GLOBAL_OPTS,
		KL_SNAP_FILTER_OPTS,
		{"from-repo", required_argument, NULL, OPT_FROM_REPO},
		{"from-password-file", required_argument, NULL, OPT_FROM_PASSWORD_FILE},
		{"from-password-command", required_argument, NULL, OPT_FROM_PASSWORD_COMMAND},
		{"dry-run", no_argument, NULL, 'n'},
		{NULL, 0, NULL, 0},
	};
	int c, rc;

	a->from = getenv("KEEL_FROM_REPOSITORY");
	while ((c = getopt_long(argc, argv, ":n" KL_GLOBAL_SHORT, opts, NULL)) != -1) {
		switch (c) {
		case OPT_FROM_REPO:
			a->from = optarg;
			break;
		case OPT_FROM_PASSWORD_FILE:
			a->from_file = optarg;
			break;
		case OPT_FROM_PASSWORD_COMMAND:
			a->from_cmd = optarg;
			break;
		case 'n':
			a->dry_run = true;
			break;
		default:
			rc = kl_cli_snap_filter_opt(&a->f, c, optarg);
			if (rc < 0)
				return rc;
			if (rc)
				break;
			rc = kl_cli_default_opt(cli, c, usage, argv);
			if (rc)
				return rc;
		}
	}
	if (!a->from || !*a->from)
		return kl_cli_usage_error(cli, "no source repository given: use --from-repo or "
					       "KEEL_FROM_REPOSITORY");
	return 0;
}

int kl_cli_open_from(struct kl_cli *cli, const char *location, const char *file, const char *cmd,
		     bool load, struct kl_repo **ret)
{
	_cleanup_(kl_repo_freep) struct kl_repo *r = NULL;
	struct kl_pass *pass = NULL;
	int rc;

	rc = kl_repo_open_err(location, &cli->detail, &r);
	if (rc < 0) {
		kl_cli_error(cli, rc, "cannot open source repository '%s'", location);
		return rc;
	}
	rc = kl_cli_read_from_password(cli, file, cmd, &pass);
	if (rc < 0) {
		kl_cli_error(cli, rc, "cannot read the source repository's password");
		return rc;
	}
	rc = kl_repo_unlock(r, pass);
	kl_pass_free(pass);
	if (rc == -KL_EBADPASS)
		kl_fail(&cli->err, rc, "no key of the source opens with the password from %s",
			cli->pass_source);
	if (rc >= 0 && load) {
		if (cli->sig)
			kl_repo_set_cancel(r, &cli->sig->cancel);
		rc = kl_repo_lock(r, KL_LOCK_SHARED, cli->cmd_name);
	}
	if (rc >= 0 && load)
		rc = kl_repo_load_index(r);
	if (rc < 0) {
		/* a wrong password's message is in cli->err already: keep it */
		kl_repo_take_err(r, cli->err.code ? NULL : &cli->err, &cli->detail);
		kl_cli_error(cli, rc, "cannot open source repository '%s'", location);
		return rc;
	}
	*ret = KL_TAKE_PTR(r);
	return 0;
}

struct copy_out {
	struct kl_cli *cli;
	struct kl_cli_report *rep;
	bool dry_run;
	size_t n_json;
};

static void on_snapshot(void *ud, const struct kl_snapshot_ref *s, const struct kl_id *dst)
{
	struct copy_out *out = ud;
	struct kl_cli *cli = out->cli;
	char a[2 * KL_ID_LEN + 1], b[2 * KL_ID_LEN + 1];

	kl_id_hex(&s->id, a);
	if (dst)
		kl_id_hex(dst, b);
	if (cli->json) {
		printf("%s{\"source\":\"%s\",\"copy\":", out->n_json++ ? "," : "", a);
		if (dst && !out->dry_run)
			printf("\"%s\"}", b);
		else
			printf("null,\"skipped\":%s}", dst ? "false" : "true");
		return;
	}
	if (cli->quiet)
		return;
	kl_cli_report_clear(out->rep);
	if (!dst)
		printf("snapshot %.8s: skipped, DEST has a copy of it\n", a);
	else if (out->dry_run)
		printf("snapshot %.8s: would be copied\n", a);
	else
		printf("snapshot %.8s: copied as %.8s\n", a, b);
	fflush(stdout);
}

static void print_summary(struct kl_cli *cli, const struct kl_copy_stats *st, bool dry_run,
			  double secs)
{
	char nb[32], sb[32], rb[32];

	if (cli->json) {
		printf("],\"snapshots_copied\":%llu,\"snapshots_skipped\":%llu,"
		       "\"dry_run\":%s,\"rechunked\":%s,\"trees\":%llu,\"trees_new\":%llu,"
		       "\"files\":%llu,\"files_known\":%llu,\"blobs_read\":%llu,"
		       "\"bytes_read\":%llu,\"blobs_new\":%llu,\"bytes_new\":%llu,"
		       "\"bytes_stored\":%llu,\"duration_s\":%.3f}\n",
		       (unsigned long long)st->snapshots_copied,
		       (unsigned long long)st->snapshots_skipped, dry_run ? "true" : "false",
		       st->rechunked ? "true" : "false", (unsigned long long)st->trees,
		       (unsigned long long)st->trees_new, (unsigned long long)st->files,
		       (unsigned long long)st->files_known, (unsigned long long)st->blobs_read,
		       (unsigned long long)st->bytes_read, (unsigned long long)st->blobs_new,
		       (unsigned long long)st->bytes_new, (unsigned long long)st->bytes_stored,
		       secs);
		return;
	}
	if (cli->quiet)
		return;
	kl_print_bytes(rb, sizeof(rb), st->bytes_read);
	kl_print_bytes(nb, sizeof(nb), st->bytes_new);
	kl_print_bytes(sb, sizeof(sb), st->bytes_stored);
	printf("%llu snapshot%s %s, %llu skipped (DEST has them)\n",
	       (unsigned long long)st->snapshots_copied, st->snapshots_copied == 1 ? "" : "s",
	       dry_run ? "would be copied" : "copied", (unsigned long long)st->snapshots_skipped);
	printf("read %s from the source (%llu blobs%s), %s new to DEST, stored %s\n", rb,
	       (unsigned long long)st->blobs_read,
	       st->rechunked ? ", cut again with DEST's chunker" : "", nb, sb);
}

int cmd_copy(int argc, char **argv, struct kl_cli *cli)
{
	_cleanup_(kl_repo_freep) struct kl_repo *src = NULL;
	struct copy_args a = {0};
	struct kl_snapshot_list l = {0};
	struct kl_copy_opts o = {0};
	struct kl_copy_stats st;
	struct kl_cli_report rep;
	struct copy_out out = {.cli = cli, .rep = &rep};
	struct kl_repo *dst;
	int64_t t0 = kl_time_now_ns();
	int rc;

	rc = parse(argc, argv, cli, &a);
	if (rc)
		goto out;
	rc = kl_cli_open(cli);
	if (rc < 0)
		goto out;
	rc = kl_cli_open_from(cli, a.from, a.from_file, a.from_cmd, true, &src);
	if (rc < 0)
		goto out;
	/* the snapshots are named in SOURCE */
	dst = cli->repo;
	cli->repo = src;
	rc = kl_cli_pick_snapshots(cli, argv + optind, (size_t)(argc - optind), &a.f, &l);
	cli->repo = dst;
	if (rc < 0)
		goto out;
	out.dry_run = o.dry_run = a.dry_run;
	o.snapshot = on_snapshot;
	o.ud = &out;
	kl_cli_report_init(&rep, cli, &o.report);
	rep.unit = "files";
	if (cli->json)
		printf("{\"snapshots\":[");
	rc = kl_copy(dst, src, l.v, l.n, &o, &st);
	kl_cli_report_done(&rep);
	if (rc < 0) {
		if (cli->json)
			printf("]}\n");
		kl_repo_take_err(src, &cli->err, &cli->detail);
		kl_repo_take_err(dst, cli->err.code ? NULL : &cli->err, &cli->detail);
		kl_cli_error(cli, rc, "cannot copy from '%s'", a.from);
		goto out;
	}
	print_summary(cli, &st, a.dry_run, (double)(kl_time_now_ns() - t0) / 1e9);
	rc = kl_cli_output_error();
out:
	kl_snapshot_list_release(&l);
	kl_snap_filter_release(&a.f);
	return rc;
}
