#include <stdlib.h>

#include "cli.h"

static const char usage[] =
	"usage: keel check [OPTIONS]\n"
	"\n"
	"Verify the repository: indexes, pack headers, snapshots and every tree.\n"
	"\n"
	"Options:\n"
	"      --read-data                 also read, decrypt and re-hash all data\n"
	"      --read-data-subset=N%       ... or only N percent of the packs\n"
	"      --threads N                 worker threads (default: one per core)\n"
	"\n"
	"Exit status 13 means damage was found: each damaged object is listed with\n"
	"the snapshots and files it affects.\n";

static int parse_subset(const char *s, unsigned *permille)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || (*end && strcmp(end, "%")) || v <= 0 || v > 100)
		return -KL_EUSAGE;
	*permille = (unsigned)(v * 10 + 0.5);
	if (!*permille)
		*permille = 1;
	return 0;
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

int cmd_check(int argc, char **argv, struct kl_cli *cli)
{
	static const struct option opts[] = {
		KL_GLOBAL_OPTS,
		{"read-data", no_argument, NULL, 1},
		{"read-data-subset", required_argument, NULL, 2},
		{"threads", required_argument, NULL, 3},
		{NULL, 0, NULL, 0},
	};
	struct kl_check_opts o = {0};
	struct kl_check_result res = {0};
	struct kl_cli_report rep;
	uint64_t threads;
	int c, rc = 0;

	while ((c = getopt_long(argc, argv, ":" KL_GLOBAL_SHORT, opts, NULL)) != -1) {
		switch (c) {
		case 1:
			o.read_data = true;
			break;
		case 2:
			o.read_data = true;
			if (parse_subset(optarg, &o.subset_permille) < 0)
				return kl_cli_usage_error(
					cli, "invalid subset '%s' (use e.g. 10%%)", optarg);
			break;
		case 3:
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
	if (cli->json) {
		printf("{\"message_type\":\"summary\",\"snapshots\":%llu,\"trees\":%llu,\"blobs\":%"
		       "llu,"
		       "\"packs\":%llu,\"index_files\":%llu,\"packs_read\":%llu,\"bytes_read\":%"
		       "llu,"
		       "\"errors\":%llu,\"unindexed_packs\":%llu,\"unused_blobs\":%llu,"
		       "\"damaged_snapshots\":[",
		       (unsigned long long)res.snapshots, (unsigned long long)res.trees,
		       (unsigned long long)res.blobs, (unsigned long long)res.packs,
		       (unsigned long long)res.index_files, (unsigned long long)res.packs_read,
		       (unsigned long long)res.bytes_read, (unsigned long long)res.errors,
		       (unsigned long long)res.unindexed_packs,
		       (unsigned long long)res.unused_blobs);
		for (size_t i = 0; i < res.n_damaged; i++)
			printf("%s\"%s\"", i ? "," : "", res.damaged_snapshots[i]);
		printf("]}\n");
	} else if (!cli->quiet) {
		printf("checked %llu snapshots, %llu trees, %llu blobs in %llu packs, %llu index "
		       "files\n",
		       (unsigned long long)res.snapshots, (unsigned long long)res.trees,
		       (unsigned long long)res.blobs, (unsigned long long)res.packs,
		       (unsigned long long)res.index_files);
		if (o.read_data) {
			char b[32];

			kl_print_bytes(b, sizeof(b), res.bytes_read);
			printf("read %llu packs, %s\n", (unsigned long long)res.packs_read, b);
		}
		if (res.unindexed_packs)
			printf("%llu packs are not indexed yet (left by an interrupted backup; the "
			       "next "
			       "backup adopts them)\n",
			       (unsigned long long)res.unindexed_packs);
		if (res.unused_blobs)
			printf("%llu blobs are not used by any snapshot\n",
			       (unsigned long long)res.unused_blobs);
		if (res.errors) {
			printf("%llu errors found", (unsigned long long)res.errors);
			if (res.n_damaged) {
				printf("; damaged snapshots:");
				for (size_t i = 0; i < res.n_damaged; i++)
					printf(" %.8s", res.damaged_snapshots[i]);
			}
			putchar('\n');
		} else {
			printf("no errors were found\n");
		}
	}
	if (rc < 0 && rc != -KL_ECHECK) {
		cli->err = cli->repo->err;
		kl_cli_error(cli, rc, "check could not complete");
	}
	kl_check_result_release(&res);
	return rc;
}
