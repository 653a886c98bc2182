#include "cli.h"

static const char usage[] = "usage: keel diff [OPTIONS] SNAPSHOT1 SNAPSHOT2\n"
			    "\n"
			    "Show what changed from SNAPSHOT1 to SNAPSHOT2, one path per line:\n"
			    "  +  added      -  removed      M  content modified\n"
			    "  U  metadata (mode, owner, times, attributes) changed\n"
			    "  T  type changed\n"
			    "\n"
			    "Options:\n"
			    "      --host HOST   with 'latest': newest snapshot of this host\n"
			    "      --tag TAG     with 'latest': newest snapshot with this tag\n"
			    "      --path PATH   with 'latest': newest snapshot of this path\n";

struct diff_ctx {
	struct kl_cli *cli;
	uint64_t counts[5];
};

static int on_change(enum kl_diff_kind k, const char *path, const struct kl_node *a,
		     const struct kl_node *b, void *ud)
{
	struct diff_ctx *c = ud;
	int idx = k == KL_DIFF_ADDED	  ? 0
		  : k == KL_DIFF_REMOVED  ? 1
		  : k == KL_DIFF_MODIFIED ? 2
		  : k == KL_DIFF_META	  ? 3
					  : 4;

	c->counts[idx]++;
	if (c->cli->json) {
		printf("{\"message_type\":\"change\",\"path\":");
		kl_json_cstr(stdout, path);
		printf(",\"modifier\":\"%c\"}\n", (char)k);
	} else {
		printf("%c    %s\n", (char)k, path);
	}
	return 0;
}

int cmd_diff(int argc, char **argv, struct kl_cli *cli)
{
	static const struct option opts[] = {
		KL_GLOBAL_OPTS, KL_SNAP_FILTER_OPTS, {NULL, 0, NULL, 0}};
	struct kl_snap_filter f = {0};
	struct kl_snapshot_ref a = {0}, b = {0};
	struct diff_ctx ctx = {.cli = cli};
	int c, rc = 0;

	while ((c = getopt_long(argc, argv, ":" KL_GLOBAL_SHORT, opts, NULL)) != -1) {
		rc = kl_cli_snap_filter_opt(&f, c, optarg);
		if (rc > 0)
			continue;
		if (rc == 0)
			rc = kl_cli_default_opt(cli, c, usage, argv);
		if (rc) {
			kl_snap_filter_release(&f);
			return rc;
		}
	}
	if (argc - optind != 2) {
		kl_snap_filter_release(&f);
		return kl_cli_usage_error(cli, "expected two snapshots");
	}
	rc = kl_cli_open(cli);
	/* a filter selects 'latest' only: an id names its snapshot */
	if (rc >= 0)
		rc = kl_cli_find_snapshot(cli, argv[optind], &f, &a, NULL);
	if (rc >= 0)
		rc = kl_cli_find_snapshot(cli, argv[optind + 1], &f, &b, NULL);
	if (rc >= 0) {
		rc = kl_diff(cli->repo, &a.s.tree, &b.s.tree, on_change, &ctx);
		if (rc < 0) {
			kl_repo_take_err(cli->repo, &cli->err, &cli->detail);
			kl_cli_error(cli, rc, "cannot compare the snapshots");
		}
	}
	if (rc >= 0) {
		if (cli->json)
			printf("{\"message_type\":\"statistics\",\"added\":%llu,\"removed\":%llu,"
			       "\"modified\":%llu,\"metadata\":%llu,\"type_changed\":%llu}\n",
			       (unsigned long long)ctx.counts[0], (unsigned long long)ctx.counts[1],
			       (unsigned long long)ctx.counts[2], (unsigned long long)ctx.counts[3],
			       (unsigned long long)ctx.counts[4]);
		else if (!cli->quiet)
			printf("\n%llu added, %llu removed, %llu modified, %llu metadata changed, "
			       "%llu type changed\n",
			       (unsigned long long)ctx.counts[0], (unsigned long long)ctx.counts[1],
			       (unsigned long long)ctx.counts[2], (unsigned long long)ctx.counts[3],
			       (unsigned long long)ctx.counts[4]);
	}
	kl_snapshot_release(&a.s);
	kl_snapshot_release(&b.s);
	kl_snap_filter_release(&f);
	return rc;
}
