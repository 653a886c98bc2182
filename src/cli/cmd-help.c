/* keel help [COMMAND]: the main help, or COMMAND's (as 'keel COMMAND --help'). */
#include "cli.h"

static const char usage[] = "usage: keel help [COMMAND]\n"
			    "\n"
			    "Print keel's help, or COMMAND's: 'keel help backup' prints what\n"
			    "'keel backup --help' prints.\n";

int cmd_help(int argc, char **argv, struct kl_cli *cli)
{
	static const struct option opts[] = {KL_GLOBAL_OPTS, {NULL, 0, NULL, 0}};
	const struct kl_cmd *cmd;
	char help[] = "--help";
	char *sub_argv[3];
	int c, rc;

	while ((c = getopt_long(argc, argv, ":" KL_GLOBAL_SHORT, opts, NULL)) != -1) {
		rc = kl_cli_default_opt(cli, c, usage, argv);
		if (rc)
			return rc;
	}
	if (optind >= argc) {
		kl_cli_print_main_usage(stdout);
		return 0;
	}
	if (argc - optind > 1)
		return kl_cli_usage_error(cli, "expected one command, not '%s'", argv[optind + 1]);
	cmd = kl_cmd_find(argv[optind]);
	if (!cmd)
		return kl_cli_unknown_command(cli, argv[optind]);
	cli->cmd_name = cmd->name;
	cli->cmd_flags = cmd->flags;
	sub_argv[0] = argv[optind];
	sub_argv[1] = help;
	sub_argv[2] = NULL;
	optind = 0;
	return cmd->fn(2, sub_argv, cli);
}
