#include <stdlib.h>

#include "cli.h"

static const char usage[] =
	"usage: keel unlock [--remove-all]\n"
	"\n"
	"Remove stale locks: those of keel processes that died on this host, and\n"
	"those not refreshed for 30 minutes (a running keel refreshes its lock\n"
	"every 5 minutes). A process whose lock was removed stops before writing a\n"
	"snapshot.\n"
	"\n"
	"Options:\n"
	"      --remove-all     remove every lock, also live ones (only when you know\n"
	"                       that no keel process uses the repository)\n";

struct unlock_ctx {
	struct kl_cli *cli;
	bool all;
	unsigned removed, kept;
	int error;
};

static int unlock_one(const char *name, const struct kl_lock_info *info, bool alive, void *ud)
{
	struct unlock_ctx *c = ud;
	struct kl_repo *r = c->cli->repo;
	int rc;

	if (alive && !c->all) {
		c->kept++;
		return 0;
	}
	rc = kl_repo_delete(r, KL_OBJ_LOCK, name);
	if (rc < 0 && rc != -ENOENT) {
		c->error = rc;
		return 0;
	}
	c->removed++;
	if (c->cli->json) {
		printf("{\"message_type\":\"removed\",\"lock\":\"%s\",\"host\":", name);
		kl_json_cstr(stdout, info->host);
		printf(",\"pid\":%u,\"command\":", info->pid);
		kl_json_cstr(stdout, info->command);
		printf(",\"stale\":%s}\n", alive ? "false" : "true");
	} else if (!c->cli->quiet) {
		printf("removed %s lock of %s (pid %u on %s)\n", alive ? "live" : "stale",
		       info->command ? info->command : "?", info->pid,
		       info->host ? info->host : "?");
	}
	return 0;
}

/* ids of the long options without a short form */
enum {
	OPT_REMOVE_ALL = 1,
};

int cmd_unlock(int argc, char **argv, struct kl_cli *cli)
{
	static const struct option opts[] = {
		KL_GLOBAL_OPTS,
		{"remove-all", no_argument, NULL, OPT_REMOVE_ALL},
		{NULL, 0, NULL, 0},
	};
	struct unlock_ctx c = {.cli = cli};
	int ch, rc;

	while ((ch = getopt_long(argc, argv, ":" KL_GLOBAL_SHORT, opts, NULL)) != -1) {
		switch (ch) {
		case OPT_REMOVE_ALL:
			c.all = true;
			break;
		default:
			rc = kl_cli_default_opt(cli, ch, usage, argv);
			if (rc)
				return rc;
		}
	}
	if (optind < argc)
		return kl_cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	rc = kl_cli_open(cli);
	if (rc < 0)
		return rc;
	rc = kl_repo_list_locks(cli->repo, unlock_one, &c);
	if (rc >= 0)
		rc = c.error;
	if (rc < 0) {
		kl_repo_take_err(cli->repo, &cli->err, &cli->detail);
		kl_cli_error(cli, rc, "cannot remove locks");
		return rc;
	}
	if (cli->json)
		printf("{\"message_type\":\"summary\",\"removed\":%u,\"kept\":%u}\n", c.removed,
		       c.kept);
	else if (!cli->quiet && c.kept)
		printf("%u live locks kept (use --remove-all to remove them too)\n", c.kept);
	return 0;
}
