/*
 * MariaDB restores (docs/DATABASES.md, "MariaDB"): the chosen base
 * backup's files into DIR, `mariabackup --prepare` on them, and for a
 * moment after the backup the binary logs from its position replayed by
 * a temporary mariadbd keel starts on a private socket in DIR (and stops),
 * so that DIR is a data directory plain `mariadbd --datadir=DIR` starts.
 */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "maria-internal.h"

int kl_db_maria_named(struct kl_repo *r, const char *name)
{
	struct kl_db_list l;
	const struct kl_db_info *d;
	int rc = kl_db_list(r, &l);

	if (rc < 0)
		return rc;
	d = kl_db_find(&l, name);
	rc = d && d->engine == KL_DB_MARIADB;
	kl_db_list_release(&l);
	return rc;
}

/* The target must not exist, or be an empty directory; it is made. */
static int make_target(struct kl_repo *r, const char *target)
{
	DIR *dir = opendir(target);
	struct dirent *de;
	bool empty = true;

	if (!dir && errno != ENOENT)
		return kl_repo_fail(r, -errno, "cannot open restore target '%s'", target);
	if (!dir)
		return mkdir(target, 0700) < 0
			       ? kl_repo_fail(r, -errno, "cannot create '%s'", target)
			       : 0;
	while ((de = readdir(dir)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			empty = false;
	closedir(dir);
	if (!empty)
		return kl_repo_fail(
			r, -KL_EUSAGE,
			"restore target '%s' is not empty: a data directory is restored "
			"into a new or empty directory",
			target);
	return 0;
}

/* The binlog files of dir with the base's prefix, from number first on: the newest number. */
static int scan_binlogs(struct kl_repo *r, const char *dir, const char *prefix, uint64_t first,
			uint64_t *last_ret, off_t *size_ret, int64_t *mtime_ret)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t plen = strlen(prefix);

	*last_ret = 0;
	if (!d)
		return kl_repo_fail(r, -errno, "cannot open --binlog-dir '%s'", dir);
	while ((de = readdir(d))) {
		uint64_t num;
		struct stat st;

		if (strncmp(de->d_name, prefix, plen) || de->d_name[plen] != '.' ||
		    kl_maria_binlog_number(de->d_name, &num) < 0 || num < first ||
		    num < *last_ret || fstatat(dirfd(d), de->d_name, &st, 0) < 0)
			continue;
		*last_ret = num;
		*size_ret = st.st_size;
		*mtime_ret = (int64_t)st.st_mtim.tv_sec * KL_NSEC_PER_SEC + st.st_mtim.tv_nsec;
	}
	closedir(d);
	return 0;
}

/* The moment of --time and the server's time zone (maria-tz.c), found once per restore. */
struct when {
	int64_t t; /* --time, ns since the epoch */
	bool has_server;
	struct kl_maria_tz server; /* the temporary server replays in it */
};

struct pick {
	const struct kl_snapshot_ref *base;
	char prefix[256]; /* the binlog files' name before ".NNNNNN" */
	uint64_t last;	  /* the newest binlog file number to replay */
	bool replay;
};

/* Whether the moment o names is after ref's consistent position. */
static bool after(const struct kl_db_restore_opts *o, const struct kl_snapshot_ref *ref, int64_t t)
{
	if (o->has_lsn)
		return o->lsn >= ref->s.db.stop_lsn;
	if (o->time)
		return t >= ref->s.time_end_ns;
	return true;
}

static int choose_base(struct kl_repo *r, const struct kl_db_info *d,
		       const struct kl_db_restore_opts *o, int64_t t, struct pick *p)
{
	char hex[2 * KL_ID_LEN + 1];

	for (size_t i = d->n_bases; i-- > 0 && !p->base;) {
		kl_id_hex(&d->bases[i].id, hex);
		if (o->base ? !strncmp(hex, o->base, strlen(o->base)) : after(o, &d->bases[i], t))
			p->base = &d->bases[i];
	}
	if (!d->n_bases)
		return kl_repo_fail(r, -KL_ENOTFOUND, "no base backup of database '%s'", o->name);
	if (!p->base && o->base)
		return kl_repo_fail(r, -KL_ENOTFOUND, "no base backup %s of database '%s'", o->base,
				    o->name);
	if (!p->base || !after(o, p->base, t))
		return kl_repo_fail(r, -KL_ENOTFOUND,
				    "the target is before the %s base backup of '%s' (consistent "
				    "at binlog %s:%" PRIu64 ")",
				    o->base ? "chosen" : "oldest", o->name,
				    d->bases[0].s.db.binlog_file, d->bases[0].s.db.binlog_pos);
	return 0;
}

/* Chooses the base backup and checks that the binlogs cover the target. */
static int choose(struct kl_repo *r, const struct kl_db_info *d, const struct kl_db_restore_opts *o,
		  const struct when *w, struct pick *p)
{
	const struct kl_snapshot_db *db;
	uint64_t first, tfile = o->lsn >> 32;
	int64_t t = w->t, mtime = 0;
	off_t size = 0;
	int rc;

	rc = choose_base(r, d, o, t, p);
	if (rc < 0)
		return rc;
	db = &p->base->s.db;
	first = db->start_lsn >> 32;
	if (!db->binlog_file || strlen(db->binlog_file) >= sizeof(p->prefix))
		return kl_repo_fail(r, -KL_ECORRUPT, "the base backup names no binlog file");
	snprintf(p->prefix, sizeof(p->prefix), "%.*s",
		 (int)(strrchr(db->binlog_file, '.') - db->binlog_file), db->binlog_file);
	p->replay = o->binlog_dir || (!o->latest && (o->has_lsn ? o->lsn > db->stop_lsn : true));
	if (!p->replay)
		return 0;
	if (!o->binlog_dir && d->n_logs)
		return 1; /* kl_db_maria_restore fetches them, then calls choose() again */
	if (!o->binlog_dir)
		return kl_repo_fail(
			r, -KL_ENOTFOUND,
			"the target is not covered: the repository holds '%s' at binlog "
			"%s:%" PRIu64 " (the base backup) and no binary logs after it "
			"(keel db stream stores them; --binlog-dir replays a directory "
			"of binlog files)",
			o->name, db->binlog_file, db->binlog_pos);
	rc = scan_binlogs(r, o->binlog_dir, p->prefix, first, &p->last, &size, &mtime);
	if (rc < 0)
		return rc;
	if (!p->last)
		return kl_repo_fail(r, -KL_ENOTFOUND,
				    "--binlog-dir '%s' has no %s.%06" PRIu64 " or later",
				    o->binlog_dir, p->prefix, first);
	if ((o->has_lsn &&
	     (tfile > p->last || (tfile == p->last && (o->lsn & 0xffffffff) > (uint64_t)size))) ||
	    (o->time && t > mtime))
		return kl_repo_fail(
			r, -KL_ENOTFOUND,
			"the target is not covered: base backup at %s:%" PRIu64
			", binary logs up to %s.%06" PRIu64 ":%lld (written %lld s ago)",
			db->binlog_file, db->binlog_pos, p->prefix, p->last, (long long)size,
			(long long)((kl_time_now_ns() - mtime) / KL_NSEC_PER_SEC));
	if (o->has_lsn)
		p->last = tfile;
	return 0;
}

/* lchown everything below path (the restored files, keel's own: no symlink is followed). */
static int chown_tree(const char *path, uid_t uid, gid_t gid)
{
	char sub[4096];
	struct dirent *de;
	DIR *d;
	int rc = 0;

	if (lchown(path, uid, gid) < 0)
		return -errno;
	d = opendir(path);
	if (!d)
		return -errno;
	while (rc >= 0 && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name) >= sizeof(sub))
			rc = -ENAMETOOLONG;
		else if (de->d_type == DT_DIR)
			rc = chown_tree(sub, uid, gid);
		else if (lchown(sub, uid, gid) < 0)
			rc = -errno;
	}
	closedir(d);
	return rc;
}

/* Runs argv to its end, its output in a log for the error message. */
static int run(struct kl_repo *r, char *const argv[], const char *tool)
{
	_cleanup_close_ int log_fd = -1;
	pid_t pid;
	int rc = kl_maria_tmpfile(r, &log_fd);

	if (rc >= 0)
		rc = kl_maria_child_start(r, argv, -1, log_fd, log_fd, &pid);
	if (rc >= 0)
		rc = kl_maria_child_wait(r, pid, log_fd, tool);
	return rc;
}

static int prepare(struct kl_repo *r, const char *target)
{
	char td[4200];
	char *argv[] = {(char *)"mariabackup", (char *)"--prepare", td, NULL};

	snprintf(td, sizeof(td), "--target-dir=%s", target);
	return run(r, argv, "mariabackup");
}

/* The temporary server on a private socket. */
struct tmp_server {
	pid_t pid;
	int log_fd;
	char sockdir[64], sock[128], log[4200];
	uid_t uid;
	gid_t gid;
};

static int server_start(struct kl_repo *r, const char *target, const struct when *w,
			struct tmp_server *s)
{
	char tz[KL_MARIA_TZ_MAX + 32];
	char dd[4200], so[160], pf[160], le[4300], user[64];
	char *argv[] = {(char *)"mariadbd",
			(char *)"--no-defaults",
			dd,
			so,
			pf,
			le,
			(char *)"--skip-networking",
			(char *)"--skip-grant-tables",
			(char *)"--skip-log-bin",
			(char *)"--skip-slave-start",
			user,
			NULL};
	MYSQL *m = NULL;
	int st, rc;

	/* a socket path has at most 107 bytes: a short private directory, not DIR */
	snprintf(s->sockdir, sizeof(s->sockdir), "/tmp/keel-sock-XXXXXX");
	if (!mkdtemp(s->sockdir))
		return kl_repo_fail(r, -errno, "cannot create a socket directory");
	if (geteuid() == 0 && chown(s->sockdir, s->uid, s->gid) < 0)
		return kl_repo_fail(r, -errno, "cannot chown '%s'", s->sockdir);
	snprintf(s->sock, sizeof(s->sock), "%s/sock", s->sockdir);
	snprintf(dd, sizeof(dd), "--datadir=%s", target);
	snprintf(so, sizeof(so), "--socket=%s", s->sock);
	snprintf(pf, sizeof(pf), "--pid-file=%s/pid", s->sockdir);
	snprintf(s->log, sizeof(s->log), "%s/keel-restore.err", target);
	snprintf(le, sizeof(le), "--log-error=%s", s->log);
	/* the server runs as the owner of the files (mysql), not as root */
	snprintf(user, sizeof(user), "--user=%u", (unsigned)s->uid);
	if (geteuid() != 0)
		argv[10] = NULL;
	/* its words before --log-error takes over (warnings about limits) go there too */
	s->log_fd = open(s->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (s->log_fd < 0)
		return kl_repo_fail(r, -errno, "cannot create '%s'", s->log);
	if (geteuid() == 0 && fchown(s->log_fd, s->uid, s->gid) < 0)
		return kl_repo_fail(r, -errno, "cannot chown '%s'", s->log);
	/*
	 * In the original server's zone: a statement the binlog holds with a
	 * local time ('2026-12-05 23:40:01' into a TIMESTAMP column, the session
	 * in zone SYSTEM) must give the same moment as it did there.
	 */
	if (w->has_server)
		kl_maria_tz_env(&w->server, tz, sizeof(tz));
	rc = kl_maria_child_start_tz(r, argv, -1, s->log_fd, s->log_fd, w->has_server ? tz : NULL,
				     &s->pid);
	for (int i = 0; rc >= 0 && i < 1200; i++) {
		bool up;

		if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
			s->pid = 0;
			return kl_repo_fail(
				r, -KL_EDBSERVER,
				"the temporary server for the binlog replay did not start "
				"(see '%s')",
				s->log);
		}
		m = mysql_init(NULL);
		up = m && mysql_real_connect(m, "localhost", "root", NULL, NULL, 0, s->sock, 0);
		if (m)
			mysql_close(m);
		if (up)
			return 0;
		usleep(100 * 1000);
	}
	return rc < 0 ? rc
		      : kl_repo_fail(r, -KL_EDBSERVER,
				     "the temporary server did not accept connections in 120 s");
}

static int server_stop(struct kl_repo *r, struct tmp_server *s)
{
	int st, rc = 0;

	if (s->pid > 0) {
		kill(s->pid, SIGTERM);
		while (waitpid(s->pid, &st, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			rc = kl_repo_fail(
				r, -KL_EDBSERVER,
				"the temporary server did not shut down cleanly (see '%s')",
				s->log);
		s->pid = 0;
	}
	if (*s->sockdir)
		kl_maria_rmtree(s->sockdir);
	kl_closep(&s->log_fd);
	return rc;
}

/* Copies mariadb-binlog's output (from) to mariadb's input (to), after FLUSH PRIVILEGES. */
static int relay(int from, int to)
{
	/* --skip-grant-tables would refuse the binlog's CREATE USER and GRANT */
	static const char head[] = "FLUSH PRIVILEGES;\n";
	uint8_t *buf = kl_malloc(1 << 16);
	ssize_t n = (ssize_t)sizeof(head) - 1;
	int rc = buf ? 0 : -ENOMEM;

	if (buf)
		memcpy(buf, head, (size_t)n);
	while (rc >= 0 && n > 0) {
		for (ssize_t off = 0; rc >= 0 && off < n;) {
			ssize_t w = send(to, buf + off, (size_t)(n - off), MSG_NOSIGNAL);

			if (w < 0 && errno != EINTR)
				rc = -errno;
			off += w > 0 ? w : 0;
		}
		while (rc >= 0 && (n = read(from, buf, 1 << 16)) < 0 && errno == EINTR)
			;
		if (n < 0)
			rc = -errno;
	}
	kl_free(buf);
	return rc;
}

static int replay(struct kl_repo *r, const struct kl_db_restore_opts *o, const struct when *w,
		  const struct pick *p, struct tmp_server *s)
{
	const struct kl_snapshot_db *db = &p->base->s.db;
	uint64_t first = db->start_lsn >> 32, n = p->last - first + 1;
	char start[64], stop[128], sock[160], **av = kl_calloc(n + 8, sizeof(char *));
	char *cli[] = {(char *)"mariadb",     (char *)"--no-defaults", sock,
		       (char *)"--user=root", (char *)"--binary-mode", NULL};
	_cleanup_close_ int log_fd = -1;
	int ab[2] = {-1, -1}, bc[2] = {-1, -1}, rc, rc2, rc3;
	pid_t bin = 0, sql = 0;
	size_t k = 0;

	if (!av)
		return -ENOMEM;
	snprintf(start, sizeof(start), "--start-position=%" PRIu64, db->binlog_pos);
	snprintf(sock, sizeof(sock), "--socket=%s", s->sock);
	av[k++] = (char *)"mariadb-binlog";
	av[k++] = (char *)"--no-defaults";
	av[k++] = start;
	if (o->time) {
		/* the moment keel chose by, in UTC, for a mariadb-binlog that runs in UTC */
		time_t u = (time_t)((w->t + KL_NSEC_PER_SEC - 1) / KL_NSEC_PER_SEC);
		struct tm tm;

		strftime(stop, sizeof(stop), "--stop-datetime=%Y-%m-%d %H:%M:%S",
			 gmtime_r(&u, &tm));
	} else if (o->has_lsn)
		snprintf(stop, sizeof(stop), "--stop-position=%" PRIu32, (uint32_t)o->lsn);
	if (o->time || o->has_lsn)
		av[k++] = stop;
	rc = 0;
	for (uint64_t i = first; rc >= 0 && i <= p->last; i++) {
		size_t len = strlen(o->binlog_dir) + strlen(p->prefix) + 24;

		if (!(av[k] = kl_malloc(len)))
			rc = -ENOMEM;
		else
			snprintf(av[k++], len, "%s/%s.%06" PRIu64, o->binlog_dir, p->prefix, i);
	}
	if (rc >= 0)
		rc = kl_maria_tmpfile(r, &log_fd);
	if (rc >= 0 && (pipe2(ab, O_CLOEXEC) < 0 ||
			socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, bc) < 0))
		rc = -errno;
	if (rc >= 0)
		rc = kl_maria_child_start_tz(r, av, -1, ab[1], log_fd, "UTC0", &bin);
	if (rc >= 0)
		rc = kl_maria_child_start(r, cli, bc[1], log_fd, log_fd, &sql);
	kl_closep(&ab[1]);
	kl_closep(&bc[1]);
	if (rc >= 0)
		rc = relay(ab[0], bc[0]);
	kl_closep(&ab[0]);
	kl_closep(&bc[0]);
	rc2 = bin ? kl_maria_child_wait(r, bin, log_fd, "mariadb-binlog") : 0;
	rc3 = sql ? kl_maria_child_wait(r, sql, log_fd, "mariadb") : 0;
	for (size_t i = 3 + !!(o->time || o->has_lsn); i < k; i++)
		kl_free(av[i]);
	kl_free(av);
	return rc < 0 ? rc : rc2 < 0 ? rc2 : rc3;
}

/* Replays the binlogs through a temporary server in target. */
static int replay_all(struct kl_repo *r, const struct kl_db_restore_opts *o, const struct when *w,
		      const struct pick *p, uid_t uid, gid_t gid)
{
	struct tmp_server s = {.uid = uid, .gid = gid, .log_fd = -1};
	int rc = server_start(r, o->target, w, &s), rc2;

	if (rc >= 0)
		rc = replay(r, o, w, p, &s);
	rc2 = server_stop(r, &s);
	if (rc >= 0)
		rc = rc2;
	if (rc >= 0)
		unlink(s.log);
	return rc;
}

static int restore(struct kl_repo *r, const struct kl_db_restore_opts *o, const struct when *w,
		   const struct pick *p)
{
	struct kl_restore_opts ro = {0};
	struct kl_restore_stats st;
	struct kl_node nd;
	bool root = geteuid() == 0;
	int rc = make_target(r, o->target);

	if (rc < 0)
		return rc;
	ro.no_owner = !root;
	ro.threads = o->threads;
	ro.report = o->report;
	ro.target = o->target;
	rc = kl_restore(r, &p->base->s.tree, "/data", &ro, &st);
	if (rc >= 0)
		rc = kl_tree_lookup(r, &p->base->s.tree, "/data", &nd);
	if (rc < 0)
		return rc;
	if (!root) {
		nd.uid = geteuid();
		nd.gid = getegid();
	}
	rc = prepare(r, o->target);
	/* mariabackup --prepare ran as keel's user: the server's user must own what it made */
	if (rc >= 0 && root && (rc = chown_tree(o->target, nd.uid, nd.gid)) < 0)
		rc = kl_repo_fail(r, rc, "cannot give '%s' its owner", o->target);
	if (rc >= 0 && chmod(o->target, 0700) < 0)
		rc = kl_repo_fail(r, -errno, "cannot chmod '%s'", o->target);
	if (rc >= 0 && p->replay)
		rc = replay_all(r, o, w, p, nd.uid, nd.gid);
	kl_node_release(&nd);
	return rc;
}

static void note(const struct kl_db_restore_opts *o, const char *msg)
{
	if (o->report.warn)
		o->report.warn(o->report.ud, NULL, 0, msg);
}

/*
 * w->server: the zone the newest base backup (or --base) recorded; the
 * zone --time is read in: --time-zone, else the server's, else (a base
 * backup of a keel before fields 30 and 31) keel's own, with a note.
 */
static int zones(struct kl_repo *r, const struct kl_db_info *d, const struct kl_db_restore_opts *o,
		 struct when *w)
{
	const struct kl_snapshot_db *rec = NULL;
	char hex[2 * KL_ID_LEN + 1], msg[512], zs[KL_MARIA_TZ_MAX + 1];
	struct kl_maria_tz tz = {.local = true};

	for (size_t i = d->n_bases; i-- > 0 && !rec;) {
		const struct kl_snapshot_db *db = &d->bases[i].s.db;

		kl_id_hex(&d->bases[i].id, hex);
		if ((!o->base || !strncmp(hex, o->base, strlen(o->base))) &&
		    (db->time_zone || db->has_utc_offset))
			rec = db;
	}
	if (rec && rec->time_zone && kl_maria_tz_parse(rec->time_zone, &w->server) == 0) {
		w->has_server = true;
	} else if (rec && rec->has_utc_offset) {
		w->has_server = true;
		w->server = (struct kl_maria_tz){.offset = rec->utc_offset};
		kl_maria_tz_format(&w->server, zs, sizeof(zs));
		snprintf(msg, sizeof(msg),
			 "the server's time zone%s%s%s is not known on this host: using its "
			 "offset from UTC when the base backup was taken, %s",
			 rec->time_zone ? " '" : "", rec->time_zone ? rec->time_zone : "",
			 rec->time_zone ? "'" : "", zs);
		if (o->time && !o->time_zone)
			note(o, msg);
	}
	if (o->time_zone && !o->time)
		return kl_repo_fail(r, -KL_EUSAGE, "--time-zone goes with --time");
	if (o->time_zone && kl_maria_tz_parse(o->time_zone, &tz) < 0)
		return kl_repo_fail(r, -KL_EUSAGE,
				    "unknown time zone '%s' (an IANA name such as Europe/Berlin, "
				    "UTC, or an offset such as +02:00)",
				    o->time_zone);
	if (!o->time_zone && w->has_server)
		tz = w->server;
	if (o->time && !o->time_zone && !w->has_server)
		note(o, "the base backups of this database record no time zone of the server "
			"(taken by an older keel): --time is read in keel's local time zone; "
			"--time-zone says which zone it is in");
	kl_maria_tz_format(&tz, zs, sizeof(zs));
	if (o->time && kl_maria_parse_time(o->time, &tz, &w->t) < 0)
		return kl_repo_fail(r, -KL_EUSAGE,
				    "invalid --time '%s' (YYYY-MM-DD HH:MM:SS, read in %s; or with "
				    "an offset: +02:00, Z)",
				    o->time, tz.local ? "keel's local time zone" : zs);
	return 0;
}

int kl_db_maria_restore(struct kl_repo *r, const struct kl_db_restore_opts *o,
			struct kl_id *base_ret)
{
	struct pick p = {0};
	struct when w = {0};
	struct kl_db_list l;
	const struct kl_db_info *d;
	int rc;

	if (!o->dump && o->latest + !!o->time + o->has_lsn != 1)
		return kl_repo_fail(r, -KL_EUSAGE, "give one of --latest, --time and --position");
	if (!o->target || !*o->target)
		return kl_repo_fail(r, -KL_EUSAGE, "no restore target given");
	rc = kl_db_list(r, &l);
	if (rc < 0)
		return rc;
	d = kl_db_find(&l, o->name);
	if (d && o->dump) {
		rc = kl_maria_restore_dump(r, d, o, base_ret);
		kl_db_list_release(&l);
		return rc;
	}
	rc = d ? zones(r, d, o, &w)
	       : kl_repo_fail(r, -KL_ENOTFOUND, "no database '%s' in the repository", o->name);
	if (rc >= 0)
		rc = choose(r, d, o, &w, &p);
	if (rc == 1) {
		/* the repository's binlog records into a private directory, replayed from there */
		struct kl_db_restore_opts o2 = *o;
		const char *tmp = getenv("TMPDIR");
		char dir[4096];

		snprintf(dir, sizeof(dir), "%s/keel-binlogs-XXXXXX", tmp && *tmp ? tmp : "/tmp");
		rc = mkdtemp(dir) ? 0 : kl_repo_fail(r, -errno, "cannot create '%s'", dir);
		o2.binlog_dir = dir;
		if (rc >= 0)
			rc = kl_maria_binlog_fetch(r, o->name, p.base->s.db.start_lsn, o, w.t, dir);
		memset(&p, 0, sizeof(p));
		if (rc >= 0)
			rc = choose(r, d, &o2, &w, &p);
		if (rc >= 0) {
			*base_ret = p.base->id;
			rc = restore(r, &o2, &w, &p);
		}
		kl_maria_rmtree(dir);
		kl_db_list_release(&l);
		return rc;
	}
	if (rc >= 0) {
		*base_ret = p.base->id;
		rc = restore(r, o, &w, &p);
	}
	kl_db_list_release(&l);
	return rc;
}

int kl_db_maria_position_parse(const char *s, uint64_t *ret)
{
	const char *colon = strrchr(s, ':');
	char file[256], *end;
	unsigned long long pos;
	uint64_t num;

	if (!colon || colon == s || (size_t)(colon - s) >= sizeof(file) || !colon[1])
		return -KL_EUSAGE;
	snprintf(file, sizeof(file), "%.*s", (int)(colon - s), s);
	errno = 0;
	pos = strtoull(colon + 1, &end, 10);
	if (errno || *end || pos > UINT32_MAX || kl_maria_binlog_number(file, &num) < 0 ||
	    num > UINT32_MAX)
		return -KL_EUSAGE;
	*ret = num << 32 | pos;
	return 0;
}
