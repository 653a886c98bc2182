/*
 * The overlay file (src/image/overlay.c) and the export (export.c) of
 * keel image serve: the header round-trips and refuses damage; writes are
 * named by the bitmap only after a flush, and survive a reopen; an overlay
 * of another image is refused; an export of a real image snapshot reads
 * the image's bytes (through the cache, read-ahead on), writes only to the
 * overlay, merges partial blocks, and reports zero chunks as holes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fixture.h"
#include "image/image-internal.h"
#include "keel/fs.h"
#include "keel/image.h"

#define K 65536u

static struct kl_image_overlay_hdr test_hdr(uint64_t size)
{
	struct kl_image_overlay_hdr h = {.block_size = 4096, .image_size = size};

	memset(h.snapshot.b, 7, sizeof(h.snapshot.b));
	snprintf(h.name, sizeof(h.name), "disk.img");
	return h;
}

static void header_round_trips_and_refuses_damage(void **state)
{
	struct kl_image_overlay_hdr h = test_hdr(1000000), d;
	uint8_t b[KL_IMAGE_OVERLAY_HDR_LEN];

	(void)state;
	kl_image_overlay_hdr_encode(&h, b);
	assert_int_equal(kl_image_overlay_hdr_decode(b, sizeof(b), &d), 0);
	assert_int_equal(d.block_size, 4096);
	assert_int_equal(d.image_size, 1000000);
	assert_string_equal(d.name, "disk.img");
	assert_memory_equal(d.snapshot.b, h.snapshot.b, KL_ID_LEN);
	assert_true(d.data_offset >= KL_IMAGE_OVERLAY_HDR_LEN + 31);
	assert_int_equal(d.data_offset % 4096, 0);
	assert_int_equal(kl_image_overlay_hdr_decode(b, sizeof(b) - 1, &d), -KL_ECORRUPT);
	b[100] ^= 1; /* in the name's padding: the checksum notices */
	assert_int_equal(kl_image_overlay_hdr_decode(b, sizeof(b), &d), -KL_ECORRUPT);
}

static void writes_count_after_a_flush(void **state)
{
	struct kl_image_overlay_hdr h = test_hdr(10 * 4096 + 100), other = h;
	struct kl_image_overlay *o;
	struct kl_err err = {0};
	char dir[256], path[300];
	uint8_t blk[4096], got[4096];

	(void)state;
	assert_int_equal(fixture_tmpdir("overlay", dir, sizeof(dir)), 0);
	snprintf(path, sizeof(path), "%s/ov", dir);
	memset(blk, 0x5a, sizeof(blk));
	assert_int_equal(kl_image_overlay_open(path, &h, &o, &err), 0);
	assert_false(kl_img_overlay_has(o, 2));
	assert_int_equal(kl_img_overlay_write(o, blk, sizeof(blk), 2 * 4096), 0);
	assert_true(kl_img_overlay_has(o, 2));
	kl_image_overlay_free(o); /* no flush: the bitmap on disk does not name it */
	assert_int_equal(kl_image_overlay_open(path, &h, &o, &err), 0);
	assert_false(kl_img_overlay_has(o, 2));
	assert_int_equal(kl_img_overlay_write(o, blk, sizeof(blk), 2 * 4096), 0);
	assert_int_equal(kl_img_overlay_write(o, blk, 100, 10 * 4096), 0); /* the short last */
	assert_int_equal(kl_img_overlay_flush(o), 0);
	kl_image_overlay_free(o);
	assert_int_equal(kl_image_overlay_open(path, &h, &o, &err), 0);
	assert_true(kl_img_overlay_has(o, 2));
	assert_true(kl_img_overlay_has(o, 10));
	assert_false(kl_img_overlay_has(o, 3));
	assert_int_equal(kl_img_overlay_read(o, got, sizeof(got), 2 * 4096), 0);
	assert_memory_equal(got, blk, sizeof(got));
	kl_image_overlay_free(o);
	/* another snapshot's image, another size: refused */
	other.snapshot.b[0] ^= 1;
	assert_int_equal(kl_image_overlay_open(path, &other, &o, &err), -KL_EUSAGE);
	other = h;
	other.image_size++;
	assert_int_equal(kl_image_overlay_open(path, &other, &o, &err), -KL_EUSAGE);
	/* other blocks: the bitmap, sized for the blocks asked for, would be overrun */
	other = h;
	other.block_size = 8192;
	assert_int_equal(kl_image_overlay_open(path, &other, &o, &err), -KL_EUSAGE);
	fixture_rm_rf(dir);
}

/* An image of 5 chunks and a short one: data, zeros, data, zeros, data, data. */
static void make_image(const char *path, uint8_t *img, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	kl_random(img, size);
	memset(img + 1 * K, 0, K);
	memset(img + 3 * K, 0, K);
	assert_int_equal(kl_fs_pwrite_full(fd, img, size, 0), 0);
	close(fd);
}

static void export_reads_the_image_and_writes_the_overlay(void **state)
{
	size_t size = 5 * K + 1000;
	_cleanup_free_ uint8_t *img = kl_malloc(size), *got = kl_malloc(size);
	struct kl_image_backup_opts bo = {.chunk_size = K, .threads = 2};
	struct kl_image_export_opts eo = {.cache_bytes = 2 * K, .readahead = 4, .fetchers = 2};
	struct kl_image_backup_result res;
	struct kl_image_overlay_hdr h = {.block_size = 4096};
	struct kl_image_export *e;
	struct kl_snapshot s = {0};
	struct kl_tree t = {0};
	struct kl_repo *r;
	struct kl_err err = {0};
	char dir[256], repo[300], path[300], ov[300], *src;
	uint64_t run;
	bool zero;

	(void)state;
	assert_true(kl_crypto_init() >= 0);
	assert_int_equal(fixture_tmpdir("export", dir, sizeof(dir)), 0);
	snprintf(repo, sizeof(repo), "%s/repo", dir);
	snprintf(path, sizeof(path), "%s/disk.img", dir);
	snprintf(ov, sizeof(ov), "%s/ov", dir);
	make_image(path, img, size);
	assert_int_equal(fixture_repo_create(repo, NULL, NULL, &r), 0);
	assert_int_equal(kl_repo_load_index(r), 0);
	src = path;
	bo.sources = &src;
	bo.n_sources = 1;
	assert_int_equal(kl_image_backup(r, &bo, &res), 0);
	assert_int_equal(res.chunks, 6);
	assert_int_equal(kl_repo_load_snapshot(r, &res.id, &s), 0);
	assert_int_equal(kl_repo_read_tree(r, &s.tree, &t), 0);
	assert_int_equal(t.n, 1);

	h.image_size = size;
	h.snapshot = res.id;
	snprintf(h.name, sizeof(h.name), "disk.img");
	assert_int_equal(kl_image_overlay_open(ov, &h, &eo.overlay, &err), 0);
	assert_int_equal(kl_image_export_open(r, &t.nodes[0], K, &eo, &e), 0);
	assert_int_equal(kl_image_export_start(e), 0);
	assert_int_equal(kl_image_export_size(e), size);
	assert_true(kl_image_export_writable(e));
	/* in small pieces, sequentially: the cache and the read-ahead at work */
	for (size_t off = 0; off < size; off += 3000) {
		size_t n = size - off < 3000 ? size - off : 3000;

		assert_int_equal(kl_image_export_read(e, got + off, n, off), 0);
	}
	assert_memory_equal(got, img, size);
	assert_int_equal(kl_image_export_read(e, got, 2, size - 1), -EINVAL);
	kl_image_export_extent(e, 0, size, &run, &zero);
	assert_false(zero);
	assert_int_equal(run, K);
	kl_image_export_extent(e, K, size, &run, &zero);
	assert_true(zero);
	assert_int_equal(run, K);

	/* a write inside one block, and one over a zero chunk's blocks */
	memset(img + 100, 0xab, 50);
	assert_int_equal(kl_image_export_write(e, img + 100, 50, 100), 0);
	memset(img + 3 * K + 8292, 0xcd, 5000);
	assert_int_equal(kl_image_export_write(e, img + 3 * K + 8292, 5000, 3 * K + 8292), 0);
	assert_int_equal(kl_image_export_flush(e), 0);
	assert_int_equal(kl_image_export_read(e, got, size, 0), 0);
	assert_memory_equal(got, img, size);
	kl_image_export_extent(e, 3 * K, K, &run, &zero);
	assert_true(zero);
	assert_int_equal(run, 8192); /* then the written blocks are data */
	kl_image_export_free(e);

	/* the repository's image is unchanged: a read-only export reads the original */
	eo.overlay = NULL;
	assert_int_equal(kl_image_export_open(r, &t.nodes[0], K, &eo, &e), 0);
	assert_false(kl_image_export_writable(e));
	assert_int_equal(kl_image_export_write(e, img, 1, 0), -EROFS);
	assert_int_equal(kl_image_export_read(e, got, 200, 0), 0);
	assert_true(memcmp(got + 100, img + 100, 50) != 0);
	kl_image_export_free(e);
	kl_tree_release(&t);
	kl_snapshot_release(&s);
	kl_image_backup_result_release(&res);
	kl_repo_free(r);
	fixture_rm_rf(dir);
}

/*
 * kl_image_fs_on: only a block device can hold a mounted file system (the
 * positive case needs one: t8027 has it, in a VM)
 */
static void fs_on_wants_the_block_device(void **state)
{
	(void)state;
	assert_int_equal(kl_image_fs_on("/", "/dev/null"), 0);
	assert_int_equal(kl_image_fs_on("/", "/"), 0);
	assert_int_equal(kl_image_fs_on("/", "/nonexistent-keel-test"), -ENOENT);
	assert_int_equal(kl_image_fs_on("/nonexistent-keel-test", "/dev/null"), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(header_round_trips_and_refuses_damage),
		cmocka_unit_test(writes_count_after_a_flush),
		cmocka_unit_test(export_reads_the_image_and_writes_the_overlay),
		cmocka_unit_test(fs_on_wants_the_block_device),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
