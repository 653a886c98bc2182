/*
 * keel image serve: an image snapshot over NBD (docs/IMAGES.md, "Serving
 * an image"). nbdkit speaks the protocol and keel's plugin
 * (src/nbdkit/plugin.c) reads the repository; this process resolves the
 * snapshot, holds the repository's shared lock (so prune keeps every chunk
 * while it is served), hands the password to nbdkit through a pipe and
 * stops it on SIGINT or SIGTERM.
 */
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "cli.h"
#include "keel/fs.h"
#include "keel/image.h"

const char kl_cli_image_serve_usage[] =
	"usage: keel image serve [OPTIONS] SNAPSHOT[:IMAGE] --socket PATH\n"
	"       keel image serve [OPTIONS] SNAPSHOT[:IMAGE] --listen ADDR\n"
	"\n"
	"Export an image of a snapshot over NBD, read straight from the\n"
	"repository (nbdkit with keel's plugin), until SIGINT or SIGTERM.\n"
	"Read-only, or with --overlay writable: every write goes to FILE, a\n"
	"local copy-on-write file kept across restarts, and the repository is\n"
	"never written. 'keel image backup nbd+unix:///?socket=PATH' backs up\n"
	"what the export holds, overlay included.\n"
	"\n"
	"Options:\n"
	"      --socket PATH       listen on a Unix socket\n"
	"      --listen ADDR       listen on TCP: PORT, HOST:PORT or [IPV6]:PORT\n"
	"      --overlay FILE      writable, writes kept in FILE (made if missing)\n"
	"      --cache-size N      chunks kept in memory (default 128M)\n"
	"      --readahead N       chunks fetched ahead of a sequential reader\n"
	"                          (default 8; 0: none)\n"
	"      --fetchers N        threads fetching ahead (default 4)\n"
	"      --host HOST         with 'latest': newest snapshot of this host\n"
	"      --tag TAG           with 'latest': newest snapshot with this tag\n"
	"      --path PATH         with 'latest': newest snapshot of this source\n";

enum { OPT_SOCKET = 1, OPT_LISTEN, OPT_OVERLAY, OPT_CACHE, OPT_READAHEAD, OPT_FETCHERS };

struct serve {
	const char *socket, *listen, *overlay;
	uint64_t cache, readahead, fetchers;
	char host[256], port[16];
	char dir[256]; /* private: nbdkit's pid file, written once it listens */
	char uri[4200];
};

/* An absolute path for nbdkit (which may change directory). */
static char *absolute(const char *p)
{
	char cwd[4096];
	size_t n;
	char *s;

	if (*p == '/' || !getcwd(cwd, sizeof(cwd)))
		return kl_strdup(p);
	n = strlen(cwd) + strlen(p) + 2;
	s = kl_malloc(n);
	if (s)
		snprintf(s, n, "%s/%s", cwd, p);
	return s;
}

/* "PORT", "HOST:PORT", "[V6]:PORT" */
static int parse_listen(struct serve *s, const char *a)
{
	const char *colon = strrchr(a, ':');
	uint64_t port;

	s->host[0] = 0;
	if (colon) {
		const char *h = a;
		size_t n = (size_t)(colon - a);

		if (n >= 2 && a[0] == '[' && a[n - 1] == ']') {
			h++;
			n -= 2;
		}
		if (!n || n >= sizeof(s->host))
			return -KL_EUSAGE;
		memcpy(s->host, h, n);
		s->host[n] = 0;
		a = colon + 1;
	}
	if (kl_parse_uint(a, 1, 65535, &port) < 0)
		return -KL_EUSAGE;
	snprintf(s->port, sizeof(s->port), "%u", (unsigned)port);
	return 0;
}

static int parse_opts(int argc, char **argv, struct kl_cli *cli, struct serve *s,
		      struct kl_snap_filter *f)
{
	static const struct option opts[] = {
		KL_GLOBAL_OPTS,
		KL_SNAP_FILTER_OPTS,
		{"socket", required_argument, NULL, OPT_SOCKET},
		{"listen", required_argument, NULL, OPT_LISTEN},
		{"overlay", required_argument, NULL, OPT_OVERLAY},
		{"cache-size", required_argument, NULL, OPT_CACHE},
		{"readahead", required_argument, NULL, OPT_READAHEAD},
		{"fetchers", required_argument, NULL, OPT_FETCHERS},
		{NULL, 0, NULL, 0},
	};
	int c, rc = 0;

	while (rc == 0 && (c = getopt_long(argc, argv, ":" KL_GLOBAL_SHORT, opts, NULL)) != -1) {
		if (c == OPT_SOCKET) {
			s->socket = optarg;
		} else if (c == OPT_LISTEN) {
			s->listen = optarg;
			if (parse_listen(s, optarg) < 0)
				rc = kl_cli_usage_error(cli, "invalid --listen '%s'", optarg);
		} else if (c == OPT_OVERLAY) {
			s->overlay = optarg;
		} else if (c == OPT_CACHE) {
			if (kl_parse_size(optarg, &s->cache) < 0 || s->cache < (1u << 20))
				rc = kl_cli_usage_error(cli, "invalid --cache-size '%s'", optarg);
		} else if (c == OPT_READAHEAD || c == OPT_FETCHERS) {
			if (kl_parse_uint(optarg, c == OPT_FETCHERS, 64,
					  c == OPT_FETCHERS ? &s->fetchers : &s->readahead) < 0)
				rc = kl_cli_usage_error(
					cli, "invalid --%s '%s'",
					c == OPT_FETCHERS ? "fetchers" : "readahead", optarg);
		} else if ((rc = kl_cli_snap_filter_opt(f, c, optarg)) > 0) {
			rc = 0;
		} else if (rc == 0) {
			rc = kl_cli_default_opt(cli, c, kl_cli_image_serve_usage, argv);
		}
	}
	if (rc)
		return rc;
	if (argc - optind != 1)
		return kl_cli_usage_error(cli, "expected one SNAPSHOT[:IMAGE]");
	if (!s->socket == !s->listen)
		return kl_cli_usage_error(cli, "give one of --socket PATH and --listen ADDR");
	return 0;
}

/* nbdkit's command line: no secret in it (the password is on password_fd). */
static int nbdkit_argv(struct kl_cli *cli, struct serve *s, const char *plugin, const char *snap,
		       const char *image, int password_fd, char ***ret, size_t *n_ret)
{
	char **v = NULL, buf[4400];
	size_t n = 0;
	int rc = 0;

#define ARG(x) (rc = rc < 0 ? rc : kl_strv_push(&v, &n, (x)))
#define ARGF(...) (snprintf(buf, sizeof(buf), __VA_ARGS__), ARG(buf))
	ARG("nbdkit");
	ARG("--foreground");
	ARG("--exit-with-parent");
	ARGF("--pidfile=%s/pid", s->dir);
	if (!s->overlay)
		ARG("--readonly");
	if (cli->verbose)
		ARG("--verbose");
	if (s->socket) {
		_cleanup_free_ char *p = absolute(s->socket);

		ARG("--unix");
		ARG(p ? p : s->socket);
	} else {
		if (s->host[0]) {
			ARG("--ipaddr");
			ARG(s->host);
		}
		ARG("--port");
		ARG(s->port);
	}
	ARG(plugin);
	ARGF("repo=%s", cli->repo_location);
	ARGF("snapshot=%s", snap);
	if (image && *image)
		ARGF("image=%s", image);
	ARGF("password-fd=%d", password_fd);
	if (s->overlay) {
		_cleanup_free_ char *p = absolute(s->overlay);

		ARGF("overlay=%s", p ? p : s->overlay);
	}
	if (s->cache)
		ARGF("cache=%llu", (unsigned long long)s->cache);
	ARGF("readahead=%llu", (unsigned long long)s->readahead);
	if (s->fetchers)
		ARGF("fetchers=%llu", (unsigned long long)s->fetchers);
#undef ARG
#undef ARGF
	if (rc >= 0) {
		/* execvp's terminator, not counted in n */
		char **nv = kl_realloc(v, (n + 1) * sizeof(*v));

		if (nv)
			nv[n] = NULL, v = nv;
		else
			rc = -ENOMEM;
	}
	*ret = v;
	*n_ret = n;
	return rc;
}

/* The password into a pipe nbdkit inherits: returns its read end. */
static int password_pipe(const struct kl_pass *pass)
{
	int p[2], rc;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	/* at most 4 KiB: the pipe holds it all, nobody needs to read yet */
	rc = kl_fs_write_full(p[1], pass->p, pass->len);
	close(p[1]);
	if (rc < 0) {
		close(p[0]);
		return rc;
	}
	return p[0];
}

static pid_t spawn(char **argv, int keep_fd)
{
	pid_t pid = fork();

	if (pid == 0) {
		sigset_t none;

		/* keel blocks SIGINT and SIGTERM for its signal thread: nbdkit takes its own */
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (fcntl(keep_fd, F_SETFD, 0) < 0)
			_exit(127);
		execvp(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static void print_ready(struct kl_cli *cli, struct serve *s, const char *snap, const char *image)
{
	if (s->socket)
		snprintf(s->uri, sizeof(s->uri), "nbd+unix:///?socket=%s", s->socket);
	else
		snprintf(s->uri, sizeof(s->uri), "nbd://%s%s%s:%s", strchr(s->host, ':') ? "[" : "",
			 s->host[0] ? s->host : "localhost", strchr(s->host, ':') ? "]" : "",
			 s->port);
	if (cli->json) {
		printf("{\"message_type\":\"serving\",\"snapshot_id\":\"%s\",\"image\":", snap);
		kl_json_cstr(stdout, image && *image ? image : NULL);
		printf(",\"uri\":");
		kl_json_cstr(stdout, s->uri);
		printf(",\"writable\":%s}\n", s->overlay ? "true" : "false");
	} else if (!cli->quiet) {
		printf("serving snapshot %.8s%s%s at %s (%s)\n", snap, image && *image ? ":" : "",
		       image && *image ? image : "", s->uri,
		       s->overlay ? "writes go to the overlay" : "read-only");
	}
	fflush(stdout);
}

/* Until nbdkit ends, or a signal asks (then nbdkit is stopped). */
static int supervise(struct kl_cli *cli, struct serve *s, pid_t pid, const char *snap,
		     const char *image)
{
	int stop_fd = kl_cli_signals_notify(cli), status = 0;
	char pidfile[300];
	bool ready = false, stopping = false;

	snprintf(pidfile, sizeof(pidfile), "%s/pid", s->dir);
	for (;;) {
		struct pollfd p = {.fd = stop_fd, .events = POLLIN};
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid)
			break;
		if (!ready && access(pidfile, F_OK) == 0) {
			ready = true;
			print_ready(cli, s, snap, image);
		}
		if (poll(&p, stop_fd >= 0 ? 1 : 0, 100) > 0 && !stopping) {
			stopping = true;
			kill(pid, SIGTERM); /* nbdkit finishes requests, the plugin syncs */
		}
	}
	if (ready && s->socket) {
		struct stat st;

		/* nbdkit leaves its socket behind: the next serve could not bind it */
		if (lstat(s->socket, &st) == 0 && S_ISSOCK(st.st_mode))
			unlink(s->socket);
	}
	if (stopping ||
	    (WIFSIGNALED(status) && (WTERMSIG(status) == SIGINT || WTERMSIG(status) == SIGTERM)))
		return 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		kl_cli_error(cli, -KL_ECMD, "cannot run nbdkit (is it installed?)");
	else
		kl_cli_error(cli, -KL_ECMD, "nbdkit %s (%s %d)%s",
			     ready ? "stopped" : "could not serve the image",
			     WIFEXITED(status) ? "exit status" : "signal",
			     WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
			     ready ? "" : ": see its message above");
	return -KL_ECMD;
}

static int run(struct kl_cli *cli, struct serve *s, const struct kl_snapshot_ref *snap,
	       const char *image, struct kl_pass **pass)
{
	const char *plugin = getenv("KEEL_NBDKIT_PLUGIN");
	const char *tmp = getenv("TMPDIR");
	char hex[2 * KL_ID_LEN + 1], pidfile[300];
	char **argv = NULL;
	size_t argc = 0;
	int pfd, rc;
	pid_t pid;

	if (!plugin || !*plugin)
		plugin = KEEL_NBDKIT_PLUGIN;
	if (access(plugin, R_OK) < 0) {
		rc = -errno;
		kl_cli_error(cli, rc, "keel's nbdkit plugin '%s' is missing", plugin);
		return rc;
	}
	snprintf(s->dir, sizeof(s->dir), "%s/keel-serve.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(s->dir)) {
		rc = -errno;
		kl_cli_error(cli, rc, "cannot make a temporary directory");
		return rc;
	}
	kl_id_hex(&snap->id, hex);
	pfd = password_pipe(*pass);
	/* in the pipe now: not kept here while serving */
	kl_pass_free(*pass);
	*pass = NULL;
	rc = pfd;
	if (rc >= 0)
		rc = nbdkit_argv(cli, s, plugin, hex, image, pfd, &argv, &argc);
	if (rc >= 0) {
		pid = spawn(argv, pfd);
		if (pid < 0)
			rc = -errno;
	}
	if (pfd >= 0)
		close(pfd);
	if (rc >= 0)
		rc = supervise(cli, s, pid, hex, image);
	else
		kl_cli_error(cli, rc, "cannot start nbdkit");
	kl_strv_free(argv, argc);
	snprintf(pidfile, sizeof(pidfile), "%s/pid", s->dir);
	unlink(pidfile);
	rmdir(s->dir);
	return rc;
}

int cmd_image_serve(int argc, char **argv, struct kl_cli *cli)
{
	struct kl_snap_filter f = {.kind = KL_SNAP_DISK};
	struct kl_snapshot_ref snap = {0};
	struct serve s = {.readahead = 8};
	struct kl_pass *pass = NULL;
	const char *image = NULL;
	int rc;

	rc = parse_opts(argc, argv, cli, &s, &f);
	if (rc)
		goto out;
	/* the plugin loads the index itself: here only the lock and the snapshot */
	cli->cmd_flags |= KL_CMD_LOCK | KL_CMD_READONLY;
	cli->keep_pass = &pass;
	rc = kl_cli_open(cli);
	if (rc >= 0)
		rc = kl_cli_find_snapshot(cli, argv[optind], &f, &snap, &image);
	if (rc < 0)
		goto out;
	if (snap.s.kind != KL_SNAP_DISK) {
		rc = kl_cli_usage_error(cli, "snapshot '%s' is not an image snapshot",
					argv[optind]);
		goto out;
	}
	if (!pass) {
		rc = kl_cli_usage_error(cli, "no password to hand to the server");
		goto out;
	}
	rc = run(cli, &s, &snap, image, &pass);
out:
	kl_pass_free(pass);
	kl_snapshot_release(&snap.s);
	kl_snap_filter_release(&f);
	return rc;
}
