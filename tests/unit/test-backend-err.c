/*
 * The backends' error channel (include/keel/backend.h): a backend records
 * the detail of a failure with kl_backend_fail(), the edge takes it once
 * with kl_backend_take_err(). Real backends throughout: a local one, the
 * cache around it, ssh:// with a command that is not ssh, S3 settings.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>

#include "keel/backend.h"
#include "keel/crypto.h"
#include "keel/repo.h"
#include "keel/remote.h"
#include "keel/s3.h"
#include "fixture.h"

static void fail_then_take(void **state)
{
	char dir[] = "/tmp/keel-test-backend-XXXXXX", cache[] = "/tmp/keel-test-cache-XXXXXX";
	struct kl_backend *b = NULL, *c = NULL;
	struct kl_err e = {0};

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(kl_backend_local_open(dir, &b), 0);
	assert_int_equal(kl_backend_take_err(b, &e), 0);
	assert_int_equal(kl_backend_fail(b, -EACCES, "first %d", 1), -EACCES);
	/* the latest failure wins */
	assert_int_equal(kl_backend_fail(b, -KL_EREMOTE, "second %s", "one"), -KL_EREMOTE);
	assert_int_equal(kl_backend_take_err(b, &e), 1);
	assert_int_equal(e.code, -KL_EREMOTE);
	assert_string_equal(e.msg, "second one");
	/* taken once */
	assert_int_equal(kl_backend_take_err(b, &e), 0);
	/* a message already in e stays (kl_fail), the detail is still used up */
	assert_int_equal(kl_backend_fail(b, -EIO, "third"), -EIO);
	assert_int_equal(kl_backend_take_err(b, &e), 1);
	assert_string_equal(e.msg, "second one");
	assert_int_equal(kl_backend_take_err(b, &e), 0);
	kl_err_clear(&e);
	/* NULL on either side */
	assert_int_equal(kl_backend_fail(NULL, -EIO, "x"), -EIO);
	assert_int_equal(kl_backend_fail(b, -EIO, "dropped"), -EIO);
	assert_int_equal(kl_backend_take_err(b, NULL), 1);
	assert_int_equal(kl_backend_take_err(NULL, &e), 0);
	/* a long message is cut, not overrun */
	{
		char big[2000];

		memset(big, 'x', sizeof(big) - 1);
		big[sizeof(big) - 1] = 0;
		kl_backend_fail(b, -EIO, "%s", big);
		assert_int_equal(kl_backend_take_err(b, &e), 1);
		assert_int_equal(strlen(e.msg), sizeof(e.msg) - 1);
		kl_err_clear(&e);
	}

	/* through the cache: the wrapped backend's detail */
	assert_non_null(mkdtemp(cache));
	assert_int_equal(kl_backend_cache_new(b, cache, &c), 0);
	kl_backend_fail(kl_backend_unwrap(c), -EACCES, "inner");
	assert_int_equal(kl_backend_take_err(c, &e), 1);
	assert_string_equal(e.msg, "inner");
	kl_err_clear(&e);
	kl_backend_free(c);
	assert_int_equal(rmdir(dir), 0);
	assert_int_equal(rmdir(cache), 0);
}

struct writer {
	struct kl_backend *b;
	int id;
	int *done; /* writers finished */
};

#define ROUNDS 20000

static void *write_many(void *ud)
{
	struct writer *w = ud;

	for (int i = 0; i < ROUNDS; i++)
		kl_backend_fail(w->b, -(1000 + w->id), "writer %d says %d and %d again", w->id, i,
				i);
	__atomic_add_fetch(w->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void check_taken(const struct kl_err *e)
{
	int id, a, c;
	char end;

	if (sscanf(e->msg, "writer %d says %d and %d again%c", &id, &a, &c, &end) != 3 || a != c ||
	    e->code != -(1000 + id))
		fail_msg("torn detail: code %d, '%s'", e->code, e->msg);
}

/*
 * Writers race a reader: every detail taken is whole, its code its
 * writer's. (Without the lock it tears within a few thousand rounds.)
 */
static void threads_never_tear(void **state)
{
	char dir[] = "/tmp/keel-test-backend-XXXXXX";
	struct kl_backend *b = NULL;
	struct writer w[4];
	pthread_t t[4];
	int done = 0, taken = 0;
	struct kl_err e = {0};

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(kl_backend_local_open(dir, &b), 0);
	for (int i = 0; i < 4; i++) {
		w[i] = (struct writer){b, i, &done};
		assert_int_equal(pthread_create(&t[i], NULL, write_many, &w[i]), 0);
	}
	while (__atomic_load_n(&done, __ATOMIC_ACQUIRE) < 4) {
		if (kl_backend_take_err(b, &e)) {
			check_taken(&e);
			taken++;
		}
		kl_err_clear(&e);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	/* the last one written was taken, or is there still */
	if (kl_backend_take_err(b, &e)) {
		check_taken(&e);
		taken++;
	}
	assert_true(taken > 0);
	kl_backend_free(b);
	assert_int_equal(rmdir(dir), 0);
}

struct repo_writer {
	struct kl_repo *r;
	int id;
	int *done;
};

static void *repo_write_many(void *ud)
{
	struct repo_writer *w = ud;

	for (int i = 0; i < ROUNDS; i++)
		kl_repo_fail(w->r, -(1000 + w->id), "writer %d says %d and %d again", w->id, i, i);
	__atomic_add_fetch(w->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * The repository's own detail, as the pack writer and parallel readers
 * fill it while the caller takes it: whole, its code its writer's.
 * (Without kl_repo's err_mu a take or clear lands inside a worker's
 * message and leaves a torn or emptied one under a code.)
 */
static void repo_err_never_tears(void **state)
{
	char dir[64];
	struct kl_init_opts o;
	struct kl_pass *pass = NULL;
	struct kl_repo *r = NULL;
	struct repo_writer w[4];
	pthread_t t[4];
	int done = 0, taken = 0;
	struct kl_err e = {0};

	(void)state;
	assert_int_equal(fixture_tmpdir("repo-err", dir, sizeof(dir) - 6), 0);
	snprintf(dir + strlen(dir), 6, "/repo");
	fixture_init_opts(&o);
	assert_int_equal(fixture_repo_create(dir, &o, &pass, &r), 0);
	kl_repo_take_err(r, NULL, NULL);
	for (int i = 0; i < 4; i++) {
		w[i] = (struct repo_writer){r, i, &done};
		assert_int_equal(pthread_create(&t[i], NULL, repo_write_many, &w[i]), 0);
	}
	while (__atomic_load_n(&done, __ATOMIC_ACQUIRE) < 4) {
		kl_repo_take_err(r, &e, NULL);
		if (e.code) {
			check_taken(&e);
			/* now and then as a caller that turns a failure into a warning */
			if (++taken % 64 == 0)
				kl_repo_clear_err(r);
		}
		kl_err_clear(&e);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	kl_repo_take_err(r, &e, NULL);
	if (e.code) {
		check_taken(&e);
		taken++;
	}
	assert_true(taken > 0);
	kl_repo_free(r);
	kl_pass_free(pass);
	*strrchr(dir, '/') = 0;
	fixture_rm_rf(dir);
}

/* Opening fails before a backend exists: the detail goes to the caller's err. */
static void open_failures_say_why(void **state)
{
	struct kl_backend *b = NULL;
	struct kl_err e = {0};

	(void)state;
	assert_int_equal(kl_backend_open("ssh://host", &e, &b), -KL_EUSAGE);
	assert_non_null(strstr(e.msg, "'ssh://host' is not an ssh location"));
	kl_err_clear(&e);

	/* "ssh" that ends at once: no answer from the keel there */
	setenv("KEEL_SSH_COMMAND", "false", 1);
	assert_int_equal(kl_backend_open("ssh://host/srv/repo", &e, &b), -KL_EREMOTE);
	assert_non_null(strstr(e.msg, "no answer from 'keel serve' at 'ssh://host/srv/repo'"));
	kl_err_clear(&e);
	setenv("KEEL_SSH_COMMAND", "/nonexistent/keel-test-ssh", 1);
	assert_int_equal(kl_backend_open("ssh://host/srv/repo", &e, &b), -ENOENT);
	assert_non_null(strstr(e.msg, "cannot run '/nonexistent/keel-test-ssh'"));
	kl_err_clear(&e);
	unsetenv("KEEL_SSH_COMMAND");

	assert_int_equal(kl_backend_open("s3:ftp://h/bucket", &e, &b), -KL_EUSAGE);
	assert_non_null(strstr(e.msg, "'s3:ftp://h/bucket' is not an S3 location"));
	kl_err_clear(&e);
	setenv("AWS_ACCESS_KEY_ID", "ak", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "sk", 1);
	setenv("KEEL_S3_RETRIES", "lots", 1);
	assert_int_equal(kl_backend_open("s3:http://127.0.0.1:1/bucket", &e, &b), -KL_EUSAGE);
	assert_string_equal(e.msg, "KEEL_S3_RETRIES='lots' is not a number from 1 to 100");
	kl_err_clear(&e);
	unsetenv("KEEL_S3_RETRIES");
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/keel-test", 1);
	assert_int_equal(kl_backend_open("s3:http://127.0.0.1:1/bucket", &e, &b), -KL_EUSAGE);
	assert_non_null(strstr(e.msg, "no credentials: set AWS_ACCESS_KEY_ID"));
	kl_err_clear(&e);
	unsetenv("AWS_SHARED_CREDENTIALS_FILE");
	/* err may be NULL */
	assert_int_equal(kl_backend_open("s3:ftp://h/bucket", NULL, &b), -KL_EUSAGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fail_then_take),
		cmocka_unit_test(threads_never_tear),
		cmocka_unit_test(repo_err_never_tears),
		cmocka_unit_test(open_failures_say_why),
	};

	/* as keel's main(): a "ssh" that is gone must give EPIPE, not kill us */
	signal(SIGPIPE, SIG_IGN);
	kl_crypto_init(); /* the test repository's keys */
	unsetenv("KEEL_CONFIG");
	setenv("XDG_CONFIG_HOME", "/nonexistent/keel-test", 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
