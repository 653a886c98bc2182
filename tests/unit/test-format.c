/*
 * Unit tests for src/format: protobuf primitives, and every message's
 * round trip, canonical bytes, and rejection of malformed input.
 *
 * Decoders are fed exact-size heap copies (decode_exact) so that a read
 * one byte past the input is an ASan error, not a silent pass.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "keel/crypto.h"
#include "keel/format.h"

/* ---- helpers ------------------------------------------------------------ */

static struct kl_id id_of(uint8_t c)
{
	struct kl_id id;

	memset(id.b, c, sizeof(id.b));
	id.b[0] = (uint8_t)(c ^ 0x5a); /* not all bytes equal */
	return id;
}

static uint8_t *dup_exact(const uint8_t *p, size_t n)
{
	uint8_t *q = malloc(n ? n : 1);

	assert_non_null(q);
	if (n)
		memcpy(q, p, n);
	return q;
}

static int tree_decode_exact(const uint8_t *p, size_t n, struct kl_tree *t)
{
	uint8_t *q = dup_exact(p, n);
	int r = kl_tree_decode(q, n, t);

	free(q);
	return r;
}

static int snapshot_decode_exact(const uint8_t *p, size_t n, struct kl_snapshot *s)
{
	uint8_t *q = dup_exact(p, n);
	int r = kl_snapshot_decode(q, n, s);

	free(q);
	return r;
}

static int pack_decode_exact(const uint8_t *p, size_t n, uint64_t data_len,
			     struct kl_pack_header *h)
{
	uint8_t *q = dup_exact(p, n);
	int r = kl_pack_header_decode(q, n, data_len, h);

	free(q);
	return r;
}

static int index_decode_exact(const uint8_t *p, size_t n, struct kl_index_file *f)
{
	uint8_t *q = dup_exact(p, n);
	int r = kl_index_file_decode(q, n, f);

	free(q);
	return r;
}

static int config_decode_exact(const uint8_t *p, size_t n, struct kl_config *c)
{
	uint8_t *q = dup_exact(p, n);
	int r = kl_config_decode(q, n, c);

	free(q);
	return r;
}

static void set_name(struct kl_node *n, const void *name, size_t len)
{
	n->name = kl_memdup(name, len);
	assert_non_null(n->name);
	n->name_len = len;
}

static void add_xattr(struct kl_node *n, const char *name, const void *value, size_t len)
{
	struct kl_xattr *x = kl_realloc(n->xattrs, (n->n_xattrs + 1) * sizeof(*x));

	assert_non_null(x);
	n->xattrs = x;
	x = &n->xattrs[n->n_xattrs++];
	x->name = kl_strdup(name);
	x->value = len ? kl_memdup(value, len) : NULL;
	x->value_len = len;
}

/* A node with every field its type allows set to a non-default value. */
static void full_node(struct kl_node *n, const char *name, enum kl_node_type type)
{
	memset(n, 0, sizeof(*n));
	set_name(n, name, strlen(name));
	n->type = type;
	n->mode = 07755;
	n->uid = 1000;
	n->gid = UINT32_MAX;
	n->user = kl_strdup("alice");
	n->group = kl_strdup("");
	n->size = (uint64_t)1 << 40;
	n->mtime_sec = -5;
	n->mtime_nsec = 999999999;
	n->atime_sec = INT64_MAX;
	n->atime_nsec = 1;
	n->ctime_sec = INT64_MIN;
	n->ctime_nsec = 128;
	n->inode = UINT64_MAX;
	n->dev = 0x801;
	n->nlink = 2;
	n->rdev = 0x10203;
	n->flags = KL_NODE_SPARSE | KL_NODE_CHANGED | (1u << 31);
	add_xattr(n, "security.selinux", "system_u:object_r:etc_t:s0", 26);
	add_xattr(n, "user.empty", NULL, 0);
	switch (type) {
	case KL_NODE_FILE:
		n->n_content = 3;
		n->content = kl_calloc(3, sizeof(struct kl_id));
		n->content[0] = id_of(1);
		n->content[1] = id_of(2);
		n->content[2] = id_of(1);
		break;
	case KL_NODE_DIR:
		n->subtree = id_of(9);
		n->has_subtree = true;
		break;
	case KL_NODE_SYMLINK:
		n->link = kl_memdup("../x\xff", 5);
		n->link_len = 5;
		break;
	default:
		break;
	}
}

/* A node with only the required fields. */
static void min_node(struct kl_node *n, const void *name, size_t len, enum kl_node_type type)
{
	memset(n, 0, sizeof(*n));
	set_name(n, name, len);
	n->type = type;
	if (type == KL_NODE_DIR)
		n->has_subtree = true;
}

static bool opt_str_equal(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

static bool mem_equal(const void *a, size_t alen, const void *b, size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static void assert_node_equal(const struct kl_node *a, const struct kl_node *b)
{
	size_t i;

	assert_true(mem_equal(a->name, a->name_len, b->name, b->name_len));
	assert_int_equal(a->type, b->type);
	assert_int_equal(a->mode, b->mode);
	assert_int_equal(a->uid, b->uid);
	assert_int_equal(a->gid, b->gid);
	assert_true(opt_str_equal(a->user, b->user));
	assert_true(opt_str_equal(a->group, b->group));
	assert_true(a->size == b->size);
	assert_true(a->mtime_sec == b->mtime_sec);
	assert_true(a->atime_sec == b->atime_sec);
	assert_true(a->ctime_sec == b->ctime_sec);
	assert_int_equal(a->mtime_nsec, b->mtime_nsec);
	assert_int_equal(a->atime_nsec, b->atime_nsec);
	assert_int_equal(a->ctime_nsec, b->ctime_nsec);
	assert_true(a->inode == b->inode);
	assert_true(a->dev == b->dev);
	assert_true(a->nlink == b->nlink);
	assert_true(a->rdev == b->rdev);
	assert_true(mem_equal(a->link, a->link_len, b->link, b->link_len));
	assert_int_equal(a->n_content, b->n_content);
	assert_true(mem_equal(a->content, a->n_content * KL_ID_LEN, b->content,
			      b->n_content * KL_ID_LEN));
	assert_int_equal(a->has_subtree, b->has_subtree);
	if (a->has_subtree)
		assert_memory_equal(a->subtree.b, b->subtree.b, KL_ID_LEN);
	assert_int_equal(a->n_xattrs, b->n_xattrs);
	for (i = 0; i < a->n_xattrs; i++) {
		assert_string_equal(a->xattrs[i].name, b->xattrs[i].name);
		assert_true(mem_equal(a->xattrs[i].value, a->xattrs[i].value_len,
				      b->xattrs[i].value, b->xattrs[i].value_len));
	}
	assert_int_equal(a->flags, b->flags);
}

static void assert_tree_equal(const struct kl_tree *a, const struct kl_tree *b)
{
	size_t i;

	assert_int_equal(a->n, b->n);
	for (i = 0; i < a->n; i++)
		assert_node_equal(&a->nodes[i], &b->nodes[i]);
}

static void assert_tree_zero(const struct kl_tree *t)
{
	assert_null(t->nodes);
	assert_int_equal(t->n, 0);
	assert_int_equal(t->cap, 0);
	assert_null(t->more);
	assert_int_equal(t->n_more, 0);
}

/* Top-level field boundaries of a message, as offsets (0 and n included). */
static bool at_field_boundary(const uint8_t *p, size_t n, size_t len)
{
	struct kl_pb_reader rd = {p, n};
	struct kl_pb_field f;

	if (len == 0)
		return true;
	while (kl_pb_next(&rd, &f) > 0)
		if ((size_t)(rd.p - p) == len)
			return true;
	return false;
}

/* Hex string ("08 01 12 ...") to bytes. */
static size_t unhex(const char *s, uint8_t *out, size_t max)
{
	size_t n = 0;

	while (*s) {
		unsigned v;

		if (*s == ' ') {
			s++;
			continue;
		}
		assert_int_equal(sscanf(s, "%2x", &v), 1);
		assert_true(n < max);
		out[n++] = (uint8_t)v;
		s += 2;
	}
	return n;
}

/* Appends an unknown field of every wire type to b. */
static void add_unknown_fields(struct kl_buf *b)
{
	static const uint8_t i64[] = {0x91, 0x03, 1, 2, 3, 4, 5, 6, 7, 8}; /* field 50, I64 */
	static const uint8_t i32[] = {0xfd, 0x03, 9, 9, 9, 9};		   /* field 63, I32 */

	assert_int_equal(kl_pb_put_uint(b, 60, 12345), 0);
	assert_int_equal(kl_buf_add(b, i64, sizeof(i64)), 0);
	assert_int_equal(kl_buf_add(b, i32, sizeof(i32)), 0);
	assert_int_equal(kl_pb_put_bytes(b, 1000, "future", 6), 0);
	assert_int_equal(kl_pb_put_uint(b, (1u << 29) - 1, 0), 0);
}

/* ---- protobuf primitives ---------------------------------------------- */

static void pb_varint_edges(void **state)
{
	static const struct {
		uint64_t v;
		const char *hex;
	} cases[] = {
		{0, "08 00"},
		{1, "08 01"},
		{127, "08 7f"},
		{128, "08 80 01"},
		{300, "08 ac 02"},
		{16383, "08 ff 7f"},
		{16384, "08 80 80 01"},
		{UINT32_MAX, "08 ff ff ff ff 0f"},
		{(uint64_t)1 << 63, "08 80 80 80 80 80 80 80 80 80 01"},
		{UINT64_MAX, "08 ff ff ff ff ff ff ff ff ff 01"},
	};
	size_t i;

	for (i = 0; i < KL_ARRAY_SIZE(cases); i++) {
		struct kl_buf b = KL_BUF_INIT(1 << 20);
		uint8_t want[16];
		size_t n = unhex(cases[i].hex, want, sizeof(want));
		struct kl_pb_reader rd;
		struct kl_pb_field f;

		assert_int_equal(kl_pb_put_uint(&b, 1, cases[i].v), 0);
		assert_int_equal(b.len, n);
		assert_memory_equal(b.data, want, n);
		rd.p = b.data;
		rd.n = b.len;
		assert_int_equal(kl_pb_next(&rd, &f), 1);
		assert_int_equal(f.num, 1);
		assert_int_equal(f.wire, KL_PB_VARINT);
		assert_true(f.v == cases[i].v);
		assert_int_equal(kl_pb_next(&rd, &f), 0);
		kl_buf_release(&b);
	}
}

static void pb_rejects_malformed(void **state)
{
	static const char *bad[] = {
		"08 80 00",			       /* overlong 0 */
		"08 ff 00",			       /* overlong 127 */
		"08 80",			       /* truncated value */
		"08",				       /* tag without value */
		"80",				       /* truncated tag */
		"88 00 01",			       /* overlong tag */
		"08 ff ff ff ff ff ff ff ff ff 02",    /* more than 64 bits */
		"08 ff ff ff ff ff ff ff ff ff 81 01", /* 11 bytes */
		"00 00",			       /* field 0 */
		"03 00",			       /* field 0 with wire 3 */
		"0b",				       /* start group */
		"0c",				       /* end group */
		"0e 00",			       /* wire type 6 */
		"0f 00",			       /* wire type 7 */
		"0a 02 00",			       /* LEN past the end */
		"0a ff ff ff ff ff ff ff ff 7f",       /* LEN near 2^63 */
		"09 01 02 03 04 05 06 07",	       /* I64 truncated */
		"0d 01 02 03",			       /* I32 truncated */
		"f8 ff ff ff ff 01 00",		       /* tag above 32 bits */
	};
	size_t i;

	for (i = 0; i < KL_ARRAY_SIZE(bad); i++) {
		uint8_t in[32];
		size_t n = unhex(bad[i], in, sizeof(in));
		uint8_t *q = dup_exact(in, n);
		struct kl_pb_reader rd = {q, n};
		struct kl_pb_field f;
		int r;

		while ((r = kl_pb_next(&rd, &f)) > 0)
			;
		if (r != -KL_ECORRUPT)
			fail_msg("case %zu (%s) gave %d", i, bad[i], r);
		free(q);
	}
}

static void pb_fixed_and_len(void **state)
{
	uint8_t in[64];
	size_t n = unhex("09 01 02 03 04 05 06 07 08 15 0a 0b 0c 0d 1a 00 22 03 61 62 63"
			 " f8 ff ff ff 0f 05",
			 in, sizeof(in));
	struct kl_pb_reader rd = {in, n};
	struct kl_pb_field f;

	assert_int_equal(kl_pb_next(&rd, &f), 1);
	assert_int_equal(f.num, 1);
	assert_int_equal(f.wire, KL_PB_I64);
	assert_true(f.v == 0x0807060504030201ull);
	assert_int_equal(kl_pb_next(&rd, &f), 1);
	assert_int_equal(f.num, 2);
	assert_int_equal(f.wire, KL_PB_I32);
	assert_true(f.v == 0x0d0c0b0a);
	assert_int_equal(kl_pb_next(&rd, &f), 1);
	assert_int_equal(f.num, 3);
	assert_int_equal(f.wire, KL_PB_LEN);
	assert_int_equal(f.len, 0);
	assert_int_equal(kl_pb_next(&rd, &f), 1);
	assert_int_equal(f.num, 4);
	assert_int_equal(f.len, 3);
	assert_memory_equal(f.p, "abc", 3);
	assert_int_equal(kl_pb_next(&rd, &f), 1);
	assert_int_equal(f.num, (1u << 29) - 1);
	assert_true(f.v == 5);
	assert_int_equal(kl_pb_next(&rd, &f), 0);
}

static void pb_zigzag(void **state)
{
	static const int64_t vals[] = {0,   -1, 1,	   -2,	      2,	 63,
				       -64, 64, INT32_MIN, INT32_MAX, INT64_MIN, INT64_MAX};
	struct kl_buf b = KL_BUF_INIT(1 << 20);
	size_t i;

	assert_int_equal(kl_pb_put_sint(&b, 1, -1), 0);
	assert_int_equal(kl_pb_put_sint(&b, 1, 1), 0);
	assert_int_equal(kl_pb_put_sint(&b, 1, INT64_MIN), 0);
	assert_int_equal(b.len, 2 + 2 + 11);
	assert_memory_equal(b.data, "\x08\x01\x08\x02\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
			    15);
	for (i = 0; i < KL_ARRAY_SIZE(vals); i++) {
		struct kl_pb_reader rd;
		struct kl_pb_field f;

		kl_buf_clear(&b);
		assert_int_equal(kl_pb_put_sint(&b, 7, vals[i]), 0);
		rd.p = b.data;
		rd.n = b.len;
		assert_int_equal(kl_pb_next(&rd, &f), 1);
		assert_true(kl_pb_unzigzag(f.v) == vals[i]);
	}
	kl_buf_release(&b);
}

static void pb_strings(void **state)
{
	struct kl_buf b = KL_BUF_INIT(1 << 20);
	struct kl_pb_field f = {.num = 1, .wire = KL_PB_LEN};
	char *s = NULL;

	assert_int_equal(kl_pb_put_str(&b, 1, NULL), 0);
	assert_int_equal(b.len, 0);
	assert_int_equal(kl_pb_put_str(&b, 1, ""), 0);
	assert_memory_equal(b.data, "\x0a\x00", 2);

	f.p = (const uint8_t *)"a\0b";
	f.len = 3;
	assert_int_equal(kl_pb_strdup(&f, &s), -KL_ECORRUPT);
	f.len = 1;
	assert_int_equal(kl_pb_strdup(&f, &s), 0);
	assert_string_equal(s, "a");
	kl_free(s);
	f.len = 0;
	assert_int_equal(kl_pb_strdup(&f, &s), 0);
	assert_string_equal(s, "");
	kl_free(s);
	f.wire = KL_PB_VARINT;
	assert_int_equal(kl_pb_strdup(&f, &s), -KL_ECORRUPT);
	kl_buf_release(&b);
}

/* ---- trees -------------------------------------------------------------- */

static void name_cmp_order(void **state)
{
	assert_true(kl_name_cmp((const uint8_t *)"a", 1, (const uint8_t *)"b", 1) < 0);
	assert_true(kl_name_cmp((const uint8_t *)"a", 1, (const uint8_t *)"ab", 2) < 0);
	assert_true(kl_name_cmp((const uint8_t *)"ab", 2, (const uint8_t *)"a", 1) > 0);
	assert_true(kl_name_cmp((const uint8_t *)"b", 1, (const uint8_t *)"ab", 2) > 0);
	assert_true(kl_name_cmp((const uint8_t *)"\xff", 1, (const uint8_t *)"a", 1) > 0);
	assert_true(kl_name_cmp((const uint8_t *)"Z", 1, (const uint8_t *)"a", 1) < 0);
	assert_int_equal(kl_name_cmp((const uint8_t *)"abc", 3, (const uint8_t *)"abc", 3), 0);
}

/* One node of each type with all fields, plus odd names, sorted. */
static void build_full_tree(struct kl_tree *t)
{
	static const char *names[] = {"file", "dir", "link", "fifo", "chr", "blk", "sock"};
	struct kl_node n;
	size_t i;

	memset(t, 0, sizeof(*t));
	for (i = 0; i < KL_ARRAY_SIZE(names); i++) {
		full_node(&n, names[i], (enum kl_node_type)(i + 1));
		assert_int_equal(kl_tree_add(t, &n), 0);
		assert_null(n.name);
	}
	min_node(&n, "caf\xc3\xa9 \n\\\xff", 9, KL_NODE_FILE);
	assert_int_equal(kl_tree_add(t, &n), 0);
	min_node(&n, "...", 3, KL_NODE_DIR);
	assert_int_equal(kl_tree_add(t, &n), 0);
	min_node(&n, ".a", 2, KL_NODE_SYMLINK);
	assert_int_equal(kl_tree_add(t, &n), 0);
	/* a 64 KiB xattr value needs a three-byte length */
	full_node(&n, "big", KL_NODE_FILE);
	n.xattrs[1].value = kl_calloc(1, 64 << 10);
	n.xattrs[1].value_len = 64 << 10;
	memset(n.xattrs[1].value, 'x', 64 << 10);
	assert_int_equal(kl_tree_add(t, &n), 0);
	kl_tree_sort(t);
}

static void tree_round_trip_full(void **state)
{
	struct kl_buf b = KL_BUF_INIT(KL_BUF_MAX_DEFAULT), b2 = KL_BUF_INIT(KL_BUF_MAX_DEFAULT);
	struct kl_tree t, d;

	build_full_tree(&t);
	assert_int_equal(kl_tree_encode(&t, &b), 0);
	assert_int_equal(tree_decode_exact(b.data, b.len, &d), 0);
	assert_tree_equal(&t, &d);
	assert_int_equal(kl_tree_encode(&d, &b2), 0);
	assert_int_equal(b.len, b2.len);
	assert_memory_equal(b.data, b2.data, b.len);
	/* find */
	assert_non_null(kl_tree_find(&d, (const uint8_t *)"sock", 4));
	assert_int_equal(kl_tree_find(&d, (const uint8_t *)"dir", 3)->type, KL_NODE_DIR);
	assert_null(kl_tree_find(&d, (const uint8_t *)"di", 2));
	assert_null(kl_tree_find(&d, (const uint8_t *)"zzz", 3));
	kl_tree_release(&t);
	kl_tree_release(&d);
	assert_tree_zero(&d);
	kl_buf_release(&b);
	kl_buf_release(&b2);
}

static void tree_golden_bytes(void **state)
{
	struct kl_buf b = KL_BUF_INIT(1 << 20);
	struct kl_tree t = {0}, d;
	struct kl_node n;

	/* empty tree: only the version */
	assert_int_equal(kl_tree_encode(&t, &b), 0);
	assert_int_equal(b.len, 2);
	assert_memory_equal(b.data, "\x08\x01", 2);
	assert_int_equal(tree_decode_exact(b.data, b.len, &d), 0);
	assert_int_equal(d.n, 0);
	kl_tree_release(&d);

	/* appends to what is already there */
	min_node(&n, "a", 1, KL_NODE_FILE);
	n.mode = 0644;
	n.mtime_sec = -1;
	assert_int_equal(kl_tree_add(&t, &n), 0);
	assert_int_equal(kl_tree_encode(&t, &b), 0);
	assert_int_equal(b.len, 2 + 14);
	assert_memory_equal(b.data,
			    "\x08\x01"
			    "\x08\x01\x12\x0a\x0a\x01"
			    "a"
			    "\x10\x01\x18\xa4\x03\x48\x01",
			    b.len);
	kl_tree_release(&t);
	kl_buf_release(&b);
}

static void tree_minimal_nodes(void **state)
{
	struct kl_buf b = KL_BUF_INIT(1 << 20), b2 = KL_BUF_INIT(1 << 20);
	struct kl_tree t = {0}, d;
	struct kl_node n;
	int type;

	for (type = KL_NODE_FILE; type <= KL_NODE_SOCK; type++) {
		char name[2] = {(char)('a' + type), 0};

		min_node(&n, name, 1, (enum kl_node_type)type);
		assert_int_equal(kl_tree_add(&t, &n), 0);
	}
	assert_int_equal(kl_tree_encode(&t, &b), 0);
	assert_int_equal(tree_decode_exact(b.data, b.len, &d), 0);
	assert_tree_equal(&t, &d);
	assert_null(d.nodes[0].user);
	assert_null(d.nodes[0].content);
	assert_null(d.nodes[0].xattrs);
	assert_int_equal(kl_tree_encode(&d, &b2), 0);
	assert_int_equal(b.len, b2.len);
	assert_memory_equal(b.data, b2.data, b.len);
	kl_tree_release(&t);
	kl_tree_release(&d);
	kl_buf_release(&b);
	kl_buf_release(&b2);
}

static void tree_sort_and_add(void **state)
{
	static const char *names[] = {"b", "ab", "a", "\xff", "B", "a0"};
	static const char *sorted[] = {"B", "a", "a0", "ab", "b", "\xff"};
	struct kl_tree t = {0};
	struct kl_node n;
	size_t i;

	for (i = 0; i < KL_ARRAY_SIZE(names); i++) {
		min_node(&n, names[i], strlen(names[i]), KL_NODE_FILE);
		assert_int_equal(kl_tree_add(&t, &n), 0);
		assert_null(n.name);
		assert_int_equal(n.name_len, 0);
	}
	kl_tree_sort(&t);
	for (i = 0; i < KL_ARRAY_SIZE(sorted); i++) {
		assert_true(mem_equal(t.nodes[i].name, t.nodes[i].name_len, sorted[i],
				      strlen(sorted[i])));
		assert_ptr_equal(kl_tree_find(&t, (const uint8_t *)sorted[i], strlen(sorted[i])),
				 &t.nodes[i]);
	}
	kl_tree_release(&t);
}

/* Encoding an invalid tree fails with -EINVAL and leaves out untouched. */
static void assert_tree_encode_einval(struct kl_tree *t)
{
	struct kl_buf b = KL_BUF_INIT(1 << 20);

	assert_int_equal(kl_buf_add(&b, "keep", 4), 0);
	assert_int_equal(kl_tree_encode(t, &b), -EINVAL);
	assert_int_equal(b.len, 4);
	assert_memory_equal(b.data, "keep", 5);
	kl_buf_release(&b);
}

static void tree_encode_rejects(void **state)
{
	static const struct {
		const char *name;
		size_t len;
	} bad_names[] = {{"", 0}, {".", 1}, {"..", 2}, {"a/b", 3}, {"/", 1}, {"a\0b", 3}};
	struct kl_tree t = {0};
	struct kl_node n;
	size_t i;

	for (i = 0; i < KL_ARRAY_SIZE(bad_names); i++) {
		min_node(&n, bad_names[i].name, bad_names[i].len, KL_NODE_FILE);
		assert_int_equal(kl_tree_add(&t, &n), 0);
		assert_tree_encode_einval(&t);
		kl_tree_release(&t);
	}

	/* a NULL name, after a valid node so the order check sees it too */
	min_node(&n, "a", 1, KL_NODE_FILE);
	kl_tree_add(&t, &n);
	memset(&n, 0, sizeof(n));
	n.type = KL_NODE_FILE;
	kl_tree_add(&t, &n);
	assert_tree_encode_einval(&t);
	kl_tree_release(&t);
	assert_null(kl_tree_find(&t, (const uint8_t *)"a", 1));

	/* unsorted, duplicate */
	min_node(&n, "b", 1, KL_NODE_FILE);
	kl_tree_add(&t, &n);
	min_node(&n, "a", 1, KL_NODE_FILE);
	kl_tree_add(&t, &n);
	assert_tree_encode_einval(&t);
	kl_tree_sort(&t);
	min_node(&n, "b", 1, KL_NODE_DIR);
	kl_tree_add(&t, &n);
	assert_tree_encode_einval(&t);
	kl_tree_release(&t);

	/* one bad field at a time */
	for (i = 0; i < 16; i++) {
		full_node(&n, "x", i == 6 || i == 7 ? KL_NODE_DIR : KL_NODE_FILE);
		switch (i) {
		case 0:
			n.type = (enum kl_node_type)0;
			break;
		case 1:
			n.type = (enum kl_node_type)8;
			break;
		case 2:
			n.mode = 010000;
			break;
		case 3:
			n.mtime_nsec = 1000000000;
			break;
		case 4:
			n.atime_nsec = UINT32_MAX;
			break;
		case 5:
			n.ctime_nsec = 1000000000;
			break;
		case 6: /* dir without subtree */
			n.has_subtree = false;
			break;
		case 7: /* dir with content */
			n.n_content = 1;
			n.content = kl_calloc(1, 32);
			break;
		case 8: /* file with subtree */
			n.has_subtree = true;
			break;
		case 9: /* file with link */
			n.link = kl_memdup("x", 1);
			n.link_len = 1;
			break;
		case 10:
			kl_free(n.xattrs[0].name);
			n.xattrs[0].name = kl_strdup("");
			break;
		case 11:
			kl_free(n.xattrs[1].name);
			n.xattrs[1].name = kl_strdup("security.selinux");
			break;
		case 12:
			n.xattrs[1].value_len = (64 << 10) + 1;
			n.xattrs[1].value = kl_calloc(1, n.xattrs[1].value_len);
			break;
		case 13: /* no array, see below */
			n.n_content = 4;
			break;
		case 14: /* symlink with content */
			n.type = KL_NODE_SYMLINK;
			break;
		case 15: /* fifo with content */
			n.type = KL_NODE_FIFO;
			break;
		}
		if (i == 13) {
			/* content NULL with a count */
			kl_free(n.content);
			n.content = NULL;
		}
		kl_tree_add(&t, &n);
		assert_tree_encode_einval(&t);
		kl_tree_release(&t);
	}
}

static void tree_xattrs_canonical(void **state)
{
	struct kl_buf a = KL_BUF_INIT(1 << 20), b = KL_BUF_INIT(1 << 20);
	struct kl_tree t = {0}, u = {0}, d;
	struct kl_node n;

	min_node(&n, "f", 1, KL_NODE_FILE);
	add_xattr(&n, "user.b", "2", 1);
	add_xattr(&n, "user.a", "1", 1);
	add_xattr(&n, "user.c", "3", 1);
	kl_tree_add(&t, &n);
	min_node(&n, "f", 1, KL_NODE_FILE);
	add_xattr(&n, "user.a", "1", 1);
	add_xattr(&n, "user.b", "2", 1);
	add_xattr(&n, "user.c", "3", 1);
	kl_tree_add(&u, &n);
	assert_int_equal(kl_tree_encode(&t, &a), 0);
	assert_int_equal(kl_tree_encode(&u, &b), 0);
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.data, b.data, a.len);
	assert_int_equal(tree_decode_exact(a.data, a.len, &d), 0);
	assert_tree_equal(&u, &d);
	kl_tree_release(&d);
	/* duplicates are rejected even when they are not adjacent */
	kl_free(t.nodes[0].xattrs[2].name);
	t.nodes[0].xattrs[2].name = kl_strdup("user.b");
	assert_tree_encode_einval(&t);
	kl_tree_release(&t);
	kl_tree_release(&u);
	kl_buf_release(&a);
	kl_buf_release(&b);
}

/* Raw tree from hand-built node bodies, bypassing the encoder's checks. */
struct raw_tree {
	struct kl_buf out;
	struct kl_buf node;
};

static void raw_begin(struct raw_tree *r)
{
	kl_buf_init(&r->out, 1 << 24);
	kl_buf_init(&r->node, 1 << 24);
	assert_int_equal(kl_pb_put_uint(&r->out, 1, 1), 0);
}

static void raw_node_end(struct raw_tree *r)
{
	assert_int_equal(kl_pb_put_bytes(&r->out, 2, r->node.data, r->node.len), 0);
	kl_buf_clear(&r->node);
}

/* name + type (+ a subtree for directories) into r->node. */
static void raw_node_basic(struct raw_tree *r, const void *name, size_t len, uint32_t type)
{
	assert_int_equal(kl_pb_put_bytes(&r->node, 1, name, len), 0);
	assert_int_equal(kl_pb_put_uint(&r->node, 2, type), 0);
	if (type == KL_NODE_DIR)
		assert_int_equal(kl_pb_put_bytes(&r->node, 21, id_of(3).b, 32), 0);
}

static void raw_end(struct raw_tree *r)
{
	kl_buf_release(&r->out);
	kl_buf_release(&r->node);
}

static void assert_tree_decode_fails(struct raw_tree *r, int want, const char *what)
{
	struct kl_tree t;
	int got = tree_decode_exact(r->out.data, r->out.len, &t);

	if (got != want)
		fail_msg("%s: decode gave %d, want %d", what, got, want);
	assert_tree_zero(&t);
	raw_end(r);
}

static void tree_decode_rejects_names(void **state)
{
	static const struct {
		const char *a, *b;
		size_t alen, blen;
		const char *what;
	} pairs[] = {
		{"b", "a", 1, 1, "unsorted"},
		{"a", "a", 1, 1, "duplicate"},
		{"ab", "a", 2, 1, "longer first"},
		{"a", "", 1, 0, "empty"},
		{"a", ".", 1, 1, "dot"},
		{"a", "..", 1, 2, "dotdot"},
		{"a", "b/../../etc", 1, 11, "slash"},
		{"a", "/etc", 1, 4, "absolute"},
		{"a", "b\0c", 1, 3, "nul"},
	};
	size_t i;

	for (i = 0; i < KL_ARRAY_SIZE(pairs); i++) {
		struct raw_tree r;

		raw_begin(&r);
		raw_node_basic(&r, pairs[i].a, pairs[i].alen, KL_NODE_FILE);
		raw_node_end(&r);
		raw_node_basic(&r, pairs[i].b, pairs[i].blen, KL_NODE_DIR);
		raw_node_end(&r);
		assert_tree_decode_fails(&r, -KL_ECORRUPT, pairs[i].what);
	}
}

static void tree_decode_rejects_fields(void **state)
{
	static const uint8_t id31[31], id33[33];
	struct raw_tree r;
	int i;

	/* missing name, missing type */
	raw_begin(&r);
	kl_pb_put_uint(&r.node, 2, 1);
	raw_node_end(&r);
	assert_tree_decode_fails(&r, -KL_ECORRUPT, "no name");
	raw_begin(&r);
	kl_pb_put_bytes(&r.node, 1, "a", 1);
	raw_node_end(&r);
	assert_tree_decode_fails(&r, -KL_ECORRUPT, "no type");

	for (i = 0; i < 26; i++) {
		uint32_t type = KL_NODE_FILE;
		struct kl_buf *nb = &r.node;

		if (i == 3 || i == 4 || i == 5)
			type = KL_NODE_DIR;
		raw_begin(&r);
		if (i != 3)
			raw_node_basic(&r, "a", 1, type);
		else
			kl_pb_put_bytes(nb, 1, "a", 1), kl_pb_put_uint(nb, 2, type);
		switch (i) {
		case 0: /* duplicate type */
			kl_pb_put_uint(nb, 2, 1);
			break;
		case 1: /* duplicate name */
			kl_pb_put_bytes(nb, 1, "b", 1);
			break;
		case 2: /* file with subtree */
			kl_pb_put_bytes(nb, 21, id_of(1).b, 32);
			break;
		case 3: /* dir without subtree */
			break;
		case 4: /* dir with content */
			kl_pb_put_bytes(nb, 20, id_of(1).b, 32);
			break;
		case 5: /* dir with link */
			kl_pb_put_bytes(nb, 19, "x", 1);
			break;
		case 6: /* content not 32k */
			kl_pb_put_bytes(nb, 20, id33, 33);
			break;
		case 7:
			kl_pb_put_bytes(nb, 20, id31, 31);
			break;
		case 8: /* mode */
			kl_pb_put_uint(nb, 3, 010000);
			break;
		case 9: /* nsec */
			kl_pb_put_uint(nb, 10, 1000000000);
			break;
		case 10: /* uid > 32 bits */
			kl_pb_put_uint(nb, 4, (uint64_t)1 << 32);
			break;
		case 11: /* mode as LEN */
			kl_pb_put_bytes(nb, 3, "", 0);
			break;
		case 12: /* user as varint */
			kl_pb_put_uint(nb, 6, 1);
			break;
		case 13: /* NUL in user */
			kl_pb_put_bytes(nb, 6, "a\0b", 3);
			break;
		case 14: /* xattr as varint */
			kl_pb_put_uint(nb, 22, 1);
			break;
		case 15: /* xattr without name */
			kl_pb_put_bytes(nb, 22, "\x12\x01x", 3);
			break;
		case 16: /* xattr, empty name */
			kl_pb_put_bytes(nb, 22, "\x0a\x00", 2);
			break;
		case 17: /* NUL in name */
			kl_pb_put_bytes(nb, 22, "\x0a\x03u\0b", 5);
			break;
		case 18: /* xattrs unsorted */
			kl_pb_put_bytes(nb, 22,
					"\x0a\x01"
					"b",
					3);
			kl_pb_put_bytes(nb, 22,
					"\x0a\x01"
					"a",
					3);
			break;
		case 19: /* xattrs duplicate */
			kl_pb_put_bytes(nb, 22,
					"\x0a\x01"
					"a",
					3);
			kl_pb_put_bytes(nb, 22,
					"\x0a\x01"
					"a",
					3);
			break;
		case 20: /* dup name */
			kl_pb_put_bytes(nb, 22,
					"\x0a\x01"
					"a\x0a\x01"
					"b",
					6);
			break;
		case 21: /* type 0 given twice */
			kl_pb_put_uint(nb, 2, 0);
			break;
		case 22: /* nsec as LEN */
			kl_pb_put_bytes(nb, 12, "", 0);
			break;
		case 23: /* content as varint */
			kl_pb_put_uint(nb, 20, 0);
			break;
		case 24: /* time as LEN */
			kl_pb_put_bytes(nb, 9, "\x01", 1);
			break;
		case 25: /* dup flags */
			kl_pb_put_uint(nb, 23, 1), kl_pb_put_uint(nb, 23, 1);
			break;
		}
		raw_node_end(&r);
		{
			char what[32];

			snprintf(what, sizeof(what), "field case %d", i);
			assert_tree_decode_fails(&r, -KL_ECORRUPT, what);
		}
	}

	/* type out of range */
	raw_begin(&r);
	raw_node_basic(&r, "a", 1, 8);
	raw_node_end(&r);
	assert_tree_decode_fails(&r, -KL_ECORRUPT, "type 8");
	raw_begin(&r);
	raw_node_basic(&r, "a", 1, 0);
	raw_node_end(&r);
	assert_tree_decode_fails(&r, -KL_ECORRUPT, "type 0");

	/* a 64 KiB + 1 xattr value */
	raw_begin(&r);
	raw_node_basic(&r, "a", 1, KL_NODE_FILE);
	{
		struct kl_buf x = KL_BUF_INIT(1 << 20);
		uint8_t *v = calloc(1, (64 << 10) + 1);

		kl_pb_put_str(&x, 1, "user.big");
		kl_pb_put_bytes(&x, 2, v, (64 << 10) + 1);
		kl_pb_put_bytes(&r.node, 22, x.data, x.len);
		kl_buf_release(&x);
		free(v);
	}
	raw_node_end(&r);
	assert_tree_decode_fails(&r, -KL_ECORRUPT, "xattr too big");

	/* a node given as a varint */
	raw_begin(&r);
	kl_pb_put_uint(&r.out, 2, 5);
	assert_tree_decode_fails(&r, -KL_ECORRUPT, "node as varint");
}

static void tree_decode_rejects_versions(void **state)
{
	struct raw_tree r;
	struct kl_tree t;
	uint8_t in[16];
	size_t n;

	n = unhex("", in, sizeof(in));
	assert_int_equal(tree_decode_exact(in, n, &t), -KL_ECORRUPT);
	n = unhex("08 00", in, sizeof(in));
	assert_int_equal(tree_decode_exact(in, n, &t), -KL_ECORRUPT);
	n = unhex("08 01 08 01", in, sizeof(in));
	assert_int_equal(tree_decode_exact(in, n, &t), -KL_ECORRUPT);
	n = unhex("0a 01 01", in, sizeof(in));
	assert_int_equal(tree_decode_exact(in, n, &t), -KL_ECORRUPT);
	/* 2 is a head, which must name its continuations */
	n = unhex("08 02", in, sizeof(in));
	assert_int_equal(tree_decode_exact(in, n, &t), -KL_ECORRUPT);
	n = unhex("08 03", in, sizeof(in));
	assert_int_equal(tree_decode_exact(in, n, &t), -KL_EVERSION);
	/* a newer version wins over anything a newer format may contain */
	n = unhex("12 02 10 09 08 03", in, sizeof(in));
	assert_int_equal(tree_decode_exact(in, n, &t), -KL_EVERSION);
	n = unhex("08 01 12 02 10 09", in, sizeof(in));
	assert_int_equal(tree_decode_exact(in, n, &t), -KL_ECORRUPT);

	/* version last is fine: field order is free on input */
	kl_buf_init(&r.out, 1 << 20);
	kl_buf_init(&r.node, 1 << 20);
	raw_node_basic(&r, "a", 1, KL_NODE_FILE);
	raw_node_end(&r);
	kl_pb_put_uint(&r.out, 1, 1);
	assert_int_equal(tree_decode_exact(r.out.data, r.out.len, &t), 0);
	assert_int_equal(t.n, 1);
	kl_tree_release(&t);
	raw_end(&r);
}

static void tree_unknown_fields(void **state)
{
	struct kl_buf canon = KL_BUF_INIT(1 << 20), again = KL_BUF_INIT(1 << 20);
	struct raw_tree r;
	struct kl_tree t, want = {0};
	struct kl_node n;

	/* expected: node "a" (file, uid 7, xattr user.x=1) and node "b" (dir) */
	min_node(&n, "a", 1, KL_NODE_FILE);
	n.uid = 7;
	add_xattr(&n, "user.x", "1", 1);
	kl_tree_add(&want, &n);
	min_node(&n, "b", 1, KL_NODE_DIR);
	n.subtree = id_of(3);
	kl_tree_add(&want, &n);
	assert_int_equal(kl_tree_encode(&want, &canon), 0);

	raw_begin(&r);
	add_unknown_fields(&r.out);
	add_unknown_fields(&r.node);
	kl_pb_put_uint(&r.node, 4, 7);
	raw_node_basic(&r, "a", 1, KL_NODE_FILE);
	{
		struct kl_buf x = KL_BUF_INIT(1 << 20);

		add_unknown_fields(&x);
		kl_pb_put_bytes(&x, 2, "1", 1);
		kl_pb_put_str(&x, 1, "user.x");
		add_unknown_fields(&x);
		kl_pb_put_bytes(&r.node, 22, x.data, x.len);
		kl_buf_release(&x);
	}
	raw_node_end(&r);
	raw_node_basic(&r, "b", 1, KL_NODE_DIR);
	add_unknown_fields(&r.node);
	raw_node_end(&r);
	add_unknown_fields(&r.out);

	assert_int_equal(tree_decode_exact(r.out.data, r.out.len, &t), 0);
	assert_tree_equal(&want, &t);
	assert_int_equal(kl_tree_encode(&t, &again), 0);
	assert_int_equal(again.len, canon.len);
	assert_memory_equal(again.data, canon.data, canon.len);
	kl_tree_release(&t);
	kl_tree_release(&want);
	raw_end(&r);
	kl_buf_release(&canon);
	kl_buf_release(&again);
}

static void tree_truncated_everywhere(void **state)
{
	struct kl_buf b = KL_BUF_INIT(KL_BUF_MAX_DEFAULT), b2 = KL_BUF_INIT(KL_BUF_MAX_DEFAULT);
	struct kl_tree t, d;
	size_t len, big;

	build_full_tree(&t);
	/* drop the node with the 64 KiB xattr to keep this quick */
	big = (size_t)(kl_tree_find(&t, (const uint8_t *)"big", 3) - t.nodes);
	kl_node_release(&t.nodes[big]);
	memmove(&t.nodes[big], &t.nodes[big + 1], (t.n - big - 1) * sizeof(*t.nodes));
	t.n--;
	assert_int_equal(kl_tree_encode(&t, &b), 0);
	for (len = 0; len < b.len; len++) {
		int r = tree_decode_exact(b.data, len, &d);

		if (!at_field_boundary(b.data, b.len, len)) {
			if (r != -KL_ECORRUPT)
				fail_msg("prefix of %zu bytes gave %d", len, r);
			assert_tree_zero(&d);
			continue;
		}
		/* a prefix ending between nodes is a smaller valid tree */
		if (r == 0) {
			kl_buf_clear(&b2);
			assert_int_equal(kl_tree_encode(&d, &b2), 0);
			assert_int_equal(b2.len, len);
			assert_memory_equal(b2.data, b.data, len);
			kl_tree_release(&d);
		} else {
			assert_int_equal(r, -KL_ECORRUPT);
		}
	}
	kl_tree_release(&t);
	kl_buf_release(&b);
	kl_buf_release(&b2);
}

static void tree_huge_counts(void **state)
{
	size_t count = ((size_t)1 << 20) + 1, i;
	struct kl_buf b = KL_BUF_INIT(KL_BUF_MAX_DEFAULT);
	struct kl_tree t;

	/*
	 * More valid, sorted nodes than the cap: rejected by the count,
	 * before allocating. Names are five base-32 digits, "AAAAA" up.
	 */
	kl_pb_put_uint(&b, 1, 1);
	for (i = 0; i < count; i++) {
		uint8_t node[] = {0x12, 0x09, 0x0a, 0x05, 0, 0, 0, 0, 0, 0x10, 0x01};
		int d;

		for (d = 0; d < 5; d++)
			node[8 - d] = (uint8_t)('A' + ((i >> (5 * d)) & 31));
		assert_int_equal(kl_buf_add(&b, node, sizeof(node)), 0);
	}
	assert_int_equal(kl_tree_decode(b.data, b.len, &t), -KL_ECORRUPT);
	assert_tree_zero(&t);

	/* many empty nodes: too short to be valid, so no big allocation */
	kl_buf_clear(&b);
	kl_pb_put_uint(&b, 1, 1);
	for (i = 0; i < 100000; i++)
		assert_int_equal(kl_buf_add(&b, "\x12\x00", 2), 0);
	assert_int_equal(kl_tree_decode(b.data, b.len, &t), -KL_ECORRUPT);

	/* a length claiming far more than there is */
	kl_buf_clear(&b);
	kl_pb_put_uint(&b, 1, 1);
	kl_buf_add(&b, "\x12\xff\xff\xff\xff\x0f", 6);
	assert_int_equal(kl_tree_decode(b.data, b.len, &t), -KL_ECORRUPT);
	kl_buf_release(&b);
}

static void tree_noncanonical_input(void **state)
{
	struct kl_buf canon = KL_BUF_INIT(1 << 20), again = KL_BUF_INIT(1 << 20);
	struct raw_tree r;
	struct kl_tree t, want = {0};
	struct kl_node n;

	min_node(&n, "a", 1, KL_NODE_FILE);
	n.size = 5;
	kl_tree_add(&want, &n);
	assert_int_equal(kl_tree_encode(&want, &canon), 0);

	/* fields out of order, explicit zeros, an empty link and content */
	raw_begin(&r);
	kl_pb_put_uint(&r.node, 8, 5);
	kl_pb_put_uint(&r.node, 3, 0);
	kl_pb_put_bytes(&r.node, 19, "", 0);
	kl_pb_put_bytes(&r.node, 20, "", 0);
	kl_pb_put_sint(&r.node, 9, 0);
	raw_node_basic(&r, "a", 1, KL_NODE_FILE);
	raw_node_end(&r);
	assert_int_equal(tree_decode_exact(r.out.data, r.out.len, &t), 0);
	assert_tree_equal(&want, &t);
	assert_int_equal(kl_tree_encode(&t, &again), 0);
	assert_int_equal(again.len, canon.len);
	assert_memory_equal(again.data, canon.data, canon.len);
	kl_tree_release(&t);
	kl_tree_release(&want);
	raw_end(&r);
	kl_buf_release(&canon);
	kl_buf_release(&again);
}

/* ---- snapshots ---------------------------------------------------------- */

static char **strv(const char *const *v, size_t n)
{
	char **out = kl_calloc(n, sizeof(char *));
	size_t i;

	for (i = 0; i < n; i++)
		out[i] = kl_strdup(v[i]);
	return out;
}

static void full_snapshot(struct kl_snapshot *s)
{
	static const char *paths[] = {"/home", "/etc", "/caf\xc3\xa9"};
	static const char *tags[] = {"daily", ""};
	static const char *excl[] = {"*.o"};

	memset(s, 0, sizeof(*s));
	s->kind = KL_SNAP_DATABASE;
	s->time_ns = 1764096651123456789;
	s->time_end_ns = -1;
	s->read_start_ns = 1764096651000000001;
	s->host = kl_strdup("db1.example.org");
	s->user = kl_strdup("root");
	s->uid = 0xffffffff;
	s->gid = 1;
	s->paths = strv(paths, 3);
	s->n_paths = 3;
	s->tags = strv(tags, 2);
	s->n_tags = 2;
	s->excludes = strv(excl, 1);
	s->n_excludes = 1;
	s->tree = id_of(0x22);
	s->parent = id_of(0x33);
	s->has_parent = true;
	s->replaces = id_of(0x44);
	s->has_replaces = true;
	s->program_version = kl_strdup("keel 0.1.0");
	s->partial = true;
	s->stats.files_new = 1;
	s->stats.files_changed = 2;
	s->stats.files_unmodified = 3;
	s->stats.dirs = 4;
	s->stats.bytes_total = UINT64_MAX;
	s->stats.bytes_read = 6;
	s->stats.blobs_new = 7;
	s->stats.bytes_added = 8;
	s->stats.bytes_stored = 9;
	s->stats.errors = 10;
	s->has_db = true;
	s->db.engine = KL_DB_POSTGRESQL;
	s->db.role = KL_DB_BASE;
	s->db.name = kl_strdup("shop-1.main_db");
	s->db.system_id = kl_strdup("7449223188302567890");
	s->db.timeline = 3;
	s->db.stop_timeline = 4;
	s->db.start_lsn = 0x100000028ull;
	s->db.stop_lsn = UINT64_MAX;
	s->db.server_version = kl_strdup("150018");
	/* SQLite's fields 10-14, all at once so that each is seen through a round trip */
	s->db.wal_salt1 = 0x9a3f0001;
	s->db.wal_salt2 = UINT32_MAX;
	s->db.wal_ckpt_seq = 7;
	s->db.wal_checksum = 0x123456789abcdef0ull;
	s->db.page_size = 65536;
	/* MariaDB's fields 16-21, likewise */
	s->db.binlog_file = kl_strdup("mariadb-bin.000042");
	s->db.binlog_pos = 0x1234567;
	s->db.gtid = kl_strdup("0-1-42,1-2-7");
	s->db.server_id = UINT32_MAX;
	s->db.server_name = kl_strdup("db1.example.com");
	s->db.stop_gtid = kl_strdup("0-1-43");
}

static void assert_strv_equal(char **a, size_t an, char **b, size_t bn)
{
	size_t i;

	assert_int_equal(an, bn);
	for (i = 0; i < an; i++)
		assert_string_equal(a[i], b[i]);
}

static void assert_snapshot_equal(const struct kl_snapshot *a, const struct kl_snapshot *b)
{
	assert_int_equal(a->kind, b->kind);
	assert_true(a->time_ns == b->time_ns);
	assert_true(a->time_end_ns == b->time_end_ns);
	assert_true(a->read_start_ns == b->read_start_ns);
	assert_true(opt_str_equal(a->host, b->host));
	assert_true(opt_str_equal(a->user, b->user));
	assert_int_equal(a->uid, b->uid);
	assert_int_equal(a->gid, b->gid);
	assert_strv_equal(a->paths, a->n_paths, b->paths, b->n_paths);
	assert_strv_equal(a->tags, a->n_tags, b->tags, b->n_tags);
	assert_strv_equal(a->excludes, a->n_excludes, b->excludes, b->n_excludes);
	assert_memory_equal(a->tree.b, b->tree.b, KL_ID_LEN);
	assert_int_equal(a->has_parent, b->has_parent);
	if (a->has_parent)
		assert_memory_equal(a->parent.b, b->parent.b, KL_ID_LEN);
	assert_int_equal(a->has_replaces, b->has_replaces);
	if (a->has_replaces)
		assert_memory_equal(a->replaces.b, b->replaces.b, KL_ID_LEN);
	assert_true(opt_str_equal(a->program_version, b->program_version));
	assert_int_equal(a->partial, b->partial);
	assert_memory_equal(&a->stats, &b->stats, sizeof(a->stats));
	assert_int_equal(a->has_db, b->has_db);
	assert_int_equal(a->db.engine, b->db.engine);
	assert_int_equal(a->db.role, b->db.role);
	assert_true(opt_str_equal(a->db.name, b->db.name));
	assert_true(opt_str_equal(a->db.system_id, b->db.system_id));
	assert_true(opt_str_equal(a->db.server_version, b->db.server_version));
	assert_int_equal(a->db.timeline, b->db.timeline);
	assert_int_equal(a->db.stop_timeline, b->db.stop_timeline);
	assert_true(a->db.start_lsn == b->db.start_lsn);
	assert_true(a->db.stop_lsn == b->db.stop_lsn);
	assert_int_equal(a->db.wal_salt1, b->db.wal_salt1);
	assert_int_equal(a->db.wal_salt2, b->db.wal_salt2);
	assert_int_equal(a->db.wal_ckpt_seq, b->db.wal_ckpt_seq);
	assert_true(a->db.wal_checksum == b->db.wal_checksum);
	assert_int_equal(a->db.page_size, b->db.page_size);
	assert_true(opt_str_equal(a->db.binlog_file, b->db.binlog_file));
	assert_true(a->db.binlog_pos == b->db.binlog_pos);
	assert_true(opt_str_equal(a->db.gtid, b->db.gtid));
	assert_int_equal(a->db.server_id, b->db.server_id);
	assert_true(opt_str_equal(a->db.server_name, b->db.server_name));
	assert_true(opt_str_equal(a->db.stop_gtid, b->db.stop_gtid));
}

static void snapshot_round_trip(void **state)
{
	struct kl_buf b = KL_BUF_INIT(1 << 20), b2 = KL_BUF_INIT(1 << 20);
	struct kl_snapshot s, d;

	full_snapshot(&s);
	assert_int_equal(kl_snapshot_encode(&s, &b), 0);
	assert_int_equal(snapshot_decode_exact(b.data, b.len, &d), 0);
	assert_snapshot_equal(&s, &d);
	assert_int_equal(kl_snapshot_encode(&d, &b2), 0);
	assert_int_equal(b.len, b2.len);
	assert_memory_equal(b.data, b2.data, b.len);
	kl_snapshot_release(&s);
	kl_snapshot_release(&d);
	kl_buf_release(&b);
	kl_buf_release(&b2);
}

static void snapshot_minimal_golden(void **state)
{
	struct kl_buf b = KL_BUF_INIT(1 << 20);
	struct kl_snapshot s = {0}, d;
	uint8_t want[64];
	size_t n;

	s.kind = KL_SNAP_FILES;
	s.tree = id_of(0x22);
	assert_int_equal(kl_snapshot_encode(&s, &b), 0);
	n = unhex("08 01 10 01 62 20 78", want, sizeof(want));
	memset(want + n, 0x22, 31);
	n += 31;
	assert_int_equal(b.len, n);
	assert_memory_equal(b.data, want, n);
	assert_int_equal(snapshot_decode_exact(b.data, b.len, &d), 0);
	assert_snapshot_equal(&s, &d);
	assert_null(d.host);
	assert_null(d.paths);
	kl_snapshot_release(&d);
	kl_buf_release(&b);
}

static void snapshot_rejects(void **state)
{
	static const uint8_t id31[31];
	int i;

	for (i = 0; i < 17; i++) {
		struct kl_buf b = KL_BUF_INIT(1 << 20);
		struct kl_snapshot d;
		int want = -KL_ECORRUPT, r;

		if (i != 0)
			kl_pb_put_uint(&b, 1, i == 1 ? 0 : i == 2 ? 2 : 1);
		if (i != 3)
			kl_pb_put_uint(&b, 2, i == 4 ? 0 : i == 5 ? 5 : 1);
		if (i != 6)
			kl_pb_put_bytes(&b, 12, i == 7 ? id31 : id_of(1).b, i == 7 ? 31 : 32);
		switch (i) {
		case 2:
			want = -KL_EVERSION;
			break;
		case 8:
			kl_pb_put_bytes(&b, 13, id31, 31);
			break;
		case 9: /* bool 2 */
			kl_pb_put_uint(&b, 15, 2);
			break;
		case 10: /* stats as varint */
			kl_pb_put_uint(&b, 16, 1);
			break;
		case 11: /* stats field as LEN */
			kl_pb_put_bytes(&b, 16, "\x0a\x00", 2);
			break;
		case 12: /* NUL in a path */
			kl_pb_put_bytes(&b, 9, "a\0", 2);
			break;
		case 13: /* path as varint */
			kl_pb_put_uint(&b, 9, 1);
			break;
		case 14: /* dup host */
			kl_pb_put_str(&b, 5, "h"), kl_pb_put_str(&b, 5, "h");
			break;
		case 15: /* dup tree */
			kl_pb_put_bytes(&b, 12, id_of(1).b, 32);
			break;
		case 16: /* dup stat */
			kl_pb_put_bytes(&b, 16, "\x08\x01\x08\x01", 4);
			break;
		}
		r = snapshot_decode_exact(b.data, b.len, &d);
		if (r != want)
			fail_msg("case %d: got %d, want %d", i, r, want);
		assert_null(d.paths);
		assert_null(d.host);
		kl_buf_release(&b);
	}
}

static void snapshot_encode_rejects(void **state)
{
	struct kl_buf b = KL_BUF_INIT(1 << 20);
	struct kl_snapshot s;

	full_snapshot(&s);
	s.kind = 0;
	assert_int_equal(kl_snapshot_encode(&s, &b), -EINVAL);
	s.kind = 6;
	assert_int_equal(kl_snapshot_encode(&s, &b), -EINVAL);
	/* a database's snapshot: kind, role and name must fit (docs/FORMAT.md "Databases") */
	s.kind = KL_SNAP_DBLOG; /* a log record, but role base */
	assert_int_equal(kl_snapshot_encode(&s, &b), -EINVAL);
	s.db.role = KL_DB_LOG;
	assert_int_equal(kl_snapshot_encode(&s, &b), 0);
	kl_buf_clear(&b);
	s.db.stop_lsn = s.db.start_lsn - 1;
	assert_int_equal(kl_snapshot_encode(&s, &b), -EINVAL);
	s.db.stop_lsn = s.db.start_lsn;
	s.db.engine = 4;
	assert_int_equal(kl_snapshot_encode(&s, &b), -EINVAL);
	s.db.engine = KL_DB_SQLITE;
	s.db.name[0] = '/';
	assert_int_equal(kl_snapshot_encode(&s, &b), -EINVAL);
	s.db.name[0] = 's';
	s.kind = KL_SNAP_FILES; /* a file backup with a db */
	assert_int_equal(kl_snapshot_encode(&s, &b), -EINVAL);
	s.has_db = false;
	s.kind = KL_SNAP_DATABASE; /* a database's without one */
	assert_int_equal(kl_snapshot_encode(&s, &b), -EINVAL);
	s.kind = KL_SNAP_FILES;
	kl_free(s.tags[1]);
	s.tags[1] = NULL;
	assert_int_equal(kl_snapshot_encode(&s, &b), -EINVAL);
	assert_int_equal(b.len, 0);
	kl_snapshot_release(&s);
	kl_buf_release(&b);
}

/* A disk image snapshot's fields 18, 19, 25, 26 (docs/IMAGES.md) round-trip. */
static void snapshot_image_fields(void **state)
{
	struct kl_buf b = KL_BUF_INIT(1 << 20);
	struct kl_snapshot s, d;

	(void)state;
	full_snapshot(&s);
	s.kind = KL_SNAP_DISK;
	s.has_db = false; /* a database's message only on kinds 4 and 5 */
	s.image_chunk_size = 4u << 20;
	s.image_method = kl_strdup("read");
	assert_non_null(s.image_method);
	s.image_ident = kl_calloc(2, sizeof(char *));
	assert_non_null(s.image_ident);
	s.image_ident[0] = kl_strdup("gpt disk-guid=x partitions=2");
	s.image_ident[1] = kl_strdup("");
	s.n_image_ident = 2;
	s.image_consistency = kl_strdup("freeze /mnt");
	s.image_bitmap = kl_strdup("nightly");
	assert_int_equal(kl_snapshot_encode(&s, &b), 0);
	assert_int_equal(kl_snapshot_decode(b.data, b.len, &d), 0);
	assert_int_equal(d.kind, KL_SNAP_DISK);
	assert_int_equal(d.image_chunk_size, 4u << 20);
	assert_non_null(d.image_method);
	assert_string_equal(d.image_method, "read");
	assert_int_equal(d.n_image_ident, 2);
	assert_string_equal(d.image_ident[0], "gpt disk-guid=x partitions=2");
	assert_string_equal(d.image_ident[1], "");
	assert_string_equal(d.image_consistency, "freeze /mnt");
	assert_non_null(d.image_bitmap);
	assert_string_equal(d.image_bitmap, "nightly");
	kl_snapshot_release(&d);
	/* twice is corrupt, as for every singular field */
	kl_pb_put_uint(&b, 18, 1);
	assert_int_equal(kl_snapshot_decode(b.data, b.len, &d), -KL_ECORRUPT);
	kl_snapshot_release(&s);
	kl_buf_release(&b);
}

static void snapshot_unknown_and_truncated(void **state)
{
	struct kl_buf b = KL_BUF_INIT(1 << 20), b2 = KL_BUF_INIT(1 << 20), u = KL_BUF_INIT(1 << 20);
	struct kl_snapshot s, d;
	size_t len;

	full_snapshot(&s);

	/* unknown fields around everything, and inside stats */
	{
		struct kl_snapshot_stats saved = s.stats;
		struct kl_buf st = KL_BUF_INIT(1 << 20);
		const uint64_t v[10] = {
			saved.files_new, saved.files_changed, saved.files_unmodified,
			saved.dirs,	 saved.bytes_total,   saved.bytes_read,
			saved.blobs_new, saved.bytes_added,   saved.bytes_stored,
			saved.errors,
		};
		unsigned i;

		memset(&s.stats, 0, sizeof(s.stats));
		assert_int_equal(kl_snapshot_encode(&s, &b), 0);
		s.stats = saved;
		add_unknown_fields(&u);
		assert_int_equal(kl_buf_add(&u, b.data, b.len), 0);
		add_unknown_fields(&st);
		for (i = 10; i >= 1; i--) /* reversed: order is free on input */
			kl_pb_put_uint(&st, i, v[i - 1]);
		kl_pb_put_uint(&st, 11, 99); /* a future stats field */
		add_unknown_fields(&st);
		kl_pb_put_bytes(&u, 16, st.data, st.len);
		kl_pb_put_bytes(&u, 63, "x", 1); /* reserved for later kinds */
		add_unknown_fields(&u);
		kl_buf_release(&st);
	}
	kl_buf_clear(&b);
	assert_int_equal(kl_snapshot_encode(&s, &b), 0);
	assert_int_equal(snapshot_decode_exact(u.data, u.len, &d), 0);
	assert_snapshot_equal(&s, &d);
	assert_int_equal(kl_snapshot_encode(&d, &b2), 0);
	assert_int_equal(b2.len, b.len);
	assert_memory_equal(b2.data, b.data, b.len);
	kl_snapshot_release(&d);

	for (len = 0; len < b.len; len++) {
		int r = snapshot_decode_exact(b.data, len, &d);

		if (!at_field_boundary(b.data, b.len, len)) {
			if (r != -KL_ECORRUPT)
				fail_msg("prefix of %zu bytes gave %d", len, r);
			continue;
		}
		if (r == 0) {
			kl_buf_clear(&b2);
			assert_int_equal(kl_snapshot_encode(&d, &b2), 0);
			assert_int_equal(b2.len, len);
			assert_memory_equal(b2.data, b.data, len);
			kl_snapshot_release(&d);
		} else {
			assert_int_equal(r, -KL_ECORRUPT);
		}
	}
	kl_snapshot_release(&s);
	kl_buf_release(&b);
	kl_buf_release(&b2);
	kl_buf_release(&u);
}

static void snapshot_huge_counts(void **state)
{
	struct kl_buf b = KL_BUF_INIT(KL_BUF_MAX_DEFAULT);
	struct kl_snapshot d;
	size_t i;

	kl_pb_put_uint(&b, 1, 1);
	kl_pb_put_uint(&b, 2, 1);
	kl_pb_put_bytes(&b, 12, id_of(1).b, 32);
	for (i = 0; i < ((size_t)1 << 20) + 1; i++)
		kl_buf_add(&b, "\x52\x00", 2); /* tags="" */
	assert_int_equal(kl_snapshot_decode(b.data, b.len, &d), -KL_ECORRUPT);
	assert_null(d.tags);
	kl_buf_release(&b);
}

/* "replaces" (keel tag): 32 bytes, at most once */
static void snapshot_replaces(void **state)
{
	struct kl_buf b = KL_BUF_INIT(KL_BUF_MAX_DEFAULT);
	struct kl_snapshot d;

	kl_pb_put_uint(&b, 1, 1);
	kl_pb_put_uint(&b, 2, 1);
	kl_pb_put_bytes(&b, 12, id_of(1).b, 32);
	kl_pb_put_bytes(&b, 65, id_of(7).b, 32);
	assert_int_equal(kl_snapshot_decode(b.data, b.len, &d), 0);
	assert_true(d.has_replaces);
	assert_memory_equal(d.replaces.b, id_of(7).b, KL_ID_LEN);
	kl_snapshot_release(&d);
	kl_pb_put_bytes(&b, 65, id_of(8).b, 32);
	assert_int_equal(kl_snapshot_decode(b.data, b.len, &d), -KL_ECORRUPT);
	kl_buf_setlen(&b, 0);
	kl_pb_put_uint(&b, 1, 1);
	kl_pb_put_uint(&b, 2, 1);
	kl_pb_put_bytes(&b, 12, id_of(1).b, 32);
	kl_pb_put_bytes(&b, 65, id_of(7).b, 31);
	assert_int_equal(kl_snapshot_decode(b.data, b.len, &d), -KL_ECORRUPT);
	kl_buf_release(&b);
}

/* "original" (keel copy, field 23): 32 bytes, at most once, round-trips */
static void snapshot_original(void **state)
{
	struct kl_buf b = KL_BUF_INIT(KL_BUF_MAX_DEFAULT);
	struct kl_snapshot s = {.kind = 1, .tree = id_of(1), .original = id_of(9)}, d;

	(void)state;
	s.has_original = true;
	assert_int_equal(kl_snapshot_encode(&s, &b), 0);
	assert_int_equal(kl_snapshot_decode(b.data, b.len, &d), 0);
	assert_true(d.has_original);
	assert_memory_equal(d.original.b, id_of(9).b, KL_ID_LEN);
	kl_snapshot_release(&d);
	kl_pb_put_bytes(&b, 23, id_of(8).b, 32);
	assert_int_equal(kl_snapshot_decode(b.data, b.len, &d), -KL_ECORRUPT);
	kl_buf_setlen(&b, 0);
	kl_pb_put_uint(&b, 1, 1);
	kl_pb_put_uint(&b, 2, 1);
	kl_pb_put_bytes(&b, 12, id_of(1).b, 32);
	kl_pb_put_bytes(&b, 23, id_of(7).b, 31);
	assert_int_equal(kl_snapshot_decode(b.data, b.len, &d), -KL_ECORRUPT);
	kl_buf_release(&b);
}

/* ---- pack headers ------------------------------------------------------- */

static struct kl_blob_entry entry(uint8_t c, uint8_t type, uint8_t comp, uint32_t off, uint32_t len,
				  uint32_t raw)
{
	struct kl_blob_entry e = {.id = id_of(c),
				  .type = type,
				  .compression = comp,
				  .offset = off,
				  .length = len,
				  .raw_length = raw};

	return e;
}

static void build_pack(struct kl_pack_header *h)
{
	struct kl_blob_entry e;

	memset(h, 0, sizeof(*h));
	e = entry(1, KL_BLOB_DATA, KL_COMP_ZSTD, 0, 100, 64 << 20);
	assert_int_equal(kl_pack_header_add(h, &e), 0);
	e = entry(2, KL_BLOB_TREE, KL_COMP_NONE, 100, KL_SEAL_OVERHEAD, 0);
	assert_int_equal(kl_pack_header_add(h, &e), 0);
	e = entry(3, KL_BLOB_DATA, KL_COMP_NONE, 200, 1029, 1000);
	assert_int_equal(kl_pack_header_add(h, &e), 0);
	e = entry(1, KL_BLOB_DATA, KL_COMP_ZSTD, UINT32_MAX - 100, 100, 7);
	assert_int_equal(kl_pack_header_add(h, &e), 0);
}

static void assert_entries_equal(const struct kl_pack_header *a, const struct kl_pack_header *b)
{
	size_t i;

	assert_int_equal(a->n, b->n);
	for (i = 0; i < a->n; i++) {
		const struct kl_blob_entry *x = &a->blobs[i], *y = &b->blobs[i];

		assert_memory_equal(x->id.b, y->id.b, KL_ID_LEN);
		assert_int_equal(x->type, y->type);
		assert_int_equal(x->compression, y->compression);
		assert_int_equal(x->offset, y->offset);
		assert_int_equal(x->length, y->length);
		assert_int_equal(x->raw_length, y->raw_length);
	}
}

static void pack_round_trip(void **state)
{
	struct kl_buf b = KL_BUF_INIT(1 << 20), b2 = KL_BUF_INIT(1 << 20);
	struct kl_pack_header h, d;
	uint64_t data_len = (uint64_t)UINT32_MAX - 100 + 100;

	build_pack(&h);
	assert_int_equal(kl_pack_header_encode(&h, &b), 0);
	assert_int_equal(pack_decode_exact(b.data, b.len, data_len, &d), 0);
	assert_entries_equal(&h, &d);
	assert_int_equal(kl_pack_header_encode(&d, &b2), 0);
	assert_int_equal(b.len, b2.len);
	assert_memory_equal(b.data, b2.data, b.len);
	kl_pack_header_release(&d);
	/* the last blob must end within the data */
	assert_int_equal(pack_decode_exact(b.data, b.len, data_len - 1, &d), -KL_ECORRUPT);
	assert_null(d.blobs);
	kl_pack_header_release(&h);

	/* empty header */
	kl_buf_clear(&b);
	assert_int_equal(kl_pack_header_encode(&h, &b), 0);
	assert_int_equal(b.len, 2);
	assert_int_equal(pack_decode_exact(b.data, b.len, 0, &d), 0);
	assert_int_equal(d.n, 0);
	kl_pack_header_release(&d);
	kl_buf_release(&b);
	kl_buf_release(&b2);
}

static void pack_golden(void **state)
{
	struct kl_buf b = KL_BUF_INIT(1 << 20);
	struct kl_pack_header h = {0};
	struct kl_blob_entry e = entry(0xaa, KL_BLOB_DATA, KL_COMP_ZSTD, 0, 100, 200);
	uint8_t want[64];
	size_t n;

	memset(e.id.b, 0xaa, KL_ID_LEN);
	kl_pack_header_add(&h, &e);
	assert_int_equal(kl_pack_header_encode(&h, &b), 0);
	n = unhex("08 01 12 2b 0a 20", want, sizeof(want));
	memset(want + n, 0xaa, 32);
	n += 32;
	n += unhex("10 01 18 01 28 64 30 c8 01", want + n, sizeof(want) - n);
	assert_int_equal(b.len, n);
	assert_memory_equal(b.data, want, n);
	kl_pack_header_release(&h);
	kl_buf_release(&b);
}

static void pack_rejects(void **state)
{
	static const struct {
		struct kl_blob_entry a, b;
		const char *what;
	} cases[] = {
		{{.type = 1, .offset = 0, .length = 100, .raw_length = 71},
		 {.type = 1, .offset = 99, .length = 100, .raw_length = 71},
		 "overlap"},
		{{.type = 1, .offset = 100, .length = 100, .raw_length = 71},
		 {.type = 1, .offset = 0, .length = 100, .raw_length = 71},
		 "out of order"},
		{{.type = 1, .offset = 0, .length = 100, .raw_length = 71},
		 {.type = 1, .offset = 0, .length = 100, .raw_length = 71},
		 "same offset"},
		{{.type = 1, .offset = 0, .length = 100, .raw_length = 71},
		 {.type = 1, .offset = 100, .length = 28, .raw_length = 0},
		 "short"},
		{{.type = 1, .offset = 0, .length = 100, .raw_length = 71},
		 {.type = 3, .offset = 100, .length = 100, .raw_length = 71},
		 "type 3"},
		{{.type = 0, .offset = 0, .length = 100, .raw_length = 71},
		 {.type = 1, .offset = 100, .length = 100, .raw_length = 71},
		 "type 0"},
		{{.type = 1, .compression = 2, .offset = 0, .length = 100, .raw_length = 71},
		 {.type = 1, .offset = 100, .length = 100, .raw_length = 71},
		 "compression 2"},
		{{.type = 1,
		  .compression = 1,
		  .offset = 0,
		  .length = 100,
		  .raw_length = (64 << 20) + 1},
		 {.type = 1, .offset = 100, .length = 100, .raw_length = 71},
		 "raw too big"},
		{{.type = 1, .offset = 0, .length = 100, .raw_length = 72},
		 {.type = 1, .offset = 100, .length = 100, .raw_length = 71},
		 "raw mismatch"},
		{{.type = 1, .offset = 0, .length = 100, .raw_length = 71},
		 {.type = 1, .offset = 100, .length = 100, .raw_length = 71},
		 NULL},
	};
	size_t i;

	for (i = 0; i < KL_ARRAY_SIZE(cases); i++) {
		struct kl_buf b = KL_BUF_INIT(1 << 20), e = KL_BUF_INIT(1 << 20);
		struct kl_pack_header h = {0}, d;
		struct kl_blob_entry x = cases[i].a, y = cases[i].b;
		int want = cases[i].what ? -KL_ECORRUPT : 0, r;

		/* the encoder refuses too */
		kl_pack_header_add(&h, &x);
		kl_pack_header_add(&h, &y);
		assert_int_equal(kl_pack_header_encode(&h, &e), cases[i].what ? -EINVAL : 0);
		assert_int_equal(e.len, cases[i].what ? 0 : e.len);

		/* and the decoder, given the same entries written by hand */
		kl_pb_put_uint(&b, 1, 1);
		{
			const struct kl_blob_entry *v[2] = {&x, &y};
			size_t j;

			for (j = 0; j < 2; j++) {
				struct kl_buf m = KL_BUF_INIT(1 << 20);

				kl_pb_put_bytes(&m, 1, v[j]->id.b, 32);
				kl_pb_put_uint(&m, 2, v[j]->type);
				kl_pb_put_uint(&m, 3, v[j]->compression);
				kl_pb_put_uint(&m, 4, v[j]->offset);
				kl_pb_put_uint(&m, 5, v[j]->length);
				kl_pb_put_uint(&m, 6, v[j]->raw_length);
				kl_pb_put_bytes(&b, 2, m.data, m.len);
				kl_buf_release(&m);
			}
		}
		r = pack_decode_exact(b.data, b.len, 1000, &d);
		if (r != want)
			fail_msg("%s: got %d, want %d", cases[i].what ? cases[i].what : "valid", r,
				 want);
		kl_pack_header_release(&d);
		kl_pack_header_release(&h);
		kl_buf_release(&b);
		kl_buf_release(&e);
	}
}

static void pack_rejects_fields(void **state)
{
	static const uint8_t id31[31];
	int i;

	for (i = 0; i < 9; i++) {
		struct kl_buf b = KL_BUF_INIT(1 << 20), m = KL_BUF_INIT(1 << 20);
		struct kl_pack_header d;
		int r;

		kl_pb_put_uint(&b, 1, i == 0 ? 2 : 1);
		if (i == 1)
			kl_pb_put_bytes(&m, 1, id31, 31);
		else if (i != 2)
			kl_pb_put_bytes(&m, 1, id_of(1).b, 32);
		kl_pb_put_uint(&m, 2, 1);
		kl_pb_put_uint(&m, 5, 29);
		switch (i) {
		case 3: /* duplicate */
			kl_pb_put_uint(&m, 2, 1);
			break;
		case 4: /* offset as LEN */
			kl_pb_put_bytes(&m, 4, "", 0);
			break;
		case 5: /* > uint32 */
			kl_pb_put_uint(&m, 6, (uint64_t)1 << 32);
			break;
		case 6: /* compression 257 */
			kl_pb_put_uint(&m, 3, 257);
			break;
		case 7: /* entry as varint */
			kl_pb_put_uint(&b, 2, 1);
			break;
		case 8: /* id as varint, twice */
			kl_pb_put_uint(&m, 1, 1);
			break;
		}
		kl_pb_put_bytes(&b, 2, m.data, m.len);
		r = pack_decode_exact(b.data, b.len, 1000, &d);
		if (r != (i == 0 ? -KL_EVERSION : -KL_ECORRUPT))
			fail_msg("case %d: got %d", i, r);
		assert_null(d.blobs);
		kl_buf_release(&b);
		kl_buf_release(&m);
	}
}

static void pack_huge_counts_and_truncation(void **state)
{
	struct kl_buf b = KL_BUF_INIT(KL_BUF_MAX_DEFAULT), b2 = KL_BUF_INIT(1 << 20);
	struct kl_pack_header h, d;
	size_t i, len;

	kl_pb_put_uint(&b, 1, 1);
	for (i = 0; i < 1000000; i++)
		kl_buf_add(&b, "\x12\x00", 2);
	assert_int_equal(kl_pack_header_decode(b.data, b.len, UINT32_MAX, &d), -KL_ECORRUPT);
	assert_null(d.blobs);

	build_pack(&h);
	kl_buf_clear(&b);
	assert_int_equal(kl_pack_header_encode(&h, &b), 0);
	for (len = 0; len < b.len; len++) {
		int r = pack_decode_exact(b.data, len, UINT32_MAX, &d);

		if (!at_field_boundary(b.data, b.len, len)) {
			if (r != -KL_ECORRUPT)
				fail_msg("prefix of %zu bytes gave %d", len, r);
			continue;
		}
		if (r == 0) {
			kl_buf_clear(&b2);
			assert_int_equal(kl_pack_header_encode(&d, &b2), 0);
			assert_int_equal(b2.len, len);
			kl_pack_header_release(&d);
		}
	}
	kl_pack_header_release(&h);
	kl_buf_release(&b);
	kl_buf_release(&b2);
}

/* The trailer: [blobs][sealed header][its length, u32 LE]. */
static void pack_trailer(void **state)
{
	struct kl_pack_trailer tr;
	uint8_t tail[64] = {0};

	(void)state;
	/* valid: a 40-byte sealed header at the end of a 1000-byte pack */
	kl_put_le32(tail + 60, 40);
	assert_int_equal(kl_pack_trailer_parse(tail, 64, 1000, &tr), 0);
	assert_int_equal(tr.header_len, 40);
	assert_int_equal(tr.header_off, 1000 - 4 - 40);
	assert_int_equal(tr.tail_len, 44);
	/* the length alone is enough to say what to read next */
	assert_int_equal(kl_pack_trailer_parse(tail + 60, 4, 1000, &tr), 0);
	assert_int_equal(tr.tail_len, 44);
	assert_null(tr.why);
	/* the smallest pack: an empty sealed header, nothing before it */
	kl_put_le32(tail + 60, KL_FORMAT_SEAL_OVERHEAD);
	assert_int_equal(kl_pack_trailer_parse(tail + 60, 4, KL_PACK_MIN_SIZE, &tr), 0);
	assert_int_equal(tr.header_off, 0);

	/* too short: the pack, or the bytes given */
	assert_int_equal(kl_pack_trailer_parse(tail + 60, 4, KL_PACK_MIN_SIZE - 1, &tr),
			 -KL_ECORRUPT);
	assert_string_equal(tr.why, "too short to be a pack");
	assert_int_equal(kl_pack_trailer_parse(tail, 3, 1000, &tr), -KL_ECORRUPT);
	assert_int_equal(kl_pack_trailer_parse(tail, 0, 1000, &tr), -KL_ECORRUPT);
	assert_int_equal(kl_pack_trailer_parse(tail, 64, 63, &tr), -KL_ECORRUPT);
	assert_string_equal(tr.why, "too short to be a pack");

	/* a length larger than the pack, or than what precedes it */
	kl_put_le32(tail + 60, 997);
	assert_int_equal(kl_pack_trailer_parse(tail, 64, 1000, &tr), -KL_ECORRUPT);
	assert_string_equal(tr.why, "bad header length: truncated?");
	kl_put_le32(tail + 60, 996);
	assert_int_equal(kl_pack_trailer_parse(tail, 64, 1000, &tr), 0);
	assert_int_equal(tr.header_off, 0);
	kl_put_le32(tail + 60, UINT32_MAX);
	assert_int_equal(kl_pack_trailer_parse(tail, 64, (uint64_t)1 << 40, &tr), 0);
	assert_int_equal(tr.tail_len, (uint64_t)UINT32_MAX + 4);
	assert_int_equal(kl_pack_trailer_parse(tail, 64, 1000, &tr), -KL_ECORRUPT);

	/* zero, and anything shorter than a seal */
	kl_put_le32(tail + 60, 0);
	assert_int_equal(kl_pack_trailer_parse(tail, 64, 1000, &tr), -KL_ECORRUPT);
	assert_string_equal(tr.why, "bad header length: truncated?");
	assert_int_equal(tr.header_len, 0);
	assert_int_equal(tr.tail_len, 0);
	kl_put_le32(tail + 60, KL_FORMAT_SEAL_OVERHEAD - 1);
	assert_int_equal(kl_pack_trailer_parse(tail, 64, 1000, &tr), -KL_ECORRUPT);
}

/* ---- index files -------------------------------------------------------- */

static void build_index(struct kl_index_file *f)
{
	struct kl_pack_header h;
	struct kl_id pack;

	memset(f, 0, sizeof(*f));
	build_pack(&h);
	pack = id_of(0x41);
	assert_int_equal(kl_index_file_add(f, &pack, &h), 0);
	assert_null(h.blobs);
	pack = id_of(0x42); /* a pack with no blobs */
	assert_int_equal(kl_index_file_add(f, &pack, &h), 0);
	build_pack(&h);
	h.n = 1;
	pack = id_of(0x43);
	assert_int_equal(kl_index_file_add(f, &pack, &h), 0);
	f->supersedes = kl_calloc(2, sizeof(struct kl_id));
	f->supersedes[0] = id_of(0x51);
	f->supersedes[1] = id_of(0x52);
	f->n_supersedes = 2;
}

static void assert_index_equal(const struct kl_index_file *a, const struct kl_index_file *b)
{
	size_t i;

	assert_int_equal(a->n, b->n);
	for (i = 0; i < a->n; i++) {
		assert_memory_equal(a->packs[i].pack.b, b->packs[i].pack.b, KL_ID_LEN);
		assert_entries_equal(&a->packs[i].h, &b->packs[i].h);
	}
	assert_int_equal(a->n_supersedes, b->n_supersedes);
	if (a->n_supersedes)
		assert_memory_equal(a->supersedes, b->supersedes, a->n_supersedes * KL_ID_LEN);
}

static void index_round_trip(void **state)
{
	struct kl_buf b = KL_BUF_INIT(1 << 20), b2 = KL_BUF_INIT(1 << 20);
	struct kl_index_file f, d, empty = {0};
	size_t len;

	build_index(&f);
	assert_int_equal(kl_index_file_encode(&f, &b), 0);
	assert_int_equal(index_decode_exact(b.data, b.len, &d), 0);
	assert_index_equal(&f, &d);
	assert_int_equal(kl_index_file_encode(&d, &b2), 0);
	assert_int_equal(b.len, b2.len);
	assert_memory_equal(b.data, b2.data, b.len);
	kl_index_file_release(&d);

	for (len = 0; len < b.len; len++) {
		int r = index_decode_exact(b.data, len, &d);

		if (!at_field_boundary(b.data, b.len, len)) {
			if (r != -KL_ECORRUPT)
				fail_msg("prefix of %zu bytes gave %d", len, r);
			assert_null(d.packs);
			continue;
		}
		if (r == 0) {
			kl_buf_clear(&b2);
			assert_int_equal(kl_index_file_encode(&d, &b2), 0);
			assert_int_equal(b2.len, len);
			assert_memory_equal(b2.data, b.data, len);
			kl_index_file_release(&d);
		}
	}

	kl_buf_clear(&b);
	assert_int_equal(kl_index_file_encode(&empty, &b), 0);
	assert_int_equal(b.len, 2);
	assert_int_equal(index_decode_exact(b.data, b.len, &d), 0);
	assert_int_equal(d.n, 0);
	kl_index_file_release(&d);

	/* an invalid entry makes the encoder refuse */
	f.packs[0].h.blobs[1].offset = 50;
	kl_buf_clear(&b);
	assert_int_equal(kl_index_file_encode(&f, &b), -EINVAL);
	assert_int_equal(b.len, 0);
	kl_index_file_release(&f);
	kl_buf_release(&b);
	kl_buf_release(&b2);
}

static void index_rejects(void **state)
{
	static const uint8_t id31[31];
	int i;

	for (i = 0; i < 9; i++) {
		struct kl_buf b = KL_BUF_INIT(1 << 20), p = KL_BUF_INIT(1 << 20);
		struct kl_blob_entry e = entry(1, 1, 1, 0, 100, 5);
		struct kl_index_file d;
		int r, want = -KL_ECORRUPT;

		kl_pb_put_uint(&b, 1, i == 0 ? 3 : 1);
		if (i == 0)
			want = -KL_EVERSION;
		if (i == 1)
			kl_pb_put_bytes(&p, 1, id31, 31);
		else if (i != 2)
			kl_pb_put_bytes(&p, 1, id_of(1).b, 32);
		if (i == 3)
			kl_pb_put_bytes(&p, 1, id_of(1).b, 32);
		{
			struct kl_buf m = KL_BUF_INIT(1 << 20);

			kl_pb_put_bytes(&m, 1, e.id.b, 32);
			kl_pb_put_uint(&m, 2, 1);
			kl_pb_put_uint(&m, 3, 1);
			kl_pb_put_uint(&m, 5, 100);
			kl_pb_put_uint(&m, 6, 5);
			kl_pb_put_bytes(&p, 2, m.data, m.len);
			if (i == 4) /* the same blob twice: overlap */
				kl_pb_put_bytes(&p, 2, m.data, m.len);
			kl_buf_release(&m);
		}
		if (i == 5)
			kl_pb_put_uint(&p, 2, 1);
		kl_pb_put_bytes(&b, 2, p.data, p.len);
		if (i == 6)
			kl_pb_put_bytes(&b, 3, id31, 31);
		if (i == 7)
			kl_pb_put_uint(&b, 3, 1);
		if (i == 8)
			kl_pb_put_uint(&b, 2, 1);
		r = index_decode_exact(b.data, b.len, &d);
		if (r != want)
			fail_msg("case %d: got %d, want %d", i, r, want);
		assert_null(d.packs);
		assert_null(d.supersedes);
		kl_buf_release(&b);
		kl_buf_release(&p);
	}
}

static void index_unknown_fields(void **state)
{
	struct kl_buf b = KL_BUF_INIT(1 << 20), p = KL_BUF_INIT(1 << 20), m = KL_BUF_INIT(1 << 20),
		      canon = KL_BUF_INIT(1 << 20);
	struct kl_index_file f = {0}, d;
	struct kl_pack_header h = {0};
	struct kl_blob_entry e = entry(1, 2, 0, 29, 29, 0);
	struct kl_id pack = id_of(7);

	kl_pack_header_add(&h, &e);
	kl_index_file_add(&f, &pack, &h);
	assert_int_equal(kl_index_file_encode(&f, &canon), 0);

	add_unknown_fields(&m);
	kl_pb_put_uint(&m, 5, 29);
	kl_pb_put_uint(&m, 4, 29);
	kl_pb_put_uint(&m, 2, 2);
	kl_pb_put_bytes(&m, 1, e.id.b, 32);
	add_unknown_fields(&m);
	add_unknown_fields(&p);
	kl_pb_put_bytes(&p, 2, m.data, m.len);
	kl_pb_put_bytes(&p, 1, pack.b, 32);
	add_unknown_fields(&b);
	kl_pb_put_bytes(&b, 2, p.data, p.len);
	kl_pb_put_uint(&b, 1, 1);
	add_unknown_fields(&b);
	assert_int_equal(index_decode_exact(b.data, b.len, &d), 0);
	assert_index_equal(&f, &d);
	kl_buf_clear(&b);
	assert_int_equal(kl_index_file_encode(&d, &b), 0);
	assert_int_equal(b.len, canon.len);
	assert_memory_equal(b.data, canon.data, b.len);
	kl_index_file_release(&d);
	kl_index_file_release(&f);
	kl_buf_release(&b);
	kl_buf_release(&p);
	kl_buf_release(&m);
	kl_buf_release(&canon);
}

/* ---- config ------------------------------------------------------------- */

static void good_config(struct kl_config *c)
{
	memset(c, 0, sizeof(*c));
	c->version = KL_REPO_VERSION;
	memset(c->repo_id.b, 0x11, KL_ID_LEN);
	c->cdc_min = 256 << 10;
	c->cdc_avg = 1 << 20;
	c->cdc_max = 4 << 20;
	c->compression_level = 3;
	c->pack_size = 16 << 20;
	c->created_ns = 0;
	c->cdc_variant = 1;
}

/* The chunker variant: absent for 1, field 11 otherwise; an unknown one needs a newer keel. */
static void config_cdc_variant(void **state)
{
	struct kl_buf b = KL_BUF_INIT(1 << 20), b1 = KL_BUF_INIT(1 << 20);
	struct kl_config c, d;
	uint8_t v3[2];

	good_config(&c);
	assert_int_equal(kl_config_encode(&c, &b1), 0);
	c.cdc_variant = 2;
	assert_int_equal(kl_config_encode(&c, &b), 0);
	assert_int_equal(b.len, b1.len + 2);
	assert_memory_equal(b.data, b1.data, b1.len);
	assert_int_equal(b.data[b1.len], 0x58); /* field 11, varint */
	assert_int_equal(b.data[b1.len + 1], 2);
	assert_int_equal(config_decode_exact(b.data, b.len, &d), 0);
	assert_int_equal(d.cdc_variant, 2);
	/* a config of an older keel, without the field, is variant 1 */
	assert_int_equal(config_decode_exact(b1.data, b1.len, &d), 0);
	assert_int_equal(d.cdc_variant, 1);

	v3[0] = 0x58;
	v3[1] = 3;
	kl_buf_setlen(&b, b1.len);
	assert_int_equal(kl_buf_add(&b, v3, 2), 0);
	assert_int_equal(kl_config_decode(b.data, b.len, &d), -KL_EVERSION);
	v3[1] = 0;
	kl_buf_setlen(&b, b1.len);
	assert_int_equal(kl_buf_add(&b, v3, 2), 0);
	assert_int_equal(kl_config_decode(b.data, b.len, &d), -KL_ECORRUPT);

	for (uint32_t v = 0; v < 4; v += 3) {
		c.cdc_variant = v;
		kl_buf_clear(&b);
		assert_int_equal(kl_config_encode(&c, &b), -EINVAL);
	}
	kl_buf_release(&b);
	kl_buf_release(&b1);
}

/* "chunker_key" (field 24): absent unless set, 32 bytes, at most once */
static void config_chunker_key(void **state)
{
	struct kl_buf b = KL_BUF_INIT(1 << 20), b1 = KL_BUF_INIT(1 << 20);
	struct kl_config c, d;

	(void)state;
	good_config(&c);
	assert_int_equal(kl_config_encode(&c, &b1), 0);
	c.chunker_key = id_of(5);
	c.has_chunker_key = true;
	assert_int_equal(kl_config_encode(&c, &b), 0);
	assert_int_equal(b.len, b1.len + 3 + 32);
	assert_memory_equal(b.data, b1.data, b1.len);
	assert_int_equal(config_decode_exact(b.data, b.len, &d), 0);
	assert_true(d.has_chunker_key);
	assert_memory_equal(d.chunker_key.b, id_of(5).b, KL_ID_LEN);
	assert_int_equal(config_decode_exact(b1.data, b1.len, &d), 0);
	assert_false(d.has_chunker_key);
	kl_pb_put_bytes(&b, 24, id_of(6).b, 32);
	assert_int_equal(kl_config_decode(b.data, b.len, &d), -KL_ECORRUPT);
	kl_buf_setlen(&b, b1.len);
	kl_pb_put_bytes(&b, 24, id_of(6).b, 16);
	assert_int_equal(kl_config_decode(b.data, b.len, &d), -KL_ECORRUPT);
	kl_buf_release(&b);
	kl_buf_release(&b1);
}

static void config_golden_and_round_trip(void **state)
{
	struct kl_buf b = KL_BUF_INIT(1 << 20), b2 = KL_BUF_INIT(1 << 20);
	struct kl_config c, d;
	uint8_t want[128];
	size_t n, len;

	good_config(&c);
	assert_int_equal(kl_config_encode(&c, &b), 0);
	n = unhex("08 01 12 20", want, sizeof(want));
	memset(want + n, 0x11, 32);
	n += 32;
	n += unhex("18 80 80 10 20 80 80 40 28 80 80 80 02 30 06 38 80 80 80 08", want + n,
		   sizeof(want) - n);
	assert_int_equal(b.len, n);
	assert_memory_equal(b.data, want, n);
	assert_int_equal(config_decode_exact(b.data, b.len, &d), 0);
	assert_memory_equal(&c, &d, sizeof(c));

	/* all fields, a negative level */
	c.compression_level = -7;
	c.created_ns = -123456789;
	c.cdc_min = 64;
	c.cdc_avg = 64 << 20 >> 1;
	c.cdc_max = 64 << 20;
	c.pack_size = 1 << 30;
	kl_buf_clear(&b);
	assert_int_equal(kl_config_encode(&c, &b), 0);
	assert_int_equal(config_decode_exact(b.data, b.len, &d), 0);
	assert_memory_equal(&c, &d, sizeof(c));
	assert_int_equal(kl_config_encode(&d, &b2), 0);
	assert_int_equal(b.len, b2.len);
	assert_memory_equal(b.data, b2.data, b.len);

	/* truncation: every prefix loses a required field or breaks one */
	for (len = 0; len < b.len; len++) {
		int r = config_decode_exact(b.data, len, &d);

		if (!at_field_boundary(b.data, b.len, len)) {
			assert_int_equal(r, -KL_ECORRUPT);
			continue;
		}
		/* the last field, created_ns, is optional */
		if (r == 0)
			assert_int_equal(d.created_ns, 0);
	}
	kl_buf_release(&b);
	kl_buf_release(&b2);
}

static void config_rejects(void **state)
{
	struct kl_buf b = KL_BUF_INIT(1 << 20);
	struct kl_config c, d;
	int i;

	for (i = 0; i < 14; i++) {
		good_config(&c);
		switch (i) {
		case 0:
			c.cdc_min = 63;
			break;
		case 1:
			c.cdc_min = c.cdc_avg;
			break;
		case 2:
			c.cdc_max = c.cdc_avg;
			break;
		case 3:
			c.cdc_avg = 3 << 19;
			break;
		case 4:
			c.cdc_max = (64 << 20) + 1;
			break;
		case 5:
			c.compression_level = -8;
			break;
		case 6:
			c.compression_level = 23;
			break;
		case 7:
			c.pack_size = (1 << 20) - 1;
			break;
		case 8:
			c.pack_size = (1u << 30) + 1;
			break;
		case 9:
			c.version = 0;
			break;
		case 10:
			c.version = 2;
			break;
		case 11:
			c.cdc_min = 0;
			c.cdc_avg = 0;
			c.cdc_max = 0;
			break;
		case 12:
			c.pack_size = 0;
			break;
		case 13:
			c.cdc_max = 0;
			break;
		}
		kl_buf_clear(&b);
		assert_int_equal(kl_config_encode(&c, &b), -EINVAL);
		assert_int_equal(b.len, 0);
	}

	/* decoder: build by hand */
	for (i = 0; i < 10; i++) {
		int want = -KL_ECORRUPT, r;

		kl_buf_clear(&b);
		if (i != 0)
			kl_pb_put_uint(&b, 1, i == 1 ? 0 : i == 2 ? 2 : 1);
		if (i == 2)
			want = -KL_EVERSION;
		if (i != 3)
			kl_pb_put_bytes(&b, 2, id_of(1).b, i == 4 ? 31 : 32);
		kl_pb_put_uint(&b, 3, i == 5 ? 4096 : 1024);
		kl_pb_put_uint(&b, 4, 2048);
		kl_pb_put_uint(&b, 5, 8192);
		kl_pb_put_sint(&b, 6, i == 6 ? (int64_t)1 << 33 : 1);
		kl_pb_put_uint(&b, 7, 1 << 20);
		if (i == 7)
			kl_pb_put_uint(&b, 7, 1 << 20);
		if (i == 8)
			kl_pb_put_bytes(&b, 8, "", 0);
		if (i == 9)
			want = 0;
		r = config_decode_exact(b.data, b.len, &d);
		if (r != want)
			fail_msg("case %d: got %d, want %d", i, r, want);
	}

	/* a newer version is reported as such even if the rest is nonsense */
	kl_buf_clear(&b);
	kl_pb_put_uint(&b, 3, 1);
	kl_pb_put_uint(&b, 1, 9);
	assert_int_equal(config_decode_exact(b.data, b.len, &d), -KL_EVERSION);
	kl_buf_release(&b);
}

/* ---- allocation failures ------------------------------------------------ */

/*
 * Fails the 1st, 2nd, ... allocation until the operation succeeds; each
 * failure must return -ENOMEM and leak nothing (ASan checks the leaks).
 */
/* ---- trees continued over several blobs ---------------------------------- */

/* n sorted file nodes n00000, n00001, ...; every third has a user name */
static void numbered_tree(struct kl_tree *t, size_t n)
{
	memset(t, 0, sizeof(*t));
	for (size_t i = 0; i < n; i++) {
		struct kl_node nd;
		char name[16];

		snprintf(name, sizeof(name), "n%05zu", i);
		min_node(&nd, name, strlen(name), KL_NODE_FILE);
		if (i % 3 == 0)
			nd.user = kl_strdup("someone");
		assert_int_equal(kl_tree_add(t, &nd), 0);
	}
}

/* Encodes t as planned, with made-up part ids; parts[0] is the head. */
static size_t encode_planned(const struct kl_tree *t, size_t max_nodes, size_t part_bytes,
			     size_t part_nodes, struct kl_buf *parts, size_t max_parts,
			     struct kl_id *more)
{
	size_t *ends, n_parts;

	assert_int_equal(kl_tree_plan(t, (size_t)64 << 20, max_nodes, part_bytes, part_nodes, &ends,
				      &n_parts),
			 0);
	assert_true(n_parts >= 1 && n_parts <= max_parts);
	assert_int_equal(ends[n_parts - 1], t->n);
	for (size_t i = 1; i < n_parts; i++) {
		kl_buf_init(&parts[i], 1 << 24);
		assert_true(ends[i] > ends[i - 1]);
		assert_int_equal(kl_tree_encode_part(t, ends[i - 1], ends[i], NULL, 0, &parts[i]),
				 0);
		more[i - 1] = id_of((uint8_t)(0x80 + i));
	}
	kl_buf_init(&parts[0], 1 << 24);
	assert_int_equal(kl_tree_encode_part(t, 0, ends[0], more, n_parts - 1, &parts[0]), 0);
	free(ends);
	return n_parts;
}

static void tree_continued_round_trip(void **state)
{
	struct kl_buf parts[16], one = KL_BUF_INIT(1 << 24), again = KL_BUF_INIT(1 << 24);
	struct kl_id more[16];
	struct kl_tree t, head, part;
	size_t n_parts;

	numbered_tree(&t, 20);
	/* fits: one plain version-1 blob, the same bytes as kl_tree_encode() */
	n_parts = encode_planned(&t, 20, 1 << 20, 5, parts, 16, more);
	assert_int_equal(n_parts, 1);
	assert_int_equal(kl_tree_encode(&t, &one), 0);
	assert_int_equal(parts[0].len, one.len);
	assert_memory_equal(parts[0].data, one.data, one.len);
	assert_int_equal(parts[0].data[1], 1);
	kl_buf_release(&parts[0]);

	/* 19 nodes allowed, so it splits, in parts of 6 nodes */
	n_parts = encode_planned(&t, 19, 1 << 20, 6, parts, 16, more);
	assert_int_equal(n_parts, 4);
	assert_int_equal(parts[0].data[1], 2); /* the head's version */
	assert_int_equal(tree_decode_exact(parts[0].data, parts[0].len, &head), 0);
	assert_int_equal(head.n, 6);
	assert_int_equal(head.n_more, 3);
	for (size_t i = 0; i < 3; i++)
		assert_memory_equal(head.more[i].b, more[i].b, KL_ID_LEN);
	/* the decoded head encodes to the same bytes */
	assert_int_equal(kl_tree_encode_part(&head, 0, head.n, head.more, head.n_more, &again), 0);
	assert_int_equal(again.len, parts[0].len);
	assert_memory_equal(again.data, parts[0].data, again.len);
	for (size_t i = 1; i < n_parts; i++) {
		assert_int_equal(parts[i].data[1], 1); /* parts are plain trees */
		assert_int_equal(tree_decode_exact(parts[i].data, parts[i].len, &part), 0);
		assert_int_equal(part.n_more, 0);
		assert_int_equal(kl_tree_join(&head, &part), 0);
		assert_int_equal(part.n, 0);
		assert_null(part.nodes);
	}
	assert_tree_equal(&t, &head);
	assert_int_equal(head.n_more, 3); /* kept for whoever marks used blobs */
	assert_non_null(kl_tree_find(&head, (const uint8_t *)"n00019", 6));

	/* a byte limit splits too: nodes of 21, 12, 12, 21... bytes, 36 per part */
	kl_tree_release(&head);
	for (size_t i = 0; i < n_parts; i++)
		kl_buf_release(&parts[i]);
	n_parts = encode_planned(&t, 19, 36, 1000, parts, 16, more);
	assert_int_equal(n_parts, 10);
	for (size_t i = 0; i < n_parts; i++) {
		assert_true(parts[i].len <= 2 + 36 + (i ? 0 : 9 * 34));
		kl_buf_release(&parts[i]);
	}

	kl_tree_release(&t);
	kl_buf_release(&one);
	kl_buf_release(&again);
}

static void tree_join_rejects(void **state)
{
	struct kl_buf parts[4];
	struct kl_id more[4];
	struct kl_tree t, head, p[4], empty = {0};
	size_t n_parts;

	numbered_tree(&t, 12);
	n_parts = encode_planned(&t, 4, 1 << 20, 4, parts, 4, more);
	assert_int_equal(n_parts, 3);

	/* parts out of order, a part twice, an empty part, a head as a part */
	assert_int_equal(tree_decode_exact(parts[0].data, parts[0].len, &head), 0);
	assert_int_equal(tree_decode_exact(parts[2].data, parts[2].len, &p[2]), 0);
	assert_int_equal(tree_decode_exact(parts[1].data, parts[1].len, &p[1]), 0);
	assert_int_equal(kl_tree_join(&head, &p[2]), 0);
	assert_int_equal(kl_tree_join(&head, &p[1]), -KL_ECORRUPT);
	assert_null(p[1].nodes); /* released all the same */
	assert_int_equal(head.n, 8);
	assert_int_equal(tree_decode_exact(parts[2].data, parts[2].len, &p[2]), 0);
	assert_int_equal(kl_tree_join(&head, &p[2]), -KL_ECORRUPT);
	assert_int_equal(kl_tree_join(&head, &empty), -KL_ECORRUPT);
	assert_int_equal(tree_decode_exact(parts[0].data, parts[0].len, &p[0]), 0);
	assert_int_equal(kl_tree_join(&head, &p[0]), -KL_ECORRUPT);
	/* nothing to continue */
	assert_int_equal(tree_decode_exact(parts[1].data, parts[1].len, &p[1]), 0);
	assert_int_equal(kl_tree_join(&empty, &p[1]), -KL_ECORRUPT);
	assert_int_equal(head.n, 8);
	kl_tree_release(&head);

	/* a part whose first node equals the head's last */
	assert_int_equal(tree_decode_exact(parts[0].data, parts[0].len, &head), 0);
	kl_buf_init(&parts[3], 1 << 24);
	assert_int_equal(kl_tree_encode_part(&t, 3, 6, NULL, 0, &parts[3]), 0);
	assert_int_equal(tree_decode_exact(parts[3].data, parts[3].len, &p[3]), 0);
	assert_int_equal(kl_tree_join(&head, &p[3]), -KL_ECORRUPT);
	kl_tree_release(&head);

	for (size_t i = 0; i < 4; i++)
		kl_buf_release(&parts[i]);
	kl_tree_release(&t);
}

static void tree_continued_decode_rejects(void **state)
{
	struct raw_tree r;
	struct kl_tree t;
	uint8_t in[64];
	size_t n;

	/* version 1 with a continuation: old readers would read part of it */
	raw_begin(&r);
	raw_node_basic(&r, "a", 1, KL_NODE_FILE);
	raw_node_end(&r);
	assert_int_equal(kl_pb_put_bytes(&r.out, 3, id_of(1).b, 32), 0);
	assert_tree_decode_fails(&r, -KL_ECORRUPT, "v1 with more");

	/* a head with no nodes */
	n = unhex("08 02 1a 20 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f"
		  "   10 11 12 13 14 15 16 17 18 19 1a 1b 1c 1d 1e 1f",
		  in, sizeof(in));
	assert_int_equal(tree_decode_exact(in, n, &t), -KL_ECORRUPT);
	/* ... which is fine with a node */
	kl_buf_init(&r.out, 1 << 20);
	kl_buf_init(&r.node, 1 << 20);
	assert_int_equal(kl_buf_add(&r.out, in, n), 0);
	raw_node_basic(&r, "a", 1, KL_NODE_FILE);
	raw_node_end(&r);
	assert_int_equal(tree_decode_exact(r.out.data, r.out.len, &t), 0);
	assert_int_equal(t.n, 1);
	assert_int_equal(t.n_more, 1);
	assert_int_equal(t.more[0].b[31], 0x1f);
	kl_tree_release(&t);
	raw_end(&r);

	/* an id of the wrong length, or of the wrong wire type */
	raw_begin(&r);
	r.out.data[1] = 2;
	raw_node_basic(&r, "a", 1, KL_NODE_FILE);
	raw_node_end(&r);
	assert_int_equal(kl_pb_put_bytes(&r.out, 3, id_of(1).b, 31), 0);
	assert_tree_decode_fails(&r, -KL_ECORRUPT, "short id");
	raw_begin(&r);
	r.out.data[1] = 2;
	raw_node_basic(&r, "a", 1, KL_NODE_FILE);
	raw_node_end(&r);
	assert_int_equal(kl_pb_put_uint(&r.out, 3, 7), 0);
	assert_tree_decode_fails(&r, -KL_ECORRUPT, "varint id");

	/* KL_TREE_MAX_PARTS - 1 continuations at most */
	for (size_t want = KL_TREE_MAX_PARTS - 1; want <= KL_TREE_MAX_PARTS; want++) {
		raw_begin(&r);
		r.out.data[1] = 2;
		raw_node_basic(&r, "a", 1, KL_NODE_FILE);
		raw_node_end(&r);
		for (size_t i = 0; i < want; i++)
			assert_int_equal(kl_pb_put_bytes(&r.out, 3, id_of(1).b, 32), 0);
		if (want < KL_TREE_MAX_PARTS) {
			assert_int_equal(tree_decode_exact(r.out.data, r.out.len, &t), 0);
			assert_int_equal(t.n_more, want);
			kl_tree_release(&t);
		} else {
			assert_tree_decode_fails(&r, -KL_ECORRUPT, "too many parts");
			continue;
		}
		raw_end(&r);
	}
}

/* A store for kl_tree_store(): blob k gets id id_of(k + 1); fails at fail_at. */
struct fake_store {
	struct kl_buf blobs[16];
	size_t n, fail_at;
};

static int fake_store_put(void *ud, const uint8_t *p, size_t n, struct kl_id *ret)
{
	struct fake_store *fs = ud;

	if (fs->n == fs->fail_at || fs->n == 16)
		return -EIO;
	kl_buf_init(&fs->blobs[fs->n], 1 << 24);
	assert_int_equal(kl_buf_add(&fs->blobs[fs->n], p, n), 0);
	*ret = id_of((uint8_t)(++fs->n));
	return 0;
}

static void tree_store_parts_then_head(void **state)
{
	struct fake_store fs = {.fail_at = SIZE_MAX};
	struct kl_buf plain = KL_BUF_INIT(1 << 24);
	struct kl_tree t, head, part;
	struct kl_id id;

	numbered_tree(&t, 10);
	/* fits: the plain encoding, stored once */
	assert_int_equal(kl_tree_store(&t, 10, fake_store_put, &fs, &id), 0);
	assert_int_equal(fs.n, 1);
	assert_int_equal(kl_tree_encode(&t, &plain), 0);
	assert_int_equal(fs.blobs[0].len, plain.len);
	assert_memory_equal(fs.blobs[0].data, plain.data, plain.len);
	kl_buf_release(&fs.blobs[0]);

	/* 4 nodes a blob: parts 1 and 2 stored first, the head last names them */
	fs.n = 0;
	assert_int_equal(kl_tree_store(&t, 4, fake_store_put, &fs, &id), 0);
	assert_int_equal(fs.n, 3);
	assert_memory_equal(id.b, id_of(3).b, KL_ID_LEN);
	assert_int_equal(tree_decode_exact(fs.blobs[2].data, fs.blobs[2].len, &head), 0);
	assert_int_equal(head.n_more, 2);
	for (size_t i = 0; i < head.n_more; i++) {
		size_t k = head.more[i].b[1] - 1; /* id_of(k + 1) */

		assert_memory_equal(head.more[i].b, id_of((uint8_t)(i + 1)).b, KL_ID_LEN);
		assert_int_equal(tree_decode_exact(fs.blobs[k].data, fs.blobs[k].len, &part), 0);
		assert_int_equal(kl_tree_join(&head, &part), 0);
	}
	assert_tree_equal(&t, &head);
	kl_tree_release(&head);
	for (size_t i = 0; i < fs.n; i++)
		kl_buf_release(&fs.blobs[i]);

	/* a failing store stops it */
	fs.n = 0;
	fs.fail_at = 1;
	assert_int_equal(kl_tree_store(&t, 4, fake_store_put, &fs, &id), -EIO);
	assert_int_equal(fs.n, 1);
	kl_buf_release(&fs.blobs[0]);
	kl_tree_release(&t);
	kl_buf_release(&plain);
}

static void tree_plan_and_encode_caps(void **state)
{
	struct kl_buf b = KL_BUF_INIT(1 << 24);
	struct kl_tree t, fake = {0};
	struct kl_id more[2] = {id_of(1), id_of(2)};
	size_t *ends, n_parts;

	/* a head needs a node; unsorted input is refused by the plan too */
	numbered_tree(&t, KL_TREE_MAX_PARTS + 1);
	assert_int_equal(kl_tree_encode_part(&t, 2, 2, more, 2, &b), -EINVAL);
	assert_int_equal(kl_tree_encode_part(&t, 3, 2, NULL, 0, &b), -EINVAL);
	assert_int_equal(kl_tree_encode_part(&t, 0, t.n + 1, NULL, 0, &b), -EINVAL);
	assert_int_equal(b.len, 0);

	/* one node per part: one part too many */
	assert_int_equal(kl_tree_plan(&t, 1 << 20, 1, 1 << 20, 1, &ends, &n_parts), -E2BIG);
	assert_null(ends);
	kl_node_release(&t.nodes[--t.n]);
	assert_int_equal(kl_tree_plan(&t, 1 << 20, 1, 1 << 20, 1, &ends, &n_parts), 0);
	assert_int_equal(n_parts, KL_TREE_MAX_PARTS);
	free(ends);

	{
		struct kl_node tmp = t.nodes[0];

		t.nodes[0] = t.nodes[1];
		t.nodes[1] = tmp;
		assert_int_equal(kl_tree_plan(&t, 1 << 20, 1, 1 << 20, 1, &ends, &n_parts),
				 -EINVAL);
	}

	/* more nodes than a directory may have, refused before they are read */
	fake.n = KL_TREE_MAX_TOTAL_NODES + 1;
	assert_int_equal(kl_tree_plan(&fake, 1 << 20, 1, 1 << 20, 1, &ends, &n_parts), -E2BIG);
	kl_tree_release(&t);
	kl_buf_release(&b);
}

static void alloc_failures(void **state)
{
	struct kl_buf tb = KL_BUF_INIT(KL_BUF_MAX_DEFAULT), sb = KL_BUF_INIT(1 << 20),
		      ib = KL_BUF_INIT(1 << 20), out = KL_BUF_INIT(KL_BUF_MAX_DEFAULT);
	struct kl_tree t;
	struct kl_snapshot s;
	struct kl_index_file f;
	long nth;
	int r, which;

	build_full_tree(&t);
	/* unsorted xattrs make the encoder allocate too */
	{
		struct kl_node *file =
			(struct kl_node *)kl_tree_find(&t, (const uint8_t *)"file", 4);
		struct kl_xattr tmp = file->xattrs[0];

		file->xattrs[0] = file->xattrs[1];
		file->xattrs[1] = tmp;
	}
	assert_int_equal(kl_tree_encode(&t, &tb), 0);
	full_snapshot(&s);
	assert_int_equal(kl_snapshot_encode(&s, &sb), 0);
	build_index(&f);
	assert_int_equal(kl_index_file_encode(&f, &ib), 0);

	for (which = 0; which < 6; which++) {
		for (nth = 1;; nth++) {
			struct kl_tree dt;
			struct kl_snapshot ds;
			struct kl_index_file df;

			kl_buf_release(&out);
			kl_alloc_fail_after(nth);
			switch (which) {
			case 0:
				r = kl_tree_decode(tb.data, tb.len, &dt);
				kl_alloc_fail_after(0);
				kl_tree_release(&dt);
				break;
			case 1:
				r = kl_snapshot_decode(sb.data, sb.len, &ds);
				kl_alloc_fail_after(0);
				kl_snapshot_release(&ds);
				break;
			case 2:
				r = kl_index_file_decode(ib.data, ib.len, &df);
				kl_alloc_fail_after(0);
				kl_index_file_release(&df);
				break;
			case 3:
				r = kl_tree_encode(&t, &out);
				break;
			case 4:
				r = kl_snapshot_encode(&s, &out);
				break;
			default:
				r = kl_index_file_encode(&f, &out);
				break;
			}
			kl_alloc_fail_after(0);
			if (r == 0)
				break;
			if (r != -ENOMEM)
				fail_msg("op %d, allocation %ld: got %d", which, nth, r);
			assert_int_equal(out.len, 0);
		}
		assert_true(nth > 1);
	}
	kl_tree_release(&t);
	kl_snapshot_release(&s);
	kl_index_file_release(&f);
	kl_buf_release(&tb);
	kl_buf_release(&sb);
	kl_buf_release(&ib);
	kl_buf_release(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pb_varint_edges),
		cmocka_unit_test(pb_rejects_malformed),
		cmocka_unit_test(pb_fixed_and_len),
		cmocka_unit_test(pb_zigzag),
		cmocka_unit_test(pb_strings),
		cmocka_unit_test(name_cmp_order),
		cmocka_unit_test(tree_round_trip_full),
		cmocka_unit_test(tree_golden_bytes),
		cmocka_unit_test(tree_minimal_nodes),
		cmocka_unit_test(tree_sort_and_add),
		cmocka_unit_test(tree_encode_rejects),
		cmocka_unit_test(tree_xattrs_canonical),
		cmocka_unit_test(tree_decode_rejects_names),
		cmocka_unit_test(tree_decode_rejects_fields),
		cmocka_unit_test(tree_decode_rejects_versions),
		cmocka_unit_test(tree_unknown_fields),
		cmocka_unit_test(tree_truncated_everywhere),
		cmocka_unit_test(tree_huge_counts),
		cmocka_unit_test(tree_noncanonical_input),
		cmocka_unit_test(tree_continued_round_trip),
		cmocka_unit_test(tree_join_rejects),
		cmocka_unit_test(tree_continued_decode_rejects),
		cmocka_unit_test(tree_plan_and_encode_caps),
		cmocka_unit_test(tree_store_parts_then_head),
		cmocka_unit_test(snapshot_round_trip),
		cmocka_unit_test(snapshot_minimal_golden),
		cmocka_unit_test(snapshot_rejects),
		cmocka_unit_test(snapshot_encode_rejects),
		cmocka_unit_test(snapshot_image_fields),
		cmocka_unit_test(snapshot_unknown_and_truncated),
		cmocka_unit_test(snapshot_huge_counts),
		cmocka_unit_test(snapshot_replaces),
		cmocka_unit_test(snapshot_original),
		cmocka_unit_test(pack_round_trip),
		cmocka_unit_test(pack_golden),
		cmocka_unit_test(pack_rejects),
		cmocka_unit_test(pack_rejects_fields),
		cmocka_unit_test(pack_huge_counts_and_truncation),
		cmocka_unit_test(pack_trailer),
		cmocka_unit_test(index_round_trip),
		cmocka_unit_test(index_rejects),
		cmocka_unit_test(index_unknown_fields),
		cmocka_unit_test(config_golden_and_round_trip),
		cmocka_unit_test(config_cdc_variant),
		cmocka_unit_test(config_chunker_key),
		cmocka_unit_test(config_rejects),
		cmocka_unit_test(alloc_failures),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
