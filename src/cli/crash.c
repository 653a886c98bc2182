/*
 * A crash report. keel turns core dumps off (a core would hold the
 * repository's keys), which leaves a crash that happens once on a loaded
 * machine with nothing to go on. On SIGSEGV, SIGBUS, SIGILL and SIGFPE
 * the process writes its stack as return addresses to stderr (addresses
 * and symbol names only: no memory contents, so nothing secret), then
 * dies of the same signal, so the exit status still tells the crash.
 * `addr2line -e keel -f OFFSET` turns an offset into a line of source.
 */
#include <execinfo.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* the sanitizers' own reports are better: keel leaves their handlers alone */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define KL_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define KL_SANITIZED 1
#endif
#endif

#ifdef KL_SANITIZED
void kl_cli_crash_report_install(void)
{
}
#else
#define ALT_STACK_BYTES (64 * 1024) /* room for the report when the stack overflowed */

static void say(const char *s)
{
	if (write(STDERR_FILENO, s, strlen(s)) < 0)
		return; /* nothing else can be done from here */
}

static void on_crash(int sig)
{
	void *frames[64];
	char num[8];
	int n = backtrace(frames, 64), i = (int)sizeof(num) - 1, v = sig;

	/* async-signal-safe from here on: write(2) and backtrace_symbols_fd only */
	num[i] = 0;
	do
		num[--i] = (char)('0' + v % 10);
	while ((v /= 10) && i > 0);
	say("keel: internal error: crashed with signal ");
	say(num + i);
	say(" (a bug: please report it with the lines below and 'keel version')\n");
	backtrace_symbols_fd(frames, n, STDERR_FILENO);
	/* SA_RESETHAND made the action the default again (a signal sent by kill is not re-raised
	 * by returning, as a fault would be) */
	raise(sig);
}

void kl_cli_crash_report_install(void)
{
	static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE};
	struct sigaction sa = {.sa_handler = on_crash,
			       .sa_flags = SA_RESETHAND | SA_NODEFER | SA_ONSTACK};
	stack_t alt = {.ss_size = ALT_STACK_BYTES};
	void *warm[1];

	/* the first backtrace() loads libgcc_s: never inside the handler */
	backtrace(warm, 1);
	/* kept for the process's life: a crash may come at any moment */
	alt.ss_sp = malloc(ALT_STACK_BYTES);
	if (alt.ss_sp && sigaltstack(&alt, NULL) < 0)
		free(alt.ss_sp);
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
}
#endif
