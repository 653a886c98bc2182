/*
 * keel generate: the manual pages (keel.1, keel-COMMAND.1) and the bash,
 * zsh and fish completions, all made from what --help prints: the command
 * table and each command's usage text, read back by usage.c. A command
 * added to the table gets its page and its completions without a word
 * here; what its --help says is what they say.
 */
#include <ctype.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

#include "generate.h"

static const char usage[] =
	"usage: keel generate [--man DIR] [--bash-completion FILE]\n"
	"                     [--zsh-completion FILE] [--fish-completion FILE]\n"
	"\n"
	"Write keel's manual pages and shell completion scripts, made from the\n"
	"--help texts of keel and of every command. FILE '-' is standard output.\n"
	"\n"
	"Options:\n"
	"      --man DIR               write keel.1 and keel-COMMAND.1 for each\n"
	"                              command into DIR (made if missing)\n"
	"      --bash-completion FILE  the bash completion script\n"
	"      --zsh-completion FILE   the zsh completion function (_keel)\n"
	"      --fish-completion FILE  the fish completion script\n";

/* ---- what each command offers ---- */

struct collect {
	struct kl_gen_cmd *c;
	const char *help;
	size_t help_len;
};

static int add_opt(const struct kl_usage_opt *o, void *ud)
{
	struct collect *col = ud;
	struct kl_gen_cmd *c = col->c;
	struct kl_gen_opt *v;
	size_t n = col->help_len;

	for (size_t i = 0; i < c->n_opts; i++) {
		const struct kl_usage_opt *p = &c->opts[i].o;

		/* check lists --read-data-subset twice, with N% and n/m */
		if (o->name[0] ? !strcmp(p->name, o->name) : p->short_name == o->short_name)
			return 0;
	}
	v = kl_realloc(c->opts, (c->n_opts + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	c->opts = v;
	v = &c->opts[c->n_opts++];
	memset(v, 0, sizeof(*v));
	v->o = *o;
	if (n >= sizeof(v->help))
		n = sizeof(v->help) - 1;
	memcpy(v->help, col->help, n);
	return 0;
}

static void add_sub(struct kl_gen_cmd *c, const char *w, size_t n)
{
	for (size_t i = 0; i < c->n_subs; i++)
		if (strlen(c->subs[i]) == n && !memcmp(c->subs[i], w, n))
			return;
	if (c->n_subs < sizeof(c->subs) / sizeof(c->subs[0]) && n < sizeof(c->subs[0])) {
		memcpy(c->subs[c->n_subs], w, n);
		c->subs[c->n_subs++][n] = 0;
	}
}

/* The synopsis: "usage: keel key list", "       keel key add [...]" up to a blank line. */
static void scan_synopsis(struct kl_gen_cmd *c)
{
	const char *p = c->usage;
	size_t cl = c->name ? strlen(c->name) : 0;

	while (*p && *p != '\n') {
		const char *nl = strchr(p, '\n'), *w;
		size_t len = nl ? (size_t)(nl - p) : strlen(p), n;

		w = memmem(p, len, "keel ", 5);
		if (w && c->name && !strncmp(w + 5, c->name, cl) && w[5 + cl] == ' ') {
			w += 5 + cl + 1;
			for (n = 0; w + n < p + len && w[n] >= 'a' && w[n] <= 'z'; n++)
				;
			if (n > 0 && (w + n == p + len || w[n] == ' '))
				add_sub(c, w, n);
		}
		if (memmem(p, len, "COMMAND", 7) && c->name)
			c->takes_command = true;
		p += len + (nl != NULL);
	}
}

/* Appends a further line of an option's help ("" help: the first line it has). */
static void add_help(struct kl_gen_opt *o, const char *s, size_t n)
{
	size_t l = strlen(o->help);

	if (l && l + 1 < sizeof(o->help))
		o->help[l++] = ' ';
	if (l + n >= sizeof(o->help))
		n = sizeof(o->help) - 1 - l;
	memcpy(o->help + l, s, n);
	o->help[l + n] = 0;
}

static int scan_cmd(struct kl_gen_cmd *c)
{
	/* the options that a further line's help belongs to: from first on */
	size_t first = 0;
	bool spec_goes_on = false;

	for (const char *p = c->usage; *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p), spec_end, help, in = 0;
		int rc;

		while (in < len && p[in] == ' ')
			in++;
		if (kl_usage_is_item(p, len)) {
			struct collect col;

			if (!spec_goes_on)
				first = c->n_opts;
			kl_usage_split_item(p, len, &spec_end, &help);
			col = (struct collect){c, p + help, len - help};
			rc = kl_usage_parse_spec(p, spec_end, add_opt, &col);
			if (rc < 0)
				return rc;
			/* forget's --keep-within-* share the help under their last line */
			spec_goes_on = help == len;
		} else if (in > 8 && in < len) {
			for (size_t i = first; i < c->n_opts; i++)
				add_help(&c->opts[i], p + in, len - in);
			spec_goes_on = false;
		} else {
			first = c->n_opts;
			spec_goes_on = false;
		}
		p += len + (nl != NULL);
	}
	scan_synopsis(c);
	return 0;
}

/* Runs "keel CMD --help" in hand-over mode: the command gives its text. */
static int help_text_of(const struct kl_cmd *cmd, const char **ret)
{
	struct kl_cli sub = {0};
	char name[64], help[] = "--help";
	char *argv[] = {name, help, NULL};
	int rc;

	snprintf(name, sizeof(name), "%s", cmd->name);
	sub.cmd_name = cmd->name;
	sub.cmd_flags = cmd->flags;
	sub.want_help_text = true;
	optind = 0;
	rc = cmd->fn(2, argv, &sub);
	if (rc != KL_CLI_HELP || !sub.help_text)
		return -ENOTSUP;
	*ret = sub.help_text;
	return 0;
}

static void gen_release(struct kl_gen *g)
{
	kl_free(g->main.opts);
	for (size_t i = 0; i < g->n_cmds; i++)
		kl_free(g->cmds[i].opts);
	kl_free(g->cmds);
	free(g->main_usage); /* open_memstream's */
	memset(g, 0, sizeof(*g));
}

static int gen_collect(struct kl_cli *cli, struct kl_gen *g)
{
	static const struct kl_usage_opt help = {'h', "help", "", false};
	size_t n = 0, size = 0;
	FILE *f;
	int rc;

	memset(g, 0, sizeof(*g));
	f = open_memstream(&g->main_usage, &size);
	if (!f)
		return -errno;
	kl_cli_print_main_usage(f);
	if (fclose(f) != 0)
		return -ENOMEM;
	g->main.usage = g->main_usage;
	g->main.summary = "encrypted, deduplicated, incremental backups";
	rc = scan_cmd(&g->main);
	if (rc < 0)
		return rc;
	/* every command takes --help, which the main text does not list */
	rc = add_opt(&help, &(struct collect){&g->main, "print the help", 14});
	if (rc < 0)
		return rc;
	for (const struct kl_cmd *c = kl_cmd_table; c->name; c++)
		n++;
	g->cmds = kl_calloc(n, sizeof(*g->cmds));
	if (!g->cmds)
		return -ENOMEM;
	for (const struct kl_cmd *c = kl_cmd_table; c->name; c++) {
		struct kl_gen_cmd *gc = &g->cmds[g->n_cmds++];

		gc->name = c->name;
		gc->summary = c->summary;
		rc = help_text_of(c, &gc->usage);
		if (rc < 0) {
			kl_cli_error(cli, rc, "'keel %s --help' did not give its usage text",
				     c->name);
			return rc;
		}
		rc = scan_cmd(gc);
		if (rc < 0)
			return rc;
	}
	return 0;
}

enum kl_gen_arg kl_gen_arg_kind(const struct kl_usage_opt *o)
{
	if (!o->arg[0])
		return KL_GEN_ARG_NONE;
	if (strchr(o->arg, '|')) {
		for (const char *p = o->arg; *p; p++)
			if (!(*p == '|' || *p == '-' || (*p >= 'a' && *p <= 'z')))
				return KL_GEN_ARG_ANY;
		return KL_GEN_ARG_CHOICE;
	}
	if (strstr(o->arg, "DIR"))
		return KL_GEN_ARG_DIR;
	if (strstr(o->arg, "FILE") || !strcmp(o->arg, "REPO") || !strcmp(o->arg, "PATH"))
		return KL_GEN_ARG_FILE;
	if (!strcmp(o->arg, "COMMAND"))
		return KL_GEN_ARG_COMMAND;
	return KL_GEN_ARG_ANY;
}

/* ---- manual pages ---- */

struct line {
	const char *p;
	size_t len;
};

static size_t indent(const struct line *l)
{
	size_t i = 0;

	while (i < l->len && l->p[i] == ' ')
		i++;
	return i;
}

static bool has_gap(const struct line *l)
{
	for (size_t i = indent(l); i + 1 < l->len; i++)
		if (l->p[i] == ' ' && l->p[i + 1] == ' ')
			return true;
	return false;
}

/* Text for roff: backslashes and minus signs escaped, no request at a line's start. */
static void roff(FILE *f, const char *s, size_t n, bool line_start)
{
	for (size_t i = 0; i < n; i++) {
		if (line_start && i == 0 && (s[i] == '.' || s[i] == '\''))
			fputs("\\&", f);
		if (s[i] == '\\')
			fputs("\\e", f);
		else if (s[i] == '-')
			fputs("\\-", f);
		else
			fputc(s[i], f);
	}
}

/* A command list's item: "  init        create a repository" */
static bool is_word_item(const struct line *l)
{
	size_t i = indent(l), j = i;

	if (i == 0 || i > 8 || j >= l->len || !(l->p[j] >= 'a' && l->p[j] <= 'z'))
		return false;
	while (j < l->len && l->p[j] != ' ')
		j++;
	return j + 1 < l->len && l->p[j + 1] == ' ';
}

static bool is_item(const struct line *l)
{
	return kl_usage_is_item(l->p, l->len) || is_word_item(l);
}

/* "Options:" followed by options: a section of its own */
static bool is_header(const struct line *l, const struct line *next)
{
	return next && l->len > 1 && l->len <= 60 && indent(l) == 0 && l->p[l->len - 1] == ':' &&
	       is_item(next);
}

/* "-e, --exclude PATTERN": options bold, values italic */
static void roff_spec(FILE *f, const char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t w = i, e, eq;

		while (i < n && s[i] != ' ')
			i++;
		e = i;
		while (e > w && s[e - 1] == ',')
			e--;
		eq = w;
		if (s[w] == '-' || (s[w] >= 'a' && s[w] <= 'z')) {
			while (eq < e && s[eq] != '=')
				eq++;
			fputs("\\fB", f);
			roff(f, s + w, eq - w, w == 0);
			fputs("\\fR", f);
		}
		if (eq < e) {
			if (s[eq] == '=')
				fputc(s[eq++], f);
			fputs("\\fI", f);
			roff(f, s + eq, e - eq, false);
			fputs("\\fR", f);
		}
		roff(f, s + e, i - e, false);
		while (i < n && s[i] == ' ')
			fputc(s[i++], f);
	}
	fputc('\n', f);
}

/* Prose: plain lines are filled; indented or aligned ones are kept as they are. */
static void man_prose(FILE *f, const struct line *l, size_t n)
{
	bool pre = false;

	fputs(".PP\n", f);
	for (size_t i = 0; i < n; i++) {
		bool keep = indent(&l[i]) > 0 || has_gap(&l[i]);

		if (keep != pre)
			fputs(keep ? ".nf\n" : ".fi\n", f);
		pre = keep;
		roff(f, l[i].p, l[i].len, true);
		fputc('\n', f);
	}
	if (pre)
		fputs(".fi\n", f);
}

static void man_section(FILE *f, const struct line *l, size_t n)
{
	const char *paren = memchr(l[0].p, '(', l[0].len);
	size_t tl = paren ? (size_t)(paren - l[0].p) : l[0].len - 1, spec_end, help;
	char spec[512];
	size_t sl = 0;

	while (tl > 0 && l[0].p[tl - 1] == ' ')
		tl--;
	fputs(".SH ", f);
	for (size_t i = 0; i < tl; i++)
		if (l[0].p[i] == '-')
			fputs("\\-", f);
		else
			fputc(toupper((unsigned char)l[0].p[i]), f);
	fputc('\n', f);
	if (paren) {
		roff(f, paren, (size_t)(l[0].p + l[0].len - 1 - paren), true);
		fputc('\n', f);
	}
	for (size_t i = 1; i < n; i++) {
		if (!is_item(&l[i])) {
			/* the help's further lines; a spec still waiting gets its tag first */
			if (sl) {
				fputs(".TP\n", f);
				roff_spec(f, spec, sl);
				sl = 0;
			}
			roff(f, l[i].p + indent(&l[i]), l[i].len - indent(&l[i]), true);
			fputc('\n', f);
			continue;
		}
		kl_usage_split_item(l[i].p, l[i].len, &spec_end, &help);
		if (is_word_item(&l[i]) && spec_end == l[i].len)
			spec_end = help = l[i].len;
		/* several lines of options share one help (forget's --keep-within-*) */
		if (sl && sl + 1 < sizeof(spec))
			spec[sl++] = ' ';
		for (size_t j = indent(&l[i]); j < spec_end && sl + 1 < sizeof(spec); j++)
			spec[sl++] = l[i].p[j];
		if (help == l[i].len)
			continue;
		fputs(".TP\n", f);
		roff_spec(f, spec, sl);
		sl = 0;
		roff(f, l[i].p + help, l[i].len - help, true);
		fputc('\n', f);
	}
	if (sl) {
		fputs(".TP\n", f);
		roff_spec(f, spec, sl);
	}
}

static int split_lines(const char *text, struct line **ret, size_t *n_ret)
{
	struct line *v = NULL, *nv;
	size_t n = 0;

	for (const char *p = text; *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);

		nv = kl_realloc(v, (n + 1) * sizeof(*v));
		if (!nv) {
			kl_free(v);
			return -ENOMEM;
		}
		v = nv;
		v[n++] = (struct line){p, len};
		p += len + (nl != NULL);
	}
	*ret = v;
	*n_ret = n;
	return 0;
}

static void man_synopsis(FILE *f, const struct line *l, size_t n, const char *name)
{
	fputs(".SH SYNOPSIS\n.nf\n", f);
	for (size_t i = 0; i < n; i++) {
		const char *p = l[i].p;
		size_t len = l[i].len, k = strlen("keel ") + (name ? strlen(name) : 0);

		if (len >= 7 && !memcmp(p, "usage: ", 7)) {
			p += 7;
			len -= 7;
		}
		while (len && *p == ' ') {
			p++;
			len--;
		}
		if (len >= 4 && !memcmp(p, "keel", 4)) {
			if (!name || len < k || memcmp(p + 5, name, k - 5) != 0)
				k = 4;
			fputs("\\fB", f);
			roff(f, p, k, true);
			fputs("\\fR", f);
			roff(f, p + k, len - k, false);
		} else {
			fputs("    ", f);
			roff(f, p, len, false);
		}
		fputc('\n', f);
	}
	fputs(".fi\n", f);
}

static void man_date(char *buf, size_t n)
{
	const char *sde = getenv("SOURCE_DATE_EPOCH");
	time_t t = sde ? (time_t)strtoll(sde, NULL, 10) : time(NULL);
	struct tm tm;

	if (!gmtime_r(&t, &tm) || !strftime(buf, n, "%Y-%m-%d", &tm))
		buf[0] = 0;
}

static int write_man(FILE *f, const struct kl_gen *g, const struct kl_gen_cmd *c)
{
	_cleanup_free_ struct line *l = NULL;
	size_t n, i, syn, b;
	char date[16];
	int rc;

	rc = split_lines(c->usage, &l, &n);
	if (rc < 0)
		return rc;
	man_date(date, sizeof(date));
	fprintf(f, ".\\\" Made by 'keel generate' from 'keel%s%s --help'.\n", c->name ? " " : "",
		c->name ? c->name : "");
	fprintf(f, ".TH \"KEEL%s", c->name ? "\\-" : "");
	for (const char *p = c->name ? c->name : ""; *p; p++) {
		if (*p == '-')
			fputs("\\-", f);
		else
			fputc(toupper((unsigned char)*p), f);
	}
	fprintf(f, "\" 1 \"%s\" \"keel %s\" \"keel manual\"\n.SH NAME\n", date, KEEL_VERSION);
	fprintf(f, "keel%s", c->name ? "\\-" : "");
	roff(f, c->name ? c->name : "", c->name ? strlen(c->name) : 0, false);
	fputs(" \\- ", f);
	roff(f, c->summary, strlen(c->summary), false);
	fputc('\n', f);
	for (syn = 0; syn < n && l[syn].len; syn++)
		;
	man_synopsis(f, l, syn, c->name);
	/* prose first, as DESCRIPTION; then each list under its own heading */
	fputs(".SH DESCRIPTION\n", f);
	for (int pass = 0; pass < 2; pass++) {
		for (i = syn; i < n; i = b) {
			while (i < n && !l[i].len)
				i++;
			for (b = i; b < n && l[b].len; b++)
				;
			if (b == i)
				break;
			if (is_header(&l[i], i + 1 < b ? &l[i + 1] : NULL) != (pass == 1))
				continue;
			if (pass == 0)
				man_prose(f, l + i, b - i);
			else
				man_section(f, l + i, b - i);
		}
	}
	if (c->name)
		fputs(".SH \"GLOBAL OPTIONS\"\nThe global options of\n.BR keel (1)\n"
		      "(\\fB\\-r\\fR, \\fB\\-\\-password\\-file\\fR, \\fB\\-\\-json\\fR, ...)\n"
		      "apply to every command, before or after its name.\n",
		      f);
	fputs(".SH \"SEE ALSO\"\n", f);
	if (c->name)
		fputs(".BR keel (1)\n", f);
	for (i = 0; !c->name && i < g->n_cmds; i++) {
		fputs(".BR keel\\-", f);
		roff(f, g->cmds[i].name, strlen(g->cmds[i].name), false);
		fprintf(f, " (1)%s\n", i + 1 < g->n_cmds ? "," : "");
	}
	return 0;
}

/* ---- files ---- */

/* Opens FILE ("-": standard output), runs the writer, closes it with its errors. */
static int write_file(struct kl_cli *cli, const char *path,
		      int (*fn)(FILE *f, const struct kl_gen *g, const struct kl_gen_cmd *c),
		      const struct kl_gen *g, const struct kl_gen_cmd *c)
{
	bool out = !strcmp(path, "-");
	FILE *f = out ? stdout : fopen(path, "we");
	int rc;

	if (!f) {
		rc = -errno;
		kl_cli_error(cli, rc, "cannot create '%s'", path);
		return rc;
	}
	rc = fn(f, g, c);
	if (ferror(f) && rc >= 0)
		rc = -EIO;
	if (out ? fflush(f) != 0 : fclose(f) != 0)
		rc = rc < 0 ? rc : errno > 0 ? -errno : -EIO;
	if (rc < 0)
		kl_cli_error(cli, rc, "cannot write '%s'", path);
	return rc;
}

static int bash_fn(FILE *f, const struct kl_gen *g, const struct kl_gen_cmd *c)
{
	return kl_gen_write_bash(f, g);
}

static int zsh_fn(FILE *f, const struct kl_gen *g, const struct kl_gen_cmd *c)
{
	return kl_gen_write_zsh(f, g);
}

static int fish_fn(FILE *f, const struct kl_gen *g, const struct kl_gen_cmd *c)
{
	return kl_gen_write_fish(f, g);
}

static int write_mans(struct kl_cli *cli, const char *dir, const struct kl_gen *g)
{
	char path[4096];
	int rc;

	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		rc = -errno;
		kl_cli_error(cli, rc, "cannot create directory '%s'", dir);
		return rc;
	}
	for (size_t i = 0; i <= g->n_cmds; i++) {
		const struct kl_gen_cmd *c = i == 0 ? &g->main : &g->cmds[i - 1];

		if ((size_t)snprintf(path, sizeof(path), "%s/keel%s%s.1", dir, c->name ? "-" : "",
				     c->name ? c->name : "") >= sizeof(path))
			return kl_cli_usage_error(cli, "directory name too long: '%s'", dir);
		rc = write_file(cli, path, write_man, g, c);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int cmd_generate(int argc, char **argv, struct kl_cli *cli)
{
	enum { OPT_MAN = 1, OPT_BASH, OPT_ZSH, OPT_FISH };
	static const struct option opts[] = {
		KL_GLOBAL_OPTS,
		{"man", required_argument, NULL, OPT_MAN},
		{"bash-completion", required_argument, NULL, OPT_BASH},
		{"zsh-completion", required_argument, NULL, OPT_ZSH},
		{"fish-completion", required_argument, NULL, OPT_FISH},
		{NULL, 0, NULL, 0},
	};
	const char *man = NULL, *bash = NULL, *zsh = NULL, *fish = NULL;
	struct kl_gen g;
	int c, rc;

	while ((c = getopt_long(argc, argv, ":" KL_GLOBAL_SHORT, opts, NULL)) != -1) {
		switch (c) {
		case OPT_MAN:
			man = optarg;
			break;
		case OPT_BASH:
			bash = optarg;
			break;
		case OPT_ZSH:
			zsh = optarg;
			break;
		case OPT_FISH:
			fish = optarg;
			break;
		default:
			rc = kl_cli_default_opt(cli, c, usage, argv);
			if (rc)
				return rc;
		}
	}
	if (optind < argc)
		return kl_cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	if (!man && !bash && !zsh && !fish)
		return kl_cli_usage_error(cli, "nothing to generate: give --man DIR or a "
					       "--*-completion FILE");
	rc = gen_collect(cli, &g);
	if (rc < 0 && rc != -ENOTSUP)
		kl_cli_error(cli, rc, "cannot read the help texts");
	if (rc >= 0 && man)
		rc = write_mans(cli, man, &g);
	if (rc >= 0 && bash)
		rc = write_file(cli, bash, bash_fn, &g, NULL);
	if (rc >= 0 && zsh)
		rc = write_file(cli, zsh, zsh_fn, &g, NULL);
	if (rc >= 0 && fish)
		rc = write_file(cli, fish, fish_fn, &g, NULL);
	gen_release(&g);
	return rc;
}
