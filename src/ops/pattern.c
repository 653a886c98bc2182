/*
 * Include and exclude patterns, with restic's semantics:
 *
 *   - a pattern is a list of components separated by '/'; each component
 *     is a glob ('*', '?', '[...]', '\' escapes) matched against one path
 *     component, and '*' never crosses a '/';
 *   - a component that is exactly "**" matches zero or more components;
 *   - a pattern starting with '/' is anchored at the root; any other
 *     pattern may start at any component ("*.o" matches a name anywhere,
 *     "build/out" matches "/src/build/out");
 *   - a pattern matches a path when it matches the path or one of its
 *     ancestors, so a matched directory covers everything below it.
 *
 * '?' and bracket expressions consume one UTF-8 character (restic works
 * on runes); bytes that are not valid UTF-8 count as one character each.
 * Patterns are normalised when added ("a//b/" becomes "a/b", "./a" becomes
 * "a"), so matching needs no allocation and can run on any thread.
 */
#include <fcntl.h>

#include "keel/fs.h"
#include "keel/ops.h"

#define PATTERN_FILE_MAX ((size_t)64 << 20)

/* ---- one component -------------------------------------------------- */

/* Decodes one UTF-8 character; invalid or truncated sequences are one byte. */
static size_t utf8_next(const char *s, size_t n, uint32_t *cp)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t len, i;
	uint32_t c;

	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	}
	if ((p[0] & 0xe0) == 0xc0) {
		len = 2;
		c = p[0] & 0x1f;
	} else if ((p[0] & 0xf0) == 0xe0) {
		len = 3;
		c = p[0] & 0x0f;
	} else if ((p[0] & 0xf8) == 0xf0) {
		len = 4;
		c = p[0] & 0x07;
	} else {
		goto invalid;
	}
	if (len > n)
		goto invalid;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			goto invalid;
		c = c << 6 | (p[i] & 0x3f);
	}
	*cp = c;
	return len;
invalid:
	*cp = p[0];
	return 1;
}

/* One possibly escaped character of a bracket expression; 0 if none is left. */
static size_t class_char(const char *p, size_t n, uint32_t *cp)
{
	if (n >= 2 && p[0] == '\\')
		return 1 + utf8_next(p + 1, n - 1, cp);
	if (n == 0 || p[0] == '\\')
		return 0;
	return utf8_next(p, n, cp);
}

/*
 * Simple case folding for --iexclude: ASCII, Latin-1, Greek and Cyrillic
 * letters, one to one (no "ß" to "ss"), enough for the names people type.
 */
static uint32_t fold_lower(uint32_t c)
{
	if ((c >= 'A' && c <= 'Z') || (c >= 0xc0 && c <= 0xde && c != 0xd7) ||
	    (c >= 0x391 && c <= 0x3a9 && c != 0x3a2) || (c >= 0x410 && c <= 0x42f))
		return c + 0x20;
	if (c >= 0x400 && c <= 0x40f)
		return c + 0x50;
	return c;
}

static uint32_t fold_upper(uint32_t c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 0xe0 && c <= 0xfe && c != 0xf7) ||
	    (c >= 0x3b1 && c <= 0x3c9 && c != 0x3c2) || (c >= 0x430 && c <= 0x44f))
		return c - 0x20;
	if (c >= 0x450 && c <= 0x45f)
		return c - 0x50;
	return c;
}

/*
 * Matches the bracket expression at pat[0] == '[' against character c
 * (either case of it with fold).
 * Returns the length of the expression, or 0 if it is malformed (no
 * closing ']'), in which case the caller treats '[' as a literal.
 */
static size_t class_match(const char *pat, size_t plen, uint32_t c, bool fold, bool *matched)
{
	uint32_t cl = fold ? fold_lower(c) : c, cu = fold ? fold_upper(c) : c;
	size_t i = 1, k;
	bool neg = false, hit = false, first = true;

	if (i < plen && (pat[i] == '!' || pat[i] == '^')) {
		neg = true;
		i++;
	}
	for (;;) {
		uint32_t lo, hi;

		if (i >= plen)
			return 0;
		if (pat[i] == ']' && !first)
			break;
		first = false;
		k = class_char(pat + i, plen - i, &lo);
		if (!k)
			return 0;
		i += k;
		hi = lo;
		if (i + 1 < plen && pat[i] == '-' && pat[i + 1] != ']') {
			k = class_char(pat + i + 1, plen - i - 1, &hi);
			if (!k)
				return 0;
			i += 1 + k;
		}
		if ((lo <= c && c <= hi) || (lo <= cl && cl <= hi) || (lo <= cu && cu <= hi))
			hit = true;
	}
	*matched = hit != neg;
	return i + 1;
}

/*
 * Glob match of one component. The classic single-backtrack algorithm:
 * remember the last '*' and, on a mismatch, let it absorb one more byte.
 * That is linear in practice and never worse than O(plen * nlen).
 */
static bool glob_match(const char *pat, size_t plen, const char *name, size_t nlen, bool fold)
{
	size_t pi = 0, ni = 0, star_pi = SIZE_MAX, star_ni = 0;

	while (ni < nlen) {
		if (pi < plen) {
			char c = pat[pi];
			uint32_t cp;
			size_t k;

			if (c == '*') {
				star_pi = pi++;
				star_ni = ni;
				continue;
			}
			if (c == '?') {
				ni += utf8_next(name + ni, nlen - ni, &cp);
				pi++;
				continue;
			}
			if (c == '[') {
				bool hit = false;
				size_t nk = utf8_next(name + ni, nlen - ni, &cp);

				k = class_match(pat + pi, plen - pi, cp, fold, &hit);
				if (k) {
					if (hit) {
						pi += k;
						ni += nk;
						continue;
					}
					goto mismatch;
				}
				/* malformed: a literal '[' */
			}
			if (c == '\\' && pi + 1 < plen) {
				pi++;
				c = pat[pi];
			}
			if (!fold && name[ni] == c) {
				pi++;
				ni++;
				continue;
			}
			/* whole characters: a lead byte alone may match across cases */
			if (fold) {
				uint32_t pc, nc;
				size_t pk = utf8_next(pat + pi, plen - pi, &pc);
				size_t nk = utf8_next(name + ni, nlen - ni, &nc);

				if (fold_lower(pc) == fold_lower(nc)) {
					pi += pk;
					ni += nk;
					continue;
				}
			}
		}
	mismatch:
		if (star_pi == SIZE_MAX)
			return false;
		pi = star_pi + 1;
		ni = ++star_ni;
	}
	while (pi < plen && pat[pi] == '*')
		pi++;
	return pi == plen;
}

/* ---- whole paths ------------------------------------------------------- */

static const char *skip_slashes(const char *s)
{
	while (*s == '/')
		s++;
	return s;
}

static bool is_globstar(const char *p, const char *end)
{
	return end - p == 2 && p[0] == '*' && p[1] == '*';
}

/*
 * Does the pattern p (at a component start, normalised) match a prefix of
 * the components of path s (at a component start, or at its end)?
 */
static bool match_at(const char *p, const char *s, bool fold)
{
	while (*p) {
		const char *pe = strchrnul(p, '/');
		const char *pnext = *pe ? pe + 1 : pe;
		const char *se;

		if (is_globstar(p, pe)) {
			for (;;) {
				if (match_at(pnext, s, fold))
					return true;
				if (!*s)
					return false;
				s = skip_slashes(strchrnul(s, '/'));
			}
		}
		if (!*s)
			return false;
		se = strchrnul(s, '/');
		if (!glob_match(p, (size_t)(pe - p), s, (size_t)(se - s), fold))
			return false;
		p = pnext;
		s = skip_slashes(se);
	}
	return true;
}

static bool pattern_match(const char *pat, const char *path, bool fold)
{
	const char *s = skip_slashes(path);

	if (pat[0] == '/')
		return match_at(pat + 1, s, fold);
	for (;;) {
		if (match_at(pat, s, fold))
			return true;
		if (!*s)
			return false;
		s = skip_slashes(strchrnul(s, '/'));
	}
}

bool kl_patterns_match(const struct kl_patterns *p, const char *path)
{
	for (size_t i = 0; i < p->n; i++)
		if (pattern_match(p->v[i], path, p->fold))
			return true;
	return false;
}

/*
 * Could the anchored pattern p match the directory s or something below
 * it? Walks the directory's components through the pattern; '**' or a
 * pattern that runs out first (the directory is covered) say yes.
 */
static bool may_match_at(const char *p, const char *s, bool fold)
{
	while (*p && *s) {
		const char *pe = strchrnul(p, '/');
		const char *se = strchrnul(s, '/');

		if (is_globstar(p, pe))
			return true;
		if (!glob_match(p, (size_t)(pe - p), s, (size_t)(se - s), fold))
			return false;
		p = *pe ? pe + 1 : pe;
		s = skip_slashes(se);
	}
	return true;
}

bool kl_patterns_may_match_below(const struct kl_patterns *p, const char *dir)
{
	for (size_t i = 0; i < p->n; i++) {
		const char *pat = p->v[i];

		/* a floating pattern can match a name at any depth below */
		if (pat[0] != '/' || may_match_at(pat + 1, skip_slashes(dir), p->fold))
			return true;
	}
	return false;
}

/* ---- building the list --------------------------------------------------- */

/* Rejects what restic's filepath.Match rejects: an unclosed '[' or a trailing '\'. */
static bool component_valid(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		bool hit;

		if (p[i] == '\\') {
			if (++i == n)
				return false;
		} else if (p[i] == '[') {
			size_t k = class_match(p + i, n - i, 0, false, &hit);

			if (!k)
				return false;
			i += k - 1;
		}
	}
	return true;
}

/*
 * Normalises: drops empty and "." components and a trailing '/'. Returns
 * a new string, or NULL with *err set.
 */
static char *pattern_normalise(const char *pat, int *err)
{
	_cleanup_buf_ struct kl_buf b = KL_BUF_INIT(SIZE_MAX);
	bool anchored = pat[0] == '/';
	const char *s = skip_slashes(pat);
	char *norm;
	int r = 0;

	if (anchored)
		r = kl_buf_addch(&b, '/');
	while (r >= 0 && *s) {
		const char *e = strchrnul(s, '/');
		size_t n = (size_t)(e - s);

		bool dup_star = is_globstar(s, e) && b.len >= 2 &&
				(b.len == 2 || b.data[b.len - 3] == '/') &&
				!memcmp(b.data + b.len - 2, "**", 2);

		/* "." says nothing, and "**" twice in a row is one "**" (but slower) */
		if (!(n == 1 && s[0] == '.') && !dup_star) {
			if (!component_valid(s, n)) {
				*err = -KL_EUSAGE;
				return NULL;
			}
			if (b.len && b.data[b.len - 1] != '/')
				r = kl_buf_addch(&b, '/');
			if (r >= 0)
				r = kl_buf_add(&b, s, n);
		}
		s = skip_slashes(e);
	}
	if (r >= 0 && !b.len)
		r = -KL_EUSAGE; /* "" or ".": a pattern that means nothing */
	if (r < 0) {
		*err = r;
		return NULL;
	}
	norm = (char *)kl_buf_detach(&b, NULL);
	if (!norm)
		*err = -ENOMEM;
	return norm;
}

int kl_patterns_add(struct kl_patterns *p, const char *pat)
{
	char **v;
	char *norm;
	int r = 0;

	norm = pattern_normalise(pat, &r);
	if (!norm)
		return r;
	v = kl_realloc(p->v, (p->n + 1) * sizeof(*v));
	if (!v) {
		kl_free(norm);
		return -ENOMEM;
	}
	p->v = v;
	p->v[p->n++] = norm;
	return 0;
}

int kl_patterns_add_file(struct kl_patterns *p, const char *file)
{
	_cleanup_buf_ struct kl_buf b = KL_BUF_INIT(PATTERN_FILE_MAX);
	char *s, *end;
	int r;

	r = kl_fs_read_all(AT_FDCWD, file, PATTERN_FILE_MAX, &b);
	if (r < 0)
		return r;
	s = (char *)b.data;
	end = s + b.len;
	while (s < end) {
		char *nl = memchr(s, '\n', (size_t)(end - s));
		char *e = nl ? nl : end;

		/* trailing blanks and a CR from a DOS editor are never meant */
		while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\v' ||
				 e[-1] == '\f'))
			e--;
		*e = 0;
		if (e > s && s[0] != '#') {
			if (memchr(s, 0, (size_t)(e - s)))
				return -KL_EUSAGE;
			r = kl_patterns_add(p, s);
			if (r < 0)
				return r;
		}
		s = nl ? nl + 1 : end;
	}
	return 0;
}

void kl_patterns_release(struct kl_patterns *p)
{
	for (size_t i = 0; i < p->n; i++)
		kl_free(p->v[i]);
	kl_free(p->v);
	p->v = NULL;
	p->n = 0;
}
