/*
 * Pause points for tests of concurrency and crashes (KL_TESTING builds
 * only; release builds compile kl_test_point() to nothing). With
 * KEEL_TEST_PAUSE=NAME and KEEL_TEST_PAUSE_DIR=DIR in the environment, the
 * process creates DIR/NAME.reached at the point NAME and waits until
 * DIR/NAME.go exists, so that a test can run another process, or kill -9
 * this one, at exactly that moment.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "keel/util.h"

#ifdef KL_TESTING
void kl_test_point(const char *name)
{
	const char *want = getenv("KEEL_TEST_PAUSE"), *dir = getenv("KEEL_TEST_PAUSE_DIR");
	char path[4096];
	int fd;

	if (!want || !dir || strcmp(want, name))
		return;
	snprintf(path, sizeof(path), "%s/%s.reached", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd >= 0)
		close(fd);
	snprintf(path, sizeof(path), "%s/%s.go", dir, name);
	/* bounded, so that a broken test cannot hang CI */
	for (int i = 0; i < 12000 && access(path, F_OK) < 0; i++)
		nanosleep(&(struct timespec){0, 10 * KL_NSEC_PER_MSEC}, NULL);
}
#endif
