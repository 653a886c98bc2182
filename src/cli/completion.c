/*
 * Shell completions from the --help texts (generate.c collects them):
 * commands, each command's options and the values of those that name a
 * file, a directory or one of a few words, a command's verbs ("key list").
 */
#include "generate.h"

/* ---- bash ---- */

static void words(FILE *f, const struct kl_gen_cmd *c, enum kl_gen_arg only, bool all)
{
	for (size_t i = 0; i < c->n_opts; i++) {
		const struct kl_usage_opt *o = &c->opts[i].o;
		enum kl_gen_arg k = kl_gen_arg_kind(o);

		if (!all && (only == KL_GEN_ARG_ANY ? k == KL_GEN_ARG_NONE : k != only))
			continue;
		if (o->short_name)
			fprintf(f, " -%c", o->short_name);
		if (o->name[0])
			fprintf(f, " --%s", o->name);
	}
}

/* bash variables: opts (all), args (with a value), files, dirs; space-padded */
static void bash_opt_vars(FILE *f, const struct kl_gen_cmd *c, const char *prefix,
			  const char *indent)
{
	fprintf(f, "%s%sopts='", indent, prefix);
	words(f, c, KL_GEN_ARG_NONE, true);
	fprintf(f, " '\n%s%sargs='", indent, prefix);
	words(f, c, KL_GEN_ARG_ANY, false);
	fprintf(f, " '\n%s%sfiles='", indent, prefix);
	words(f, c, KL_GEN_ARG_FILE, false);
	fprintf(f, " '\n%s%sdirs='", indent, prefix);
	words(f, c, KL_GEN_ARG_DIR, false);
	fprintf(f, " '\n");
}

static void command_names(FILE *f, const struct kl_gen *g, const char *sep)
{
	for (size_t i = 0; i < g->n_cmds; i++)
		fprintf(f, "%s%s", i ? sep : "", g->cmds[i].name);
}

static void subs(FILE *f, const struct kl_gen *g, const struct kl_gen_cmd *c)
{
	if (c->takes_command) {
		command_names(f, g, " ");
		return;
	}
	for (size_t i = 0; i < c->n_subs; i++)
		fprintf(f, "%s%s", i ? " " : "", c->subs[i]);
}

/* case branches "CMD:--opt) w='a b' ;;" for values that are one of a few words */
static void bash_choice_cases(FILE *f, const struct kl_gen_cmd *c)
{
	const char *cmd = c->name ? c->name : "*";

	for (size_t i = 0; i < c->n_opts; i++) {
		const struct kl_usage_opt *o = &c->opts[i].o;

		if (kl_gen_arg_kind(o) != KL_GEN_ARG_CHOICE)
			continue;
		fputs("\t\t", f);
		if (o->short_name)
			fprintf(f, "%s:-%c", cmd, o->short_name);
		if (o->name[0])
			fprintf(f, "%s%s:--%s", o->short_name ? " | " : "", cmd, o->name);
		fputs(") w='", f);
		for (const char *p = o->arg; *p; p++)
			fputc(*p == '|' ? ' ' : *p, f);
		fputs("' ;;\n", f);
	}
}

int kl_gen_write_bash(FILE *f, const struct kl_gen *g)
{
	fputs("# bash completion for keel(1)\n"
	      "# Made by 'keel generate' from keel's --help texts.\n"
	      "\n"
	      "_keel_command_options()\n"
	      "{\n"
	      "\tcase $1 in\n",
	      f);
	for (size_t i = 0; i < g->n_cmds; i++) {
		const struct kl_gen_cmd *c = &g->cmds[i];

		fprintf(f, "\t%s)\n", c->name);
		bash_opt_vars(f, c, "", "\t\t");
		fputs("\t\tsubs='", f);
		subs(f, g, c);
		fputs("'\n\t\t;;\n", f);
	}
	fputs("\tesac\n"
	      "}\n"
	      "\n"
	      "_keel()\n"
	      "{\n"
	      "\tlocal cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}\n"
	      "\tlocal cmd='' sub='' i w\n"
	      "\tlocal opts=' ' args=' ' files=' ' dirs=' ' subs=''\n",
	      f);
	bash_opt_vars(f, &g->main, "g", "\t");
	fputs("\tlocal commands='", f);
	command_names(f, g, " ");
	fputs("'\n"
	      "\n"
	      "\t# the command: the first word that is neither an option nor its value\n"
	      "\tfor ((i = 1; i < COMP_CWORD; i++)); do\n"
	      "\t\tw=${COMP_WORDS[i]}\n"
	      "\t\tif [[ $gargs$args == *\" $w \"* ]]; then\n"
	      "\t\t\ti=$((i + 1))\n"
	      "\t\telif [[ $w == -* ]]; then\n"
	      "\t\t\t:\n"
	      "\t\telif [[ -z $cmd ]]; then\n"
	      "\t\t\tcmd=$w\n"
	      "\t\t\t_keel_command_options \"$cmd\"\n"
	      "\t\telif [[ -z $sub ]]; then\n"
	      "\t\t\tsub=$w\n"
	      "\t\tfi\n"
	      "\tdone\n"
	      "\n"
	      "\t# the value of an option\n"
	      "\tif ((COMP_CWORD > 1)) && [[ $gargs$args == *\" $prev \"* ]]; then\n"
	      "\t\tlocal w=''\n"
	      "\t\tcase $cmd:$prev in\n",
	      f);
	for (size_t i = 0; i < g->n_cmds; i++)
		bash_choice_cases(f, &g->cmds[i]);
	bash_choice_cases(f, &g->main);
	fputs("\t\tesac\n"
	      "\t\tif [[ -n $w ]]; then\n"
	      "\t\t\tmapfile -t COMPREPLY < <(compgen -W \"$w\" -- \"$cur\")\n"
	      "\t\telif [[ $gfiles$files == *\" $prev \"* ]]; then\n"
	      "\t\t\tcompopt -o filenames 2>/dev/null\n"
	      "\t\t\tmapfile -t COMPREPLY < <(compgen -f -- \"$cur\")\n"
	      "\t\telif [[ $gdirs$dirs == *\" $prev \"* ]]; then\n"
	      "\t\t\tcompopt -o filenames 2>/dev/null\n"
	      "\t\t\tmapfile -t COMPREPLY < <(compgen -d -- \"$cur\")\n"
	      "\t\telse\n"
	      "\t\t\tCOMPREPLY=()\n"
	      "\t\tfi\n"
	      "\t\treturn 0\n"
	      "\tfi\n"
	      "\tif [[ $cur == -* ]]; then\n"
	      "\t\tmapfile -t COMPREPLY < <(compgen -W \"$opts $gopts\" -- \"$cur\")\n"
	      "\telif [[ -z $cmd ]]; then\n"
	      "\t\tmapfile -t COMPREPLY < <(compgen -W \"$commands\" -- \"$cur\")\n"
	      "\telif [[ -n $subs && -z $sub ]]; then\n"
	      "\t\tmapfile -t COMPREPLY < <(compgen -W \"$subs\" -- \"$cur\")\n"
	      "\telse\n"
	      "\t\tCOMPREPLY=() # file names (complete -o default)\n"
	      "\tfi\n"
	      "\treturn 0\n"
	      "}\n"
	      "\n"
	      "complete -o default -F _keel keel\n",
	      f);
	return 0;
}

/* ---- zsh ---- */

/* Text inside a single-quoted _arguments spec: ' closed and reopened, []: escaped */
static void zsh_quote(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\'')
			fputs("'\\''", f);
		else if (*s == '[' || *s == ']' || *s == ':' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else
			fputc(*s, f);
	}
}

static void zsh_value(FILE *f, const struct kl_usage_opt *o, const struct kl_gen *g)
{
	enum kl_gen_arg k = kl_gen_arg_kind(o);

	if (k == KL_GEN_ARG_NONE)
		return;
	fputc(':', f);
	zsh_quote(f, o->arg);
	fputc(':', f);
	switch (k) {
	case KL_GEN_ARG_FILE:
		fputs("_files", f);
		break;
	case KL_GEN_ARG_DIR:
		fputs("_files -/", f);
		break;
	case KL_GEN_ARG_CHOICE:
		fputc('(', f);
		for (const char *p = o->arg; *p; p++)
			fputc(*p == '|' ? ' ' : *p, f);
		fputc(')', f);
		break;
	case KL_GEN_ARG_COMMAND:
		fputc('(', f);
		command_names(f, g, " ");
		fputc(')', f);
		break;
	default:
		fputc(' ', f);
	}
}

/* _arguments specs, one a line; eol ends each line (" \\" in a command line) */
static void zsh_specs(FILE *f, const struct kl_gen *g, const struct kl_gen_cmd *c,
		      const char *indent, const char *eol)
{
	for (size_t i = 0; i < c->n_opts; i++) {
		const struct kl_gen_opt *go = &c->opts[i];
		bool value = kl_gen_arg_kind(&go->o) != KL_GEN_ARG_NONE;

		for (int form = 0; form < 2; form++) {
			if (form == 0 ? !go->o.short_name : !go->o.name[0])
				continue;
			/* every option may be given again: --exclude is, and -v counts */
			if (form == 0)
				fprintf(f, "%s'*-%c%s[", indent, go->o.short_name,
					value ? "+" : "");
			else
				fprintf(f, "%s'*--%s%s[", indent, go->o.name, value ? "=" : "");
			zsh_quote(f, go->help[0] ? go->help : go->o.name);
			fputc(']', f);
			zsh_value(f, &go->o, g);
			fprintf(f, "'%s\n", eol);
		}
	}
}

int kl_gen_write_zsh(FILE *f, const struct kl_gen *g)
{
	fputs("#compdef keel\n"
	      "# zsh completion for keel(1)\n"
	      "# Made by 'keel generate' from keel's --help texts.\n"
	      "\n"
	      "_keel()\n"
	      "{\n"
	      "\tlocal curcontext=$curcontext state state_descr line ret=1\n"
	      "\ttypeset -A opt_args\n"
	      "\tlocal -a globals commands\n"
	      "\tglobals=(\n",
	      f);
	zsh_specs(f, g, &g->main, "\t\t", "");
	fputs("\t)\n\tcommands=(\n", f);
	for (size_t i = 0; i < g->n_cmds; i++) {
		fprintf(f, "\t\t'%s:", g->cmds[i].name);
		zsh_quote(f, g->cmds[i].summary);
		fputs("'\n", f);
	}
	fputs("\t)\n"
	      "\t_arguments -C -s -S : $globals '1: :->command' '*:: :->argument' && ret=0\n"
	      "\tcase $state in\n"
	      "\tcommand)\n"
	      "\t\t_describe -t commands 'keel command' commands && ret=0\n"
	      "\t\t;;\n"
	      "\targument)\n"
	      "\t\tcurcontext=${curcontext%:*:*}:keel-$words[1]:\n"
	      "\t\tcase $words[1] in\n",
	      f);
	for (size_t i = 0; i < g->n_cmds; i++) {
		const struct kl_gen_cmd *c = &g->cmds[i];

		fprintf(f, "\t\t%s)\n\t\t\t_arguments -s -S : $globals \\\n", c->name);
		zsh_specs(f, g, c, "\t\t\t\t", " \\");
		if (c->n_subs || c->takes_command) {
			fputs("\t\t\t\t'1: :(", f);
			subs(f, g, c);
			fputs(")' \\\n", f);
		}
		fputs("\t\t\t\t'*: :_files' && ret=0\n\t\t\t;;\n", f);
	}
	fputs("\t\tesac\n"
	      "\t\t;;\n"
	      "\tesac\n"
	      "\treturn ret\n"
	      "}\n"
	      "\n"
	      "_keel \"$@\"\n",
	      f);
	return 0;
}

/* ---- fish ---- */

static void fish_quote(FILE *f, const char *s)
{
	fputc('\'', f);
	for (; *s; s++) {
		if (*s == '\'' || *s == '\\')
			fputc('\\', f);
		fputc(*s, f);
	}
	fputc('\'', f);
}

static void fish_opts(FILE *f, const struct kl_gen *g, const struct kl_gen_cmd *c)
{
	for (size_t i = 0; i < c->n_opts; i++) {
		const struct kl_gen_opt *go = &c->opts[i];
		enum kl_gen_arg k = kl_gen_arg_kind(&go->o);

		fputs("complete -c keel", f);
		if (c->name)
			fprintf(f, " -n '__fish_seen_subcommand_from %s'", c->name);
		if (go->o.short_name)
			fprintf(f, " -s %c", go->o.short_name);
		if (go->o.name[0])
			fprintf(f, " -l %s", go->o.name);
		switch (k) {
		case KL_GEN_ARG_NONE:
			break;
		case KL_GEN_ARG_FILE:
			fputs(" -r -F", f);
			break;
		case KL_GEN_ARG_DIR:
			fputs(" -x -a '(__fish_complete_directories)'", f);
			break;
		case KL_GEN_ARG_CHOICE:
			fputs(" -x -a '", f);
			for (const char *p = go->o.arg; *p; p++)
				fputc(*p == '|' ? ' ' : *p, f);
			fputc('\'', f);
			break;
		case KL_GEN_ARG_COMMAND:
			fputs(" -x -a '", f);
			command_names(f, g, " ");
			fputc('\'', f);
			break;
		default:
			fputs(" -x", f);
		}
		if (go->help[0]) {
			fputs(" -d ", f);
			fish_quote(f, go->help);
		}
		fputc('\n', f);
	}
}

int kl_gen_write_fish(FILE *f, const struct kl_gen *g)
{
	fputs("# fish completion for keel(1)\n"
	      "# Made by 'keel generate' from keel's --help texts.\n"
	      "\n"
	      "# commands, until one is given\n",
	      f);
	for (size_t i = 0; i < g->n_cmds; i++) {
		fputs("complete -c keel -f -n 'not __fish_seen_subcommand_from ", f);
		command_names(f, g, " ");
		fprintf(f, "' -a %s -d ", g->cmds[i].name);
		fish_quote(f, g->cmds[i].summary);
		fputc('\n', f);
	}
	fputs("\n# global options\n", f);
	fish_opts(f, g, &g->main);
	for (size_t i = 0; i < g->n_cmds; i++) {
		const struct kl_gen_cmd *c = &g->cmds[i];

		fprintf(f, "\n# keel %s\n", c->name);
		if (c->n_subs || c->takes_command) {
			fprintf(f,
				"complete -c keel -f -n '__fish_seen_subcommand_from %s; and not "
				"__fish_seen_subcommand_from ",
				c->name);
			for (size_t j = 0, k = 0; j < g->n_cmds && c->takes_command; j++)
				if (&g->cmds[j] != c)
					fprintf(f, "%s%s", k++ ? " " : "", g->cmds[j].name);
			for (size_t j = 0; j < c->n_subs; j++)
				fprintf(f, "%s%s", j ? " " : "", c->subs[j]);
			fputs("' -a '", f);
			subs(f, g, c);
			fputs("'\n", f);
		}
		fish_opts(f, g, c);
	}
	return 0;
}
