/*
 * The repository core on a real local directory: create/open/unlock,
 * sealed objects, packers and blob reads, index files, orphan adoption,
 * and that tampering with any stored byte is detected.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "keel/repo.h"

struct fixture {
	char dir[64];
	struct kl_pass *pass;
	struct kl_repo *r;
};

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	return remove(p);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct kl_init_opts o;

	snprintf(f->dir, sizeof(f->dir), "/tmp/keel-test-repo.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	size_t n = strlen(f->dir);
	snprintf(f->dir + n, sizeof(f->dir) - n, "/repo");
	kl_init_opts_default(&o);
	o.kdf.ops = 1;
	o.kdf.mem = 8 << 20;
	o.pack_size = 1 << 20;
	o.cdc.min = 4096;
	o.cdc.avg = 16384;
	o.cdc.max = 65536;
	if (kl_pass_new("secret", 6, &f->pass) < 0)
		return -1;
	if (kl_repo_create(f->dir, f->pass, &o, &f->r) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char top[64];

	kl_repo_free(f->r);
	kl_pass_free(f->pass);
	snprintf(top, sizeof(top), "%s", f->dir);
	*strrchr(top, '/') = 0;
	nftw(top, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static struct kl_repo *reopen(struct fixture *f, const char *pw, int *rc)
{
	struct kl_repo *r = NULL;
	struct kl_pass *p = NULL;

	assert_int_equal(kl_repo_open(f->dir, &r), 0);
	assert_int_equal(kl_pass_new(pw, strlen(pw), &p), 0);
	*rc = kl_repo_unlock(r, p);
	kl_pass_free(p);
	if (*rc >= 0)
		*rc = kl_repo_load_index(r);
	return r;
}

static void create_twice_fails(void **state)
{
	struct fixture *f = *state;
	struct kl_init_opts o;
	struct kl_repo *r = NULL;

	kl_init_opts_default(&o);
	o.kdf.ops = 1;
	o.kdf.mem = 8 << 20;
	assert_int_equal(kl_repo_create(f->dir, f->pass, &o, &r), -KL_EEXIST_REPO);
}

static void open_missing_is_norepo(void **state)
{
	struct kl_repo *r = NULL;

	assert_int_equal(kl_repo_open("/tmp/keel-surely-missing-dir/x", &r), -KL_ENOREPO);
	/* opening never creates anything */
	assert_int_equal(access("/tmp/keel-surely-missing-dir", F_OK), -1);
}

static void wrong_password_is_refused(void **state)
{
	struct fixture *f = *state;
	int rc;
	struct kl_repo *r = reopen(f, "not the secret", &rc);

	assert_int_equal(rc, -KL_EBADPASS);
	kl_repo_free(r);
	r = reopen(f, "secret", &rc);
	assert_int_equal(rc, 0);
	assert_true(kl_id_eq(&r->cfg.repo_id, &f->r->cfg.repo_id));
	assert_int_equal(r->cfg.cdc_avg, 16384);
	kl_repo_free(r);
}

static void blobs_round_trip_through_packs(void **state)
{
	struct fixture *f = *state;
	struct kl_packer *p = NULL;
	struct kl_id ids[40];
	struct kl_buf out = KL_BUF_INIT(1 << 24);
	static uint8_t data[40][50000];
	struct kl_repo *r;
	int rc;

	assert_int_equal(kl_packer_new(f->r, &p), 0);
	for (int i = 0; i < 40; i++) {
		/* half compressible, half random */
		if (i % 2)
			kl_random(data[i], sizeof(data[i]));
		else
			memset(data[i], 'a' + i % 26, sizeof(data[i]));
		data[i][0] = (uint8_t)i; /* all distinct */
		assert_int_equal(
			kl_packer_store(p, KL_BLOB_DATA, data[i], sizeof(data[i]), &ids[i]), 0);
	}
	/* storing the same bytes again is deduplicated */
	{
		struct kl_write_stats st;
		struct kl_id again;

		kl_packer_stats(p, &st);
		assert_int_equal(kl_packer_store(p, KL_BLOB_DATA, data[3], sizeof(data[3]), &again),
				 0);
		assert_true(kl_id_eq(&again, &ids[3]));
		struct kl_write_stats st2;
		kl_packer_stats(p, &st2);
		assert_true(st2.blobs == st.blobs);
	}
	assert_int_equal(kl_packer_flush(p), 0);
	kl_packer_free(p);
	assert_int_equal(kl_repo_flush_index(f->r), 0);

	r = reopen(f, "secret", &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(kl_repo_blob_count(r), 40);
	for (int i = 0; i < 40; i++) {
		assert_int_equal(kl_repo_read_blob(r, &ids[i], &out), 0);
		assert_int_equal(out.len, sizeof(data[i]));
		assert_memory_equal(out.data, data[i], sizeof(data[i]));
	}
	kl_buf_release(&out);
	kl_repo_free(r);
}

static int pick_file(const char *dir, char *out, size_t n)
{
	char cmd[600];
	FILE *pf;

	snprintf(cmd, sizeof(cmd), "find '%s' -type f | sort | head -n 1", dir);
	pf = popen(cmd, "r");
	if (!pf || !fgets(out, (int)n, pf))
		return -1;
	out[strcspn(out, "\n")] = 0;
	pclose(pf);
	return 0;
}

static void flip_byte(const char *path, long off)
{
	int fd = open(path, O_RDWR);
	uint8_t c;

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &c, 1, off), 1);
	c ^= 0x01;
	assert_int_equal(pwrite(fd, &c, 1, off), 1);
	close(fd);
}

static void tampered_pack_is_detected(void **state)
{
	struct fixture *f = *state;
	struct kl_packer *p = NULL;
	struct kl_buf out = KL_BUF_INIT(1 << 24);
	static uint8_t data[20000];
	char datadir[600], pack[600];
	struct kl_id id;
	struct kl_repo *r;
	int rc;

	kl_random(data, sizeof(data));
	assert_int_equal(kl_packer_new(f->r, &p), 0);
	assert_int_equal(kl_packer_store(p, KL_BLOB_DATA, data, sizeof(data), &id), 0);
	assert_int_equal(kl_packer_flush(p), 0);
	kl_packer_free(p);
	assert_int_equal(kl_repo_flush_index(f->r), 0);

	snprintf(datadir, sizeof(datadir), "%s/data", f->dir);
	assert_int_equal(pick_file(datadir, pack, sizeof(pack)), 0);
	flip_byte(pack, 100); /* inside the sealed blob */
	r = reopen(f, "secret", &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(kl_repo_read_blob(r, &id, &out), -KL_ECORRUPT);
	kl_repo_free(r);
	kl_buf_release(&out);
}

static void tampered_index_is_detected(void **state)
{
	struct fixture *f = *state;
	struct kl_packer *p = NULL;
	static uint8_t data[1000];
	char dir[600], idx[600];
	struct kl_id id;
	struct kl_repo *r;
	int rc;

	kl_random(data, sizeof(data));
	assert_int_equal(kl_packer_new(f->r, &p), 0);
	assert_int_equal(kl_packer_store(p, KL_BLOB_DATA, data, sizeof(data), &id), 0);
	assert_int_equal(kl_packer_flush(p), 0);
	kl_packer_free(p);
	assert_int_equal(kl_repo_flush_index(f->r), 0);
	snprintf(dir, sizeof(dir), "%s/index", f->dir);
	assert_int_equal(pick_file(dir, idx, sizeof(idx)), 0);
	flip_byte(idx, 20);
	r = reopen(f, "secret", &rc);
	/* skipped and counted, and the blob is still found through the pack's own header */
	assert_int_equal(rc, 0);
	assert_int_equal(r->bad_index_files, 1);
	{
		struct kl_buf out = KL_BUF_INIT(1 << 20);

		assert_int_equal(kl_repo_read_blob(r, &id, &out), 0);
		assert_memory_equal(out.data, data, sizeof(data));
		kl_buf_release(&out);
	}
	kl_repo_free(r);
}

static void orphan_packs_are_adopted(void **state)
{
	struct fixture *f = *state;
	struct kl_packer *p = NULL;
	struct kl_buf out = KL_BUF_INIT(1 << 24);
	static uint8_t data[30000];
	struct kl_id id;
	struct kl_repo *r;
	int rc;

	kl_random(data, sizeof(data));
	assert_int_equal(kl_packer_new(f->r, &p), 0);
	assert_int_equal(kl_packer_store(p, KL_BLOB_DATA, data, sizeof(data), &id), 0);
	assert_int_equal(kl_packer_flush(p), 0);
	kl_packer_free(p);
	assert_int_equal(kl_repo_wait_writes(f->r), 0);
	/* "crash" before the index is written: the pack is durable but unindexed */
	r = reopen(f, "secret", &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(kl_repo_lookup(r, &id, NULL), 0);
	assert_int_equal(kl_repo_adopt_orphans(r), 1);
	assert_int_equal(kl_repo_lookup(r, &id, NULL), 1);
	kl_repo_free(r);
	r = reopen(f, "secret", &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(kl_repo_adopt_orphans(r), 0); /* now indexed for good */
	assert_int_equal(kl_repo_read_blob(r, &id, &out), 0);
	assert_memory_equal(out.data, data, sizeof(data));
	kl_repo_free(r);
	kl_buf_release(&out);
}

static void snapshots_are_listed_in_time_order(void **state)
{
	struct fixture *f = *state;
	struct kl_snapshot s = {0};
	struct kl_snapshot_list l;
	struct kl_id a, b;
	char path0[] = "/home/u", host[] = "h";
	char *paths[] = {path0};

	s.kind = KL_SNAP_FILES;
	s.host = host;
	s.paths = paths;
	s.n_paths = 1;
	s.time_ns = 2000;
	assert_int_equal(kl_repo_save_snapshot(f->r, &s, &a), 0);
	s.time_ns = 1000;
	assert_int_equal(kl_repo_save_snapshot(f->r, &s, &b), 0);
	assert_int_equal(kl_repo_list_snapshots(f->r, &l), 0);
	assert_int_equal(l.n, 2);
	assert_true(kl_id_eq(&l.v[0].id, &b));
	assert_true(kl_id_eq(&l.v[1].id, &a));
	assert_string_equal(l.v[0].s.paths[0], "/home/u");
	kl_snapshot_list_release(&l);
}

static void second_key_opens_same_master(void **state)
{
	struct fixture *f = *state;
	struct kl_pass *p2 = NULL;
	struct kl_kdf_params kdf = {1, 8 << 20};
	struct kl_repo *r;
	int rc;

	assert_int_equal(kl_pass_new("other", 5, &p2), 0);
	assert_int_equal(kl_repo_add_key(f->r, p2, &kdf, "h", "u", NULL), 0);
	kl_pass_free(p2);
	r = reopen(f, "other", &rc);
	assert_int_equal(rc, 0);
	assert_true(kl_id_eq(&r->cfg.repo_id, &f->r->cfg.repo_id));
	kl_repo_free(r);
}

/* A file whose bytes equal a directory's encoding must not stand in for it. */
static void data_and_tree_ids_never_collide(void **state)
{
	struct fixture *f = *state;
	struct kl_packer *p = NULL;
	struct kl_tree empty = {0};
	struct kl_buf enc = KL_BUF_INIT(1 << 20), out = KL_BUF_INIT(1 << 20);
	struct kl_tree back = {0};
	struct kl_id data_id, tree_id;

	assert_int_equal(kl_tree_encode(&empty, &enc), 0);
	assert_int_equal(kl_packer_new(f->r, &p), 0);
	assert_int_equal(kl_packer_store(p, KL_BLOB_DATA, enc.data, enc.len, &data_id), 0);
	assert_int_equal(kl_packer_store(p, KL_BLOB_TREE, enc.data, enc.len, &tree_id), 0);
	assert_false(kl_id_eq(&data_id, &tree_id));
	assert_int_equal(kl_packer_flush(p), 0);
	kl_packer_free(p);
	assert_int_equal(kl_repo_flush_index(f->r), 0);
	assert_int_equal(kl_repo_read_tree(f->r, &tree_id, &back), 0);
	assert_int_equal(back.n, 0);
	assert_int_equal(kl_repo_read_tree(f->r, &data_id, &back), -KL_ECORRUPT);
	assert_int_equal(kl_repo_read_blob(f->r, &data_id, &out), 0);
	assert_int_equal(out.len, enc.len);
	kl_tree_release(&back);
	kl_buf_release(&enc);
	kl_buf_release(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(create_twice_fails, setup, teardown),
		cmocka_unit_test(open_missing_is_norepo),
		cmocka_unit_test_setup_teardown(wrong_password_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(blobs_round_trip_through_packs, setup, teardown),
		cmocka_unit_test_setup_teardown(tampered_pack_is_detected, setup, teardown),
		cmocka_unit_test_setup_teardown(tampered_index_is_detected, setup, teardown),
		cmocka_unit_test_setup_teardown(orphan_packs_are_adopted, setup, teardown),
		cmocka_unit_test_setup_teardown(snapshots_are_listed_in_time_order, setup,
						teardown),
		cmocka_unit_test_setup_teardown(second_key_opens_same_master, setup, teardown),
		cmocka_unit_test_setup_teardown(data_and_tree_ids_never_collide, setup, teardown),
	};

	kl_crypto_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
