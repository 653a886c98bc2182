/*
 * The backup's paths without a path per directory: a directory job's
 * full path comes from the names on the way up (kl_bk_dir_path, for the
 * messages of a directory finished long after the walk passed it), the
 * walk's one buffer grows by a component at a time (kl_bk_path_add), and
 * source nodes point into the source path instead of copying it. And what
 * an interrupt (the cancel flag, kl_repo_set_cancel) does to the writes a
 * backup makes: it stops them, and keeps what is durable.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "fixture.h"
#include "keel/repo.h"
#include "keel/util.h"
#include "ops/backup-internal.h"

/* Adds a directory node called name to d's tree; returns its slot. */
static size_t add_dir_node(struct dir_job *d, const char *name)
{
	struct kl_node n = {0};

	n.name_len = strlen(name);
	n.name = kl_memdup(name, n.name_len + 1);
	assert_non_null(n.name);
	n.type = KL_NODE_DIR;
	assert_int_equal(kl_tree_add(&d->tree, &n), 0);
	return d->tree.n - 1;
}

static char *dir_path(const struct dir_job *d)
{
	struct kl_buf p = KL_BUF_INIT(SIZE_MAX);

	assert_int_equal(kl_bk_dir_path(d, &p), 0);
	return (char *)kl_buf_detach(&p, NULL);
}

static void dir_path_from_the_names_above(void **state)
{
	struct backup b = {0};
	struct dir_job *root, *a, *bb;
	char *p;

	(void)state;
	root = kl_bk_dir_new(&b, NULL, 0);
	assert_non_null(root);
	add_dir_node(root, "x-before");
	a = kl_bk_dir_new(&b, root, add_dir_node(root, "a"));
	assert_non_null(a);
	bb = kl_bk_dir_new(&b, a, add_dir_node(a, "bb"));
	assert_non_null(bb);
	assert_int_equal(root->pending, 2);
	assert_int_equal(a->pending, 2);

	p = dir_path(root);
	assert_string_equal(p, "/");
	kl_free(p);
	p = dir_path(a);
	assert_string_equal(p, "/a");
	kl_free(p);
	p = dir_path(bb);
	assert_string_equal(p, "/a/bb");
	kl_free(p);

	while (b.live)
		kl_bk_dir_free(&b, b.live);
}

/* 3000 levels of 200-byte names: a path of 603,000 bytes, built on demand */
static void dir_path_of_a_deep_tree(void **state)
{
	enum { DEPTH = 3000, NAME = 200 };
	struct backup b = {0};
	struct dir_job *d;
	char name[NAME + 1];
	char *p;

	(void)state;
	d = kl_bk_dir_new(&b, NULL, 0);
	assert_non_null(d);
	for (int i = 0; i < DEPTH; i++) {
		memset(name, 'a' + i % 26, NAME);
		name[NAME] = 0;
		d = kl_bk_dir_new(&b, d, add_dir_node(d, name));
		assert_non_null(d);
	}
	p = dir_path(d);
	assert_int_equal(strlen(p), (size_t)DEPTH * (NAME + 1));
	for (size_t i = 0; i < DEPTH; i++) {
		assert_int_equal(p[i * (NAME + 1)], '/');
		assert_int_equal(p[i * (NAME + 1) + 1], 'a' + i % 26);
		assert_int_equal(p[i * (NAME + 1) + NAME], 'a' + i % 26);
	}
	kl_free(p);
	while (b.live)
		kl_bk_dir_free(&b, b.live);
}

static void path_add_one_component(void **state)
{
	struct kl_buf p = KL_BUF_INIT(SIZE_MAX);

	(void)state;
	assert_int_equal(kl_buf_addstr(&p, "/"), 0);
	assert_int_equal(kl_bk_path_add(&p, "usr", 3), 0);
	assert_string_equal((char *)p.data, "/usr");
	assert_int_equal(kl_bk_path_add(&p, "share-not-this", 5), 0);
	assert_string_equal((char *)p.data, "/usr/share");
	kl_buf_release(&p);
}

static void source_nodes_point_into_the_path(void **state)
{
	struct source_node *root = kl_calloc(1, sizeof(*root));
	const char *path = "/srv/data/db";
	const struct source_node *srv, *data, *db;

	(void)state;
	assert_non_null(root);
	root->name = kl_strdup("");
	assert_int_equal(kl_bk_source_add(root, path), 0);
	assert_int_equal(root->n_kids, 1);
	srv = root->kids[0];
	assert_string_equal(srv->name, "srv");
	assert_ptr_equal(srv->path, path);
	assert_int_equal(srv->path_len, 4);
	assert_false(srv->is_source);
	assert_int_equal(srv->n_kids, 1);
	data = srv->kids[0];
	assert_int_equal(data->path_len, 9);
	db = data->kids[0];
	assert_string_equal(db->name, "db");
	assert_int_equal(db->path_len, strlen(path));
	assert_true(db->is_source);
	kl_bk_source_free(root);
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

/*
 * Once the flag is set, no blob is added and no queued pack written; the
 * index still names the pack written before (so the next backup reuses
 * it), and the lock can be dropped from another thread at once.
 */
static void cancel_stops_writes_and_keeps_what_is_durable(void **state)
{
	static uint8_t a[3000], b[3000], c[3000];
	char dir[64], locks[80];
	atomic_bool cancel = false;
	struct kl_repo *r = NULL;
	struct kl_packer *p = NULL;
	struct kl_pass *pass = NULL;
	struct kl_id ia, ib, ic;
	struct kl_blob_loc loc;
	size_t n;
	int rc;

	(void)state;
	assert_true(kl_crypto_init() >= 0);
	assert_int_equal(fixture_tmpdir("cancel", dir, sizeof(dir)), 0);
	n = strlen(dir);
	snprintf(dir + n, sizeof(dir) - n, "/repo");
	snprintf(locks, sizeof(locks), "%s/locks", dir);
	assert_int_equal(fixture_repo_create(dir, NULL, &pass, &r), 0);
	assert_int_equal(kl_repo_lock(r, KL_LOCK_SHARED, "backup"), 0);
	assert_int_equal(count_entries(locks), 1);
	kl_repo_set_cancel(r, &cancel);
	assert_int_equal(kl_repo_cancelled(r), 0);
	kl_random(a, sizeof(a));
	kl_random(b, sizeof(b));
	kl_random(c, sizeof(c));

	assert_int_equal(kl_packer_new(r, &p), 0);
	assert_int_equal(kl_packer_store(p, KL_BLOB_DATA, a, sizeof(a), &ia), 0);
	assert_int_equal(kl_packer_flush(p), 0);
	assert_int_equal(kl_repo_wait_writes(r), 0);
	assert_int_equal(kl_repo_packs_written(r), 1);
	/* b's pack is queued after the interrupt: dropped, not written */
	assert_int_equal(kl_packer_store(p, KL_BLOB_DATA, b, sizeof(b), &ib), 0);
	atomic_store(&cancel, true);
	assert_int_equal(kl_repo_cancelled(r), -KL_EINTERRUPTED);
	rc = kl_packer_flush(p);
	assert_true(rc == 0 || rc == -KL_EINTERRUPTED);
	assert_int_equal(kl_repo_wait_writes(r), -KL_EINTERRUPTED);
	assert_int_equal(kl_repo_packs_written(r), 1);
	assert_int_equal(kl_packer_store(p, KL_BLOB_DATA, c, sizeof(c), &ic), -KL_EINTERRUPTED);
	kl_packer_free(p);
	/* the interrupted flush still indexes what is durable */
	assert_int_equal(kl_repo_flush_index(r), -KL_EINTERRUPTED);
	assert_int_equal(kl_repo_lock_abandon(r), 0);
	assert_int_equal(count_entries(locks), 0);
	kl_repo_free(r);

	assert_int_equal(kl_repo_open(dir, &r), 0);
	assert_int_equal(kl_repo_unlock(r, pass), 0);
	assert_int_equal(kl_repo_load_index(r), 0);
	assert_int_equal(kl_repo_lookup(r, &ia, &loc), 1);
	assert_int_equal(kl_repo_lookup(r, &ib, &loc), 0);
	assert_int_equal(kl_repo_cancelled(r), 0); /* no flag: never cancelled */
	kl_repo_free(r);
	kl_pass_free(pass);
	*strrchr(dir, '/') = 0;
	fixture_rm_rf(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(dir_path_from_the_names_above),
		cmocka_unit_test(dir_path_of_a_deep_tree),
		cmocka_unit_test(path_add_one_component),
		cmocka_unit_test(source_nodes_point_into_the_path),
		cmocka_unit_test(cancel_stops_writes_and_keeps_what_is_durable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
