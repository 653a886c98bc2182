/*
 * Unit tests for keel mirror's state object (src/format/mirror.c): round
 * trip, canonical bytes, and what the decoder refuses. Decoders get
 * exact-size heap copies so that a read past the input is an ASan error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "keel/format.h"

static int decode_exact(const uint8_t *p, size_t n, struct kl_mirror_state *ret)
{
	uint8_t *copy = malloc(n ? n : 1);
	int r;

	assert_non_null(copy);
	memcpy(copy, p, n);
	r = kl_mirror_state_decode(copy, n, ret);
	free(copy);
	return r;
}

static void state_round_trip(void **unused)
{
	struct kl_mirror_missing m[2] = {
		{.type = 2, .since_ns = 1733450000000000000},
		{.type = 4, .since_ns = 0},
	};
	struct kl_mirror_state s = {.time_ns = 5,
				    .listed_ns = 3,
				    .complete_ns = 5,
				    .complete_listed_ns = 3,
				    .missing = m,
				    .n_missing = 2,
				    .lock_mode = KL_LOCK_COMPLIANCE,
				    .lock_days = 30};
	struct kl_buf a = KL_BUF_INIT(1 << 20), b = KL_BUF_INIT(1 << 20);
	struct kl_mirror_state t;

	(void)unused;
	memset(m[0].id.b, 0xab, KL_ID_LEN);
	memset(m[1].id.b, 0x01, KL_ID_LEN);
	assert_int_equal(kl_mirror_state_encode(&s, &a), 0);
	assert_int_equal(decode_exact(a.data, a.len, &t), 0);
	assert_int_equal(t.time_ns, 5);
	assert_int_equal(t.listed_ns, 3);
	assert_int_equal(t.complete_ns, 5);
	assert_int_equal(t.complete_listed_ns, 3);
	assert_int_equal(t.n_missing, 2);
	assert_int_equal(t.missing[0].type, 2);
	assert_memory_equal(t.missing[0].id.b, m[0].id.b, KL_ID_LEN);
	assert_int_equal(t.missing[0].since_ns, 1733450000000000000);
	assert_int_equal(t.missing[1].type, 4);
	assert_int_equal(t.lock_mode, KL_LOCK_COMPLIANCE);
	assert_int_equal(t.lock_days, 30);
	assert_int_equal(kl_mirror_state_encode(&t, &b), 0);
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.data, b.data, a.len);
	/* every truncation is refused, or decodes to fewer entries: never read past */
	for (size_t n = 0; n < a.len; n++) {
		struct kl_mirror_state u;

		if (decode_exact(a.data, n, &u) == 0)
			kl_mirror_state_release(&u);
	}
	kl_mirror_state_release(&t);
	kl_buf_release(&a);
	kl_buf_release(&b);
}

static void state_empty_and_golden(void **unused)
{
	static const uint8_t v1[] = {0x08, 0x01};
	struct kl_mirror_state s = {0}, t;
	struct kl_buf a = KL_BUF_INIT(1 << 10);

	(void)unused;
	assert_int_equal(kl_mirror_state_encode(&s, &a), 0);
	assert_int_equal(a.len, sizeof(v1));
	assert_memory_equal(a.data, v1, sizeof(v1));
	assert_int_equal(decode_exact(v1, sizeof(v1), &t), 0);
	assert_int_equal(t.n_missing, 0);
	kl_mirror_state_release(&t);
	kl_buf_release(&a);
}

static void state_decode_rejects(void **unused)
{
	/* no version; version 2; a Missing without id; one of type 5; type 0 (config) */
	static const uint8_t no_version[] = {0x10, 0x02};
	static const uint8_t newer[] = {0x08, 0x02};
	static const uint8_t no_id[] = {0x08, 0x01, 0x32, 0x02, 0x08, 0x02};
	uint8_t bad_type[2 + 2 + 2 + 34] = {0x08, 0x01, 0x32, 36, 0x08, 0x05, 0x12, 32};
	struct kl_mirror_state t;

	(void)unused;
	assert_int_equal(decode_exact(no_version, sizeof(no_version), &t), -KL_ECORRUPT);
	assert_int_equal(decode_exact(newer, sizeof(newer), &t), -KL_EVERSION);
	assert_int_equal(decode_exact(no_id, sizeof(no_id), &t), -KL_ECORRUPT);
	assert_int_equal(decode_exact(bad_type, sizeof(bad_type), &t), -KL_ECORRUPT);
	bad_type[5] = 0x00;
	assert_int_equal(decode_exact(bad_type, sizeof(bad_type), &t), -KL_ECORRUPT);
	bad_type[5] = 0x01;
	assert_int_equal(decode_exact(bad_type, sizeof(bad_type), &t), 0);
	kl_mirror_state_release(&t);
	/* Object Lock: a mode without days, days without a mode, mode 3 */
	static const uint8_t mode_alone[] = {0x08, 0x01, 0x38, 0x01};
	static const uint8_t days_alone[] = {0x08, 0x01, 0x40, 0x05};
	static const uint8_t mode3[] = {0x08, 0x01, 0x38, 0x03, 0x40, 0x05};
	static const uint8_t locked[] = {0x08, 0x01, 0x38, 0x02, 0x40, 0x05};
	assert_int_equal(decode_exact(mode_alone, sizeof(mode_alone), &t), -KL_ECORRUPT);
	assert_int_equal(decode_exact(days_alone, sizeof(days_alone), &t), -KL_ECORRUPT);
	assert_int_equal(decode_exact(mode3, sizeof(mode3), &t), -KL_ECORRUPT);
	assert_int_equal(decode_exact(locked, sizeof(locked), &t), 0);
	assert_int_equal(t.lock_mode, KL_LOCK_COMPLIANCE);
	assert_int_equal(t.lock_days, 5);
	kl_mirror_state_release(&t);
}

static void state_encode_rejects(void **unused)
{
	struct kl_mirror_missing m = {.type = 6};
	struct kl_mirror_state s = {.missing = &m, .n_missing = 1};
	struct kl_buf a = KL_BUF_INIT(1 << 10);

	(void)unused;
	assert_int_equal(kl_mirror_state_encode(&s, &a), -EINVAL);
	assert_int_equal(a.len, 0);
	kl_buf_release(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(state_round_trip),
		cmocka_unit_test(state_empty_and_golden),
		cmocka_unit_test(state_decode_rejects),
		cmocka_unit_test(state_encode_rejects),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
