/*
 * repair snapshots on a directory stored in parts (a version-2 head and
 * its continuation parts, docs/FORMAT.md section 6), built by hand so
 * that exactly one blob can be damaged: a bad part loses its entries
 * only, a bad head the whole directory.
 *
 *   root: big/ (12 files a00..a11 in a head of 4 nodes and 2 parts of 4),
 *         keep (a file)
 *
 * And a snapshot whose directories reuse one subtree at every level, which
 * repair must visit once per tree, not once per path.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keel/maint.h"
#include "fixture.h"

#define NODES 12
#define PER_BLOB 4

struct fixture {
	char top[64];
	char repo[96];
	struct kl_pass *pass;
	struct kl_id data;
	struct kl_id blobs[8]; /* what kl_tree_store stored, parts first, head last */
	size_t n_blobs;
	struct kl_id big, root, snap;
	struct kl_packer *p;
	struct kl_buf text; /* what repair reported */
	unsigned lost;
};

static int store_cb(void *ud, const uint8_t *p, size_t n, struct kl_id *ret)
{
	struct fixture *f = ud;
	int rc = kl_packer_store(f->p, KL_BLOB_TREE, p, n, ret);

	if (rc >= 0 && f->n_blobs < 8)
		f->blobs[f->n_blobs++] = *ret;
	return rc;
}

static void add_file(struct kl_tree *t, const char *name, const struct kl_id *data)
{
	struct kl_node nd = {0};

	nd.name = (uint8_t *)kl_strdup(name);
	nd.name_len = strlen(name);
	nd.type = KL_NODE_FILE;
	nd.mode = 0644;
	nd.content = kl_memdup(data, sizeof(*data));
	nd.n_content = 1;
	nd.size = 5;
	assert_int_equal(kl_tree_add(t, &nd), 0);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct kl_repo *r = NULL;
	struct kl_tree big = {0}, root = {0};
	struct kl_buf enc = KL_BUF_INIT(1u << 20);
	struct kl_snapshot sn = {.kind = KL_SNAP_FILES, .time_ns = 1, .time_end_ns = 2};
	struct kl_node dir = {0};

	assert_non_null(f);
	assert_int_equal(kl_crypto_init(), 0);
	assert_int_equal(fixture_tmpdir("repair", f->top, sizeof(f->top)), 0);
	snprintf(f->repo, sizeof(f->repo), "%s/repo", f->top);
	assert_int_equal(fixture_repo_create(f->repo, NULL, &f->pass, &r), 0);
	assert_int_equal(kl_packer_new(r, &f->p), 0);
	assert_int_equal(kl_packer_store(f->p, KL_BLOB_DATA, "hello", 5, &f->data), 0);
	for (int i = 0; i < NODES; i++) {
		char name[8];

		snprintf(name, sizeof(name), "a%02d", i);
		add_file(&big, name, &f->data);
	}
	assert_int_equal(kl_tree_store(&big, PER_BLOB, store_cb, f, &f->big), 0);
	/* two parts and the head */
	assert_int_equal(f->n_blobs, NODES / PER_BLOB);
	assert_memory_equal(f->blobs[f->n_blobs - 1].b, f->big.b, KL_ID_LEN);
	dir.name = (uint8_t *)kl_strdup("big");
	dir.name_len = 3;
	dir.type = KL_NODE_DIR;
	dir.mode = 0755;
	dir.subtree = f->big;
	dir.has_subtree = true;
	assert_int_equal(kl_tree_add(&root, &dir), 0);
	add_file(&root, "keep", &f->data);
	assert_int_equal(kl_tree_encode(&root, &enc), 0);
	assert_int_equal(kl_packer_store(f->p, KL_BLOB_TREE, enc.data, enc.len, &f->root), 0);
	assert_int_equal(kl_packer_flush(f->p), 0);
	kl_packer_free(f->p);
	f->p = NULL;
	assert_int_equal(kl_repo_flush_index(r), 0);
	sn.tree = f->root;
	assert_int_equal(kl_repo_save_snapshot(r, &sn, &f->snap), 0);
	kl_tree_release(&big);
	kl_tree_release(&root);
	kl_buf_release(&enc);
	kl_repo_free(r);
	kl_buf_init(&f->text, 1u << 20);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	kl_pass_free(f->pass);
	kl_buf_release(&f->text);
	fixture_rm_rf(f->top);
	free(f);
	return 0;
}

static struct kl_repo *open_repo(struct fixture *f)
{
	struct kl_repo *r = NULL;

	assert_int_equal(kl_repo_open(f->repo, &r), 0);
	assert_int_equal(kl_repo_unlock(r, f->pass), 0);
	assert_int_equal(kl_repo_load_index(r), 0);
	return r;
}

/* Flips a byte in the middle of blob id's sealed bytes: its MAC fails. */
static void damage(struct fixture *f, const struct kl_id *id)
{
	struct kl_repo *r = open_repo(f);
	struct kl_blob_loc loc;
	char hex[2 * KL_ID_LEN + 1], path[256];
	off_t off;
	uint8_t b;
	int fd;

	assert_int_equal(kl_repo_lookup(r, id, &loc), 1);
	kl_id_hex(&loc.pack, hex);
	snprintf(path, sizeof(path), "%s/data/%.2s/%s", f->repo, hex, hex);
	off = (off_t)(loc.e.offset + loc.e.length / 2);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, off), 1);
	b ^= 0x20;
	assert_int_equal(pwrite(fd, &b, 1, off), 1);
	close(fd);
	kl_repo_free(r);
}

static void on_warn(void *ud, const char *path, int err, const char *what)
{
	struct fixture *f = ud;

	kl_buf_addf(&f->text, "%s: %s\n", path, what);
	f->lost++;
}

struct repaired {
	struct kl_id id;
	uint64_t lost;
	unsigned n;
};

static int on_snapshot(const struct kl_id *old, const struct kl_id *repaired, uint64_t lost,
		       void *ud)
{
	struct repaired *rp = ud;

	assert_non_null(repaired);
	rp->id = *repaired;
	rp->lost = lost;
	rp->n++;
	return 0;
}

/* Repairs every snapshot; returns the names in the repaired snapshot's big/. */
static void repair(struct fixture *f, struct kl_repair_stats *st, char names[static 256])
{
	struct kl_repair_opts o = {.report = {.warn = on_warn, .ud = f}};
	struct kl_repo *r = open_repo(f);
	struct repaired rp = {0};
	struct kl_snapshot sn = {0};
	struct kl_tree root = {0}, big = {0};
	const struct kl_node *dir;
	size_t w = 0;

	kl_buf_clear(&f->text);
	f->lost = 0;
	assert_int_equal(kl_repair_snapshots(r, &o, st, on_snapshot, &rp), 0);
	assert_int_equal(rp.n, 1);
	assert_int_equal(rp.lost, st->files_lost);
	if (getenv("KEEL_TEST_VERBOSE"))
		print_message("repair reported:\n%s", (const char *)f->text.data);
	assert_int_equal(kl_repo_load_snapshot(r, &rp.id, &sn), 0);
	assert_true(sn.partial);
	assert_int_equal(kl_repo_read_tree(r, &sn.tree, &root), 0);
	assert_non_null(kl_tree_find(&root, (const uint8_t *)"keep", 4));
	dir = kl_tree_find(&root, (const uint8_t *)"big", 3);
	assert_non_null(dir);
	assert_int_equal(kl_repo_read_tree(r, &dir->subtree, &big), 0);
	names[0] = 0;
	for (size_t i = 0; i < big.n; i++)
		w += (size_t)snprintf(names + w, 256 - w, "%s%.*s", i ? " " : "",
				      (int)big.nodes[i].name_len, (const char *)big.nodes[i].name);
	kl_tree_release(&big);
	kl_tree_release(&root);
	kl_snapshot_release(&sn);
	kl_repo_free(r);
}

/* The first part (nodes a04..a07) is damaged: the rest of the directory survives. */
static void bad_part_loses_its_entries_only(void **state)
{
	struct fixture *f = *state;
	struct kl_repair_stats st;
	char names[256];

	damage(f, &f->blobs[0]);
	repair(f, &st, names);
	assert_string_equal(names, "a00 a01 a02 a03 a08 a09 a10 a11");
	assert_int_equal(st.snapshots_repaired, 1);
	assert_int_equal(st.files_lost, 1);
	assert_int_equal(f->lost, 1);
	assert_non_null(strstr((const char *)f->text.data,
			       "/big: part 2 of 3 of the directory cannot be read"));
}

/* The last part: the head and the first part survive. */
static void bad_last_part(void **state)
{
	struct fixture *f = *state;
	struct kl_repair_stats st;
	char names[256];

	damage(f, &f->blobs[1]);
	repair(f, &st, names);
	assert_string_equal(names, "a00 a01 a02 a03 a04 a05 a06 a07");
	assert_int_equal(st.files_lost, 1);
	assert_non_null(strstr((const char *)f->text.data, "/big: part 3 of 3"));
}

/* Without its head nothing says what the parts are: the directory is restored empty. */
static void bad_head_loses_the_directory(void **state)
{
	struct fixture *f = *state;
	struct kl_repair_stats st;
	char names[256];

	damage(f, &f->big);
	repair(f, &st, names);
	assert_string_equal(names, "");
	assert_int_equal(st.files_lost, 1);
	assert_non_null(strstr((const char *)f->text.data, "/big: directory cannot be read"));
}

/*
 * 40 levels of a directory that holds the same subdirectory twice, as "a"
 * and "b", above one whose file "gone" has no data: 2^40 paths to one
 * loss. Repair must visit each tree once, and still count every path.
 */
#define LEVELS 40

static void add_dir(struct kl_tree *t, const char *name, const struct kl_id *sub)
{
	struct kl_node nd = {0};

	nd.name = (uint8_t *)kl_strdup(name);
	nd.name_len = strlen(name);
	nd.type = KL_NODE_DIR;
	nd.mode = 0755;
	nd.subtree = *sub;
	nd.has_subtree = true;
	assert_int_equal(kl_tree_add(t, &nd), 0);
}

static int setup_shared(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct kl_repo *r = NULL;
	struct kl_buf enc = KL_BUF_INIT(1u << 20);
	struct kl_snapshot sn = {.kind = KL_SNAP_FILES, .time_ns = 1, .time_end_ns = 2};
	struct kl_id missing, sub;

	assert_non_null(f);
	assert_int_equal(kl_crypto_init(), 0);
	assert_int_equal(fixture_tmpdir("repair", f->top, sizeof(f->top)), 0);
	snprintf(f->repo, sizeof(f->repo), "%s/repo", f->top);
	assert_int_equal(fixture_repo_create(f->repo, NULL, &f->pass, &r), 0);
	assert_int_equal(kl_packer_new(r, &f->p), 0);
	assert_int_equal(kl_packer_store(f->p, KL_BLOB_DATA, "hello", 5, &f->data), 0);
	memset(missing.b, 0x5a, sizeof(missing.b)); /* stored nowhere */
	for (int level = 0; level <= LEVELS; level++) {
		struct kl_tree t = {0};

		if (level) {
			add_dir(&t, "a", &sub);
			add_dir(&t, "b", &sub);
		} else {
			add_file(&t, "gone", &missing);
		}
		add_file(&t, "keep", &f->data);
		kl_buf_clear(&enc);
		assert_int_equal(kl_tree_encode(&t, &enc), 0);
		assert_int_equal(kl_packer_store(f->p, KL_BLOB_TREE, enc.data, enc.len, &sub), 0);
		kl_tree_release(&t);
	}
	f->root = sub;
	assert_int_equal(kl_packer_flush(f->p), 0);
	kl_packer_free(f->p);
	f->p = NULL;
	assert_int_equal(kl_repo_flush_index(r), 0);
	sn.tree = f->root;
	assert_int_equal(kl_repo_save_snapshot(r, &sn, &f->snap), 0);
	kl_buf_release(&enc);
	kl_repo_free(r);
	kl_buf_init(&f->text, 1u << 20);
	*state = f;
	return 0;
}

static void shared_subtrees_are_repaired_once(void **state)
{
	struct fixture *f = *state;
	struct kl_repair_opts o = {.report = {.warn = on_warn, .ud = f}};
	struct kl_repair_stats st;
	struct kl_repo *r = open_repo(f);
	struct repaired rp = {0};
	struct kl_snapshot sn = {0};
	struct kl_id tree;

	assert_int_equal(kl_repair_snapshots(r, &o, &st, on_snapshot, &rp), 0);
	assert_int_equal(rp.n, 1);
	assert_int_equal(st.files_lost, (uint64_t)1 << LEVELS);
	assert_int_equal(rp.lost, st.files_lost);
	/* one report of the loss, and one per level for the second way to it */
	assert_int_equal(f->lost, 1 + LEVELS);
	assert_non_null(strstr((const char *)f->text.data, "/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/"
							   "a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/"
							   "a/a/a/a/a/a/a/a/gone: file data"));
	/* the repaired snapshot: down "b" all the way, "keep" stays and "gone" went */
	assert_int_equal(kl_repo_load_snapshot(r, &rp.id, &sn), 0);
	tree = sn.tree;
	for (int level = LEVELS; level >= 0; level--) {
		struct kl_tree t = {0};
		const struct kl_node *nd;

		assert_int_equal(kl_repo_read_tree(r, &tree, &t), 0);
		assert_non_null(kl_tree_find(&t, (const uint8_t *)"keep", 4));
		assert_null(kl_tree_find(&t, (const uint8_t *)"gone", 4));
		nd = kl_tree_find(&t, (const uint8_t *)"b", 1);
		assert_true(level ? nd != NULL : nd == NULL);
		if (nd)
			tree = nd->subtree;
		kl_tree_release(&t);
	}
	kl_snapshot_release(&sn);
	kl_repo_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(bad_part_loses_its_entries_only, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_last_part, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_head_loses_the_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(shared_subtrees_are_repaired_once, setup_shared,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
