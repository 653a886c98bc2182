/*
 * The restore drill of a MariaDB db job (docs/DAEMON.md, "Drills"):
 * `keel db restore --latest` into the scratch directory, then a temporary
 * mariadbd on that data directory, on a private socket (no TCP, no option
 * file of the system's, no grant tables, no binary log: it must neither
 * be reachable nor write anywhere but its own directories) until it
 * answers `SELECT 1` through the mariadb client, then stopped by SIGTERM
 * (a clean shutdown). The RTO is the restore, the start and the answer.
 *
 * mariadbd refuses to run as root: a root daemon starts it with --user=
 * the restored files' owner (the restore gives them the snapshot's owner).
 */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "drill-internal.h"

/* how long the temporary server may take to answer, and to stop */
#define MARIA_WAIT_S 600

struct maria {
	char data[4300]; /* the restored data directory */
	char dir[64];	 /* its socket, pid file and log: a socket path has 107 bytes */
	char sock[96], log[96];
	uid_t uid; /* the server's user when the daemon is root */
	pid_t pid; /* the server, 0 when it is not running */
};

static double since(int64_t t0)
{
	return (double)(kl_time_mono_ns() - t0) / (double)KL_NSEC_PER_SEC;
}

static void nap(void)
{
	struct timespec ts = {0, 100 * 1000 * 1000};

	nanosleep(&ts, NULL);
}

/* Starts argv (through PATH), stdout to out_fd, stderr to err_fd; its pid or -errno. */
static pid_t start(char *const argv[], int out_fd, int err_fd)
{
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		sigset_t none;
		int in_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (in_fd < 0 || dup2(in_fd, STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0 ||
		    dup2(err_fd, STDERR_FILENO) < 0)
			_exit(127);
		execvp(argv[0], argv);
		dprintf(err_fd, "cannot run '%s': %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	return pid;
}

/* Waits for pid (blocking unless nohang); its exit status, -1 if still running. */
static int reap(pid_t pid, bool nohang)
{
	int st;
	pid_t r;

	while ((r = waitpid(pid, &st, nohang ? WNOHANG : 0)) < 0)
		if (errno != EINTR)
			return -errno;
	if (r == 0)
		return -1;
	return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
}

/* mariadb SELECT 1 on m's socket: 0 when it answered 1, else -1 (quiet unless loud). */
static int ask(struct kl_drill *d, const struct maria *m, int null_fd, bool loud)
{
	char sock[128], out[16] = "";
	char *argv[] = {(char *)"mariadb",
			(char *)"--no-defaults",
			sock,
			(char *)"--user=root",
			(char *)"-N",
			(char *)"-B",
			(char *)"-e",
			(char *)"SELECT 1",
			NULL};
	_cleanup_close_ int fd = kl_daemon_open_log(d->o->state_dir, "drills", d->j->name, "out");
	pid_t pid;
	int st;

	snprintf(sock, sizeof(sock), "--socket=%s", m->sock);
	if (fd < 0)
		return -1;
	pid = start(argv, fd, loud ? d->log_fd : null_fd);
	st = pid < 0 ? (int)pid : reap(pid, false);
	if (st == 0 && pread(fd, out, sizeof(out) - 1, 0) > 0 && !strcmp(out, "1\n"))
		return 0;
	if (loud && st)
		kl_daemon_drill_fail(
			d, "the query of the restored database (mariadb) exited with %d", st);
	else if (loud)
		kl_daemon_drill_fail(d, "the restored database answered '%.8s' to SELECT 1", out);
	return -1;
}

/* Starts mariadbd on m->data; 0, or -1 with the drill's error set. */
static int serve(struct kl_drill *d, struct maria *m, int null_fd)
{
	char dd[4320], so[128], pf[128], le[128], user[32];
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
	pid_t pid;

	snprintf(dd, sizeof(dd), "--datadir=%s", m->data);
	snprintf(so, sizeof(so), "--socket=%s", m->sock);
	snprintf(pf, sizeof(pf), "--pid-file=%s/pid", m->dir);
	snprintf(le, sizeof(le), "--log-error=%s", m->log);
	snprintf(user, sizeof(user), "--user=%u", (unsigned)m->uid);
	if (geteuid() != 0)
		argv[10] = NULL;
	/* the server's words go to its log, not the drill's */
	pid = start(argv, null_fd, null_fd);
	if (pid < 0)
		return kl_daemon_drill_fail(d, "cannot start mariadbd: %s", strerror((int)-pid)),
		       -1;
	m->pid = pid;
	return 0;
}

/* Waits until the server answers; 0, or -1 with the drill's error set. */
static int wait_answer(struct kl_drill *d, struct maria *m, int null_fd)
{
	struct stat st;
	int rc;

	for (int i = 0; i < MARIA_WAIT_S * 10; i++, nap()) {
		if ((rc = reap(m->pid, true)) >= 0) {
			m->pid = 0;
			return kl_daemon_drill_fail(d, "mariadbd exited with %d", rc), -1;
		}
		/* the socket exists once the server accepts connections */
		if (stat(m->sock, &st) == 0 && ask(d, m, null_fd, false) == 0)
			return 0;
	}
	return ask(d, m, null_fd, true);
}

/* SIGTERM (a clean shutdown) and the wait for it; SIGKILL when it hangs. */
static void stop(struct kl_drill *d, struct maria *m)
{
	int rc = -1;

	if (!m->pid)
		return;
	kill(m->pid, SIGTERM);
	for (int i = 0; i < MARIA_WAIT_S * 10 && (rc = reap(m->pid, true)) == -1; i++)
		nap();
	if (rc == -1) {
		kill(m->pid, SIGKILL);
		rc = reap(m->pid, false);
	}
	if (rc != 0)
		dprintf(d->log_fd, "mariadbd exited with %d on SIGTERM\n", rc);
	m->pid = 0;
}

int kl_daemon_drill_maria(struct kl_drill *d, const char *dir, double *seconds)
{
	struct maria m = {0};
	int64_t t0 = kl_time_mono_ns();
	_cleanup_close_ int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	struct stat st;
	int r;

	snprintf(m.data, sizeof(m.data), "%s/data", dir);
	snprintf(m.dir, sizeof(m.dir), "/tmp/keel-drill.XXXXXX");
	if (null_fd < 0 || !mkdtemp(m.dir))
		return kl_daemon_drill_fail(d, "cannot create a socket directory: %s",
					    strerror(errno)),
		       -1;
	snprintf(m.sock, sizeof(m.sock), "%s/sock", m.dir);
	snprintf(m.log, sizeof(m.log), "%s/server.log", m.dir);
	/* the server's user (the files' owner) must reach the data directory in dir */
	if (chmod(dir, 0711) < 0)
		kl_daemon_drill_fail(d, "cannot chmod '%s': %s", dir, strerror(errno));
	r = d->ret->error[0] ? -1 : kl_daemon_drill_db_restore(d, m.data);
	if (r == 0 && stat(m.data, &st) < 0)
		kl_daemon_drill_fail(d, "the restore made no '%s': %s", m.data, strerror(errno));
	else if (r == 0 && geteuid() == 0 && st.st_uid == 0)
		kl_daemon_drill_fail(d, "the restored data directory belongs to root, and mariadbd "
					"refuses to run as root");
	else if (r == 0 && geteuid() == 0 && chown(m.dir, st.st_uid, st.st_gid) < 0)
		kl_daemon_drill_fail(d, "cannot chown '%s': %s", m.dir, strerror(errno));
	m.uid = r == 0 ? st.st_uid : 0;
	if (d->ret->error[0])
		r = -1;
	if (r == 0)
		r = serve(d, &m, null_fd);
	if (r == 0)
		r = wait_answer(d, &m, null_fd);
	*seconds = since(t0);
	stop(d, &m);
	if (r < 0) {
		char line[200] = "";
		_cleanup_close_ int fd = open(m.log, O_RDONLY | O_CLOEXEC);

		if (fd >= 0)
			kl_daemon_last_line(fd, line, sizeof(line));
		if (line[0])
			dprintf(d->log_fd, "the server's log ends: %s\n", line);
	}
	kl_daemon_drill_rmtree(d, m.dir);
	return r;
}
