/*
 * A strict reader for the two XML documents keel gets from S3: a
 * ListObjectsV2 page and an <Error> body. Not a general XML parser: it
 * knows elements, attributes (skipped), text with the five predefined
 * entities and character references, comments and processing instructions
 * (skipped). It refuses DOCTYPE (no entity definitions, so no expansion
 * bombs), CDATA, mismatched or unclosed tags, text outside the root, bytes
 * XML forbids, nesting deeper than MAX_DEPTH, and fields past their limits.
 * Every length comes from the input and is checked before it is used;
 * fuzz/fuzz-s3-list.c feeds it arbitrary bytes.
 */
#include <stdio.h>
#include <time.h>

#include "keel/s3.h"

#define MAX_DEPTH 16
#define FIELD_MAX (KL_S3_TOKEN_MAX + 16)

enum tok_type { TOK_START, TOK_END, TOK_TEXT, TOK_EOF };

struct tok {
	enum tok_type type;
	const char *name; /* TOK_START, TOK_END */
	size_t name_len;
	bool empty;	  /* <name/>: a TOK_START the caller must close itself */
	const char *text; /* TOK_TEXT: raw, entities not decoded */
	size_t text_len;
};

struct lex {
	const char *p, *end;
};

static bool name_start(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c == ':' ||
	       c >= 0x80;
}

static bool name_char(unsigned char c)
{
	return name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

static bool space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Bytes below 0x20 other than tab, CR and LF are never allowed in XML 1.0. */
static bool bad_byte(unsigned char c)
{
	return c < 0x20 && c != '\t' && c != '\r' && c != '\n';
}

static const char *find(const char *p, const char *end, const char *needle)
{
	size_t n = strlen(needle);

	for (; (size_t)(end - p) >= n; p++)
		if (!memcmp(p, needle, n))
			return p;
	return NULL;
}

static int lex_name(struct lex *x, struct tok *t)
{
	const char *s = x->p;

	if (x->p >= x->end || !name_start((unsigned char)*x->p))
		return -KL_ECORRUPT;
	while (x->p < x->end && name_char((unsigned char)*x->p))
		x->p++;
	t->name = s;
	t->name_len = (size_t)(x->p - s);
	return 0;
}

/* After the name of a start tag: attributes up to '>' or '/>'. */
static int lex_attrs(struct lex *x, struct tok *t)
{
	for (;;) {
		struct tok attr;
		char q;

		while (x->p < x->end && space((unsigned char)*x->p))
			x->p++;
		if (x->p >= x->end)
			return -KL_ECORRUPT;
		if (*x->p == '>') {
			x->p++;
			return 0;
		}
		if (*x->p == '/') {
			if (x->end - x->p < 2 || x->p[1] != '>')
				return -KL_ECORRUPT;
			x->p += 2;
			t->empty = true;
			return 0;
		}
		if (lex_name(x, &attr) < 0)
			return -KL_ECORRUPT;
		while (x->p < x->end && space((unsigned char)*x->p))
			x->p++;
		if (x->p >= x->end || *x->p != '=')
			return -KL_ECORRUPT;
		x->p++;
		while (x->p < x->end && space((unsigned char)*x->p))
			x->p++;
		if (x->p >= x->end || (*x->p != '"' && *x->p != '\''))
			return -KL_ECORRUPT;
		q = *x->p++;
		while (x->p < x->end && *x->p != q) {
			if (*x->p == '<' || bad_byte((unsigned char)*x->p))
				return -KL_ECORRUPT;
			x->p++;
		}
		if (x->p >= x->end)
			return -KL_ECORRUPT;
		x->p++;
	}
}

static int lex_next(struct lex *x, struct tok *t)
{
	memset(t, 0, sizeof(*t));
	for (;;) {
		const char *e;

		if (x->p >= x->end) {
			t->type = TOK_EOF;
			return 0;
		}
		if (*x->p != '<') {
			const char *s = x->p;

			while (x->p < x->end && *x->p != '<') {
				if (bad_byte((unsigned char)*x->p))
					return -KL_ECORRUPT;
				x->p++;
			}
			t->type = TOK_TEXT;
			t->text = s;
			t->text_len = (size_t)(x->p - s);
			return 0;
		}
		if (x->end - x->p >= 4 && !memcmp(x->p, "<!--", 4)) {
			e = find(x->p + 4, x->end, "-->");
			if (!e)
				return -KL_ECORRUPT;
			x->p = e + 3;
			continue;
		}
		if (x->end - x->p >= 2 && x->p[1] == '?') {
			e = find(x->p + 2, x->end, "?>");
			if (!e)
				return -KL_ECORRUPT;
			x->p = e + 2;
			continue;
		}
		if (x->end - x->p >= 2 && x->p[1] == '!')
			return -KL_ECORRUPT; /* DOCTYPE, CDATA */
		if (x->end - x->p >= 2 && x->p[1] == '/') {
			x->p += 2;
			if (lex_name(x, t) < 0)
				return -KL_ECORRUPT;
			while (x->p < x->end && space((unsigned char)*x->p))
				x->p++;
			if (x->p >= x->end || *x->p != '>')
				return -KL_ECORRUPT;
			x->p++;
			t->type = TOK_END;
			return 0;
		}
		x->p++;
		if (lex_name(x, t) < 0)
			return -KL_ECORRUPT;
		t->type = TOK_START;
		return lex_attrs(x, t);
	}
}

static int add_utf8(struct kl_buf *b, uint32_t cp)
{
	uint8_t u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (uint8_t)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (uint8_t)(0xc0 | cp >> 6);
		u[1] = (uint8_t)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (uint8_t)(0xe0 | cp >> 12);
		u[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
		u[2] = (uint8_t)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (uint8_t)(0xf0 | cp >> 18);
		u[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3f));
		u[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
		u[3] = (uint8_t)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return kl_buf_add(b, u, n);
}

/* A character reference's value: a character XML allows, never NUL. */
static int char_ref(const char *s, size_t n, uint32_t *ret)
{
	uint32_t v = 0;
	bool hex = n > 0 && s[0] == 'x';
	size_t i = hex;

	if (n <= i || n - i > 8)
		return -KL_ECORRUPT;
	for (; i < n; i++) {
		char c = s[i];
		unsigned d;

		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (hex && c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else if (hex && c >= 'A' && c <= 'F')
			d = (unsigned)(c - 'A' + 10);
		else
			return -KL_ECORRUPT;
		v = v * (hex ? 16 : 10) + d;
	}
	if (!(v == 0x9 || v == 0xa || v == 0xd || (v >= 0x20 && v <= 0xd7ff) ||
	      (v >= 0xe000 && v <= 0xfffd) || (v >= 0x10000 && v <= 0x10ffff)))
		return -KL_ECORRUPT;
	*ret = v;
	return 0;
}

/* Appends raw text with its entities decoded. -E2BIG past out's cap. */
static int decode_text(const char *s, size_t n, struct kl_buf *out)
{
	static const struct {
		const char *name;
		char c;
	} named[] = {{"lt", '<'}, {"gt", '>'}, {"amp", '&'}, {"quot", '"'}, {"apos", '\''}};
	size_t i = 0;
	int r = 0;

	while (i < n && r >= 0) {
		const char *semi;
		size_t len, k;
		uint32_t cp;

		if (s[i] != '&') {
			size_t j = i;

			while (j < n && s[j] != '&')
				j++;
			r = kl_buf_add(out, s + i, j - i);
			i = j;
			continue;
		}
		semi = memchr(s + i, ';', KL_MIN(n - i, (size_t)12));
		if (!semi)
			return -KL_ECORRUPT;
		len = (size_t)(semi - (s + i + 1));
		if (len > 0 && s[i + 1] == '#') {
			if (char_ref(s + i + 2, len - 1, &cp) < 0)
				return -KL_ECORRUPT;
			r = add_utf8(out, cp);
		} else {
			for (k = 0; k < KL_ARRAY_SIZE(named); k++)
				if (strlen(named[k].name) == len &&
				    !memcmp(named[k].name, s + i + 1, len))
					break;
			if (k == KL_ARRAY_SIZE(named))
				return -KL_ECORRUPT;
			r = kl_buf_addch(out, (uint8_t)named[k].c);
		}
		i += len + 2;
	}
	return r;
}

static bool is_name(const char *p, size_t n, const char *want)
{
	return strlen(want) == n && !memcmp(p, want, n);
}

static bool all_space(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!space((unsigned char)p[i]))
			return false;
	return true;
}

/* The text of a leaf element without its surrounding white space. */
static void trim(const char **p, size_t *n)
{
	while (*n && space((unsigned char)**p)) {
		(*p)++;
		(*n)--;
	}
	while (*n && space((unsigned char)(*p)[*n - 1]))
		(*n)--;
}

static int parse_u64(const char *p, size_t n, uint64_t *ret)
{
	uint64_t v = 0;

	trim(&p, &n);
	if (n == 0 || n > 20)
		return -KL_ECORRUPT;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -KL_ECORRUPT;
		if (v > (UINT64_MAX - (uint64_t)(p[i] - '0')) / 10)
			return -KL_ECORRUPT;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	*ret = v;
	return 0;
}

/*
 * The walk both documents share: the callback sees every element's
 * start (text == NULL) and, for elements without children, its decoded
 * text at the end. path[0..depth] are the open elements' names.
 */
struct walk {
	struct {
		const char *p;
		size_t n;
	} path[MAX_DEPTH];
	size_t depth;
	int (*on_start)(struct walk *w, void *ud);
	int (*on_end)(struct walk *w, const struct kl_buf *text, void *ud);
};

static int xml_walk(const void *xml, size_t n, struct walk *w, size_t text_max, void *ud)
{
	_cleanup_buf_ struct kl_buf text = KL_BUF_INIT(text_max);
	struct lex x = {xml, (const char *)xml + n};
	bool root_done = false, had_child = false;
	struct tok t;
	int r;

	w->depth = 0;
	/* a UTF-8 byte order mark may precede the declaration */
	if (n >= 3 && !memcmp(xml, "\xef\xbb\xbf", 3))
		x.p += 3;
	for (;;) {
		r = lex_next(&x, &t);
		if (r < 0)
			return r;
		switch (t.type) {
		case TOK_EOF:
			return root_done ? 0 : -KL_ECORRUPT;
		case TOK_TEXT:
			if (w->depth == 0) {
				if (!all_space(t.text, t.text_len))
					return -KL_ECORRUPT;
				break;
			}
			/* text beside child elements is ignored; a leaf's text is decoded */
			r = decode_text(t.text, t.text_len, &text);
			if (r == -E2BIG)
				return -KL_ECORRUPT;
			if (r < 0)
				return r;
			break;
		case TOK_START:
			if (root_done || w->depth == MAX_DEPTH)
				return -KL_ECORRUPT;
			w->path[w->depth].p = t.name;
			w->path[w->depth].n = t.name_len;
			w->depth++;
			kl_buf_clear(&text);
			had_child = false;
			r = w->on_start(w, ud);
			if (r < 0)
				return r;
			if (!t.empty)
				break;
			/* <name/>: an element with empty text */
			/* fall through */
		case TOK_END:
			if (w->depth == 0)
				return -KL_ECORRUPT;
			if (t.type == TOK_END &&
			    (w->path[w->depth - 1].n != t.name_len ||
			     memcmp(w->path[w->depth - 1].p, t.name, t.name_len)))
				return -KL_ECORRUPT;
			r = w->on_end(w, had_child ? NULL : &text, ud);
			if (r < 0)
				return r;
			kl_buf_clear(&text);
			w->depth--;
			had_child = true; /* the parent has a child now */
			if (w->depth == 0)
				root_done = true;
			break;
		}
	}
}

/* ---- ListObjectsV2 ---------------------------------------------------- */

struct list_state {
	struct kl_s3_list *l;
	bool in_contents, has_key, has_size, has_truncated;
	struct kl_s3_object cur;
};

static bool at(const struct walk *w, size_t depth, const char *name)
{
	return w->depth == depth && is_name(w->path[depth - 1].p, w->path[depth - 1].n, name);
}

static int list_start(struct walk *w, void *ud)
{
	struct list_state *s = ud;

	if (w->depth == 1 && !at(w, 1, "ListBucketResult"))
		return -KL_ECORRUPT;
	if (at(w, 2, "Contents")) {
		s->in_contents = true;
		s->has_key = s->has_size = false;
		s->cur.key = NULL;
		s->cur.size = 0;
		s->cur.mtime_ns = 0;
	}
	return 0;
}

static int list_end(struct walk *w, const struct kl_buf *text, void *ud)
{
	struct list_state *s = ud;
	struct kl_s3_list *l = s->l;

	if (w->depth == 3 && s->in_contents && at(w, 3, "LastModified") && text) {
		const char *p = (const char *)text->data;
		size_t n = text->len;

		/* unreadable or absent: 0, "unknown"; the listing is still good */
		trim(&p, &n);
		if (kl_s3_parse_time(p, n, &s->cur.mtime_ns) < 0)
			s->cur.mtime_ns = 0;
		return 0;
	}
	if (w->depth == 3 && s->in_contents && (at(w, 3, "Key") || at(w, 3, "Size"))) {
		if (!text)
			return -KL_ECORRUPT; /* <Key><x/></Key> */
		if (at(w, 3, "Key")) {
			if (s->has_key || text->len == 0 || text->len > KL_S3_KEY_MAX ||
			    memchr(text->data, 0, text->len))
				return -KL_ECORRUPT;
			s->cur.key = kl_strndup((const char *)text->data, text->len);
			if (!s->cur.key)
				return -ENOMEM;
			s->has_key = true;
		} else {
			if (s->has_size ||
			    parse_u64((const char *)text->data, text->len, &s->cur.size) < 0)
				return -KL_ECORRUPT;
			s->has_size = true;
		}
		return 0;
	}
	if (at(w, 2, "Contents")) {
		s->in_contents = false;
		if (!s->has_key || !s->has_size || l->n == KL_S3_PAGE_MAX)
			return -KL_ECORRUPT;
		if (l->n == l->cap) {
			size_t ncap = l->cap ? 2 * l->cap : 64;
			struct kl_s3_object *o = kl_realloc(l->objs, ncap * sizeof(*o));

			if (!o)
				return -ENOMEM;
			l->objs = o;
			l->cap = ncap;
		}
		l->objs[l->n++] = s->cur;
		s->cur.key = NULL;
		return 0;
	}
	if (at(w, 2, "IsTruncated")) {
		const char *p;
		size_t n;

		if (!text || s->has_truncated)
			return -KL_ECORRUPT;
		p = (const char *)text->data;
		n = text->len;
		trim(&p, &n);
		if (is_name(p, n, "true"))
			l->truncated = true;
		else if (!is_name(p, n, "false"))
			return -KL_ECORRUPT;
		s->has_truncated = true;
		return 0;
	}
	if (at(w, 2, "NextContinuationToken")) {
		if (!text || l->next_token || text->len == 0 || text->len > KL_S3_TOKEN_MAX ||
		    memchr(text->data, 0, text->len))
			return -KL_ECORRUPT;
		l->next_token = kl_strndup((const char *)text->data, text->len);
		return l->next_token ? 0 : -ENOMEM;
	}
	return 0;
}

void kl_s3_list_release(struct kl_s3_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		kl_free(l->objs[i].key);
	kl_free(l->objs);
	kl_free(l->next_token);
	memset(l, 0, sizeof(*l));
}

int kl_s3_list_parse(const void *xml, size_t n, struct kl_s3_list *ret)
{
	struct list_state s = {.l = ret};
	struct walk w = {.on_start = list_start, .on_end = list_end};
	int r;

	memset(ret, 0, sizeof(*ret));
	r = xml_walk(xml, n, &w, FIELD_MAX, &s);
	kl_free(s.cur.key);
	if (r < 0)
		kl_s3_list_release(ret);
	return r;
}

/* ---- <Error> ----------------------------------------------------------- */

static int error_start(struct walk *w, void *ud)
{
	return w->depth == 1 && !at(w, 1, "Error") ? -KL_ECORRUPT : 0;
}

/* Copies text into a fixed field, cut at a character boundary, control bytes made '?'. */
static void set_field(char *dst, size_t cap, const struct kl_buf *text)
{
	const char *p = (const char *)text->data;
	size_t n = text->len;

	trim(&p, &n);
	if (n >= cap) {
		n = cap - 1;
		while (n > 0 && ((unsigned char)p[n] & 0xc0) == 0x80)
			n--;
	}
	for (size_t i = 0; i < n; i++)
		dst[i] = (unsigned char)p[i] < 0x20 || p[i] == 0x7f ? '?' : p[i];
	dst[n] = 0;
}

static int error_end(struct walk *w, const struct kl_buf *text, void *ud)
{
	struct kl_s3_error *e = ud;

	if (w->depth != 2 || !text)
		return 0;
	if (at(w, 2, "Code"))
		set_field(e->code, sizeof(e->code), text);
	else if (at(w, 2, "Message"))
		set_field(e->message, sizeof(e->message), text);
	else if (at(w, 2, "Region"))
		set_field(e->region, sizeof(e->region), text);
	return 0;
}

int kl_s3_error_parse(const void *xml, size_t n, struct kl_s3_error *ret)
{
	struct walk w = {.on_start = error_start, .on_end = error_end};
	int r;

	memset(ret, 0, sizeof(*ret));
	r = xml_walk(xml, n, &w, 1u << 16, ret);
	if (r < 0)
		memset(ret, 0, sizeof(*ret));
	return r;
}

/* ---- <ObjectLockConfiguration> ------------------------------------------ */

static int lock_start(struct walk *w, void *ud)
{
	return w->depth == 1 && !at(w, 1, "ObjectLockConfiguration") ? -KL_ECORRUPT : 0;
}

static int lock_end(struct walk *w, const struct kl_buf *text, void *ud)
{
	struct kl_s3_lock_config *c = ud;
	const char *p;
	size_t n;

	if (!text)
		return 0;
	p = (const char *)text->data;
	n = text->len;
	trim(&p, &n);
	if (at(w, 2, "ObjectLockEnabled"))
		c->enabled = is_name(p, n, "Enabled");
	else if (w->depth == 4 && at(w, 4, "Mode") &&
		 is_name(w->path[2].p, w->path[2].n, "DefaultRetention"))
		set_field(c->default_mode, sizeof(c->default_mode), text);
	else if (w->depth == 4 && (at(w, 4, "Days") || at(w, 4, "Years")) &&
		 is_name(w->path[2].p, w->path[2].n, "DefaultRetention")) {
		uint64_t v;

		if (parse_u64(p, n, &v) < 0 || v > 36500)
			return -KL_ECORRUPT;
		c->default_days = at(w, 4, "Days") ? (uint32_t)v : (uint32_t)v * 365;
	}
	return 0;
}

int kl_s3_lock_config_parse(const void *xml, size_t n, struct kl_s3_lock_config *ret)
{
	struct walk w = {.on_start = lock_start, .on_end = lock_end};
	int r;

	memset(ret, 0, sizeof(*ret));
	r = xml_walk(xml, n, &w, 1u << 12, ret);
	if (r < 0)
		memset(ret, 0, sizeof(*ret));
	return r;
}

/* ---- times ------------------------------------------------------------- */

static bool digits(const char *s, size_t n, int *ret)
{
	int v = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*ret = v;
	return true;
}

int kl_s3_parse_time(const char *s, size_t n, int64_t *ret_ns)
{
	struct tm tm = {0};
	int y, mo, d, h, mi, se;
	int64_t ns = 0, scale = 100000000;
	size_t i = 19;
	time_t t;

	/* YYYY-MM-DDTHH:MM:SS[.fff...]Z */
	if (n < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
	    !digits(s, 4, &y) || !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) ||
	    !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &se))
		return -EINVAL;
	if (s[i] == '.') {
		for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
			ns += (s[i] - '0') * scale;
			scale /= 10;
		}
	}
	/* nothing in a bucket predates 1970; earlier years would overflow below */
	if (i != n - 1 || s[i] != 'Z' || y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 ||
	    h > 23 || mi > 59 || se > 60)
		return -EINVAL;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	t = timegm(&tm);
	if (t < 0 || (int64_t)t > INT64_MAX / KL_NSEC_PER_SEC - 1)
		return -EINVAL;
	*ret_ns = (int64_t)t * KL_NSEC_PER_SEC + ns;
	return 0;
}
