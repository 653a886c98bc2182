/*
 * The local backend on a real directory: create, put (-EEXIST, config
 * overwritten), get (whole, ranges, past the end), stat, list (fan-out,
 * temporary and hidden files skipped, callback errors), del, a missing
 * repository, and the name guards that keep every object inside its
 * directory (keel serve passes names from the network to this backend).
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

#include "keel/backend.h"
#include "fixture.h"

#define PACK1 "ab00000000000000000000000000000000000000000000000000000000000001"
#define PACK2 "cd00000000000000000000000000000000000000000000000000000000000002"

struct fixture {
	char top[64];
	char root[96];
	struct kl_backend *be;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	if (fixture_tmpdir("backend", f->top, sizeof(f->top)) < 0)
		return -1;
	snprintf(f->root, sizeof(f->root), "%s/repo", f->top);
	if (kl_backend_open(f->root, NULL, &f->be) < 0 || f->be->ops->create(f->be) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	kl_backend_free(f->be);
	fixture_rm_rf(f->top);
	free(f);
	return 0;
}

static bool exists(const char *dir, const char *rel)
{
	char p[512];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	return lstat(p, &st) == 0;
}

static void write_file(const char *dir, const char *rel, const char *text)
{
	char p[512];
	FILE *fp;

	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	fp = fopen(p, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static void put_get_stat_del(void **state)
{
	struct fixture *f = *state;
	struct kl_backend *b = f->be;
	struct kl_buf out = KL_BUF_INIT(1u << 20);
	uint64_t size = 0;

	assert_int_equal(b->ops->put(b, KL_OBJ_DATA, PACK1, "0123456789", 10), 0);
	assert_true(exists(f->root, "data/ab/" PACK1));
	/* objects are immutable: a second put of the name is refused, the first stays */
	assert_int_equal(b->ops->put(b, KL_OBJ_DATA, PACK1, "xxxxxxxxxx", 10), -EEXIST);

	assert_int_equal(b->ops->get(b, KL_OBJ_DATA, PACK1, 0, 0, &out), 0);
	assert_int_equal(out.len, 10);
	assert_memory_equal(out.data, "0123456789", 10);
	/* ranges append to what the buffer holds */
	assert_int_equal(b->ops->get(b, KL_OBJ_DATA, PACK1, 3, 4, &out), 0);
	assert_int_equal(out.len, 14);
	assert_memory_equal(out.data + 10, "3456", 4);
	assert_int_equal(out.data[out.len], 0);
	kl_buf_clear(&out);
	/* len 0: to the end */
	assert_int_equal(b->ops->get(b, KL_OBJ_DATA, PACK1, 7, 0, &out), 0);
	assert_int_equal(out.len, 3);
	assert_memory_equal(out.data, "789", 3);
	kl_buf_clear(&out);
	assert_int_equal(b->ops->get(b, KL_OBJ_DATA, PACK1, 10, 0, &out), 0);
	assert_int_equal(out.len, 0);
	/* past the end: the object is shorter than an index said */
	assert_int_equal(b->ops->get(b, KL_OBJ_DATA, PACK1, 8, 3, &out), -KL_ECORRUPT);
	assert_int_equal(b->ops->get(b, KL_OBJ_DATA, PACK1, 11, 0, &out), -KL_ECORRUPT);
	assert_int_equal(b->ops->get(b, KL_OBJ_DATA, PACK1, UINT64_MAX, 1, &out), -KL_ECORRUPT);
	assert_int_equal(b->ops->get(b, KL_OBJ_DATA, PACK1, 1, UINT64_MAX, &out), -KL_ECORRUPT);
	assert_int_equal(out.len, 0);

	assert_int_equal(b->ops->stat(b, KL_OBJ_DATA, PACK1, &size), 0);
	assert_int_equal(size, 10);
	assert_int_equal(b->ops->stat(b, KL_OBJ_DATA, PACK2, &size), -ENOENT);
	assert_int_equal(b->ops->get(b, KL_OBJ_DATA, PACK2, 0, 0, &out), -ENOENT);

	/* other types: one flat directory each */
	assert_int_equal(b->ops->put(b, KL_OBJ_INDEX, "i1", "index", 5), 0);
	assert_true(exists(f->root, "index/i1"));
	kl_buf_clear(&out);
	assert_int_equal(b->ops->get(b, KL_OBJ_INDEX, "i1", 1, 3, &out), 0);
	assert_memory_equal(out.data, "nde", 3);
	assert_int_equal(b->ops->put(b, KL_OBJ_INDEX, "i1", "other", 5), -EEXIST);

	/* config alone is replaced in place (written once by init, rewritten by key changes) */
	assert_int_equal(b->ops->put(b, KL_OBJ_CONFIG, "config", "one", 3), 0);
	assert_int_equal(b->ops->put(b, KL_OBJ_CONFIG, "config", "second", 6), 0);
	assert_int_equal(b->ops->stat(b, KL_OBJ_CONFIG, "config", &size), 0);
	assert_int_equal(size, 6);
	/* ... and a repository with a config is not created again */
	assert_int_equal(b->ops->create(b), -EEXIST);

	assert_int_equal(b->ops->del(b, KL_OBJ_DATA, PACK1), 0);
	assert_false(exists(f->root, "data/ab/" PACK1));
	assert_int_equal(b->ops->del(b, KL_OBJ_DATA, PACK1), -ENOENT);
	assert_int_equal(b->ops->stat(b, KL_OBJ_DATA, PACK1, &size), -ENOENT);
	/* deleted, the name may be written again */
	assert_int_equal(b->ops->put(b, KL_OBJ_DATA, PACK1, "again", 5), 0);
	kl_buf_release(&out);
}

struct listing {
	char names[8][80];
	uint64_t sizes[8];
	size_t n;
	int fail_at; /* return an error at this call (1-based), 0: never */
};

static int collect(const char *name, uint64_t size, void *ud)
{
	struct listing *l = ud;

	if (l->fail_at && (int)l->n + 1 == l->fail_at)
		return -EIO;
	assert_true(l->n < 8);
	snprintf(l->names[l->n], sizeof(l->names[l->n]), "%s", name);
	l->sizes[l->n++] = size;
	return 0;
}

static bool listed(const struct listing *l, const char *name, uint64_t size)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->names[i], name))
			return l->sizes[i] == size;
	return false;
}

static void list_skips_what_is_not_an_object(void **state)
{
	struct fixture *f = *state;
	struct kl_backend *b = f->be;
	struct listing l = {0};
	char dir[256];

	assert_int_equal(b->ops->put(b, KL_OBJ_DATA, PACK1, "0123456789", 10), 0);
	assert_int_equal(b->ops->put(b, KL_OBJ_DATA, PACK2, "01234", 5), 0);
	assert_int_equal(b->ops->put(b, KL_OBJ_SNAPSHOT, "s1", "snap", 4), 0);
	/* what an interrupted write leaves, hidden files, and a directory */
	write_file(f->root, "data/ab/" PACK1 ".tmp.1a2b3c", "partial");
	write_file(f->root, "data/cd/.hidden", "x");
	snprintf(dir, sizeof(dir), "%s/data/cd/adir", f->root);
	assert_int_equal(mkdir(dir, 0700), 0);

	assert_int_equal(b->ops->list(b, KL_OBJ_DATA, collect, &l), 0);
	assert_int_equal(l.n, 2);
	assert_true(listed(&l, PACK1, 10));
	assert_true(listed(&l, PACK2, 5));

	memset(&l, 0, sizeof(l));
	assert_int_equal(b->ops->list(b, KL_OBJ_SNAPSHOT, collect, &l), 0);
	assert_int_equal(l.n, 1);
	assert_true(listed(&l, "s1", 4));

	memset(&l, 0, sizeof(l));
	assert_int_equal(b->ops->list(b, KL_OBJ_INDEX, collect, &l), 0);
	assert_int_equal(l.n, 0);

	/* the callback's error stops the listing and is returned */
	memset(&l, 0, sizeof(l));
	l.fail_at = 1;
	assert_int_equal(b->ops->list(b, KL_OBJ_DATA, collect, &l), -EIO);
	assert_int_equal(l.n, 0);
}

static void missing_repository(void **state)
{
	struct fixture *f = *state;
	struct kl_backend *b = NULL;
	struct kl_buf out = KL_BUF_INIT(1024);
	struct listing l = {0};
	char path[128];
	uint64_t size;

	snprintf(path, sizeof(path), "%s/nothing-here", f->top);
	assert_int_equal(kl_backend_open(path, NULL, &b), 0);
	/* opening creates nothing; every operation says there is nothing */
	assert_false(exists(f->top, "nothing-here"));
	assert_int_equal(b->ops->stat(b, KL_OBJ_CONFIG, "config", &size), -ENOENT);
	assert_int_equal(b->ops->get(b, KL_OBJ_INDEX, "i1", 0, 0, &out), -ENOENT);
	assert_int_equal(b->ops->put(b, KL_OBJ_INDEX, "i1", "x", 1), -ENOENT);
	assert_int_equal(b->ops->del(b, KL_OBJ_INDEX, "i1"), -ENOENT);
	assert_int_equal(b->ops->list(b, KL_OBJ_INDEX, collect, &l), -ENOENT);
	assert_false(exists(f->top, "nothing-here"));
	kl_backend_free(b);
	assert_int_equal(kl_backend_open("", NULL, &b), -KL_EUSAGE);
	kl_buf_release(&out);
}

/*
 * Names that would leave the object's directory, or that listings never
 * show (and so could never be found again), are refused by every
 * operation, and nothing is written anywhere.
 */
static void names_stay_inside(void **state)
{
	static const char *const bad[] = {
		"",    ".",	  "..",	      "../config", "a/b", "/etc/passwd",
		"..x", ".hidden", "..aa0000", "ab.tmp.1",
	};
	static const enum kl_obj_type types[] = {KL_OBJ_DATA, KL_OBJ_INDEX, KL_OBJ_SNAPSHOT,
						 KL_OBJ_KEY, KL_OBJ_LOCK};
	struct fixture *f = *state;
	struct kl_backend *b = f->be;
	struct kl_buf out = KL_BUF_INIT(1024);
	uint64_t size;

	assert_int_equal(b->ops->put(b, KL_OBJ_CONFIG, "config", "cfg", 3), 0);
	for (size_t t = 0; t < KL_ARRAY_SIZE(types); t++)
		for (size_t i = 0; i < KL_ARRAY_SIZE(bad); i++) {
			const char *n = bad[i];
			enum kl_obj_type ty = types[t];

			if (b->ops->put(b, ty, n, "x", 1) != -EINVAL)
				fail_msg("put %s '%s' was not refused", kl_obj_type_name(ty), n);
			assert_int_equal(b->ops->get(b, ty, n, 0, 0, &out), -EINVAL);
			assert_int_equal(b->ops->stat(b, ty, n, &size), -EINVAL);
			assert_int_equal(b->ops->del(b, ty, n), -EINVAL);
		}
	/* a pack name needs its two fan-out digits */
	assert_int_equal(b->ops->put(b, KL_OBJ_DATA, "a", "x", 1), -EINVAL);
	/* nothing landed beside the directories, and config is intact */
	assert_false(exists(f->root, "..x"));
	assert_false(exists(f->root, "..aa0000"));
	assert_false(exists(f->top, "config"));
	assert_int_equal(b->ops->stat(b, KL_OBJ_CONFIG, "config", &size), 0);
	assert_int_equal(size, 3);
	kl_buf_release(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(put_get_stat_del, setup, teardown),
		cmocka_unit_test_setup_teardown(list_skips_what_is_not_an_object, setup, teardown),
		cmocka_unit_test_setup_teardown(missing_repository, setup, teardown),
		cmocka_unit_test_setup_teardown(names_stay_inside, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
