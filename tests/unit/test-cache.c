/*
 * The metadata cache (src/backend/cache.c) over a real local backend: a
 * thin counting layer between them shows which reads reach the "remote".
 * Entries spare downloads, a damaged or deleted cache costs only a
 * download, objects gone from the remote leave the cache at the next
 * listing, and only what the remote listed is served without asking it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keel/backend.h"
#include "keel/crypto.h"
#include "fixture.h"

/* ---- a backend that counts the reads of the one it wraps ---------------- */

struct counting {
	struct kl_backend b;
	struct kl_backend *inner;
	unsigned gets[KL_OBJ_TYPES];
};

static int cnt_list(struct kl_backend *b, enum kl_obj_type t, kl_list_cb cb, void *ud)
{
	struct counting *c = (struct counting *)b;

	return c->inner->ops->list(c->inner, t, cb, ud);
}

static int cnt_get(struct kl_backend *b, enum kl_obj_type t, const char *name, uint64_t off,
		   uint64_t len, struct kl_buf *out)
{
	struct counting *c = (struct counting *)b;

	c->gets[t]++;
	return c->inner->ops->get(c->inner, t, name, off, len, out);
}

static int cnt_put(struct kl_backend *b, enum kl_obj_type t, const char *name, const void *data,
		   size_t len)
{
	struct counting *c = (struct counting *)b;

	return c->inner->ops->put(c->inner, t, name, data, len);
}

static int cnt_del(struct kl_backend *b, enum kl_obj_type t, const char *name)
{
	struct counting *c = (struct counting *)b;

	return c->inner->ops->del(c->inner, t, name);
}

static int cnt_stat(struct kl_backend *b, enum kl_obj_type t, const char *name, uint64_t *size)
{
	struct counting *c = (struct counting *)b;

	return c->inner->ops->stat(c->inner, t, name, size);
}

static int cnt_create(struct kl_backend *b)
{
	struct counting *c = (struct counting *)b;

	return c->inner->ops->create(c->inner);
}

static void cnt_free(struct kl_backend *b)
{
	struct counting *c = (struct counting *)b;

	kl_backend_free(c->inner);
	free(c);
}

static const struct kl_backend_ops cnt_ops = {
	.scheme = "counting",
	.list = cnt_list,
	.get = cnt_get,
	.put = cnt_put,
	.del = cnt_del,
	.stat = cnt_stat,
	.create = cnt_create,
	.free = cnt_free,
};

/* ---- fixture ------------------------------------------------------------ */

#define N_SNAP 3

struct fixture {
	char top[64];
	char repo[96], base[96];
	char snap[N_SNAP][2 * KL_ID_LEN + 1];
	uint8_t snap_data[N_SNAP][100];
	struct counting *cnt; /* owned by be */
	struct kl_backend *be;
};

static void name_of(const void *data, size_t n, char hex[2 * KL_ID_LEN + 1])
{
	struct kl_id id;

	kl_sha256(data, n, &id);
	kl_hex_encode(id.b, KL_ID_LEN, hex);
}

/* A new process's view: counting(local) under a cache, config read. */
static void open_cached(struct fixture *f, bool read_config)
{
	struct kl_backend *local = NULL;
	struct kl_buf cfg = KL_BUF_INIT(1 << 20);

	assert_int_equal(kl_backend_local_open(f->repo, &local), 0);
	f->cnt = calloc(1, sizeof(*f->cnt));
	assert_non_null(f->cnt);
	f->cnt->b.ops = &cnt_ops;
	f->cnt->b.location = NULL;
	f->cnt->inner = local;
	assert_int_equal(kl_backend_cache_new(&f->cnt->b, f->base, &f->be), 0);
	assert_string_equal(f->be->ops->scheme, "cache");
	assert_ptr_equal(kl_backend_unwrap(f->be), &f->cnt->b);
	if (read_config) {
		assert_int_equal(f->be->ops->get(f->be, KL_OBJ_CONFIG, "config", 0, 0, &cfg), 0);
		assert_string_equal((const char *)cfg.data, "config bytes");
	}
	kl_buf_release(&cfg);
}

static void close_cached(struct fixture *f)
{
	kl_backend_free(f->be);
	f->be = NULL;
	f->cnt = NULL;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct kl_backend *local = NULL;

	if (fixture_tmpdir("cache", f->top, sizeof(f->top)) < 0)
		return -1;
	snprintf(f->repo, sizeof(f->repo), "%s/repo", f->top);
	snprintf(f->base, sizeof(f->base), "%s/cache", f->top);
	if (kl_backend_local_open(f->repo, &local) < 0 || local->ops->create(local) < 0 ||
	    local->ops->put(local, KL_OBJ_CONFIG, "config", "config bytes", 13) < 0)
		return -1;
	for (int i = 0; i < N_SNAP; i++) {
		kl_random(f->snap_data[i], sizeof(f->snap_data[i]));
		name_of(f->snap_data[i], sizeof(f->snap_data[i]), f->snap[i]);
		if (local->ops->put(local, KL_OBJ_SNAPSHOT, f->snap[i], f->snap_data[i],
				    sizeof(f->snap_data[i])) < 0)
			return -1;
	}
	kl_backend_free(local);
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

/* ---- helpers ------------------------------------------------------------ */

static int count_one(const char *name, uint64_t size, void *ud)
{
	(void)name;
	(void)size;
	++*(unsigned *)ud;
	return 0;
}

static unsigned list_snapshots(struct fixture *f)
{
	unsigned n = 0;

	assert_int_equal(f->be->ops->list(f->be, KL_OBJ_SNAPSHOT, count_one, &n), 0);
	return n;
}

static void get_snapshot(struct fixture *f, int i)
{
	struct kl_buf out = KL_BUF_INIT(1 << 20);

	assert_int_equal(f->be->ops->get(f->be, KL_OBJ_SNAPSHOT, f->snap[i], 0, 0, &out), 0);
	assert_int_equal(out.len, sizeof(f->snap_data[i]));
	assert_memory_equal(out.data, f->snap_data[i], out.len);
	kl_buf_release(&out);
}

/* The path of snapshot i's entry, below the one repository directory in base. */
static void entry_path(struct fixture *f, int i, char *out, size_t n)
{
	char cfg[2 * KL_ID_LEN + 1];

	name_of("config bytes", 13, cfg);
	snprintf(out, n, "%s/%s/snapshots/%s", f->base, cfg, f->snap[i]);
}

static bool exists(const char *p)
{
	struct stat st;

	return lstat(p, &st) == 0;
}

static void populate(struct fixture *f)
{
	open_cached(f, true);
	assert_int_equal(list_snapshots(f), N_SNAP);
	for (int i = 0; i < N_SNAP; i++)
		get_snapshot(f, i);
	assert_int_equal(f->cnt->gets[KL_OBJ_SNAPSHOT], N_SNAP);
	close_cached(f);
}

/* ---- tests -------------------------------------------------------------- */

static void entries_spare_downloads(void **state)
{
	struct fixture *f = *state;
	char p[512];

	populate(f);
	snprintf(p, sizeof(p), "%s/CACHEDIR.TAG", f->base);
	assert_true(exists(p));
	for (int i = 0; i < N_SNAP; i++) {
		entry_path(f, i, p, sizeof(p));
		assert_true(exists(p));
	}
	open_cached(f, true);
	assert_int_equal(list_snapshots(f), N_SNAP);
	for (int i = 0; i < N_SNAP; i++)
		get_snapshot(f, i);
	assert_int_equal(f->cnt->gets[KL_OBJ_SNAPSHOT], 0);
	/* the config is always read from the remote */
	assert_int_equal(f->cnt->gets[KL_OBJ_CONFIG], 1);
}

static void damaged_entry_is_refetched(void **state)
{
	struct fixture *f = *state;
	char p[512];
	int fd;

	populate(f);
	entry_path(f, 1, p, sizeof(p));
	fd = open(p, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "X", 1, 50), 1);
	close(fd);
	entry_path(f, 2, p, sizeof(p));
	assert_int_equal(truncate(p, 10), 0);

	open_cached(f, true);
	list_snapshots(f);
	for (int i = 0; i < N_SNAP; i++)
		get_snapshot(f, i);
	assert_int_equal(f->cnt->gets[KL_OBJ_SNAPSHOT], 2);
	/* and repaired: the next reads are local again */
	for (int i = 0; i < N_SNAP; i++)
		get_snapshot(f, i);
	assert_int_equal(f->cnt->gets[KL_OBJ_SNAPSHOT], 2);
}

static void deleted_cache_is_harmless(void **state)
{
	struct fixture *f = *state;
	char p[512];

	populate(f);
	open_cached(f, true);
	list_snapshots(f);
	fixture_rm_rf(f->base);
	for (int i = 0; i < N_SNAP; i++)
		get_snapshot(f, i);
	assert_int_equal(f->cnt->gets[KL_OBJ_SNAPSHOT], N_SNAP);
	snprintf(p, sizeof(p), "%s/CACHEDIR.TAG", f->base);
	assert_true(exists(p));
	entry_path(f, 0, p, sizeof(p));
	assert_true(exists(p));
	/* a listing over a missing directory is no error either */
	fixture_rm_rf(f->base);
	assert_int_equal(list_snapshots(f), N_SNAP);
}

static void gone_objects_leave_the_cache(void **state)
{
	struct fixture *f = *state;
	struct kl_buf out = KL_BUF_INIT(1 << 20);
	char p[512], tmp_old[600], tmp_new[600];
	struct timespec old[2] = {{.tv_sec = 1000000000}, {.tv_sec = 1000000000}};
	int fd;

	populate(f);
	/* another client forgets snapshot 0 */
	snprintf(p, sizeof(p), "%s/snapshots/%s", f->repo, f->snap[0]);
	assert_int_equal(unlink(p), 0);
	entry_path(f, 0, p, sizeof(p));
	snprintf(tmp_old, sizeof(tmp_old), "%s.tmp.0000000000000001", p);
	snprintf(tmp_new, sizeof(tmp_new), "%s.tmp.0000000000000002", p);
	fd = open(tmp_old, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(futimens(fd, old), 0);
	close(fd);
	fd = open(tmp_new, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	close(fd);

	open_cached(f, true);
	assert_true(exists(p));
	assert_int_equal(list_snapshots(f), N_SNAP - 1);
	assert_false(exists(p));
	/* a dead process's temporary file goes, a running one's stays */
	assert_false(exists(tmp_old));
	assert_true(exists(tmp_new));
	assert_int_equal(f->be->ops->get(f->be, KL_OBJ_SNAPSHOT, f->snap[0], 0, 0, &out), -ENOENT);
	entry_path(f, 1, p, sizeof(p));
	assert_true(exists(p));
	kl_buf_release(&out);
}

static void unlisted_names_ask_the_remote(void **state)
{
	struct fixture *f = *state;
	struct kl_buf out = KL_BUF_INIT(1 << 20);
	char p[512];

	populate(f);
	open_cached(f, true);
	/* no listing in this process: the remote decides */
	get_snapshot(f, 1);
	assert_int_equal(f->cnt->gets[KL_OBJ_SNAPSHOT], 1);
	/* gone from the remote, still in the cache: not found, and the entry goes */
	snprintf(p, sizeof(p), "%s/snapshots/%s", f->repo, f->snap[2]);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(f->be->ops->get(f->be, KL_OBJ_SNAPSHOT, f->snap[2], 0, 0, &out), -ENOENT);
	entry_path(f, 2, p, sizeof(p));
	assert_false(exists(p));
	/* once read, it is known: served locally */
	get_snapshot(f, 1);
	assert_int_equal(f->cnt->gets[KL_OBJ_SNAPSHOT], 2);
	kl_buf_release(&out);
}

static void writes_fill_and_deletes_empty(void **state)
{
	struct fixture *f = *state;
	uint8_t data[300];
	char name[2 * KL_ID_LEN + 1], cfg[2 * KL_ID_LEN + 1], p[512];
	struct kl_buf out = KL_BUF_INIT(1 << 20);

	kl_random(data, sizeof(data));
	name_of(data, sizeof(data), name);
	name_of("config bytes", 13, cfg);
	snprintf(p, sizeof(p), "%s/%s/index/%s", f->base, cfg, name);
	open_cached(f, true);
	assert_int_equal(f->be->ops->put(f->be, KL_OBJ_INDEX, name, data, sizeof(data)), 0);
	assert_true(exists(p));
	close_cached(f);

	open_cached(f, true);
	assert_int_equal(f->be->ops->list(f->be, KL_OBJ_INDEX, count_one, &(unsigned){0}), 0);
	assert_int_equal(f->be->ops->get(f->be, KL_OBJ_INDEX, name, 0, 0, &out), 0);
	assert_memory_equal(out.data, data, sizeof(data));
	assert_int_equal(f->cnt->gets[KL_OBJ_INDEX], 0);
	assert_int_equal(f->be->ops->del(f->be, KL_OBJ_INDEX, name), 0);
	assert_false(exists(p));
	kl_buf_release(&out);
}

static void nothing_cached_before_the_config(void **state)
{
	struct fixture *f = *state;

	open_cached(f, false);
	assert_int_equal(list_snapshots(f), N_SNAP);
	for (int i = 0; i < N_SNAP; i++)
		get_snapshot(f, i);
	assert_int_equal(f->cnt->gets[KL_OBJ_SNAPSHOT], N_SNAP);
	assert_false(exists(f->base));
}

static void other_reads_pass_through(void **state)
{
	struct fixture *f = *state;
	uint8_t bad[64] = {1, 2, 3};
	char name[2 * KL_ID_LEN + 1], p[512];
	struct kl_buf out = KL_BUF_INIT(1 << 20);
	struct kl_backend *local = NULL;

	populate(f);
	/* an object whose bytes do not match its name is not cached */
	name_of("something else", 14, name);
	assert_int_equal(kl_backend_local_open(f->repo, &local), 0);
	assert_int_equal(local->ops->put(local, KL_OBJ_SNAPSHOT, name, bad, sizeof(bad)), 0);
	kl_backend_free(local);
	open_cached(f, true);
	list_snapshots(f);
	for (int i = 0; i < 2; i++) {
		kl_buf_clear(&out);
		assert_int_equal(f->be->ops->get(f->be, KL_OBJ_SNAPSHOT, name, 0, 0, &out), 0);
		assert_memory_equal(out.data, bad, sizeof(bad));
	}
	assert_int_equal(f->cnt->gets[KL_OBJ_SNAPSHOT], 2);
	/* ranged reads are the remote's */
	kl_buf_clear(&out);
	assert_int_equal(f->be->ops->get(f->be, KL_OBJ_SNAPSHOT, f->snap[0], 10, 5, &out), 0);
	assert_memory_equal(out.data, f->snap_data[0] + 10, 5);
	assert_int_equal(f->cnt->gets[KL_OBJ_SNAPSHOT], 3);
	entry_path(f, 0, p, sizeof(p));
	assert_true(exists(p));
	/* the output buffer's cap holds for entries too */
	{
		struct kl_buf small = KL_BUF_INIT(50);

		assert_true(f->be->ops->get(f->be, KL_OBJ_SNAPSHOT, f->snap[0], 0, 0, &small) < 0);
		assert_int_equal(small.len, 0);
		kl_buf_release(&small);
	}
	kl_buf_release(&out);
}

/* Enough names to grow the set of known names several times, and to drop most. */
static void many_names(void **state)
{
	struct fixture *f = *state;
	enum { N = 300 };
	char(*names)[2 * KL_ID_LEN + 1] = calloc(N, sizeof(*names));
	struct kl_buf out = KL_BUF_INIT(1 << 20);
	char p[512];
	unsigned n;

	assert_non_null(names);
	open_cached(f, true);
	for (int i = 0; i < N; i++) {
		uint32_t v = (uint32_t)i;

		name_of(&v, sizeof(v), names[i]);
		assert_int_equal(f->be->ops->put(f->be, KL_OBJ_INDEX, names[i], &v, sizeof(v)), 0);
	}
	close_cached(f);
	/* another client removes all but every tenth */
	for (int i = 0; i < N; i++) {
		if (i % 10 == 0)
			continue;
		snprintf(p, sizeof(p), "%s/index/%s", f->repo, names[i]);
		assert_int_equal(unlink(p), 0);
	}
	open_cached(f, true);
	for (int round = 0; round < 3; round++) {
		n = 0;
		assert_int_equal(f->be->ops->list(f->be, KL_OBJ_INDEX, count_one, &n), 0);
		assert_int_equal(n, N / 10);
		for (int i = 0; i < N; i++) {
			kl_buf_clear(&out);
			assert_int_equal(f->be->ops->get(f->be, KL_OBJ_INDEX, names[i], 0, 0, &out),
					 i % 10 ? -ENOENT : 0);
		}
	}
	/* the listed ones came from the cache; each gone one was asked for every time */
	assert_int_equal(f->cnt->gets[KL_OBJ_INDEX], 3 * (N - N / 10));
	kl_buf_release(&out);
	free(names);
}

static void base_from_environment(void **state)
{
	char *b = NULL, cwd[512], want[600];

	(void)state;
	unsetenv("KEEL_NO_CACHE");
	unsetenv("KEEL_CACHE_DIR");
	setenv("XDG_CACHE_HOME", "/x/cache", 1);
	setenv("HOME", "/home/u", 1);
	assert_int_equal(kl_backend_cache_base(&b), 0);
	assert_string_equal(b, "/x/cache/keel");
	kl_free(b);
	setenv("XDG_CACHE_HOME", "relative", 1);
	assert_int_equal(kl_backend_cache_base(&b), 0);
	assert_string_equal(b, "/home/u/.cache/keel");
	kl_free(b);
	setenv("KEEL_CACHE_DIR", "/c", 1);
	assert_int_equal(kl_backend_cache_base(&b), 0);
	assert_string_equal(b, "/c");
	kl_free(b);
	setenv("KEEL_CACHE_DIR", "rel/dir", 1);
	assert_int_equal(kl_backend_cache_base(&b), 0);
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	snprintf(want, sizeof(want), "%s/rel/dir", cwd);
	assert_string_equal(b, want);
	kl_free(b);
	setenv("KEEL_NO_CACHE", "0", 1);
	assert_int_equal(kl_backend_cache_base(&b), 0);
	assert_non_null(b);
	kl_free(b);
	setenv("KEEL_NO_CACHE", "1", 1);
	assert_int_equal(kl_backend_cache_base(&b), 0);
	assert_null(b);
	unsetenv("KEEL_NO_CACHE");
	unsetenv("KEEL_CACHE_DIR");
	unsetenv("XDG_CACHE_HOME");
	unsetenv("HOME");
	assert_int_equal(kl_backend_cache_base(&b), 0);
	assert_null(b);
	/* local repositories are never wrapped */
	{
		struct kl_backend *be = NULL;

		setenv("KEEL_CACHE_DIR", "/c", 1);
		assert_int_equal(kl_backend_open("/nonexistent/keel-test-repo", NULL, &be), 0);
		assert_string_equal(be->ops->scheme, "local");
		kl_backend_free(be);
		unsetenv("KEEL_CACHE_DIR");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(entries_spare_downloads, setup, teardown),
		cmocka_unit_test_setup_teardown(damaged_entry_is_refetched, setup, teardown),
		cmocka_unit_test_setup_teardown(deleted_cache_is_harmless, setup, teardown),
		cmocka_unit_test_setup_teardown(gone_objects_leave_the_cache, setup, teardown),
		cmocka_unit_test_setup_teardown(unlisted_names_ask_the_remote, setup, teardown),
		cmocka_unit_test_setup_teardown(writes_fill_and_deletes_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(nothing_cached_before_the_config, setup, teardown),
		cmocka_unit_test_setup_teardown(other_reads_pass_through, setup, teardown),
		cmocka_unit_test_setup_teardown(many_names, setup, teardown),
		cmocka_unit_test(base_from_environment),
	};

	kl_crypto_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
