/*
 * The replication slot a database's stream uses (docs/DATABASES.md, "The
 * slot"): its name, shared by db backup and db stream so that both mean
 * the same slot, and what the server says of it (READ_REPLICATION_SLOT,
 * PostgreSQL 15). A slot keeps the WAL from its restart_lsn on; without
 * one, the WAL between a base backup and a stream started later may be
 * recycled, and the log has a gap that only a new base backup closes.
 */
#include <stdio.h>

#include "pg-internal.h"

int kl_pgc_slot_name(struct kl_repo *r, const char *given, const char *name, char *buf, size_t size)
{
	snprintf(buf, size, "%s", given ? given : "");
	if (!given) {
		snprintf(buf, size, "keel_%s", name);
		for (size_t i = 0; buf[i]; i++)
			if (!((buf[i] >= 'a' && buf[i] <= 'z') || (buf[i] >= '0' && buf[i] <= '9')))
				buf[i] = buf[i] >= 'A' && buf[i] <= 'Z' ? (char)(buf[i] - 'A' + 'a')
									: '_';
	}
	if (strspn(buf, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(buf) || !*buf)
		return kl_repo_fail(r, -KL_EUSAGE, "invalid slot name '%s'", buf);
	return 0;
}

int kl_pgc_slot_read(struct kl_repo *r, PGconn *conn, const char *slot, struct kl_pgc_slot *ret)
{
	char cmd[128];
	PGresult *res;
	int rc;

	memset(ret, 0, sizeof(*ret));
	snprintf(cmd, sizeof(cmd), "READ_REPLICATION_SLOT %s", slot);
	res = PQexec(conn, cmd);
	rc = kl_pgc_expect(r, conn, res, PGRES_TUPLES_OK, "READ_REPLICATION_SLOT failed");
	if (rc >= 0 && (PQntuples(res) != 1 || PQnfields(res) < 3))
		rc = kl_repo_fail(r, -KL_EDBSERVER, "unexpected reply to READ_REPLICATION_SLOT");
	/* a slot that does not exist is a row of NULLs */
	if (rc >= 0 && !PQgetisnull(res, 0, 0)) {
		ret->exists = true;
		ret->physical = !strcmp(PQgetvalue(res, 0, 0), "physical");
		if (!PQgetisnull(res, 0, 1) &&
		    kl_db_lsn_parse(PQgetvalue(res, 0, 1), &ret->restart_lsn) >= 0)
			ret->reserved = true;
	}
	PQclear(res);
	return rc;
}

int kl_pgc_slot_create(struct kl_repo *r, PGconn *conn, const char *slot, bool *created)
{
	char cmd[128];
	PGresult *res;
	int rc = 0;

	*created = false;
	snprintf(cmd, sizeof(cmd), "CREATE_REPLICATION_SLOT %s PHYSICAL RESERVE_WAL", slot);
	res = PQexec(conn, cmd);
	if (PQresultStatus(res) == PGRES_TUPLES_OK) {
		*created = true;
	} else {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

		if (!state || strcmp(state, "42710")) /* 42710: it exists */
			rc = kl_pgc_fail(r, conn, -KL_EDBSERVER,
					 "cannot create the replication slot");
	}
	PQclear(res);
	return rc;
}
