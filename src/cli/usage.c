/*
 * Reading the --help texts back: every command's usage text is the one
 * description of its options (cmd-*.c), so the manual pages, the shell
 * completions (generate.c) and the "did you mean" of a mistyped option
 * are all made from it. An option is a line indented by at most 8 columns
 * that starts with '-':
 *
 *       -e, --exclude PATTERN        exclude matching paths (repeatable)
 *           --read-data-subset=N%    ... or only N percent of the packs
 *           --object-lock-days N retention period in days (1-36500)
 *
 * Its spec ends at the first run of two spaces; without one, at the first
 * word that is neither an option nor the value an option takes.
 */
#include <ctype.h>
#include <stdlib.h>

#include "cli.h"

static size_t indent_of(const char *line, size_t len)
{
	size_t i = 0;

	while (i < len && line[i] == ' ')
		i++;
	return i;
}

bool kl_usage_is_item(const char *line, size_t len)
{
	size_t i = indent_of(line, len);

	return i >= 1 && i <= 8 && i + 1 < len && line[i] == '-' &&
	       (line[i + 1] == '-' || isalnum((unsigned char)line[i + 1]));
}

/* A word that names an option's value: FILE, N%, governance|compliance, TAG1,TAG2 */
static bool is_value_word(const char *w, size_t n)
{
	bool lower = false, bar = false;

	if (n == 0 || !(isalnum((unsigned char)w[0]) || w[0] == '[' || w[0] == '<'))
		return false;
	for (size_t i = 0; i < n; i++) {
		lower |= islower((unsigned char)w[i]) != 0;
		bar |= w[i] == '|';
	}
	return bar || !lower;
}

void kl_usage_split_item(const char *line, size_t len, size_t *spec_end, size_t *help_start)
{
	size_t i = indent_of(line, len), word;
	bool after_opt = false;

	for (size_t j = i; j + 1 < len; j++) {
		if (line[j] == ' ' && line[j + 1] == ' ') {
			*spec_end = j;
			*help_start = j + indent_of(line + j, len - j);
			return;
		}
	}
	/* no gap: words up to the first that is neither an option nor a value */
	while (i < len) {
		word = i;
		while (i < len && line[i] != ' ')
			i++;
		if (line[word] == '-') {
			after_opt = true;
		} else if (after_opt && is_value_word(line + word, i - word)) {
			after_opt = false;
		} else {
			while (word > 0 && line[word - 1] == ' ')
				word--;
			*spec_end = word;
			*help_start = word + indent_of(line + word, len - word);
			return;
		}
		while (i < len && line[i] == ' ')
			i++;
	}
	*spec_end = len;
	*help_start = len;
}

static void copy_word(char *dst, size_t size, const char *s, size_t n)
{
	if (n >= size)
		n = size - 1;
	memcpy(dst, s, n);
	dst[n] = 0;
}

int kl_usage_parse_spec(const char *spec, size_t len,
			int (*fn)(const struct kl_usage_opt *o, void *ud), void *ud)
{
	struct kl_usage_opt o = {0};
	bool have = false;
	size_t i = 0;
	int rc;

	while (i < len) {
		size_t w = i, n;

		while (i < len && spec[i] != ' ')
			i++;
		n = i - w;
		while (n > 0 && spec[w + n - 1] == ',')
			n--;
		if (n >= 3 && spec[w] == '-' && spec[w + 1] == '-') {
			const char *eq = memchr(spec + w, '=', n);
			size_t nn = eq ? (size_t)(eq - (spec + w)) : n;

			if (have && o.name[0]) {
				rc = fn(&o, ud);
				if (rc)
					return rc;
				memset(&o, 0, sizeof(o));
			}
			have = true;
			copy_word(o.name, sizeof(o.name), spec + w + 2, nn - 2);
			if (eq) {
				o.arg_eq = true;
				copy_word(o.arg, sizeof(o.arg), eq + 1, n - nn - 1);
			}
		} else if (n == 2 && spec[w] == '-' && spec[w + 1] != '-') {
			if (have) {
				rc = fn(&o, ud);
				if (rc)
					return rc;
				memset(&o, 0, sizeof(o));
			}
			have = true;
			o.short_name = spec[w + 1];
		} else if (have && n > 0 && !o.arg[0]) {
			copy_word(o.arg, sizeof(o.arg), spec + w, n);
		}
		while (i < len && spec[i] == ' ')
			i++;
	}
	return have ? fn(&o, ud) : 0;
}

int kl_usage_for_each_opt(const char *usage, int (*fn)(const struct kl_usage_opt *o, void *ud),
			  void *ud)
{
	for (const char *p = usage; *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p), spec_end, help;
		int rc;

		if (kl_usage_is_item(p, len)) {
			kl_usage_split_item(p, len, &spec_end, &help);
			rc = kl_usage_parse_spec(p, spec_end, fn, ud);
			if (rc)
				return rc;
		}
		p += len + (nl != NULL);
	}
	return 0;
}

/* Optimal string alignment distance (a transposition counts as one edit). */
size_t kl_edit_distance(const char *a, const char *b)
{
	enum { MAX = 64 };
	size_t la = strlen(a), lb = strlen(b);
	size_t d[MAX + 1][MAX + 1];

	if (la > MAX || lb > MAX)
		return SIZE_MAX;
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = a[i - 1] != b[j - 1], v = d[i - 1][j - 1] + cost;

			if (d[i - 1][j] + 1 < v)
				v = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	}
	return d[la][lb];
}

void kl_suggest_init(struct kl_suggest *s, const char *typed)
{
	size_t n = strlen(typed);

	memset(s, 0, sizeof(*s));
	s->typed = typed;
	/* "lx" may mean "ls"; a longer word may be further off */
	s->best = n < 4 ? 1 : n < 9 ? 2 : 3;
}

void kl_suggest_add(struct kl_suggest *s, const char *name)
{
	size_t n = strlen(s->typed), d;

	if (!strcmp(name, s->typed) || strlen(name) >= sizeof(s->names[0]))
		return;
	/* a beginning that names few: "snap" for "snapshots" */
	d = n >= 2 && !strncmp(name, s->typed, n) ? 0 : kl_edit_distance(s->typed, name);
	if (d > s->best)
		return;
	if (d < s->best) {
		s->best = d;
		s->n = 0;
	}
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->names[i], name))
			return;
	if (s->n < KL_SUGGEST_MAX)
		snprintf(s->names[s->n++], sizeof(s->names[0]), "%s", name);
}

void kl_suggest_print(const struct kl_suggest *s, const char *prefix, FILE *f)
{
	if (s->n == 0)
		return;
	fprintf(f, "; did you mean ");
	for (size_t i = 0; i < s->n; i++)
		fprintf(f, "%s'%s%s'",
			i == 0		? ""
			: i + 1 == s->n ? " or "
					: ", ",
			prefix, s->names[i]);
	fputc('?', f);
}

static int suggest_opt(const struct kl_usage_opt *o, void *ud)
{
	if (o->name[0])
		kl_suggest_add(ud, o->name);
	return 0;
}

void kl_suggest_option(FILE *f, const char *word, const char *const *usages, size_t n_usages)
{
	char typed[64];
	struct kl_suggest s;
	const char *eq;
	size_t n;

	if (strncmp(word, "--", 2) != 0)
		return;
	word += 2;
	eq = strchr(word, '=');
	n = eq ? (size_t)(eq - word) : strlen(word);
	if (n == 0 || n >= sizeof(typed))
		return;
	memcpy(typed, word, n);
	typed[n] = 0;
	kl_suggest_init(&s, typed);
	for (size_t i = 0; i < n_usages; i++)
		kl_usage_for_each_opt(usages[i], suggest_opt, &s);
	kl_suggest_print(&s, "--", f);
}

/*
 * The message "did you mean" builds, in memory: under --json it becomes one
 * error object (kl_cli_emit), else a line with the hint to --help.
 */
static int usage_message(struct kl_cli *cli, const char *who, const char *msg, const char *hint)
{
	if (cli->json)
		kl_cli_emit(cli, true, -KL_EUSAGE, msg);
	else
		fprintf(stderr, "keel: %s%s%s\n%s", who ? who : "", who ? ": " : "", msg, hint);
	return -KL_EUSAGE;
}

int kl_cli_unknown_command(struct kl_cli *cli, const char *name)
{
	struct kl_suggest s;
	char *msg = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&msg, &len);
	int rc;

	if (!f)
		return -ENOMEM;
	kl_suggest_init(&s, name);
	for (const struct kl_cmd *c = kl_cmd_table; c->name; c++)
		kl_suggest_add(&s, c->name);
	fprintf(f, "unknown command '%s'", name);
	if (s.n)
		kl_suggest_print(&s, "", f);
	else
		fprintf(f, "; see 'keel --help'");
	if (fclose(f) != 0 || !msg) {
		free(msg);
		return -ENOMEM;
	}
	rc = usage_message(cli, NULL, msg, ""); /* the command is what is unknown */
	free(msg);
	return rc;
}

int kl_cli_unknown_option(struct kl_cli *cli, const char *word, const char *usage)
{
	const char *const usages[] = {usage, kl_cli_main_usage};
	const char *name = cli->cmd_name ? cli->cmd_name : "";
	char *msg = NULL, hint[128];
	size_t len = 0;
	FILE *f = open_memstream(&msg, &len);
	int rc;

	if (!f)
		return -ENOMEM;
	fprintf(f, "unknown option '%s'", word);
	kl_suggest_option(f, word, usages, 2);
	if (fclose(f) != 0 || !msg) {
		free(msg);
		return -ENOMEM;
	}
	snprintf(hint, sizeof(hint), "Run 'keel %s --help' for usage.\n", name);
	rc = usage_message(cli, name, msg, hint);
	free(msg);
	return rc;
}
