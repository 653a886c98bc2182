/* keel db list and keel db check (cmd-db-list.c). */
#ifndef KEEL_CLI_CMD_DB_LIST_H
#define KEEL_CLI_CMD_DB_LIST_H

#include <stdbool.h>
#include <stdint.h>

#include "cli.h"

/* A PostgreSQL LSN as ",\"key\":\"X/Y\"" (json) or " key X/Y", on stdout. */
void kl_cli_db_print_lsn(const char *key, uint64_t lsn, bool json);
/* keel db list [--json] */
int kl_cli_db_list(struct kl_cli *cli);
/* keel db check NAME [--all] */
int kl_cli_db_check(struct kl_cli *cli, const char *name, bool all);

#endif
