/*
 * keel generate: manual pages and shell completions, made from the
 * command table (kl_cmd_table) and each command's --help text.
 */
#ifndef KEEL_CLI_GENERATE_H
#define KEEL_CLI_GENERATE_H

#include "cli.h"

/* An option as completions offer it */
struct kl_gen_opt {
	struct kl_usage_opt o;
	char help[160]; /* its help on one line, cut at 159 bytes ("": none) */
};

/* What one command (or, for the main page, keel itself) offers */
struct kl_gen_cmd {
	const char *name;    /* NULL for keel itself */
	const char *summary; /* its line in the command table */
	const char *usage;   /* its --help text (borrowed) */
	struct kl_gen_opt *opts;
	size_t n_opts;
	/* first words of its synopsis lines: "key list", "repair index" */
	char subs[16][24];
	size_t n_subs;
	bool takes_command; /* its synopsis has COMMAND: "keel help [COMMAND]" */
};

struct kl_gen {
	struct kl_gen_cmd main; /* keel itself: the global options */
	char *main_usage;	/* kl_cli_print_main_usage's text (owned) */
	struct kl_gen_cmd *cmds;
	size_t n_cmds;
};

/* How an option's value is completed */
enum kl_gen_arg {
	KL_GEN_ARG_NONE,    /* takes no value */
	KL_GEN_ARG_ANY,	    /* a value nothing can complete */
	KL_GEN_ARG_FILE,    /* a path */
	KL_GEN_ARG_DIR,	    /* a directory */
	KL_GEN_ARG_CHOICE,  /* one of the words of "a|b|c" */
	KL_GEN_ARG_COMMAND, /* a keel command */
};
enum kl_gen_arg kl_gen_arg_kind(const struct kl_usage_opt *o);

int kl_gen_write_bash(FILE *f, const struct kl_gen *g);
int kl_gen_write_zsh(FILE *f, const struct kl_gen *g);
int kl_gen_write_fish(FILE *f, const struct kl_gen *g);

#endif
