/*
 * MariaDB hot physical backups: keel runs `mariabackup --backup
 * --stream=xbstream` against the server and parses its stream as it
 * arrives (src/db/xbstream.c), storing each file through the backup
 * engine (kl_entry_backup_*) as data/PATH of a kind-4 snapshot, chunked
 * by the repository's content-defined chunker, so the unchanged stretches
 * of InnoDB's files cost nothing the second time. The consistent binary
 * log position mariabackup records (xtrabackup_binlog_info) goes into the
 * Database message (docs/DATABASES.md, "MariaDB"). The redo log comes
 * in pieces between the other files' chunks (mariabackup's log copier runs
 * throughout the backup): it is spooled to a temporary file and stored
 * after the stream has ended.
 */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "keel/fs.h"
#include "maria-internal.h"

#define INFO_MAX (1 << 16)
#define READ_SIZE (1 << 20)

struct mbk {
	struct kl_repo *r;
	struct kl_entry_backup *e;
	struct kl_xbs x;
	char *open_path;      /* the file whose chunks are arriving */
	uint64_t got;	      /* its bytes so far */
	struct kl_buf path;   /* data/PATH */
	struct kl_buf info;   /* xtrabackup_binlog_info's content */
	bool capture;	      /* the open file is xtrabackup_binlog_info */
	struct kl_buf dirs;   /* the directories added so far, NUL-separated */
	struct kl_node owner; /* mode, owner and times of the files: the data directory's */
	uint64_t files;
	/* the redo log (spool_path, NULL until its first chunk): its bytes so far in spool_fd */
	char *spool_path;
	int spool_fd;
	uint64_t spooled;
	bool spool_ended, spooling; /* spooling: the current chunk's bytes go to the spool */
	/* the backup engine keeps pointers to the tags until the commit */
	char tag[8 + KL_DB_NAME_MAX];
	char *tags[2];
};

static bool dir_added(struct mbk *g, const char *dir, size_t len)
{
	const char *p = (const char *)g->dirs.data, *end = p + g->dirs.len;

	for (; p < end; p += strlen(p) + 1)
		if (strlen(p) == len && !memcmp(p, dir, len))
			return true;
	return false;
}

/* data/ and the directories on the way to path, owned as the data directory. */
static int add_dirs(struct mbk *g, const char *path)
{
	struct kl_node d = g->owner;
	int rc = 0;

	d.type = KL_NODE_DIR;
	d.mode = 0700;
	d.size = 0;
	for (const char *s = path; rc >= 0 && (s = strchr(s, '/')); s++) {
		size_t len = (size_t)(s - path);

		if (dir_added(g, path, len))
			continue;
		rc = kl_buf_add(&g->dirs, path, len);
		if (rc >= 0)
			rc = kl_buf_addch(&g->dirs, 0);
		char *dir = rc >= 0 ? kl_strndup(path, len) : NULL;

		if (rc >= 0 && !dir)
			rc = -ENOMEM;
		if (rc >= 0)
			rc = kl_entry_backup_add(g->e, dir, &d);
		kl_free(dir);
	}
	return rc;
}

static int open_file(struct mbk *g, const char *path)
{
	struct kl_node n = g->owner;
	int rc;

	kl_buf_clear(&g->path);
	rc = kl_buf_addf(&g->path, "data/%s", path);
	if (rc >= 0)
		rc = add_dirs(g, (const char *)g->path.data);
	if (rc < 0)
		return rc;
	n.type = KL_NODE_FILE;
	n.size = KL_ENTRY_SIZE_UNKNOWN;
	rc = kl_entry_backup_add(g->e, (const char *)g->path.data, &n);
	if (rc < 0)
		return rc;
	g->open_path = kl_strdup(path);
	g->got = 0;
	g->capture = !strcmp(path, "xtrabackup_binlog_info");
	if (g->capture)
		kl_buf_clear(&g->info);
	return g->open_path ? 0 : -ENOMEM;
}

static int close_file(struct mbk *g)
{
	kl_free(g->open_path);
	g->open_path = NULL;
	g->files++;
	/* a file stored, mariabackup still streaming: for a kill -9 mid-backup (t7205) */
	if (g->files == 3)
		kl_test_point("maria-backup-file");
	return kl_entry_backup_end(g->e);
}

/*
 * The redo log, which mariabackup's log copier writes as the server writes
 * it, between the chunks of the files being copied (--parallel=1 keeps only
 * those together): ib_logfile0 since MariaDB 10.8, xtrabackup_logfile before.
 */
static bool is_redo(const char *path)
{
	return !strcmp(path, "ib_logfile0") || !strcmp(path, "xtrabackup_logfile");
}

static int spool_chunk(struct mbk *g, const struct kl_xbs_chunk *c)
{
	int rc;

	if (g->spool_path && strcmp(g->spool_path, c->path))
		return kl_repo_fail(g->r, -KL_EDBSERVER,
				    "mariabackup's stream holds two redo logs, '%s' and '%s'",
				    g->spool_path, c->path);
	if (g->spool_ended)
		return kl_repo_fail(g->r, -KL_EDBSERVER,
				    "mariabackup's stream goes on with '%s' after its end",
				    c->path);
	if (!g->spool_path) {
		rc = kl_maria_tmpfile(g->r, &g->spool_fd);
		if (rc < 0)
			return rc;
		g->spool_path = kl_strdup(c->path);
		if (!g->spool_path)
			return -ENOMEM;
	}
	if (c->type == 'E') {
		g->spool_ended = true;
		return 0;
	}
	if (c->offset != g->spooled)
		return kl_repo_fail(g->r, -KL_EDBSERVER,
				    "mariabackup's stream writes '%s' at offset %llu, not %llu",
				    c->path, (unsigned long long)c->offset,
				    (unsigned long long)g->spooled);
	g->spooling = true;
	return 0;
}

static int on_chunk(void *ud, const struct kl_xbs_chunk *c)
{
	struct mbk *g = ud;
	int rc = 0;

	g->spooling = false;
	if (is_redo(c->path))
		return spool_chunk(g, c);
	if (g->open_path && strcmp(g->open_path, c->path))
		return kl_repo_fail(g->r, -KL_EDBSERVER,
				    "mariabackup's stream interleaves '%s' with '%s' (keel runs it "
				    "with --parallel=1)",
				    c->path, g->open_path);
	if (!g->open_path)
		rc = open_file(g, c->path);
	if (rc < 0)
		return rc;
	if (c->type == 'E')
		return close_file(g);
	if (c->offset != g->got)
		return kl_repo_fail(g->r, -KL_EDBSERVER,
				    "mariabackup's stream writes '%s' at offset %llu, not %llu",
				    c->path, (unsigned long long)c->offset,
				    (unsigned long long)g->got);
	return 0;
}

static int on_data(void *ud, const uint8_t *p, size_t n)
{
	struct mbk *g = ud;

	if (g->spooling) {
		int rc = kl_fs_pwrite_full(g->spool_fd, p, n, g->spooled);

		if (rc < 0)
			return kl_repo_fail(g->r, rc, "cannot write the redo log's temporary file");
		g->spooled += n;
		return 0;
	}
	g->got += n;
	if (g->capture && kl_buf_add(&g->info, p, n) < 0)
		return kl_repo_fail(g->r, -KL_EDBSERVER, "xtrabackup_binlog_info is too large");
	return kl_entry_backup_write(g->e, p, n);
}

static const struct kl_xbs_ops xbs_ops = {on_chunk, on_data};

/* The last lines of mariabackup's log (fd), for an error message. */
static void log_tail(int fd, char *buf, size_t size)
{
	off_t end = lseek(fd, 0, SEEK_END);
	off_t from = end > (off_t)size - 1 ? end - (off_t)size + 1 : 0;
	ssize_t n = end > 0 ? pread(fd, buf, size - 1, from) : 0;
	char *p;

	buf[n > 0 ? n : 0] = 0;
	for (n = (ssize_t)strlen(buf); n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ');)
		buf[--n] = 0;
	/* the last two lines */
	p = strrchr(buf, '\n');
	if (p && p > buf) {
		*p = 0;
		char *q = strrchr(buf, '\n');

		*p = '\n';
		p = q;
	}
	if (p)
		memmove(buf, p + 1, strlen(p + 1) + 1);
	for (p = buf; *p; p++)
		if (*p == '\n')
			*p = ';';
}

int kl_maria_child_wait(struct kl_repo *r, pid_t pid, int log_fd, const char *tool)
{
	char tail[600];
	int st;

	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return kl_repo_fail(r, -errno, "waitpid");
	if (WIFEXITED(st) && !WEXITSTATUS(st))
		return 0;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
		return kl_repo_fail(
			r, -KL_ECMD, "cannot run %s: is it installed? (Debian: apt-get install %s)",
			tool, strcmp(tool, "mariabackup") ? "mariadb-client" : "mariadb-backup");
	if (log_fd >= 0)
		log_tail(log_fd, tail, sizeof(tail));
	else
		*tail = 0;
	return kl_repo_fail(r, -KL_EDBSERVER, "%s failed (%s %d)%s%s", tool,
			    WIFEXITED(st) ? "exit status" : "signal",
			    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), *tail ? ": " : "",
			    tail);
}

int kl_maria_child_start(struct kl_repo *r, char *const argv[], int in_fd, int out_fd, int log_fd,
			 pid_t *ret)
{
	return kl_maria_child_start_tz(r, argv, in_fd, out_fd, log_fd, NULL, ret);
}

int kl_maria_child_start_tz(struct kl_repo *r, char *const argv[], int in_fd, int out_fd,
			    int log_fd, const char *tz, pid_t *ret)
{
	_cleanup_free_ char **envp = NULL;
	char tz_var[KL_MARIA_TZ_MAX + 40];
	pid_t pid;

	/* the child's environment is made here: after fork() only exec is safe (kl_env_with) */
	if (tz) {
		char *set[2] = {tz_var, NULL};

		if ((size_t)snprintf(tz_var, sizeof(tz_var), "TZ=%s", tz) >= sizeof(tz_var))
			return kl_repo_fail(r, -KL_EUSAGE, "time zone '%s' is too long", tz);
		if (kl_env_with(environ, set, &envp) < 0)
			return -ENOMEM;
	}
	pid = fork();
	if (pid < 0)
		return kl_repo_fail(r, -errno, "cannot start %s", argv[0]);
	if (pid == 0) {
		sigset_t none;

		/* keel blocks SIGINT and SIGTERM for its signal thread: not for the tool */
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (in_fd >= 0)
			dup2(in_fd, STDIN_FILENO);
		if (out_fd >= 0)
			dup2(out_fd, STDOUT_FILENO);
		if (log_fd >= 0)
			dup2(log_fd, STDERR_FILENO);
		execvpe(argv[0], argv, envp ? envp : environ);
		_exit(127);
	}
	*ret = pid;
	return 0;
}

int kl_maria_tmpfile(struct kl_repo *r, int *ret)
{
	const char *tmp = getenv("TMPDIR");
	int fd = open(tmp && *tmp ? tmp : "/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd < 0)
		return kl_repo_fail(r, -errno, "cannot create a temporary file");
	*ret = fd;
	return 0;
}

/* The spooled redo log, as one file, after the others. */
static int store_spool(struct mbk *g)
{
	_cleanup_free_ uint8_t *buf = NULL;
	uint64_t off = 0;
	int rc;

	if (!g->spool_ended)
		return kl_repo_fail(g->r, -KL_EDBSERVER, "mariabackup's stream ends inside '%s'",
				    g->spool_path);
	buf = kl_malloc(READ_SIZE);
	if (!buf)
		return -ENOMEM;
	rc = open_file(g, g->spool_path);
	while (rc >= 0 && off < g->spooled) {
		size_t n = g->spooled - off < READ_SIZE ? (size_t)(g->spooled - off) : READ_SIZE;

		rc = kl_fs_pread_full(g->spool_fd, buf, n, off);
		if (rc < 0)
			return kl_repo_fail(g->r, rc, "cannot read the redo log's temporary file");
		rc = kl_entry_backup_write(g->e, buf, n);
		off += n;
	}
	return rc < 0 ? rc : close_file(g);
}

/* Runs mariabackup and feeds its stream to the parser. */
static int stream(struct mbk *g, const struct kl_maria_tool *t, const char *datadir,
		  const char *tmpdir)
{
	char *argv[KL_ARRAY_SIZE(t->args) + 8], target[4200], dd[4200];
	_cleanup_close_ int log_fd = -1;
	int pfd[2], rc, rc2;
	bool flowing = false;
	uint8_t *buf;
	size_t k = 0;
	pid_t pid;

	snprintf(target, sizeof(target), "--target-dir=%s", tmpdir);
	snprintf(dd, sizeof(dd), "--datadir=%s", datadir);
	argv[k++] = (char *)"mariabackup";
	for (size_t i = 0; i < t->n; i++)
		argv[k++] = t->args[i];
	argv[k++] = (char *)"--backup";
	argv[k++] = (char *)"--stream=xbstream";
	argv[k++] = (char *)"--parallel=1";
	argv[k++] = target;
	argv[k++] = dd;
	argv[k] = NULL;
	rc = kl_maria_tmpfile(g->r, &log_fd);
	if (rc < 0)
		return rc;
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	rc = kl_maria_child_start(g->r, argv, -1, pfd[1], log_fd, &pid);
	close(pfd[1]);
	if (rc < 0) {
		close(pfd[0]);
		return rc;
	}
	buf = kl_malloc(READ_SIZE);
	rc = buf ? 0 : -ENOMEM;
	kl_xbs_init(&g->x, &xbs_ops, g);
	while (rc >= 0) {
		ssize_t n = read(pfd[0], buf, READ_SIZE);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : 0;
			break;
		}
		/* the stream flows: mariabackup is done with its target directory (make_tmpdir) */
		if (!flowing)
			rmdir(tmpdir);
		flowing = true;
		rc = kl_xbs_feed(&g->x, buf, (size_t)n);
		if (rc == -KL_ECORRUPT)
			rc = kl_repo_fail(g->r, -KL_EDBSERVER,
					  "mariabackup's stream is malformed (at '%s')", g->x.path);
	}
	if (rc < 0)
		kill(pid, SIGTERM);
	close(pfd[0]);
	kl_free(buf);
	rc2 = kl_maria_child_wait(g->r, pid, log_fd, "mariabackup");
	if (rc >= 0)
		rc = rc2;
	if (rc >= 0 && kl_xbs_finish(&g->x) < 0)
		rc = kl_repo_fail(g->r, -KL_EDBSERVER, "mariabackup's stream ends mid-chunk");
	if (rc >= 0 && g->open_path)
		rc = kl_repo_fail(g->r, -KL_EDBSERVER, "mariabackup's stream ends inside '%s'",
				  g->open_path);
	if (rc >= 0 && g->spool_path)
		rc = store_spool(g);
	return rc;
}

/* "bin.000003\t1234\t0-1-42\n" */
static int binlog_info(struct mbk *g, struct kl_snapshot_db *db)
{
	char *s = (char *)g->info.data, *tab, *tab2, *end;
	unsigned long long pos;
	uint64_t num;

	if (!g->info.len)
		return kl_repo_fail(g->r, -KL_EDBSERVER,
				    "mariabackup recorded no binary log position "
				    "(xtrabackup_binlog_info): is log_bin on?");
	s[strcspn(s, "\r\n")] = 0;
	tab = strchr(s, '\t');
	if (!tab)
		goto bad;
	*tab = 0;
	tab2 = strchr(tab + 1, '\t');
	if (tab2)
		*tab2 = 0;
	errno = 0;
	pos = strtoull(tab + 1, &end, 10);
	if (errno || end == tab + 1 || *end || kl_maria_binlog_number(s, &num) < 0 ||
	    pos > UINT32_MAX)
		goto bad;
	db->binlog_file = kl_strdup(s);
	db->binlog_pos = pos;
	db->gtid = tab2 && tab2[1] ? kl_strdup(tab2 + 1) : NULL;
	db->start_lsn = db->stop_lsn = num << 32 | pos;
	if (!db->binlog_file || (tab2 && tab2[1] && !db->gtid))
		return -ENOMEM;
	return 0;
bad:
	return kl_repo_fail(g->r, -KL_EDBSERVER, "unexpected xtrabackup_binlog_info '%.100s'",
			    (const char *)g->info.data);
}

int kl_maria_binlog_number(const char *file, uint64_t *ret)
{
	const char *dot = strrchr(file, '.');
	uint64_t v = 0;

	if (!dot || !dot[1] || strlen(dot + 1) > 9 ||
	    strspn(dot + 1, "0123456789") != strlen(dot + 1))
		return -KL_EUSAGE;
	for (const char *p = dot + 1; *p; p++)
		v = v * 10 + (uint64_t)(*p - '0');
	*ret = v;
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

void kl_maria_rmtree(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/*
 * mariabackup's --target-dir. With --stream it only checks the directory
 * at its start and writes nothing there; a SIGKILLed keel cannot remove
 * it, though. So: it is removed as soon as the stream flows (stream()),
 * and while it exists keel holds a flock on it, which dies with keel:
 * every backup first removes the unlocked keel-mariabackup-* of this user,
 * which no live keel owns (a kill before the stream flowed left them).
 */
#define TMPDIR_PREFIX "keel-mariabackup-"

static void sweep_tmpdirs(const char *tmp)
{
	DIR *d = opendir(tmp);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		char path[4200];
		struct stat st;
		int fd;

		if (strncmp(de->d_name, TMPDIR_PREFIX, strlen(TMPDIR_PREFIX)) ||
		    strlen(de->d_name) != strlen(TMPDIR_PREFIX) + 6)
			continue;
		fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		/* ours, and no live keel holds it (the lock goes with its process) */
		if (fstat(fd, &st) == 0 && st.st_uid == geteuid() &&
		    flock(fd, LOCK_EX | LOCK_NB) == 0) {
			snprintf(path, sizeof(path), "%s/%s", tmp, de->d_name);
			kl_maria_rmtree(path);
		}
		close(fd);
	}
	closedir(d);
}

/* Makes and locks the directory (its path into path); the lock's descriptor into *ret. */
static int make_tmpdir(struct kl_repo *r, char *path, size_t size, int *ret)
{
	const char *tmp = getenv("TMPDIR");

	if (!tmp || !*tmp)
		tmp = "/tmp";
	sweep_tmpdirs(tmp);
	for (int attempt = 0; attempt < 8; attempt++) {
		struct stat a, b;
		int fd;

		snprintf(path, size, "%s/" TMPDIR_PREFIX "XXXXXX", tmp);
		if (!mkdtemp(path))
			return kl_repo_fail(r, -errno,
					    "cannot create a temporary directory in '%s'", tmp);
		fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue; /* another keel's sweep took it before the lock: anew */
		/* still the one made: a sweep may have removed it and another taken the name */
		if (flock(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &a) == 0 &&
		    stat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
			*ret = fd;
			return 0;
		}
		close(fd);
	}
	return kl_repo_fail(r, -EAGAIN, "cannot keep a temporary directory in '%s'", tmp);
}

static int commit(struct mbk *g, const char *name, const struct kl_maria_server *sv,
		  struct kl_snapshot_db *db, struct kl_db_backup_result *ret)
{
	struct kl_backup_result br;
	struct kl_snapshot snap = {0};
	char path[8 + KL_DB_NAME_MAX], *paths[1] = {path}, sid[16];
	int rc;

	snprintf(path, sizeof(path), "db:%s", name);
	snprintf(sid, sizeof(sid), "%" PRIu32, sv->server_id);
	snap.kind = KL_SNAP_DATABASE;
	snap.paths = paths;
	snap.n_paths = 1;
	snap.has_db = true;
	snap.db = *db;
	snap.db.engine = KL_DB_MARIADB;
	snap.db.role = KL_DB_BASE;
	snap.db.name = (char *)name;
	snap.db.system_id = sid;
	snap.db.timeline = snap.db.stop_timeline = 1;
	snap.db.server_version = (char *)sv->version;
	snap.db.server_id = sv->server_id;
	snap.db.server_name = (char *)sv->hostname;
	snap.db.time_zone = *sv->time_zone ? (char *)sv->time_zone : NULL;
	snap.db.utc_offset = sv->utc_offset;
	snap.db.has_utc_offset = sv->has_utc_offset;
	rc = kl_entry_backup_commit(g->e, &snap, &br);
	if (rc < 0)
		return rc;
	ret->id = br.id;
	ret->stats = br.stats;
	ret->timeline = 1;
	ret->start_lsn = db->start_lsn;
	ret->stop_lsn = db->stop_lsn;
	snprintf(ret->name, sizeof(ret->name), "%s", name);
	snprintf(ret->system_id, sizeof(ret->system_id), "%s", sid);
	snprintf(ret->binlog_file, sizeof(ret->binlog_file), "%s", db->binlog_file);
	snprintf(ret->gtid, sizeof(ret->gtid), "%s", db->gtid ? db->gtid : "");
	return 0;
}

/* Checks the server, then streams its backup into g. */
static int take(struct mbk *g, const struct kl_db_backup_opts *o, char *name, size_t size,
		struct kl_maria_server *sv, struct kl_snapshot_db *db)
{
	struct kl_maria_uri u = {0};
	struct kl_maria_tool t = {0};
	struct kl_backup_opts bo;
	char tmpdir[4096];
	int tmp_lock = -1;
	struct stat st;
	MYSQL *m = NULL;
	int rc = kl_maria_open(g->r, o->conninfo, &u, &m, sv);

	if (rc >= 0)
		rc = kl_maria_server_tz(g->r, m, sv);
	if (m)
		mysql_close(m);
	if (rc >= 0 && !sv->log_bin)
		rc = kl_repo_fail(
			g->r, -KL_EDBSERVER,
			"binary logging is off on the server (log_bin): keel needs it for "
			"the backup's position and point-in-time restores; set log_bin = "
			"mariadb-bin and server_id = 1 in the [mariadb] section of its "
			"configuration (or start mariadbd with --log-bin --server-id=1) and "
			"restart it");
	if (rc >= 0) {
		if (o->name)
			snprintf(name, size, "%s", o->name);
		else
			kl_maria_default_name(sv, name, size);
		snprintf(g->tag, sizeof(g->tag), "db:%s", name);
		g->tags[0] = (char *)"db";
		g->tags[1] = g->tag;
		/* the files keep the data directory's owner, so a restore as root gives mysql's */
		if (stat(sv->datadir, &st) < 0)
			rc = kl_repo_fail(g->r, -errno,
					  "cannot read the server's data directory '%s' (keel runs "
					  "mariabackup, which must run on the server's host)",
					  sv->datadir);
	}
	if (rc >= 0) {
		g->owner.uid = st.st_uid;
		g->owner.gid = st.st_gid;
		g->owner.mode = 0660;
		g->owner.mtime_sec = g->owner.atime_sec = g->owner.ctime_sec =
			kl_time_now_ns() / KL_NSEC_PER_SEC;
		rc = kl_maria_tool_init(g->r, &u, &t);
	}
	if (rc >= 0)
		rc = make_tmpdir(g->r, tmpdir, sizeof(tmpdir), &tmp_lock);
	if (rc >= 0)
		kl_test_point("maria-tmpdir"); /* made, mariabackup not started: t7208 kills here */
	if (rc >= 0) {
		kl_backup_opts_init(&bo);
		bo.host = o->host;
		bo.tags = g->tags;
		bo.n_tags = 2;
		bo.threads = o->threads;
		bo.report = o->report;
		rc = kl_entry_backup_new(g->r, &bo, &g->e);
		if (rc >= 0)
			rc = add_dirs(g, "data/");
		if (rc >= 0)
			rc = stream(g, &t, sv->datadir, tmpdir);
		kl_maria_rmtree(tmpdir);
		close(tmp_lock);
	}
	if (rc >= 0)
		rc = binlog_info(g, db);
	kl_maria_tool_release(&t);
	kl_maria_uri_release(&u);
	return rc;
}

int kl_db_maria_backup(struct kl_repo *r, const struct kl_db_backup_opts *o,
		       struct kl_db_backup_result *ret)
{
	struct mbk g = {.r = r, .spool_fd = -1};
	struct kl_maria_server sv;
	struct kl_snapshot_db db = {0};
	char name[KL_DB_NAME_MAX + 1];
	int rc = 0;

	memset(ret, 0, sizeof(*ret));
	if (o->name && !kl_db_name_valid(o->name))
		return kl_repo_fail(r, -KL_EUSAGE,
				    "invalid database name '%s' (1 to 64 of A-Z a-z 0-9 . _ -)",
				    o->name);
	kl_buf_init(&g.path, KL_XBS_MAX_PATH + 16);
	kl_buf_init(&g.info, INFO_MAX);
	kl_buf_init(&g.dirs, 1 << 20);
	rc = take(&g, o, name, sizeof(name), &sv, &db);
	if (rc >= 0)
		rc = commit(&g, name, &sv, &db, ret);
	kl_free(db.binlog_file);
	kl_free(db.gtid);
	kl_free(g.open_path);
	kl_free(g.spool_path);
	if (g.spool_fd >= 0)
		close(g.spool_fd);
	kl_entry_backup_free(g.e);
	kl_buf_release(&g.path);
	kl_buf_release(&g.info);
	kl_buf_release(&g.dirs);
	return rc;
}
