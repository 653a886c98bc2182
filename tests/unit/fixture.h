/*
 * Set-up shared by the unit tests: a temporary directory, its removal,
 * and a repository with a known password and a KDF cheap enough to run
 * in every test's set-up.
 */
#ifndef KL_TESTS_FIXTURE_H
#define KL_TESTS_FIXTURE_H

#include <stddef.h>

#include "keel/repo.h"

#define FIXTURE_PASSWORD "secret"

/*
 * Makes a new directory /tmp/keel-test-<name>.XXXXXX and writes its path
 * to ret (size bytes). Returns: 0, or -1 if the name does not fit or
 * mkdtemp fails.
 */
int fixture_tmpdir(const char *name, char *ret, size_t size);

/*
 * Removes path and everything below it, as rm -rf would, including
 * directories a restore left without read or write permission.
 * Failures are ignored: this is for teardown.
 */
void fixture_rm_rf(const char *path);

/* kl_init_opts_default, with the cheapest KDF a repository accepts. */
void fixture_init_opts(struct kl_init_opts *o);

/*
 * Creates a repository at dir with FIXTURE_PASSWORD, and options o
 * (NULL: fixture_init_opts). The password goes to *pass_ret, the
 * caller's to free, or is freed at once if pass_ret is NULL.
 * Returns: what kl_repo_create returns (on failure *pass_ret is NULL).
 */
int fixture_repo_create(const char *dir, const struct kl_init_opts *o, struct kl_pass **pass_ret,
			struct kl_repo **ret);

#endif
