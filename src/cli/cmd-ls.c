#include <grp.h>
#include <time.h>

#include "cli.h"

static const char usage[] =
	"usage: keel ls [OPTIONS] SNAPSHOT [PATH...]\n"
	"\n"
	"List the files of a snapshot (all of them, or those below each PATH).\n"
	"SNAPSHOT is an id prefix or 'latest'.\n"
	"\n"
	"Options:\n"
	"  -l, --long        mode, owner, size and time as ls -l shows them\n"
	"      --host HOST   with 'latest': newest snapshot of this host\n"
	"      --tag TAG     with 'latest': newest snapshot with this tag\n"
	"      --path PATH   with 'latest': newest snapshot of this path\n"
	"\n"
	"With --json, prints one JSON object per line: the snapshot, then each node.\n";

const char *kl_node_type_name(int type)
{
	static const char *const names[] = {"?",    "file",    "dir",	   "symlink",
					    "fifo", "chardev", "blockdev", "socket"};

	return type >= 1 && type <= 7 ? names[type] : "?";
}

void kl_json_node(FILE *f, const char *path, const struct kl_node *n)
{
	const char *slash = strrchr(path, '/');

	fprintf(f, "{\"message_type\":\"node\",\"name\":");
	kl_json_str(f, n->name, n->name_len);
	fprintf(f, ",\"type\":\"%s\",\"path\":", kl_node_type_name(n->type));
	kl_json_cstr(f, path);
	(void)slash;
	fprintf(f, ",\"mode\":%u,\"uid\":%u,\"gid\":%u,\"user\":", n->mode, n->uid, n->gid);
	kl_json_cstr(f, n->user);
	fprintf(f, ",\"group\":");
	kl_json_cstr(f, n->group);
	fprintf(f, ",\"size\":%llu,\"mtime\":", (unsigned long long)n->size);
	kl_json_time_sec(f, n->mtime_sec, n->mtime_nsec);
	fprintf(f, ",\"inode\":%llu,\"links\":%llu", (unsigned long long)n->inode,
		(unsigned long long)n->nlink);
	if (n->type == KL_NODE_SYMLINK) {
		fprintf(f, ",\"link_target\":");
		kl_json_str(f, n->link, n->link_len);
	}
	fprintf(f, "}\n");
}

static void mode_string(const struct kl_node *n, char out[11])
{
	static const char types[] = "?-dlpcbs";
	uint32_t m = n->mode;

	out[0] = types[n->type <= 7 ? n->type : 0];
	out[1] = m & 0400 ? 'r' : '-';
	out[2] = m & 0200 ? 'w' : '-';
	out[3] = m & 04000 ? (m & 0100 ? 's' : 'S') : (m & 0100 ? 'x' : '-');
	out[4] = m & 040 ? 'r' : '-';
	out[5] = m & 020 ? 'w' : '-';
	out[6] = m & 02000 ? (m & 010 ? 's' : 'S') : (m & 010 ? 'x' : '-');
	out[7] = m & 04 ? 'r' : '-';
	out[8] = m & 02 ? 'w' : '-';
	out[9] = m & 01000 ? (m & 01 ? 't' : 'T') : (m & 01 ? 'x' : '-');
	out[10] = 0;
}

struct ls_ctx {
	struct kl_cli *cli;
	bool long_fmt;
	char **prefixes;
	size_t n_prefixes;
	bool *found; /* per prefix: something at or below it is in the snapshot */
};

static bool under(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);

	while (n > 1 && prefix[n - 1] == '/')
		n--;
	if (n == 1 && prefix[0] == '/')
		return true;
	return !strncmp(path, prefix, n) && (path[n] == 0 || path[n] == '/');
}

static int print_node(const char *path, const struct kl_node *n, void *ud)
{
	struct ls_ctx *c = ud;

	if (c->n_prefixes) {
		bool keep = false, descend = false;

		for (size_t i = 0; i < c->n_prefixes; i++) {
			bool in = under(path, c->prefixes[i]);

			keep |= in;
			c->found[i] |= in;
			descend |= under(c->prefixes[i], path);
		}
		if (!keep)
			return descend ? 0 : 1;
	}
	if (c->cli->json) {
		kl_json_node(stdout, path, n);
	} else if (c->long_fmt) {
		char mode[11], when[40];

		mode_string(n, mode);
		kl_time_format_local_sec(n->mtime_sec, when);
		printf("%s %8s %8s %12llu %s ", mode, n->user ? n->user : "?",
		       n->group ? n->group : "?", (unsigned long long)n->size, when);
		fputs(path, stdout);
		if (n->type == KL_NODE_SYMLINK) {
			fputs(" -> ", stdout);
			fwrite(n->link, 1, n->link_len, stdout);
		}
		putchar('\n');
	} else {
		puts(path);
	}
	return kl_cli_output_error(); /* keel ls | head: stop when head does */
}

int cmd_ls(int argc, char **argv, struct kl_cli *cli)
{
	static const struct option opts[] = {
		KL_GLOBAL_OPTS,
		KL_SNAP_FILTER_OPTS,
		{"long", no_argument, NULL, 'l'},
		{NULL, 0, NULL, 0},
	};
	struct kl_snap_filter f = {0};
	struct kl_snapshot_ref snap = {0};
	struct ls_ctx ctx = {.cli = cli};
	int c, rc = 0;

	while ((c = getopt_long(argc, argv, ":" KL_GLOBAL_SHORT "l", opts, NULL)) != -1) {
		if (c == 'l') {
			ctx.long_fmt = true;
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
	if (optind >= argc) {
		rc = kl_cli_usage_error(cli, "no snapshot given");
		goto out;
	}
	ctx.prefixes = argv + optind + 1;
	ctx.n_prefixes = (size_t)(argc - optind - 1);
	ctx.found = kl_calloc(ctx.n_prefixes + 1, sizeof(*ctx.found));
	if (!ctx.found) {
		rc = -ENOMEM;
		goto out;
	}
	rc = kl_cli_open(cli);
	if (rc < 0)
		goto out;
	rc = kl_cli_find_snapshot(cli, argv[optind], &f, &snap, NULL);
	if (rc < 0)
		goto out;
	if (cli->json) {
		printf("{\"message_type\":\"snapshot\",\"id\":");
		kl_json_id(stdout, &snap.id);
		printf(",\"time\":");
		kl_json_time(stdout, snap.s.time_ns);
		printf(",\"hostname\":");
		kl_json_cstr(stdout, snap.s.host);
		kl_cli_image_info_json(&snap.s);
		printf("}\n");
	}
	rc = kl_walk(cli->repo, &snap.s.tree, "", print_node, &ctx);
	if (rc < 0) {
		kl_repo_take_err(cli->repo, &cli->err, &cli->detail);
		kl_cli_error(cli, rc, "cannot list the snapshot");
	}
	for (size_t i = 0; rc >= 0 && i < ctx.n_prefixes; i++) {
		char hex[2 * KL_ID_LEN + 1];

		if (ctx.found[i])
			continue;
		kl_id_hex(&snap.id, hex);
		rc = -KL_ENOTFOUND;
		kl_cli_error(cli, rc, "path '%s' is not in snapshot %.8s", ctx.prefixes[i], hex);
	}
out:
	kl_free(ctx.found);
	kl_snapshot_release(&snap.s);
	kl_snap_filter_release(&f);
	return rc;
}
