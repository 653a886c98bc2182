/* The lines of keel's INI-like configuration files (include/keel/ini.h). */
#include <string.h>

#include "keel/ini.h"

static bool blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

static bool word_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.';
}

/* "[word]" or "[word "NAME"]"; p..e is the trimmed line. */
static int header(const char *p, const char *e, struct kl_ini_item *it, struct kl_err *err)
{
	const char *q = p + 1, *w;

	if (e - p < 2 || e[-1] != ']')
		return kl_fail(err, -KL_EUSAGE, "line %u: a section header ends with ']'",
			       it->line);
	e--;
	while (q < e && blank(*q))
		q++;
	while (e > q && blank(e[-1]))
		e--;
	for (w = q; w < e && word_char(*w); w++)
		;
	if (w == q || (w < e && !blank(*w)))
		return kl_fail(err, -KL_EUSAGE,
			       "line %u: a section header is [NAME] or "
			       "[NAME \"LABEL\"]",
			       it->line);
	it->section = q;
	it->section_len = (size_t)(w - q);
	it->name = NULL;
	it->name_len = 0;
	while (w < e && blank(*w))
		w++;
	if (w == e)
		return 0;
	if (e - w < 2 || *w != '"' || e[-1] != '"')
		return kl_fail(err, -KL_EUSAGE,
			       "line %u: write the section's label in double quotes", it->line);
	it->name = w + 1;
	it->name_len = (size_t)(e - w - 2);
	return 0;
}

static int setting(const char *p, const char *e, unsigned flags, struct kl_ini_item *it,
		   struct kl_err *err)
{
	const char *eq = memchr(p, '=', (size_t)(e - p)), *v;
	size_t kn;

	if (!it->section)
		return kl_fail(err, -KL_EUSAGE, "line %u: a setting before the first section",
			       it->line);
	if (!eq)
		return kl_fail(err, -KL_EUSAGE, "line %u: expected 'name = value'", it->line);
	kn = (size_t)(eq - p);
	while (kn && blank(p[kn - 1]))
		kn--;
	if (kn == 0)
		return kl_fail(err, -KL_EUSAGE, "line %u: a setting without a name", it->line);
	v = eq + 1;
	while (v < e && blank(*v))
		v++;
	if (flags & KL_INI_INLINE_COMMENTS) {
		for (const char *c = v; c < e; c++)
			if (*c == '#' && (c == v || blank(c[-1]))) {
				e = c;
				break;
			}
		while (e > v && blank(e[-1]))
			e--;
	}
	it->key = p;
	it->key_len = kn;
	it->value = v;
	it->value_len = (size_t)(e - v);
	return 0;
}

int kl_ini_parse(const char *text, size_t n, unsigned flags,
		 int (*fn)(const struct kl_ini_item *it, void *userdata), void *userdata,
		 struct kl_err *err)
{
	struct kl_ini_item it = {0};
	const char *p = text, *end = text + n;
	int r = 0;

	while (p < end && r >= 0) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end;

		it.line++;
		for (const char *x = p; x < e; x++)
			/* '\r' only as part of a "\r\n" line end */
			if (((unsigned char)*x < 0x20 && *x != '\t' &&
			     !(*x == '\r' && x + 1 == e)) ||
			    *x == 0x7f)
				return kl_fail(err, -KL_EUSAGE, "line %u: a control character",
					       it.line);
		while (p < e && blank(*p))
			p++;
		while (e > p && blank(e[-1]))
			e--;
		if (p < e && *p != '#' && *p != ';') {
			it.key = NULL;
			it.value = NULL;
			it.key_len = it.value_len = 0;
			r = *p == '[' ? header(p, e, &it, err) : setting(p, e, flags, &it, err);
			if (r >= 0)
				r = fn(&it, userdata);
		}
		p = nl ? nl + 1 : end;
	}
	return r < 0 ? r : 0;
}
