/*
 * kl_check against small repositories built by hand, then damaged on disk
 * the way disks and people damage them: a flipped bit in a blob, in a
 * pack header, in a tree, a snapshot or an index file; a deleted or
 * truncated pack; a pack left unindexed by an interrupted backup.
 *
 * The repository every test starts from:
 *   pack A: d0 d1          (data: /home/docs/report.odt)
 *   pack B: d2 d3          (data: /home/docs/notes.txt, /etc/hosts)
 *   pack T: the five trees
 *   snapshot s1 (older): /home/docs/{notes.txt,report.odt}
 *   snapshot s2 (newer): /etc/hosts and the same /home as s1
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keel/fs.h"
#include "keel/maint.h"
#include "keel/ops.h"
#include "fixture.h"
#include "repo/repo-internal.h" /* swaps r->be for a wrapper */

#define BLOB_SIZE (40u << 10)

struct capture {
	struct kl_buf text;
	unsigned warnings, errors;
	unsigned progress_calls;
	bool data_progress_complete;
};

struct fixture {
	char dir[64];
	char repo[96];
	struct kl_pass *pass;
	struct kl_id d[4];
	struct kl_id tdocs, thome, tetc, root1, root2;
	struct kl_id s1, s2;
	struct kl_id pack_a, pack_b, pack_t;
	struct capture cap;
};

/* ---- building --------------------------------------------------------------- */

static void add_node(struct kl_tree *t, const char *name, enum kl_node_type type,
		     const struct kl_id *ids, size_t n)
{
	struct kl_node nd = {0};

	nd.name = (uint8_t *)kl_strdup(name);
	nd.name_len = strlen(name);
	nd.type = type;
	nd.mode = type == KL_NODE_DIR ? 0755 : 0644;
	if (type == KL_NODE_DIR) {
		nd.subtree = ids[0];
		nd.has_subtree = true;
	} else if (n) {
		nd.content = kl_memdup(ids, n * sizeof(*ids));
		nd.n_content = n;
		nd.size = (uint64_t)n * BLOB_SIZE;
	}
	assert_int_equal(kl_tree_add(t, &nd), 0);
}

static void store_tree(struct kl_packer *p, struct kl_tree *t, struct kl_id *ret)
{
	struct kl_buf enc = KL_BUF_INIT(1u << 20);

	kl_tree_sort(t);
	assert_int_equal(kl_tree_encode(t, &enc), 0);
	assert_int_equal(kl_packer_store(p, KL_BLOB_TREE, enc.data, enc.len, ret), 0);
	kl_buf_release(&enc);
	kl_tree_release(t);
}

static void store_random(struct kl_packer *p, struct kl_id *ret)
{
	uint8_t *data = kl_malloc(BLOB_SIZE);

	assert_non_null(data);
	kl_random(data, BLOB_SIZE); /* incompressible: stored as is */
	assert_int_equal(kl_packer_store(p, KL_BLOB_DATA, data, BLOB_SIZE, ret), 0);
	kl_free(data);
}

static void save_snapshot(struct kl_repo *r, const struct kl_id *tree, int64_t t, struct kl_id *ret)
{
	struct kl_snapshot s = {0};

	s.kind = KL_SNAP_FILES;
	s.time_ns = t;
	s.time_end_ns = t + 1;
	s.tree = *tree;
	assert_int_equal(kl_repo_save_snapshot(r, &s, ret), 0);
}

static struct kl_id pack_of(struct kl_repo *r, const struct kl_id *blob)
{
	struct kl_blob_loc loc;

	assert_int_equal(kl_repo_lookup(r, blob, &loc), 1);
	return loc.pack;
}

/* Builds the repository every test starts from (see the top of this file). */
static void build(struct fixture *f)
{
	struct kl_init_opts io;
	struct kl_packer *p = NULL;
	struct kl_repo *r = NULL;
	struct kl_tree t = {0};

	fixture_init_opts(&io);
	io.pack_size = 1u << 20;
	assert_int_equal(fixture_repo_create(f->repo, &io, &f->pass, &r), 0);
	assert_int_equal(kl_packer_new(r, &p), 0);

	store_random(p, &f->d[0]);
	store_random(p, &f->d[1]);
	assert_int_equal(kl_packer_flush(p), 0);
	store_random(p, &f->d[2]);
	store_random(p, &f->d[3]);
	assert_int_equal(kl_packer_flush(p), 0);

	add_node(&t, "report.odt", KL_NODE_FILE, &f->d[0], 2);
	add_node(&t, "notes.txt", KL_NODE_FILE, &f->d[2], 1);
	store_tree(p, &t, &f->tdocs);
	add_node(&t, "docs", KL_NODE_DIR, &f->tdocs, 1);
	store_tree(p, &t, &f->thome);
	add_node(&t, "hosts", KL_NODE_FILE, &f->d[3], 1);
	store_tree(p, &t, &f->tetc);
	add_node(&t, "home", KL_NODE_DIR, &f->thome, 1);
	store_tree(p, &t, &f->root1);
	add_node(&t, "home", KL_NODE_DIR, &f->thome, 1);
	add_node(&t, "etc", KL_NODE_DIR, &f->tetc, 1);
	store_tree(p, &t, &f->root2);
	assert_int_equal(kl_packer_flush(p), 0);
	kl_packer_free(p);
	assert_int_equal(kl_repo_flush_index(r), 0);

	save_snapshot(r, &f->root1, 1000000000, &f->s1);
	save_snapshot(r, &f->root2, 2000000000, &f->s2);
	f->pack_a = pack_of(r, &f->d[0]);
	f->pack_b = pack_of(r, &f->d[2]);
	f->pack_t = pack_of(r, &f->root1);
	assert_false(kl_id_eq(&f->pack_a, &f->pack_b));
	kl_repo_free(r);
}

static bool dir_empty(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	bool empty = true;

	assert_non_null(d);
	while (empty && (de = readdir(d)))
		empty = !strcmp(de->d_name, ".") || !strcmp(de->d_name, "..");
	closedir(d);
	return empty;
}

/*
 * Copies a repository without fsync, leaving out the empty fan-out
 * directories below data/ (the local backend does without them): building
 * a repository per test, or making 256 directories, is slow on some disks.
 */
static void copy_tree(const char *from, const char *to, int depth)
{
	char src[512], dst[512];
	struct dirent *de;
	DIR *d = opendir(from);

	assert_non_null(d);
	assert_int_equal(mkdir(to, 0700), 0);
	while ((de = readdir(d))) {
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(src, sizeof(src), "%s/%s", from, de->d_name);
		snprintf(dst, sizeof(dst), "%s/%s", to, de->d_name);
		assert_int_equal(lstat(src, &st), 0);
		if (S_ISDIR(st.st_mode)) {
			if (!depth || !dir_empty(src))
				copy_tree(src, dst, depth + 1);
		} else {
			struct kl_buf b = KL_BUF_INIT(1u << 30);
			int fd = open(src, O_RDONLY);

			assert_true(fd >= 0);
			assert_int_equal(kl_buf_grow(&b, (size_t)st.st_size), 0);
			assert_int_equal(kl_fs_pread_full(fd, b.data, (size_t)st.st_size, 0), 0);
			close(fd);
			fd = open(dst, O_WRONLY | O_CREAT | O_EXCL, st.st_mode & 0777);
			assert_true(fd >= 0);
			assert_int_equal(kl_fs_write_full(fd, b.data, (size_t)st.st_size), 0);
			close(fd);
			kl_buf_release(&b);
		}
	}
	closedir(d);
}

static struct fixture pristine; /* built once by the group setup */

static int group_setup(void **state)
{
	assert_int_equal(kl_crypto_init(), 0);
	assert_int_equal(fixture_tmpdir("check", pristine.dir, sizeof(pristine.dir)), 0);
	snprintf(pristine.repo, sizeof(pristine.repo), "%s/repo", pristine.dir);
	build(&pristine);
	return 0;
}

static int group_teardown(void **state)
{
	fixture_rm_rf(pristine.dir);
	kl_pass_free(pristine.pass);
	return 0;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	*f = pristine;
	assert_int_equal(fixture_tmpdir("check", f->dir, sizeof(f->dir)), 0);
	snprintf(f->repo, sizeof(f->repo), "%s/repo", f->dir);
	copy_tree(pristine.repo, f->repo, 0);
	kl_buf_init(&f->cap.text, 1u << 20);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	fixture_rm_rf(f->dir);
	kl_buf_release(&f->cap.text);
	free(f);
	return 0;
}

/* ---- running check ------------------------------------------------------------ */

static void on_warn(void *ud, const char *path, int err, const char *what)
{
	struct capture *c = ud;

	kl_buf_addf(&c->text, "%s: %s [%d]\n", path, what, err);
	c->warnings++;
	c->errors += err != 0;
}

static void on_progress(void *ud, const struct kl_progress *p)
{
	struct capture *c = ud;

	c->progress_calls++;
	if (p->bytes_total && p->bytes_done == p->bytes_total && p->files_done == p->files_total)
		c->data_progress_complete = true;
}

static struct kl_repo *open_repo(struct fixture *f, bool load_index)
{
	struct kl_repo *r = NULL;

	assert_int_equal(kl_repo_open(f->repo, &r), 0);
	assert_int_equal(kl_repo_unlock(r, f->pass), 0);
	if (load_index)
		assert_int_equal(kl_repo_load_index(r), 0);
	return r;
}

static int run_opts(struct fixture *f, bool load_index, const struct kl_check_opts *o,
		    struct kl_check_result *res)
{
	struct kl_check_opts oo = *o;
	struct kl_repo *r = open_repo(f, load_index);
	int rc;

	kl_buf_clear(&f->cap.text);
	f->cap.warnings = f->cap.errors = f->cap.progress_calls = 0;
	f->cap.data_progress_complete = false;
	oo.report.warn = on_warn;
	oo.report.progress = on_progress;
	oo.report.ud = &f->cap;
	rc = kl_check(r, &oo, res);
	kl_repo_free(r);
	if (getenv("KEEL_TEST_VERBOSE"))
		print_message("check: %d, report:\n%s", rc, (const char *)f->cap.text.data);
	return rc;
}

static int run(struct fixture *f, bool read_data, struct kl_check_result *res)
{
	struct kl_check_opts o = {.read_data = read_data};

	return run_opts(f, true, &o, res);
}

static void expect_text(struct fixture *f, const char *s)
{
	if (!strstr((const char *)f->cap.text.data, s))
		fail_msg("'%s' not in the report:\n%s", s, (const char *)f->cap.text.data);
}

static void expect_no_text(struct fixture *f, const char *s)
{
	if (strstr((const char *)f->cap.text.data, s))
		fail_msg("'%s' unexpectedly in the report:\n%s", s, (const char *)f->cap.text.data);
}

static void expect_snapshot_ref(struct fixture *f, const struct kl_id *snap, const char *path)
{
	char hex[2 * KL_ID_LEN + 1], want[128];

	kl_id_hex(snap, hex);
	snprintf(want, sizeof(want), "snapshot %.8s %s", hex, path);
	expect_text(f, want);
}

static bool damaged_has(const struct kl_check_result *res, const struct kl_id *snap)
{
	char hex[2 * KL_ID_LEN + 1];

	kl_id_hex(snap, hex);
	for (size_t i = 0; i < res->n_damaged; i++)
		if (!strcmp(res->damaged_snapshots[i], hex))
			return true;
	return false;
}

/* ---- damaging --------------------------------------------------------------------- */

static void pack_path(struct fixture *f, const struct kl_id *id, char out[static 256])
{
	char hex[2 * KL_ID_LEN + 1];

	kl_id_hex(id, hex);
	snprintf(out, 256, "%s/data/%.2s/%s", f->repo, hex, hex);
}

static uint64_t file_size(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_size;
}

static void flip_byte(const char *path, uint64_t off)
{
	int fd = open(path, O_RDWR);
	uint8_t b;

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
	b ^= 0x20;
	assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
	close(fd);
}

/* Flips a byte inside blob id's sealed bytes in its pack. */
static void damage_blob(struct fixture *f, const struct kl_id *id)
{
	struct kl_repo *r = open_repo(f, true);
	struct kl_blob_loc loc;
	char path[256];

	assert_int_equal(kl_repo_lookup(r, id, &loc), 1);
	pack_path(f, &loc.pack, path);
	flip_byte(path, loc.e.offset + loc.e.length / 2);
	kl_repo_free(r);
}

/* The single file in repo/<sub>/. */
static void only_file(struct fixture *f, const char *sub, char out[static 256],
		      char name[static 80])
{
	char dir[160];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(dir, sizeof(dir), "%s/%s", f->repo, sub);
	d = opendir(dir);
	assert_non_null(d);
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(name, 80, "%.79s", de->d_name);
		n++;
	}
	closedir(d);
	assert_int_equal(n, 1);
	snprintf(out, 256, "%s/%s", dir, name);
}

/* ---- a backend that counts, and lets a pack vanish ------------------------------ */

/*
 * Wraps the repository's real local backend: counts stats, and deletes
 * one pack file just before the first read of it, as a prune finishing
 * its deletions while check runs would.
 */
struct watch {
	struct kl_backend b;
	struct kl_backend *inner;
	unsigned stats, data_gets;
	char vanish[2 * KL_ID_LEN + 1];
	char vanish_path[256];
	/* at the first index read: move replace_from to replace_to, delete replace_del */
	char replace_from[256], replace_to[256], replace_del[256];
	/* left out of listings of data/, as a pack written after the listing is */
	char hide[2 * KL_ID_LEN + 1];
	/* listed first among the index files */
	char index_first[2 * KL_ID_LEN + 1];
	/* reads of the pack vanish lets through before it vanishes */
	unsigned vanish_after;
	bool read_data;		     /* run_watched: check --read-data */
	char eio[2 * KL_ID_LEN + 1]; /* reads of this object fail with EIO */
	/* what vanished: not found from then on, as on S3 (the local backend keeps packs open) */
	char gone[2 * KL_ID_LEN + 1];
	kl_list_cb cb;
	void *ud;
};

static int w_list_one(const char *name, uint64_t size, void *ud)
{
	struct watch *w = ud;

	return strcmp(name, w->hide) ? w->cb(name, size, w->ud) : 0;
}

static int w_list_index(const char *name, uint64_t size, void *ud)
{
	struct watch *w = ud;

	return strcmp(name, w->index_first) ? w->cb(name, size, w->ud) : 0;
}

static int w_list(struct kl_backend *b, enum kl_obj_type t, kl_list_cb cb, void *ud)
{

	struct watch *w = (struct watch *)b;

	if (t == KL_OBJ_INDEX && w->index_first[0]) {
		int rc = cb(w->index_first, 0, ud);

		w->cb = cb;
		w->ud = ud;
		return rc < 0 ? rc : w->inner->ops->list(w->inner, t, w_list_index, w);
	}
	if (t != KL_OBJ_DATA || !w->hide[0])
		return w->inner->ops->list(w->inner, t, cb, ud);
	w->cb = cb;
	w->ud = ud;
	return w->inner->ops->list(w->inner, t, w_list_one, w);
}

static int w_get(struct kl_backend *b, enum kl_obj_type t, const char *name, uint64_t off,
		 uint64_t len, struct kl_buf *out)
{
	struct watch *w = (struct watch *)b;

	if (t == KL_OBJ_INDEX && w->replace_from[0]) {
		assert_int_equal(rename(w->replace_from, w->replace_to), 0);
		assert_int_equal(unlink(w->replace_del), 0);
		w->replace_from[0] = 0;
	}
	if (w->eio[0] && !strcmp(name, w->eio))
		return -EIO;
	if (t == KL_OBJ_DATA) {
		w->data_gets++;
		if (w->vanish[0] && !strcmp(name, w->vanish) && w->vanish_after) {
			w->vanish_after--;
		} else if (w->vanish[0] && !strcmp(name, w->vanish)) {
			assert_int_equal(unlink(w->vanish_path), 0);
			memcpy(w->gone, w->vanish, sizeof(w->gone));
			w->vanish[0] = 0;
		}
		if (w->gone[0] && !strcmp(name, w->gone))
			return -ENOENT;
	}
	return w->inner->ops->get(w->inner, t, name, off, len, out);
}

static int w_put(struct kl_backend *b, enum kl_obj_type t, const char *name, const void *data,
		 size_t len)
{
	struct watch *w = (struct watch *)b;

	return w->inner->ops->put(w->inner, t, name, data, len);
}

static int w_del(struct kl_backend *b, enum kl_obj_type t, const char *name)
{
	struct watch *w = (struct watch *)b;

	return w->inner->ops->del(w->inner, t, name);
}

static int w_stat(struct kl_backend *b, enum kl_obj_type t, const char *name, uint64_t *size)
{
	struct watch *w = (struct watch *)b;

	w->stats++;
	return w->inner->ops->stat(w->inner, t, name, size);
}

static int w_create(struct kl_backend *b)
{
	return -EEXIST;
}

static void w_free(struct kl_backend *b)
{
	/* the wrapped backend belongs to the test */
}

static const struct kl_backend_ops watch_ops = {
	.scheme = "watch",
	.list = w_list,
	.get = w_get,
	.put = w_put,
	.del = w_del,
	.stat = w_stat,
	.create = w_create,
	.free = w_free,
};

/* kl_check on a repository whose backend w wraps */
static int run_watched(struct fixture *f, struct watch *w, struct kl_check_result *res)
{
	struct kl_check_opts o = {.report = {.warn = on_warn, .progress = on_progress}};
	struct kl_repo *r = open_repo(f, true);
	int rc;

	w->b.ops = &watch_ops;
	w->b.location = r->be->location;
	w->inner = r->be;
	r->be = &w->b;
	kl_buf_clear(&f->cap.text);
	f->cap.warnings = f->cap.errors = 0;
	o.report.ud = &f->cap;
	o.read_data = w->read_data;
	rc = kl_check(r, &o, res);
	r->be = w->inner;
	kl_repo_free(r);
	if (getenv("KEEL_TEST_VERBOSE"))
		print_message("check: %d, report:\n%s", rc, (const char *)f->cap.text.data);
	return rc;
}

/* Makes w delete pack id (after w->vanish_after reads of it) while check runs. */
static void watch_vanish(struct fixture *f, struct watch *w, const struct kl_id *id)
{
	kl_id_hex(id, w->vanish);
	pack_path(f, id, w->vanish_path);
}

/* ---- tests ---------------------------------------------------------------------------- */

static void check_clean(void **state)
{
	struct fixture *f = *state;
	struct kl_check_result res;
	uint64_t bytes;
	char path[256];

	assert_int_equal(run(f, false, &res), 0);
	assert_int_equal(res.snapshots, 2);
	assert_int_equal(res.trees, 5);
	assert_int_equal(res.blobs, 9);
	assert_int_equal(res.packs, 3);
	assert_int_equal(res.index_files, 1);
	assert_int_equal(res.errors, 0);
	assert_int_equal(res.unindexed_packs, 0);
	assert_int_equal(res.unused_blobs, 0);
	assert_int_equal(res.packs_read, 0);
	assert_int_equal(res.n_damaged, 0);
	assert_int_equal(f->cap.warnings, 0);
	kl_check_result_release(&res);

	assert_int_equal(run(f, true, &res), 0);
	pack_path(f, &f->pack_a, path);
	bytes = file_size(path);
	pack_path(f, &f->pack_b, path);
	bytes += file_size(path);
	pack_path(f, &f->pack_t, path);
	bytes += file_size(path);
	assert_int_equal(res.packs_read, 3);
	assert_int_equal(res.bytes_read, bytes);
	assert_int_equal(res.errors, 0);
	assert_int_equal(f->cap.warnings, 0);
	assert_true(f->cap.progress_calls > 0);
	assert_true(f->cap.data_progress_complete);
	kl_check_result_release(&res);
}

static void check_clean_threads(void **state)
{
	struct fixture *f = *state;
	struct kl_check_result res;

	for (unsigned t = 1; t <= 5; t += 2) {
		struct kl_check_opts o = {.read_data = true, .threads = t};

		assert_int_equal(run_opts(f, true, &o, &res), 0);
		assert_int_equal(res.packs_read, 3);
		kl_check_result_release(&res);
	}
}

/* A flipped bit inside a data blob: the structure is intact, reading finds it. */
static void check_damaged_blob(void **state)
{
	struct fixture *f = *state;
	struct kl_check_result res;
	char hex[2 * KL_ID_LEN + 1], want[160];

	damage_blob(f, &f->d[0]);
	assert_int_equal(run(f, false, &res), 0);
	assert_int_equal(f->cap.warnings, 0);
	kl_check_result_release(&res);

	assert_int_equal(run(f, true, &res), -KL_ECHECK);
	kl_id_hex(&f->d[0], hex);
	snprintf(want, sizeof(want), "blob %s: damaged in pack", hex);
	expect_text(f, want);
	expect_text(f, "(authentication failed)");
	expect_snapshot_ref(f, &f->s1, "/home/docs/report.odt");
	expect_snapshot_ref(f, &f->s2, "/home/docs/report.odt");
	expect_no_text(f, "notes.txt");
	kl_id_hex(&f->pack_a, hex);
	snprintf(want, sizeof(want), "pack %s: content does not match its name (1 of 2", hex);
	expect_text(f, want);
	assert_int_equal(res.errors, 2);
	assert_int_equal(f->cap.errors, 2);
	assert_int_equal(res.n_damaged, 2);
	assert_true(damaged_has(&res, &f->s1));
	assert_true(damaged_has(&res, &f->s2));
	kl_check_result_release(&res);
}

/* Damage that only the newer snapshot holds names only that snapshot. */
static void check_damaged_blob_one_snapshot(void **state)
{
	struct fixture *f = *state;
	struct kl_check_result res;

	damage_blob(f, &f->d[3]);
	assert_int_equal(run(f, true, &res), -KL_ECHECK);
	expect_snapshot_ref(f, &f->s2, "/etc/hosts");
	expect_no_text(f, "report.odt");
	assert_int_equal(res.n_damaged, 1);
	assert_true(damaged_has(&res, &f->s2));
	kl_check_result_release(&res);
}

/* A damaged tree is found without reading data: the walk opens every tree. */
static void check_damaged_tree(void **state)
{
	struct fixture *f = *state;
	struct kl_check_result res;
	char hex[2 * KL_ID_LEN + 1], want[160];

	damage_blob(f, &f->tdocs);
	assert_int_equal(run(f, false, &res), -KL_ECHECK);
	kl_id_hex(&f->tdocs, hex);
	snprintf(want, sizeof(want), "blob %s: tree unreadable (authentication failed)", hex);
	expect_text(f, want);
	expect_snapshot_ref(f, &f->s1, "/home/docs");
	expect_snapshot_ref(f, &f->s2, "/home/docs");
	assert_int_equal(res.n_damaged, 2);
	assert_int_equal(res.trees, 4);
	kl_check_result_release(&res);
}

static void check_missing_pack(void **state)
{
	struct fixture *f = *state;
	struct kl_check_result res;
	char path[256], hex[2 * KL_ID_LEN + 1], want[160];

	pack_path(f, &f->pack_a, path);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(run(f, false, &res), -KL_ECHECK);
	kl_id_hex(&f->pack_a, hex);
	snprintf(want, sizeof(want), "pack %s: missing (named by index", hex);
	expect_text(f, want);
	expect_text(f, "; affects snapshot");
	expect_snapshot_ref(f, &f->s1, "/home/docs/report.odt");
	expect_snapshot_ref(f, &f->s2, "/home/docs/report.odt");
	expect_no_text(f, "notes.txt");
	assert_int_equal(res.errors, 1);
	assert_int_equal(res.n_damaged, 2);
	kl_check_result_release(&res);

	assert_int_equal(run(f, true, &res), -KL_ECHECK);
	assert_int_equal(res.packs_read, 2);
	assert_int_equal(res.errors, 1);
	kl_check_result_release(&res);
}

/*
 * A backup beside check writes a pack after check listed data/, then its
 * index file, which check reads: the pack is there, and checked.
 */
static void check_pack_newer_than_listing(void **state)
{
	struct fixture *f = *state;
	struct kl_check_result res;
	struct watch w = {0};
	char path[256];

	kl_id_hex(&f->pack_a, w.hide);
	assert_int_equal(run_watched(f, &w, &res), 0);
	assert_int_equal(f->cap.errors, 0);
	assert_int_equal(w.stats, 1);
	kl_check_result_release(&res);

	/* and really missing: one question, then the error */
	w.stats = 0;
	pack_path(f, &f->pack_a, path);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(run_watched(f, &w, &res), -KL_ECHECK);
	expect_text(f, "missing (named by index");
	assert_int_equal(w.stats, 1);
	kl_check_result_release(&res);
}

/* Without its trees nothing below a root can be checked: the roots are named. */
static void check_missing_tree_pack(void **state)
{
	struct fixture *f = *state;
	struct kl_check_result res;
	char path[256];

	pack_path(f, &f->pack_t, path);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(run(f, false, &res), -KL_ECHECK);
	expect_snapshot_ref(f, &f->s1, "/");
	expect_snapshot_ref(f, &f->s2, "/");
	assert_int_equal(res.trees, 0);
	assert_int_equal(res.n_damaged, 2);
	/* nothing below the roots can be reached: unused means little when check fails */
	assert_int_equal(res.unused_blobs, 7);
	kl_check_result_release(&res);
}

/* A damaged header: the blobs may be lost until reading shows they are intact. */
static void check_pack_header_tampered(void **state)
{
	struct fixture *f = *state;
	struct kl_check_result res;
	char path[256], hex[2 * KL_ID_LEN + 1], want[192];

	pack_path(f, &f->pack_b, path);
	flip_byte(path, file_size(path) - 10); /* inside the header's tag */
	kl_id_hex(&f->pack_b, hex);
	snprintf(want, sizeof(want), "pack %s: damaged (header authentication failed)", hex);

	assert_int_equal(run(f, false, &res), -KL_ECHECK);
	expect_text(f, want);
	expect_text(f, "; may affect snapshot");
	expect_snapshot_ref(f, &f->s2, "/etc/hosts");
	expect_snapshot_ref(f, &f->s1, "/home/docs/notes.txt");
	assert_int_equal(res.errors, 1);
	kl_check_result_release(&res);

	assert_int_equal(run(f, true, &res), -KL_ECHECK);
	expect_text(f, want);
	expect_text(f, "its blobs are intact");
	expect_no_text(f, "snapshot ");
	assert_int_equal(res.errors, 1);
	assert_int_equal(res.n_damaged, 0);
	kl_check_result_release(&res);
}

static void check_pack_truncated(void **state)
{
	struct fixture *f = *state;
	struct kl_check_result res;
	char path[256];
	struct kl_repo *r = open_repo(f, true);
	struct kl_blob_loc loc;

	/* cut one byte: the length at the end is gone */
	pack_path(f, &f->pack_b, path);
	assert_int_equal(truncate(path, (off_t)file_size(path) - 1), 0);
	assert_int_equal(run(f, false, &res), -KL_ECHECK);
	expect_text(f, "damaged (");
	kl_check_result_release(&res);
	assert_int_equal(run(f, true, &res), -KL_ECHECK);
	expect_text(f, "its blobs are intact");
	kl_check_result_release(&res);

	/* cut into the last blob of pack A: that file is lost */
	assert_int_equal(kl_repo_lookup(r, &f->d[1], &loc), 1);
	kl_repo_free(r);
	pack_path(f, &f->pack_a, path);
	assert_int_equal(truncate(path, (off_t)loc.e.offset + 100), 0);
	assert_int_equal(run(f, true, &res), -KL_ECHECK);
	expect_text(f, "; affects snapshot");
	expect_snapshot_ref(f, &f->s1, "/home/docs/report.odt");
	assert_true(damaged_has(&res, &f->s1));
	assert_true(damaged_has(&res, &f->s2));
	kl_check_result_release(&res);
}

/* An interrupted backup leaves a pack no index names: harmless. */
static void check_unindexed_pack(void **state)
{
	struct fixture *f = *state;
	struct kl_check_result res;
	struct kl_repo *r = open_repo(f, true);
	struct kl_packer *p;
	struct kl_id id;

	assert_int_equal(kl_packer_new(r, &p), 0);
	store_random(p, &id);
	assert_int_equal(kl_packer_flush(p), 0); /* durable, but no index file written */
	kl_packer_free(p);
	kl_repo_free(r);

	assert_int_equal(run(f, false, &res), 0);
	assert_int_equal(res.unindexed_packs, 1);
	assert_int_equal(res.packs, 3);
	assert_int_equal(res.blobs, 9);
	assert_int_equal(f->cap.warnings, 0);
	kl_check_result_release(&res);
	assert_int_equal(run(f, true, &res), 0);
	assert_int_equal(res.packs_read, 3);
	kl_check_result_release(&res);
}

/* A blob in the index that no snapshot uses is counted, not an error. */
static void check_unused_blob(void **state)
{
	struct fixture *f = *state;
	struct kl_check_result res;
	struct kl_repo *r = open_repo(f, true);
	struct kl_packer *p;
	struct kl_id id;

	assert_int_equal(kl_packer_new(r, &p), 0);
	store_random(p, &id);
	assert_int_equal(kl_packer_flush(p), 0);
	kl_packer_free(p);
	assert_int_equal(kl_repo_flush_index(r), 0);
	kl_repo_free(r);

	assert_int_equal(run(f, true, &res), 0);
	assert_int_equal(res.unused_blobs, 1);
	assert_int_equal(res.index_files, 2);
	assert_int_equal(res.packs, 4);
	assert_int_equal(res.packs_read, 4);
	kl_check_result_release(&res);
}

static void check_damaged_snapshot(void **state)
{
	struct fixture *f = *state;
	struct kl_check_result res;
	char path[256], hex[2 * KL_ID_LEN + 1], want[192];

	kl_id_hex(&f->s2, hex);
	snprintf(path, sizeof(path), "%s/snapshots/%s", f->repo, hex);
	flip_byte(path, 20);
	assert_int_equal(run(f, false, &res), -KL_ECHECK);
	snprintf(want, sizeof(want), "snapshot %s: unreadable (content does not match its name)",
		 hex);
	expect_text(f, want);
	assert_int_equal(res.snapshots, 2);
	assert_int_equal(res.n_damaged, 1);
	assert_true(damaged_has(&res, &f->s2));
	/* only s2 used its root and /etc */
	assert_int_equal(res.unused_blobs, 3);
	kl_check_result_release(&res);
}

/*
 * A damaged index file: kl_repo_load_index skips it and indexes its packs
 * from their headers, so the data is intact and readable, but the
 * repository needs a new index. Snapshots are not damaged.
 */
static void check_damaged_index(void **state)
{
	struct fixture *f = *state;
	struct kl_check_opts o = {0};
	struct kl_check_result res;
	struct kl_repo *r;
	char path[256], name[80], want[192];

	only_file(f, "index", path, name);
	flip_byte(path, 30);
	r = open_repo(f, true);
	assert_int_equal(kl_repo_bad_index_files(r), 1);
	kl_repo_free(r);

	for (int load = 0; load < 2; load++) {
		assert_int_equal(run_opts(f, load, &o, &res), -KL_ECHECK);
		snprintf(want, sizeof(want),
			 "index %s: unreadable (content does not match its name)", name);
		expect_text(f, want);
		expect_text(f,
			    "in no index, but snapshots need its blobs (intact: readers find them");
		expect_text(f, "; needed by snapshot");
		expect_snapshot_ref(f, &f->s2, "/home/docs/report.odt");
		expect_snapshot_ref(f, &f->s1, "/");
		assert_int_equal(res.errors, 4); /* the index file, and packs A, B and T */
		assert_int_equal(res.index_files, 1);
		assert_int_equal(res.unindexed_packs, 3);
		assert_int_equal(res.n_damaged, 0);
		/* the trees are read from the unindexed packs, so all was checked */
		assert_int_equal(res.trees, 5);
		kl_check_result_release(&res);
	}
}

/*
 * A lost index file: no reader finds the packs it named, so the snapshots
 * are damaged until a backup indexes the packs again from their headers.
 */
static void check_lost_index(void **state)
{
	struct fixture *f = *state;
	struct kl_check_result res;
	struct kl_repo *r;
	char path[256], name[80];

	only_file(f, "index", path, name);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(run(f, false, &res), -KL_ECHECK);
	expect_text(f, "in no index, but snapshots need its blobs (intact: the next backup indexes "
		       "it again); affects snapshot");
	expect_snapshot_ref(f, &f->s1, "/");
	assert_int_equal(res.errors, 3);
	assert_int_equal(res.unindexed_packs, 3);
	assert_int_equal(res.n_damaged, 2);
	kl_check_result_release(&res);

	r = open_repo(f, true);
	assert_int_equal(kl_repo_adopt_orphans(r), 3);
	kl_repo_free(r);
	assert_int_equal(run(f, true, &res), 0);
	assert_int_equal(res.unindexed_packs, 0);
	assert_int_equal(f->cap.warnings, 0);
	kl_check_result_release(&res);
}

static int rm_files(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return flag == FTW_F ? remove(path) : 0;
}

/* Nothing at all is not an error. */
static void check_empty(void **state)
{
	struct fixture *f = *state;
	struct kl_check_result res;
	static const char *const dirs[] = {"data", "index", "snapshots"};

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		char dir[160];

		snprintf(dir, sizeof(dir), "%s/%s", f->repo, dirs[i]);
		assert_int_equal(nftw(dir, rm_files, 16, FTW_PHYS), 0);
	}
	assert_int_equal(run(f, true, &res), 0);
	assert_int_equal(res.snapshots + res.trees + res.blobs + res.packs + res.index_files, 0);
	assert_int_equal(res.packs_read + res.errors + res.unindexed_packs + res.n_damaged, 0);
	assert_int_equal(f->cap.warnings, 0);
	kl_check_result_release(&res);
}

/* A second index file whose entry for pack B names a blob the pack does not hold. */
static void check_index_disagrees(void **state)
{
	struct fixture *f = *state;
	struct kl_check_result res;
	struct kl_repo *r = open_repo(f, true);
	struct kl_index_file xf = {0};
	struct kl_pack_header h;
	struct kl_buf enc = KL_BUF_INIT(1u << 20);
	char path[256], hex[2 * KL_ID_LEN + 1];

	pack_path(f, &f->pack_b, path);
	kl_id_hex(&f->pack_b, hex);
	assert_int_equal(kl_repo_read_pack_header(r, hex, file_size(path), &h), 0);
	kl_random(h.blobs[0].id.b, KL_ID_LEN);
	assert_int_equal(kl_index_file_add(&xf, &f->pack_b, &h), 0);
	assert_int_equal(kl_index_file_encode(&xf, &enc), 0);
	assert_int_equal(
		kl_repo_put_object(r, KL_OBJ_INDEX, KL_KIND_INDEX, enc.data, enc.len, NULL), 0);
	kl_buf_release(&enc);
	kl_index_file_release(&xf);
	kl_repo_free(r);

	assert_int_equal(run(f, false, &res), -KL_ECHECK);
	expect_text(f, "disagrees with the pack header (1 entry differs)");
	assert_int_equal(res.errors, 1);
	assert_int_equal(res.n_damaged, 0);
	assert_int_equal(res.unused_blobs, 1);
	kl_check_result_release(&res);

	assert_int_equal(run(f, true, &res), -KL_ECHECK);
	assert_int_equal(res.errors, 1);
	assert_int_equal(res.n_damaged, 0);
	kl_check_result_release(&res);
}

/* A snapshot whose file needs a blob that is nowhere. */
static void check_missing_blob(void **state)
{
	struct fixture *f = *state;
	struct kl_check_result res;
	struct kl_repo *r = open_repo(f, true);
	struct kl_tree t = {0};
	struct kl_packer *p;
	struct kl_id ghost, root, s3;
	char hex[2 * KL_ID_LEN + 1], want[128];

	kl_random(ghost.b, KL_ID_LEN);
	assert_int_equal(kl_packer_new(r, &p), 0);
	add_node(&t, "ghost", KL_NODE_FILE, &ghost, 1);
	add_node(&t, "home", KL_NODE_DIR, &f->thome, 1);
	store_tree(p, &t, &root);
	assert_int_equal(kl_packer_flush(p), 0);
	kl_packer_free(p);
	assert_int_equal(kl_repo_flush_index(r), 0);
	save_snapshot(r, &root, 3000000000, &s3);
	kl_repo_free(r);

	assert_int_equal(run(f, false, &res), -KL_ECHECK);
	kl_id_hex(&ghost, hex);
	snprintf(want, sizeof(want), "blob %s: missing: in no index and no pack", hex);
	expect_text(f, want);
	expect_snapshot_ref(f, &s3, "/ghost");
	assert_int_equal(res.n_damaged, 1);
	assert_true(damaged_has(&res, &s3));
	assert_int_equal(res.trees, 6);
	kl_check_result_release(&res);
}

/*
 * A tree of a newer format version (a later keel wrote it) is intact: check
 * says it needs a newer keel instead of calling it undecodable.
 */
static void check_newer_tree(void **state)
{
	static const uint8_t v3[] = {0x08, 0x03}; /* Tree.version = 3, nothing else */
	struct fixture *f = *state;
	struct kl_check_result res;
	struct kl_repo *r = open_repo(f, true);
	struct kl_tree t = {0};
	struct kl_packer *p;
	struct kl_id newer, root, s3;
	char hex[2 * KL_ID_LEN + 1], want[200];

	assert_int_equal(kl_packer_new(r, &p), 0);
	assert_int_equal(kl_packer_store(p, KL_BLOB_TREE, v3, sizeof(v3), &newer), 0);
	add_node(&t, "newer", KL_NODE_DIR, &newer, 1);
	add_node(&t, "home", KL_NODE_DIR, &f->thome, 1);
	store_tree(p, &t, &root);
	assert_int_equal(kl_packer_flush(p), 0);
	kl_packer_free(p);
	assert_int_equal(kl_repo_flush_index(r), 0);
	save_snapshot(r, &root, 3000000000, &s3);
	kl_repo_free(r);

	assert_int_equal(run(f, false, &res), -KL_ECHECK);
	kl_id_hex(&newer, hex);
	snprintf(want, sizeof(want),
		 "blob %s: tree unreadable (its format is newer than this keel: check it with a "
		 "newer keel)",
		 hex);
	expect_text(f, want);
	snprintf(want, sizeof(want), "/newer [%d]", -KL_EVERSION);
	expect_text(f, want);
	expect_no_text(f, "does not decode");
	expect_snapshot_ref(f, &s3, "/newer");
	kl_check_result_release(&res);
}

/*
 * What prune leaves while it deletes (or while Object Lock keeps packs): a
 * deletion record naming an unused pack U and a pack already gone, and the
 * index file that listed U, superseded by its successor. Check reads U's
 * header but asks for no pack one by one whether it is there; U deleted
 * after data/ was listed is not an error; the blobs that snapshots use stay
 * an error when missing, whatever a record says.
 */
static void check_condemned_packs(void **state)
{
	struct fixture *f = *state;
	struct kl_repo *r = open_repo(f, true);
	struct kl_check_result res;
	struct kl_index_file fu = {0}, rec = {0}, succ = {0};
	struct kl_pack_header h;
	struct kl_packer *p;
	struct kl_blob_loc loc;
	struct kl_id u, pack_u, gone, fu_id;
	char path[256], hex[2 * KL_ID_LEN + 1];

	assert_int_equal(kl_packer_new(r, &p), 0);
	store_random(p, &u);
	assert_int_equal(kl_packer_flush(p), 0);
	kl_packer_free(p);
	assert_int_equal(kl_repo_wait_writes(r), 0);
	assert_int_equal(kl_repo_lookup(r, &u, &loc), 1);
	pack_u = loc.pack;
	kl_id_hex(&pack_u, hex);
	pack_path(f, &pack_u, path);
	/* the index file that listed U, then superseded */
	assert_int_equal(kl_repo_read_pack_header(r, hex, file_size(path), &h), 0);
	assert_int_equal(kl_index_file_add(&fu, &pack_u, &h), 0);
	assert_int_equal(kl_repo_put_index_file(r, &fu, &fu_id), 0);
	/* the record: U, and a pack an earlier prune deleted already */
	kl_random(gone.b, KL_ID_LEN);
	rec.deleting = true;
	rec.wait_for_known = true;
	assert_int_equal(kl_repo_read_pack_header(r, hex, file_size(path), &h), 0);
	assert_int_equal(kl_index_file_add(&rec, &pack_u, &h), 0);
	assert_int_equal(kl_repo_read_pack_header(r, hex, file_size(path), &h), 0);
	assert_int_equal(kl_index_file_add(&rec, &gone, &h), 0);
	/* and pack A, which the live index file still lists (a record is no excuse for that) */
	kl_id_hex(&f->pack_a, hex);
	pack_path(f, &f->pack_a, path);
	assert_int_equal(kl_repo_read_pack_header(r, hex, file_size(path), &h), 0);
	assert_int_equal(kl_index_file_add(&rec, &f->pack_a, &h), 0);
	assert_int_equal(kl_repo_put_index_file(r, &rec, NULL), 0);
	/* the successor: lists pack B again (any live pack will do), supersedes fu */
	kl_id_hex(&f->pack_b, hex);
	pack_path(f, &f->pack_b, path);
	assert_int_equal(kl_repo_read_pack_header(r, hex, file_size(path), &h), 0);
	assert_int_equal(kl_index_file_add(&succ, &f->pack_b, &h), 0);
	succ.supersedes = kl_memdup(&fu_id, sizeof(fu_id));
	succ.n_supersedes = 1;
	assert_int_equal(kl_repo_put_index_file(r, &succ, NULL), 0);
	kl_index_file_release(&fu);
	kl_index_file_release(&rec);
	kl_index_file_release(&succ);
	kl_repo_free(r);

	/* U still there: checked, with no stat of any pack */
	struct watch w = {0};

	assert_int_equal(run_watched(f, &w, &res), 0);
	assert_int_equal(w.stats, 0);
	assert_true(w.data_gets > 0);
	assert_int_equal(f->cap.errors, 0);
	kl_check_result_release(&res);

	/* U deleted after check listed data/: not an error either */
	memset(&w, 0, sizeof(w));
	watch_vanish(f, &w, &pack_u);
	assert_int_equal(run_watched(f, &w, &res), 0);
	assert_int_equal(w.vanish[0], 0); /* it did vanish */
	assert_int_equal(f->cap.errors, 0);
	expect_no_text(f, "removed while check ran");
	kl_check_result_release(&res);

	/* gone for good: still fine */
	memset(&w, 0, sizeof(w));
	assert_int_equal(run_watched(f, &w, &res), 0);
	assert_int_equal(f->cap.errors, 0);
	kl_check_result_release(&res);

	/*
	 * Pack A, which a live index file names, vanishing while check runs:
	 * the record names it too, so it may go (a prune condemned it before
	 * writing the successor of that file), but snapshots use its blobs:
	 * damage all the same, reported by the blobs they lose. Its absence
	 * likewise.
	 */
	memset(&w, 0, sizeof(w));
	watch_vanish(f, &w, &f->pack_a);
	assert_int_equal(run_watched(f, &w, &res), -KL_ECHECK);
	assert_int_equal(w.vanish[0], 0);
	expect_text(f, "missing: in no index and no pack; affects snapshot");
	assert_true(f->cap.errors > 0);
	kl_check_result_release(&res);
	assert_int_equal(run_watched(f, &w, &res), -KL_ECHECK);
	expect_text(f, "missing: in no index and no pack; affects snapshot");
	assert_int_equal(w.stats, 0);
	kl_check_result_release(&res);
}

/*
 * Prune condemned pack B and wrote its record, then check loaded the index,
 * then prune wrote the successor of the index file that lists B and deleted
 * B: check judges that file live (its view predates the successor), but B
 * is no damage, since nothing uses it. A prune deletes B without waiting for
 * check's lock because that lock is younger than the record.
 */
static void check_condemned_pack_of_live_file(void **state)
{
	struct fixture *f = *state;
	struct kl_repo *r = open_repo(f, true);
	struct kl_check_result res;
	struct kl_index_file rec = {0}, fu = {0};
	struct kl_pack_header h;
	struct kl_packer *p;
	struct kl_blob_loc loc;
	struct kl_id u, pack_u;
	struct watch w = {0};
	char path[256], hex[2 * KL_ID_LEN + 1];

	assert_int_equal(kl_packer_new(r, &p), 0);
	store_random(p, &u);
	assert_int_equal(kl_packer_flush(p), 0);
	kl_packer_free(p);
	assert_int_equal(kl_repo_wait_writes(r), 0);
	assert_int_equal(kl_repo_lookup(r, &u, &loc), 1);
	pack_u = loc.pack;
	kl_id_hex(&pack_u, hex);
	pack_path(f, &pack_u, path);
	/* a second live file naming U, as a backup's index file refreshed into a prune's view */
	assert_int_equal(kl_repo_read_pack_header(r, hex, file_size(path), &h), 0);
	assert_int_equal(kl_index_file_add(&fu, &pack_u, &h), 0);
	assert_int_equal(kl_repo_put_index_file(r, &fu, NULL), 0);
	rec.deleting = true;
	rec.wait_for_known = true;
	assert_int_equal(kl_repo_read_pack_header(r, hex, file_size(path), &h), 0);
	assert_int_equal(kl_index_file_add(&rec, &pack_u, &h), 0);
	assert_int_equal(kl_repo_put_index_file(r, &rec, NULL), 0);
	kl_index_file_release(&fu);
	kl_index_file_release(&rec);
	kl_repo_free(r);

	/* deleted after check listed data/ */
	watch_vanish(f, &w, &pack_u);
	assert_int_equal(run_watched(f, &w, &res), 0);
	assert_int_equal(w.vanish[0], 0);
	assert_int_equal(f->cap.errors, 0);
	kl_check_result_release(&res);
	/* deleted before */
	assert_int_equal(run_watched(f, &w, &res), 0);
	assert_int_equal(f->cap.errors, 0);
	kl_check_result_release(&res);
}

/*
 * Prune copied the trees' pack T into a new pack and condemned T; check
 * locked after the record, so the prune deleted T while check ran (after
 * check had read T's header). Readers use the live copies, so must check:
 * the trees are intact, whichever index file check read first.
 */
static void check_live_copy_wins(void **state)
{
	struct fixture *f = *state;
	struct kl_repo *r = open_repo(f, true);
	struct kl_check_result res;
	struct kl_index_file rec = {0};
	struct kl_pack_header h;
	struct kl_packer *p;
	_cleanup_buf_ struct kl_buf data = KL_BUF_INIT((size_t)1 << 30);
	struct kl_id rec_id;
	struct watch w = {0};
	char path[256], saved[256], hex[2 * KL_ID_LEN + 1];

	kl_id_hex(&f->pack_t, hex);
	pack_path(f, &f->pack_t, path);
	assert_int_equal(kl_repo_read_pack_header(r, hex, file_size(path), &h), 0);
	assert_int_equal(kl_repo_get_raw(r, KL_OBJ_DATA, hex, 0, 0, &data), 0);
	assert_int_equal(kl_packer_new(r, &p), 0);
	for (size_t i = 0; i < h.n; i++)
		assert_int_equal(
			kl_packer_add_sealed(p, &h.blobs[i], data.data + h.blobs[i].offset), 0);
	assert_int_equal(kl_packer_flush(p), 0);
	kl_packer_free(p);
	assert_int_equal(kl_repo_flush_index(r), 0);
	rec.deleting = true;
	rec.wait_for_known = true;
	assert_int_equal(kl_index_file_add(&rec, &f->pack_t, &h), 0);
	assert_int_equal(kl_repo_put_index_file(r, &rec, &rec_id), 0);
	kl_index_file_release(&rec);
	kl_pack_header_release(&h);
	kl_repo_free(r);

	snprintf(saved, sizeof(saved), "%s/pack-t", f->dir);
	assert_int_equal(link(path, saved), 0);
	/* the record first: its copies are met first */
	kl_id_hex(&rec_id, w.index_first);
	watch_vanish(f, &w, &f->pack_t);
	w.vanish_after = 1; /* its header */
	assert_int_equal(run_watched(f, &w, &res), 0);
	assert_int_equal(w.vanish[0], 0); /* it went while check ran */
	assert_int_equal(f->cap.errors, 0);
	kl_check_result_release(&res);

	/* and with --read-data, between the header and the reading of the whole pack */
	assert_int_equal(link(saved, path), 0);
	memset(&w, 0, sizeof(w));
	kl_id_hex(&rec_id, w.index_first);
	watch_vanish(f, &w, &f->pack_t);
	w.vanish_after = 2; /* its header, read for the record and for the file naming it */
	w.read_data = true;
	assert_int_equal(run_watched(f, &w, &res), 0);
	assert_int_equal(w.vanish[0], 0);
	assert_int_equal(f->cap.errors, 0);
	kl_check_result_release(&res);
}

/*
 * A prune replaces the index file while check runs: the successor appears
 * and the file check listed is gone before check reads it. Not damage:
 * check lists again and checks the successor.
 */
static void check_index_replaced(void **state)
{
	struct fixture *f = *state;
	struct kl_repo *r = open_repo(f, true);
	struct kl_check_result res;
	struct kl_index_file xf;
	struct kl_id old_id, new_id;
	struct watch w = {0};
	char path[256], name[80], hex[2 * KL_ID_LEN + 1];

	only_file(f, "index", path, name);
	assert_int_equal(kl_id_parse(name, &old_id), 0);
	assert_int_equal(kl_repo_get_index_file(r, &old_id, &xf), 0);
	xf.supersedes = kl_memdup(&old_id, sizeof(old_id));
	xf.n_supersedes = 1;
	assert_int_equal(kl_repo_put_index_file(r, &xf, &new_id), 0);
	kl_index_file_release(&xf);
	kl_repo_free(r);
	/* the successor waits outside until check reads the index */
	kl_id_hex(&new_id, hex);
	snprintf(w.replace_to, sizeof(w.replace_to), "%s/index/%s", f->repo, hex);
	snprintf(w.replace_from, sizeof(w.replace_from), "%s/successor", f->dir);
	snprintf(w.replace_del, sizeof(w.replace_del), "%s", path);
	assert_int_equal(rename(w.replace_to, w.replace_from), 0);

	assert_int_equal(run_watched(f, &w, &res), 0);
	assert_int_equal(w.replace_from[0], 0); /* it was replaced */
	assert_int_equal(f->cap.errors, 0);
	assert_int_equal(res.index_files, 1);
	assert_int_equal(res.unindexed_packs, 0);
	kl_check_result_release(&res);
}

/*
 * One blob in two packs (two hosts stored the same new chunk at once):
 * pack A holds d0 d1, a second backup's pack N holds d0 again and x. Both
 * index files list what their packs hold; prune's new index lists d0
 * under one of them only, so the other pack's header has an entry its
 * index leaves out. That copy is unused space, not damage: check passes,
 * before and after prune, with and without --read-data.
 */
static void check_duplicate_after_prune(void **state)
{
	struct fixture *f = *state;
	struct kl_repo *r = open_repo(f, true);
	struct kl_check_result res;
	struct kl_prune_opts po = {.max_unused_permille = 1000};
	struct kl_prune_stats ps;
	struct kl_pack_header h;
	struct kl_packer *p;
	struct kl_tree t = {0};
	struct kl_id x, root, s3;
	_cleanup_buf_ struct kl_buf data = KL_BUF_INIT((size_t)1 << 30);
	char path[256], hex[2 * KL_ID_LEN + 1];

	kl_id_hex(&f->pack_a, hex);
	pack_path(f, &f->pack_a, path);
	assert_int_equal(kl_repo_read_pack_header(r, hex, file_size(path), &h), 0);
	assert_int_equal(kl_repo_get_raw(r, KL_OBJ_DATA, hex, 0, 0, &data), 0);
	assert_int_equal(kl_packer_new(r, &p), 0);
	for (size_t i = 0; i < h.n; i++)
		if (kl_id_eq(&h.blobs[i].id, &f->d[0]))
			assert_int_equal(
				kl_packer_add_sealed(p, &h.blobs[i], data.data + h.blobs[i].offset),
				0);
	store_random(p, &x);
	add_node(&t, "x", KL_NODE_FILE, &x, 1);
	store_tree(p, &t, &root);
	assert_int_equal(kl_packer_flush(p), 0);
	kl_packer_free(p);
	assert_int_equal(kl_repo_flush_index(r), 0);
	save_snapshot(r, &root, 3000000000, &s3);
	kl_pack_header_release(&h);
	kl_repo_free(r);

	assert_int_equal(run(f, true, &res), 0);
	assert_int_equal(f->cap.errors, 0);
	kl_check_result_release(&res);

	r = open_repo(f, true);
	assert_int_equal(kl_prune(r, &po, &ps), 0);
	assert_int_equal(ps.index_files_replaced, 2);
	assert_int_equal(ps.packs_deleted, 0);
	kl_repo_free(r);

	assert_int_equal(run(f, false, &res), 0);
	assert_int_equal(f->cap.warnings, 0);
	assert_int_equal(res.n_damaged, 0);
	kl_check_result_release(&res);
	assert_int_equal(run(f, true, &res), 0);
	assert_int_equal(f->cap.warnings, 0);
	kl_check_result_release(&res);
}

/*
 * A pack the storage fails to read (EIO): reported, but no proof of
 * damage. check returns the read error (exit 20), not -KL_ECHECK (exit
 * 13, "the repository really is damaged"), and marks no snapshot damaged;
 * with real damage beside it, -KL_ECHECK wins.
 */
static void check_read_error_is_not_damage(void **state)
{
	struct fixture *f = *state;
	struct kl_check_result res;
	struct watch w = {0};

	kl_id_hex(&f->pack_b, w.eio);
	assert_int_equal(run_watched(f, &w, &res), -EIO);
	expect_text(f, "unreadable (");
	assert_int_equal(res.errors, 1);
	assert_int_equal(res.n_damaged, 0);
	kl_check_result_release(&res);

	w.read_data = true;
	assert_int_equal(run_watched(f, &w, &res), -EIO);
	expect_text(f, "; may affect snapshot");
	assert_int_equal(res.n_damaged, 0);
	kl_check_result_release(&res);

	/* a snapshot that cannot be read is not known to be damaged either */
	kl_id_hex(&f->s1, w.eio);
	assert_int_equal(run_watched(f, &w, &res), -EIO);
	assert_int_equal(res.errors, 1);
	assert_int_equal(res.n_damaged, 0);
	kl_check_result_release(&res);

	kl_id_hex(&f->pack_b, w.eio);
	damage_blob(f, &f->d[0]);
	assert_int_equal(run_watched(f, &w, &res), -KL_ECHECK);
	assert_int_equal(res.errors, 3); /* pack B; pack A's bytes, and its blob */
	assert_true(damaged_has(&res, &f->s1));
	kl_check_result_release(&res);
}

/* Paths are escaped: a name cannot write its own lines into the report. */
static void check_path_escaped(void **state)
{
	struct fixture *f = *state;
	struct kl_check_result res;
	struct kl_repo *r = open_repo(f, true);
	struct kl_tree t = {0};
	struct kl_packer *p;
	struct kl_id ghost, root, s3;

	kl_random(ghost.b, KL_ID_LEN);
	assert_int_equal(kl_packer_new(r, &p), 0);
	add_node(&t, "evil\nkeel: all good\x1b[2J", KL_NODE_FILE, &ghost, 1);
	store_tree(p, &t, &root);
	assert_int_equal(kl_packer_flush(p), 0);
	kl_packer_free(p);
	assert_int_equal(kl_repo_flush_index(r), 0);
	save_snapshot(r, &root, 3000000000, &s3);
	kl_repo_free(r);

	assert_int_equal(run(f, false, &res), -KL_ECHECK);
	expect_text(f, "/evil\\x0akeel: all good\\x1b[2J");
	expect_no_text(f, "\nkeel: all good");
	kl_check_result_release(&res);
}

static void check_subset(void **state)
{
	static const struct {
		unsigned permille;
		uint64_t packs;
	} cases[] = {{0, 3}, {1, 1}, {334, 2}, {500, 2}, {999, 3}, {1000, 3}};
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kl_check_opts o = {.read_data = true, .subset_permille = cases[i].permille};
		struct kl_check_result res;

		assert_int_equal(run_opts(f, true, &o, &res), 0);
		assert_int_equal(res.packs_read, cases[i].packs);
		kl_check_result_release(&res);
	}
}

/*
 * Fails each allocation in turn: check must return -ENOMEM or the right
 * answer, never report damage that is not there, and never crash or
 * leak (run under ASan). There is no way to ask whether the injected
 * failure fired, so this sweeps until a long run of successes.
 */
static void check_alloc_failures(void **state)
{
	struct fixture *f = *state;
	struct kl_check_opts o = {.read_data = true, .threads = 2};
	long n, last_enomem = 0;
	struct kl_repo *r;

	damage_blob(f, &f->d[3]);
	r = open_repo(f, true);
	for (n = 1; n < last_enomem + 200; n++) {
		struct kl_check_result res;
		int rc;

		kl_alloc_fail_after(n);
		rc = kl_check(r, &o, &res);
		kl_alloc_fail_after(0);
		if (rc == -ENOMEM) {
			last_enomem = n;
		} else {
			assert_int_equal(rc, -KL_ECHECK);
			assert_int_equal(res.errors, 2);
			assert_int_equal(res.n_damaged, 1);
			assert_true(damaged_has(&res, &f->s2));
		}
		kl_check_result_release(&res);
	}
	kl_repo_free(r);
	assert_true(last_enomem > 0);
	if (getenv("KEEL_TEST_VERBOSE"))
		print_message("allocation failures: -ENOMEM up to allocation %ld\n", last_enomem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(check_clean, setup, teardown),
		cmocka_unit_test_setup_teardown(check_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(check_clean_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(check_damaged_blob, setup, teardown),
		cmocka_unit_test_setup_teardown(check_damaged_blob_one_snapshot, setup, teardown),
		cmocka_unit_test_setup_teardown(check_damaged_tree, setup, teardown),
		cmocka_unit_test_setup_teardown(check_missing_pack, setup, teardown),
		cmocka_unit_test_setup_teardown(check_missing_tree_pack, setup, teardown),
		cmocka_unit_test_setup_teardown(check_pack_header_tampered, setup, teardown),
		cmocka_unit_test_setup_teardown(check_pack_truncated, setup, teardown),
		cmocka_unit_test_setup_teardown(check_unindexed_pack, setup, teardown),
		cmocka_unit_test_setup_teardown(check_unused_blob, setup, teardown),
		cmocka_unit_test_setup_teardown(check_damaged_snapshot, setup, teardown),
		cmocka_unit_test_setup_teardown(check_damaged_index, setup, teardown),
		cmocka_unit_test_setup_teardown(check_lost_index, setup, teardown),
		cmocka_unit_test_setup_teardown(check_index_disagrees, setup, teardown),
		cmocka_unit_test_setup_teardown(check_missing_blob, setup, teardown),
		cmocka_unit_test_setup_teardown(check_path_escaped, setup, teardown),
		cmocka_unit_test_setup_teardown(check_newer_tree, setup, teardown),
		cmocka_unit_test_setup_teardown(check_condemned_packs, setup, teardown),
		cmocka_unit_test_setup_teardown(check_pack_newer_than_listing, setup, teardown),
		cmocka_unit_test_setup_teardown(check_condemned_pack_of_live_file, setup, teardown),
		cmocka_unit_test_setup_teardown(check_live_copy_wins, setup, teardown),
		cmocka_unit_test_setup_teardown(check_index_replaced, setup, teardown),
		cmocka_unit_test_setup_teardown(check_duplicate_after_prune, setup, teardown),
		cmocka_unit_test_setup_teardown(check_read_error_is_not_damage, setup, teardown),
		cmocka_unit_test_setup_teardown(check_subset, setup, teardown),
		cmocka_unit_test_setup_teardown(check_alloc_failures, setup, teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
