/* keel mount: the snapshots as a read-only file system (docs/MOUNT.md). */
#include <sys/stat.h>

#include "cli.h"
#include "keel/mount.h"

static const char usage[] =
	"usage: keel mount [OPTIONS] MOUNTPOINT\n"
	"\n"
	"Mount the repository's snapshots read-only at MOUNTPOINT (FUSE), in\n"
	"restic's layout: snapshots/TIME, ids/ID, hosts/HOST/TIME and\n"
	"tags/TAG/TIME, each list with a 'latest' link. Files are read from the\n"
	"repository when they are read; a disk image snapshot is one large file\n"
	"that 'mount -o loop,ro' can open. New snapshots show up when a list is\n"
	"read again (a few seconds later at most). keel serves until the file\n"
	"system is unmounted ('fusermount3 -u MOUNTPOINT', Ctrl-C or SIGTERM).\n"
	"\n"
	"Options:\n"
	"      --allow-other      let other users read it (their access is checked\n"
	"                         against the recorded modes and owners)\n"
	"      --cache-size SIZE  memory for recently read blobs (default 128M)\n"
	"      --host HOST        only snapshots of this host\n"
	"      --tag TAG          only snapshots with this tag\n"
	"      --path PATH        only snapshots of this path\n";

enum { OPT_ALLOW_OTHER = 1, OPT_CACHE_SIZE };

static int parse(int argc, char **argv, struct kl_cli *cli, struct kl_snap_filter *f,
		 struct kl_mount_opts *o)
{
	static const struct option opts[] = {
		KL_GLOBAL_OPTS,
		KL_SNAP_FILTER_OPTS,
		{"allow-other", no_argument, NULL, OPT_ALLOW_OTHER},
		{"cache-size", required_argument, NULL, OPT_CACHE_SIZE},
		{NULL, 0, NULL, 0},
	};
	int c, rc;

	while ((c = getopt_long(argc, argv, ":" KL_GLOBAL_SHORT, opts, NULL)) != -1) {
		if (c == OPT_ALLOW_OTHER) {
			o->allow_other = true;
			continue;
		}
		if (c == OPT_CACHE_SIZE) {
			if (kl_parse_size(optarg, &o->cache_bytes) < 0 ||
			    o->cache_bytes < ((uint64_t)16 << 20))
				return kl_cli_usage_error(
					cli, "--cache-size: '%s' is not a size of 16M or more",
					optarg);
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
	if (argc - optind != 1)
		return kl_cli_usage_error(cli, "expected one MOUNTPOINT");
	o->mountpoint = argv[optind];
	return 0;
}

struct ready_ctx {
	struct kl_cli *cli;
	const char *mnt;
};

static void ready(void *ud, size_t n)
{
	const struct ready_ctx *c = ud;

	if (c->cli->json) {
		printf("{\"message_type\":\"mounted\",\"mountpoint\":");
		kl_json_cstr(stdout, c->mnt);
		printf(",\"snapshots\":%zu}\n", n);
		fflush(stdout);
	} else if (!c->cli->quiet) {
		fprintf(stderr,
			"keel: mount: %zu snapshot%s at '%s' (read-only); unmount with "
			"'fusermount3 -u' or Ctrl-C\n",
			n, n == 1 ? "" : "s", c->mnt);
	}
}

int cmd_mount(int argc, char **argv, struct kl_cli *cli)
{
	struct kl_snap_filter f = {0};
	struct kl_mount_opts o = {.filter = &f, .stop_fd = -1};
	struct ready_ctx rc_ctx = {.cli = cli};
	struct stat st;
	int rc;

	rc = parse(argc, argv, cli, &f, &o);
	if (rc)
		goto out;
	rc_ctx.mnt = o.mountpoint;
	/* before the password is asked for: a mistyped mount point */
	if (stat(o.mountpoint, &st) < 0 || !S_ISDIR(st.st_mode)) {
		rc = stat(o.mountpoint, &st) < 0 ? -errno : -ENOTDIR;
		kl_cli_error(cli, rc, "mount point '%s'", o.mountpoint);
		goto out;
	}
	rc = kl_cli_open(cli);
	if (rc < 0)
		goto out;
	/* a first signal unmounts (the mount then ends as after fusermount3 -u) */
	o.stop_fd = kl_cli_signals_notify(cli);
	o.ready = ready;
	o.ud = &rc_ctx;
	rc = kl_mount(cli->repo, &o);
	if (rc < 0) {
		kl_repo_take_err(cli->repo, &cli->err, &cli->detail);
		kl_cli_error(cli, rc, "cannot mount at '%s'", o.mountpoint);
	}
out:
	kl_snap_filter_release(&f);
	return rc;
}
