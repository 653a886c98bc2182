#include "cli.h"
#include "keel/query.h"

static const char usage[] =
	"usage: keel snapshots [OPTIONS]\n"
	"\n"
	"List the repository's snapshots, oldest first.\n"
	"\n"
	"Options:\n"
	"      --host HOST   only snapshots of this host (repeatable)\n"
	"      --tag TAG     only snapshots with this tag (TAG1,TAG2: both)\n"
	"      --path PATH   only snapshots that include this path\n"
	"      --latest N    only the newest N\n"
	"      --check       look whether each snapshot's data is in the\n"
	"                    repository (reads every snapshot's trees)\n"
	"      --no-check    do not look (the default)\n"
	"\n"
	"With --check, a snapshot some of whose trees or data no index file\n"
	"names, or whose packs are gone (an interrupted or partial copy), is\n"
	"marked '(incomplete)': it would restore only in part (docs/COPY.md).\n";

static void print_json(const struct kl_snapshot_ref *ref, bool first, uint64_t missing)
{
	const struct kl_snapshot *s = &ref->s;
	char hex[2 * KL_ID_LEN + 1];

	kl_id_hex(&ref->id, hex);
	printf("%s{\"id\":\"%s\",\"short_id\":\"%.8s\",\"time\":", first ? "" : ",", hex, hex);
	kl_json_time(stdout, s->time_ns);
	printf(",\"time_end\":");
	kl_json_time(stdout, s->time_end_ns);
	printf(",\"kind\":\"%s\",\"hostname\":", s->kind == KL_SNAP_FILES      ? "files"
						 : s->kind == KL_SNAP_STREAM   ? "stream"
						 : s->kind == KL_SNAP_DATABASE ? "database"
						 : s->kind == KL_SNAP_DBLOG    ? "database-log"
									       : "other");
	kl_json_cstr(stdout, s->host);
	printf(",\"username\":");
	kl_json_cstr(stdout, s->user);
	printf(",\"uid\":%u,\"gid\":%u,\"paths\":[", s->uid, s->gid);
	for (size_t i = 0; i < s->n_paths; i++) {
		if (i)
			putchar(',');
		kl_json_cstr(stdout, s->paths[i]);
	}
	printf("],\"tags\":[");
	for (size_t i = 0; i < s->n_tags; i++) {
		if (i)
			putchar(',');
		kl_json_cstr(stdout, s->tags[i]);
	}
	printf("],\"tree\":");
	kl_json_id(stdout, &s->tree);
	if (s->has_parent) {
		printf(",\"parent\":");
		kl_json_id(stdout, &s->parent);
	}
	if (s->has_original) {
		printf(",\"original\":");
		kl_json_id(stdout, &s->original);
	}
	if (missing)
		printf(",\"incomplete\":true,\"missing_blobs\":%llu", (unsigned long long)missing);
	kl_cli_image_info_json(s);
	printf(",\"program_version\":");
	kl_json_cstr(stdout, s->program_version);
	printf(",\"partial\":%s,\"summary\":{\"files_new\":%llu,\"files_changed\":%llu,"
	       "\"files_unmodified\":%llu,\"dirs\":%llu,\"bytes_total\":%llu,\"bytes_read\":%llu,"
	       "\"blobs_new\":%llu,\"data_added\":%llu,\"data_stored\":%llu,\"errors\":%llu}}",
	       s->partial ? "true" : "false", (unsigned long long)s->stats.files_new,
	       (unsigned long long)s->stats.files_changed,
	       (unsigned long long)s->stats.files_unmodified, (unsigned long long)s->stats.dirs,
	       (unsigned long long)s->stats.bytes_total, (unsigned long long)s->stats.bytes_read,
	       (unsigned long long)s->stats.blobs_new, (unsigned long long)s->stats.bytes_added,
	       (unsigned long long)s->stats.bytes_stored, (unsigned long long)s->stats.errors);
}

/*
 * An image snapshot's chunking, method, dirty bitmap, consistency and
 * identification, as JSON members.
 */
void kl_cli_image_info_json(const struct kl_snapshot *s)
{
	if (s->kind != KL_SNAP_DISK)
		return;
	printf(",\"image\":{\"chunk_size\":%u,\"method\":", s->image_chunk_size);
	kl_json_cstr(stdout, s->image_method);
	printf(",\"bitmap\":");
	kl_json_cstr(stdout, s->image_bitmap);
	printf(",\"consistency\":");
	kl_json_cstr(stdout, s->image_consistency);
	printf(",\"ident\":[");
	for (size_t i = 0; i < s->n_image_ident; i++) {
		printf("%s", i ? "," : "");
		kl_json_cstr(stdout, s->image_ident[i]);
	}
	printf("]}");
}

/* The same as indented lines under the snapshot's line. */
static void image_info_text(const struct kl_snapshot *s)
{
	if (s->kind != KL_SNAP_DISK)
		return;
	for (size_t i = 0; i < s->n_image_ident && i < s->n_paths; i++)
		if (*s->image_ident[i])
			printf("          %s: %s\n", s->paths[i], s->image_ident[i]);
	if (s->image_bitmap)
		printf("          dirty bitmap: %s\n", s->image_bitmap);
	if (s->image_consistency)
		printf("          consistency: %s\n", s->image_consistency);
}

static void print_text(const struct kl_snapshot_ref *ref, uint64_t missing)
{
	const struct kl_snapshot *s = &ref->s;
	char hex[2 * KL_ID_LEN + 1], when[40], size[32];

	kl_id_hex(&ref->id, hex);
	kl_time_format_local(s->time_ns, when);
	kl_print_bytes(size, sizeof(size), s->stats.bytes_total);
	printf("%.8s  %s  %-16s %10s  ", hex, when, s->host ? s->host : "", size);
	for (size_t i = 0; i < s->n_tags; i++)
		printf("%s%s", i ? "," : "", s->tags[i]);
	if (!s->n_tags)
		printf("-");
	printf("  ");
	for (size_t i = 0; i < s->n_paths; i++)
		printf("%s%s", i ? " " : "", s->paths[i]);
	if (s->partial)
		printf("  (partial)");
	if (missing)
		printf("  (incomplete: %llu blob%s missing)", (unsigned long long)missing,
		       missing == 1 ? "" : "s");
	putchar('\n');
	image_info_text(s);
}

int cmd_snapshots(int argc, char **argv, struct kl_cli *cli)
{
	static const struct option opts[] = {
		KL_GLOBAL_OPTS,
		KL_SNAP_FILTER_OPTS,
		{"latest", required_argument, NULL, 1},
		{"no-check", no_argument, NULL, 2},
		{"check", no_argument, NULL, 3},
		{NULL, 0, NULL, 0},
	};
	struct kl_snap_filter f = {0};
	struct kl_snapshot_list l = {0};
	struct kl_presence pr = {0};
	uint64_t latest = 0, missing = 0;
	size_t shown = 0, start = 0, matching = 0, incomplete = 0;
	/* reading every tree is slow for many snapshots on S3: only when asked */
	bool check = false;
	int c, rc = 0;

	while ((c = getopt_long(argc, argv, ":" KL_GLOBAL_SHORT, opts, NULL)) != -1) {
		if (c == 1) {
			if (kl_parse_uint(optarg, 1, 1u << 30, &latest) < 0) {
				rc = kl_cli_usage_error(cli, "invalid --latest '%s'", optarg);
				goto out;
			}
			continue;
		}
		if (c == 2 || c == 3) {
			check = c == 3;
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
	if (optind < argc) {
		rc = kl_cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
		goto out;
	}
	if (check)
		cli->cmd_flags |= KL_CMD_INDEX;
	rc = kl_cli_open(cli);
	if (rc < 0)
		goto out;
	rc = kl_repo_list_snapshots(cli->repo, &l);
	if (rc < 0) {
		kl_repo_take_err(cli->repo, &cli->err, &cli->detail);
		kl_cli_error(cli, rc, "cannot list snapshots");
		goto out;
	}
	for (size_t i = 0; i < l.n; i++)
		matching += kl_snap_filter_match(&f, &l.v[i].s);
	if (latest && (size_t)latest < matching)
		start = matching - (size_t)latest;
	if (cli->json)
		putchar('[');
	else if (!cli->quiet)
		printf("ID        Time                 Host             %10s  Tags  Paths\n",
		       "Size");
	for (size_t i = 0, k = 0; i < l.n; i++) {
		if (!kl_snap_filter_match(&f, &l.v[i].s))
			continue;
		if (k++ < start)
			continue;
		if (check && (rc = kl_presence_check(cli->repo, &pr, &l.v[i].s.tree, &missing)) < 0)
			break;
		incomplete += missing > 0;
		if (cli->json)
			print_json(&l.v[i], shown == 0, missing);
		else
			print_text(&l.v[i], missing);
		shown++;
	}
	if (rc < 0) {
		if (cli->json)
			printf("]\n");
		kl_repo_take_err(cli->repo, &cli->err, &cli->detail);
		kl_cli_error(cli, rc, "cannot look whether the snapshots' data is there");
		goto out;
	}
	if (cli->json)
		printf("]\n");
	else if (!cli->quiet)
		printf("%zu snapshots\n", shown);
	for (size_t i = 0; i < l.n_damaged; i++) {
		char hex[2 * KL_ID_LEN + 1];

		kl_id_hex(&l.damaged[i], hex);
		fprintf(stderr,
			"keel: snapshots: snapshot %.8s is damaged and was skipped "
			"(file snapshots/%s)\n",
			hex, hex);
	}
	if (incomplete)
		kl_cli_warn(cli,
			    "%zu snapshot%s data that is not in the repository: %s would restore "
			    "only in part ('keel check' says more)",
			    incomplete, incomplete == 1 ? " refers to" : "s refer to",
			    incomplete == 1 ? "it" : "they");
	if (l.n_damaged)
		rc = -KL_ECORRUPT;
out:
	kl_presence_release(&pr);
	kl_snapshot_list_release(&l);
	kl_snap_filter_release(&f);
	return rc;
}
