#include "cli.h"
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
	"  -x, --one-file-system        do not cross file system boundaries\n"
	"      --parent SNAPSHOT        compare against this snapshot\n"
	"  -f, --force                  read every file again\n"
	"  -n, --dry-run                read and chunk, but write nothing\n"
	"      --stdin                  back up standard input as one file\n"
	"      --stdin-filename NAME    its name in the snapshot (default: stdin)\n"
	"      --stdin-from-command     back up the output of CMD; a non-zero exit\n"
	"                               of CMD fails the backup\n"
	"      --threads N              worker threads (default: one per core)\n"
	"      --time TIME              the snapshot's time instead of now:\n"
	"                               'YYYY-MM-DD HH:MM:SS' in local time, or\n"
	"                               RFC 3339 with an offset\n"
	"\n"
	"Exit status 3 means the snapshot was saved but some files could not be\n"
	"read; they are listed on stderr.\n";

static void print_result(struct kl_cli *cli, const struct kl_backup_result *res, int64_t ns)
{
	const struct kl_snapshot_stats *s = &res->stats;
	char hex[2 * KL_ID_LEN + 1], added[32], total[32], stored[32];
	double secs = (double)ns / KL_NSEC_PER_SEC;

	kl_id_hex(&res->id, hex);
	if (cli->json) {
		printf("{\"message_type\":\"summary\",\"snapshot_id\":\"%s\",\"partial\":%s,"
		       "\"files_new\":%llu,\"files_changed\":%llu,\"files_unmodified\":%llu,"
		       "\"dirs\":%llu,\"bytes_total\":%llu,\"bytes_read\":%llu,\"blobs_new\":%llu,"
		       "\"data_added\":%llu,\"data_stored\":%llu,\"errors\":%llu,"
		       "\"duration_seconds\":%.3f",
		       hex, res->partial ? "true" : "false", (unsigned long long)s->files_new,
		       (unsigned long long)s->files_changed,
		       (unsigned long long)s->files_unmodified, (unsigned long long)s->dirs,
		       (unsigned long long)s->bytes_total, (unsigned long long)s->bytes_read,
		       (unsigned long long)s->blobs_new, (unsigned long long)s->bytes_added,
		       (unsigned long long)s->bytes_stored, (unsigned long long)s->errors, secs);
		if (res->has_parent) {
			printf(",\"parent\":");
			kl_json_id(stdout, &res->parent);
		}
		printf("}\n");
		return;
	}
	if (cli->quiet)
		return;
	kl_print_bytes(added, sizeof(added), s->bytes_added);
	kl_print_bytes(total, sizeof(total), s->bytes_total);
	kl_print_bytes(stored, sizeof(stored), s->bytes_stored);
	printf("Files: %llu new, %llu changed, %llu unmodified\n", (unsigned long long)s->files_new,
	       (unsigned long long)s->files_changed, (unsigned long long)s->files_unmodified);
	printf("Dirs:  %llu\n", (unsigned long long)s->dirs);
	printf("Added to the repository: %s (%s stored)\n", added, stored);
	printf("processed %llu files, %s in %.2f s\n",
	       (unsigned long long)(s->files_new + s->files_changed + s->files_unmodified), total,
	       secs);
	if (res->partial)
		printf("snapshot %.8s saved, but %llu files or directories could not be read\n",
		       hex, (unsigned long long)s->errors);
	else
		printf("snapshot %.8s saved\n", hex);
}

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
};

/* Where the data comes from, when not from paths. */
struct stream_args {
	bool use_stdin, use_cmd;
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
static int choose_sources(struct kl_cli *cli, int argc, char **argv, const struct stream_args *a,
			  struct kl_backup_opts *o)
{
	if (a->use_stdin && a->use_cmd)
		return kl_cli_usage_error(cli,
					  "--stdin and --stdin-from-command exclude each other");
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
		if (optind >= argc)
			return kl_cli_usage_error(cli, "no paths to back up");
		o->paths = argv + optind;
		o->n_paths = (size_t)(argc - optind);
	}
	return 0;
}

/* Opens the repository, backs up and prints the summary. */
static int run_backup(struct kl_cli *cli, struct kl_backup_opts *o)
{
	struct kl_backup_result res;
	struct kl_cli_report rep;
	int64_t start;
	int rc;

	rc = kl_cli_open(cli);
	if (rc < 0)
		return rc;
	kl_cli_report_init(&rep, cli, &o->report);
	start = kl_time_mono_ns();
	rc = kl_backup(cli->repo, o, &res);
	kl_cli_report_done(&rep);
	if (rc >= 0 || rc == -KL_EPARTIAL)
		print_result(cli, &res, kl_time_mono_ns() - start);
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
		{NULL, 0, NULL, 0},
	};
	struct kl_backup_opts o;
	struct stream_args a = {0};
	int c, rc = 0;

	kl_backup_opts_init(&o);
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
	kl_patterns_release(&o.excludes);
	return rc;
}
