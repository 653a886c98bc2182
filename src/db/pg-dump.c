/*
 * Logical dumps (docs/DATABASES.md, "Logical dumps"): pg_dumpall
 * --globals-only and pg_dump -Fc of every database the server lets one
 * connect to, stored as one snapshot of kind 4, role 3 (logical dump):
 * globals.sql and databases/<name>.dump. Each tool's output goes to an
 * unnamed temporary file first (the backup engine wants each file's
 * size before its bytes), then into the repository. The password never
 * reaches the tools' argv: it goes to them as PGPASSWORD.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "keel/fs.h"
#include "pg-internal.h"

extern char **environ;

struct dump {
	struct kl_repo *r;
	const struct kl_db_dump_opts *o;
	struct kl_entry_backup *e;
	struct kl_buf base; /* the connection string without dbname and password */
	char *password;	    /* from CONNINFO, or NULL */
	char **envp;	    /* the tools' environment: keel's, PGPASSWORD from CONNINFO */
	char *pw_env;	    /* "PGPASSWORD=..." in envp, wiped at the end */
	uint64_t databases;
};

/* Appends key='value' with PostgreSQL's conninfo quoting (backslash before ' and \). */
static int add_kv(struct kl_buf *b, const char *k, const char *v)
{
	int rc = kl_buf_addf(b, "%s%s='", b->len ? " " : "", k);

	for (const char *p = v; rc >= 0 && *p; p++)
		rc = kl_buf_addf(b, "%s%c", *p == '\'' || *p == '\\' ? "\\" : "", *p);
	return rc < 0 ? rc : kl_buf_addf(b, "'");
}

/* CONNINFO as key='value' pairs without dbname and password (kept aside). */
static int split_conninfo(struct dump *d)
{
	char *err = NULL;
	PQconninfoOption *opts = PQconninfoParse(d->o->conninfo, &err), *op;
	int rc = 0;

	if (!opts) {
		rc = kl_repo_fail(d->r, -KL_EUSAGE, "invalid CONNINFO: %s", err ? err : "?");
		PQfreemem(err);
		return rc;
	}
	for (op = opts; rc >= 0 && op->keyword; op++) {
		if (!op->val || !*op->val || !strcmp(op->keyword, "dbname"))
			continue;
		if (!strcmp(op->keyword, "password")) {
			if (!(d->password = kl_strdup(op->val)))
				rc = -ENOMEM;
			continue;
		}
		rc = add_kv(&d->base, op->keyword, op->val);
	}
	PQconninfoFree(opts);
	return rc;
}

/* The tools' environment, made before fork: the child may not allocate. */
static int make_env(struct dump *d)
{
	size_t n = 0, k = 0;

	while (environ[n])
		n++;
	d->envp = kl_calloc(n + 2, sizeof(*d->envp));
	if (!d->envp)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (!d->password || strncmp(environ[i], "PGPASSWORD=", 11))
			d->envp[k++] = environ[i];
	if (d->password) {
		size_t len = strlen(d->password) + 12;

		if (!(d->pw_env = kl_malloc(len)))
			return -ENOMEM;
		snprintf(d->pw_env, len, "PGPASSWORD=%s", d->password);
		d->envp[k++] = d->pw_env;
	}
	return 0;
}

/* Runs argv with stdout into an unnamed temporary file; *fd_ret is it, at its start. */
static int run(struct dump *d, char *const argv[], int *fd_ret)
{
	const char *tmp = getenv("TMPDIR");
	int fd = open(tmp && *tmp ? tmp : "/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600), st;
	pid_t pid;

	if (fd < 0)
		return kl_repo_fail(d->r, -errno, "cannot create a temporary file");
	pid = fork();
	if (pid < 0) {
		close(fd);
		return kl_repo_fail(d->r, -errno, "cannot start %s", argv[0]);
	}
	if (pid == 0) {
		sigset_t none;

		/* keel blocks SIGINT and SIGTERM for its signal thread: not for the tool */
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		dup2(fd, STDOUT_FILENO);
		execvpe(argv[0], argv, d->envp);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			close(fd);
			return kl_repo_fail(d->r, -errno, "waitpid");
		}
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		close(fd);
		return kl_repo_fail(d->r, -KL_ECMD, "%s failed (%s %d)%s", argv[0],
				    WIFEXITED(st) ? "exit status" : "signal",
				    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st),
				    WIFEXITED(st) && WEXITSTATUS(st) == 127 ? ": is it installed?"
									    : "");
	}
	if (lseek(fd, 0, SEEK_SET) < 0) {
		close(fd);
		return -errno;
	}
	*fd_ret = fd;
	return 0;
}

/* Stores what argv writes as the file path of the snapshot. */
static int store_output(struct dump *d, char *const argv[], const char *path)
{
	struct kl_node f = {.type = KL_NODE_FILE, .mode = 0600};
	struct stat st;
	uint8_t *buf;
	int fd = -1, rc = run(d, argv, &fd);

	if (rc < 0)
		return rc;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return -errno;
	}
	buf = kl_malloc(1u << 20);
	f.uid = (uint32_t)geteuid();
	f.gid = (uint32_t)getegid();
	f.mtime_sec = kl_time_now_ns() / KL_NSEC_PER_SEC;
	f.size = (uint64_t)st.st_size;
	rc = buf ? kl_entry_backup_add(d->e, path, &f) : -ENOMEM;
	for (uint64_t left = f.size; rc >= 0 && left;) {
		size_t got = 0, want = left < (1u << 20) ? (size_t)left : 1u << 20;

		rc = kl_fs_read_full(fd, buf, want, &got);
		if (rc >= 0 && got != want)
			rc = -EIO; /* the file shrank under us: it is ours, so it cannot */
		if (rc >= 0)
			rc = kl_entry_backup_write(d->e, buf, got);
		left -= got;
	}
	if (rc >= 0)
		rc = kl_entry_backup_end(d->e);
	kl_free(buf);
	close(fd);
	return rc;
}

/* databases/<name>.dump, '/' and '%' and a leading '.' written as %XX */
static int dump_path(const char *db, struct kl_buf *out)
{
	int rc = kl_buf_addf(out, "databases/");

	for (const char *p = db; rc >= 0 && *p; p++)
		rc = *p == '/' || *p == '%' || (p == db && *p == '.')
			     ? kl_buf_addf(out, "%%%02X", (unsigned char)*p)
			     : kl_buf_addf(out, "%c", *p);
	return rc < 0 ? rc : kl_buf_addf(out, ".dump");
}

static int dump_database(struct dump *d, const char *db)
{
	struct kl_buf conn = KL_BUF_INIT(1 << 16), path = KL_BUF_INIT(1 << 16);
	const char *bin = d->o->pg_dump ? d->o->pg_dump : "pg_dump";
	int rc = kl_buf_addf(&conn, "%s", (const char *)d->base.data);

	if (rc >= 0)
		rc = add_kv(&conn, "dbname", db);
	if (rc >= 0)
		rc = dump_path(db, &path);
	if (rc >= 0) {
		char *argv[] = {(char *)bin,  (char *)"-Fc",	 (char *)"--no-password",
				(char *)"-d", (char *)conn.data, NULL};

		rc = store_output(d, argv, (const char *)path.data);
		d->databases += rc >= 0;
	}
	kl_buf_release(&conn);
	kl_buf_release(&path);
	return rc;
}

/* The system identifier and the databases one may connect to (not templates). */
static int inventory(struct dump *d, char *sysid, size_t size, char *version, size_t vsize,
		     char ***dbs_ret, size_t *n_ret)
{
	const char *keys[] = {"dbname", "fallback_application_name", NULL};
	const char *vals[] = {d->o->conninfo, "keel", NULL};
	PGconn *conn = PQconnectdbParams(keys, vals, 1);
	PGresult *res = NULL;
	char **dbs = NULL;
	int rc = 0, n = 0;

	*dbs_ret = NULL;
	*n_ret = 0;
	if (!conn)
		return -ENOMEM;
	if (PQstatus(conn) != CONNECTION_OK)
		rc = kl_pgc_fail(d->r, conn, -KL_EDBCONNECT,
				 "cannot connect to the database server");
	if (rc >= 0) {
		res = PQexec(conn, "SELECT system_identifier::text FROM pg_control_system()");
		rc = kl_pgc_expect(d->r, conn, res, PGRES_TUPLES_OK, "cannot read the system id");
	}
	if (rc >= 0 && PQntuples(res) == 1)
		snprintf(sysid, size, "%s", PQgetvalue(res, 0, 0));
	snprintf(version, vsize, "%d", PQserverVersion(conn));
	PQclear(res);
	res = NULL;
	if (rc >= 0) {
		res = PQexec(conn, "SELECT datname FROM pg_database WHERE datallowconn AND NOT "
				   "datistemplate ORDER BY datname");
		rc = kl_pgc_expect(d->r, conn, res, PGRES_TUPLES_OK, "cannot list the databases");
	}
	if (rc >= 0)
		n = PQntuples(res);
	if (rc >= 0 && n && !(dbs = kl_calloc((size_t)n, sizeof(*dbs))))
		rc = -ENOMEM;
	for (int i = 0; rc >= 0 && i < n; i++)
		if (!(dbs[i] = kl_strdup(PQgetvalue(res, i, 0))))
			rc = -ENOMEM;
	PQclear(res);
	PQfinish(conn);
	if (rc < 0) {
		for (int i = 0; dbs && i < n; i++)
			kl_free(dbs[i]);
		kl_free(dbs);
		return rc;
	}
	*dbs_ret = dbs;
	*n_ret = (size_t)n;
	return 0;
}

static int commit(struct dump *d, const char *name, const char *sysid, const char *version,
		  struct kl_db_dump_result *ret)
{
	struct kl_backup_result br;
	struct kl_snapshot snap = {0};
	char path[8 + KL_DB_NAME_MAX], *paths[1] = {path};
	int rc;

	snprintf(path, sizeof(path), "db:%s", name);
	snap.kind = KL_SNAP_DATABASE;
	snap.paths = paths;
	snap.n_paths = 1;
	snap.has_db = true;
	snap.db.engine = KL_DB_POSTGRESQL;
	snap.db.role = KL_DB_DUMP;
	snap.db.name = (char *)name;
	snap.db.system_id = (char *)sysid;
	snap.db.server_version = (char *)version;
	rc = kl_entry_backup_commit(d->e, &snap, &br);
	if (rc < 0)
		return rc;
	ret->id = br.id;
	ret->stats = br.stats;
	ret->databases = d->databases;
	snprintf(ret->name, sizeof(ret->name), "%s", name);
	return 0;
}

int kl_db_dump(struct kl_repo *r, const struct kl_db_dump_opts *o, struct kl_db_dump_result *ret)
{
	struct dump d = {.r = r, .o = o, .base = KL_BUF_INIT(1 << 16)};
	struct kl_backup_opts bo;
	char sysid[32] = "", version[16], name[KL_DB_NAME_MAX + 1], tag[8 + KL_DB_NAME_MAX];
	char *tags[3] = {(char *)"db", tag, (char *)"db-dump"}, **dbs = NULL;
	size_t n_dbs = 0;
	int rc;

	memset(ret, 0, sizeof(*ret));
	if (o->name && !kl_db_name_valid(o->name))
		return kl_repo_fail(r, -KL_EUSAGE, "invalid database name '%s'", o->name);
	rc = split_conninfo(&d);
	if (rc >= 0)
		rc = make_env(&d);
	if (rc >= 0)
		rc = inventory(&d, sysid, sizeof(sysid), version, sizeof(version), &dbs, &n_dbs);
	if (rc >= 0 && !o->name && !*sysid)
		rc = kl_repo_fail(r, -KL_EUSAGE, "the server gave no system id: give --name");
	if (rc >= 0) {
		snprintf(name, sizeof(name), "%s%s", o->name ? "" : "pg-",
			 o->name ? o->name : sysid);
		snprintf(tag, sizeof(tag), "db:%s", name);
		kl_backup_opts_init(&bo);
		bo.host = o->host;
		bo.tags = tags;
		bo.n_tags = 3;
		bo.threads = o->threads ? o->threads : 1;
		rc = kl_entry_backup_new(r, &bo, &d.e);
	}
	if (rc >= 0) {
		char *argv[] = {(char *)(o->pg_dumpall ? o->pg_dumpall : "pg_dumpall"),
				(char *)"--globals-only",
				(char *)"--no-password",
				(char *)"-d",
				(char *)d.base.data,
				NULL};

		rc = store_output(&d, argv, "globals.sql");
	}
	for (size_t i = 0; rc >= 0 && i < n_dbs; i++)
		rc = dump_database(&d, dbs[i]);
	if (rc >= 0)
		rc = commit(&d, name, *sysid ? sysid : NULL, version, ret);
	kl_entry_backup_free(d.e);
	for (size_t i = 0; i < n_dbs; i++)
		kl_free(dbs[i]);
	kl_free(dbs);
	if (d.password)
		explicit_bzero(d.password, strlen(d.password));
	if (d.pw_env)
		explicit_bzero(d.pw_env, strlen(d.pw_env));
	kl_free(d.password);
	kl_free(d.pw_env);
	kl_free(d.envp);
	kl_buf_release(&d.base);
	return rc;
}
