#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <time.h>

#include "cli.h"

static const struct kl_cmd cmds[] = {
	{"init", cmd_init, 0, "create a repository", NULL},
	{"backup", cmd_backup, KL_CMD_REPO | KL_CMD_KEY | KL_CMD_LOCK | KL_CMD_INDEX,
	 "take a snapshot", NULL},
	{"snapshots", cmd_snapshots, KL_CMD_REPO | KL_CMD_KEY, "list snapshots", NULL},
	{"ls", cmd_ls, KL_CMD_REPO | KL_CMD_KEY | KL_CMD_INDEX, "list files in a snapshot", NULL},
	{"restore", cmd_restore,
	 KL_CMD_REPO | KL_CMD_KEY | KL_CMD_LOCK | KL_CMD_READONLY | KL_CMD_INDEX,
	 "restore a snapshot", NULL},
	{"diff", cmd_diff, KL_CMD_REPO | KL_CMD_KEY | KL_CMD_INDEX,
	 "show changes between snapshots", NULL},
	{"find", cmd_find, KL_CMD_REPO | KL_CMD_KEY | KL_CMD_INDEX,
	 "find files in snapshots by name or path", NULL},
	{"stats", cmd_stats, KL_CMD_REPO | KL_CMD_KEY | KL_CMD_INDEX,
	 "show the repository's size, deduplication and growth", NULL},
	{"dump", cmd_dump, KL_CMD_REPO | KL_CMD_KEY | KL_CMD_INDEX,
	 "write a file to stdout, a directory as a tar archive", NULL},
	{"mount", cmd_mount,
	 KL_CMD_REPO | KL_CMD_KEY | KL_CMD_LOCK | KL_CMD_READONLY | KL_CMD_INDEX,
	 "browse the snapshots as a read-only file system (FUSE)", NULL},
	{"image", cmd_image, KL_CMD_REPO | KL_CMD_KEY, "back up and restore disk and VM images",
	 NULL},
	{"check", cmd_check,
	 KL_CMD_REPO | KL_CMD_KEY | KL_CMD_LOCK | KL_CMD_READONLY | KL_CMD_INDEX | KL_CMD_NO_CACHE,
	 "verify the repository's integrity", NULL},
	{"forget", cmd_forget, KL_CMD_REPO | KL_CMD_KEY | KL_CMD_LOCK,
	 "remove snapshots by id or by policy", NULL},
	{"tag", cmd_tag, KL_CMD_REPO | KL_CMD_KEY | KL_CMD_LOCK, "add, remove or set snapshot tags",
	 NULL},
	{"prune", cmd_prune, KL_CMD_REPO | KL_CMD_KEY | KL_CMD_LOCK_PRUNE | KL_CMD_INDEX,
	 "free data that no snapshot uses", NULL},
	{"repair", cmd_repair, KL_CMD_REPO | KL_CMD_KEY | KL_CMD_NO_CACHE,
	 "rebuild the index, salvage damaged snapshots", NULL},
	{"serve", cmd_serve, 0, "serve a repository to a client over ssh (append-only too)", NULL},
	{"copy", cmd_copy, KL_CMD_REPO | KL_CMD_KEY | KL_CMD_LOCK | KL_CMD_INDEX,
	 "copy snapshots from another repository, re-encrypted", NULL},
	{"mirror", cmd_mirror, 0, "copy a repository to another store, without the key", NULL},
	{"unlock", cmd_unlock, KL_CMD_REPO | KL_CMD_KEY, "remove stale locks", NULL},
	{"key", cmd_key, KL_CMD_REPO | KL_CMD_KEY, "manage passwords (key files)", NULL},
	{"db", cmd_db, KL_CMD_REPO | KL_CMD_KEY, "back up and restore databases (PostgreSQL)",
	 NULL},
	{"daemon", cmd_daemon, 0, "run the jobs of a configuration file on their schedules", NULL},
	{"status", cmd_status, 0, "show each job's last run, RPO and next run", NULL},
	{"version", cmd_version, 0, "print the version", NULL},
	{"help", cmd_help, 0, "print the help of keel or of a command", NULL},
	{"generate", cmd_generate, 0, "write manual pages and shell completions", NULL},
	{NULL, NULL, 0, NULL, NULL},
};
const struct kl_cmd *const kl_cmd_table = cmds;

const struct kl_cmd *kl_cmd_find(const char *name)
{
	for (const struct kl_cmd *c = cmds; c->name; c++)
		if (!strcmp(c->name, name))
			return c;
	return NULL;
}

int kl_exit_code(int r)
{
	if (r >= 0)
		return 0;
	switch (-r) {
	case KL_EUSAGE:
		return 2;
	case KL_EPARTIAL:
		return 3;
	case KL_ELOCKLEFT:
		return 4;
	case KL_ETARGET:
		return 5;
	case KL_EDBGAP:
		return 24;
	case KL_ENOREPO:
		return 10;
	case KL_EEXIST_REPO:
		return 1;
	case KL_ELOCKED:
		return 11;
	case KL_EBADPASS:
		return 12;
	case KL_ECORRUPT:
	case KL_ECHECK:
	case KL_EVERSION:
		return 13;
	case KL_ENOTFOUND:
		return 14;
	case KL_EVERIFY:
		return 15;
	case KL_EAPPENDONLY:
	case KL_EOBJLOCKED:
		return 16;
	case EIO:
	case EACCES:
	case EPERM:
	case EROFS:
	case EMFILE:
	case ENFILE:
		return 20;
	case ENOSPC:
	case EDQUOT:
		return 21;
	case KL_EDBCONNECT:
		return 22;
	case KL_EDBSERVER:
		return 23;
	case KL_EINTERRUPTED:
		return 130;
	case KL_EOUTCLOSED:
		return 141; /* as a process that SIGPIPE ended: the shell's 128 + 13 */
	default:
		return 1;
	}
}

/*
 * One message to stderr: "keel: <cmd>: [warning: ]msg" as text, or under
 * --json one object a line, in restic's spirit:
 * {"message_type":"error","code":<exit code>,"message":"..."}.
 */
void kl_cli_emit(struct kl_cli *cli, bool error, int r, const char *msg)
{
	if (cli->json) {
		fprintf(stderr, "{\"message_type\":\"%s\"", error ? "error" : "warning");
		if (error)
			fprintf(stderr, ",\"code\":%d", kl_exit_code(r));
		if (cli->cmd_name)
			fprintf(stderr, ",\"command\":\"%s\"", cli->cmd_name);
		fputs(",\"message\":", stderr);
		kl_json_cstr(stderr, msg);
		fputs("}\n", stderr);
		return;
	}
	fputs("keel: ", stderr);
	if (cli->cmd_name)
		fprintf(stderr, "%s: ", cli->cmd_name);
	fprintf(stderr, "%s%s\n", error ? "" : "warning: ", msg);
}

void kl_cli_error(struct kl_cli *cli, int r, const char *fmt, ...)
{
	char msg[4096];
	size_t o;
	va_list ap;

	kl_repo_take_err(cli->repo, NULL, &cli->detail);
	if (kl_cli_interrupted(cli) || r == -KL_EOUTCLOSED ||
	    (r == -EPIPE && kl_cli_stdout_closed())) {
		/*
		 * what an interrupt made fail is said once, by main(); a closed
		 * output (keel ls | head) is no error to the user, as for cat
		 */
		kl_err_clear(&cli->err);
		kl_err_clear(&cli->detail);
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	o = strlen(msg);
	if (cli->err.code && cli->err.msg[0] && o < sizeof(msg))
		o += (size_t)snprintf(msg + o, sizeof(msg) - o, ": %s", cli->err.msg);
	if (cli->detail.code && cli->detail.msg[0] && o < sizeof(msg))
		o += (size_t)snprintf(msg + o, sizeof(msg) - o, ": %s", cli->detail.msg);
	/*
	 * the storage's word for this very error says more than its errno
	 * text, and "invalid usage" adds nothing to a message (nor "command
	 * failed" to one that says how)
	 */
	if (r < 0 && cli->detail.code != r && r != -KL_EUSAGE &&
	    !(r == -KL_ECMD && cli->err.code == r) &&
	    (!cli->err.code || cli->err.code != r || !strstr(cli->err.msg, kl_strerror(r))) &&
	    o < sizeof(msg))
		snprintf(msg + o, sizeof(msg) - o, ": %s", kl_strerror(r));
	kl_cli_emit(cli, true, r, msg);
	kl_err_clear(&cli->err);
	kl_err_clear(&cli->detail);
}

void kl_cli_warn(struct kl_cli *cli, const char *fmt, ...)
{
	char msg[4096];
	va_list ap;

	if (cli->quiet)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	kl_cli_emit(cli, false, 0, msg);
}

bool kl_cli_stdout_closed(void)
{
	struct pollfd p = {.fd = STDOUT_FILENO};

	/* a pipe's write end polls POLLERR once no reader is left */
	return poll(&p, 1, 0) == 1 && (p.revents & POLLERR);
}

int kl_cli_output_error(void)
{
	if (!ferror(stdout))
		return 0;
	return errno == EPIPE ? -KL_EOUTCLOSED : errno > 0 ? -errno : -EIO;
}

int kl_cli_global_opt(struct kl_cli *cli, int c, const char *arg)
{
	switch (c) {
	case 'r':
		cli->repo_location = arg;
		return 1;
	case KL_OPT_PASSWORD_FILE:
		cli->password_file_opt = arg;
		return 1;
	case KL_OPT_PASSWORD_COMMAND:
		cli->password_command_opt = arg;
		return 1;
	case KL_OPT_JSON:
		cli->json = true;
		cli->progress = false;
		return 1;
	case 'q':
		cli->quiet = true;
		cli->progress = false;
		return 1;
	case 'v':
		cli->verbose++;
		return 1;
	case KL_OPT_NO_PROGRESS:
		cli->progress = false;
		return 1;
	/* the backend reads these where the repository is opened (docs/S3.md) */
	case KL_OPT_CACHE_DIR:
		setenv("KEEL_CACHE_DIR", arg, 1);
		return 1;
	case KL_OPT_NO_CACHE:
		setenv("KEEL_NO_CACHE", "1", 1);
		return 1;
	}
	return 0;
}

int kl_cli_usage_error(struct kl_cli *cli, const char *fmt, ...)
{
	char msg[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (cli->json) {
		kl_cli_emit(cli, true, -KL_EUSAGE, msg);
		return -KL_EUSAGE;
	}
	fprintf(stderr, "keel: %s: %s\nRun 'keel %s --help' for usage.\n",
		cli->cmd_name ? cli->cmd_name : "", msg, cli->cmd_name ? cli->cmd_name : "");
	return -KL_EUSAGE;
}

/* ---- JSON ---- */

static size_t utf8_len(const uint8_t *p, size_t n)
{
	uint32_t cp;
	size_t len;

	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xe0) == 0xc0) {
		len = 2;
		cp = p[0] & 0x1f;
	} else if ((p[0] & 0xf0) == 0xe0) {
		len = 3;
		cp = p[0] & 0x0f;
	} else if ((p[0] & 0xf8) == 0xf0) {
		len = 4;
		cp = p[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/*
 * Names are arbitrary bytes. Valid UTF-8 is written as is; each byte that
 * is not part of valid UTF-8 becomes the lone surrogate U+DC80..U+DCFF
 * (Python's "surrogateescape"), so a JSON reader can get the exact bytes
 * back.
 */
void kl_json_str(FILE *f, const void *s, size_t n)
{
	const uint8_t *p = s;

	fputc('"', f);
	for (size_t i = 0; i < n;) {
		size_t l = utf8_len(p + i, n - i);

		if (l == 0) {
			fprintf(f, "\\udc%02x", p[i]);
			i++;
			continue;
		}
		if (l == 1) {
			uint8_t c = p[i];

			if (c == '"' || c == '\\')
				fprintf(f, "\\%c", c);
			else if (c == '\n')
				fputs("\\n", f);
			else if (c == '\t')
				fputs("\\t", f);
			else if (c < 0x20 || c == 0x7f)
				fprintf(f, "\\u%04x", c);
			else
				fputc(c, f);
		} else {
			fwrite(p + i, 1, l, f);
		}
		i += l;
	}
	fputc('"', f);
}

void kl_json_cstr(FILE *f, const char *s)
{
	if (!s)
		fputs("null", f);
	else
		kl_json_str(f, s, strlen(s));
}

void kl_json_id(FILE *f, const struct kl_id *id)
{
	char hex[2 * KL_ID_LEN + 1];

	kl_id_hex(id, hex);
	fprintf(f, "\"%s\"", hex);
}

void kl_json_time_sec(FILE *f, int64_t sec, uint32_t nsec)
{
	char buf[40];
	time_t t = (time_t)sec;
	struct tm tm;

	if (nsec >= KL_NSEC_PER_SEC || !gmtime_r(&t, &tm)) {
		fputs("null", f);
		return;
	}
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(f, "\"%s.%09uZ\"", buf, nsec);
}

void kl_json_time(FILE *f, int64_t ns)
{
	int64_t sec = kl_time_floor_sec(ns);

	kl_json_time_sec(f, sec, (uint32_t)(ns - sec * KL_NSEC_PER_SEC));
}

void kl_print_bytes(char *out, size_t n, uint64_t bytes)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	double v = (double)bytes;
	int u = 0;

	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(out, n, "%llu B", (unsigned long long)bytes);
	else
		snprintf(out, n, "%.3g %s", v, units[u]);
}

int kl_strv_push(char ***v, size_t *n, const char *s)
{
	char **nv = kl_realloc(*v, (*n + 1) * sizeof(**v));

	if (!nv)
		return -ENOMEM;
	*v = nv;
	nv[*n] = kl_strdup(s);
	if (!nv[*n])
		return -ENOMEM;
	(*n)++;
	return 0;
}

void kl_strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		kl_free(v[i]);
	kl_free(v);
}

int kl_cli_snap_filter_opt(struct kl_snap_filter *f, int c, const char *arg)
{
	switch (c) {
	case 0x1101:
		return kl_strv_push(&f->hosts, &f->n_hosts, arg) < 0 ? -ENOMEM : 1;
	case 0x1102:
		/* "a,b" means both tags, and each --tag is one more choice, as in restic */
		return kl_strv_push(&f->tags, &f->n_tags, arg) < 0 ? -ENOMEM : 1;
	case 0x1103: {
		/* "/srv/" is the path "/srv" a backup records */
		size_t n = strlen(arg);
		char *p;
		int rc;

		while (n > 1 && arg[n - 1] == '/')
			n--;
		p = kl_strndup(arg, n);
		if (!p)
			return -ENOMEM;
		rc = kl_strv_push(&f->paths, &f->n_paths, p);
		kl_free(p);
		return rc < 0 ? -ENOMEM : 1;
	}
	}
	return 0;
}

void kl_snap_filter_release(struct kl_snap_filter *f)
{
	kl_strv_free(f->hosts, f->n_hosts);
	kl_strv_free(f->tags, f->n_tags);
	kl_strv_free(f->paths, f->n_paths);
	memset(f, 0, sizeof(*f));
}

int kl_cli_default_opt(struct kl_cli *cli, int c, const char *usage, char **argv)
{
	if (c == 'h') {
		if (cli->want_help_text)
			cli->help_text = usage;
		else
			fputs(usage, stdout);
		return KL_CLI_HELP;
	}
	if (kl_cli_global_opt(cli, c, optarg))
		return 0;
	if (c == ':')
		return kl_cli_usage_error(cli, "option '%s' needs a value", argv[optind - 1]);
	if (optopt && optopt < 256)
		return kl_cli_usage_error(cli, "unknown option '-%c'", optopt);
	return kl_cli_unknown_option(cli, argv[optind - 1], usage);
}

static int open_locked(struct kl_cli *cli, struct kl_repo *r);

int kl_cli_open(struct kl_cli *cli)
{
	unsigned flags = cli->cmd_flags;
	_cleanup_(kl_repo_freep) struct kl_repo *r = NULL;
	struct kl_pass *pass = NULL;
	int rc;

	if (!cli->repo_location || !*cli->repo_location) {
		kl_cli_error(cli, -KL_EUSAGE, "no repository given: use -r or KEEL_REPOSITORY");
		return -KL_EUSAGE;
	}
	/* what check and repair judge must be the storage's bytes, not a copy */
	if (flags & KL_CMD_NO_CACHE)
		setenv("KEEL_NO_CACHE", "1", 1);
	rc = kl_repo_open_err(cli->repo_location, &cli->detail, &r);
	if (rc < 0) {
		kl_cli_error(cli, rc, "cannot open repository '%s'", cli->repo_location);
		return rc;
	}
	if (flags & KL_CMD_KEY) {
		rc = kl_cli_read_password(cli, false, &pass);
		if (rc < 0) {
			kl_cli_error(cli, rc, "cannot read the password");
			return rc;
		}
		rc = kl_repo_unlock(r, pass);
		if (rc >= 0 && cli->keep_pass)
			*cli->keep_pass = KL_TAKE_PTR(pass);
		kl_pass_free(pass);
		if (rc < 0) {
			kl_repo_take_err(r, &cli->err, &cli->detail);
			/* which password was wrong: the file in a profile, or the one typed */
			if (rc == -KL_EBADPASS && !cli->err.code && cli->pass_source[0])
				kl_fail(&cli->err, rc, "no key opens with the password from %s",
					cli->pass_source);
			kl_cli_error(cli, rc, "cannot open repository '%s'", cli->repo_location);
			return rc;
		}
	}
	rc = open_locked(cli, r);
	if (rc < 0) {
		kl_cli_signals_watch(cli, NULL); /* r is freed on return */
		return rc;
	}
	cli->repo = KL_TAKE_PTR(r);
	return 0;
}

/* Locks r (a signal now cancels instead of exiting: signals.c) and loads the index. */
static int open_locked(struct kl_cli *cli, struct kl_repo *r)
{
	unsigned flags = cli->cmd_flags;
	int rc;

	if (flags & (KL_CMD_LOCK | KL_CMD_LOCK_PRUNE | KL_CMD_LOCK_EXCL)) {
		enum kl_lock_kind kind = flags & KL_CMD_LOCK_EXCL    ? KL_LOCK_EXCLUSIVE
					 : flags & KL_CMD_LOCK_PRUNE ? KL_LOCK_PRUNE
								     : KL_LOCK_SHARED;

		kl_cli_signals_watch(cli, r);
		rc = kl_repo_lock(r, kind, cli->cmd_name);
		if (rc < 0 && (flags & KL_CMD_READONLY) &&
		    (rc == -EACCES || rc == -EROFS || rc == -EPERM || rc == -ENOSPC ||
		     rc == -EDQUOT)) {
			/*
			 * Reading needs no lock where nothing can be deleted anyway
			 * (read-only storage), nor where nothing can be written (a
			 * full disk or bucket): there a check is what the user needs.
			 */
			kl_cli_warn(cli, "cannot lock the repository (%s): going on without a lock",
				    kl_strerror(rc));
			kl_repo_clear_err(r);
			rc = 0;
		}
		if (rc < 0) {
			kl_repo_take_err(r, &cli->err, &cli->detail);
			kl_cli_error(cli, rc, "cannot lock repository '%s'", cli->repo_location);
			return rc;
		}
	}
	if (flags & KL_CMD_INDEX) {
		rc = kl_repo_load_index(r);
		if (rc < 0) {
			kl_repo_take_err(r, &cli->err, &cli->detail);
			kl_cli_error(cli, rc, "cannot load the index");
			return rc;
		}
	}
	return kl_repo_cancelled(r);
}

int kl_cli_close(struct kl_cli *cli, int rc)
{
	int u;

	if (!cli->repo)
		return rc;
	u = kl_repo_unlock_repo(cli->repo);
	cli->lock_left = u < 0;
	if (u < 0 && kl_cli_interrupted(cli)) {
		kl_repo_clear_err(cli->repo); /* main() says it, in its one line */
	} else if (u < 0) {
		/* a leaked lock holds prune back on every host until it is stale: say so */
		kl_repo_take_err(cli->repo, &cli->err, &cli->detail);
		kl_cli_error(cli, u,
			     "%s, but its lock is left in the repository; it goes stale in 30 "
			     "minutes, or remove it with 'keel unlock' once no keel runs here",
			     rc >= 0 ? "the work is done" : "the command failed");
		if (rc >= 0)
			rc = -KL_ELOCKLEFT;
	}
	kl_cli_signals_watch(cli, NULL);
	kl_repo_free(cli->repo);
	cli->repo = NULL;
	return rc;
}
