/*
 * Restore, walk, lookup, diff, dump and snapshot selection against a real
 * repository built by hand in a temporary directory: blobs go through a
 * packer, trees are encoded from nodes written here, so every node kind
 * and every metadata field is under the test's control.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include "keel/fs.h"
#include "keel/ops.h"
#include "keel/source.h"
#include "fixture.h"

#define MIB (1u << 20)

struct fx {
	char top[64];
	char repo[96];
	char out[96];
	struct kl_pass *pass;
	struct kl_repo *r;
	struct kl_packer *pk;
	/* what the warn callback saw: "path|what" lines */
	char warnings[4096];
	int n_warnings;
	int progress_calls;
};

/* ---- fixture ----------------------------------------------------------------- */

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct kl_init_opts o;

	if (fixture_tmpdir("restore", f->top, sizeof(f->top)) < 0)
		return -1;
	snprintf(f->repo, sizeof(f->repo), "%s/repo", f->top);
	snprintf(f->out, sizeof(f->out), "%s/out", f->top);
	fixture_init_opts(&o);
	o.pack_size = 1 << 20;
	if (fixture_repo_create(f->repo, &o, &f->pass, &f->r) < 0)
		return -1;
	if (kl_packer_new(f->r, &f->pk) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	kl_packer_free(f->pk);
	kl_repo_free(f->r);
	kl_pass_free(f->pass);
	fixture_rm_rf(f->top);
	free(f);
	return 0;
}

static void on_warn(void *ud, const char *path, int err, const char *what)
{
	struct fx *f = ud;
	size_t n = strlen(f->warnings);

	snprintf(f->warnings + n, sizeof(f->warnings) - n, "%s|%s\n", path, what);
	f->n_warnings++;
}

static void on_progress(void *ud, const struct kl_progress *p)
{
	struct fx *f = ud;

	f->progress_calls++;
	assert_true(p->bytes_done <= p->bytes_total || !p->bytes_total);
}

static void opts_init(struct fx *f, struct kl_restore_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->target = f->out;
	o->threads = 2;
	o->report.warn = on_warn;
	o->report.progress = on_progress;
	o->report.ud = f;
	f->warnings[0] = 0;
	f->n_warnings = 0;
}

/* ---- building repositories by hand ------------------------------------------- */

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)x;
	}
}

static struct kl_id blob(struct fx *f, const void *data, size_t n)
{
	struct kl_id id;

	assert_int_equal(kl_packer_store(f->pk, KL_BLOB_DATA, data, n, &id), 0);
	return id;
}

static void flush(struct fx *f)
{
	assert_int_equal(kl_packer_flush(f->pk), 0);
	assert_int_equal(kl_repo_flush_index(f->r), 0);
}

static struct kl_node node(const char *name, enum kl_node_type type, uint32_t mode)
{
	struct kl_node n = {0};

	n.name_len = strlen(name);
	n.name = kl_memdup(name, n.name_len);
	n.type = type;
	n.mode = mode;
	n.uid = 1234;
	n.gid = 5678;
	n.mtime_sec = 1600000000;
	n.mtime_nsec = 123456789;
	n.atime_sec = 1500000000;
	n.atime_nsec = 500000000;
	n.nlink = 1;
	return n;
}

static struct kl_node file(struct fx *f, const char *name, uint32_t mode, const void *data,
			   size_t n)
{
	struct kl_node nd = node(name, KL_NODE_FILE, mode);

	nd.size = n;
	if (n) {
		nd.content = kl_malloc(sizeof(struct kl_id));
		nd.content[0] = blob(f, data, n);
		nd.n_content = 1;
	}
	return nd;
}

static struct kl_node file_ids(const char *name, uint32_t mode, const struct kl_id *ids, size_t n,
			       uint64_t size)
{
	struct kl_node nd = node(name, KL_NODE_FILE, mode);

	nd.content = kl_memdup(ids, n * sizeof(*ids));
	nd.n_content = n;
	nd.size = size;
	return nd;
}

static struct kl_node symlink_node(const char *name, const char *target)
{
	struct kl_node nd = node(name, KL_NODE_SYMLINK, 0777);

	nd.link_len = strlen(target);
	nd.link = kl_memdup(target, nd.link_len);
	return nd;
}

static struct kl_node dir(const char *name, uint32_t mode, struct kl_id subtree)
{
	struct kl_node nd = node(name, KL_NODE_DIR, mode);

	nd.subtree = subtree;
	nd.has_subtree = true;
	nd.mtime_sec = 1400000000;
	nd.mtime_nsec = 42;
	return nd;
}

static void add_xattr(struct kl_node *nd, const char *name, const char *value)
{
	nd->xattrs = kl_realloc(nd->xattrs, (nd->n_xattrs + 1) * sizeof(*nd->xattrs));
	nd->xattrs[nd->n_xattrs].name = kl_strdup(name);
	nd->xattrs[nd->n_xattrs].value_len = strlen(value);
	nd->xattrs[nd->n_xattrs].value = kl_memdup(value, strlen(value));
	nd->n_xattrs++;
}

/* Stores a tree of the given nodes (taking them over) and returns its id. */
static struct kl_id tree(struct fx *f, struct kl_node *nodes, size_t n)
{
	struct kl_tree t = {0};
	struct kl_buf enc = KL_BUF_INIT(64 << 20);
	struct kl_id id;

	for (size_t i = 0; i < n; i++)
		assert_int_equal(kl_tree_add(&t, &nodes[i]), 0);
	kl_tree_sort(&t);
	assert_int_equal(kl_tree_encode(&t, &enc), 0);
	assert_int_equal(kl_packer_store(f->pk, KL_BLOB_TREE, enc.data, enc.len, &id), 0);
	kl_buf_release(&enc);
	kl_tree_release(&t);
	return id;
}

/* Wraps a tree in directories: /a/b/c for names "a", "b", "c". */
static struct kl_id wrap(struct fx *f, struct kl_id inner, const char *const *names, size_t n)
{
	for (size_t i = n; i-- > 0;) {
		struct kl_node d = dir(names[i], 0755, inner);

		inner = tree(f, &d, 1);
	}
	return inner;
}

static const char a_txt[] = "hello world\n";
static const char exec_sh[] = "#!/bin/sh\necho hi\n";
static const char linked[] = "linked\n";
static const size_t big_len[3] = {100000, 200000, 50000};

/* The big file's content: three random blobs. */
static uint8_t *big_content(size_t *n)
{
	uint8_t *p = malloc(big_len[0] + big_len[1] + big_len[2]);
	size_t off = 0;

	for (int i = 0; i < 3; i++) {
		fill(p + off, big_len[i], 100 + (uint64_t)i);
		off += big_len[i];
	}
	*n = off;
	return p;
}

/*
 * /home/u/docs with: a.txt (xattr, odd owner), big.bin (3 blobs),
 * empty, exec.sh (setuid), hl1 + hl2 (hard links), link (symlink),
 * fifo, null (char device), sock (socket), sparse.img, ro/ (0555 with a
 * 0444 file), locked/ (0000).
 */
static struct kl_id build_main(struct fx *f)
{
	static const char *const path[] = {"home", "u"};
	struct kl_node docs[16], ro[1], locked[1];
	struct kl_id ids[4], zero_id, data_id;
	size_t n = 0, big_n;
	uint8_t *big = big_content(&big_n), *zero, data[8192];

	docs[n] = file(f, "a.txt", 0640, a_txt, strlen(a_txt));
	add_xattr(&docs[n], "user.keel", "v1");
	n++;
	for (int i = 0, off = 0; i < 3; off += (int)big_len[i], i++)
		ids[i] = blob(f, big + off, big_len[i]);
	docs[n++] = file_ids("big.bin", 0600, ids, 3, big_n);
	docs[n++] = file(f, "empty", 0644, NULL, 0);
	docs[n++] = file(f, "exec.sh", 04755, exec_sh, strlen(exec_sh));
	for (int i = 0; i < 2; i++) {
		docs[n] = file(f, i ? "hl2" : "hl1", 0644, linked, strlen(linked));
		docs[n].nlink = 2;
		docs[n].dev = 42;
		docs[n].inode = 7;
		n++;
	}
	docs[n++] = symlink_node("link", "a.txt");
	docs[n++] = symlink_node("dangling", "../../../../outside/x");
	docs[n++] = node("fifo", KL_NODE_FIFO, 0620);
	docs[n] = node("null", KL_NODE_CHR, 0666);
	docs[n++].rdev = makedev(1, 3);
	docs[n++] = node("sock", KL_NODE_SOCK, 0755);

	/* 1 MiB of zeros, 8 KiB of data, 2 MiB of zeros: holes where the zeros were */
	zero = calloc(1, MIB);
	zero_id = blob(f, zero, MIB);
	memset(data, 'x', sizeof(data));
	data_id = blob(f, data, sizeof(data));
	ids[0] = zero_id;
	ids[1] = data_id;
	ids[2] = zero_id;
	ids[3] = zero_id;
	docs[n] = file_ids("sparse.img", 0644, ids, 4, 3 * MIB + sizeof(data));
	docs[n++].flags = KL_NODE_SPARSE;

	ro[0] = file(f, "inner.txt", 0444, "ro\n", 3);
	docs[n++] = dir("ro", 0555, tree(f, ro, 1));
	locked[0] = file(f, "secret", 0600, "s\n", 2);
	docs[n++] = dir("locked", 0, tree(f, locked, 1));

	struct kl_node d = dir("docs", 0750, tree(f, docs, n));
	struct kl_id root = wrap(f, tree(f, &d, 1), path, 2);

	flush(f);
	free(big);
	free(zero);
	return root;
}

/* ---- checking what was restored ---------------------------------------------------- */

static void out_path(struct fx *f, char *buf, size_t n, const char *rel)
{
	snprintf(buf, n, "%s/%s", f->out, rel);
}

static void check_content(struct fx *f, const char *rel, const void *want, size_t n)
{
	char p[512];
	struct kl_buf b = KL_BUF_INIT((size_t)1 << 30);

	out_path(f, p, sizeof(p), rel);
	assert_int_equal(kl_fs_read_all(AT_FDCWD, p, (size_t)1 << 30, &b), 0);
	assert_int_equal(b.len, n);
	assert_memory_equal(b.data, want, n);
	kl_buf_release(&b);
}

static struct stat lst(struct fx *f, const char *rel)
{
	char p[512];
	struct stat st;

	out_path(f, p, sizeof(p), rel);
	if (lstat(p, &st) < 0)
		fail_msg("%s: %s", p, strerror(errno));
	return st;
}

static bool exists(struct fx *f, const char *rel)
{
	char p[512];
	struct stat st;

	out_path(f, p, sizeof(p), rel);
	return lstat(p, &st) == 0;
}

static void check_times(const struct stat *st, int64_t mtime, uint32_t mnsec)
{
	assert_int_equal(st->st_mtim.tv_sec, mtime);
	assert_int_equal(st->st_mtim.tv_nsec, mnsec);
}

/* ---- restore ---------------------------------------------------------------------- */

static void restore_everything(void **state)
{
	struct fx *f = *state;
	struct kl_id root = build_main(f);
	struct kl_restore_opts o;
	struct kl_restore_stats st;
	struct stat s, s2;
	size_t big_n;
	uint8_t *big = big_content(&big_n);
	char p[512], val[16];
	bool root_user = geteuid() == 0;

	opts_init(f, &o);
	/* root restores everything as recorded; others omit the device and owners (exit 3) */
	assert_int_equal(kl_restore(f->r, &root, "", &o, &st), root_user ? 0 : -KL_EPARTIAL);
	assert_int_equal(st.specials_omitted, root_user ? 0 : 1);
	if (root_user)
		assert_int_equal(f->n_warnings, 0);
	else
		assert_true(st.owners_omitted > 0);

	/* times first: reading a file whose atime is older than its mtime updates it */
	s = lst(f, "home/u/docs/a.txt");
	assert_int_equal(s.st_mode & 07777, 0640);
	check_times(&s, 1600000000, 123456789);
	assert_int_equal(s.st_atim.tv_sec, 1500000000);
	assert_int_equal(s.st_atim.tv_nsec, 500000000);
	check_content(f, "home/u/docs/a.txt", a_txt, strlen(a_txt));
	check_content(f, "home/u/docs/big.bin", big, big_n);
	check_content(f, "home/u/docs/empty", "", 0);
	check_content(f, "home/u/docs/exec.sh", exec_sh, strlen(exec_sh));
	check_content(f, "home/u/docs/hl2", linked, strlen(linked));
	check_content(f, "home/u/docs/ro/inner.txt", "ro\n", 3);

	out_path(f, p, sizeof(p), "home/u/docs/a.txt");
	if (getxattr(p, "user.keel", val, sizeof(val)) >= 0)
		assert_memory_equal(val, "v1", 2);
	else
		assert_int_equal(errno, ENOTSUP);
	if (root_user) {
		assert_int_equal(s.st_uid, 1234);
		assert_int_equal(s.st_gid, 5678);
	}
	/* setuid survives when the owner is restored: the mode is set after the owner */
	assert_int_equal(lst(f, "home/u/docs/exec.sh").st_mode & 07777, root_user ? 04755 : 0755);
	assert_int_equal(lst(f, "home/u/docs/big.bin").st_mode & 07777, 0600);

	/* hard links share an inode */
	s = lst(f, "home/u/docs/hl1");
	s2 = lst(f, "home/u/docs/hl2");
	assert_int_equal(s.st_ino, s2.st_ino);
	assert_int_equal(s.st_nlink, 2);

	/* symlinks: targets as recorded, never followed */
	out_path(f, p, sizeof(p), "home/u/docs/link");
	assert_int_equal(readlink(p, val, sizeof(val)), 5);
	assert_memory_equal(val, "a.txt", 5);
	s = lst(f, "home/u/docs/dangling");
	assert_true(S_ISLNK(s.st_mode));
	check_times(&s, 1600000000, 123456789);

	assert_true(S_ISFIFO(lst(f, "home/u/docs/fifo").st_mode));
	assert_int_equal(lst(f, "home/u/docs/fifo").st_mode & 07777, 0620);
	if (root_user) {
		s = lst(f, "home/u/docs/null");
		assert_true(S_ISCHR(s.st_mode));
		assert_int_equal(s.st_rdev, makedev(1, 3));
	}
	assert_true(S_ISSOCK(lst(f, "home/u/docs/sock").st_mode));
	assert_int_equal(lst(f, "home/u/docs/sock").st_mode & 07777, 0755);

	/* the sparse file: right content, holes kept */
	s = lst(f, "home/u/docs/sparse.img");
	assert_int_equal(s.st_size, 3 * MIB + 8192);
	assert_true(s.st_blocks * 512 <= 64 * 1024);
	{
		uint8_t *want = calloc(1, 3 * MIB + 8192);

		memset(want + MIB, 'x', 8192);
		check_content(f, "home/u/docs/sparse.img", want, 3 * MIB + 8192);
		free(want);
	}

	/* directory metadata is applied after the children */
	s = lst(f, "home/u/docs/ro");
	assert_int_equal(s.st_mode & 07777, 0555);
	check_times(&s, 1400000000, 42);
	s = lst(f, "home/u/docs/locked");
	assert_int_equal(s.st_mode & 07777, 0);
	s = lst(f, "home/u/docs");
	check_times(&s, 1400000000, 42);
	assert_int_equal(s.st_mode & 07777, 0750);
	if (root_user)
		check_content(f, "home/u/docs/locked/secret", "s\n", 2);

	/* 9 files (hl2 counted too), home u docs ro locked, link dangling fifo sock (null) */
	assert_int_equal(st.files, 9);
	assert_int_equal(st.dirs, 5);
	assert_int_equal(st.others, root_user ? 5 : 4);
	assert_int_equal(st.errors, 0);
	assert_int_equal(st.bytes, strlen(a_txt) + big_n + strlen(exec_sh) + strlen(linked) +
					   3 * MIB + 8192 + 3 + 2);
	assert_true(f->progress_calls >= 1);
	free(big);

	/* a second restore over the first replaces everything and changes nothing */
	opts_init(f, &o);
	o.verify = true;
	assert_int_equal(kl_restore(f->r, &root, "/", &o, &st), root_user ? 0 : -KL_EPARTIAL);
	assert_int_equal(st.verify_failures, 0);
	s2 = lst(f, "home/u/docs/hl2");
	assert_int_equal(lst(f, "home/u/docs/hl1").st_ino, s2.st_ino);
	assert_int_equal(lst(f, "home/u/docs/ro").st_mode & 07777, 0555);
}

static void restore_single_thread_verify(void **state)
{
	struct fx *f = *state;
	struct kl_id root = build_main(f);
	struct kl_restore_opts o;
	struct kl_restore_stats st;
	size_t big_n;
	uint8_t *big = big_content(&big_n);
	int rc;

	opts_init(f, &o);
	o.threads = 1;
	o.verify = true;
	o.no_owner = true;
	rc = kl_restore(f->r, &root, "", &o, &st);
	/* not the recorded owner: no setuid bit, said */
	assert_non_null(strstr(f->warnings, "/home/u/docs/exec.sh|setuid/setgid bit not restored"));
	assert_int_equal(st.setid_cleared, 1);
	assert_int_equal(st.owners_omitted, 0); /* --no-owner asked for that */
	assert_int_equal(lst(f, "home/u/docs/exec.sh").st_mode & 07777, 0755);
	assert_int_equal(rc, -KL_EPARTIAL);
	assert_int_equal(st.verify_failures, 0);
	check_content(f, "home/u/docs/big.bin", big, big_n);
	if (geteuid() == 0)
		assert_int_equal(lst(f, "home/u/docs/a.txt").st_uid, 0);
	free(big);
}

static void restore_subpaths(void **state)
{
	struct fx *f = *state;
	struct kl_id root = build_main(f);
	struct kl_restore_opts o;
	struct kl_restore_stats st;

	/* a directory: its contents into the target, as restic does */
	opts_init(f, &o);
	assert_int_equal(kl_restore(f->r, &root, "/home/u/docs", &o, &st),
			 geteuid() ? -KL_EPARTIAL : 0);
	check_content(f, "a.txt", a_txt, strlen(a_txt));
	assert_int_equal(lst(f, "hl1").st_ino, lst(f, "hl2").st_ino);
	assert_false(exists(f, "home"));
	assert_false(exists(f, "docs"));

	/* a file: TARGET/NAME */
	fixture_rm_rf(f->out);
	opts_init(f, &o);
	assert_int_equal(kl_restore(f->r, &root, "home//u/docs/a.txt", &o, &st),
			 geteuid() ? -KL_EPARTIAL : 0);
	check_content(f, "a.txt", a_txt, strlen(a_txt));
	assert_int_equal(st.files, 1);
	assert_int_equal(st.created, 1);
	assert_int_equal(st.dirs, 0);

	/* again: the same file is there, left alone */
	opts_init(f, &o);
	assert_int_equal(kl_restore(f->r, &root, "home//u/docs/a.txt", &o, &st),
			 geteuid() ? -KL_EPARTIAL : 0);
	assert_int_equal(st.files, 0);
	assert_int_equal(st.unchanged, 1);
	assert_int_equal(st.created + st.replaced, 0);

	opts_init(f, &o);
	assert_int_equal(kl_restore(f->r, &root, "/home/u/nope", &o, &st), -KL_ENOTFOUND);
	assert_int_equal(kl_restore(f->r, &root, "/home/u/docs/a.txt/x", &o, &st), -KL_ENOTFOUND);
}

static void restore_include_exclude(void **state)
{
	struct fx *f = *state;
	struct kl_id root = build_main(f);
	struct kl_restore_opts o;
	struct kl_restore_stats st;

	opts_init(f, &o);
	assert_int_equal(kl_patterns_add(&o.includes, "/home/u/docs/ro"), 0);
	assert_int_equal(kl_patterns_add(&o.includes, "/nowhere/**"), 0);
	assert_int_equal(kl_restore(f->r, &root, "", &o, &st), geteuid() ? -KL_EPARTIAL : 0);
	check_content(f, "home/u/docs/ro/inner.txt", "ro\n", 3);
	assert_false(exists(f, "home/u/docs/a.txt"));
	assert_false(exists(f, "home/u/docs/locked"));
	assert_false(exists(f, "nowhere"));
	/* parents made on the way get their own metadata */
	assert_int_equal(lst(f, "home/u/docs").st_mode & 07777, 0750);
	assert_int_equal(st.files, 1);
	assert_int_equal(st.dirs, 4);
	kl_patterns_release(&o.includes);

	fixture_rm_rf(f->out);
	opts_init(f, &o);
	assert_int_equal(kl_patterns_add(&o.includes, "*.txt"), 0);
	assert_int_equal(kl_patterns_add(&o.excludes, "ro"), 0);
	assert_int_equal(kl_restore(f->r, &root, "", &o, &st), geteuid() ? -KL_EPARTIAL : 0);
	check_content(f, "home/u/docs/a.txt", a_txt, strlen(a_txt));
	assert_false(exists(f, "home/u/docs/ro"));
	assert_false(exists(f, "home/u/docs/big.bin"));
	assert_int_equal(st.files, 1);
	kl_patterns_release(&o.includes);
	kl_patterns_release(&o.excludes);

	/* the first name of a hard link excluded: the second becomes the file */
	fixture_rm_rf(f->out);
	opts_init(f, &o);
	assert_int_equal(kl_patterns_add(&o.excludes, "hl1"), 0);
	assert_int_equal(kl_patterns_add(&o.excludes, "*.bin"), 0);
	assert_int_equal(kl_restore(f->r, &root, "", &o, &st), geteuid() ? -KL_EPARTIAL : 0);
	assert_false(exists(f, "home/u/docs/hl1"));
	assert_false(exists(f, "home/u/docs/big.bin"));
	check_content(f, "home/u/docs/hl2", linked, strlen(linked));
	assert_int_equal(lst(f, "home/u/docs/hl2").st_nlink, 1);
	kl_patterns_release(&o.excludes);
}

static void restore_replaces_what_is_in_the_way(void **state)
{
	struct fx *f = *state;
	struct kl_id root = build_main(f);
	struct kl_restore_opts o;
	struct kl_restore_stats st;
	char victim[128], victim2[128], p[512];

	/* things a previous restore or an attacker left in the target */
	snprintf(victim, sizeof(victim), "%s/victim", f->top);
	snprintf(victim2, sizeof(victim2), "%s/victim2", f->top);
	assert_int_equal(kl_fs_write_atomic(AT_FDCWD, victim, "keep", 4, 0644, KL_FS_NOSYNC), 0);
	assert_int_equal(kl_fs_write_atomic(AT_FDCWD, victim2, "keep2", 5, 0644, KL_FS_NOSYNC), 0);
	out_path(f, p, sizeof(p), "home/u/docs");
	assert_int_equal(kl_fs_mkdir_p(AT_FDCWD, p, 0755), 0);
	out_path(f, p, sizeof(p), "home/u/docs/a.txt");
	assert_int_equal(symlink(victim, p), 0);
	out_path(f, p, sizeof(p), "home/u/docs/big.bin");
	assert_int_equal(link(victim2, p), 0);
	out_path(f, p, sizeof(p), "home/u/docs/ro");
	assert_int_equal(symlink(f->top, p), 0); /* a symlink where a directory goes */
	out_path(f, p, sizeof(p), "home/u/docs/link");
	assert_int_equal(mkdir(p, 0755), 0); /* an empty directory where a symlink goes */
	out_path(f, p, sizeof(p), "home/u/docs/fifo");
	assert_int_equal(mkdir(p, 0755), 0);
	out_path(f, p, sizeof(p), "home/u/docs/fifo/keep");
	assert_int_equal(mkdir(p, 0755), 0); /* a full directory: never deleted */

	opts_init(f, &o);
	assert_int_equal(kl_restore(f->r, &root, "", &o, &st), -EISDIR);
	assert_int_equal(st.errors, 1);
	assert_non_null(strstr(f->warnings, "/home/u/docs/fifo|"));

	check_content(f, "home/u/docs/a.txt", a_txt, strlen(a_txt));
	assert_true(S_ISREG(lst(f, "home/u/docs/a.txt").st_mode));
	assert_true(S_ISDIR(lst(f, "home/u/docs/ro").st_mode));
	assert_true(S_ISLNK(lst(f, "home/u/docs/link").st_mode));
	assert_true(exists(f, "home/u/docs/fifo/keep"));
	assert_int_equal(lst(f, "home/u/docs/big.bin").st_nlink, 1);
	/* nothing outside the target was written */
	{
		struct kl_buf b = KL_BUF_INIT(1024);

		assert_int_equal(kl_fs_read_all(AT_FDCWD, victim, 1024, &b), 0);
		assert_string_equal((char *)b.data, "keep");
		kl_buf_clear(&b);
		assert_int_equal(kl_fs_read_all(AT_FDCWD, victim2, 1024, &b), 0);
		assert_string_equal((char *)b.data, "keep2");
		kl_buf_release(&b);
		snprintf(p, sizeof(p), "%s/inner.txt", f->top);
		assert_int_equal(access(p, F_OK), -1);
	}
}

/* Finds the pack file holding blob id and flips a byte inside the blob. */
static void damage_blob(struct fx *f, const struct kl_id *id)
{
	struct kl_blob_loc loc;
	char hex[2 * KL_ID_LEN + 1], p[256];
	uint8_t c;
	int fd;

	assert_int_equal(kl_repo_lookup(f->r, id, &loc), 1);
	kl_id_hex(&loc.pack, hex);
	snprintf(p, sizeof(p), "%s/data/%.2s/%s", f->repo, hex, hex);
	fd = open(p, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &c, 1, loc.e.offset + 20), 1);
	c ^= 0x40;
	assert_int_equal(pwrite(fd, &c, 1, loc.e.offset + 20), 1);
	close(fd);
}

static void restore_reports_damaged_data(void **state)
{
	struct fx *f = *state;
	struct kl_id root, ids[3];
	struct kl_node nodes[2];
	struct kl_restore_opts o;
	struct kl_restore_stats st;
	size_t big_n;
	uint8_t *big = big_content(&big_n);

	for (int i = 0, off = 0; i < 3; off += (int)big_len[i], i++)
		ids[i] = blob(f, big + off, big_len[i]);
	nodes[0] = file_ids("big.bin", 0600, ids, 3, big_n);
	nodes[1] = file(f, "ok.txt", 0644, a_txt, strlen(a_txt));
	root = tree(f, nodes, 2);
	flush(f);
	damage_blob(f, &ids[1]);

	opts_init(f, &o);
	assert_int_equal(kl_restore(f->r, &root, "", &o, &st), -KL_ECORRUPT);
	assert_int_equal(st.errors, 1);
	assert_int_equal(st.damaged, 1);
	/* why, and where it went */
	assert_int_equal(f->n_warnings, 2);
	assert_non_null(strstr(f->warnings, "/big.bin|data is damaged"));
	assert_non_null(strstr(f->warnings, "/big.bin|restored as 'big.bin.keel-damaged'"));
	check_content(f, "ok.txt", a_txt, strlen(a_txt));
	/* never under its own name, nor with its metadata: it does not look intact */
	assert_false(exists(f, "big.bin"));
	{
		struct stat s = lst(f, "big.bin.keel-damaged");

		assert_int_equal(s.st_mode & 07777, 0600);
		assert_true(s.st_mtim.tv_sec > 1600000000);
	}
	/* what could be restored is there, at the right offsets */
	memset(big + big_len[0], 0, big_len[1]);
	check_content(f, "big.bin.keel-damaged", big, big_n);
	free(big);

	/* dump stops at the damage */
	{
		struct kl_node nd;
		int fd = open("/dev/null", O_WRONLY);

		assert_int_equal(kl_tree_lookup(f->r, &root, "/big.bin", &nd), 0);
		assert_int_equal(kl_dump_node(f->r, &nd, fd), -KL_ECORRUPT);
		kl_node_release(&nd);
		close(fd);
	}
}

/*
 * Damaged files in every shape: written in parts by several workers, with
 * two names (hard links in two directories), a name too long for the
 * suffix, a NAME.keel-damaged left by an earlier restore (replaced) and
 * one the snapshot holds (kept: the damaged file goes), in a read-only
 * directory whose mtime must stay.
 */
static void restore_damaged_names(void **state)
{
	struct fx *f = *state;
	const size_t n_blobs = 70;
	struct kl_id *ids = calloc(n_blobs, sizeof(*ids)), bad, good, sub, root;
	uint8_t *chunk = malloc(MIB);
	struct kl_node top[6], in[2];
	char longname[NAME_MAX + 1], want[NAME_MAX + 1], p[600];
	struct kl_restore_opts o;
	struct kl_restore_stats st;
	struct stat s;
	int fd;

	for (size_t i = 0; i < n_blobs; i++) {
		fill(chunk, MIB, 100 + i);
		ids[i] = blob(f, chunk, MIB);
	}
	bad = blob(f, "damaged soon", 12);
	good = blob(f, "fine", 4);
	/* 250 bytes: the suffix leaves room for 242, which would cut the two-byte character */
	memset(longname, 'n', 250);
	memcpy(longname + 241, "\xc3\xa9", 2);
	longname[250] = 0;
	top[0] = file_ids("image", 0644, ids, n_blobs, (uint64_t)n_blobs * MIB);
	top[1] = file_ids("linked", 04755, &bad, 1, 12);
	top[1].nlink = 2;
	top[1].inode = 77;
	top[2] = file_ids(longname, 0644, &bad, 1, 12);
	top[3] = file_ids("old", 0644, &bad, 1, 12);
	top[4] = file_ids("taken", 0644, &bad, 1, 12);
	top[5] = file_ids("taken.keel-damaged", 0644, &good, 1, 4);
	in[0] = file_ids("other-name", 04755, &bad, 1, 12);
	in[0].nlink = 2;
	in[0].inode = 77;
	in[1] = file_ids("fine", 0644, &good, 1, 4);
	sub = tree(f, in, 2);
	{
		struct kl_node all[7];

		memcpy(all, top, sizeof(top));
		all[6] = dir("ro", 0555, sub);
		root = tree(f, all, 7);
	}
	flush(f);
	damage_blob(f, &ids[40]);
	damage_blob(f, &bad);

	/* left by an earlier restore */
	assert_int_equal(kl_fs_mkdir_p(AT_FDCWD, f->out, 0700), 0);
	out_path(f, p, sizeof(p), "old.keel-damaged");
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0644);
	assert_true(fd >= 0);
	close(fd);
	usleep(20000); /* older than the restore, at the clock's resolution */

	opts_init(f, &o);
	o.threads = 4;
	assert_int_equal(kl_restore(f->r, &root, "", &o, &st), -KL_ECORRUPT);
	assert_int_equal(st.damaged, 5);
	assert_false(exists(f, "image"));
	s = lst(f, "image.keel-damaged");
	assert_int_equal(s.st_size, (off_t)(n_blobs * MIB));
	assert_int_equal(s.st_mode & 07777, 0600);
	/* both names of the linked file, and no setuid bit */
	assert_false(exists(f, "linked"));
	assert_false(exists(f, "ro/other-name"));
	s = lst(f, "linked.keel-damaged");
	assert_int_equal(s.st_mode & 07777, 0600);
	assert_int_equal(s.st_nlink, 2);
	assert_true(exists(f, "ro/other-name.keel-damaged"));
	/* the read-only directory kept its mode and mtime */
	s = lst(f, "ro");
	assert_int_equal(s.st_mode & 07777, 0555);
	assert_int_equal(s.st_mtim.tv_sec, 1400000000);
	check_content(f, "ro/fine", "fine", 4);
	/* cut to fit, before the two-byte character */
	memset(want, 'n', 241);
	memcpy(want + 241, ".keel-damaged", 14);
	assert_false(exists(f, longname));
	assert_true(exists(f, want));
	/* the leftover is replaced; the snapshot's own file is kept */
	assert_false(exists(f, "old"));
	assert_int_equal(lst(f, "old.keel-damaged").st_size, 12);
	assert_false(exists(f, "taken"));
	check_content(f, "taken.keel-damaged", "fine", 4);
	assert_non_null(strstr(f->warnings, "/taken|removed: 'taken.keel-damaged' is taken"));
	free(chunk);
	free(ids);
}

/* A repaired snapshot whose root directory was lost is empty: said, not silent. */
static void restore_empty_snapshot_warns(void **state)
{
	struct fx *f = *state;
	struct kl_id root = tree(f, NULL, 0);
	struct kl_restore_opts o;
	struct kl_restore_stats st;

	flush(f);
	opts_init(f, &o);
	assert_int_equal(kl_restore(f->r, &root, "", &o, &st), 0);
	assert_int_equal(st.files + st.dirs + st.others, 0);
	assert_int_equal(f->n_warnings, 1);
	assert_non_null(strstr(f->warnings, "/|the snapshot is empty"));
}

static void restore_large_file_in_parts(void **state)
{
	struct fx *f = *state;
	const size_t n_blobs = 70;
	struct kl_id distinct[3], *ids = calloc(n_blobs, sizeof(*ids));
	uint8_t *chunk = malloc(MIB);
	struct kl_node nd;
	struct kl_restore_opts o;
	struct kl_restore_stats st;
	struct kl_id root;
	char p[512];
	int fd;

	for (int i = 0; i < 3; i++) {
		fill(chunk, MIB, 7 + (uint64_t)i);
		distinct[i] = blob(f, chunk, MIB);
	}
	for (size_t i = 0; i < n_blobs; i++)
		ids[i] = distinct[(i * 7) % 3];
	nd = file_ids("image", 0600, ids, n_blobs, (uint64_t)n_blobs * MIB);
	root = tree(f, &nd, 1);
	flush(f);

	opts_init(f, &o);
	o.verify = true;
	assert_int_equal(kl_restore(f->r, &root, "", &o, &st), 0);
	assert_int_equal(st.verify_failures, 0);
	assert_int_equal(st.files, 1);
	assert_int_equal(st.bytes, (uint64_t)n_blobs * MIB);
	assert_int_equal(lst(f, "image").st_size, (off_t)(n_blobs * MIB));
	out_path(f, p, sizeof(p), "image");
	fd = open(p, O_RDONLY);
	assert_true(fd >= 0);
	for (size_t i = 0; i < n_blobs; i++) {
		uint8_t *want = malloc(MIB);

		fill(want, MIB, 7 + (i * 7) % 3);
		assert_int_equal(kl_fs_pread_full(fd, chunk, MIB, (uint64_t)i * MIB), 0);
		assert_memory_equal(chunk, want, MIB);
		free(want);
	}
	close(fd);
	free(chunk);
	free(ids);
}

/*
 * 150 levels of 200-byte names: paths far beyond PATH_MAX, more levels
 * than restore keeps open, read-only directories on the way, and a hard
 * link between the top and the bottom.
 */
static void restore_deep_tree(void **state)
{
	struct fx *f = *state;
	const int depth = 150;
	char name[201];
	struct kl_node leaf[2], top[2];
	struct kl_id id;
	struct kl_restore_opts o;
	struct kl_restore_stats st;
	struct stat s1, s2;
	int fd, next;

	memset(name, 'd', 200);
	name[200] = 0;
	leaf[0] = file(f, "bottom", 0644, "deep\n", 5);
	leaf[1] = file(f, "link2", 0644, linked, strlen(linked));
	leaf[1].nlink = 2;
	leaf[1].inode = 99;
	id = tree(f, leaf, 2);
	for (int i = depth; i-- > 0;) {
		struct kl_node d = dir(name, i % 10 == 5 ? 0555 : 0755, id);

		id = tree(f, &d, 1);
	}
	top[0] = dir(name, 0755, id);
	top[1] = file(f, "link1", 0644, linked, strlen(linked));
	top[1].nlink = 2;
	top[1].inode = 99;
	/* "dddd..." sorts before "link1": the first name of the link is the deep one */
	id = tree(f, top, 2);
	flush(f);

	opts_init(f, &o);
	assert_int_equal(kl_restore(f->r, &id, "", &o, &st), 0);
	assert_int_equal(st.dirs, (uint64_t)depth + 1);

	fd = open(f->out, O_RDONLY | O_DIRECTORY);
	for (int i = 0; i <= depth; i++) {
		next = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
		assert_true(next >= 0);
		if (i >= 1 && (i - 1) % 10 == 5) {
			assert_int_equal(fstat(next, &s1), 0);
			assert_int_equal(s1.st_mode & 07777, 0555);
		}
		close(fd);
		fd = next;
	}
	assert_int_equal(fstatat(fd, "bottom", &s1, 0), 0);
	assert_int_equal(s1.st_size, 5);
	assert_int_equal(fstatat(fd, "link2", &s1, 0), 0);
	close(fd);
	s2 = lst(f, "link1");
	assert_int_equal(s1.st_ino, s2.st_ino);
}

/*
 * Workers create most files, so a directory's metadata must wait for the
 * last file created in it: many small files in read-only directories,
 * with subdirectories between them so that the walk leaves a directory
 * while its files are still queued.
 */
static void restore_dir_metadata_after_worker_creations(void **state)
{
	struct fx *f = *state;
	enum { NDIRS = 12, NFILES = 150 };
	struct kl_node outer[NDIRS];
	struct kl_id id;
	struct kl_restore_opts o;
	struct kl_restore_stats st;
	char name[64], rel[128];

	for (int d = 0; d < NDIRS; d++) {
		struct kl_node kids[NFILES + 1];
		struct kl_node sub;

		for (int i = 0; i < NFILES; i++) {
			snprintf(name, sizeof(name), "f%03d", i);
			kids[i] = file(f, name, 0444, name, i % 7 ? strlen(name) : 0);
		}
		sub = file(f, "x", 0644, "x", 1);
		kids[NFILES] = dir("m-sub", 0500, tree(f, &sub, 1));
		snprintf(name, sizeof(name), "d%02d", d);
		outer[d] = dir(name, d % 2 ? 0555 : 0751, tree(f, kids, NFILES + 1));
		outer[d].mtime_sec = 1300000000 + d;
	}
	id = tree(f, outer, NDIRS);
	flush(f);

	opts_init(f, &o);
	assert_int_equal(kl_restore(f->r, &id, "", &o, &st), 0);
	assert_string_equal(f->warnings, "");
	assert_int_equal(st.files, NDIRS * (NFILES + 1));
	for (int d = 0; d < NDIRS; d++) {
		struct stat s;

		snprintf(rel, sizeof(rel), "d%02d", d);
		s = lst(f, rel);
		assert_int_equal(s.st_mode & 07777, d % 2 ? 0555 : 0751);
		check_times(&s, 1300000000 + d, 42);
		snprintf(rel, sizeof(rel), "d%02d/m-sub", d);
		s = lst(f, rel);
		assert_int_equal(s.st_mode & 07777, 0500);
		check_times(&s, 1400000000, 42);
		for (int i = 0; i < NFILES; i += 13) {
			snprintf(name, sizeof(name), "f%03d", i);
			snprintf(rel, sizeof(rel), "d%02d/%s", d, name);
			check_content(f, rel, name, i % 7 ? strlen(name) : 0);
			assert_int_equal(lst(f, rel).st_mode & 07777, 0444);
		}
	}
}

/* ---- walk, lookup, diff, dump ------------------------------------------------------- */

struct walk_log {
	char paths[64][64];
	int n;
};

static int walk_cb(const char *path, const struct kl_node *nd, void *ud)
{
	struct walk_log *w = ud;

	assert_true(w->n < 64);
	snprintf(w->paths[w->n++], 64, "%s", path);
	return nd->type == KL_NODE_DIR && !strcmp(path, "/home/u/docs/locked") ? 1 : 0;
}

static void walk_and_lookup(void **state)
{
	struct fx *f = *state;
	struct kl_id root = build_main(f);
	struct walk_log w = {0};
	static const char *const want[] = {
		"/home",
		"/home/u",
		"/home/u/docs",
		"/home/u/docs/a.txt",
		"/home/u/docs/big.bin",
		"/home/u/docs/dangling",
		"/home/u/docs/empty",
		"/home/u/docs/exec.sh",
		"/home/u/docs/fifo",
		"/home/u/docs/hl1",
		"/home/u/docs/hl2",
		"/home/u/docs/link",
		"/home/u/docs/locked",
		"/home/u/docs/null",
		"/home/u/docs/ro",
		"/home/u/docs/ro/inner.txt",
		"/home/u/docs/sock",
		"/home/u/docs/sparse.img",
	};
	struct kl_node nd;
	int fds[2];
	char buf[64];

	assert_int_equal(kl_walk(f->r, &root, "", walk_cb, &w), 0);
	assert_int_equal(w.n, (int)KL_ARRAY_SIZE(want));
	for (int i = 0; i < w.n; i++)
		assert_string_equal(w.paths[i], want[i]);
	w.n = 0;
	assert_int_equal(kl_walk(f->r, &root, "/snap/", walk_cb, &w), 0);
	assert_string_equal(w.paths[0], "/snap/home");

	assert_int_equal(kl_tree_lookup(f->r, &root, "/home/u/docs/a.txt", &nd), 0);
	assert_int_equal(nd.type, KL_NODE_FILE);
	assert_int_equal(nd.size, strlen(a_txt));
	assert_int_equal(nd.n_xattrs, 1);
	/* dump writes the content */
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(kl_dump_node(f->r, &nd, fds[1]), 0);
	close(fds[1]);
	assert_int_equal(read(fds[0], buf, sizeof(buf)), (ssize_t)strlen(a_txt));
	assert_memory_equal(buf, a_txt, strlen(a_txt));
	close(fds[0]);
	kl_node_release(&nd);

	assert_int_equal(kl_tree_lookup(f->r, &root, "home/./u/docs/", &nd), 0);
	assert_int_equal(nd.type, KL_NODE_DIR);
	assert_int_equal(nd.mode, 0750);
	assert_int_equal(kl_dump_node(f->r, &nd, 1), -EISDIR);
	kl_node_release(&nd);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(kl_tree_lookup(f->r, &root, i ? "/" : "", &nd), 0);
		assert_int_equal(nd.type, KL_NODE_DIR);
		assert_true(nd.has_subtree);
		assert_true(kl_id_eq(&nd.subtree, &root));
		kl_node_release(&nd);
	}
	assert_int_equal(kl_tree_lookup(f->r, &root, "/home/x", &nd), -KL_ENOTFOUND);
	assert_int_equal(kl_tree_lookup(f->r, &root, "/home/u/docs/a.txt/b", &nd), -KL_ENOTFOUND);
	assert_int_equal(kl_tree_lookup(f->r, &root, "/home/u/docs/..", &nd), -KL_ENOTFOUND);
}

struct diff_log {
	char lines[32][64];
	int n;
};

static int diff_cb(enum kl_diff_kind k, const char *path, const struct kl_node *a,
		   const struct kl_node *b, void *ud)
{
	struct diff_log *d = ud;

	assert_true(d->n < 32);
	assert_true(k == KL_DIFF_ADDED ? !a && b : k == KL_DIFF_REMOVED ? a && !b : a && b);
	snprintf(d->lines[d->n++], 64, "%c %s", (char)k, path);
	return 0;
}

static void diff_two_trees(void **state)
{
	struct fx *f = *state;
	struct kl_node a[5], b[5], sub[1];
	struct kl_id ta, tb, same;
	struct diff_log d = {0};
	static const char *const want[] = {
		"- /d", "- /d/y", "U /m.txt", "+ /n", "+ /n/k", "T /t", "+ /t/u", "M /x.txt",
	};

	/* a subtree that is in no pack: diff must not read identical subtrees */
	memset(same.b, 0xab, sizeof(same.b));
	sub[0] = file(f, "y", 0644, "c1", 2);
	a[0] = dir("d", 0755, tree(f, sub, 1));
	a[1] = file(f, "m.txt", 0644, "c1", 2);
	a[2] = dir("same", 0755, same);
	a[3] = file(f, "t", 0644, "c1", 2);
	a[4] = file(f, "x.txt", 0644, "c1", 2);
	ta = tree(f, a, 5);
	b[0] = file(f, "m.txt", 0600, "c1", 2);
	sub[0] = file(f, "k", 0644, "c2", 2);
	b[1] = dir("n", 0755, tree(f, sub, 1));
	b[2] = dir("same", 0755, same);
	sub[0] = file(f, "u", 0644, "c2", 2);
	b[3] = dir("t", 0755, tree(f, sub, 1));
	b[4] = file(f, "x.txt", 0644, "c2", 2);
	tb = tree(f, b, 5);
	flush(f);

	assert_int_equal(kl_diff(f->r, &ta, &tb, diff_cb, &d), 0);
	assert_int_equal(d.n, (int)KL_ARRAY_SIZE(want));
	for (int i = 0; i < d.n; i++)
		assert_string_equal(d.lines[i], want[i]);
	d.n = 0;
	assert_int_equal(kl_diff(f->r, &ta, &ta, diff_cb, &d), 0);
	assert_int_equal(d.n, 0);
}

/* ---- snapshot selection ------------------------------------------------------------- */

static void snapshot_find(void **state)
{
	struct fx *f = *state;
	struct kl_id ids[17], root = build_main(f);
	char hex[17][2 * KL_ID_LEN + 1], spec[8];
	struct kl_snapshot_ref ref;
	struct kl_err err = {0};
	struct kl_snap_filter flt = {0};
	char h2_s[] = "h2", h1_s[] = "h1", u_s[] = "u", tag_s[] = "daily", home_s[] = "/home/u";
	char other_s[] = "/other";
	char *h2 = h2_s, *tag = tag_s, *path = home_s;
	bool used[256] = {false};
	int amb = -1;

	for (int i = 0; i < 17; i++) {
		struct kl_snapshot s = {0};
		char *paths[] = {path};
		char *tags[] = {tag};

		s.kind = KL_SNAP_FILES;
		s.time_ns = 1000 + i;
		s.time_end_ns = 2000 + i;
		s.host = i % 2 ? h2_s : h1_s;
		s.user = u_s;
		s.paths = paths;
		s.n_paths = 1;
		s.tags = tags;
		s.n_tags = i % 4 == 3;
		s.tree = root;
		assert_int_equal(kl_repo_save_snapshot(f->r, &s, &ids[i]), 0);
		kl_id_hex(&ids[i], hex[i]);
		used[ids[i].b[0]] = true;
	}

	assert_int_equal(kl_snapshot_find(f->r, "latest", NULL, &ref), 0);
	assert_true(kl_id_eq(&ref.id, &ids[16]));
	assert_string_equal(ref.s.host, "h1");
	kl_snapshot_release(&ref.s);

	flt.hosts = &h2;
	flt.n_hosts = 1;
	assert_int_equal(kl_snapshot_find(f->r, "latest", &flt, &ref), 0);
	assert_true(kl_id_eq(&ref.id, &ids[15]));
	assert_true(kl_snap_filter_match(&flt, &ref.s));
	kl_snapshot_release(&ref.s);
	flt.tags = &tag;
	flt.n_tags = 1;
	flt.paths = &path;
	flt.n_paths = 1;
	assert_int_equal(kl_snapshot_find(f->r, "latest", &flt, &ref), 0);
	assert_true(kl_id_eq(&ref.id, &ids[15]));
	kl_snapshot_release(&ref.s);
	flt.hosts = NULL;
	flt.n_hosts = 0;
	assert_int_equal(kl_snapshot_find(f->r, "latest", &flt, &ref), 0);
	assert_true(kl_id_eq(&ref.id, &ids[15]));
	kl_snapshot_release(&ref.s);
	path = other_s;
	assert_int_equal(kl_snapshot_find(f->r, "latest", &flt, &ref), -KL_ENOTFOUND);

	/* prefixes: 8 digits, upper case, the whole id */
	memcpy(spec, hex[3], 7);
	spec[7] = 0;
	assert_int_equal(kl_snapshot_find(f->r, spec, NULL, &ref), 0);
	assert_true(kl_id_eq(&ref.id, &ids[3]));
	assert_int_equal(ref.s.time_ns, 1003);
	kl_snapshot_release(&ref.s);
	for (int i = 0; i < 7; i++)
		spec[i] = (char)(spec[i] >= 'a' ? spec[i] - 'a' + 'A' : spec[i]);
	assert_int_equal(kl_snapshot_find(f->r, spec, NULL, &ref), 0);
	assert_true(kl_id_eq(&ref.id, &ids[3]));
	kl_snapshot_release(&ref.s);
	assert_int_equal(kl_snapshot_find(f->r, hex[9], NULL, &ref), 0);
	assert_true(kl_id_eq(&ref.id, &ids[9]));
	kl_snapshot_release(&ref.s);

	/* 17 ids, 16 first digits: some digit is shared */
	for (int i = 0; i < 17 && amb < 0; i++)
		for (int j = i + 1; j < 17; j++)
			if (hex[i][0] == hex[j][0])
				amb = i;
	assert_true(amb >= 0);
	spec[0] = hex[amb][0];
	spec[1] = 0;
	kl_repo_clear_err(f->r);
	assert_int_equal(kl_snapshot_find(f->r, spec, NULL, &ref), -KL_EUSAGE);
	kl_repo_take_err(f->r, &err, NULL);
	assert_non_null(strstr(err.msg, "ambiguous"));

	/* a prefix nobody has, a whole id nobody has, junk */
	for (int i = 0; i < 256; i++) {
		if (!used[i]) {
			snprintf(spec, sizeof(spec), "%02x", i);
			break;
		}
	}
	assert_int_equal(kl_snapshot_find(f->r, spec, NULL, &ref), -KL_ENOTFOUND);
	{
		char whole[2 * KL_ID_LEN + 1];

		memset(whole, '0', 2 * KL_ID_LEN);
		whole[2 * KL_ID_LEN] = 0;
		if (strcmp(whole, hex[0]))
			assert_int_equal(kl_snapshot_find(f->r, whole, NULL, &ref), -KL_ENOTFOUND);
	}
	assert_int_equal(kl_snapshot_find(f->r, "lastest", NULL, &ref), -KL_ENOTFOUND);
	assert_int_equal(kl_snapshot_find(f->r, "", NULL, &ref), -KL_EUSAGE);
}

/*
 * Creates TOP/file with the xattr user.keel.real (when the file system
 * takes user xattrs: *has_xattrs) and returns a descriptor of TOP.
 */
static int file_with_xattr(struct fx *f, bool *has_xattrs)
{
	char path[600];
	int fd;

	snprintf(path, sizeof(path), "%s/file", f->top);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	close(fd);
	*has_xattrs = setxattr(path, "user.keel.real", "r", 1, 0) == 0;
	fd = open(f->top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	return fd;
}

/*
 * kl_node_from_stat takes xattrs and a symlink's target from the parent
 * snapshot's node when the inode and ctime are the same (they cannot have
 * changed), and reads them when the ctime differs.
 */
static void node_from_stat_reuses_unchanged_inode_state(void **state)
{
	struct fx *f = *state;
	struct kl_xattr x = {
		.name = (char *)"user.keel.recorded", .value = (uint8_t *)"v", .value_len = 1};
	struct kl_node prev = {0}, n = {0};
	struct stat st;
	char path[600];
	int dfd;
	bool has_xattrs;

	dfd = file_with_xattr(f, &has_xattrs);
	snprintf(path, sizeof(path), "%s/link", f->top);
	assert_int_equal(symlink("target", path), 0);

	/* same inode and ctime: what prev recorded, not what is on disk */
	assert_int_equal(fstatat(dfd, "file", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(kl_node_from_stat(dfd, "file", &st, NULL, NULL, &prev), 0);
	kl_node_release(&prev);
	memset(&prev, 0, sizeof(prev));
	prev.type = KL_NODE_FILE;
	prev.inode = st.st_ino;
	prev.ctime_sec = st.st_ctim.tv_sec;
	prev.ctime_nsec = (uint32_t)st.st_ctim.tv_nsec;
	prev.xattrs = &x;
	prev.n_xattrs = 1;
	assert_int_equal(kl_node_from_stat(dfd, "file", &st, NULL, &prev, &n), 0);
	assert_int_equal(n.n_xattrs, 1);
	assert_string_equal(n.xattrs[0].name, "user.keel.recorded");
	assert_int_equal(n.xattrs[0].value_len, 1);
	assert_memory_equal(n.xattrs[0].value, "v", 1);
	kl_node_release(&n);

	/* another ctime: read from disk */
	memset(&n, 0, sizeof(n));
	prev.ctime_nsec ^= 1;
	assert_int_equal(kl_node_from_stat(dfd, "file", &st, NULL, &prev, &n), 0);
	assert_int_equal(n.n_xattrs, has_xattrs ? 1 : 0);
	if (has_xattrs)
		assert_string_equal(n.xattrs[0].name, "user.keel.real");
	kl_node_release(&n);

	/* a symlink's target likewise */
	memset(&n, 0, sizeof(n));
	assert_int_equal(fstatat(dfd, "link", &st, AT_SYMLINK_NOFOLLOW), 0);
	prev.type = KL_NODE_SYMLINK;
	prev.inode = st.st_ino;
	prev.ctime_sec = st.st_ctim.tv_sec;
	prev.ctime_nsec = (uint32_t)st.st_ctim.tv_nsec;
	prev.link = (uint8_t *)"recorded";
	prev.link_len = 8;
	prev.n_xattrs = 0;
	assert_int_equal(kl_node_from_stat(dfd, "link", &st, NULL, &prev, &n), 0);
	assert_int_equal(n.link_len, 8);
	assert_memory_equal(n.link, "recorded", 8);
	kl_node_release(&n);
	memset(&n, 0, sizeof(n));
	prev.inode ^= 1;
	assert_int_equal(kl_node_from_stat(dfd, "link", &st, NULL, &prev, &n), 0);
	assert_int_equal(n.link_len, 6);
	assert_memory_equal(n.link, "target", 6);
	kl_node_release(&n);
	close(dfd);
}

/*
 * A node whose xattrs could not be read whole (KL_NODE_ATTRS_PARTIAL) is
 * no stand-in for the disk, even with the same inode and ctime: what the
 * failed read left out would be left out of every later snapshot.
 */
static void node_from_stat_rereads_after_attr_error(void **state)
{
	struct fx *f = *state;
	struct kl_xattr x = {
		.name = (char *)"user.keel.partial", .value = (uint8_t *)"p", .value_len = 1};
	struct kl_node prev = {0}, n = {0};
	struct stat st;
	int fd;
	bool has_xattrs;

	fd = file_with_xattr(f, &has_xattrs);
	assert_int_equal(fstatat(fd, "file", &st, AT_SYMLINK_NOFOLLOW), 0);
	prev.type = KL_NODE_FILE;
	prev.inode = st.st_ino;
	prev.ctime_sec = st.st_ctim.tv_sec;
	prev.ctime_nsec = (uint32_t)st.st_ctim.tv_nsec;
	prev.xattrs = &x;
	prev.n_xattrs = 1;
	prev.flags = KL_NODE_ATTRS_PARTIAL;
	assert_int_equal(kl_node_from_stat(fd, "file", &st, NULL, &prev, &n), 0);
	assert_int_equal(n.n_xattrs, has_xattrs ? 1 : 0);
	if (has_xattrs)
		assert_string_equal(n.xattrs[0].name, "user.keel.real");
	assert_false(n.flags & KL_NODE_ATTRS_PARTIAL);
	kl_node_release(&n);
	close(fd);
}

/* The parent's xattrs stand in only where the kernel keeps the ctime. */
static void node_fs_keeps_ctime(void **state)
{
	(void)state;
	assert_true(kl_node_fs_keeps_ctime(0xEF53UL));	    /* ext4 */
	assert_true(kl_node_fs_keeps_ctime(0x58465342UL));  /* xfs */
	assert_true(kl_node_fs_keeps_ctime(0x9123683EUL));  /* btrfs */
	assert_true(kl_node_fs_keeps_ctime(0x01021994UL));  /* tmpfs */
	assert_true(kl_node_fs_keeps_ctime(0x6969UL));	    /* nfs */
	assert_false(kl_node_fs_keeps_ctime(0x65735546UL)); /* fuse */
	assert_false(kl_node_fs_keeps_ctime(0xFF534D42UL)); /* cifs */
	assert_false(kl_node_fs_keeps_ctime(0xFE534D42UL)); /* smb2 */
	assert_false(kl_node_fs_keeps_ctime(0x4D44UL));	    /* vfat */
	assert_false(kl_node_fs_keeps_ctime(0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(restore_everything, setup, teardown),
		cmocka_unit_test_setup_teardown(node_from_stat_reuses_unchanged_inode_state, setup,
						teardown),
		cmocka_unit_test_setup_teardown(node_from_stat_rereads_after_attr_error, setup,
						teardown),
		cmocka_unit_test(node_fs_keeps_ctime),
		cmocka_unit_test_setup_teardown(restore_single_thread_verify, setup, teardown),
		cmocka_unit_test_setup_teardown(restore_subpaths, setup, teardown),
		cmocka_unit_test_setup_teardown(restore_include_exclude, setup, teardown),
		cmocka_unit_test_setup_teardown(restore_replaces_what_is_in_the_way, setup,
						teardown),
		cmocka_unit_test_setup_teardown(restore_reports_damaged_data, setup, teardown),
		cmocka_unit_test_setup_teardown(restore_damaged_names, setup, teardown),
		cmocka_unit_test_setup_teardown(restore_empty_snapshot_warns, setup, teardown),
		cmocka_unit_test_setup_teardown(restore_large_file_in_parts, setup, teardown),
		cmocka_unit_test_setup_teardown(restore_deep_tree, setup, teardown),
		cmocka_unit_test_setup_teardown(restore_dir_metadata_after_worker_creations, setup,
						teardown),
		cmocka_unit_test_setup_teardown(walk_and_lookup, setup, teardown),
		cmocka_unit_test_setup_teardown(diff_two_trees, setup, teardown),
		cmocka_unit_test_setup_teardown(snapshot_find, setup, teardown),
	};

	if (kl_crypto_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
