#include "cmd-backup.h"
#include "keel/forget.h"

static const char usage[] =
	"usage: keel backup [OPTIONS] PATH...\n"
	"       keel backup --stdin [--stdin-filename NAME]\n"
	"       keel backup --stdin-from-command [--stdin-filename NAME] -- CMD [ARG...]\n"
	"\n"
	"Take a snapshot of files and directories, or of one stream. Files whose\n"
	"size, times and inode match the parent snapshot are not read again.\n"
	"\n"
	"Options:\n"
	"      --host HOST              host name stored in the snapshot\n"
	"      --tag TAG                add a tag (repeatable, or TAG1,TAG2)\n"
	"  -e, --exclude PATTERN        exclude matching paths (repeatable)\n"
	"      --exclude-file FILE      read exclude patterns from FILE\n"
	"      --exclude-caches         skip the contents of directories holding a\n"
	"                               CACHEDIR.TAG\n"
	"      --exclude-larger-than S  skip files larger than S (e.g. 100M)\n"
	"      --iexclude PATTERN       like --exclude, ignoring case (repeatable)\n"
	"      --exclude-if-present NAME[:HEADER]\n"
	"                               skip directories that contain an entry NAME\n"
	"                               (a file beginning with HEADER) (repeatable)\n"
	"      --files-from FILE        read paths from FILE, one a line ('#'\n"
	"                               comments; '-': stdin) (repeatable)\n"
	"      --files-from-raw FILE    read NUL-separated paths from FILE\n"
	"      --ignore-missing         leave out source paths that do not exist\n"
	"                               (a warning) instead of failing\n"
	"  -x, --one-file-system        do not cross file system boundaries\n"
	"      --parent SNAPSHOT        compare against this snapshot\n"
	"  -f, --force                  read every file again\n"
	"  -n, --dry-run                read and chunk, but save nothing\n"
	"      --stdin                  back up standard input as one file\n"
	"      --stdin-filename NAME    its name in the snapshot (default: stdin)\n"
	"      --stdin-from-command     back up the output of CMD; a non-zero exit\n"
	"                               of CMD fails the backup\n"
	"      --threads N              worker threads (default: one per core)\n"
	"      --time TIME              the snapshot's time instead of now:\n"
	"                               'YYYY-MM-DD HH:MM:SS' in local time, or\n"
	"                               RFC 3339 with an offset\n"
	"\n"
	"-v lists the parent snapshot and each new or changed file on stdout, -vv\n"
	"every file with its status (new, changed, unmodified). A local\n"
	"repository and keel's cache inside a source are skipped, with a note.\n"
	"\n"
	"Exit status 3 means the snapshot was saved but some files could not be\n"
	"read; they are listed on stderr. A source path that does not exist is\n"
	"a usage error (2), found before anything is written.\n";

/* ids of the long options without a short form */
enum {
	OPT_HOST = 1,
	OPT_TAG,
	OPT_EXCLUDE_FILE,
	OPT_EXCLUDE_CACHES,
	OPT_EXCLUDE_LARGER_THAN,
	OPT_PARENT,
	OPT_STDIN,
	OPT_STDIN_FILENAME,
	OPT_STDIN_FROM_COMMAND,
	OPT_THREADS,
	OPT_TIME,
	OPT_IEXCLUDE,
	OPT_EXCLUDE_IF_PRESENT,
	OPT_FILES_FROM,
	OPT_FILES_FROM_RAW,
	OPT_IGNORE_MISSING,
};

/* Where the data comes from: a stream, or paths (arguments and lists). */
struct stream_args {
	bool use_stdin, use_cmd, ignore_missing;
	char **paths; /* owned copies */
	size_t n_paths;
};

/* Applies option c to o. Returns 0, KL_CLI_HELP or a negative error (reported). */
static int parse_opt(struct kl_cli *cli, int c, char **argv, struct kl_backup_opts *o,
		     struct stream_args *a)
{
	uint64_t threads;
	int rc = 0;

	switch (c) {
	case OPT_HOST:
		o->host = optarg;
		break;
	case OPT_TAG: {
		char *dup = kl_strdup(optarg), *save = NULL;

		for (char *t = dup ? strtok_r(dup, ",", &save) : NULL; t && rc >= 0;
		     t = strtok_r(NULL, ",", &save))
			rc = kl_strv_push(&o->tags, &o->n_tags, t);
		kl_free(dup);
		break;
	}
	case 'e':
		rc = kl_patterns_add(&o->excludes, optarg);
		break;
	case OPT_EXCLUDE_FILE:
		rc = kl_patterns_add_file(&o->excludes, optarg);
		if (rc < 0)
			kl_cli_error(cli, rc, "cannot read exclude file '%s'", optarg);
		break;
	case OPT_IEXCLUDE:
		rc = kl_patterns_add(&o->iexcludes, optarg);
		break;
	case OPT_EXCLUDE_IF_PRESENT:
		if (!*optarg || *optarg == ':' || memchr(optarg, '/', strcspn(optarg, ":")))
			rc = kl_cli_usage_error(
				cli, "invalid --exclude-if-present '%s': give a name", optarg);
		else
			rc = kl_strv_push(&o->if_present, &o->n_if_present, optarg);
		break;
	case OPT_FILES_FROM:
	case OPT_FILES_FROM_RAW:
		rc = kl_cli_files_from(cli, optarg, c == OPT_FILES_FROM_RAW, &a->paths,
				       &a->n_paths);
		break;
	case OPT_IGNORE_MISSING:
		a->ignore_missing = true;
		break;
	case OPT_EXCLUDE_CACHES:
		o->flags |= KL_BACKUP_EXCLUDE_CACHES;
		break;
	case OPT_EXCLUDE_LARGER_THAN:
		if (kl_parse_size(optarg, &o->exclude_larger_than) < 0)
			rc = kl_cli_usage_error(cli, "invalid size '%s'", optarg);
		break;
	case 'x':
		o->flags |= KL_BACKUP_ONE_FS;
		break;
	case OPT_PARENT:
		o->parent = optarg;
		break;
	case 'f':
		o->flags |= KL_BACKUP_FORCE;
		break;
	case 'n':
		o->flags |= KL_BACKUP_DRY_RUN;
		break;
	case OPT_STDIN:
		a->use_stdin = true;
		break;
	case OPT_STDIN_FILENAME:
		o->stdin_filename = optarg;
		break;
	case OPT_STDIN_FROM_COMMAND:
		a->use_cmd = true;
		break;
	case OPT_THREADS:
		if (kl_parse_uint(optarg, 1, 64, &threads) < 0)
			rc = kl_cli_usage_error(cli, "invalid --threads '%s'", optarg);
		else
			o->threads = (unsigned)threads;
		break;
	case OPT_TIME:
		if (kl_time_parse(optarg, &o->time_ns) < 0)
			rc = kl_cli_usage_error(cli,
						"invalid --time '%s': give 'YYYY-MM-DD "
						"HH:MM:SS' (a local time that exists) or "
						"RFC 3339",
						optarg);
		else
			o->has_time = true;
		break;
	default:
		rc = kl_cli_default_opt(cli, c, usage, argv);
	}
	return rc;
}

/* The sources after the options: a command, standard input or paths. */
static int choose_sources(struct kl_cli *cli, int argc, char **argv, struct stream_args *a,
			  struct kl_backup_opts *o)
{
	if (a->use_stdin && a->use_cmd)
		return kl_cli_usage_error(cli,
					  "--stdin and --stdin-from-command exclude each other");
	if ((a->use_stdin || a->use_cmd) && a->n_paths)
		return kl_cli_usage_error(cli, "--files-from gives paths: not with a stream");
	if (a->use_cmd) {
		if (optind >= argc)
			return kl_cli_usage_error(
				cli, "--stdin-from-command needs a command after '--'");
		o->command = argv + optind;
	} else if (a->use_stdin) {
		if (optind < argc)
			return kl_cli_usage_error(cli, "--stdin takes no paths");
		o->stdin_fd = STDIN_FILENO;
	} else {
		for (int i = optind; i < argc; i++)
			if (kl_strv_push(&a->paths, &a->n_paths, argv[i]) < 0)
				return -ENOMEM;
		if (!a->n_paths)
			return kl_cli_usage_error(cli, "no paths to back up");
		/* before the repository is opened: nothing is written for a typo */
		int rc = kl_cli_check_sources(cli, a->ignore_missing, a->paths, &a->n_paths);

		if (rc < 0)
			return rc;
		o->paths = a->paths;
		o->n_paths = a->n_paths;
	}
	return 0;
}

/* Opens the repository, backs up and prints the summary. */
static int run_backup(struct kl_cli *cli, struct kl_backup_opts *o)
{
	struct kl_backup_result res;
	struct kl_cli_report rep;
	struct kl_cli_backup_out out = {.cli = cli, .rep = &rep};
	struct kl_backup_skip skip[2];
	int64_t start;
	int rc;

	rc = kl_cli_open(cli);
	if (rc < 0)
		return rc;
	kl_cli_report_init(&rep, cli, &o->report);
	kl_cli_report_json_status(&rep, &o->report);
	out.dry_run = o->flags & KL_BACKUP_DRY_RUN;
	kl_cli_backup_listen(&out, o);
	if (o->n_paths) {
		o->skip = skip;
		o->n_skip = kl_cli_backup_skips(cli, skip);
	}
	start = kl_time_mono_ns();
	rc = kl_backup(cli->repo, o, &res);
	kl_cli_report_done(&rep);
	if (rc >= 0 || rc == -KL_EPARTIAL)
		kl_cli_backup_summary(&out, &res, kl_time_mono_ns() - start);
	if (rc < 0 && rc != -KL_EPARTIAL) {
		kl_repo_take_err(cli->repo, &cli->err, &cli->detail);
		kl_cli_error(cli, rc, "backup failed, no snapshot was saved");
	}
	return rc;
}

int cmd_backup(int argc, char **argv, struct kl_cli *cli)
{
	static const struct option opts[] = {
		KL_GLOBAL_OPTS,
		{"host", required_argument, NULL, OPT_HOST},
		{"tag", required_argument, NULL, OPT_TAG},
		{"exclude", required_argument, NULL, 'e'},
		{"exclude-file", required_argument, NULL, OPT_EXCLUDE_FILE},
		{"exclude-caches", no_argument, NULL, OPT_EXCLUDE_CACHES},
		{"exclude-larger-than", required_argument, NULL, OPT_EXCLUDE_LARGER_THAN},
		{"one-file-system", no_argument, NULL, 'x'},
		{"parent", required_argument, NULL, OPT_PARENT},
		{"force", no_argument, NULL, 'f'},
		{"dry-run", no_argument, NULL, 'n'},
		{"stdin", no_argument, NULL, OPT_STDIN},
		{"stdin-filename", required_argument, NULL, OPT_STDIN_FILENAME},
		{"stdin-from-command", no_argument, NULL, OPT_STDIN_FROM_COMMAND},
		{"threads", required_argument, NULL, OPT_THREADS},
		{"time", required_argument, NULL, OPT_TIME},
		{"iexclude", required_argument, NULL, OPT_IEXCLUDE},
		{"exclude-if-present", required_argument, NULL, OPT_EXCLUDE_IF_PRESENT},
		{"files-from", required_argument, NULL, OPT_FILES_FROM},
		{"files-from-raw", required_argument, NULL, OPT_FILES_FROM_RAW},
		{"ignore-missing", no_argument, NULL, OPT_IGNORE_MISSING},
		{NULL, 0, NULL, 0},
	};
	struct kl_backup_opts o;
	struct stream_args a = {0};
	int c, rc = 0;

	kl_backup_opts_init(&o);
	o.iexcludes.fold = true;
	while ((c = getopt_long(argc, argv, ":" KL_GLOBAL_SHORT "e:xfn", opts, NULL)) != -1) {
		rc = parse_opt(cli, c, argv, &o, &a);
		if (rc)
			goto out;
	}
	rc = choose_sources(cli, argc, argv, &a, &o);
	if (rc >= 0)
		rc = run_backup(cli, &o);
out:
	kl_strv_free(o.tags, o.n_tags);
	kl_strv_free(o.if_present, o.n_if_present);
	kl_strv_free(a.paths, a.n_paths);
	kl_patterns_release(&o.excludes);
	kl_patterns_release(&o.iexcludes);
	return rc;
}
