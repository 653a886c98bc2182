/*
 * Fuzzes the xbstream parser (src/db/xbstream.c), which reads what
 * mariabackup --stream=xbstream writes. Oracles: a chunk's path is
 * relative and clean and its offset + length does not overflow; the
 * data() bytes of a payload chunk add up to its length; and feeding the
 * input in pieces (sizes from the first byte) gives the same events and
 * the same result as feeding it whole.
 */
#include <stdlib.h>
#include <string.h>

#include "keel/db.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct trace {
	uint64_t hash; /* FNV-1a over the events */
	uint64_t want; /* payload bytes the current chunk still owes */
	int bad;
};

static void mix(struct trace *t, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		t->hash = (t->hash ^ b[i]) * 0x100000001b3ull;
}

static int on_chunk(void *ud, const struct kl_xbs_chunk *c)
{
	struct trace *t = ud;
	size_t n = strlen(c->path);

	if (t->want || !n || c->path[0] == '/' || strstr(c->path, "//") ||
	    c->offset + c->len < c->offset || (c->type != 'P' && c->type != 'E'))
		t->bad = 1;
	t->want = c->type == 'P' ? c->len : 0;
	mix(t, &c->type, 1);
	mix(t, c->path, n + 1);
	mix(t, &c->offset, sizeof(c->offset));
	mix(t, &c->len, sizeof(c->len));
	return 0;
}

static int on_data(void *ud, const uint8_t *p, size_t n)
{
	struct trace *t = ud;

	if (!n || n > t->want)
		t->bad = 1;
	t->want -= n < t->want ? n : t->want;
	mix(t, p, n);
	return 0;
}

static const struct kl_xbs_ops ops = {on_chunk, on_data};

static int run(const uint8_t *data, size_t size, size_t piece, struct trace *t)
{
	struct kl_xbs x;
	int rc = 0;

	memset(t, 0, sizeof(*t));
	t->hash = 0xcbf29ce484222325ull;
	kl_xbs_init(&x, &ops, t);
	for (size_t off = 0; off < size && rc >= 0; off += piece)
		rc = kl_xbs_feed(&x, data + off, size - off < piece ? size - off : piece);
	if (rc >= 0)
		rc = kl_xbs_finish(&x);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct trace a, b;
	size_t piece = size ? (size_t)(data[0] % 17) + 1 : 1;
	int ra = run(data, size, size ? size : 1, &a), rb = run(data, size, piece, &b);

	if (a.bad || b.bad || ra != rb)
		abort();
	/* the events up to the first error are the same; after a success, all of them */
	if (ra >= 0 && (a.hash != b.hash || a.want))
		abort();
	return 0;
}
