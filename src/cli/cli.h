/* The command-line front end: shared state of one keel invocation. */
#ifndef KEEL_CLI_H
#define KEEL_CLI_H

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <termios.h>

#include "keel/ops.h"
#include "keel/repo.h"

enum kl_cmd_flags {
	KL_CMD_REPO = 1 << 0,  /* open the repository */
	KL_CMD_KEY = 1 << 1,   /* unlock it with a password */
	KL_CMD_INDEX = 1 << 2, /* load the blob index */
	/* lock before loading the index (src/repo/lock.c says why) */
	KL_CMD_LOCK = 1 << 3,	    /* shared: writers and long readers */
	KL_CMD_LOCK_PRUNE = 1 << 4, /* one prune at a time */
	KL_CMD_LOCK_EXCL = 1 << 5,  /* nobody else */
	KL_CMD_READONLY = 1 << 6,   /* may run without a lock on read-only storage */
	KL_CMD_NO_CACHE = 1 << 7,   /* reads the storage itself, never the metadata cache */
};

/* SIGINT and SIGTERM, taken by one thread (signals.c); lives in main() */
struct kl_cli_signals {
	sigset_t set;
	atomic_bool cancel; /* the first signal while a repository is watched */
	pthread_t thread;
	pthread_mutex_t mu;
	/* under mu: */
	struct kl_repo *repo; /* watched: a signal cancels, a second exits at once */
	unsigned count;
	const char *cmd_name;
	bool json, progress;
	int tty_fd; /* a prompt has turned echo off there (-1: none): restored on exit */
	struct termios tty_saved;
	int notify_fd; /* kl_cli_signals_notify's eventfd (-1: none) */
	int frozen_fd; /* a file system keel froze (-1: none): thawed on any exit */
};

struct kl_cli {
	const char *repo_location;
	/* given as options; the environment's (KEEL_PASSWORD_*) are read where needed */
	const char *password_file_opt;
	const char *password_command_opt;
	bool json;
	bool quiet;
	int verbose;
	bool progress; /* stderr is a terminal and not quiet/json */
	struct kl_repo *repo;
	struct kl_err err;    /* context for the final error message */
	struct kl_err detail; /* the storage's detail of it (kl_repo_take_err) */
	const char *cmd_name;
	unsigned cmd_flags;
	/*
	 * Set by 'keel generate': --help hands the usage text over in
	 * help_text instead of printing it (kl_cli_default_opt).
	 */
	bool want_help_text;
	const char *help_text;
	struct kl_cli_signals *sig; /* NULL: signals act as the system makes them */
	bool lock_left;		    /* kl_cli_close could not remove the lock */
	char pass_source[320];	    /* where the password came from, for messages */
	/* set: kl_cli_open hands the password over here (keel image serve passes it on) */
	struct kl_pass **keep_pass;
};

/*
 * Blocks SIGINT and SIGTERM (unless ignored) in the calling thread, which
 * every thread started later inherits, and starts the thread that takes
 * them. Call first thing in main().
 */
int kl_cli_signals_start(struct kl_cli_signals *s);
/* On a crash, the stack's return addresses to stderr (core dumps are off: keys) */
void kl_cli_crash_report_install(void);
/* Tells the signal thread the command's name and output mode (for its messages). */
void kl_cli_signals_describe(struct kl_cli *cli);
/*
 * From now on (r not NULL) a first signal cancels the command (r polls the
 * flag) and a second removes r's lock and exits; r NULL: signals exit at once.
 */
void kl_cli_signals_watch(struct kl_cli *cli, struct kl_repo *r);
/*
 * For a command that stops by itself and then still writes (db stream
 * stores what arrived): from now on a first signal only makes the returned
 * descriptor readable, without cancelling the repository's work; a second
 * exits at once as after kl_cli_signals_watch. -1 when no thread takes the
 * signals (then they act as the system makes them).
 */
int kl_cli_signals_notify(struct kl_cli *cli);
/*
 * A password prompt turned echo off on fd (saved: the settings before),
 * or (fd -1) turned it back on: a signal that ends keel restores them.
 */
void kl_cli_signals_tty(struct kl_cli *cli, int fd, const struct termios *saved);
/* A signal asked this command to stop. */
/* fd: a file system frozen with FIFREEZE that a hard exit must thaw (-1: none now) */
void kl_cli_signals_frozen(struct kl_cli *cli, int fd);
bool kl_cli_interrupted(const struct kl_cli *cli);

/* Opens (and unlocks, loads the index of) the repository as the command's flags say. */
int kl_cli_open(struct kl_cli *cli);
/*
 * Releases the lock and frees the repository; a lock it cannot remove is
 * reported, and turns the command's success rc into -KL_ELOCKLEFT (exit 4).
 */
int kl_cli_close(struct kl_cli *cli, int rc);

struct kl_cmd {
	const char *name;
	int (*fn)(int argc, char **argv, struct kl_cli *cli);
	unsigned flags;
	const char *summary;
	const char *usage; /* full --help text */
};

/*
 * ids of the global long options without a short form: above the ids
 * commands give their own (from 1 up; cmd-forget's from 0x200)
 */
enum {
	KL_OPT_PASSWORD_FILE = 0x1001,
	KL_OPT_PASSWORD_COMMAND,
	KL_OPT_JSON,
	KL_OPT_NO_PROGRESS,
	KL_OPT_CACHE_DIR,
	KL_OPT_NO_CACHE,
};

/* Global options every command accepts (getopt_long entries and handler). */
#define KL_GLOBAL_OPTS                                                                             \
	{"repo", required_argument, NULL, 'r'},                                                    \
		{"password-file", required_argument, NULL, KL_OPT_PASSWORD_FILE},                  \
		{"password-command", required_argument, NULL, KL_OPT_PASSWORD_COMMAND},            \
		{"json", no_argument, NULL, KL_OPT_JSON}, {"quiet", no_argument, NULL, 'q'},       \
		{"verbose", no_argument, NULL, 'v'},                                               \
		{"no-progress", no_argument, NULL, KL_OPT_NO_PROGRESS},                            \
		{"cache-dir", required_argument, NULL, KL_OPT_CACHE_DIR},                          \
		{"no-cache", no_argument, NULL, KL_OPT_NO_CACHE},                                  \
	{                                                                                          \
		"help", no_argument, NULL, 'h'                                                     \
	}
#define KL_GLOBAL_SHORT "r:qvh"

/* Returns 1 if handled, 0 if not a global option, < 0 on error/--help. */
int kl_cli_global_opt(struct kl_cli *cli, int c, const char *arg);
/*
 * For a command's getopt loop: a global option returns 0 (go on), --help
 * prints usage and returns KL_CLI_HELP, anything else is a usage error.
 */
int kl_cli_default_opt(struct kl_cli *cli, int c, const char *usage, char **argv);
int kl_cli_usage_error(struct kl_cli *cli, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
#define KL_CLI_HELP 1

/* Passwords */
int kl_cli_read_password(struct kl_cli *cli, bool confirm, struct kl_pass **ret);
/*
 * The password of keel copy's source repository: --from-password-file or
 * --from-password-command (file, cmd), KEEL_FROM_PASSWORD_FILE or
 * KEEL_FROM_PASSWORD_COMMAND, KEEL_FROM_PASSWORD, then the prompt.
 */
int kl_cli_read_from_password(struct kl_cli *cli, const char *file, const char *cmd,
			      struct kl_pass **ret);
/*
 * Opens and unlocks the source repository of copy and init --from-repo
 * (its password: kl_cli_read_from_password); with load, also under a
 * shared lock with its index loaded. Reports errors.
 */
int kl_cli_open_from(struct kl_cli *cli, const char *location, const char *file, const char *cmd,
		     bool load, struct kl_repo **ret);
int kl_cli_read_new_password(struct kl_cli *cli, const char *file, struct kl_pass **ret);

/* Output helpers */
void kl_json_str(FILE *f, const void *s, size_t n); /* quoted, lossless for non-UTF-8 */
/* ,"image":{...} for an image snapshot (cmd-snapshots.c); nothing for others */
void kl_cli_image_info_json(const struct kl_snapshot *s);
void kl_json_cstr(FILE *f, const char *s); /* NULL -> null */
void kl_json_id(FILE *f, const struct kl_id *id);
void kl_json_time(FILE *f, int64_t ns);
/* A file time as its (seconds, nanoseconds) pair: any year, no overflow. */
void kl_json_time_sec(FILE *f, int64_t sec, uint32_t nsec);
void kl_print_bytes(char *out, size_t n, uint64_t bytes); /* "1.2 GiB" */
/* A path for a terminal: control bytes escaped as \xNN. */
void kl_cli_print_path(FILE *f, const char *p);

/* A reporter for ops: warnings to stderr (or JSON lines), progress line on a tty. */
struct kl_cli_report {
	struct kl_cli *cli;
	int64_t start_ns;
	bool line_shown;
	uint64_t warnings;
	const char *unit; /* what the progress line counts: "files" unless set */
	int64_t next_json_ns;
};
void kl_cli_report_init(struct kl_cli_report *r, struct kl_cli *cli, struct kl_report *ops);
/* Under --json (not --quiet): progress as "status" objects on stdout. */
void kl_cli_report_json_status(struct kl_cli_report *r, struct kl_report *ops);
void kl_cli_report_done(struct kl_cli_report *r);
/* Clears the progress line before other output to stderr. */
void kl_cli_report_clear(struct kl_cli_report *r);

int kl_cli_snap_filter_opt(struct kl_snap_filter *f, int c, const char *arg);
void kl_snap_filter_release(struct kl_snap_filter *f);
int kl_strv_push(char ***v, size_t *n, const char *s);
void kl_strv_free(char **v, size_t n);

/*
 * Prints "keel: <cmd>: msg" with the detail the library recorded
 * (cli->err), the storage's detail (cli->detail, else what the open
 * repository's backend recorded) and the error's own text.
 */
void kl_cli_error(struct kl_cli *cli, int r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * msg to stderr as an error (r gives the exit code shown under --json) or
 * a warning: "keel: <cmd>: msg" or, under --json, one JSON object a line.
 */
void kl_cli_emit(struct kl_cli *cli, bool error, int r, const char *msg);

struct kl_prune_opts;
/* Runs prune on the open repository (prune lock held, index loaded) and prints its report. */
int kl_cli_prune(struct kl_cli *cli, const struct kl_prune_opts *o);

/* "keel: <cmd>: warning: msg", unless --quiet. */
void kl_cli_warn(struct kl_cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

int kl_exit_code(int r);
/*
 * Call right after writing to stdout: 0, or the write's error, with EPIPE
 * (the reader went away: keel ls | head) as -KL_EOUTCLOSED, a quiet 141.
 */
int kl_cli_output_error(void);
/* stdout is a pipe that nobody reads any more (an -EPIPE was ours, not the storage's) */
bool kl_cli_stdout_closed(void);

/* "ID[:PATH]" or "latest[:PATH]"; path_ret NULL forbids a subpath. Reports errors. */
/*
 * The snapshots a command works on, oldest first: those named by ids (each
 * once), or with none named every one the filter lets through (those that
 * cannot be read are left out with a warning). On failure l holds what was
 * found so far, for the caller to release.
 */
int kl_cli_pick_snapshots(struct kl_cli *cli, char *const *ids, size_t n,
			  const struct kl_snap_filter *f, struct kl_snapshot_list *l);
int kl_cli_find_snapshot(struct kl_cli *cli, const char *arg, const struct kl_snap_filter *f,
			 struct kl_snapshot_ref *ret, const char **path_ret);
/*
 * The same without a subpath, but an id that names a snapshot that cannot
 * be read gives 1 and its id (ret->s empty) instead of an error.
 */
int kl_cli_find_snapshot_id(struct kl_cli *cli, const char *arg, const struct kl_snap_filter *f,
			    struct kl_snapshot_ref *ret);
/* "ID8 of HOST:PATHS at TIME" and its tags: the snapshot a command chose. */
void kl_cli_print_snapshot(FILE *out, const struct kl_snapshot_ref *s);
void kl_json_node(FILE *f, const char *path, const struct kl_node *n);
const char *kl_node_type_name(int type);

#define KL_SNAP_FILTER_OPTS                                                                        \
	{"host", required_argument, NULL, 0x1101}, {"tag", required_argument, NULL, 0x1102},       \
	{                                                                                          \
		"path", required_argument, NULL, 0x1103                                            \
	}

/*
 * Reading the usage texts back (usage.c): an option of a usage text as its
 * line names it, "-e, --exclude PATTERN" or "--read-data-subset=N%".
 */
struct kl_usage_opt {
	char short_name; /* 0: none */
	char name[48];	 /* the long name without "--"; "": none */
	char arg[48];	 /* its value's name ("FILE", "a|b"); "": takes none */
	bool arg_eq;	 /* written "--name=ARG" */
};
/* Whether a line of a usage text lists an option (indented, then '-'). */
bool kl_usage_is_item(const char *line, size_t len);
/* Where the option line's spec ends and its help begins (len: no help on the line). */
void kl_usage_split_item(const char *line, size_t len, size_t *spec_end, size_t *help_start);
/* Calls fn for each option of a spec ("-e, --exclude PATTERN"); stops at a non-zero return. */
int kl_usage_parse_spec(const char *spec, size_t len,
			int (*fn)(const struct kl_usage_opt *o, void *ud), void *ud);
/* The same for every option line of a usage text. */
int kl_usage_for_each_opt(const char *usage, int (*fn)(const struct kl_usage_opt *o, void *ud),
			  void *ud);
size_t kl_edit_distance(const char *a, const char *b);

/* "did you mean": the names nearest to what was typed */
#define KL_SUGGEST_MAX 3
struct kl_suggest {
	const char *typed;
	size_t best; /* edit distance of names[] (0: typed is their beginning) */
	size_t n;
	char names[KL_SUGGEST_MAX][48];
};
void kl_suggest_init(struct kl_suggest *s, const char *typed);
void kl_suggest_add(struct kl_suggest *s, const char *name);
/* "; did you mean 'PREFIXa' or 'PREFIXb'?" when there is a suggestion */
void kl_suggest_print(const struct kl_suggest *s, const char *prefix, FILE *f);
/* The same for a mistyped "--option", among the options of the usage texts. */
void kl_suggest_option(FILE *f, const char *word, const char *const *usages, size_t n_usages);

/*
 * "keel: unknown command 'bakup'; did you mean 'backup'?" (under --json an
 * error object); returns -KL_EUSAGE
 */
int kl_cli_unknown_command(struct kl_cli *cli, const char *name);

/* "keel: CMD: unknown option '--exlcude'; did you mean '--exclude'?"; -KL_EUSAGE */
int kl_cli_unknown_option(struct kl_cli *cli, const char *word, const char *usage);

/* main.c: the main usage text, with the command list (kl_cmd_table) filled in */
void kl_cli_print_main_usage(FILE *f);
/* Its format ("%s": the command list): the global options, for suggestions. */
extern const char kl_cli_main_usage[];

int cmd_init(int argc, char **argv, struct kl_cli *cli);
int cmd_backup(int argc, char **argv, struct kl_cli *cli);
int cmd_snapshots(int argc, char **argv, struct kl_cli *cli);
int cmd_ls(int argc, char **argv, struct kl_cli *cli);
int cmd_restore(int argc, char **argv, struct kl_cli *cli);
int cmd_diff(int argc, char **argv, struct kl_cli *cli);
int cmd_dump(int argc, char **argv, struct kl_cli *cli);
int cmd_find(int argc, char **argv, struct kl_cli *cli);
int cmd_stats(int argc, char **argv, struct kl_cli *cli);
int cmd_tag(int argc, char **argv, struct kl_cli *cli);
int cmd_image(int argc, char **argv, struct kl_cli *cli);
/* keel image serve (cmd-image-serve.c) */
int cmd_image_serve(int argc, char **argv, struct kl_cli *cli);
extern const char kl_cli_image_serve_usage[];
int cmd_mount(int argc, char **argv, struct kl_cli *cli);
int cmd_check(int argc, char **argv, struct kl_cli *cli);
int cmd_forget(int argc, char **argv, struct kl_cli *cli);
int cmd_key(int argc, char **argv, struct kl_cli *cli);
int cmd_prune(int argc, char **argv, struct kl_cli *cli);
int cmd_unlock(int argc, char **argv, struct kl_cli *cli);
int cmd_repair(int argc, char **argv, struct kl_cli *cli);
int cmd_serve(int argc, char **argv, struct kl_cli *cli);
int cmd_copy(int argc, char **argv, struct kl_cli *cli);
int cmd_mirror(int argc, char **argv, struct kl_cli *cli);
int cmd_version(int argc, char **argv, struct kl_cli *cli);
int cmd_help(int argc, char **argv, struct kl_cli *cli);
int cmd_generate(int argc, char **argv, struct kl_cli *cli);
int cmd_db(int argc, char **argv, struct kl_cli *cli);
int cmd_daemon(int argc, char **argv, struct kl_cli *cli);
int cmd_status(int argc, char **argv, struct kl_cli *cli);

extern const struct kl_cmd *const kl_cmd_table;
const struct kl_cmd *kl_cmd_find(const char *name);

#endif
