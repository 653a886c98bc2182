#include "cli.h"
#include "keel/query.h"

static const char usage[] =
	"usage: keel tag [OPTIONS] [SNAPSHOT...]\n"
	"\n"
	"Add, remove or set the tags of snapshots: those named (an id prefix or\n"
	"'latest'), or without SNAPSHOT every snapshot the filters let through.\n"
	"A snapshot object is never changed: keel writes a copy with the new tags\n"
	"(a new id, everything else as it was, naming the old one as the snapshot\n"
	"it replaces), then deletes the old one. A copy left beside its old\n"
	"snapshot by a tag that was stopped is finished by the next tag.\n"
	"\n"
	"Options:\n"
	"      --add TAG      add TAG ('a,b': both; repeatable)\n"
	"      --remove TAG   remove TAG (repeatable)\n"
	"      --set TAG      replace all tags by these (repeatable; --set '' clears)\n"
	"      --host HOST    only snapshots of this host\n"
	"      --tag TAG      only snapshots with this tag ('a,b': both)\n"
	"      --path PATH    only snapshots of this source path\n"
	"\n"
	"Refused on an append-only repository (exit 16): the old snapshot could not\n"
	"be deleted.\n";

enum { OPT_ADD = 1, OPT_REMOVE, OPT_SET };

/* "a,b" adds a and b, as restic does; empty names are skipped */
static int push_tags(char ***v, size_t *n, const char *arg)
{
	char *dup = kl_strdup(arg), *save = NULL;
	int rc = 0;

	if (!dup)
		return -ENOMEM;
	for (char *t = strtok_r(dup, ",", &save); t && rc >= 0; t = strtok_r(NULL, ",", &save))
		rc = kl_strv_push(v, n, t);
	kl_free(dup);
	return rc;
}

static void tell_leftover(const struct kl_id *old, const struct kl_id *by, int err, void *ud)
{
	struct kl_cli *cli = ud;
	char a[2 * KL_ID_LEN + 1], b[2 * KL_ID_LEN + 1];

	kl_id_hex(old, a);
	kl_id_hex(by, b);
	if (err)
		kl_cli_warn(cli,
			    "snapshot %.8s, replaced by %.8s, is kept until its Object Lock "
			    "retention ends (%s)",
			    a, b, kl_strerror(err));
	else if (!cli->quiet)
		fprintf(stderr,
			"keel: tag: removed snapshot %.8s, left by an interrupted tag: %.8s "
			"replaces it\n",
			a, b);
}

static int parse(int argc, char **argv, struct kl_cli *cli, struct kl_tag_change *c,
		 struct kl_snap_filter *f)
{
	static const struct option opts[] = {
		KL_GLOBAL_OPTS,
		KL_SNAP_FILTER_OPTS,
		{"add", required_argument, NULL, OPT_ADD},
		{"remove", required_argument, NULL, OPT_REMOVE},
		{"set", required_argument, NULL, OPT_SET},
		{NULL, 0, NULL, 0},
	};
	int ch, rc;

	while ((ch = getopt_long(argc, argv, ":" KL_GLOBAL_SHORT, opts, NULL)) != -1) {
		rc = 0;
		if (ch == OPT_ADD)
			rc = push_tags(&c->add, &c->n_add, optarg);
		else if (ch == OPT_REMOVE)
			rc = push_tags(&c->remove, &c->n_remove, optarg);
		else if (ch == OPT_SET) {
			c->set_given = true;
			rc = push_tags(&c->set, &c->n_set, optarg);
		} else {
			rc = kl_cli_snap_filter_opt(f, ch, optarg);
			if (rc > 0)
				continue;
			if (rc == 0)
				rc = kl_cli_default_opt(cli, ch, usage, argv);
		}
		if (rc)
			return rc;
	}
	if (!c->set_given && !c->n_add && !c->n_remove)
		return kl_cli_usage_error(cli, "nothing to do: give --add, --remove or --set");
	if (c->set_given && (c->n_add || c->n_remove))
		return kl_cli_usage_error(cli, "--set cannot be given with --add or --remove");
	return 0;
}

static int retag_all(struct kl_cli *cli, struct kl_snapshot_list *l, const struct kl_tag_change *c)
{
	size_t changed = 0, retained = 0;
	int rc = 0;

	if (cli->json)
		printf("{\"changed\":[");
	for (size_t i = 0; i < l->n && rc >= 0; i++) {
		struct kl_snapshot_ref *s = &l->v[i];
		char a[2 * KL_ID_LEN + 1], b[2 * KL_ID_LEN + 1];
		struct kl_id nid;

		rc = kl_tags_apply(c, &s->s);
		if (rc <= 0)
			continue;
		rc = kl_snapshot_retag(cli->repo, &s->id, &s->s, &nid);
		kl_id_hex(&s->id, a);
		if (rc == -KL_EOBJLOCKED) {
			/* the copy is written; Object Lock keeps the old one (as in forget) */
			kl_repo_clear_err(cli->repo);
			kl_cli_warn(cli,
				    "snapshot %.8s is kept until its Object Lock retention ends",
				    a);
			retained++;
			rc = 0;
		}
		if (rc < 0) {
			kl_repo_take_err(cli->repo, &cli->err, &cli->detail);
			kl_cli_error(cli, rc, "cannot change the tags of snapshot %.8s", a);
			break;
		}
		kl_id_hex(&s->id, a);
		kl_id_hex(&nid, b);
		if (cli->json) {
			printf("%s{\"old\":\"%s\",\"new\":\"%s\",\"tags\":[", changed ? "," : "", a,
			       b);
			for (size_t k = 0; k < s->s.n_tags; k++) {
				if (k)
					putchar(',');
				kl_json_cstr(stdout, s->s.tags[k]);
			}
			printf("]}");
		} else if (!cli->quiet) {
			printf("snapshot %.8s is now %.8s, tags:", a, b);
			for (size_t k = 0; k < s->s.n_tags; k++)
				printf("%s%s", k ? "," : " ", s->s.tags[k]);
			putchar('\n');
		}
		changed++;
	}
	if (rc == -ENOMEM)
		kl_cli_error(cli, rc, "cannot change tags");
	if (cli->json)
		printf("],\"unchanged\":%zu}\n", l->n - changed);
	else if (!cli->quiet && rc >= 0)
		printf("%zu snapshot%s changed, %zu unchanged\n", changed, changed == 1 ? "" : "s",
		       l->n - changed);
	if (rc >= 0 && retained) {
		rc = -KL_EOBJLOCKED;
		kl_cli_error(cli, rc, "%zu old snapshot%s could not be deleted yet", retained,
			     retained == 1 ? "" : "s");
	}
	return rc < 0 ? rc : 0;
}

int cmd_tag(int argc, char **argv, struct kl_cli *cli)
{
	struct kl_tag_change c = {0};
	struct kl_snap_filter f = {0};
	struct kl_snapshot_list l = {0};
	int rc;

	rc = parse(argc, argv, cli, &c, &f);
	if (rc)
		goto out;
	rc = kl_cli_open(cli);
	if (rc < 0)
		goto out;
	if (kl_repo_append_only(cli->repo)) {
		rc = -KL_EAPPENDONLY;
		kl_cli_error(cli, rc,
			     "the repository is append-only: tags cannot change (the old "
			     "snapshot would have to be deleted)");
		goto out;
	}
	rc = kl_repo_list_snapshots(cli->repo, &l);
	if (rc >= 0)
		rc = kl_snapshots_finish_retag(cli->repo, &l, tell_leftover, cli);
	if (rc < 0) {
		kl_repo_take_err(cli->repo, &cli->err, &cli->detail);
		kl_cli_error(cli, rc, "cannot list snapshots");
		goto out;
	}
	/* listed again: finishing a killed tag may have deleted some */
	kl_snapshot_list_release(&l);
	rc = kl_cli_pick_snapshots(cli, argv + optind, (size_t)(argc - optind), &f, &l);
	if (rc >= 0)
		rc = retag_all(cli, &l, &c);
out:
	kl_strv_free(c.add, c.n_add);
	kl_strv_free(c.remove, c.n_remove);
	kl_strv_free(c.set, c.n_set);
	kl_snapshot_list_release(&l);
	kl_snap_filter_release(&f);
	return rc;
}
