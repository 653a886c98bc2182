/*
 * jsonget: the fast path of tests/lib.sh's json_get and json_check, which
 * otherwise start python3 (about 0.1 s of CPU each; the suite calls them
 * hundreds of times, some in polling loops).
 *
 *     jsonget KEY < JSON     every scalar value of KEY, as json_get prints it
 *     jsonget --check < JSON exit 0 when the input is one JSON document or
 *                            JSON lines
 *
 * It must print exactly what the Python code in tests/lib.sh prints, so
 * it handles only a strict subset of JSON and exits 3, having printed
 * nothing, for anything else: the caller then runs the Python code on the
 * same input. Outside the subset are: any input Python might reject or
 * read differently (a parse error, NaN, integers of more than 4,000
 * digits, nesting deeper than 200, a duplicate key, a key with an escaped
 * surrogate, control characters, line separators other than \n and \r in
 * JSON lines) and printing a value whose text would need Python's rules
 * (a float; a string with a lone surrogate other than the U+DC80..U+DCFF
 * that stands for a byte). Output is buffered and written only at the end.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FALLBACK 3
#define MAX_DEPTH 200
#define MAX_DIGITS 4000

struct buf {
	char *p;
	size_t len, cap;
};

struct parser {
	const unsigned char *s, *end;
	const char *key; /* NULL: --check */
	size_t key_len;
	struct buf out;
	bool bad; /* outside the subset: fall back */
};

static void put(struct buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;

		while (cap < b->len + n)
			cap *= 2;
		b->p = realloc(b->p, cap);
		if (!b->p) {
			perror("jsonget");
			exit(1);
		}
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void ws(struct parser *ps)
{
	while (ps->s < ps->end &&
	       (*ps->s == ' ' || *ps->s == '\t' || *ps->s == '\n' || *ps->s == '\r'))
		ps->s++;
}

static int hex4(const unsigned char *p)
{
	int v = 0;

	for (int i = 0; i < 4; i++) {
		int c = p[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

static void utf8(struct buf *b, unsigned cp)
{
	unsigned char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (unsigned char)(0xc0 | cp >> 6);
		u[1] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (unsigned char)(0xe0 | cp >> 12);
		u[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		u[2] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (unsigned char)(0xf0 | cp >> 18);
		u[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
		u[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		u[3] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	put(b, u, n);
}

/*
 * A string, its bytes as Python would print them into *b. is_key: an
 * escaped U+DC80..U+DCFF is outside the subset (Python would compare it
 * unlike its byte).
 */
static void string(struct parser *ps, struct buf *b, bool is_key)
{
	ps->s++; /* the opening quote */
	while (!ps->bad) {
		if (ps->s >= ps->end || *ps->s < 0x20) {
			ps->bad = true;
			return;
		}
		if (*ps->s == '"') {
			ps->s++;
			return;
		}
		if (*ps->s != '\\') {
			put(b, ps->s++, 1);
			continue;
		}
		if (ps->end - ps->s < 2) {
			ps->bad = true;
			return;
		}
		switch (ps->s[1]) {
		case '"':
			put(b, "\"", 1);
			break;
		case '\\':
			put(b, "\\", 1);
			break;
		case '/':
			put(b, "/", 1);
			break;
		case 'b':
			put(b, "\b", 1);
			break;
		case 'f':
			put(b, "\f", 1);
			break;
		case 'n':
			put(b, "\n", 1);
			break;
		case 'r':
			put(b, "\r", 1);
			break;
		case 't':
			put(b, "\t", 1);
			break;
		case 'u': {
			int cp = ps->end - ps->s >= 6 ? hex4(ps->s + 2) : -1, lo;

			if (cp < 0) {
				ps->bad = true;
				return;
			}
			if (cp >= 0xd800 && cp < 0xdc00 && ps->end - ps->s >= 12 &&
			    ps->s[6] == '\\' && ps->s[7] == 'u' &&
			    (lo = hex4(ps->s + 8)) >= 0xdc00 && lo < 0xe000) {
				utf8(b, 0x10000 + (((unsigned)cp - 0xd800) << 10) +
						((unsigned)lo - 0xdc00));
				ps->s += 12;
				continue;
			}
			if (cp >= 0xdc80 && cp < 0xdd00 && !is_key) {
				/* Python's surrogateescape: the byte it stands for */
				unsigned char c = (unsigned char)(cp - 0xdc00);

				put(b, &c, 1);
			} else if (cp >= 0xd800 && cp < 0xe000) {
				ps->bad = true;
				return;
			} else {
				utf8(b, (unsigned)cp);
			}
			ps->s += 6;
			continue;
		}
		default:
			ps->bad = true;
			return;
		}
		ps->s += 2;
	}
}

static size_t digits(struct parser *ps)
{
	const unsigned char *start = ps->s;

	while (ps->s < ps->end && *ps->s >= '0' && *ps->s <= '9')
		ps->s++;
	return (size_t)(ps->s - start);
}

/* a number; print: write it as Python prints the value (integers only) */
static void number(struct parser *ps, bool print)
{
	const unsigned char *start = ps->s;
	bool is_float = false;
	size_t n;

	if (*ps->s == '-')
		ps->s++;
	n = digits(ps);
	if (n == 0 || n > MAX_DIGITS || (n > 1 && ps->s[-(long)n] == '0')) {
		ps->bad = true;
		return;
	}
	if (ps->s < ps->end && *ps->s == '.') {
		ps->s++;
		is_float = true;
		if (!digits(ps)) {
			ps->bad = true;
			return;
		}
	}
	if (ps->s < ps->end && (*ps->s == 'e' || *ps->s == 'E')) {
		ps->s++;
		is_float = true;
		if (ps->s < ps->end && (*ps->s == '+' || *ps->s == '-'))
			ps->s++;
		if (!digits(ps)) {
			ps->bad = true;
			return;
		}
	}
	if (!print)
		return;
	if (is_float) {
		ps->bad = true; /* repr() of a float: Python's own rules */
		return;
	}
	if (ps->s - start == 2 && start[0] == '-' && start[1] == '0')
		put(&ps->out, "0", 1);
	else
		put(&ps->out, start, (size_t)(ps->s - start));
	put(&ps->out, "\n", 1);
}

static bool word(struct parser *ps, const char *w)
{
	size_t n = strlen(w);

	if ((size_t)(ps->end - ps->s) < n || memcmp(ps->s, w, n)) {
		ps->bad = true;
		return false;
	}
	ps->s += n;
	return true;
}

static void value(struct parser *ps, int depth, bool print);

static void object(struct parser *ps, int depth)
{
	struct buf keys = {0}; /* the keys so far, NUL-separated: duplicates fall back */

	ps->s++;
	ws(ps);
	if (ps->s < ps->end && *ps->s == '}') {
		ps->s++;
		return;
	}
	while (!ps->bad) {
		struct buf k = {0};
		bool match;

		ws(ps);
		if (ps->s >= ps->end || *ps->s != '"') {
			ps->bad = true;
			break;
		}
		string(ps, &k, true);
		put(&k, "", 1);
		if (memchr(k.p, 0, k.len - 1))
			ps->bad = true;
		for (size_t o = 0; !ps->bad && o < keys.len; o += strlen(keys.p + o) + 1)
			if (!strcmp(keys.p + o, k.p))
				ps->bad = true;
		put(&keys, k.p, k.len);
		match = ps->key && k.len - 1 == ps->key_len && !memcmp(k.p, ps->key, ps->key_len);
		free(k.p);
		ws(ps);
		if (ps->bad || ps->s >= ps->end || *ps->s != ':') {
			ps->bad = true;
			break;
		}
		ps->s++;
		value(ps, depth + 1, match);
		ws(ps);
		if (ps->bad || ps->s >= ps->end) {
			ps->bad = true;
			break;
		}
		if (*ps->s == '}') {
			ps->s++;
			break;
		}
		if (*ps->s++ != ',')
			ps->bad = true;
	}
	free(keys.p);
}

static void array(struct parser *ps, int depth)
{
	ps->s++;
	ws(ps);
	if (ps->s < ps->end && *ps->s == ']') {
		ps->s++;
		return;
	}
	while (!ps->bad) {
		value(ps, depth + 1, false);
		ws(ps);
		if (ps->bad || ps->s >= ps->end) {
			ps->bad = true;
			return;
		}
		if (*ps->s == ']') {
			ps->s++;
			return;
		}
		if (*ps->s++ != ',')
			ps->bad = true;
	}
}

/* print: the value is KEY's; scalars are printed, containers walked as any */
static void value(struct parser *ps, int depth, bool print)
{
	ws(ps);
	if (ps->s >= ps->end || depth > MAX_DEPTH) {
		ps->bad = true;
		return;
	}
	switch (*ps->s) {
	case '{':
		object(ps, depth);
		break;
	case '[':
		array(ps, depth);
		break;
	case '"': {
		size_t at = ps->out.len;

		string(ps, &ps->out, false);
		if (print)
			put(&ps->out, "\n", 1);
		else
			ps->out.len = at;
		break;
	}
	case 't':
		if (word(ps, "true") && print)
			put(&ps->out, "true\n", 5);
		break;
	case 'f':
		if (word(ps, "false") && print)
			put(&ps->out, "false\n", 6);
		break;
	case 'n':
		if (word(ps, "null") && print)
			put(&ps->out, "None\n", 5);
		break;
	default:
		if (*ps->s == '-' || (*ps->s >= '0' && *ps->s <= '9'))
			number(ps, print);
		else
			ps->bad = true;
	}
}

/* one document from s to end, surrounded by JSON whitespace at most */
static bool document(struct parser *ps, const unsigned char *s, const unsigned char *end)
{
	size_t at = ps->out.len;

	ps->s = s;
	ps->end = end;
	ps->bad = false;
	value(ps, 0, false);
	ws(ps);
	if (ps->bad || ps->s != end) {
		ps->out.len = at;
		return false;
	}
	return true;
}

static bool blank(const unsigned char *s, const unsigned char *end)
{
	for (; s < end; s++)
		if (*s != ' ' && *s != '\t')
			return false;
	return true;
}

/* JSON lines, split as Python's splitlines() splits them, or false */
static bool lines(struct parser *ps, const unsigned char *s, const unsigned char *end)
{
	for (const unsigned char *p = s; p < end; p++)
		if (*p == '\v' || *p == '\f' || (*p >= 0x1c && *p <= 0x1e) || *p >= 0x80)
			return false; /* more line breaks or whitespace for Python */
	while (s < end) {
		const unsigned char *e = s;

		while (e < end && *e != '\n' && *e != '\r')
			e++;
		if (!blank(s, e) && !document(ps, s, e))
			return false;
		s = e < end && *e == '\r' && e + 1 < end && e[1] == '\n' ? e + 2 : e + 1;
	}
	return true;
}

int main(int argc, char **argv)
{
	struct parser ps = {0};
	struct buf in = {0};
	char chunk[65536];
	size_t n;
	const unsigned char *s, *end;
	int rc = 0;

	if (argc != 2) {
		fputs("usage: jsonget KEY < JSON | jsonget --check < JSON\n", stderr);
		return 2;
	}
	if (strcmp(argv[1], "--check")) {
		ps.key = argv[1];
		ps.key_len = strlen(argv[1]);
	}
	while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
		put(&in, chunk, n);
	if (ferror(stdin)) {
		rc = FALLBACK;
		goto out;
	}
	s = (const unsigned char *)in.p;
	end = s + in.len;
	if (!document(&ps, s, end) && !lines(&ps, s, end))
		rc = FALLBACK;
	else if (ps.key && ps.out.len && fwrite(ps.out.p, 1, ps.out.len, stdout) != ps.out.len)
		rc = 1;
	else if (fflush(stdout))
		rc = 1;
out:
	free(in.p);
	free(ps.out.p);
	return rc;
}
