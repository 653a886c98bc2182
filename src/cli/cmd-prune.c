#include <stdlib.h>

#include "cli.h"
#include "keel/maint.h"

static const char usage[] =
	"usage: keel prune [OPTIONS]\n"
	"\n"
	"Free the space of data that no snapshot uses (after keel forget). Safe\n"
	"while other hosts back up into the same repository: packs are first\n"
	"condemned, and deleted only once every process that could still rely on\n"
	"them has finished (a later prune deletes them if some were running).\n"
	"\n"
	"Options:\n"
	"  -n, --dry-run              only report what would be freed\n"
	"      --max-unused PCT       repack partly used packs until unused space is\n"
	"                             at most PCT% of used space (default 5%)\n"
	"\n"
	"Exit status 11 if another prune or an exclusive lock holds the repository,\n"
	"13 if a snapshot cannot be read (prune then deletes nothing).\n";

static void print_line(const char *what, uint64_t packs, uint64_t bytes)
{
	char b[32];

	kl_print_bytes(b, sizeof(b), bytes);
	printf("%-34s %8llu packs  %10s\n", what, (unsigned long long)packs, b);
}

static void print_json(const struct kl_prune_stats *s, bool dry_run)
{
	printf("{\"message_type\":\"summary\",\"dry_run\":%s,\"snapshots\":%llu,"
	       "\"blobs_used\":%llu,\"packs\":%llu,\"bytes\":%llu,"
	       "\"packs_unused\":%llu,\"bytes_unused\":%llu,"
	       "\"packs_repack\":%llu,\"bytes_repack\":%llu,"
	       "\"blobs_repacked\":%llu,\"bytes_repacked\":%llu,"
	       "\"packs_deleted\":%llu,\"bytes_deleted\":%llu,"
	       "\"packs_waiting\":%llu,\"bytes_waiting\":%llu,"
	       "\"packs_rescued\":%llu,\"packs_orphan\":%llu,\"bytes_orphan\":%llu,"
	       "\"index_files_replaced\":%llu,\"locks_waited_for\":%llu,"
	       "\"packs_retained\":%llu,\"bytes_retained\":%llu}\n",
	       dry_run ? "true" : "false", (unsigned long long)s->snapshots,
	       (unsigned long long)s->blobs_used, (unsigned long long)s->packs,
	       (unsigned long long)s->bytes, (unsigned long long)s->packs_unused,
	       (unsigned long long)s->bytes_unused, (unsigned long long)s->packs_repack,
	       (unsigned long long)s->bytes_repack, (unsigned long long)s->blobs_repacked,
	       (unsigned long long)s->bytes_repacked, (unsigned long long)s->packs_deleted,
	       (unsigned long long)s->bytes_deleted, (unsigned long long)s->packs_waiting,
	       (unsigned long long)s->bytes_waiting, (unsigned long long)s->packs_rescued,
	       (unsigned long long)s->packs_orphan, (unsigned long long)s->bytes_orphan,
	       (unsigned long long)s->index_files_replaced, (unsigned long long)s->locks_waited_for,
	       (unsigned long long)s->packs_retained, (unsigned long long)s->bytes_retained);
}

/* ids of the long options without a short form */
enum {
	OPT_MAX_UNUSED = 1,
};

int cmd_prune(int argc, char **argv, struct kl_cli *cli)
{
	static const struct option opts[] = {
		KL_GLOBAL_OPTS,
		{"dry-run", no_argument, NULL, 'n'},
		{"max-unused", required_argument, NULL, OPT_MAX_UNUSED},
		{NULL, 0, NULL, 0},
	};
	struct kl_prune_opts o = {.max_unused_permille = KL_PRUNE_MAX_UNUSED_DEFAULT};
	int c, rc;

	while ((c = getopt_long(argc, argv, ":n" KL_GLOBAL_SHORT, opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			o.dry_run = true;
			break;
		case OPT_MAX_UNUSED:
			if (kl_parse_percent(optarg, &o.max_unused_permille) < 0)
				return kl_cli_usage_error(
					cli, "invalid --max-unused '%s' (use e.g. 5%%)", optarg);
			break;
		default:
			rc = kl_cli_default_opt(cli, c, usage, argv);
			if (rc)
				return rc;
		}
	}
	if (optind < argc)
		return kl_cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	rc = kl_cli_open(cli);
	if (rc < 0)
		return rc;
	return kl_cli_prune(cli, &o);
}

int kl_cli_prune(struct kl_cli *cli, const struct kl_prune_opts *opts)
{
	struct kl_prune_opts o = *opts;
	struct kl_prune_stats st;
	int rc;

	rc = kl_prune(cli->repo, &o, &st);
	if (rc < 0) {
		kl_repo_take_err(cli->repo, &cli->err, &cli->detail);
		kl_cli_error(cli, rc, "prune failed");
		return rc;
	}
	if (cli->json) {
		print_json(&st, o.dry_run);
		return 0;
	}
	if (cli->quiet)
		return 0;
	printf("%llu snapshots use %llu blobs\n", (unsigned long long)st.snapshots,
	       (unsigned long long)st.blobs_used);
	print_line("stored", st.packs, st.bytes);
	print_line(o.dry_run ? "unused, would be removed" : "unused, removed", st.packs_unused,
		   st.bytes_unused);
	print_line(o.dry_run ? "partly used, would be repacked" : "partly used, repacked",
		   st.packs_repack, st.bytes_repack);
	if (st.packs_rescued)
		print_line("condemned earlier, used again", st.packs_rescued, 0);
	if (!o.dry_run)
		print_line("deleted now", st.packs_deleted, st.bytes_deleted);
	if (st.packs_waiting)
		print_line("waiting for running processes", st.packs_waiting, st.bytes_waiting);
	if (st.packs_retained)
		print_line("under retention, deleted later", st.packs_retained, st.bytes_retained);
	if (st.packs_orphan)
		print_line("not indexed yet, left alone", st.packs_orphan, st.bytes_orphan);
	if (!o.dry_run && st.locks_waited_for)
		printf("%llu other keel processes were running: the next prune deletes what "
		       "waits for them\n",
		       (unsigned long long)st.locks_waited_for);
	return 0;
}
