/* keel db's output for MariaDB servers (cmd-db-maria.c). */
#ifndef KEEL_CLI_CMD_DB_MARIA_H
#define KEEL_CLI_CMD_DB_MARIA_H

#include "cli.h"
#include "keel/db.h"

/* db backup's summary (text or --json). */
void kl_cli_db_maria_backup_out(struct kl_cli *cli, const struct kl_db_backup_result *res);
/* db list: one database as a JSON object / as text lines, on stdout. */
void kl_cli_db_maria_json(const struct kl_db_info *d);
void kl_cli_db_maria_text(const struct kl_db_info *d);

#endif
