/* keel db list's lines for a SQLite database (cmd-db-sqlite.c). */
#ifndef KEEL_CLI_CMD_DB_SQLITE_H
#define KEEL_CLI_CMD_DB_SQLITE_H

#include "keel/db.h"

/* One database as a JSON object / as text lines, on stdout. */
int kl_cli_db_sqlite_json(const struct kl_db_info *d);
int kl_cli_db_sqlite_text(const struct kl_db_info *d);
/* db backup's summary. */
void kl_cli_db_sqlite_backup_text(const struct kl_db_backup_result *res);

#endif
