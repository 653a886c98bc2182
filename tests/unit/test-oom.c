/*
 * Out-of-memory sweeps, as SQLite and curl run them: backup and prune on
 * a small repository with allocation N failing, for N = 1, 2, ... until
 * a run makes fewer than N allocations. Each must return -ENOMEM (or
 * succeed, when the failure hit something it can do without), leak
 * nothing (ASan), and leave a repository that check passes. The storage
 * faults are swept by tests/integration/t4007-fault-sweep.sh.
 *
 * A backup makes thousands of allocations, and each run is followed by a
 * check: past the first 40 positions the sweep grows by a twelfth each
 * step (about 60 runs more for 5000 allocations), which keeps the test
 * near a minute, under ASan too; KEEL_TEST_OOM_ALL=1 sweeps every one.
 *
 * The runs of a sweep follow one another on the same repository, so a
 * prune that failed after repacking leaves copies of the same blobs in
 * several packs for the next: the index, and so prune's records, list each
 * blob under one of them, which check must take as sound (issue 13,
 * defect 3; docs/FORMAT.md section 5).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keel/maint.h"
#include "fixture.h"

struct fixture {
	char top[64];
	char repo[96];
	char src[96];
	struct kl_pass *pass;
};

static void write_file(const char *dir, const char *name, size_t n, unsigned seed)
{
	char path[192];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "w");
	assert_non_null(fp);
	for (size_t i = 0; i < n; i++)
		fputc((int)((i * 2654435761u + seed) >> 13) & 0xff, fp);
	fclose(fp);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct kl_init_opts io;
	struct kl_repo *r = NULL;
	char sub[128];

	assert_non_null(f);
	assert_int_equal(kl_crypto_init(), 0);
	assert_int_equal(fixture_tmpdir("oom", f->top, sizeof(f->top)), 0);
	snprintf(f->repo, sizeof(f->repo), "%s/repo", f->top);
	snprintf(f->src, sizeof(f->src), "%s/src", f->top);
	snprintf(sub, sizeof(sub), "%s/sub", f->src);
	assert_int_equal(mkdir(f->src, 0755), 0);
	assert_int_equal(mkdir(sub, 0755), 0);
	write_file(f->src, "big", 200000, 1);
	write_file(f->src, "small", 100, 2);
	write_file(sub, "mid", 30000, 3);
	assert_int_equal(kl_pass_new("pw", 2, &f->pass), 0);
	fixture_init_opts(&io);
	assert_int_equal(kl_repo_create(f->repo, f->pass, &io, &r), 0);
	kl_repo_free(r);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	fixture_rm_rf(f->top);
	kl_pass_free(f->pass);
	free(f);
	return 0;
}

static struct kl_repo *open_repo(struct fixture *f, enum kl_lock_kind kind)
{
	struct kl_repo *r = NULL;

	assert_int_equal(kl_repo_open(f->repo, &r), 0);
	assert_int_equal(kl_repo_unlock(r, f->pass), 0);
	if (kind)
		assert_int_equal(kl_repo_lock(r, kind, "test"), 0);
	assert_int_equal(kl_repo_load_index(r), 0);
	return r;
}

static void assert_check_passes(struct fixture *f, long n, const char *what)
{
	struct kl_repo *r = open_repo(f, 0);
	struct kl_check_opts o = {.read_data = true, .threads = 1};
	struct kl_check_result res;
	int rc = kl_check(r, &o, &res);

	if (rc != 0 || res.errors)
		fail_msg("check fails (%d, %llu errors) after %s with allocation %ld failing", rc,
			 (unsigned long long)res.errors, what, n);
	kl_check_result_release(&res);
	kl_repo_free(r);
}

static int do_backup(struct fixture *f, struct kl_repo *r)
{
	struct kl_backup_opts o;
	struct kl_backup_result res;
	char *paths[] = {f->src};
	int rc;

	kl_backup_opts_init(&o);
	o.paths = paths;
	o.n_paths = 1;
	o.threads = 2;
	rc = kl_backup(r, &o, &res);
	/*
	 * A backup can do without some allocations (the parent's trees only
	 * save work): then it saved a snapshot. Remove it, so that every run
	 * starts from the same repository instead of one more snapshot each.
	 */
	if (rc == 0 && !kl_alloc_fail_pending()) {
		char hex[2 * KL_ID_LEN + 1];

		kl_alloc_fail_after(0);
		kl_id_hex(&res.id, hex);
		assert_int_equal(kl_repo_delete(r, KL_OBJ_SNAPSHOT, hex), 0);
	}
	return rc;
}

static int do_prune(struct fixture *f, struct kl_repo *r)
{
	struct kl_prune_opts o = {.max_unused_permille = 0};
	struct kl_prune_stats st;

	return kl_prune(r, &o, &st);
}

/* Sweeps op over every allocation position (a stride past 300); returns how many ran. */
static long sweep(struct fixture *f, int (*op)(struct fixture *, struct kl_repo *),
		  enum kl_lock_kind kind, const char *what)
{
	bool all = getenv("KEEL_TEST_OOM_ALL") != NULL;
	long n, runs = 0;

	for (n = 1;; n += all || n < 40 ? 1 : n / 12) {
		struct kl_repo *r;
		bool fired;
		int rc;

		r = open_repo(f, kind);

		kl_alloc_fail_after(n);
		rc = op(f, r);
		fired = !kl_alloc_fail_pending();
		kl_alloc_fail_after(0);
		kl_repo_free(r);
		runs++;
		if (!fired) {
			assert_int_equal(rc, 0);
			break;
		}
		if (rc != 0 && rc != -ENOMEM)
			fail_msg("%s with allocation %ld failing returned %d, not -ENOMEM", what, n,
				 rc);
		assert_check_passes(f, n, what);
		assert_true(n < 1000000);
	}
	if (getenv("KEEL_TEST_VERBOSE"))
		print_message("%s: %ld runs, %ld allocations\n", what, runs, n - 1);
	return runs;
}

static void backup_and_prune_out_of_memory(void **state)
{
	struct fixture *f = *state;
	char path[192];

	/* a first backup, then an incremental one over a changed tree */
	sweep(f, do_backup, KL_LOCK_SHARED, "first backup");
	snprintf(path, sizeof(path), "%s/sub/mid", f->src);
	assert_int_equal(unlink(path), 0);
	write_file(f->src, "new", 40000, 4);
	sweep(f, do_backup, KL_LOCK_SHARED, "incremental backup");
	/* every snapshot but the latest goes: prune has packs to delete and repack */
	{
		struct kl_repo *r = open_repo(f, KL_LOCK_SHARED);
		struct kl_snapshot_list l;

		int64_t newest = 0;
		char hex[2 * KL_ID_LEN + 1];

		assert_int_equal(kl_repo_list_snapshots(r, &l), 0);
		assert_true(l.n >= 2);
		for (size_t i = 0; i < l.n; i++)
			if (l.v[i].s.time_ns > newest)
				newest = l.v[i].s.time_ns;
		for (size_t i = 0; i < l.n; i++) {
			if (l.v[i].s.time_ns == newest)
				continue;
			kl_id_hex(&l.v[i].id, hex);
			assert_int_equal(kl_repo_delete(r, KL_OBJ_SNAPSHOT, hex), 0);
		}
		kl_snapshot_list_release(&l);
		kl_repo_free(r);
	}
	sweep(f, do_prune, KL_LOCK_PRUNE, "prune");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(backup_and_prune_out_of_memory, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
