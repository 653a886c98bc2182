#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "keel/fs.h"
#include "keel/util.h"

static void buf_grows_and_stays_terminated(void **state)
{
	struct kl_buf b = KL_BUF_INIT(1 << 20);

	assert_int_equal(b.len, 0);
	assert_int_equal(b.data[0], 0);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(kl_buf_addf(&b, "%d,", i), 0);
	assert_int_equal(b.data[b.len], 0);
	assert_true(b.len > 3000);
	assert_memory_equal(b.data, "0,1,2,", 6);
	kl_buf_clear(&b);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.data[0], 0);
	kl_buf_release(&b);
}

static void buf_respects_cap(void **state)
{
	struct kl_buf b = KL_BUF_INIT(100);
	uint8_t big[200] = {0};

	assert_int_equal(kl_buf_add(&b, big, 100), 0);
	assert_int_equal(kl_buf_add(&b, big, 1), -E2BIG);
	assert_int_equal(b.len, 100);
	assert_int_equal(kl_buf_grow(&b, SIZE_MAX), -E2BIG);
	kl_buf_release(&b);
}

static void buf_detach_transfers_ownership(void **state)
{
	struct kl_buf b = KL_BUF_INIT(1000);
	size_t len;
	uint8_t *p;

	assert_int_equal(kl_buf_addstr(&b, "hello"), 0);
	p = kl_buf_detach(&b, &len);
	assert_int_equal(len, 5);
	assert_string_equal((char *)p, "hello");
	assert_int_equal(b.len, 0);
	kl_free(p);
	kl_buf_release(&b);
}

static void varint_round_trip(void **state)
{
	static const uint64_t vals[] = {
		0, 1, 127, 128, 255, 16383, 16384, UINT32_MAX, (uint64_t)1 << 63, UINT64_MAX};
	struct kl_buf b = KL_BUF_INIT(1000);

	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		uint64_t v;
		int n;

		kl_buf_clear(&b);
		assert_int_equal(kl_varint_put(&b, vals[i]), 0);
		n = kl_varint_get(b.data, b.len, &v);
		assert_int_equal(n, (int)b.len);
		assert_true(v == vals[i]);
		/* every truncation is an error */
		for (size_t cut = 0; cut < b.len; cut++)
			assert_int_equal(kl_varint_get(b.data, cut, &v), -KL_ECORRUPT);
	}
	/* an 11-byte varint and a 10th byte carrying more than 1 bit are rejected */
	{
		uint8_t over[11];
		uint64_t v;

		memset(over, 0x80, sizeof(over));
		over[10] = 0;
		assert_int_equal(kl_varint_get(over, sizeof(over), &v), -KL_ECORRUPT);
		memset(over, 0xff, 9);
		over[9] = 2;
		assert_int_equal(kl_varint_get(over, 10, &v), -KL_ECORRUPT);
	}
	kl_buf_release(&b);
}

static void hex_round_trip_and_rejects(void **state)
{
	uint8_t in[4] = {0x00, 0xab, 0x7f, 0xff}, out[4];
	char hex[9];

	kl_hex_encode(in, 4, hex);
	assert_string_equal(hex, "00ab7fff");
	assert_int_equal(kl_hex_decode(hex, 4, out), 0);
	assert_memory_equal(in, out, 4);
	assert_int_equal(kl_hex_decode("00ab7ff", 4, out), -EINVAL);
	assert_int_equal(kl_hex_decode("00ab7fgf", 4, out), -EINVAL);
}

static void atomic_write_replaces_or_refuses(void **state)
{
	char dir[] = "/tmp/keel-test-util.XXXXXX";
	struct kl_buf b = KL_BUF_INIT(1 << 20);
	int dfd;

	assert_non_null(mkdtemp(dir));
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	assert_true(dfd >= 0);
	assert_int_equal(kl_fs_write_atomic(dfd, "obj", "one", 3, 0644, KL_FS_NOREPLACE), 0);
	assert_int_equal(kl_fs_write_atomic(dfd, "obj", "two", 3, 0644, KL_FS_NOREPLACE), -EEXIST);
	assert_int_equal(kl_fs_read_all(dfd, "obj", 100, &b), 0);
	assert_string_equal((char *)b.data, "one");
	assert_int_equal(kl_fs_write_atomic(dfd, "obj", "three", 5, 0644, 0), 0);
	kl_buf_clear(&b);
	assert_int_equal(kl_fs_read_all(dfd, "obj", 100, &b), 0);
	assert_string_equal((char *)b.data, "three");
	kl_buf_clear(&b);
	assert_int_equal(kl_fs_read_all(dfd, "obj", 2, &b), -E2BIG);
	/* no temporary file is left behind: removing obj leaves the directory empty */
	assert_int_equal(unlinkat(dfd, "obj", 0), 0);
	close(dfd);
	assert_int_equal(rmdir(dir), 0);
	kl_buf_release(&b);
}

static void alloc_failure_injection(void **state)
{
	struct kl_buf b = KL_BUF_INIT(1 << 20);

	kl_alloc_fail_after(1);
	assert_int_equal(kl_buf_addstr(&b, "x"), -ENOMEM);
	assert_int_equal(kl_buf_addstr(&b, "x"), 0);
	kl_alloc_fail_after(0);
	kl_buf_release(&b);
}

static void array_grows_by_doubling(void **state)
{
	int *v = NULL;
	size_t cap = 0;

	for (size_t n = 0; n < 100; n++) {
		assert_int_equal(kl_array_grow(&v, &cap, n, sizeof(*v), 4), 0);
		assert_true(cap > n);
		v[n] = (int)n;
	}
	assert_int_equal(cap, 128);
	assert_int_equal(v[99], 99);
	/* a size that would overflow is refused and leaves the array alone */
	assert_int_equal(kl_array_grow(&v, &cap, cap, SIZE_MAX / 64, 4), -ENOMEM);
	assert_int_equal(cap, 128);
	kl_free(v);
}

static void errors_have_messages(void **state)
{
	struct kl_err e = {0};

	assert_string_equal(kl_strerror(-KL_EBADPASS), "wrong password or no key found");
	assert_string_equal(kl_strerror(-ENOENT), strerror(ENOENT));
	assert_int_equal(kl_fail(&e, -KL_ECORRUPT, "pack '%s'", "ab"), -KL_ECORRUPT);
	assert_int_equal(kl_fail(&e, -EIO, "second"), -EIO);
	assert_string_equal(e.msg, "pack 'ab'"); /* the first message is kept */
}

static void percent_parses_and_rejects(void **state)
{
	static const struct {
		const char *s;
		int rc;
		unsigned permille;
	} cases[] = {
		{"0%", 0, 0},
		{"0", 0, 0},
		{"0.0%", 0, 0},
		{"100%", 0, 1000},
		{"100", 0, 1000},
		{"100.00%", 0, 1000},
		{"5.5%", 0, 55},
		{"5", 0, 50},
		{"5%", 0, 50},
		{"05%", 0, 50},
		{"33.33%", 0, 333},
		{"33.35%", 0, 334},  /* to the nearest tenth, halves up */
		{"0.01%", 0, 1},     /* above zero stays above zero */
		{"0.0001%", 0, 1},   /* ... however small */
		{"99.99%", 0, 1000}, /* rounds up to all */
		{"-1%", -KL_EUSAGE, 0},
		{"+5%", -KL_EUSAGE, 0},
		{"101%", -KL_EUSAGE, 0},
		{"100.01%", -KL_EUSAGE, 0},
		{"100.0001", -KL_EUSAGE, 0},
		{"abc", -KL_EUSAGE, 0},
		{"%", -KL_EUSAGE, 0},
		{"", -KL_EUSAGE, 0},
		{".5%", -KL_EUSAGE, 0},
		{"5.%", -KL_EUSAGE, 0},
		{"5%%", -KL_EUSAGE, 0},
		{"5% ", -KL_EUSAGE, 0},
		{" 5%", -KL_EUSAGE, 0},
		{"5x", -KL_EUSAGE, 0},
		{"5%x", -KL_EUSAGE, 0},
		{"5,5%", -KL_EUSAGE, 0},
		{"1e1%", -KL_EUSAGE, 0},
		{"inf", -KL_EUSAGE, 0},
		{"nan%", -KL_EUSAGE, 0},
		{"0x10", -KL_EUSAGE, 0},
		{"18446744073709551617%", -KL_EUSAGE, 0},
		{"99999999999999999999999999999999999999", -KL_EUSAGE, 0},
		{"1.00000000000000000000000000000000001%", 0, 10},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned v = 4242;
		int rc = kl_parse_percent(cases[i].s, &v);

		if (rc != cases[i].rc)
			fail_msg("'%s': %d, want %d", cases[i].s, rc, cases[i].rc);
		if (v != (rc < 0 ? 4242 : cases[i].permille))
			fail_msg("'%s': %u per mille, want %u", cases[i].s, v, cases[i].permille);
	}
	assert_int_equal(kl_parse_percent(NULL, &(unsigned){0}), -KL_EUSAGE);
}

static void uint_and_size_parse_and_reject(void **state)
{
	static const struct {
		const char *s;
		int rc;
		uint64_t v;
	} sizes[] = {
		{"0", 0, 0},
		{"4096", 0, 4096},
		{"10k", 0, 10240},
		{"10K", 0, 10240},
		{"10KB", 0, 10240},
		{"10KiB", 0, 10240},
		{"10Kb", 0, 10240},
		{"3m", 0, 3ull << 20},
		{"1G", 0, 1ull << 30},
		{"2T", 0, 2ull << 40},
		{"18446744073709551615", 0, UINT64_MAX},
		{"16777215T", 0, 16777215ull << 40},
		{"16777216T", -KL_EUSAGE, 0}, /* 2^64: too large */
		{"18446744073709551616", -KL_EUSAGE, 0},
		{"99999999999999999999999", -KL_EUSAGE, 0},
		{"-1", -KL_EUSAGE, 0}, /* strtoull would take it as 2^64 - 1 */
		{" 5", -KL_EUSAGE, 0},
		{"+5", -KL_EUSAGE, 0},
		{"5 ", -KL_EUSAGE, 0},
		{"", -KL_EUSAGE, 0},
		{"K", -KL_EUSAGE, 0},
		{"5P", -KL_EUSAGE, 0},
		{"5KK", -KL_EUSAGE, 0},
		{"5KiBs", -KL_EUSAGE, 0},
		{"5.5M", -KL_EUSAGE, 0},
		{"0x10", -KL_EUSAGE, 0},
		{"5\xcb", -KL_EUSAGE, 0},
	};
	uint64_t v;

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		int rc;

		v = 4242;
		rc = kl_parse_size(sizes[i].s, &v);
		if (rc != sizes[i].rc)
			fail_msg("size '%s': %d, want %d", sizes[i].s, rc, sizes[i].rc);
		if (v != (rc < 0 ? 4242 : sizes[i].v))
			fail_msg("size '%s': %llu, want %llu", sizes[i].s, (unsigned long long)v,
				 (unsigned long long)sizes[i].v);
	}
	assert_int_equal(kl_parse_size(NULL, &v), -KL_EUSAGE);

	assert_int_equal(kl_parse_uint("7", 1, 10, &v), 0);
	assert_int_equal(v, 7);
	assert_int_equal(kl_parse_uint("1", 1, 10, &v), 0);
	assert_int_equal(kl_parse_uint("10", 1, 10, &v), 0);
	assert_int_equal(kl_parse_uint("0", 1, 10, &v), -KL_EUSAGE);
	assert_int_equal(kl_parse_uint("11", 1, 10, &v), -KL_EUSAGE);
	assert_int_equal(kl_parse_uint("-1", 0, UINT64_MAX, &v), -KL_EUSAGE);
	assert_int_equal(kl_parse_uint(" 1", 0, UINT64_MAX, &v), -KL_EUSAGE);
	assert_int_equal(kl_parse_uint("1K", 0, UINT64_MAX, &v), -KL_EUSAGE);
	assert_int_equal(kl_parse_uint("18446744073709551615", 0, UINT64_MAX, &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(kl_parse_uint("18446744073709551616", 0, UINT64_MAX, &v), -KL_EUSAGE);
	assert_int_equal(kl_parse_uint(NULL, 0, 1, &v), -KL_EUSAGE);
}

/* before 1970 a time with a fraction belongs to the second below (issue 13, 9) */
static void times_floor_and_format_any_year(void **state)
{
	char out[40];

	(void)state;
	assert_int_equal(kl_time_floor_sec(0), 0);
	assert_int_equal(kl_time_floor_sec(1500000000), 1);
	assert_int_equal(kl_time_floor_sec(-1), -1);
	assert_int_equal(kl_time_floor_sec(-1000000000), -1);
	assert_int_equal(kl_time_floor_sec(-1500000000), -2);
	kl_time_format_utc(-1500000000, out);
	assert_string_equal(out, "1969-12-31T23:59:58Z");
	setenv("TZ", "UTC", 1);
	kl_time_format_local_sec(13569465600, out); /* past int64 nanoseconds */
	assert_string_equal(out, "2400-01-01 00:00:00");
	kl_time_format_local_sec(-11673201600, out);
	assert_string_equal(out, "1600-02-03 12:00:00");
}

/* A child's environment, made before fork: env's variables, set's in place of or beside them. */
static void env_with_replaces_and_adds(void **state)
{
	char *env[] = {(char *)"PATH=/bin", (char *)"TZ=Europe/Paris", (char *)"TZX=keep",
		       (char *)"HOME=/root", NULL};
	char *set[] = {(char *)"TZ=UTC0", (char *)"KEEL_JOB=nightly", NULL};
	char *none[] = {NULL};
	char **v = NULL;

	(void)state;
	assert_int_equal(kl_env_with(env, set, &v), 0);
	assert_string_equal(v[0], "PATH=/bin");
	assert_string_equal(v[1], "TZX=keep"); /* a longer name is another variable */
	assert_string_equal(v[2], "HOME=/root");
	assert_string_equal(v[3], "TZ=UTC0");
	assert_string_equal(v[4], "KEEL_JOB=nightly");
	assert_null(v[5]);
	kl_free(v);
	/* no environment at all, nothing to set */
	assert_int_equal(kl_env_with(NULL, set, &v), 0);
	assert_string_equal(v[0], "TZ=UTC0");
	assert_null(v[2]);
	kl_free(v);
	assert_int_equal(kl_env_with(env, none, &v), 0);
	assert_string_equal(v[1], "TZ=Europe/Paris");
	assert_null(v[4]);
	kl_free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(buf_grows_and_stays_terminated),
		cmocka_unit_test(times_floor_and_format_any_year),
		cmocka_unit_test(buf_respects_cap),
		cmocka_unit_test(buf_detach_transfers_ownership),
		cmocka_unit_test(varint_round_trip),
		cmocka_unit_test(hex_round_trip_and_rejects),
		cmocka_unit_test(atomic_write_replaces_or_refuses),
		cmocka_unit_test(alloc_failure_injection),
		cmocka_unit_test(array_grows_by_doubling),
		cmocka_unit_test(errors_have_messages),
		cmocka_unit_test(percent_parses_and_rejects),
		cmocka_unit_test(env_with_replaces_and_adds),
		cmocka_unit_test(uint_and_size_parse_and_reject),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
