/*
 * Where passwords come from, in this order: --password-file or
 * --password-command (both given: a usage error), KEEL_PASSWORD_FILE or
 * KEEL_PASSWORD_COMMAND (both set: a usage error), KEEL_PASSWORD, then a
 * prompt on the terminal without echo. Never argv. A flag wins over the
 * environment, so that a KEEL_PASSWORD_FILE in a profile never silently
 * overrides what the command line says.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sodium.h>
#include <termios.h>

#include "cli.h"
#include "keel/fs.h"

#define PASS_MAX 4096

/* Trims one trailing newline (and CR), as files and commands end their output. */
static int pass_from_bytes(const char *p, size_t n, struct kl_pass **ret)
{
	if (n && p[n - 1] == '\n')
		n--;
	if (n && p[n - 1] == '\r')
		n--;
	if (n == 0)
		return -KL_EUSAGE;
	return kl_pass_new(p, n, ret);
}

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

static int from_file(struct kl_cli *cli, const char *path, struct kl_pass **ret)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	check_mode(cli, path, fd);
	return from_fd(fd, ret);
}

static int from_command(const char *cmd, struct kl_pass **ret)
{
	char *argv[] = {(char *)"/bin/sh", (char *)"-c", (char *)cmd, NULL};
	int fd, status, rc;
	pid_t pid;

	fd = kl_spawn_reader(argv, &pid);
	if (fd < 0)
		return fd;
	rc = from_fd(fd, ret);
	close(fd);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (rc >= 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
		kl_pass_free(*ret);
		*ret = NULL;
		return -KL_ECMD;
	}
	return rc;
}

static int prompt(const char *what, struct kl_pass **ret)
{
	_cleanup_close_ int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
	struct termios old, noecho;
	char *buf;
	size_t n = 0;
	int rc = 0;

	if (fd < 0)
		return -ENOTTY;
	if (tcgetattr(fd, &old) < 0)
		return -errno;
	noecho = old;
	noecho.c_lflag &= ~(tcflag_t)ECHO;
	noecho.c_lflag |= ECHONL;
	buf = sodium_malloc(PASS_MAX);
	if (!buf)
		return -ENOMEM;
	if (write(fd, what, strlen(what)) < 0 || tcsetattr(fd, TCSAFLUSH, &noecho) < 0) {
		sodium_free(buf);
		return -errno;
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
	if (n == PASS_MAX)
		rc = -E2BIG;
	else if (n == 0)
		rc = -KL_EUSAGE;
	else
		rc = kl_pass_new(buf, n, ret);
	sodium_free(buf);
	return rc;
}

static int prompt_twice(struct kl_pass **ret)
{
	struct kl_pass *a = NULL, *b = NULL;
	int rc;

	rc = prompt("enter new password: ", &a);
	if (rc >= 0)
		rc = prompt("enter new password again: ", &b);
	if (rc >= 0 && (a->len != b->len || !kl_ct_equal(a->p, b->p, a->len)))
		rc = -KL_EUSAGE;
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

int kl_cli_read_password(struct kl_cli *cli, bool confirm, struct kl_pass **ret)
{
	const char *file = cli->password_file_opt, *cmd = cli->password_command_opt;
	char *env;

	if (file && cmd)
		return kl_fail(&cli->err, -KL_EUSAGE,
			       "'--password-file' and '--password-command' both given: use one");
	if (!file && !cmd) {
		file = getenv("KEEL_PASSWORD_FILE");
		cmd = getenv("KEEL_PASSWORD_COMMAND");
		file = file && *file ? file : NULL;
		cmd = cmd && *cmd ? cmd : NULL;
		if (file && cmd)
			return kl_fail(&cli->err, -KL_EUSAGE,
				       "KEEL_PASSWORD_FILE and KEEL_PASSWORD_COMMAND both set: "
				       "unset one, or give '--password-file' or "
				       "'--password-command'");
	}
	if (file)
		return from_file(cli, file, ret);
	if (cmd)
		return from_command(cmd, ret);
	env = getenv("KEEL_PASSWORD");
	if (env && *env)
		return from_env("KEEL_PASSWORD", env, ret);
	if (confirm)
		return prompt_twice(ret);
	return prompt("enter password for repository: ", ret);
}

int kl_cli_read_new_password(struct kl_cli *cli, const char *file, struct kl_pass **ret)
{
	char *env;

	if (file)
		return from_file(cli, file, ret);
	env = getenv("KEEL_NEW_PASSWORD");
	if (env && *env)
		return from_env("KEEL_NEW_PASSWORD", env, ret);
	return prompt_twice(ret);
}
