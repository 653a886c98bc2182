#include <stdlib.h>

#include "cli.h"
#include "keel/maint.h"

static const char usage[] =
	"usage: keel repair index [--dry-run]\n"
	"       keel repair snapshots [--dry-run] [--read-data] [--forget]\n"
	"\n"
	"index       rebuild the index from the headers of all packs and replace\n"
	"            every index file (takes an exclusive lock). Packs whose header\n"
	"            is damaged are reported and left out.\n"
	"snapshots   for every snapshot with files whose data is missing (or, with\n"
	"            --read-data, damaged) or directories that cannot be read, write\n"
	"            a new snapshot without them, tagged \"repaired\"; every file left\n"
	"            out is listed. Run 'repair index' first if the index is damaged.\n"
	"            A snapshot object that cannot be read is listed, and removed with\n"
	"            --forget (nothing in it can be salvaged; until it goes, prune\n"
	"            refuses to run and 'latest' may fail).\n"
	"\n"
	"Options:\n"
	"  -n, --dry-run     report only\n"
	"      --read-data   snapshots: read and verify every blob, not only look it up\n"
	"      --forget      snapshots: remove the damaged originals, and snapshot\n"
	"                    objects that cannot be read\n";

static void on_lost(void *ud, const char *path, int err, const char *what)
{
	struct kl_cli *cli = ud;

	if (cli->json) {
		printf("{\"message_type\":\"lost\",\"path\":");
		kl_json_cstr(stdout, path);
		printf(",\"reason\":");
		kl_json_cstr(stdout, what);
		printf("}\n");
		return;
	}
	if (!path) /* not a path: a whole snapshot */
		fprintf(stderr, "keel: repair: %s\n", what);
	else
		fprintf(stderr, "keel: repair: %s: %s\n", *path ? path : "/", what);
}

static int on_snapshot(const struct kl_id *old, const struct kl_id *repaired, uint64_t lost,
		       void *ud)
{
	struct kl_cli *cli = ud;
	char a[2 * KL_ID_LEN + 1], b[2 * KL_ID_LEN + 1];

	kl_id_hex(old, a);
	if (repaired)
		kl_id_hex(repaired, b);
	if (cli->json) {
		printf("{\"message_type\":\"snapshot\",\"id\":\"%s\",\"repaired\":", a);
		if (repaired)
			printf("\"%s\"", b);
		else
			printf("null");
		printf(",\"lost\":%llu}\n", (unsigned long long)lost);
	} else if (!cli->quiet) {
		if (repaired)
			printf("snapshot %.8s: %llu entries lost, repaired as %.8s\n", a,
			       (unsigned long long)lost, b);
		else
			printf("snapshot %.8s: %llu entries would be lost\n", a,
			       (unsigned long long)lost);
	}
	return 0;
}

/* ids of the long options without a short form */
enum {
	OPT_READ_DATA = 1,
	OPT_FORGET,
};

int cmd_repair(int argc, char **argv, struct kl_cli *cli)
{
	static const struct option opts[] = {
		KL_GLOBAL_OPTS,
		{"dry-run", no_argument, NULL, 'n'},
		{"read-data", no_argument, NULL, OPT_READ_DATA},
		{"forget", no_argument, NULL, OPT_FORGET},
		{NULL, 0, NULL, 0},
	};
	struct kl_repair_opts o = {0};
	struct kl_repair_stats st;
	const char *what;
	bool index;
	int c, rc;

	while ((c = getopt_long(argc, argv, ":n" KL_GLOBAL_SHORT, opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			o.dry_run = true;
			break;
		case OPT_READ_DATA:
			o.read_data = true;
			break;
		case OPT_FORGET:
			o.forget = true;
			break;
		default:
			rc = kl_cli_default_opt(cli, c, usage, argv);
			if (rc)
				return rc;
		}
	}
	if (optind + 1 != argc)
		return kl_cli_usage_error(cli, "say what to repair: 'index' or 'snapshots'");
	what = argv[optind];
	index = !strcmp(what, "index");
	if (!index && strcmp(what, "snapshots"))
		return kl_cli_usage_error(cli, "cannot repair '%s': 'index' or 'snapshots'", what);
	if (index && (o.read_data || o.forget))
		return kl_cli_usage_error(cli,
					  "--read-data and --forget are for 'repair snapshots'");
	/* rebuilding the index must not race a prune or a backup writing index files */
	cli->cmd_flags |= index ? KL_CMD_LOCK_EXCL : KL_CMD_LOCK | KL_CMD_INDEX;
	rc = kl_cli_open(cli);
	if (rc < 0)
		return rc;
	o.report.warn = on_lost;
	o.report.ud = cli;
	if (index)
		rc = kl_repair_index(cli->repo, &o, &st);
	else
		rc = kl_repair_snapshots(cli->repo, &o, &st, on_snapshot, cli);
	if (rc < 0) {
		kl_repo_take_err(cli->repo, &cli->err, &cli->detail);
		kl_cli_error(cli, rc, "repair %s failed", what);
		return rc;
	}
	if (cli->json) {
		printf("{\"message_type\":\"summary\",\"dry_run\":%s,\"packs\":%llu,"
		       "\"packs_damaged\":%llu,\"blobs\":%llu,\"index_files_written\":%llu,"
		       "\"index_files_removed\":%llu,\"snapshots\":%llu,"
		       "\"snapshots_repaired\":%llu,\"snapshots_unreadable\":%llu,"
		       "\"snapshots_unreadable_removed\":%llu,\"files_lost\":%llu}\n",
		       o.dry_run ? "true" : "false", (unsigned long long)st.packs,
		       (unsigned long long)st.packs_damaged, (unsigned long long)st.blobs,
		       (unsigned long long)st.index_files_written,
		       (unsigned long long)st.index_files_removed, (unsigned long long)st.snapshots,
		       (unsigned long long)st.snapshots_repaired,
		       (unsigned long long)st.snapshots_damaged_files,
		       (unsigned long long)st.snapshots_unreadable_removed,
		       (unsigned long long)st.files_lost);
	} else if (!cli->quiet && index) {
		printf("%llu packs read (%llu damaged), %llu blobs indexed; %llu index files "
		       "replaced by %llu\n",
		       (unsigned long long)st.packs, (unsigned long long)st.packs_damaged,
		       (unsigned long long)st.blobs, (unsigned long long)st.index_files_removed,
		       (unsigned long long)st.index_files_written);
	} else if (!cli->quiet) {
		printf("%llu snapshots checked, %llu %s, %llu entries lost",
		       (unsigned long long)st.snapshots, (unsigned long long)st.snapshots_repaired,
		       o.dry_run ? "would be repaired" : "repaired",
		       (unsigned long long)st.files_lost);
		if (st.snapshots_damaged_files)
			printf("; %llu snapshots cannot be read, %llu removed",
			       (unsigned long long)st.snapshots_damaged_files,
			       (unsigned long long)st.snapshots_unreadable_removed);
		putchar('\n');
	}
	/* without --forget a snapshot that cannot be read stays: the repository is still damaged */
	if (st.snapshots_damaged_files && !o.forget)
		return -KL_ECORRUPT;
	return st.files_lost || st.packs_damaged || st.snapshots_damaged_files ? -KL_EPARTIAL : 0;
}
