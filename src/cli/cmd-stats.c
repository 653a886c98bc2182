#include <stdlib.h>

#include "cli.h"
#include "keel/query.h"

static const char usage[] =
	"usage: keel stats [OPTIONS] [SNAPSHOT...]\n"
	"\n"
	"Show what the repository holds and what it costs: the size of its data as\n"
	"stored (packs), the raw (uncompressed) size of the distinct data the\n"
	"snapshots use, the sum of their files' sizes as a restore would write\n"
	"them, the deduplication and compression ratios, and how much new data\n"
	"each snapshot added (oldest first) and each host. Without SNAPSHOT, every\n"
	"snapshot the filters let through. File data is not read.\n"
	"\n"
	"Options:\n"
	"      --mode MODE   print one figure as restic does: restore-size (files\n"
	"                    and their total size), raw-data (distinct blobs, their\n"
	"                    raw and stored size) or files-by-contents (distinct\n"
	"                    file contents); without it, everything\n"
	"      --host HOST   only snapshots of this host\n"
	"      --tag TAG     only snapshots with this tag ('a,b': both)\n"
	"      --path PATH   only snapshots of this source path\n"
	"\n"
	"With --json, one JSON object with every figure and a list per snapshot;\n"
	"total_size and total_file_count are those of the --mode (restic's meaning;\n"
	"restore-size without it).\n";

enum { MODE_ALL, MODE_RESTORE, MODE_RAW, MODE_CONTENTS };
enum { OPT_MODE = 1 };

static double ratio(uint64_t a, uint64_t b)
{
	return b ? (double)a / (double)b : 0;
}

static const char *sz(char *buf, uint64_t n)
{
	kl_print_bytes(buf, 32, n);
	return buf;
}

struct host_sum {
	const char *host;
	uint64_t snapshots, new_raw, new_stored, last_bytes;
};

/* Per host, in order of first appearance. Returns the count; hosts is n long at most. */
static size_t by_host(const struct kl_snapshot_list *l, const struct kl_stats *st,
		      struct host_sum *hosts)
{
	size_t nh = 0;

	for (size_t i = 0; i < l->n; i++) {
		const char *h = l->v[i].s.host ? l->v[i].s.host : "?";
		size_t k = 0;

		while (k < nh && strcmp(hosts[k].host, h))
			k++;
		if (k == nh)
			hosts[nh++] = (struct host_sum){.host = h};
		hosts[k].snapshots++;
		hosts[k].new_raw += st->per[i].new_raw;
		hosts[k].new_stored += st->per[i].new_stored;
		hosts[k].last_bytes = st->per[i].bytes;
	}
	return nh;
}

static void print_json(int mode, const struct kl_snapshot_list *l, const struct kl_stats *st,
		       const struct host_sum *hosts, size_t nh)
{
	/* total_size and total_file_count mean what restic's mean in that mode */
	uint64_t tsize = mode == MODE_RAW	 ? st->data_stored + st->tree_stored
			 : mode == MODE_CONTENTS ? st->unique_file_bytes
						 : st->restore_bytes;
	uint64_t tfiles = mode == MODE_RAW	  ? 0
			  : mode == MODE_CONTENTS ? st->unique_files
						  : st->files;

	printf("{\"snapshots_count\":%zu,\"total_file_count\":%llu,\"total_size\":%llu,"
	       ""
	       "\"restore_file_count\":%llu,\"restore_size\":%llu,"
	       "\"unique_files\":%llu,\"unique_files_size\":%llu,"
	       "\"data_blobs\":%llu,\"data_raw_size\":%llu,\"data_stored_size\":%llu,"
	       "\"tree_blobs\":%llu,\"tree_raw_size\":%llu,\"tree_stored_size\":%llu,"
	       "\"total_blob_count\":%llu,\"total_uncompressed_size\":%llu,"
	       "\"missing_blobs\":%llu,\"packs\":%llu,\"repository_size\":%llu,"
	       "\"index_blobs\":%llu,\"index_stored_size\":%llu,"
	       "\"deduplication_ratio\":%.4f,\"compression_ratio\":%.4f,\"snapshots\":[",
	       l->n, (unsigned long long)tfiles, (unsigned long long)tsize,
	       (unsigned long long)st->files, (unsigned long long)st->restore_bytes,
	       (unsigned long long)st->unique_files, (unsigned long long)st->unique_file_bytes,
	       (unsigned long long)st->data_blobs, (unsigned long long)st->data_raw,
	       (unsigned long long)st->data_stored, (unsigned long long)st->tree_blobs,
	       (unsigned long long)st->tree_raw, (unsigned long long)st->tree_stored,
	       (unsigned long long)(st->data_blobs + st->tree_blobs),
	       (unsigned long long)(st->data_raw + st->tree_raw),
	       (unsigned long long)st->missing_blobs, (unsigned long long)st->packs,
	       (unsigned long long)st->pack_bytes, (unsigned long long)st->index_blobs,
	       (unsigned long long)st->index_stored, ratio(st->restore_bytes, st->data_raw),
	       ratio(st->data_raw + st->tree_raw, st->data_stored + st->tree_stored));
	for (size_t i = 0; i < l->n; i++) {
		const struct kl_stats_snap *p = &st->per[i];

		printf("%s{\"id\":", i ? "," : "");
		kl_json_id(stdout, &l->v[i].id);
		printf(",\"time\":");
		kl_json_time(stdout, l->v[i].s.time_ns);
		printf(",\"hostname\":");
		kl_json_cstr(stdout, l->v[i].s.host);
		printf(",\"files\":%llu,\"size\":%llu,\"new_blobs\":%llu,\"new_raw_size\":%llu,"
		       "\"new_data_raw_size\":%llu,\"new_stored_size\":%llu}",
		       (unsigned long long)p->files, (unsigned long long)p->bytes,
		       (unsigned long long)p->new_blobs, (unsigned long long)p->new_raw,
		       (unsigned long long)p->new_data_raw, (unsigned long long)p->new_stored);
	}
	printf("],\"hosts\":[");
	for (size_t k = 0; k < nh; k++) {
		printf("%s{\"hostname\":", k ? "," : "");
		kl_json_cstr(stdout, hosts[k].host);
		printf(",\"snapshots\":%llu,\"new_raw_size\":%llu,\"new_stored_size\":%llu,"
		       "\"latest_size\":%llu}",
		       (unsigned long long)hosts[k].snapshots, (unsigned long long)hosts[k].new_raw,
		       (unsigned long long)hosts[k].new_stored,
		       (unsigned long long)hosts[k].last_bytes);
	}
	printf("]}\n");
}

static void print_mode(int mode, const struct kl_snapshot_list *l, const struct kl_stats *st)
{
	char a[32], b[32];

	printf("Stats in %s mode:\n", mode == MODE_RESTORE ? "restore-size"
				      : mode == MODE_RAW   ? "raw-data"
							   : "files-by-contents");
	printf("     Snapshots processed:  %zu\n", l->n);
	if (mode == MODE_RESTORE) {
		printf("        Total File Count:  %llu\n", (unsigned long long)st->files);
		printf("              Total Size:  %s\n", sz(a, st->restore_bytes));
	} else if (mode == MODE_RAW) {
		printf("        Total Blob Count:  %llu\n",
		       (unsigned long long)(st->data_blobs + st->tree_blobs));
		printf(" Total Uncompressed Size:  %s\n", sz(a, st->data_raw + st->tree_raw));
		printf("              Total Size:  %s\n", sz(b, st->data_stored + st->tree_stored));
		printf("       Compression Ratio:  %.2fx\n",
		       ratio(st->data_raw + st->tree_raw, st->data_stored + st->tree_stored));
	} else {
		printf("        Total File Count:  %llu\n", (unsigned long long)st->unique_files);
		printf("              Total Size:  %s\n", sz(a, st->unique_file_bytes));
	}
}

static void print_all(const struct kl_snapshot_list *l, const struct kl_stats *st,
		      const struct host_sum *hosts, size_t nh)
{
	char a[32], b[32], c[32];

	printf("repository size:   %s in %llu packs (%s of blobs no snapshot here uses)\n",
	       sz(a, st->pack_bytes), (unsigned long long)st->packs,
	       sz(b, st->index_stored > st->data_stored + st->tree_stored
			     ? st->index_stored - st->data_stored - st->tree_stored
			     : 0));
	printf("snapshots:         %zu\n", l->n);
	printf("restore size:      %s in %llu files\n", sz(a, st->restore_bytes),
	       (unsigned long long)st->files);
	printf("unique files:      %llu, %s\n", (unsigned long long)st->unique_files,
	       sz(a, st->unique_file_bytes));
	printf("raw data:          %s in %llu blobs (%s in %llu trees)\n", sz(a, st->data_raw),
	       (unsigned long long)st->data_blobs, sz(b, st->tree_raw),
	       (unsigned long long)st->tree_blobs);
	printf("stored:            %s (trees %s)\n", sz(a, st->data_stored),
	       sz(b, st->tree_stored));
	printf("deduplication:     %.2fx (restore size / raw data)\n",
	       ratio(st->restore_bytes, st->data_raw));
	printf("compression:       %.2fx (raw / stored)\n",
	       ratio(st->data_raw + st->tree_raw, st->data_stored + st->tree_stored));
	if (st->missing_blobs)
		printf("missing blobs:     %llu (run 'keel check')\n",
		       (unsigned long long)st->missing_blobs);
	printf("\ngrowth per snapshot (new data, oldest first):\n");
	printf("  %-8s  %-19s  %-12s  %10s  %10s  %10s\n", "id", "time", "host", "size", "new raw",
	       "new stored");
	for (size_t i = 0; i < l->n; i++) {
		char hex[2 * KL_ID_LEN + 1], when[40];

		kl_id_hex(&l->v[i].id, hex);
		kl_time_format_local(l->v[i].s.time_ns, when);
		printf("  %.8s  %-19.19s  %-12s  %10s  %10s  %10s\n", hex, when,
		       l->v[i].s.host ? l->v[i].s.host : "?", sz(a, st->per[i].bytes),
		       sz(b, st->per[i].new_raw), sz(c, st->per[i].new_stored));
	}
	printf("\nper host:\n");
	printf("  %-20s  %9s  %10s  %10s  %11s\n", "host", "snapshots", "new raw", "new stored",
	       "latest size");
	for (size_t k = 0; k < nh; k++)
		printf("  %-20s  %9llu  %10s  %10s  %11s\n", hosts[k].host,
		       (unsigned long long)hosts[k].snapshots, sz(a, hosts[k].new_raw),
		       sz(b, hosts[k].new_stored), sz(c, hosts[k].last_bytes));
}

int cmd_stats(int argc, char **argv, struct kl_cli *cli)
{
	static const struct option opts[] = {KL_GLOBAL_OPTS,
					     KL_SNAP_FILTER_OPTS,
					     {"mode", required_argument, NULL, OPT_MODE},
					     {NULL, 0, NULL, 0}};
	struct kl_snap_filter f = {0};
	struct kl_snapshot_list l = {0};
	struct kl_stats st = {0};
	struct host_sum *hosts = NULL;
	int c, rc = 0, mode = MODE_ALL;

	while ((c = getopt_long(argc, argv, ":" KL_GLOBAL_SHORT, opts, NULL)) != -1) {
		if (c == OPT_MODE) {
			if (!strcmp(optarg, "restore-size"))
				mode = MODE_RESTORE;
			else if (!strcmp(optarg, "raw-data"))
				mode = MODE_RAW;
			else if (!strcmp(optarg, "files-by-contents"))
				mode = MODE_CONTENTS;
			else
				rc = kl_cli_usage_error(cli, "unknown mode '%s'", optarg);
			if (rc)
				goto out;
			continue;
		}
		rc = kl_cli_snap_filter_opt(&f, c, optarg);
		if (rc > 0)
			continue;
		if (rc == 0)
			rc = kl_cli_default_opt(cli, c, usage, argv);
		if (rc)
			goto out;
	}
	rc = kl_cli_open(cli);
	if (rc >= 0)
		rc = kl_cli_pick_snapshots(cli, argv + optind, (size_t)(argc - optind), &f, &l);
	if (rc < 0)
		goto out;
	rc = kl_stats_compute(cli->repo, l.v, l.n, &st);
	if (rc < 0) {
		kl_repo_take_err(cli->repo, &cli->err, &cli->detail);
		kl_cli_error(cli, rc, "cannot compute the statistics");
		goto out;
	}
	hosts = kl_calloc(l.n ? l.n : 1, sizeof(*hosts));
	if (!hosts) {
		rc = -ENOMEM;
		goto out;
	}
	{
		size_t nh = by_host(&l, &st, hosts);

		if (cli->json)
			print_json(mode, &l, &st, hosts, nh);
		else if (mode != MODE_ALL)
			print_mode(mode, &l, &st);
		else
			print_all(&l, &st, hosts, nh);
	}
out:
	kl_free(hosts);
	kl_stats_release(&st);
	kl_snapshot_list_release(&l);
	kl_snap_filter_release(&f);
	return rc;
}
