#include <stdlib.h>
#include <unistd.h>

#include "cli.h"
#include "keel/remote.h"

static const char usage[] =
	"usage: keel serve --stdio [--append-only] [--] PATH\n"
	"\n"
	"Serve the repository directory PATH to one keel client over stdin and\n"
	"stdout: what a client's -r ssh://[user@]host[:port]/PATH runs on the\n"
	"storage host through ssh. It needs no password: it only stores and\n"
	"returns sealed objects.\n"
	"\n"
	"With --append-only the client can add snapshots and data but never delete\n"
	"or replace anything except its own locks: forget, prune, key remove and\n"
	"unlock --remove-all fail with exit status 16. Enforce it with a forced\n"
	"command in ~/.ssh/authorized_keys on the storage host, e.g.\n"
	"  command=\"keel serve --stdio --append-only /srv/keel/web1\",restrict\n"
	"  ssh-ed25519 AAAA... (all on one line)\n"
	"and run forget and prune from a trusted machine with other credentials.\n"
	"\n"
	"Options:\n"
	"      --stdio          speak the protocol on stdin/stdout (required)\n"
	"      --append-only    refuse deletes (but of locks) and overwrites\n";

/* ids of the long options without a short form */
enum {
	OPT_STDIO = 1,
	OPT_APPEND_ONLY,
};

int cmd_serve(int argc, char **argv, struct kl_cli *cli)
{
	static const struct option opts[] = {
		KL_GLOBAL_OPTS,
		{"stdio", no_argument, NULL, OPT_STDIO},
		{"append-only", no_argument, NULL, OPT_APPEND_ONLY},
		{NULL, 0, NULL, 0},
	};
	bool stdio = false, append_only = false;
	struct kl_backend *be = NULL;
	int c, rc;

	while ((c = getopt_long(argc, argv, ":" KL_GLOBAL_SHORT, opts, NULL)) != -1) {
		switch (c) {
		case OPT_STDIO:
			stdio = true;
			break;
		case OPT_APPEND_ONLY:
			append_only = true;
			break;
		default:
			rc = kl_cli_default_opt(cli, c, usage, argv);
			if (rc)
				return rc;
		}
	}
	if (!stdio)
		return kl_cli_usage_error(cli, "only --stdio is supported");
	if (optind + 1 != argc)
		return kl_cli_usage_error(cli, "give the repository directory");
	rc = kl_backend_local_open(argv[optind], &be);
	if (rc < 0) {
		kl_cli_error(cli, rc, "cannot open '%s'", argv[optind]);
		return rc;
	}
	rc = kl_serve(be, STDIN_FILENO, STDOUT_FILENO, append_only);
	kl_backend_free(be);
	if (rc < 0)
		kl_cli_error(cli, rc, "connection to the client broke");
	return rc;
}
