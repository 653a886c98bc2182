/*
 * Where passwords come from, in this order: --password-file or
 * --password-command (both given: a usage error), KEEL_PASSWORD_FILE or
 * KEEL_PASSWORD_COMMAND (both set: a usage error), KEEL_PASSWORD, then a
 * prompt on the terminal without echo. Never argv. A flag wins over the
 * environment, so that a KEEL_PASSWORD_FILE in a profile never silently
 * overrides what the command line says.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sodium.h>
#include <termios.h>

#include "cli.h"
#include "keel/fs.h"

#define PASS_MAX 4096

/*
 * Every failure names where the password was to come from and why it did
 * not (into cli->err, which kl_cli_error prints): "password file '/x'
 * (KEEL_PASSWORD_FILE) is empty". Something the user gave that cannot
 * serve is a usage error (exit 2); a password command that fails is 1.
 */
static int pass_fail(struct kl_cli *cli, int r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int pass_fail(struct kl_cli *cli, int r, const char *fmt, ...)
{
	char msg[sizeof(cli->err.msg)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return kl_fail(&cli->err, r, "%s", msg);
}

/* Trims one trailing newline (and CR), as files and commands end their output. */
static int pass_from_bytes(const char *p, size_t n, struct kl_pass **ret)
{
	if (n && p[n - 1] == '\n')
		n--;
	if (n && p[n - 1] == '\r')
		n--;
	if (n == 0)
		return -ENODATA;
	return kl_pass_new(p, n, ret);
}

/* -ENODATA: empty; -E2BIG: too long */
static int from_fd(int fd, struct kl_pass **ret)
{
	char *buf = sodium_malloc(PASS_MAX);
	size_t got;
	int rc;

	if (!buf)
		return -ENOMEM;
	rc = kl_fs_read_full(fd, buf, PASS_MAX, &got);
	if (rc >= 0 && got == PASS_MAX)
		rc = -E2BIG;
	if (rc >= 0)
		rc = pass_from_bytes(buf, got, ret);
	sodium_free(buf);
	return rc;
}

/*
 * A password file others can read gives the repository away; one others
 * can write lets them choose the password of a new key. Warned about, as
 * ssh does for keys (not refused: the file may be on a system whose
 * owner wants it so).
 */
static void check_mode(struct kl_cli *cli, const char *path, int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || !(st.st_mode & (S_IROTH | S_IWOTH)))
		return;
	kl_cli_warn(cli,
		    "password file '%s' is %s by others (mode %04o): restrict it with "
		    "'chmod 600'",
		    path,
		    (st.st_mode & S_IROTH) && (st.st_mode & S_IWOTH) ? "readable and writable"
		    : st.st_mode & S_IROTH			     ? "readable"
								     : "writable",
		    (unsigned)(st.st_mode & 07777));
}

/* src: "--password-file" or the environment variable that named path */
static int from_file(struct kl_cli *cli, const char *path, const char *src, struct kl_pass **ret)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	int rc;

	if (fd < 0 && errno == ENOENT)
		return pass_fail(cli, -KL_EUSAGE, "password file '%s' (%s) does not exist", path,
				 src);
	if (fd < 0) {
		rc = -errno;
		return pass_fail(cli, rc, "cannot open password file '%s' (%s): %s", path, src,
				 kl_strerror(rc));
	}
	check_mode(cli, path, fd);
	rc = from_fd(fd, ret);
	if (rc == -ENODATA)
		return pass_fail(cli, -KL_EUSAGE, "password file '%s' (%s) is empty", path, src);
	if (rc == -EISDIR)
		return pass_fail(cli, -KL_EUSAGE, "password file '%s' (%s) is a directory", path,
				 src);
	if (rc == -E2BIG)
		return pass_fail(cli, -KL_EUSAGE,
				 "password file '%s' (%s) is longer than %d bytes: not a password",
				 path, src, PASS_MAX - 1);
	if (rc < 0 && rc != -ENOMEM)
		return pass_fail(cli, rc, "cannot read password file '%s' (%s): %s", path, src,
				 kl_strerror(rc));
	return rc;
}

static int from_command(struct kl_cli *cli, const char *cmd, const char *src, struct kl_pass **ret)
{
	char *argv[] = {(char *)"/bin/sh", (char *)"-c", (char *)cmd, NULL};
	int fd, status, rc;
	pid_t pid;

	fd = kl_spawn_reader(argv, &pid);
	if (fd < 0)
		return pass_fail(cli, fd, "cannot run the password command (%s): %s", src,
				 kl_strerror(fd));
	rc = from_fd(fd, ret);
	close(fd);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
		if (rc >= 0)
			kl_pass_free(*ret);
		*ret = NULL;
		/* the command itself is not shown: it may hold a secret */
		if (WIFEXITED(status))
			return pass_fail(cli, -KL_ECMD,
					 "the password command (%s) failed with exit status %d",
					 src, WEXITSTATUS(status));
		return pass_fail(cli, -KL_ECMD, "the password command (%s) was killed by signal %d",
				 src, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	}
	if (rc == -ENODATA)
		return pass_fail(cli, -KL_EUSAGE, "the password command (%s) printed nothing", src);
	if (rc == -E2BIG)
		return pass_fail(cli, -KL_EUSAGE,
				 "the password command (%s) printed more than %d bytes", src,
				 PASS_MAX - 1);
	if (rc < 0 && rc != -ENOMEM)
		return pass_fail(cli, rc, "cannot read the output of the password command (%s): %s",
				 src, kl_strerror(rc));
	return rc;
}

/* -ENOTTY: no terminal; -ENODATA: nothing entered */
static int prompt(struct kl_cli *cli, const char *what, struct kl_pass **ret)
{
	_cleanup_close_ int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
	struct termios old, noecho;
	char *buf;
	size_t n = 0;
	int rc = 0;

	if (fd < 0)
		return -ENOTTY;
	if (tcgetattr(fd, &old) < 0)
		return errno == ENOTTY ? -ENOTTY : -errno;
	noecho = old;
	noecho.c_lflag &= ~(tcflag_t)ECHO;
	noecho.c_lflag |= ECHONL;
	buf = sodium_malloc(PASS_MAX);
	if (!buf)
		return -ENOMEM;
	/* echo off before the prompt shows: what is typed after it is never flushed */
	kl_cli_signals_tty(cli, fd, &old);
	if (tcsetattr(fd, TCSAFLUSH, &noecho) < 0 || write(fd, what, strlen(what)) < 0) {
		rc = -errno;
		tcsetattr(fd, TCSAFLUSH, &old);
		kl_cli_signals_tty(cli, -1, NULL);
		sodium_free(buf);
		return rc;
	}
	while (n < PASS_MAX) {
		ssize_t r = read(fd, buf + n, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || buf[n] == '\n')
			break;
		n++;
	}
	tcsetattr(fd, TCSAFLUSH, &old);
	kl_cli_signals_tty(cli, -1, NULL);
	if (n == PASS_MAX)
		rc = -E2BIG;
	else if (n == 0)
		rc = -ENODATA;
	else
		rc = kl_pass_new(buf, n, ret);
	sodium_free(buf);
	return rc;
}

/* A prompt's failure, said with what would have given a password instead. */
static int prompt_fail(struct kl_cli *cli, int rc, bool new_pass)
{
	if (rc == -ENOTTY)
		return pass_fail(cli, -KL_EUSAGE,
				 new_pass ? "no new password given: give --new-password-file, set "
					    "KEEL_NEW_PASSWORD, or run on a terminal"
					  : "no password given: set KEEL_PASSWORD_FILE, "
					    "KEEL_PASSWORD_COMMAND or KEEL_PASSWORD, give "
					    "--password-file or --password-command, or run on a "
					    "terminal");
	if (rc == -ENODATA)
		return pass_fail(cli, -KL_EUSAGE, "no password entered at the prompt");
	if (rc == -E2BIG)
		return pass_fail(cli, -KL_EUSAGE,
				 "the password entered at the prompt is longer than %d bytes",
				 PASS_MAX - 1);
	if (rc < 0 && rc != -ENOMEM)
		return pass_fail(cli, rc, "cannot prompt for the password on the terminal: %s",
				 kl_strerror(rc));
	return rc;
}

static int prompt_twice(struct kl_cli *cli, bool new_pass, struct kl_pass **ret)
{
	struct kl_pass *a = NULL, *b = NULL;
	int rc;

	rc = prompt(cli, "enter new password: ", &a);
	if (rc >= 0)
		rc = prompt(cli, "enter new password again: ", &b);
	if (rc < 0)
		rc = prompt_fail(cli, rc, new_pass);
	else if (a->len != b->len || !kl_ct_equal(a->p, b->p, a->len))
		rc = pass_fail(cli, -KL_EUSAGE,
			       "the passwords entered at the prompt do not match: nothing was "
			       "changed, try again");
	kl_pass_free(b);
	if (rc < 0) {
		kl_pass_free(a);
		return rc;
	}
	*ret = a;
	return 0;
}

/*
 * Takes the password out of the environment: copied into guarded memory,
 * wiped where it was and removed, so that no command keel runs
 * (--stdin-from-command, --password-command) inherits it.
 */
static int from_env(const char *name, char *value, struct kl_pass **ret)
{
	int rc = kl_pass_new(value, strlen(value), ret);

	sodium_memzero(value, strlen(value));
	unsetenv(name);
	return rc;
}

/* Where one repository's password may come from: options, variables, the prompt. */
struct pass_names {
	const char *file_opt, *cmd_opt;		   /* "--password-file" */
	const char *file_env, *cmd_env, *pass_env; /* "KEEL_PASSWORD_FILE" */
	const char *prompt;
};

static const struct pass_names repo_names = {
	"--password-file",	 "--password-command", "KEEL_PASSWORD_FILE",
	"KEEL_PASSWORD_COMMAND", "KEEL_PASSWORD",      "enter password for repository: ",
};
static const struct pass_names from_names = {
	"--from-password-file",	   "--from-password-command",
	"KEEL_FROM_PASSWORD_FILE", "KEEL_FROM_PASSWORD_COMMAND",
	"KEEL_FROM_PASSWORD",	   "enter password for source repository: ",
};

static int read_password(struct kl_cli *cli, const struct pass_names *nm, const char *file,
			 const char *cmd, bool confirm, struct kl_pass **ret)
{
	const char *file_src = nm->file_opt, *cmd_src = nm->cmd_opt;
	char *env;
	int rc;

	if (file && cmd)
		return kl_fail(&cli->err, -KL_EUSAGE, "'%s' and '%s' both given: use one",
			       nm->file_opt, nm->cmd_opt);
	if (!file && !cmd) {
		file = getenv(nm->file_env);
		cmd = getenv(nm->cmd_env);
		file = file && *file ? file : NULL;
		cmd = cmd && *cmd ? cmd : NULL;
		file_src = nm->file_env;
		cmd_src = nm->cmd_env;
		if (file && cmd)
			return kl_fail(&cli->err, -KL_EUSAGE,
				       "%s and %s both set: unset one, or give '%s' or '%s'",
				       nm->file_env, nm->cmd_env, nm->file_opt, nm->cmd_opt);
	}
	if (file) {
		snprintf(cli->pass_source, sizeof(cli->pass_source), "password file '%s' (%s)",
			 file, file_src);
		return from_file(cli, file, file_src, ret);
	}
	if (cmd) {
		snprintf(cli->pass_source, sizeof(cli->pass_source), "password command (%s)",
			 cmd_src);
		return from_command(cli, cmd, cmd_src, ret);
	}
	env = getenv(nm->pass_env);
	if (env && *env) {
		snprintf(cli->pass_source, sizeof(cli->pass_source), "%s", nm->pass_env);
		return from_env(nm->pass_env, env, ret);
	}
	snprintf(cli->pass_source, sizeof(cli->pass_source), "the prompt");
	if (confirm)
		return prompt_twice(cli, false, ret);
	rc = prompt(cli, nm->prompt, ret);
	if (rc == -ENOTTY)
		return pass_fail(cli, -KL_EUSAGE,
				 "no password given: set %s, %s or %s, give %s or %s, or run "
				 "on a terminal",
				 nm->file_env, nm->cmd_env, nm->pass_env, nm->file_opt,
				 nm->cmd_opt);
	return rc < 0 ? prompt_fail(cli, rc, false) : rc;
}

int kl_cli_read_password(struct kl_cli *cli, bool confirm, struct kl_pass **ret)
{
	return read_password(cli, &repo_names, cli->password_file_opt, cli->password_command_opt,
			     confirm, ret);
}

int kl_cli_read_from_password(struct kl_cli *cli, const char *file, const char *cmd,
			      struct kl_pass **ret)
{
	return read_password(cli, &from_names, file, cmd, false, ret);
}

int kl_cli_read_new_password(struct kl_cli *cli, const char *file, struct kl_pass **ret)
{
	char *env;

	if (file)
		return from_file(cli, file, "--new-password-file", ret);
	env = getenv("KEEL_NEW_PASSWORD");
	if (env && *env)
		return from_env("KEEL_NEW_PASSWORD", env, ret);
	return prompt_twice(cli, true, ret);
}
