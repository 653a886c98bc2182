/* keel db list's lines for a MariaDB database, and db binlog-get (cmd-db-maria.c). */
#ifndef KEEL_CLI_CMD_DB_MARIA_H
#define KEEL_CLI_CMD_DB_MARIA_H

#include "cli.h"
#include "keel/db.h"

/* One database as a JSON object / as text lines, on stdout. */
int kl_cli_db_maria_json(const struct kl_db_info *d);
int kl_cli_db_maria_text(const struct kl_db_info *d);
/* keel db binlog-get NAME DIR [--start FILE] [--position FILE:POS] */
int kl_cli_db_binlog_get(struct kl_cli *cli, const char *name, const char *dir, const char *from,
			 const char *position);

#endif
