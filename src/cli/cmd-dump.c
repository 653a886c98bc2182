#include <fcntl.h>

#include "cli.h"
#include "keel/query.h"

static const char usage[] =
	"usage: keel dump [OPTIONS] SNAPSHOT PATH\n"
	"\n"
	"Write the content of the file at PATH in the snapshot to standard output.\n"
	"For a snapshot of a stream (backup --stdin), PATH is its file name.\n"
	"A directory (PATH '/' for the whole snapshot) is written as a POSIX tar\n"
	"archive (pax): names are the snapshot's paths without the leading '/',\n"
	"with modes, owners, times, symlinks, hard links, devices and extended\n"
	"attributes; sockets are left out. Extract it with 'tar -xpf' ('--xattrs'\n"
	"for extended attributes).\n"
	"\n"
	"Options:\n"
	"      --archive tar  the archive format for a directory (tar, the only one)\n"
	"  -t, --target FILE  write to FILE (created or replaced) instead of stdout\n"
	"      --host HOST    with 'latest': newest snapshot of this host\n"
	"      --tag TAG      with 'latest': newest snapshot with this tag\n"
	"      --path PATH    with 'latest': newest snapshot of this path\n";

enum { OPT_ARCHIVE = 1 };

static int parse(int argc, char **argv, struct kl_cli *cli, struct kl_snap_filter *f,
		 const char **target)
{
	static const struct option opts[] = {
		KL_GLOBAL_OPTS,
		KL_SNAP_FILTER_OPTS,
		{"archive", required_argument, NULL, OPT_ARCHIVE},
		{"target", required_argument, NULL, 't'},
		{NULL, 0, NULL, 0},
	};
	int c, rc;

	while ((c = getopt_long(argc, argv, ":" KL_GLOBAL_SHORT "t:", opts, NULL)) != -1) {
		if (c == OPT_ARCHIVE) {
			if (strcmp(optarg, "tar"))
				return kl_cli_usage_error(
					cli, "unknown archive format '%s' (tar is the only one)",
					optarg);
			continue;
		}
		if (c == 't') {
			*target = optarg;
			continue;
		}
		rc = kl_cli_snap_filter_opt(f, c, optarg);
		if (rc > 0)
			continue;
		if (rc == 0)
			rc = kl_cli_default_opt(cli, c, usage, argv);
		if (rc)
			return rc;
	}
	if (argc - optind != 2)
		return kl_cli_usage_error(cli, "expected SNAPSHOT and PATH");
	return 0;
}

static int dump_dir(struct kl_cli *cli, const struct kl_snapshot_ref *snap, const char *path,
		    int fd, const char *arg)
{
	struct kl_tar_stats st;
	int rc;

	if (isatty(fd))
		return kl_cli_usage_error(cli,
					  "'%s' is a directory: refusing to write a tar "
					  "archive to a terminal (use --target or a pipe)",
					  arg);
	rc = kl_dump_tar(cli->repo, &snap->s.tree, path, fd, &st);
	if (rc < 0) {
		kl_repo_take_err(cli->repo, &cli->err, &cli->detail);
		kl_cli_error(cli, rc, "cannot dump '%s'", arg);
		return rc;
	}
	if (st.sockets)
		kl_cli_warn(cli, "%llu socket%s left out (tar cannot hold them)",
			    (unsigned long long)st.sockets, st.sockets == 1 ? "" : "s");
	return 0;
}

int cmd_dump(int argc, char **argv, struct kl_cli *cli)
{
	struct kl_snap_filter f = {0};
	struct kl_snapshot_ref snap = {0};
	struct kl_node node = {0};
	const char *target = NULL, *arg;
	_cleanup_close_ int tfd = -1;
	char *path = NULL;
	int rc, fd = STDOUT_FILENO;

	rc = parse(argc, argv, cli, &f, &target);
	if (rc)
		goto out;
	arg = argv[optind + 1];
	rc = kl_cli_open(cli);
	if (rc < 0)
		goto out;
	rc = kl_cli_find_snapshot(cli, argv[optind], &f, &snap, NULL);
	if (rc < 0)
		goto out;
	/* a bare name finds a stream's file at the root, as "backup --stdin" stored it */
	path = kl_malloc(strlen(arg) + 2);
	if (!path) {
		rc = -ENOMEM;
		goto out;
	}
	snprintf(path, strlen(arg) + 2, "%s%s", arg[0] == '/' ? "" : "/", arg);
	rc = kl_tree_lookup(cli->repo, &snap.s.tree, path, &node);
	if (rc < 0) {
		char hex[2 * KL_ID_LEN + 1];

		kl_repo_take_err(cli->repo, &cli->err, &cli->detail);
		kl_id_hex(&snap.id, hex);
		kl_cli_error(cli, rc, "'%s' in snapshot %.8s", arg, hex);
		goto out;
	}
	if (node.type != KL_NODE_FILE && node.type != KL_NODE_DIR) {
		rc = kl_cli_usage_error(cli, "'%s' is not a regular file or a directory", arg);
		goto out;
	}
	if (target) {
		tfd = open(target, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0666);
		if (tfd < 0) {
			rc = -errno;
			kl_cli_error(cli, rc, "cannot create '%s'", target);
			goto out;
		}
		fd = tfd;
	}
	if (node.type == KL_NODE_DIR) {
		rc = dump_dir(cli, &snap, path, fd, arg);
		goto out;
	}
	rc = kl_dump_node(cli->repo, &node, fd);
	if (rc < 0) {
		kl_repo_take_err(cli->repo, &cli->err, &cli->detail);
		kl_cli_error(cli, rc, "cannot dump '%s'", arg);
	}
out:
	if (rc >= 0 && tfd >= 0 && close(KL_TAKE_FD(tfd)) < 0) {
		rc = -errno;
		kl_cli_error(cli, rc, "cannot write '%s'", target);
	}
	kl_free(path);
	kl_node_release(&node);
	kl_snapshot_release(&snap.s);
	kl_snap_filter_release(&f);
	return rc;
}
