#include <time.h>

#include "cli.h"
#include "keel/forget.h"
#include "keel/query.h"

static const char usage[] =
	"usage: keel find [OPTIONS] PATTERN...\n"
	"\n"
	"List the snapshots that hold an entry matching a PATTERN, and the entries.\n"
	"A PATTERN without '/' is matched against each entry's name ('*', '?' and\n"
	"'[...]' as in the shell); one with '/' against the whole path, where '*'\n"
	"also matches '/', and one not starting with '/' matches any end of the\n"
	"path ('docs/*.pdf'). Quote patterns so that the shell leaves them alone.\n"
	"Only directory listings are read, never file data; a directory shared by\n"
	"several snapshots is read once.\n"
	"\n"
	"Options:\n"
	"  -i, --ignore-case    match upper and lower case alike\n"
	"  -s, --snapshot ID    look in this snapshot only (repeatable; 'latest' too)\n"
	"      --host HOST      only snapshots of this host\n"
	"      --tag TAG        only snapshots with this tag ('a,b': both)\n"
	"      --path PATH      only snapshots of this source path\n"
	"  -O, --oldest TIME    only entries modified at TIME or later\n"
	"  -N, --newest TIME    only entries modified at TIME or earlier\n"
	"                       (TIME: 'YYYY-MM-DD HH:MM:SS' local, or RFC 3339)\n"
	"  -l, --long           mode, owner, size and time as 'keel ls -l' shows them\n"
	"  -v, --verbose        say how many snapshots were searched, directories read\n"
	"\n"
	"Output: for each snapshot with matches, oldest first, a line naming it,\n"
	"then one line per entry: its time of modification, size and path.\n"
	"With --json, one JSON object per snapshot with matches (its id, time,\n"
	"host, paths, number of hits and the matching nodes).\n"
	"Exit status: 0 if something matched, 14 if nothing did.\n";

enum { OPT_OLDEST = 'O', OPT_NEWEST = 'N' };

struct find_ctx {
	struct kl_cli *cli;
	bool long_fmt;
	const struct kl_snapshot_ref *snap;
	uint64_t hits; /* in this snapshot */
	uint64_t snaps_with_hits;
};

static void snap_header(struct find_ctx *c)
{
	char hex[2 * KL_ID_LEN + 1], when[40];

	kl_id_hex(&c->snap->id, hex);
	kl_time_format_local(c->snap->s.time_ns, when);
	if (c->snaps_with_hits)
		putchar('\n');
	printf("snapshot %.8s of %s at %s:\n", hex, c->snap->s.host ? c->snap->s.host : "?", when);
}

static void json_start(struct find_ctx *c)
{
	printf("{\"message_type\":\"snapshot\",\"snapshot\":");
	kl_json_id(stdout, &c->snap->id);
	printf(",\"time\":");
	kl_json_time(stdout, c->snap->s.time_ns);
	printf(",\"hostname\":");
	kl_json_cstr(stdout, c->snap->s.host);
	printf(",\"paths\":[");
	for (size_t i = 0; i < c->snap->s.n_paths; i++) {
		if (i)
			putchar(',');
		kl_json_cstr(stdout, c->snap->s.paths[i]);
	}
	printf("],\"matches\":[");
}

static void json_match(const char *path, const struct kl_node *n, bool first)
{
	if (!first)
		putchar(',');
	fprintf(stdout, "{\"path\":");
	kl_json_cstr(stdout, path);
	printf(",\"type\":\"%s\",\"mode\":%u,\"uid\":%u,\"gid\":%u,\"user\":",
	       kl_node_type_name(n->type), n->mode, n->uid, n->gid);
	kl_json_cstr(stdout, n->user);
	printf(",\"group\":");
	kl_json_cstr(stdout, n->group);
	printf(",\"size\":%llu,\"mtime\":", (unsigned long long)n->size);
	kl_json_time_sec(stdout, n->mtime_sec, n->mtime_nsec);
	if (n->type == KL_NODE_SYMLINK) {
		printf(",\"link_target\":");
		kl_json_str(stdout, n->link, n->link_len);
	}
	putchar('}');
}

static void mode_string(const struct kl_node *n, char out[11])
{
	static const char types[] = "?-dlpcbs";
	static const char rwx[] = "rwxrwxrwx";
	uint32_t m = n->mode;

	out[0] = types[n->type <= 7 ? n->type : 0];
	for (int i = 0; i < 9; i++)
		out[1 + i] = m & (0400u >> i) ? rwx[i] : '-';
	if (m & 04000)
		out[3] = m & 0100 ? 's' : 'S';
	if (m & 02000)
		out[6] = m & 010 ? 's' : 'S';
	if (m & 01000)
		out[9] = m & 01 ? 't' : 'T';
	out[10] = 0;
}

static int on_match(const char *path, const struct kl_node *n, void *ud)
{
	struct find_ctx *c = ud;
	char when[40];

	if (c->cli->json) {
		if (!c->hits)
			json_start(c);
		json_match(path, n, !c->hits);
		c->hits++;
		return 0;
	}
	if (!c->hits)
		snap_header(c);
	c->hits++;
	kl_time_format_local_sec(n->mtime_sec, when);
	if (c->long_fmt) {
		char mode[11];

		mode_string(n, mode);
		printf("%s %8s %8s %12llu %s ", mode, n->user ? n->user : "?",
		       n->group ? n->group : "?", (unsigned long long)n->size, when);
	} else {
		printf("  %s %12llu ", when, (unsigned long long)n->size);
	}
	fputs(path, stdout);
	if (c->long_fmt && n->type == KL_NODE_SYMLINK) {
		fputs(" -> ", stdout);
		fwrite(n->link, 1, n->link_len, stdout);
	}
	putchar('\n');
	return 0;
}

static int parse_time(struct kl_cli *cli, const char *arg, int64_t *sec)
{
	int64_t ns;

	if (kl_time_parse(arg, &ns) < 0)
		return kl_cli_usage_error(cli, "invalid time '%s'", arg);
	*sec = kl_time_floor_sec(ns);
	return 0;
}

static int parse_opts(int argc, char **argv, struct kl_cli *cli, struct kl_find_opts *o,
		      struct kl_snap_filter *f, char ***ids, size_t *n_ids, bool *long_fmt)
{
	static const struct option opts[] = {
		KL_GLOBAL_OPTS,
		KL_SNAP_FILTER_OPTS,
		{"ignore-case", no_argument, NULL, 'i'},
		{"snapshot", required_argument, NULL, 's'},
		{"oldest", required_argument, NULL, OPT_OLDEST},
		{"newest", required_argument, NULL, OPT_NEWEST},
		{"long", no_argument, NULL, 'l'},
		{NULL, 0, NULL, 0},
	};
	int c, rc;

	while ((c = getopt_long(argc, argv, ":" KL_GLOBAL_SHORT "is:O:N:l", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			o->ignore_case = true;
			continue;
		case 'l':
			*long_fmt = true;
			continue;
		case 's':
			if (kl_strv_push(ids, n_ids, optarg) < 0)
				return -ENOMEM;
			continue;
		case OPT_OLDEST:
			o->has_oldest = true;
			rc = parse_time(cli, optarg, &o->oldest_sec);
			if (rc < 0)
				return rc;
			continue;
		case OPT_NEWEST:
			o->has_newest = true;
			rc = parse_time(cli, optarg, &o->newest_sec);
			if (rc < 0)
				return rc;
			continue;
		}
		rc = kl_cli_snap_filter_opt(f, c, optarg);
		if (rc > 0)
			continue;
		if (rc == 0)
			rc = kl_cli_default_opt(cli, c, usage, argv);
		if (rc)
			return rc;
	}
	if (optind >= argc)
		return kl_cli_usage_error(cli, "no pattern given");
	for (int i = optind; i < argc; i++)
		if (!argv[i][0])
			return kl_cli_usage_error(cli, "empty pattern");
	o->patterns = argv + optind;
	o->n_patterns = (size_t)(argc - optind);
	return 0;
}

int cmd_find(int argc, char **argv, struct kl_cli *cli)
{
	struct kl_find_opts o = {0};
	struct kl_snap_filter f = {0};
	struct kl_snapshot_list l = {0};
	_cleanup_(kl_finder_freep) struct kl_finder *finder = NULL;
	struct find_ctx ctx = {.cli = cli};
	char **ids = NULL;
	size_t n_ids = 0;
	int rc;

	rc = parse_opts(argc, argv, cli, &o, &f, &ids, &n_ids, &ctx.long_fmt);
	if (rc)
		goto out;
	rc = kl_cli_open(cli);
	if (rc < 0)
		goto out;
	rc = kl_cli_pick_snapshots(cli, ids, n_ids, &f, &l);
	if (rc < 0)
		goto out;
	rc = kl_finder_new(cli->repo, &o, &finder);
	for (size_t i = 0; i < l.n && rc >= 0; i++) {
		ctx.snap = &l.v[i];
		ctx.hits = 0;
		rc = kl_finder_run(finder, &l.v[i].s.tree, on_match, &ctx);
		if (rc < 0) {
			char hex[2 * KL_ID_LEN + 1];

			kl_id_hex(&l.v[i].id, hex);
			kl_repo_take_err(cli->repo, &cli->err, &cli->detail);
			kl_cli_error(cli, rc, "cannot search snapshot %.8s", hex);
			break;
		}
		if (ctx.hits && cli->json)
			printf("],\"hits\":%llu}\n", (unsigned long long)ctx.hits);
		ctx.snaps_with_hits += ctx.hits > 0;
	}
	if (rc >= 0 && cli->verbose && !cli->quiet)
		fprintf(stderr, "keel: find: %zu snapshot%s searched, %llu director%s read\n", l.n,
			l.n == 1 ? "" : "s", (unsigned long long)kl_finder_trees_read(finder),
			kl_finder_trees_read(finder) == 1 ? "y" : "ies");
	if (rc >= 0 && !ctx.snaps_with_hits) {
		if (!cli->quiet)
			fprintf(stderr, "keel: find: no match in %zu snapshot%s\n", l.n,
				l.n == 1 ? "" : "s");
		rc = -KL_ENOTFOUND;
	} else if (rc == -ENOMEM) {
		kl_cli_error(cli, rc, "cannot search");
	}
out:
	kl_strv_free(ids, n_ids);
	kl_snapshot_list_release(&l);
	kl_snap_filter_release(&f);
	return rc; /* KL_CLI_HELP too: keel generate asks for the usage text */
}
