#include <pwd.h>

#include "cli.h"

static const char usage[] =
	"usage: keel key list\n"
	"       keel key add [--new-password-file FILE]\n"
	"       keel key remove ID\n"
	"       keel key passwd [--new-password-file FILE]\n"
	"\n"
	"Manage the passwords that open the repository. Each password has its own\n"
	"key file; all of them unlock the same master key. The new password comes\n"
	"from --new-password-file, the environment variable KEEL_NEW_PASSWORD or a\n"
	"prompt. 'passwd' adds a key for the new password and removes the one that\n"
	"opened the repository. The last key cannot be removed.\n";

struct key_entry {
	char name[2 * KL_ID_LEN + 1];
	struct kl_keyfile_info info;
	bool readable;
};

struct key_list {
	struct kl_repo *r;
	struct key_entry *v;
	size_t n;
};

static int collect(const char *name, uint64_t size, void *ud)
{
	struct key_list *l = ud;
	_cleanup_buf_ struct kl_buf kf = KL_BUF_INIT(1u << 20);
	struct key_entry *v;
	int rc;

	if (strlen(name) != 2 * KL_ID_LEN)
		return 0;
	v = kl_realloc(l->v, (l->n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	l->v = v;
	v = &l->v[l->n++];
	memset(v, 0, sizeof(*v));
	memcpy(v->name, name, sizeof(v->name));
	rc = kl_repo_get_raw(l->r, KL_OBJ_KEY, name, 0, 0, &kf);
	if (rc >= 0 && kl_keyfile_info(kf.data, kf.len, &v->info) >= 0)
		v->readable = true;
	return 0;
}

static int list_keys(struct kl_repo *r, struct key_list *l)
{
	memset(l, 0, sizeof(*l));
	l->r = r;
	return kl_repo_list(r, KL_OBJ_KEY, collect, l);
}

static int add_key(struct kl_cli *cli, const char *file, struct kl_id *ret)
{
	struct kl_pass *pass = NULL;
	struct kl_kdf_params kdf = {KL_KDF_OPS_DEFAULT, KL_KDF_MEM_DEFAULT};
	char host[256], user[64];
	struct passwd *pw;
	struct key_list l;
	int rc;

	/* a new key uses the KDF strength of the key in use, so tests and weak devices stay fast */
	if (list_keys(cli->repo, &l) >= 0) {
		char cur[2 * KL_ID_LEN + 1];

		kl_id_hex(kl_repo_key_id(cli->repo), cur);
		for (size_t i = 0; i < l.n; i++)
			if (!strcmp(l.v[i].name, cur) && l.v[i].readable)
				kdf = l.v[i].info.kdf;
	}
	kl_free(l.v);
	rc = kl_cli_read_new_password(cli, file, &pass);
	if (rc < 0) {
		kl_cli_error(cli, rc, "cannot read the new password");
		return rc;
	}
	if (gethostname(host, sizeof(host)) < 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = 0;
	pw = getpwuid(geteuid());
	snprintf(user, sizeof(user), "%s", pw ? pw->pw_name : "?");
	rc = kl_repo_add_key(cli->repo, pass, &kdf, host, user, ret);
	kl_pass_free(pass);
	if (rc < 0) {
		kl_repo_take_err(cli->repo, &cli->err, &cli->detail);
		kl_cli_error(cli, rc, "cannot add the key");
	}
	return rc;
}

static int remove_key(struct kl_cli *cli, const char *prefix, bool allow_current)
{
	struct key_list l;
	char cur[2 * KL_ID_LEN + 1];
	const char *match = NULL;
	size_t n = strlen(prefix), found = 0;
	int rc;

	rc = list_keys(cli->repo, &l);
	if (rc < 0)
		goto out;
	kl_id_hex(kl_repo_key_id(cli->repo), cur);
	for (size_t i = 0; i < l.n; i++)
		if (n && !strncmp(l.v[i].name, prefix, n)) {
			match = l.v[i].name;
			found++;
		}
	if (found != 1) {
		rc = found ? kl_cli_usage_error(cli, "key id '%s' is ambiguous", prefix)
			   : -KL_ENOTFOUND;
		if (!found)
			kl_cli_error(cli, rc, "no key '%s'", prefix);
		goto out;
	}
	if (l.n == 1) {
		rc = kl_cli_usage_error(cli,
					"refusing to remove the last key: the repository would "
					"become unreadable");
		goto out;
	}
	if (!allow_current && !strcmp(match, cur)) {
		rc = kl_cli_usage_error(cli,
					"refusing to remove the key in use; open the repository "
					"with another password to remove it");
		goto out;
	}
	rc = kl_repo_delete(cli->repo, KL_OBJ_KEY, match);
	if (rc < 0)
		kl_cli_error(cli, rc, "cannot remove key %.8s", match);
	else if (!cli->quiet && !cli->json)
		printf("removed key %.8s\n", match);
out:
	kl_free(l.v);
	return rc;
}

int cmd_key(int argc, char **argv, struct kl_cli *cli)
{
	static const struct option opts[] = {
		KL_GLOBAL_OPTS,
		{"new-password-file", required_argument, NULL, 1},
		{NULL, 0, NULL, 0},
	};
	const char *newfile = NULL, *verb;
	struct kl_id id;
	int c, rc;

	while ((c = getopt_long(argc, argv, ":" KL_GLOBAL_SHORT, opts, NULL)) != -1) {
		if (c == 1) {
			newfile = optarg;
			continue;
		}
		rc = kl_cli_default_opt(cli, c, usage, argv);
		if (rc)
			return rc;
	}
	if (optind >= argc)
		return kl_cli_usage_error(cli, "expected list, add, remove or passwd");
	verb = argv[optind];
	if (strcmp(verb, "list") && strcmp(verb, "add") && strcmp(verb, "remove") &&
	    strcmp(verb, "passwd"))
		return kl_cli_usage_error(cli, "unknown key command '%s'", verb);
	if (!strcmp(verb, "remove") ? argc - optind != 2 : argc - optind != 1)
		return kl_cli_usage_error(cli, "wrong number of arguments for 'key %s'", verb);
	rc = kl_cli_open(cli);
	if (rc < 0)
		return rc;
	if (!strcmp(verb, "list")) {
		struct key_list l;
		char cur[2 * KL_ID_LEN + 1];

		rc = list_keys(cli->repo, &l);
		if (rc < 0) {
			kl_free(l.v);
			kl_cli_error(cli, rc, "cannot list keys");
			return rc;
		}
		kl_id_hex(kl_repo_key_id(cli->repo), cur);
		if (cli->json)
			putchar('[');
		else if (!cli->quiet)
			printf(" ID        User       Host                 Created\n");
		for (size_t i = 0; i < l.n; i++) {
			const struct key_entry *k = &l.v[i];
			char when[40] = "?";

			if (k->readable)
				kl_time_format_local(k->info.created_ns, when);
			if (cli->json) {
				printf("%s{\"id\":\"%s\",\"current\":%s,\"user\":", i ? "," : "",
				       k->name, strcmp(k->name, cur) ? "false" : "true");
				kl_json_cstr(stdout, k->readable ? k->info.user : NULL);
				printf(",\"host\":");
				kl_json_cstr(stdout, k->readable ? k->info.host : NULL);
				printf(",\"created\":");
				if (k->readable)
					kl_json_time(stdout, k->info.created_ns);
				else
					printf("null");
				printf("}");
			} else {
				printf("%c%.8s  %-10s %-20s %s\n", strcmp(k->name, cur) ? ' ' : '*',
				       k->name, k->readable ? k->info.user : "?",
				       k->readable ? k->info.host : "?", when);
			}
		}
		if (cli->json)
			printf("]\n");
		kl_free(l.v);
		return 0;
	}
	if (!strcmp(verb, "remove"))
		return remove_key(cli, argv[optind + 1], false);
	rc = add_key(cli, newfile, &id);
	if (rc < 0)
		return rc;
	if (!strcmp(verb, "add")) {
		char hex[2 * KL_ID_LEN + 1];

		kl_id_hex(&id, hex);
		if (cli->json)
			printf("{\"message_type\":\"key_added\",\"id\":\"%s\"}\n", hex);
		else if (!cli->quiet)
			printf("added key %.8s\n", hex);
		return 0;
	}
	/* passwd: the new key is durable; now remove the old one */
	{
		char old[2 * KL_ID_LEN + 1];

		kl_id_hex(kl_repo_key_id(cli->repo), old);
		rc = remove_key(cli, old, true);
		if (rc >= 0 && !cli->quiet && !cli->json)
			printf("password changed\n");
	}
	return rc;
}
