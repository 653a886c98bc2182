/* Private to keel backup: cmd-backup.c, cmd-backup-out.c, cmd-backup-src.c. */
#ifndef KEEL_CLI_CMD_BACKUP_H
#define KEEL_CLI_CMD_BACKUP_H

#include "cli.h"

/* What backup shows besides warnings: -v, -vv, notes, the summary. */
struct kl_cli_backup_out {
	struct kl_cli *cli;
	struct kl_cli_report *rep;
	bool dry_run;
};

/* cmd-backup-out.c */
/* Sets o->listen for cli's verbosity (nothing per file without -v). */
void kl_cli_backup_listen(struct kl_cli_backup_out *out, struct kl_backup_opts *o);
void kl_cli_backup_summary(struct kl_cli_backup_out *out, const struct kl_backup_result *res,
			   int64_t ns);

/* cmd-backup-src.c */
/*
 * Adds the paths listed in file ("-": standard input) to *v: one a line
 * ('#' comments and blank lines ignored, a final CR dropped), or with raw
 * separated by NUL bytes, taken as they are. Reports its errors.
 */
int kl_cli_files_from(struct kl_cli *cli, const char *file, bool raw, char ***v, size_t *n);
/*
 * Checks that every path exists before anything is written: a missing one
 * is a usage error, or with ignore a warning and it is dropped from *v.
 */
int kl_cli_check_sources(struct kl_cli *cli, bool ignore, char **v, size_t *n);
/*
 * Fills skip (room for 2) with the repository's directory (a local one)
 * and the metadata cache's, those that exist. Returns how many.
 */
size_t kl_cli_backup_skips(struct kl_cli *cli, struct kl_backup_skip *skip);

#endif
