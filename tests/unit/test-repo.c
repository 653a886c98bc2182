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
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "keel/repo.h"
#include "fixture.h"
#include "repo/repo-internal.h" /* swaps r->be for a failing wrapper */

struct fixture {
	char dir[64];
	struct kl_pass *pass;
	struct kl_repo *r;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct kl_init_opts o;

	if (fixture_tmpdir("repo", f->dir, sizeof(f->dir)) < 0)
		return -1;
	size_t n = strlen(f->dir);
	snprintf(f->dir + n, sizeof(f->dir) - n, "/repo");
	fixture_init_opts(&o);
	o.pack_size = 1 << 20;
	o.cdc.min = 4096;
	o.cdc.avg = 16384;
	o.cdc.max = 65536;
	if (fixture_repo_create(f->dir, &o, &f->pass, &f->r) < 0)
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
	fixture_rm_rf(top);
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

	fixture_init_opts(&o);
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
	r = reopen(f, FIXTURE_PASSWORD, &rc);
	assert_int_equal(rc, 0);
	assert_true(kl_id_eq(&kl_repo_config(r)->repo_id, &kl_repo_config(f->r)->repo_id));
	assert_int_equal(kl_repo_config(r)->cdc_avg, 16384);
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

	r = reopen(f, FIXTURE_PASSWORD, &rc);
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
	r = reopen(f, FIXTURE_PASSWORD, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(kl_repo_read_blob(r, &id, &out), -KL_ECORRUPT);
	kl_repo_free(r);
	kl_buf_release(&out);
}

/* the n-th (0-based) file under dir, in sorted order */
static int pick_nth(const char *dir, int n, char *out, size_t len)
{
	char cmd[600];
	FILE *pf;
	int rc = -1;

	snprintf(cmd, sizeof(cmd), "find '%s' -type f | sort | sed -n %dp", dir, n + 1);
	pf = popen(cmd, "r");
	if (pf && fgets(out, (int)len, pf)) {
		out[strcspn(out, "\n")] = 0;
		rc = 0;
	}
	if (pf)
		pclose(pf);
	return rc;
}

/* two backups stored the same blob at once: either copy alone still reads */
static void damaged_copy_falls_back_to_another(void **state)
{
	struct fixture *f = *state;
	struct kl_packer *p = NULL;
	struct kl_buf out = KL_BUF_INIT(1 << 24);
	static uint8_t data[20000];
	char datadir[600], pack[2][600], lost[600];
	struct kl_id id, id2;
	struct kl_repo *r, *other;
	int rc;

	kl_random(data, sizeof(data));
	other = reopen(f, FIXTURE_PASSWORD, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(kl_packer_new(f->r, &p), 0);
	assert_int_equal(kl_packer_store(p, KL_BLOB_DATA, data, sizeof(data), &id), 0);
	assert_int_equal(kl_packer_flush(p), 0);
	kl_packer_free(p);
	assert_int_equal(kl_repo_flush_index(f->r), 0);
	/* the other handle's index was read before: it stores its own copy */
	assert_int_equal(kl_packer_new(other, &p), 0);
	assert_int_equal(kl_packer_store(p, KL_BLOB_DATA, data, sizeof(data), &id2), 0);
	assert_int_equal(kl_packer_flush(p), 0);
	kl_packer_free(p);
	assert_int_equal(kl_repo_flush_index(other), 0);
	kl_repo_free(other);
	assert_true(kl_id_eq(&id, &id2));

	snprintf(datadir, sizeof(datadir), "%s/data", f->dir);
	assert_int_equal(pick_nth(datadir, 0, pack[0], sizeof(pack[0])), 0);
	assert_int_equal(pick_nth(datadir, 1, pack[1], sizeof(pack[1])), 0);
	for (int bad = 0; bad < 2; bad++) {
		flip_byte(pack[bad], 100); /* inside the sealed blob */
		r = reopen(f, FIXTURE_PASSWORD, &rc);
		assert_int_equal(rc, 0);
		assert_int_equal(kl_repo_read_blob(r, &id, &out), 0);
		assert_memory_equal(out.data, data, sizeof(data));
		kl_repo_free(r);
		flip_byte(pack[bad], 100);
	}
	/* a lost pack too */
	snprintf(lost, sizeof(lost), "%s/lost-pack", f->dir);
	assert_int_equal(rename(pack[0], lost), 0);
	r = reopen(f, FIXTURE_PASSWORD, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(kl_repo_read_blob(r, &id, &out), 0);
	kl_repo_free(r);
	assert_int_equal(rename(lost, pack[0]), 0);
	/* both damaged: the blob is lost, and says so */
	flip_byte(pack[0], 100);
	flip_byte(pack[1], 100);
	r = reopen(f, FIXTURE_PASSWORD, &rc);
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
	r = reopen(f, FIXTURE_PASSWORD, &rc);
	/* skipped and counted, and the blob is still found through the pack's own header */
	assert_int_equal(rc, 0);
	assert_int_equal(kl_repo_bad_index_files(r), 1);
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
	struct kl_id id, id2;
	struct kl_repo *r;
	int rc;

	kl_random(data, sizeof(data));
	assert_int_equal(kl_packer_new(f->r, &p), 0);
	assert_int_equal(kl_packer_store(p, KL_BLOB_DATA, data, sizeof(data), &id), 0);
	assert_int_equal(kl_packer_flush(p), 0);
	kl_packer_free(p);
	assert_int_equal(kl_repo_wait_writes(f->r), 0);
	/* "crash" before the index is written: the pack is durable but unindexed */
	r = reopen(f, FIXTURE_PASSWORD, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(kl_repo_lookup(r, &id, NULL), 0);
	assert_int_equal(kl_repo_adopt_orphans(r), 1);
	assert_int_equal(kl_repo_lookup(r, &id, NULL), 1);
	/*
	 * once per open: a stream backs up a record a second and must not list
	 * every pack each time, so an orphan made meanwhile (by another
	 * process: here another handle) waits for the next open
	 */
	data[0] ^= 1;
	assert_int_equal(kl_packer_new(f->r, &p), 0);
	assert_int_equal(kl_packer_store(p, KL_BLOB_DATA, data, sizeof(data), &id2), 0);
	data[0] ^= 1; /* data is id's again, for the read below */
	assert_int_equal(kl_packer_flush(p), 0);
	kl_packer_free(p);
	assert_int_equal(kl_repo_wait_writes(f->r), 0);
	assert_int_equal(kl_repo_adopt_orphans(r), 0);
	assert_int_equal(kl_repo_lookup(r, &id2, NULL), 0);
	kl_repo_free(r);
	r = reopen(f, FIXTURE_PASSWORD, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(kl_repo_adopt_orphans(r), 1);
	assert_int_equal(kl_repo_lookup(r, &id2, NULL), 1);
	kl_repo_free(r);
	r = reopen(f, FIXTURE_PASSWORD, &rc);
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
	assert_true(kl_id_eq(&kl_repo_config(r)->repo_id, &kl_repo_config(f->r)->repo_id));
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

/* ---- loading the index: the reader rules in every order, each file read once ---- */

/*
 * The real local backend, listing index files in a chosen order (perm-th
 * permutation of their sorted names) and counting index file reads.
 */
struct ordered {
	struct kl_backend b;
	struct kl_backend *inner;
	unsigned perm;
	unsigned index_gets;
	/* before the first read of a lock object: called once (a refresh racing the listing) */
	void (*before_lock_get)(struct ordered *o);
	struct kl_repo *other;
	unsigned relocks; /* so many lock reads each find the other's lock just replaced */
	/* at the first index read: move replace_from to replace_to, delete replace_del */
	char replace_from[400], replace_to[400], replace_del[400];
	/* lock objects: stored, then -EIO (a directory fsync that failed) */
	bool lock_put_fails_after;
	unsigned lock_dels_fail; /* so many lock deletions fail with -EIO, deleting nothing */
};

struct names8 {
	char v[8][80];
	size_t n;
};

static int collect_name(const char *name, uint64_t size, void *ud)
{
	struct names8 *l = ud;

	assert_true(l->n < 8);
	snprintf(l->v[l->n++], 80, "%s", name);
	return 0;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(a, b);
}

static int or_list(struct kl_backend *b, enum kl_obj_type t, kl_list_cb cb, void *ud)
{
	struct ordered *o = (struct ordered *)b;
	struct names8 l = {0};
	bool used[8] = {false};
	unsigned code = o->perm;
	int rc;

	if (t != KL_OBJ_INDEX)
		return o->inner->ops->list(o->inner, t, cb, ud);
	rc = o->inner->ops->list(o->inner, t, collect_name, &l);
	if (rc < 0)
		return rc;
	qsort(l.v, l.n, sizeof(l.v[0]), cmp_name);
	/* the factorial number system: digit k picks among the names left */
	for (size_t k = l.n; k > 0; k--) {
		size_t pick = code % k, i;

		code /= (unsigned)k;
		for (i = 0; used[i] || pick; i++)
			if (!used[i])
				pick--;
		used[i] = true;
		rc = cb(l.v[i], 0, ud);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int or_get(struct kl_backend *b, enum kl_obj_type t, const char *name, uint64_t off,
		  uint64_t len, struct kl_buf *out)
{
	struct ordered *o = (struct ordered *)b;

	o->index_gets += t == KL_OBJ_INDEX;
	if (t == KL_OBJ_INDEX && o->replace_from[0]) {
		assert_int_equal(rename(o->replace_from, o->replace_to), 0);
		assert_int_equal(unlink(o->replace_del), 0);
		o->replace_from[0] = 0;
	}
	if (t == KL_OBJ_LOCK && o->relocks) {
		o->relocks--;
		kl_repo_unlock_repo(o->other);
		assert_int_equal(kl_repo_lock(o->other, KL_LOCK_SHARED, "snapshots"), 0);
	}
	if (t == KL_OBJ_LOCK && o->before_lock_get) {
		void (*hook)(struct ordered *) = o->before_lock_get;

		o->before_lock_get = NULL;
		hook(o);
	}
	return o->inner->ops->get(o->inner, t, name, off, len, out);
}

static int or_put(struct kl_backend *b, enum kl_obj_type t, const char *name, const void *data,
		  size_t len)
{
	struct ordered *o = (struct ordered *)b;
	int rc = o->inner->ops->put(o->inner, t, name, data, len);

	return rc >= 0 && t == KL_OBJ_LOCK && o->lock_put_fails_after ? -EIO : rc;
}

static int or_del(struct kl_backend *b, enum kl_obj_type t, const char *name)
{
	struct ordered *o = (struct ordered *)b;

	if (t == KL_OBJ_LOCK && o->lock_dels_fail) {
		o->lock_dels_fail--;
		return -EIO;
	}
	return o->inner->ops->del(o->inner, t, name);
}

static int or_stat(struct kl_backend *b, enum kl_obj_type t, const char *name, uint64_t *size)
{
	struct ordered *o = (struct ordered *)b;

	return o->inner->ops->stat(o->inner, t, name, size);
}

static int or_create(struct kl_backend *b)
{
	return -EEXIST;
}

static void or_free(struct kl_backend *b)
{
	kl_backend_free(((struct ordered *)b)->inner);
}

static const struct kl_backend_ops ordered_ops = {
	.scheme = "ordered",
	.list = or_list,
	.get = or_get,
	.put = or_put,
	.del = or_del,
	.stat = or_stat,
	.create = or_create,
	.free = or_free,
};

/* Opens and unlocks the repository through o (not loading the index). */
static struct kl_repo *open_ordered(struct fixture *f, struct ordered *o, unsigned perm)
{
	struct kl_repo *r = NULL;

	memset(o, 0, sizeof(*o));
	o->perm = perm;
	assert_int_equal(kl_repo_open(f->dir, &r), 0);
	o->b.ops = &ordered_ops;
	o->b.location = r->be->location;
	o->inner = r->be;
	r->be = &o->b;
	assert_int_equal(kl_repo_unlock(r, f->pass), 0);
	return r;
}

/*
 * Writes a pack of the given blobs through a handle whose index is empty,
 * so that a blob another pack holds is stored again; returns the pack's
 * header with *pack.
 */
static void make_pack(struct fixture *f, const char *const *blobs, size_t n, struct kl_id *ids,
		      struct kl_id *pack, struct kl_pack_header *h)
{
	struct kl_repo *r = NULL;
	struct kl_packer *p = NULL;
	struct kl_blob_loc loc;
	char hex[2 * KL_ID_LEN + 1];
	uint64_t size;

	assert_int_equal(kl_repo_open(f->dir, &r), 0);
	assert_int_equal(kl_repo_unlock(r, f->pass), 0);
	assert_int_equal(kl_packer_new(r, &p), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(
			kl_packer_store(p, KL_BLOB_DATA, blobs[i], strlen(blobs[i]), &ids[i]), 0);
	assert_int_equal(kl_packer_flush(p), 0);
	kl_packer_free(p);
	assert_int_equal(kl_repo_wait_writes(r), 0);
	assert_int_equal(kl_repo_lookup(r, &ids[0], &loc), 1);
	*pack = loc.pack;
	kl_id_hex(pack, hex);
	assert_int_equal(kl_repo_stat(r, KL_OBJ_DATA, hex, &size), 0);
	assert_int_equal(kl_repo_read_pack_header(r, hex, size, h), 0);
	kl_repo_free(r);
}

static void put_index(struct fixture *f, const struct kl_id *pack, const struct kl_pack_header *h,
		      bool deleting, const struct kl_id *supersedes, struct kl_id *ret)
{
	struct kl_index_file xf = {.deleting = deleting, .wait_for_known = deleting};
	struct kl_pack_header copy = {0};

	for (size_t i = 0; i < h->n; i++)
		assert_int_equal(kl_pack_header_add(&copy, &h->blobs[i]), 0);
	assert_int_equal(kl_index_file_add(&xf, pack, &copy), 0);
	if (supersedes) {
		xf.supersedes = kl_memdup(supersedes, sizeof(*supersedes));
		xf.n_supersedes = 1;
	}
	assert_int_equal(kl_repo_put_index_file(f->r, &xf, ret), 0);
	kl_index_file_release(&xf);
}

/*
 * b is in both packs, c only in the old one, d only in the new one. The
 * old pack is deleting (the caller made it so): b must be found in the new
 * pack as a live copy, c readable but not a reason to skip storing it.
 */
static void expect_rules(struct kl_repo *r, const struct kl_id *ids_old,
			 const struct kl_id *ids_new, const struct kl_id *p_new)
{
	struct kl_blob_loc loc;

	assert_int_equal(kl_repo_lookup(r, &ids_old[0], &loc), 1);
	assert_memory_equal(loc.pack.b, p_new->b, KL_ID_LEN);
	assert_int_equal(kl_repo_claim(r, &ids_old[0]), 1);
	assert_int_equal(kl_repo_lookup(r, &ids_old[1], NULL), 1);
	assert_int_equal(kl_repo_claim(r, &ids_old[1]), 0);
	assert_int_equal(kl_repo_claim(r, &ids_new[1]), 1);
	assert_int_equal(kl_repo_blob_count(r), 2); /* b and d; c is deleting */
}

static void index_rules_read_each_file_once(void **state)
{
	static const char *const old_blobs[] = {"bee", "cee"}, *const new_blobs[] = {"bee", "dee"};
	struct fixture *f = *state;
	struct kl_pack_header h_old, h_new;
	struct kl_id ids_old[2], ids_new[2], p_old, p_new, f_old, f_new, rec;
	struct ordered o;
	struct kl_repo *r;
	char path[256], hex[2 * KL_ID_LEN + 1];

	make_pack(f, old_blobs, 2, ids_old, &p_old, &h_old);
	make_pack(f, new_blobs, 2, ids_new, &p_new, &h_new);
	assert_memory_equal(ids_old[0].b, ids_new[0].b, KL_ID_LEN);
	assert_false(kl_id_eq(&p_old, &p_new));

	/* a successor that supersedes the old file, which storage kept */
	put_index(f, &p_old, &h_old, false, NULL, &f_old);
	put_index(f, &p_new, &h_new, false, &f_old, &f_new);
	for (unsigned perm = 0; perm < 2; perm++) {
		r = open_ordered(f, &o, perm);
		assert_int_equal(kl_repo_load_index(r), 0);
		assert_int_equal(o.index_gets, 2);
		expect_rules(r, ids_old, ids_new, &p_new);
		kl_repo_free(r);
	}

	/* no supersedes, but a deletion record for the old pack: any of 6 orders */
	kl_id_hex(&f_new, hex);
	snprintf(path, sizeof(path), "%s/index/%s", f->dir, hex);
	assert_int_equal(unlink(path), 0);
	put_index(f, &p_new, &h_new, false, NULL, &f_new);
	put_index(f, &p_old, &h_old, true, NULL, &rec);
	for (unsigned perm = 0; perm < 6; perm++) {
		r = open_ordered(f, &o, perm);
		assert_int_equal(kl_repo_load_index(r), 0);
		assert_int_equal(o.index_gets, 3);
		expect_rules(r, ids_old, ids_new, &p_new);
		kl_repo_free(r);
	}

	/* the record written after the index was loaded: a refresh reads it alone */
	kl_id_hex(&rec, hex);
	snprintf(path, sizeof(path), "%s/index/%s", f->dir, hex);
	assert_int_equal(unlink(path), 0);
	for (unsigned perm = 0; perm < 2; perm++) {
		r = open_ordered(f, &o, perm);
		assert_int_equal(kl_repo_load_index(r), 0);
		assert_int_equal(o.index_gets, 2);
		assert_int_equal(kl_repo_blob_count(r), 3);
		put_index(f, &p_old, &h_old, true, NULL, &rec);
		o.index_gets = 0;
		assert_int_equal(kl_repo_refresh_index(r), 0);
		assert_int_equal(o.index_gets, 1);
		expect_rules(r, ids_old, ids_new, &p_new);
		kl_repo_free(r);
		kl_id_hex(&rec, hex);
		snprintf(path, sizeof(path), "%s/index/%s", f->dir, hex);
		assert_int_equal(unlink(path), 0);
	}
	kl_pack_header_release(&h_old);
	kl_pack_header_release(&h_new);
}

/*
 * The other handle's lock is replaced by a new object between our listing
 * of locks/ and our reading of the old one, as its heartbeat does every few
 * minutes: a prune that missed it would delete what that process uses.
 */
static void relock_other(struct ordered *o)
{
	kl_repo_unlock_repo(o->other);
	assert_int_equal(kl_repo_lock(o->other, KL_LOCK_SHARED, "backup"), 0);
}

struct seen_locks {
	struct kl_id sessions[4];
	size_t n;
};

static int collect_lock(const char *name, const struct kl_lock_info *info, bool alive, void *ud)
{
	struct seen_locks *s = ud;

	assert_true(alive);
	assert_true(s->n < 4);
	s->sessions[s->n++] = info->session;
	return 0;
}

static void lock_replaced_while_listed(void **state)
{
	struct fixture *f = *state;
	struct kl_repo *other = NULL, *r;
	struct seen_locks seen = {0};
	struct kl_id now;
	struct ordered o;
	bool found = false;

	assert_int_equal(kl_repo_open(f->dir, &other), 0);
	assert_int_equal(kl_repo_unlock(other, f->pass), 0);
	assert_int_equal(kl_repo_lock(other, KL_LOCK_SHARED, "backup"), 0);
	r = open_ordered(f, &o, 0);
	o.other = other;
	o.before_lock_get = relock_other;
	assert_int_equal(kl_repo_list_locks(r, collect_lock, &seen), 0);
	assert_null(o.before_lock_get); /* the race happened */
	kl_lock_session(other, &now);
	for (size_t i = 0; i < seen.n; i++)
		found |= kl_id_eq(&seen.sessions[i], &now);
	assert_true(found);
	kl_repo_free(r);
	kl_repo_free(other);
}

/*
 * Short-lived lockers (many hosts' cron jobs backing off from one another)
 * make a lock vanish between the listing and its reading pass after pass:
 * that is no reason to fail while the passes still find the live locks.
 */
static void lock_listing_outlasts_churn(void **state)
{
	struct fixture *f = *state;
	struct kl_repo *other = NULL, *r;
	struct seen_locks seen = {0};
	struct kl_id now;
	struct ordered o;

	assert_int_equal(kl_repo_open(f->dir, &other), 0);
	assert_int_equal(kl_repo_unlock(other, f->pass), 0);
	assert_int_equal(kl_repo_lock(other, KL_LOCK_SHARED, "backup"), 0);
	r = open_ordered(f, &o, 0);
	o.other = other;
	o.relocks = 8;
	assert_int_equal(kl_repo_list_locks(r, collect_lock, &seen), 0);
	assert_int_equal(o.relocks, 0);
	kl_lock_session(other, &now);
	assert_int_equal(seen.n, 1);
	assert_true(kl_id_eq(&seen.sessions[0], &now));
	kl_repo_free(r);
	kl_repo_free(other);
}

/*
 * A prune replaces an index file between a refresh's listing and its
 * reading: the successor, written after the listing, must be read too.
 */
static void refresh_finds_successor_written_after_listing(void **state)
{
	static const char *const blobs[] = {"eff", "gee"};
	struct fixture *f = *state;
	struct kl_pack_header h;
	struct kl_id ids[2], pack, fid, succ;
	struct kl_index_file xf;
	struct ordered o;
	struct kl_repo *r;
	char dir[256], hex[2 * KL_ID_LEN + 1];

	r = open_ordered(f, &o, 0);
	assert_int_equal(kl_repo_load_index(r), 0);
	/* a new file, F, that the refresh will list */
	make_pack(f, blobs, 2, ids, &pack, &h);
	put_index(f, &pack, &h, false, NULL, &fid);
	kl_pack_header_release(&h);
	snprintf(dir, sizeof(dir), "%s/index", f->dir);
	/* its successor waits outside until the refresh reads F, which then is gone */
	assert_int_equal(kl_repo_get_index_file(f->r, &fid, &xf), 0);
	xf.supersedes = kl_memdup(&fid, sizeof(fid));
	xf.n_supersedes = 1;
	assert_int_equal(kl_repo_put_index_file(f->r, &xf, &succ), 0);
	kl_index_file_release(&xf);
	kl_id_hex(&succ, hex);
	snprintf(o.replace_to, sizeof(o.replace_to), "%s/%s", dir, hex);
	snprintf(o.replace_from, sizeof(o.replace_from), "%s/../successor", f->dir);
	assert_int_equal(rename(o.replace_to, o.replace_from), 0);
	kl_id_hex(&fid, hex);
	snprintf(o.replace_del, sizeof(o.replace_del), "%s/%s", dir, hex);

	assert_int_equal(kl_repo_refresh_index(r), 0);
	assert_int_equal(o.replace_from[0], 0); /* the race happened */
	assert_int_equal(kl_repo_lookup(r, &ids[0], NULL), 1);
	assert_int_equal(kl_repo_lookup(r, &ids[1], NULL), 1);
	kl_repo_free(r);
}

static int count_file(const char *name, uint64_t size, void *ud)
{
	(void)name;
	(void)size;
	++*(unsigned *)ud;
	return 0;
}

static unsigned lock_objects(struct fixture *f)
{
	struct kl_backend *be = NULL;
	unsigned n = 0;

	assert_int_equal(kl_backend_open(f->dir, NULL, &be), 0);
	assert_int_equal(be->ops->list(be, KL_OBJ_LOCK, count_file, &n), 0);
	kl_backend_free(be);
	return n;
}

/* A lock whose write failed after it was stored must not stay (issue 13, 6). */
static void failed_lock_write_leaves_no_lock(void **state)
{
	struct fixture *f = *state;
	struct ordered o;
	struct kl_repo *r = open_ordered(f, &o, 0);

	o.lock_put_fails_after = true;
	assert_int_equal(kl_repo_lock(r, KL_LOCK_PRUNE, "prune"), -EIO);
	assert_int_equal(lock_objects(f), 0);
	kl_repo_free(r);
}

/* A lock that cannot be deleted is reported, with its name, never left silently. */
static void undeletable_lock_is_reported(void **state)
{
	struct fixture *f = *state;
	struct ordered o;
	struct kl_repo *r = open_ordered(f, &o, 0);
	struct kl_err e = {0}, d = {0};

	assert_int_equal(kl_repo_lock(r, KL_LOCK_PRUNE, "prune"), 0);
	o.lock_dels_fail = 2;
	assert_int_equal(kl_repo_unlock_repo(r), -EIO);
	kl_repo_take_err(r, &e, &d);
	assert_non_null(strstr(e.msg, "locks/"));
	assert_int_equal(lock_objects(f), 1);
	/* one failed deletion that the sweep after it makes good: no error */
	assert_int_equal(kl_repo_lock(r, KL_LOCK_SHARED, "backup"), 0);
	o.lock_dels_fail = 1;
	assert_int_equal(kl_repo_unlock_repo(r), 0);
	assert_int_equal(lock_objects(f), 1); /* the first one only */
	kl_repo_free(r);
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
		cmocka_unit_test_setup_teardown(damaged_copy_falls_back_to_another, setup,
						teardown),
		cmocka_unit_test_setup_teardown(orphan_packs_are_adopted, setup, teardown),
		cmocka_unit_test_setup_teardown(snapshots_are_listed_in_time_order, setup,
						teardown),
		cmocka_unit_test_setup_teardown(second_key_opens_same_master, setup, teardown),
		cmocka_unit_test_setup_teardown(data_and_tree_ids_never_collide, setup, teardown),
		cmocka_unit_test_setup_teardown(index_rules_read_each_file_once, setup, teardown),
		cmocka_unit_test_setup_teardown(lock_replaced_while_listed, setup, teardown),
		cmocka_unit_test_setup_teardown(lock_listing_outlasts_churn, setup, teardown),
		cmocka_unit_test_setup_teardown(failed_lock_write_leaves_no_lock, setup, teardown),
		cmocka_unit_test_setup_teardown(undeletable_lock_is_reported, setup, teardown),
		cmocka_unit_test_setup_teardown(refresh_finds_successor_written_after_listing,
						setup, teardown),
	};

	kl_crypto_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
