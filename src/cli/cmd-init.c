#include <pwd.h>
#include <stdlib.h>

#include "cli.h"

static const char usage[] =
	"usage: keel init [OPTIONS]\n"
	"\n"
	"Create a new repository at the location given with -r or KEEL_REPOSITORY.\n"
	"\n"
	"Options:\n"
	"      --kdf-ops N          Argon2id passes (default 3)\n"
	"      --kdf-mem MIB        Argon2id memory in MiB (default 64)\n"
	"      --compression LEVEL  zstd level, 0 for none (default 3)\n"
	"      --pack-size MIB      target pack file size (default 16)\n"
	"      --chunk-min SIZE     smallest chunk (default 256K)\n"
	"      --chunk-avg SIZE     average chunk, a power of two (default 1M)\n"
	"      --chunk-max SIZE     largest chunk (default 4M)\n"
	"      --object-lock-mode governance|compliance\n"
	"                           S3 only: write every object under Object Lock\n"
	"                           retention (docs/S3.md)\n"
	"      --object-lock-days N retention period in days (1-36500)\n"
	"      --from-repo SOURCE   with --copy-chunker-params: the repository whose\n"
	"                           chunker to take (env KEEL_FROM_REPOSITORY)\n"
	"      --from-password-file FILE\n"
	"                           SOURCE's password from FILE\n"
	"      --from-password-command CMD\n"
	"                           SOURCE's password from CMD's output\n"
	"      --copy-chunker-params\n"
	"                           cut as SOURCE does (its chunk sizes and chunker\n"
	"                           key), so that chunks deduplicate with SOURCE's\n"
	"                           and keel copy keeps them (docs/COPY.md)\n";

/*
 * Object Lock is the storage service's promise, not keel's: refuse where
 * nobody could keep it, and check the bucket before anything is written.
 */
static int prepare_object_lock(struct kl_cli *cli)
{
	_cleanup_(kl_backend_freep) struct kl_backend *be = NULL;
	int rc;

	rc = kl_backend_open(cli->repo_location, &cli->detail, &be);
	if (rc < 0) {
		kl_cli_error(cli, rc, "cannot open '%s'", cli->repo_location);
		return rc;
	}
	rc = kl_backend_prepare_object_lock(be);
	if (rc == -EOPNOTSUPP)
		return kl_cli_usage_error(cli,
					  "object lock needs a repository on S3 with Object "
					  "Lock; '%s' is a local directory",
					  cli->repo_location);
	if (rc < 0) {
		kl_backend_take_err(be, &cli->detail);
		kl_cli_error(cli, rc, "cannot use Object Lock in '%s'", cli->repo_location);
	}
	return rc;
}

/* ids of the long options without a short form */
enum {
	OPT_KDF_OPS = 1,
	OPT_KDF_MEM,
	OPT_COMPRESSION,
	OPT_PACK_SIZE,
	OPT_CHUNK_MIN,
	OPT_CHUNK_AVG,
	OPT_CHUNK_MAX,
	OPT_OBJECT_LOCK_MODE,
	OPT_OBJECT_LOCK_DAYS,
	OPT_FROM_REPO,
	OPT_FROM_PASSWORD_FILE,
	OPT_FROM_PASSWORD_COMMAND,
	OPT_COPY_CHUNKER_PARAMS,
};

/* init --from-repo SOURCE --copy-chunker-params */
struct init_from {
	const char *repo, *file, *cmd;
	bool copy_chunker;
	bool chunk_opts; /* --chunk-* given too */
};

/* Reads init's own options into o; 0, KL_CLI_HELP or a usage error. */
static int parse_opts(int argc, char **argv, struct kl_cli *cli, struct kl_init_opts *o,
		      struct init_from *from)
{
	static const struct option opts[] = {
		KL_GLOBAL_OPTS,
		{"kdf-ops", required_argument, NULL, OPT_KDF_OPS},
		{"kdf-mem", required_argument, NULL, OPT_KDF_MEM},
		{"compression", required_argument, NULL, OPT_COMPRESSION},
		{"pack-size", required_argument, NULL, OPT_PACK_SIZE},
		{"chunk-min", required_argument, NULL, OPT_CHUNK_MIN},
		{"chunk-avg", required_argument, NULL, OPT_CHUNK_AVG},
		{"chunk-max", required_argument, NULL, OPT_CHUNK_MAX},
		{"object-lock-mode", required_argument, NULL, OPT_OBJECT_LOCK_MODE},
		{"object-lock-days", required_argument, NULL, OPT_OBJECT_LOCK_DAYS},
		{"from-repo", required_argument, NULL, OPT_FROM_REPO},
		{"from-password-file", required_argument, NULL, OPT_FROM_PASSWORD_FILE},
		{"from-password-command", required_argument, NULL, OPT_FROM_PASSWORD_COMMAND},
		{"copy-chunker-params", no_argument, NULL, OPT_COPY_CHUNKER_PARAMS},
		{NULL, 0, NULL, 0},
	};
	uint64_t v;
	int c, rc, li = 0;

	while ((c = getopt_long(argc, argv, ":" KL_GLOBAL_SHORT, opts, &li)) != -1) {
		rc = 0;
		switch (c) {
		case OPT_KDF_OPS:
			rc = kl_parse_uint(optarg, 1, 100, &o->kdf.ops);
			break;
		case OPT_KDF_MEM:
			rc = kl_parse_uint(optarg, 8, 4096, &v);
			o->kdf.mem = v << 20;
			break;
		case OPT_COMPRESSION:
			rc = kl_parse_uint(optarg, 0, 22, &v);
			o->compression_level = (int)v;
			break;
		case OPT_PACK_SIZE:
			rc = kl_parse_uint(optarg, 1, 1024, &v);
			o->pack_size = (uint32_t)(v << 20);
			break;
		case OPT_CHUNK_MIN:
		case OPT_CHUNK_AVG:
		case OPT_CHUNK_MAX:
			from->chunk_opts = true;
			rc = kl_parse_size(optarg, &v);
			if (rc >= 0 && v > (64u << 20))
				rc = -KL_EUSAGE;
			if (c == OPT_CHUNK_MIN)
				o->cdc.min = (uint32_t)v;
			else if (c == OPT_CHUNK_AVG)
				o->cdc.avg = (uint32_t)v;
			else
				o->cdc.max = (uint32_t)v;
			break;
		case OPT_OBJECT_LOCK_MODE:
			if (!strcmp(optarg, "governance"))
				o->lock_mode = KL_LOCK_GOVERNANCE;
			else if (!strcmp(optarg, "compliance"))
				o->lock_mode = KL_LOCK_COMPLIANCE;
			else
				rc = -KL_EUSAGE;
			break;
		case OPT_OBJECT_LOCK_DAYS:
			rc = kl_parse_uint(optarg, 1, KL_LOCK_DAYS_MAX, &v);
			o->lock_days = (uint32_t)v;
			break;
		case OPT_FROM_REPO:
			from->repo = optarg;
			break;
		case OPT_FROM_PASSWORD_FILE:
			from->file = optarg;
			break;
		case OPT_FROM_PASSWORD_COMMAND:
			from->cmd = optarg;
			break;
		case OPT_COPY_CHUNKER_PARAMS:
			from->copy_chunker = true;
			break;
		default:
			rc = kl_cli_default_opt(cli, c, usage, argv);
			if (rc)
				return rc;
			continue;
		}
		if (rc < 0)
			/* by name: with "--opt value", argv[optind - 1] is the value */
			return kl_cli_usage_error(cli, "invalid value '%s' for '--%s'", optarg,
						  opts[li].name);
	}
	if (optind < argc)
		return kl_cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	if (!from->repo && from->copy_chunker) {
		from->repo = getenv("KEEL_FROM_REPOSITORY");
		if (!from->repo || !*from->repo)
			return kl_cli_usage_error(cli,
						  "'--copy-chunker-params' needs '--from-repo' "
						  "or KEEL_FROM_REPOSITORY");
	}
	if (from->repo && !from->copy_chunker)
		return kl_cli_usage_error(cli, "'--from-repo' is used only with "
					       "'--copy-chunker-params'");
	if (from->copy_chunker && from->chunk_opts)
		return kl_cli_usage_error(cli, "'--copy-chunker-params' and '--chunk-*' both "
					       "given: the chunk sizes are SOURCE's");
	return 0;
}

/*
 * SOURCE's chunker into o: its parameters, variant and key. The key is
 * copied into key (the caller's, wiped by it), as SOURCE is closed here.
 */
static int take_chunker(struct kl_cli *cli, const struct init_from *from, struct kl_init_opts *o,
			struct kl_key *key)
{
	_cleanup_(kl_repo_freep) struct kl_repo *src = NULL;
	const struct kl_config *c;
	int rc = kl_cli_open_from(cli, from->repo, from->file, from->cmd, false, &src);

	if (rc < 0)
		return rc;
	c = kl_repo_config(src);
	o->cdc.min = c->cdc_min;
	o->cdc.avg = c->cdc_avg;
	o->cdc.max = c->cdc_max;
	o->cdc.variant = c->cdc_variant;
	*key = *kl_repo_chunker_key(src);
	o->chunker_key = key;
	return 0;
}

static void print_created(struct kl_cli *cli, struct kl_repo *r, const struct kl_init_opts *o)
{
	char hex[2 * KL_ID_LEN + 1];

	kl_id_hex(&kl_repo_config(r)->repo_id, hex);
	if (cli->json) {
		printf("{\"message_type\":\"initialized\",\"id\":\"%s\",\"repository\":", hex);
		kl_json_cstr(stdout, cli->repo_location);
		printf("}\n");
	} else if (!cli->quiet) {
		printf("created keel repository %.10s at %s\n", hex, cli->repo_location);
		if (o->lock_mode != KL_LOCK_NONE)
			printf("every object is kept for %u days (S3 Object Lock, %s mode)\n",
			       o->lock_days,
			       o->lock_mode == KL_LOCK_COMPLIANCE ? "compliance" : "governance");
		printf("\nPlease note that knowledge of your password is required to access\n"
		       "the repository. Losing your password means that your data is\n"
		       "irrecoverably lost.\n");
	}
}

int cmd_init(int argc, char **argv, struct kl_cli *cli)
{
	_cleanup_(kl_repo_freep) struct kl_repo *r = NULL;
	struct kl_init_opts o;
	struct init_from from = {0};
	struct kl_key ck;
	struct kl_pass *pass = NULL;
	char host[256], user[64];
	int rc;

	kl_init_opts_default(&o);
	rc = parse_opts(argc, argv, cli, &o, &from);
	if (rc)
		return rc;
	if (!cli->repo_location || !*cli->repo_location)
		return kl_cli_usage_error(cli, "no repository given: use -r or KEEL_REPOSITORY");
	if ((o.lock_mode == KL_LOCK_NONE) != (o.lock_days == 0))
		return kl_cli_usage_error(cli, "'--object-lock-mode' and '--object-lock-days' go "
					       "together");
	if (o.lock_mode != KL_LOCK_NONE) {
		rc = prepare_object_lock(cli);
		if (rc < 0)
			return rc;
	}
	if (from.copy_chunker) {
		rc = take_chunker(cli, &from, &o, &ck);
		if (rc < 0)
			return rc;
	}
	rc = kl_cli_read_password(cli, true, &pass);
	if (rc < 0) {
		kl_wipe(&ck, sizeof(ck));
		kl_cli_error(cli, rc, "cannot read the password");
		return rc;
	}
	if (gethostname(host, sizeof(host)) < 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = 0;
	{
		struct passwd *pw = getpwuid(geteuid());

		snprintf(user, sizeof(user), "%s", pw ? pw->pw_name : "?");
	}
	o.host = host;
	o.user = user;
	rc = kl_repo_create_err(cli->repo_location, pass, &o, &cli->detail, &r);
	kl_pass_free(pass);
	kl_wipe(&ck, sizeof(ck));
	if (rc < 0) {
		if (rc == -KL_EUSAGE && !cli->detail.code)
			return kl_cli_usage_error(cli,
						  "invalid chunk, pack or compression settings");
		kl_cli_error(cli, rc, "cannot create repository at '%s'", cli->repo_location);
		return rc;
	}
	print_created(cli, r, &o);
	return 0;
}
