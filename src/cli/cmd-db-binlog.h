/* keel db list's binary log lines and keel db binlog-get (cmd-db-binlog.c). */
#ifndef KEEL_CLI_CMD_DB_BINLOG_H
#define KEEL_CLI_CMD_DB_BINLOG_H

#include "cli.h"
#include "keel/db.h"

/* A MariaDB database's stored binary log: more fields of its db list JSON object / text lines. */
void kl_cli_db_binlog_json(const struct kl_db_info *d);
void kl_cli_db_binlog_text(const struct kl_db_info *d);
/* keel db binlog-get NAME DIR [--start FILE] [--position FILE:POS] */
int kl_cli_db_binlog_get(struct kl_cli *cli, const char *name, const char *dir, const char *from,
			 const char *position);

#endif
