/*
 * keel: the command-line tool. main() parses the global options, finds
 * the command, opens and unlocks the repository as the command's flags
 * ask, runs it, and turns its result into the documented exit code. It is
 * the only place that exits.
 */
#include <locale.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "cli.h"

const char kl_cli_main_usage[] =
	"usage: keel [-r REPO] [--password-file FILE] [--json] COMMAND [ARGS]\n"
	"\n"
	"Encrypted, deduplicated, incremental backups.\n"
	"\n"
	"Commands:\n"
	"%s"
	"\n"
	"Global options (before or after COMMAND):\n"
	"  -r, --repo REPO           repository location (env KEEL_REPOSITORY)\n"
	"      --password-file FILE  read the password from FILE\n"
	"                            (env KEEL_PASSWORD_FILE)\n"
	"      --password-command C  run C with /bin/sh, read the password from\n"
	"                            its output (env KEEL_PASSWORD_COMMAND)\n"
	"      --json                machine-readable output on stdout\n"
	"  -q, --quiet               print only errors\n"
	"  -v, --verbose             print more\n"
	"      --no-progress         no progress line even on a terminal\n"
	"      --cache-dir DIR       metadata cache of remote repositories\n"
	"                            (env KEEL_CACHE_DIR; default ~/.cache/keel)\n"
	"      --no-cache            do not use the cache (env KEEL_NO_CACHE=1)\n"
	"\n"
	"The password may also come from the environment variable KEEL_PASSWORD\n"
	"or, on a terminal, from a prompt. An option wins over the environment;\n"
	"--password-file and --password-command together are a usage error.\n"
	"S3 credentials and settings: the environment (AWS_*, KEEL_S3_*), else\n"
	"~/.config/keel/config (env KEEL_CONFIG), else ~/.aws/credentials;\n"
	"see docs/S3.md.\n"
	"Run 'keel help COMMAND' or 'keel COMMAND --help' for a command's options.\n"
	"Exit codes: docs/EXIT-CODES.md (0 ok, 1 error, 2 usage, 3 partial backup,\n"
	"4 done but its lock was left, 10 no repository, 12 wrong password,\n"
	"13 damaged, 14 not found).\n";

void kl_cli_print_main_usage(FILE *f)
{
	char list[2048];
	size_t o = 0;

	list[0] = 0;
	for (const struct kl_cmd *c = kl_cmd_table; c->name; c++)
		o += (size_t)snprintf(list + o, sizeof(list) - o, "  %-11s %s\n", c->name,
				      c->summary);
	fprintf(f, kl_cli_main_usage, list);
}

static int unknown_option(int c, const char *word)
{
	const char *const usages[] = {kl_cli_main_usage};

	if (c == ':') {
		fprintf(stderr, "keel: option '%s' needs a value\n", word);
	} else if (optopt && optopt < 256) {
		fprintf(stderr, "keel: unknown option '-%c'\n", optopt);
	} else {
		fprintf(stderr, "keel: unknown option '%s'", word);
		kl_suggest_option(stderr, word, usages, 1);
		fputc('\n', stderr);
	}
	fprintf(stderr, "Run 'keel --help' for usage.\n");
	return kl_exit_code(-KL_EUSAGE);
}

/*
 * The one line an interrupted command ends with: what it removed and what
 * it kept (docs/EXIT-CODES.md, 130).
 */
static void say_interrupted(struct kl_cli *cli, bool had_repo, uint64_t packs)
{
	char msg[512];
	size_t o;

	o = (size_t)snprintf(msg, sizeof(msg), "interrupted");
	if (had_repo && cli->lock_left)
		o += (size_t)snprintf(msg + o, sizeof(msg) - o,
				      ": its lock is left in the repository (remove it with "
				      "'keel unlock')");
	else if (had_repo &&
		 (cli->cmd_flags & (KL_CMD_LOCK | KL_CMD_LOCK_PRUNE | KL_CMD_LOCK_EXCL)))
		o += (size_t)snprintf(msg + o, sizeof(msg) - o, ": lock removed");
	if (packs && o < sizeof(msg))
		snprintf(msg + o, sizeof(msg) - o, "; %llu pack%s already written %s kept%s",
			 (unsigned long long)packs, packs == 1 ? "" : "s",
			 packs == 1 ? "is" : "are",
			 !strcmp(cli->cmd_name, "backup") ? " and reused by the next backup" : "");
	else if (!strcmp(cli->cmd_name, "restore") && o < sizeof(msg))
		snprintf(msg + o, sizeof(msg) - o,
			 "; what was restored so far stays in the target");
	kl_cli_emit(cli, true, -KL_EINTERRUPTED, msg);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		KL_GLOBAL_OPTS, {"version", no_argument, NULL, 'V'}, {NULL, 0, NULL, 0}};
	struct kl_cli_signals sig;
	struct kl_cli cli = {0};
	const struct kl_cmd *cmd;
	uint64_t packs = 0;
	bool had_repo;
	int c, rc;

	/* before any thread starts, so that every thread has them blocked */
	if (kl_cli_signals_start(&sig) >= 0)
		cli.sig = &sig;
	/* a keel process holds keys: no core dumps, no ptrace by other users */
	prctl(PR_SET_DUMPABLE, 0);
	setrlimit(RLIMIT_CORE, &(struct rlimit){0, 0});
	kl_cli_crash_report_install();
	/* a backup holds one directory descriptor per level of the tree it walks */
	{
		struct rlimit nofile;

		if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
			nofile.rlim_cur = nofile.rlim_max;
			setrlimit(RLIMIT_NOFILE, &nofile);
		}
	}
	signal(SIGPIPE, SIG_IGN);
	setlocale(LC_CTYPE, "");
	if (kl_crypto_init() < 0) {
		fprintf(stderr, "keel: cannot initialize cryptography\n");
		return 1;
	}
	cli.repo_location = getenv("KEEL_REPOSITORY");
	cli.progress = isatty(STDERR_FILENO);

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:" KL_GLOBAL_SHORT, opts, NULL)) != -1) {
		if (c == 'h') {
			kl_cli_print_main_usage(stdout);
			return 0;
		}
		if (c == 'V')
			return kl_exit_code(cmd_version(0, NULL, &cli));
		rc = kl_cli_global_opt(&cli, c, optarg);
		if (rc == 0)
			return unknown_option(c, argv[optind - 1]);
	}
	if (optind >= argc) {
		kl_cli_print_main_usage(stderr);
		return kl_exit_code(-KL_EUSAGE);
	}
	cmd = kl_cmd_find(argv[optind]);
	if (!cmd)
		return kl_exit_code(kl_cli_unknown_command(&cli, argv[optind]));
	cli.cmd_name = cmd->name;
	cli.cmd_flags = cmd->flags;
	kl_cli_signals_describe(&cli);
	argc -= optind;
	argv += optind;
	optind = 0; /* reset getopt for the command */

	rc = cmd->fn(argc, argv, &cli);
	if (rc == KL_CLI_HELP)
		rc = 0;
	/* a command a signal made fail ends with one line, and 130 */
	if (rc < 0 && kl_cli_interrupted(&cli))
		rc = -KL_EINTERRUPTED;
	/* keel dump ... | head: written with write(2), not stdio */
	if (rc == -EPIPE && kl_cli_stdout_closed())
		rc = -KL_EOUTCLOSED;
	had_repo = cli.repo != NULL;
	if (had_repo)
		packs = kl_repo_packs_written(cli.repo);
	rc = kl_cli_close(&cli, rc);
	if (rc == -KL_EINTERRUPTED)
		say_interrupted(&cli, had_repo, packs);
	if (fflush(stdout) != 0 && rc >= 0) {
		/* the real error: a full disk under a redirected output is 21, not 20 */
		rc = errno == EPIPE ? -KL_EOUTCLOSED : errno > 0 ? -errno : -EIO;
		if (rc != -KL_EOUTCLOSED) {
			char msg[256];

			snprintf(msg, sizeof(msg), "cannot write output: %s", strerror(-rc));
			kl_cli_emit(&cli, true, rc, msg);
		}
	}
	return kl_exit_code(rc);
}
