/*
 * SIGINT and SIGTERM. main() blocks both before any thread starts, so
 * every thread inherits the mask, and one thread takes them with
 * sigwait(): no handler runs in the middle of anything, and no state is
 * global. While a command that cleans up after itself runs (one that
 * locks the repository: kl_cli_signals_watch), the first signal only sets
 * the cancel flag the repository layer polls (kl_repo_cancelled); the
 * command then fails with -KL_EINTERRUPTED on its normal error path, which
 * drops queued packs, removes its temporary files and its lock, and main()
 * says what was kept. Any other command, and a second signal, end the
 * process at once (after a best-effort removal of the lock).
 */
#include <linux/fs.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli.h"

static void say(const struct kl_cli_signals *s, const char *msg)
{
	/* as kl_cli_emit() says it (msg holds nothing JSON must escape) */
	if (s->json)
		dprintf(STDERR_FILENO,
			"{\"message_type\":\"error\",\"code\":130%s%s%s,\"message\":\"%s\"}\n",
			s->cmd_name ? ",\"command\":\"" : "", s->cmd_name ? s->cmd_name : "",
			s->cmd_name ? "\"" : "", msg);
	else if (s->cmd_name)
		dprintf(STDERR_FILENO, "%skeel: %s: %s\n", s->progress ? "\r\033[K" : "",
			s->cmd_name, msg);
	else
		dprintf(STDERR_FILENO, "%skeel: %s\n", s->progress ? "\r\033[K" : "", msg);
}

/* the terminal as a prompt found it: a Ctrl-C at the prompt must not leave echo off */
static void restore_tty(const struct kl_cli_signals *s)
{
	if (s->tty_fd < 0)
		return;
	tcsetattr(s->tty_fd, TCSAFLUSH, &s->tty_saved);
	if (write(s->tty_fd, "\n", 1) < 0)
		return; /* best effort: the process ends now */
}

static void *signal_main(void *arg)
{
	struct kl_cli_signals *s = arg;

	for (;;) {
		int sig, rc;

		if (sigwait(&s->set, &sig) != 0)
			return NULL; /* cannot happen: the set holds valid signals only */
		pthread_mutex_lock(&s->mu);
		if (s->notify_fd >= 0 && !s->count++) {
			if (eventfd_write(s->notify_fd, 1) < 0)
				s->count = 0; /* cannot happen (a counter far from full) */
			pthread_mutex_unlock(&s->mu);
			continue;
		}
		if (s->repo && !s->count++) {
			atomic_store(&s->cancel, true);
			pthread_mutex_unlock(&s->mu);
			continue;
		}
		restore_tty(s);
		/* never leave a file system frozen: every writer on it would hang */
		if (s->frozen_fd >= 0 && ioctl(s->frozen_fd, FITHAW, 0) == 0)
			say(s, "interrupted: the frozen file system was thawed");
		if (!s->repo) {
			say(s, "interrupted");
			_exit(130);
		}
		/* a second signal: the user does not want to wait for the clean-up */
		rc = kl_repo_lock_abandon(s->repo);
		say(s, rc < 0 ? "interrupted again: stopped at once; its lock is left in the "
				"repository (remove it with 'keel unlock')"
			      : "interrupted again: stopped at once; lock removed (temporary "
				"files may be left: 'keel check' lists them)");
		_exit(130);
	}
	return NULL;
}

int kl_cli_signals_start(struct kl_cli_signals *s)
{
	sigset_t all, before;
	struct sigaction old;
	int rc;

	memset(s, 0, sizeof(*s));
	s->tty_fd = -1;
	s->notify_fd = -1;
	s->frozen_fd = -1;
	atomic_init(&s->cancel, false);
	pthread_mutex_init(&s->mu, NULL);
	sigemptyset(&s->set);
	/* a signal ignored by whoever started us (a background job of a script) stays ignored */
	if (sigaction(SIGINT, NULL, &old) == 0 && old.sa_handler != SIG_IGN)
		sigaddset(&s->set, SIGINT);
	if (sigaction(SIGTERM, NULL, &old) == 0 && old.sa_handler != SIG_IGN)
		sigaddset(&s->set, SIGTERM);
	if (sigisemptyset(&s->set))
		return 0; /* both ignored: nothing to take */
	rc = -pthread_sigmask(SIG_BLOCK, &s->set, NULL);
	if (rc < 0)
		return rc;
	/*
	 * The thread starts with every signal blocked and takes only what it
	 * sigwait()s for: any other must reach a thread that wants it (the
	 * daemon's signalfd waits for SIGCHLD and SIGHUP, which would be lost,
	 * or kill, there).
	 */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &before);
	rc = -pthread_create(&s->thread, NULL, signal_main, s);
	pthread_sigmask(SIG_SETMASK, &before, NULL);
	if (rc < 0) {
		/* no thread to take them: the signals act as they did before */
		pthread_sigmask(SIG_UNBLOCK, &s->set, NULL);
		return rc;
	}
	return 0;
}

void kl_cli_signals_describe(struct kl_cli *cli)
{
	struct kl_cli_signals *s = cli->sig;

	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->cmd_name = cli->cmd_name;
	s->json = cli->json;
	s->progress = cli->progress;
	pthread_mutex_unlock(&s->mu);
}

void kl_cli_signals_watch(struct kl_cli *cli, struct kl_repo *r)
{
	struct kl_cli_signals *s = cli->sig;

	if (!s)
		return;
	kl_cli_signals_describe(cli);
	pthread_mutex_lock(&s->mu);
	s->repo = r;
	if (r)
		kl_repo_set_cancel(r, &s->cancel);
	pthread_mutex_unlock(&s->mu);
}

int kl_cli_signals_notify(struct kl_cli *cli)
{
	struct kl_cli_signals *s = cli->sig;
	int fd;

	if (!s)
		return -1;
	pthread_mutex_lock(&s->mu);
	if (s->notify_fd < 0)
		s->notify_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	fd = s->notify_fd;
	pthread_mutex_unlock(&s->mu);
	return fd;
}

void kl_cli_signals_tty(struct kl_cli *cli, int fd, const struct termios *saved)
{
	struct kl_cli_signals *s = cli->sig;

	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->tty_fd = fd;
	if (saved)
		s->tty_saved = *saved;
	pthread_mutex_unlock(&s->mu);
}

void kl_cli_signals_frozen(struct kl_cli *cli, int fd)
{
	struct kl_cli_signals *s = cli->sig;

	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->frozen_fd = fd;
	pthread_mutex_unlock(&s->mu);
}

bool kl_cli_interrupted(const struct kl_cli *cli)
{
	return cli->sig && atomic_load(&cli->sig->cancel);
}
