#include <stdlib.h>

#include "cli.h"

static const char usage[] =
	"usage: keel check [OPTIONS]\n"
	"\n"
	"Verify the repository: indexes, pack headers, snapshots and every tree.\n"
	"\n"
	"Options:\n"
	"      --read-data                 also read, decrypt and re-hash all data\n"
	"      --read-data-subset=N%       ... or only N percent of the packs, a random\n"
	"                                  sample (see --read-data-seed)\n"
	"      --read-data-subset=n/m      ... or group n of m: groups 1/m to m/m\n"
	"                                  together read every pack exactly once\n"
	"      --read-data-seed=TEXT       repeat the sample of an N% subset: the same\n"
	"                                  TEXT picks the same packs (check prints\n"
	"                                  the seed it used)\n"
	"      --remove-stale-tmp          remove temporary files that interrupted\n"
	"                                  writes left, if older than an hour\n"
	"      --threads N                 worker threads (default: one per core)\n"
	"\n"
	"Exit status 13 means damage was found: each damaged object is listed with\n"
	"the snapshots and files it affects. Read errors alone give 20.\n";

/* "N%" (or "N"): *permille; "n/m": *n and *m */
static int parse_subset(const char *s, unsigned *permille, unsigned *n, unsigned *m)
{
	const char *slash = strchr(s, '/');
	uint64_t a, b;

	if (slash) {
		_cleanup_free_ char *num = kl_strndup(s, (size_t)(slash - s));

		if (!num)
			return -ENOMEM;
		if (kl_parse_uint(num, 1, UINT32_MAX, &a) < 0 ||
		    kl_parse_uint(slash + 1, 1, UINT32_MAX, &b) < 0 || a > b)
			return -KL_EUSAGE;
		*n = (unsigned)a;
		*m = (unsigned)b;
		return 0;
	}
	/* a sample of no packs at all would check nothing */
	if (kl_parse_percent(s, permille) < 0 || !*permille)
		return -KL_EUSAGE;
	return 0;
}

/* The seed of an N% sample: TEXT as 32 hex digits is the seed itself, else its hash. */
static void parse_seed(const char *text, uint8_t seed[static 16])
{
	struct kl_id h;

	if (strlen(text) == 32 && kl_hex_decode(text, 16, seed) == 0)
		return;
	kl_sha256(text, strlen(text), &h);
	memcpy(seed, h.b, 16);
}

/* check's messages already name the object and the cause: print them as they are */
static void on_problem(void *ud, const char *object, int err, const char *what)
{
	struct kl_cli_report *rep = ud;
	struct kl_cli *cli = rep->cli;

	kl_cli_report_clear(rep);
	if (cli->json) {
		printf("{\"message_type\":\"problem\",\"object\":");
		kl_json_cstr(stdout, object);
		printf(",\"error\":");
		kl_json_cstr(stdout, err ? kl_strerror(err) : NULL);
		printf(",\"message\":");
		kl_json_cstr(stdout, what);
		printf("}\n");
		return;
	}
	fprintf(stderr, "keel: check: %s%s%s\n", object ? object : "", object ? ": " : "",
		what ? what : kl_strerror(err));
}

/* ids of the long options without a short form */
enum {
	OPT_READ_DATA = 1,
	OPT_READ_DATA_SUBSET,
	OPT_THREADS,
	OPT_READ_DATA_SEED,
	OPT_REMOVE_STALE_TMP,
};

/* --json: the result as one summary message */
static void print_json(const struct kl_check_opts *o, const struct kl_check_result *r)
{
	char seed_hex[2 * 16 + 1];

	printf("{\"message_type\":\"summary\",\"snapshots\":%llu,\"trees\":%llu,\"blobs\":%"
	       "llu,"
	       "\"packs\":%llu,\"index_files\":%llu,\"packs_read\":%llu,\"bytes_read\":%"
	       "llu,"
	       "\"errors\":%llu,\"unindexed_packs\":%llu,\"unused_blobs\":%llu,"
	       "\"tmp_files\":%llu,\"tmp_bytes\":%llu,\"tmp_stale\":%llu,"
	       "\"tmp_removed\":%llu,\"tmp_removed_bytes\":%llu,"
	       "\"damaged_snapshots\":[",
	       (unsigned long long)r->snapshots, (unsigned long long)r->trees,
	       (unsigned long long)r->blobs, (unsigned long long)r->packs,
	       (unsigned long long)r->index_files, (unsigned long long)r->packs_read,
	       (unsigned long long)r->bytes_read, (unsigned long long)r->errors,
	       (unsigned long long)r->unindexed_packs, (unsigned long long)r->unused_blobs,
	       (unsigned long long)r->tmp.files, (unsigned long long)r->tmp.bytes,
	       (unsigned long long)r->tmp.stale, (unsigned long long)r->tmp.removed,
	       (unsigned long long)r->tmp.removed_bytes);
	for (size_t i = 0; i < r->n_damaged; i++)
		printf("%s\"%s\"", i ? "," : "", r->damaged_snapshots[i]);
	printf("]");
	if (o->read_data && o->subset_permille && o->subset_permille < 1000) {
		kl_hex_encode(r->seed, sizeof(r->seed), seed_hex);
		printf(",\"subset_seed\":\"%s\"", seed_hex);
	}
	printf("}\n");
}

/* The result for a person, with what to do about what was found. */
static void print_summary(const struct kl_check_opts *o, const struct kl_check_result *r)
{
	char seed_hex[2 * 16 + 1];

	printf("checked %llu snapshots, %llu trees, %llu blobs in %llu packs, %llu index "
	       "files\n",
	       (unsigned long long)r->snapshots, (unsigned long long)r->trees,
	       (unsigned long long)r->blobs, (unsigned long long)r->packs,
	       (unsigned long long)r->index_files);
	if (o->read_data) {
		char b[32];

		kl_print_bytes(b, sizeof(b), r->bytes_read);
		printf("read %llu packs, %s", (unsigned long long)r->packs_read, b);
		if (o->subset_m) {
			printf(" (group %u of %u)", o->subset_n, o->subset_m);
		} else if (o->subset_permille && o->subset_permille < 1000) {
			kl_hex_encode(r->seed, sizeof(r->seed), seed_hex);
			printf(" (a %.1f%% sample; --read-data-seed=%s repeats it)",
			       o->subset_permille / 10.0, seed_hex);
		}
		putchar('\n');
	}
	if (r->tmp.files) {
		char b[32], rb[32];

		kl_print_bytes(b, sizeof(b), r->tmp.bytes);
		kl_print_bytes(rb, sizeof(rb), r->tmp.removed_bytes);
		printf("%llu temporary files (%s) left by interrupted writes",
		       (unsigned long long)r->tmp.files, b);
		if (r->tmp.removed)
			printf("; removed %llu (%s) older than an hour",
			       (unsigned long long)r->tmp.removed, rb);
		else if (r->tmp.stale)
			printf("; %llu older than an hour (--remove-stale-tmp removes "
			       "them)",
			       (unsigned long long)r->tmp.stale);
		putchar('\n');
	}
	if (r->unindexed_packs)
		printf("%llu packs are not indexed yet (left by an interrupted backup; the "
		       "next "
		       "backup adopts them)\n",
		       (unsigned long long)r->unindexed_packs);
	if (r->unused_blobs)
		printf("%llu blobs are not used by any snapshot\n",
		       (unsigned long long)r->unused_blobs);
	if (r->errors) {
		printf("%llu errors found", (unsigned long long)r->errors);
		if (r->n_damaged) {
			printf("; damaged snapshots:");
			for (size_t i = 0; i < r->n_damaged; i++)
				printf(" %.8s", r->damaged_snapshots[i]);
		}
		putchar('\n');
	} else {
		printf("no errors were found\n");
	}
}

int cmd_check(int argc, char **argv, struct kl_cli *cli)
{
	static const struct option opts[] = {
		KL_GLOBAL_OPTS,
		{"read-data", no_argument, NULL, OPT_READ_DATA},
		{"read-data-subset", required_argument, NULL, OPT_READ_DATA_SUBSET},
		{"threads", required_argument, NULL, OPT_THREADS},
		{"read-data-seed", required_argument, NULL, OPT_READ_DATA_SEED},
		{"remove-stale-tmp", no_argument, NULL, OPT_REMOVE_STALE_TMP},
		{NULL, 0, NULL, 0},
	};
	struct kl_check_opts o = {0};
	struct kl_check_result res = {0};
	struct kl_cli_report rep;
	uint64_t threads;
	int c, rc = 0;

	while ((c = getopt_long(argc, argv, ":" KL_GLOBAL_SHORT, opts, NULL)) != -1) {
		switch (c) {
		case OPT_READ_DATA:
			o.read_data = true;
			break;
		case OPT_READ_DATA_SUBSET:
			o.read_data = true;
			o.subset_permille = o.subset_n = o.subset_m = 0;
			if (parse_subset(optarg, &o.subset_permille, &o.subset_n, &o.subset_m) < 0)
				return kl_cli_usage_error(
					cli, "invalid subset '%s' (use e.g. 10%% or 2/5)", optarg);
			break;
		case OPT_READ_DATA_SEED:
			parse_seed(optarg, o.seed);
			o.has_seed = true;
			break;
		case OPT_REMOVE_STALE_TMP:
			o.remove_stale_tmp = true;
			break;
		case OPT_THREADS:
			if (kl_parse_uint(optarg, 1, 64, &threads) < 0)
				return kl_cli_usage_error(cli, "invalid --threads '%s'", optarg);
			o.threads = (unsigned)threads;
			break;
		default:
			rc = kl_cli_default_opt(cli, c, usage, argv);
			if (rc)
				return rc;
		}
	}
	if (optind < argc)
		return kl_cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	rc = kl_cli_open(cli);
	if (rc < 0)
		return rc;
	kl_cli_report_init(&rep, cli, &o.report);
	o.report.warn = on_problem;
	rep.unit = "objects";
	rc = kl_check(cli->repo, &o, &res);
	kl_cli_report_done(&rep);
	if (rc == -KL_EINTERRUPTED)
		; /* nothing was checked to the end: main() says so */
	else if (cli->json)
		print_json(&o, &res);
	else if (!cli->quiet)
		print_summary(&o, &res);
	if (rc < 0 && rc != -KL_ECHECK) {
		kl_repo_take_err(cli->repo, &cli->err, &cli->detail);
		/* read errors alone are no proof of damage: exit 20, not 13 */
		kl_cli_error(cli, rc,
			     res.errors ? "check could not read everything (no damage found)"
					: "check could not complete");
	}
	kl_check_result_release(&res);
	return rc;
}
