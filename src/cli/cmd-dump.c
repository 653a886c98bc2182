#include "cli.h"

static const char usage[] =
	"usage: keel dump [OPTIONS] SNAPSHOT PATH\n"
	"\n"
	"Write the content of the file at PATH in the snapshot to standard output.\n"
	"For a snapshot of a stream (backup --stdin), PATH is its file name.\n"
	"\n"
	"Options:\n"
	"      --host HOST   with 'latest': newest snapshot of this host\n"
	"      --tag TAG     with 'latest': newest snapshot with this tag\n"
	"      --path PATH   with 'latest': newest snapshot of this path\n";

int cmd_dump(int argc, char **argv, struct kl_cli *cli)
{
	static const struct option opts[] = {
		KL_GLOBAL_OPTS, KL_SNAP_FILTER_OPTS, {NULL, 0, NULL, 0}};
	struct kl_snap_filter f = {0};
	struct kl_snapshot_ref snap = {0};
	struct kl_node node = {0};
	char *path = NULL;
	int c, rc = 0;

	while ((c = getopt_long(argc, argv, ":" KL_GLOBAL_SHORT, opts, NULL)) != -1) {
		rc = kl_cli_snap_filter_opt(&f, c, optarg);
		if (rc > 0)
			continue;
		if (rc == 0)
			rc = kl_cli_default_opt(cli, c, usage, argv);
		if (rc)
			goto out;
	}
	if (argc - optind != 2) {
		rc = kl_cli_usage_error(cli, "expected SNAPSHOT and PATH");
		goto out;
	}
	rc = kl_cli_open(cli);
	if (rc < 0)
		goto out;
	rc = kl_cli_find_snapshot(cli, argv[optind], &f, &snap, NULL);
	if (rc < 0)
		goto out;
	/* a bare name finds a stream's file at the root, as "backup --stdin" stored it */
	path = argv[optind + 1][0] == '/' ? kl_strdup(argv[optind + 1]) : NULL;
	if (!path) {
		size_t n = strlen(argv[optind + 1]);

		path = kl_malloc(n + 2);
		if (!path) {
			rc = -ENOMEM;
			goto out;
		}
		path[0] = '/';
		memcpy(path + 1, argv[optind + 1], n + 1);
	}
	rc = kl_tree_lookup(cli->repo, &snap.s.tree, path, &node);
	if (rc < 0) {
		kl_repo_take_err(cli->repo, &cli->err, &cli->detail);
		char hex[2 * KL_ID_LEN + 1];

		kl_id_hex(&snap.id, hex);
		kl_cli_error(cli, rc, "'%s' in snapshot %.8s", argv[optind + 1], hex);
		goto out;
	}
	if (node.type != KL_NODE_FILE) {
		rc = kl_cli_usage_error(cli, "'%s' is not a regular file", argv[optind + 1]);
		goto out;
	}
	rc = kl_dump_node(cli->repo, &node, STDOUT_FILENO);
	if (rc < 0) {
		kl_repo_take_err(cli->repo, &cli->err, &cli->detail);
		kl_cli_error(cli, rc, "cannot dump '%s'", argv[optind + 1]);
	}
out:
	kl_free(path);
	kl_node_release(&node);
	kl_snapshot_release(&snap.s);
	kl_snap_filter_release(&f);
	return rc;
}
