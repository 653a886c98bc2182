/*
 * Fuzzes the tar stream parser (src/db/tar.c), which reads what a
 * database server sends. Oracles: a member's path is clean (relative, no
 * "", "." or ".." part), a file's data adds up to its size exactly, and
 * feeding the input in pieces of any size gives the same members, data
 * and result as feeding it whole.
 */
#include <stdlib.h>
#include <string.h>

#include "keel/db.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct events {
	uint64_t hash; /* of every callback and its arguments, in order */
	uint64_t left; /* of the current file's data */
	bool in_file;
};

static void mix(struct events *ev, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		ev->hash = (ev->hash ^ b[i]) * 1099511628211ull;
}

static void check_path(const char *path)
{
	const char *p = path;

	if (!*p || *p == '/')
		abort();
	while (*p) {
		const char *e = strchr(p, '/');
		size_t len = e ? (size_t)(e - p) : strlen(p);

		if (!len || (len == 1 && p[0] == '.') || (len == 2 && !memcmp(p, "..", 2)))
			abort();
		p += len;
		if (*p)
			p++;
	}
}

static int on_entry(void *ud, const struct kl_tar_entry *e)
{
	struct events *ev = ud;

	if (ev->in_file)
		abort();
	check_path(e->path);
	mix(ev, "E", 1);
	mix(ev, e->path, strlen(e->path) + 1);
	mix(ev, e->link, strlen(e->link) + 1);
	mix(ev, &e->type, sizeof(e->type));
	mix(ev, &e->size, sizeof(e->size));
	ev->in_file = true;
	ev->left = e->size;
	return 0;
}

static int on_data(void *ud, const uint8_t *p, size_t n)
{
	struct events *ev = ud;

	if (!ev->in_file || n > ev->left || !n)
		abort();
	ev->left -= n;
	mix(ev, p, n);
	return 0;
}

static int on_end(void *ud)
{
	struct events *ev = ud;

	if (!ev->in_file || ev->left)
		abort();
	ev->in_file = false;
	mix(ev, "Z", 1);
	return 0;
}

static const struct kl_tar_ops ops = {on_entry, on_data, on_end};

static int run(const uint8_t *data, size_t size, size_t piece, struct events *ev)
{
	struct kl_tar t;
	int r = 0;

	memset(ev, 0, sizeof(*ev));
	kl_tar_init(&t, &ops, ev);
	for (size_t o = 0; r >= 0 && o < size; o += piece)
		r = kl_tar_feed(&t, data + o, size - o < piece ? size - o : piece);
	if (r >= 0)
		r = kl_tar_finish(&t);
	kl_tar_release(&t);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct events whole, parts;
	size_t piece;
	int a, b;

	if (!size)
		return 0;
	piece = (size_t)data[0] % 97 + 1;
	data++;
	size--;
	a = run(data, size, size ? size : 1, &whole);
	b = run(data, size, piece, &parts);
	if (a == -ENOMEM || b == -ENOMEM)
		return 0;
	if (a != b || (a >= 0 && whole.hash != parts.hash))
		abort();
	return 0;
}
