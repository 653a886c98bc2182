/*
 * The restore drills of image and db jobs (docs/DAEMON.md, "Drills"):
 * the newest restore point restored into a scratch directory and proven
 * usable the way its kind is used, the time until it was proven being
 * the RTO.
 *
 * - image: `keel image restore --verify` of the newest image snapshot to
 *   a file, every chunk read back and compared with the repository's;
 * - PostgreSQL: `keel db restore --latest` (the newest base backup and
 *   the WAL after it), then a temporary server on a private socket (no
 *   TCP, archiving off, trust only on that socket) started with pg_ctl
 *   until it has replayed the WAL and answers a query, then stopped;
 * - SQLite: `keel db restore --latest`, which keeps the file only when
 *   PRAGMA integrity_check answers ok, then the file's header checked;
 * - MariaDB: `keel db restore --latest`, then a temporary mariadbd on a
 *   private socket until it answers a query, then stopped (drill-maria.c).
 *
 * A server refuses to run as root, so a daemon running as root restores
 * as root, hands the scratch directory to the user postgres and runs
 * pg_ctl and psql as that user.
 */
#define _XOPEN_SOURCE 700
#include <fcntl.h>
#include <dirent.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "drill-internal.h"
#include "keel/fs.h"

/* the temporary server's port: only its socket's name, in a private directory */
#define PG_PORT "5432"
/* the user a root daemon runs the temporary server as */
#define PG_USER "postgres"

struct pg {
	char data[4300]; /* the restored data directory */
	char sock[64];	 /* its socket directory, short: a socket path has 107 bytes */
	char bin[4200];	 /* where pg_ctl and psql are, "" for PATH */
	char log[4300];	 /* the server's log */
	uid_t uid;	 /* who runs them; -1: this process's user */
	gid_t gid;
	bool root;
};

static double since(int64_t t0)
{
	return (double)(kl_time_mono_ns() - t0) / (double)KL_NSEC_PER_SEC;
}

/* The last line of the drill's log into the error after what. */
static void fail_st(struct kl_drill *d, const char *what, int st)
{
	char line[200] = "";

	kl_daemon_last_line(d->log_fd, line, sizeof(line));
	kl_daemon_drill_fail(d, "%s exited with %d: %s", what, st, line);
}

int kl_daemon_drill_image(struct kl_drill *d, double *seconds)
{
	struct kl_daemon_argv a = {0};
	char dir[4200], target[4300];
	_cleanup_close_ int null_fd = -1;
	int64_t t0;
	int st, r = kl_daemon_drill_newest(d);

	if (r <= 0)
		return r < 0;
	if (kl_daemon_drill_scratch(d, dir, sizeof(dir), 0700) < 0)
		return 1;
	snprintf(target, sizeof(target), "%s/image", dir);
	kl_daemon_argv_verb(&a, d->o, d->rp, "image", "restore", true);
	kl_daemon_argv_add(&a, "--verify");
	kl_daemon_argv_add(&a, d->ret->snapshot);
	kl_daemon_argv_add(&a, target);
	null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	t0 = kl_time_mono_ns();
	st = kl_daemon_spawn(a.v, -1, null_fd < 0 ? d->log_fd : null_fd, d->log_fd, d->j->name);
	*seconds = since(t0);
	kl_daemon_drill_rmtree(d, dir);
	if (st != 0)
		fail_st(d, "keel image restore --verify", st);
	return 1;
}

/*
 * The job's database in `keel db list --json`: its engine and newest
 * base backup (its id into d->ret->snapshot). Returns 1, 0 (no base
 * backup yet) or -1 (the error set).
 */
static int db_newest(struct kl_drill *d, char *engine, size_t n)
{
	struct kl_daemon_argv a = {0};
	_cleanup_close_ int fd = -1;
	json_t *list, *db, *bases, *b, *best = NULL;
	size_t i;
	int st;

	kl_daemon_argv_verb(&a, d->o, d->rp, "db", "list", true);
	kl_daemon_argv_add(&a, "--json");
	st = kl_daemon_drill_capture(d, &a, &fd);
	if (st != 0)
		return fail_st(d, "keel db list", st), -1;
	list = kl_daemon_drill_load_fd(fd, 0);
	json_array_foreach(list, i, db)
	{
		const char *name = json_string_value(json_object_get(db, "name"));

		if (!name || strcmp(name, d->j->db_name))
			continue;
		snprintf(engine, n, "%s",
			 json_string_value(json_object_get(db, "engine"))
				 ? json_string_value(json_object_get(db, "engine"))
				 : "");
		bases = json_object_get(db, "base_backups");
		/* ISO 8601 times in UTC sort as strings */
		json_array_foreach(bases, i, b)
		{
			const char *t = json_string_value(json_object_get(b, "time"));
			const char *bt = json_string_value(json_object_get(best, "time"));

			if (t && json_string_value(json_object_get(b, "id")) &&
			    (!bt || strcmp(t, bt) >= 0))
				best = b;
		}
		break;
	}
	if (best) {
		snprintf(d->ret->snapshot, sizeof(d->ret->snapshot), "%s",
			 json_string_value(json_object_get(best, "id")));
		d->bytes_total = (uint64_t)json_integer_value(json_object_get(best, "bytes_total"));
	}
	json_decref(list);
	return best != NULL;
}

/* keel db restore NAME --target target --latest */
int kl_daemon_drill_db_restore(struct kl_drill *d, const char *target)
{
	struct kl_daemon_argv a = {0};
	int st;

	kl_daemon_argv_verb(&a, d->o, d->rp, "db", "restore", true);
	kl_daemon_argv_add(&a, d->j->db_name);
	kl_daemon_argv_add(&a, "--target");
	kl_daemon_argv_add(&a, target);
	kl_daemon_argv_add(&a, "--latest");
	st = kl_daemon_spawn(a.v, -1, d->log_fd, d->log_fd, d->j->name);
	if (st != 0)
		fail_st(d, "keel db restore --latest", st);
	return st == 0 ? 0 : -1;
}

static int sqlite_drill(struct kl_drill *d, const char *dir, double *seconds)
{
	static const char magic[16] = "SQLite format 3";
	char target[4300], head[16] = {0};
	int64_t t0 = kl_time_mono_ns();
	_cleanup_close_ int fd = -1;

	snprintf(target, sizeof(target), "%s/%s", dir, d->j->db_name);
	/* the restore keeps the file only if PRAGMA integrity_check answers ok */
	if (kl_daemon_drill_db_restore(d, target) < 0)
		return -1;
	*seconds = since(t0);
	fd = open(target, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, head, sizeof(head)) != (ssize_t)sizeof(head) ||
	    memcmp(head, magic, sizeof(magic)))
		return kl_daemon_drill_fail(d, "the restored file is no SQLite database"), -1;
	return 0;
}

/* Runs argv (through PATH) as p's user, output to out_fd and the log; its exit status. */
static int spawn_pg(struct kl_drill *d, const struct pg *p, char *const argv[], int out_fd)
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		sigset_t none;
		int in_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (in_fd < 0 || dup2(in_fd, STDIN_FILENO) < 0 ||
		    dup2(out_fd < 0 ? d->log_fd : out_fd, STDOUT_FILENO) < 0 ||
		    dup2(d->log_fd, STDERR_FILENO) < 0)
			_exit(127);
		if (p->root && (setgroups(0, NULL) < 0 || setgid(p->gid) < 0 || setuid(p->uid) < 0))
			_exit(127);
		/* pg_ctl needs a working directory it can read */
		if (chdir(p->sock) < 0)
			_exit(127);
		execvp(argv[0], argv);
		dprintf(d->log_fd, "cannot run '%s': %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
}

/* lchown of every entry below the directory fd (which it closes), depth first. */
static int chown_tree(int fd, uid_t uid, gid_t gid)
{
	DIR *dir = fdopendir(fd);
	struct dirent *e;
	int r = 0;

	if (!dir) {
		close(fd);
		return -errno;
	}
	while (r >= 0 && (e = readdir(dir))) {
		int sub;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (fchownat(dirfd(dir), e->d_name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
			r = -errno;
		else if (e->d_type == DT_DIR &&
			 (sub = openat(dirfd(dir), e->d_name,
				       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) >= 0)
			r = chown_tree(sub, uid, gid);
	}
	closedir(dir);
	return r;
}

/* Appends text to the file at dir/name (made if missing). */
static int append(const char *dir, const char *name, const char *text)
{
	char path[4400];
	_cleanup_close_ int fd = -1;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	return kl_fs_write_full(fd, text, strlen(text));
}

/*
 * Makes the restored data directory start as a private server: no TCP,
 * its socket in p->sock, no archiving (its archive_command could write to
 * the repository), trust on that socket only, the configuration files it
 * may keep elsewhere (Debian's /etc/postgresql) replaced by its own.
 */
static int pg_prepare(struct kl_drill *d, struct pg *p)
{
	char settings[18000], path[4400], ver[16] = "";
	_cleanup_close_ int fd = -1;
	int r;

	char data[8700];

	/* a quote in a setting's string is doubled */
	for (size_t i = 0, k = 0; k + 2 < sizeof(data); i++) {
		if (p->data[i] == '\'')
			data[k++] = '\'';
		data[k++] = p->data[i];
		if (!p->data[i])
			break;
	}
	data[sizeof(data) - 1] = 0;
	snprintf(settings, sizeof(settings),
		 "\n# keel restore drill\nlisten_addresses = ''\nport = " PG_PORT "\n"
		 "unix_socket_directories = '%s'\narchive_mode = off\nssl = off\n"
		 "hba_file = '%s/pg_hba.conf'\nident_file = '%s/pg_ident.conf'\n",
		 p->sock, data, data);
	snprintf(path, sizeof(path), "%s/pg_hba.conf", p->data);
	unlink(path);
	r = append(p->data, "pg_hba.conf", "local all all trust\n");
	if (r >= 0)
		r = append(p->data, "pg_ident.conf", "");
	if (r >= 0)
		r = append(p->data, "postgresql.conf", "");
	if (r >= 0)
		r = append(p->data, "postgresql.auto.conf", settings);
	if (r < 0)
		return kl_daemon_drill_fail(d, "cannot configure the restored cluster: %s",
					    kl_strerror(r)),
		       -1;
	/* Debian keeps each major version's programs apart */
	snprintf(path, sizeof(path), "%s/PG_VERSION", p->data);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0 && read(fd, ver, sizeof(ver) - 1) > 0) {
		ver[strcspn(ver, "\n")] = 0;
		snprintf(p->bin, sizeof(p->bin), "/usr/lib/postgresql/%s/bin/", ver);
		snprintf(path, sizeof(path), "%spg_ctl", p->bin);
		if (strchr(ver, '/') || access(path, X_OK) < 0)
			p->bin[0] = 0;
	}
	if (!p->root)
		return 0;
	r = chown_tree(open(p->data, O_RDONLY | O_DIRECTORY | O_CLOEXEC), p->uid, p->gid);
	if (r >= 0 && (lchown(p->data, p->uid, p->gid) < 0 || lchown(p->sock, p->uid, p->gid) < 0 ||
		       lchown(p->log, p->uid, p->gid) < 0))
		r = -errno;
	if (r < 0)
		return kl_daemon_drill_fail(d,
					    "cannot hand the restored cluster to the user "
					    "'" PG_USER "': %s",
					    kl_strerror(r)),
		       -1;
	return 0;
}

/* The user psql connects as: the conninfo's (key=value or URI), else postgres. */
static void pg_role(const char *conninfo, char *out, size_t n)
{
	const char *u = NULL, *s;
	size_t len = 0;

	if (!strncmp(conninfo, "postgres://", 11) || !strncmp(conninfo, "postgresql://", 13)) {
		s = strstr(conninfo, "://") + 3;
		len = strcspn(s, "@/?:");
		u = s[len] == '@' || s[len] == ':' ? s : NULL;
	} else {
		for (s = conninfo; (s = strstr(s, "user")); s += 4)
			if ((s == conninfo || s[-1] == ' ') && s[4 + strspn(s + 4, " ")] == '=') {
				u = s + 4 + strspn(s + 4, " ") + 1;
				u += strspn(u, " ");
				len = strcspn(u, " '");
				break;
			}
	}
	snprintf(out, n, "%.*s", u && len ? (int)len : 8, u && len ? u : PG_USER);
}

/* pg_ctl start, a query through psql, pg_ctl stop; the time to the answer into *seconds. */
static int pg_serve(struct kl_drill *d, struct pg *p, int64_t t0, double *seconds)
{
	char pg_ctl[4300], psql[4300], role[128], out[32] = "", *end;
	struct kl_daemon_argv start = {0}, stop = {0}, query = {0};
	static const char *const start_args[] = {"-w", "-t", "600", "-s", "start"};
	static const char *const stop_args[] = {"-m", "fast", "-w", "-t", "600", "-s", "stop"};
	static const char *const query_args[] = {
		"-X",	 "-A", "-t",	    "-q", "-p",
		PG_PORT, "-d", "template1", "-c", "SELECT count(*) FROM pg_class"};
	_cleanup_close_ int fd = -1;
	int st;
	long n;

	snprintf(pg_ctl, sizeof(pg_ctl), "%spg_ctl", p->bin);
	snprintf(psql, sizeof(psql), "%spsql", p->bin);
	pg_role(d->j->conninfo, role, sizeof(role));
	kl_daemon_argv_add(&start, pg_ctl);
	kl_daemon_argv_add(&stop, pg_ctl);
	kl_daemon_argv_add(&query, psql);
	for (size_t i = 0; i < 2; i++) {
		struct kl_daemon_argv *a = i ? &stop : &start;

		kl_daemon_argv_add(a, "-D");
		kl_daemon_argv_add(a, p->data);
		kl_daemon_argv_add(a, "-l");
		kl_daemon_argv_add(a, p->log);
	}
	for (size_t i = 0; i < KL_ARRAY_SIZE(start_args); i++)
		kl_daemon_argv_add(&start, start_args[i]);
	for (size_t i = 0; i < KL_ARRAY_SIZE(stop_args); i++)
		kl_daemon_argv_add(&stop, stop_args[i]);
	kl_daemon_argv_add(&query, "-h");
	kl_daemon_argv_add(&query, p->sock);
	kl_daemon_argv_add(&query, "-U");
	kl_daemon_argv_add(&query, role);
	for (size_t i = 0; i < KL_ARRAY_SIZE(query_args); i++)
		kl_daemon_argv_add(&query, query_args[i]);
	st = spawn_pg(d, p, start.v, -1);
	if (st != 0) {
		fail_st(d, "pg_ctl start", st);
		spawn_pg(d, p, stop.v, -1); /* it may have started after all */
		return -1;
	}
	fd = kl_daemon_open_log(d->o->state_dir, "drills", d->j->name, "out");
	st = fd < 0 ? fd : spawn_pg(d, p, query.v, fd);
	*seconds = since(t0);
	if (st != 0)
		fail_st(d, "the query of the restored database (psql)", st);
	else if (pread(fd, out, sizeof(out) - 1, 0) <= 0 || (n = strtol(out, &end, 10)) <= 0 ||
		 (*end && *end != '\n'))
		kl_daemon_drill_fail(d,
				     "the restored database answered '%.20s' to a count of its "
				     "catalog's relations",
				     out);
	if ((st = spawn_pg(d, p, stop.v, -1)) != 0)
		dprintf(d->log_fd, "pg_ctl stop exited with %d\n", st);
	return d->ret->error[0] ? -1 : 0;
}

static int pg_drill(struct kl_drill *d, const char *dir, double *seconds)
{
	struct pg p = {.root = geteuid() == 0};
	int64_t t0 = kl_time_mono_ns();
	struct passwd *pw = NULL;
	int r;

	snprintf(p.data, sizeof(p.data), "%s/data", dir);
	snprintf(p.log, sizeof(p.log), "%s/server.log", dir);
	snprintf(p.sock, sizeof(p.sock), "/tmp/keel-drill.XXXXXX");
	if (p.root) {
		pw = getpwnam(PG_USER);
		if (!pw)
			return kl_daemon_drill_fail(d, "the drill runs PostgreSQL as the user "
						       "'" PG_USER
						       "' (it refuses root): no such user"),
			       -1;
		p.uid = pw->pw_uid;
		p.gid = pw->pw_gid;
		/* the server's user must reach its data directory in the scratch directory */
		if (lchown(dir, p.uid, p.gid) < 0)
			return kl_daemon_drill_fail(d, "cannot hand '%s' to '" PG_USER "': %s", dir,
						    strerror(errno)),
			       -1;
	}
	if (!mkdtemp(p.sock))
		return kl_daemon_drill_fail(d, "cannot create a socket directory: %s",
					    strerror(errno)),
		       -1;
	r = kl_daemon_drill_db_restore(d, p.data);
	if (r >= 0)
		r = append(dir, "server.log", "");
	if (r >= 0)
		r = pg_prepare(d, &p);
	if (r >= 0)
		r = pg_serve(d, &p, t0, seconds);
	if (r < 0 && d->ret->error[0]) {
		char line[200] = "";
		_cleanup_close_ int fd = open(p.log, O_RDONLY | O_CLOEXEC);

		if (fd >= 0)
			kl_daemon_last_line(fd, line, sizeof(line));
		if (line[0])
			dprintf(d->log_fd, "the server's log ends: %s\n", line);
	}
	kl_daemon_drill_rmtree(d, p.sock);
	return r;
}

int kl_daemon_drill_db(struct kl_drill *d, double *seconds)
{
	char dir[4200], engine[32] = "";
	int r;

	r = db_newest(d, engine, sizeof(engine));
	if (r <= 0)
		return r < 0;
	if (strcmp(engine, "postgresql") && strcmp(engine, "sqlite") && strcmp(engine, "mariadb"))
		return kl_daemon_drill_fail(d, "drills of %s databases are not supported yet",
					    engine[0] ? engine : "these"),
		       1;
	/* a root daemon's PostgreSQL or MariaDB user must pass through the scratch base */
	if (kl_daemon_drill_scratch(d, dir, sizeof(dir), 0711) < 0)
		return 1;
	if (!strcmp(engine, "sqlite"))
		sqlite_drill(d, dir, seconds);
	else if (!strcmp(engine, "mariadb"))
		kl_daemon_drill_maria(d, dir, seconds);
	else
		pg_drill(d, dir, seconds);
	kl_daemon_drill_rmtree(d, dir);
	return 1;
}
