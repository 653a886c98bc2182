/*
 * The PostgreSQL connection shared by base backups and the WAL stream:
 * a physical replication connection through libpq, its errors as keel's
 * (-KL_EDBCONNECT, -KL_EDBSERVER with the server's message), LSNs.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "pg-internal.h"

static void trim(char *s)
{
	size_t n = strlen(s);

	while (n && (s[n - 1] == '\n' || s[n - 1] == ' '))
		s[--n] = 0;
}

/* The message of conn's last error, without its newline. */
int kl_pgc_fail(struct kl_repo *r, PGconn *conn, int code, const char *what)
{
	char msg[1024];

	snprintf(msg, sizeof(msg), "%s", PQerrorMessage(conn));
	trim(msg);
	return kl_repo_fail(r, code, "%s: %s", what, *msg ? msg : "no message from the server");
}

int kl_pgc_connect(struct kl_repo *r, const char *conninfo, PGconn **ret)
{
	const char *keys[] = {"dbname", "replication", "fallback_application_name", NULL};
	const char *vals[] = {conninfo, "true", "keel", NULL};
	PGconn *conn = PQconnectdbParams(keys, vals, 1);

	*ret = conn;
	if (!conn)
		return -ENOMEM;
	if (PQstatus(conn) != CONNECTION_OK)
		return kl_pgc_fail(r, conn, -KL_EDBCONNECT,
				   "cannot connect to the database server");
	return 0;
}

void kl_db_lsn_format(uint64_t lsn, char *buf, size_t size)
{
	snprintf(buf, size, "%" PRIX32 "/%" PRIX32, (uint32_t)(lsn >> 32), (uint32_t)lsn);
}

int kl_db_lsn_parse(const char *s, uint64_t *ret)
{
	uint64_t hi = 0, lo = 0;
	const char *p = s;
	int nd;

	for (nd = 0; *p && *p != '/'; p++, nd++) {
		int v = *p >= '0' && *p <= '9'	 ? *p - '0'
			: *p >= 'A' && *p <= 'F' ? *p - 'A' + 10
			: *p >= 'a' && *p <= 'f' ? *p - 'a' + 10
						 : -1;
		if (v < 0 || nd >= 8)
			return -KL_EUSAGE;
		hi = hi << 4 | (uint64_t)v;
	}
	if (!nd || *p++ != '/')
		return -KL_EUSAGE;
	for (nd = 0; *p; p++, nd++) {
		int v = *p >= '0' && *p <= '9'	 ? *p - '0'
			: *p >= 'A' && *p <= 'F' ? *p - 'A' + 10
			: *p >= 'a' && *p <= 'f' ? *p - 'a' + 10
						 : -1;
		if (v < 0 || nd >= 8)
			return -KL_EUSAGE;
		lo = lo << 4 | (uint64_t)v;
	}
	if (!nd)
		return -KL_EUSAGE;
	*ret = hi << 32 | lo;
	return 0;
}

int kl_pgc_expect(struct kl_repo *r, PGconn *conn, PGresult *res, ExecStatusType want,
		  const char *what)
{
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;

	if (st == want)
		return 0;
	if (st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR)
		return kl_pgc_fail(r, conn, -KL_EDBSERVER, what);
	return kl_repo_fail(r, -KL_EDBSERVER, "%s: unexpected reply (%s)", what, PQresStatus(st));
}

/* IDENTIFY_SYSTEM: the system identifier. */
int kl_pgc_identify(struct kl_repo *r, PGconn *conn, char *sysid, size_t size, uint32_t *tli,
		    uint64_t *pos)
{
	PGresult *res = PQexec(conn, "IDENTIFY_SYSTEM");
	int rc = kl_pgc_expect(r, conn, res, PGRES_TUPLES_OK, "IDENTIFY_SYSTEM failed");
	unsigned long t = 0;
	char *end = NULL;

	if (rc >= 0 && PQntuples(res) == 1 && PQnfields(res) >= 3)
		t = strtoul(PQgetvalue(res, 0, 1), &end, 10);
	if (rc >= 0 &&
	    (PQntuples(res) != 1 || PQnfields(res) < 3 ||
	     strspn(PQgetvalue(res, 0, 0), "0123456789") != strlen(PQgetvalue(res, 0, 0)) ||
	     !*PQgetvalue(res, 0, 0) || strlen(PQgetvalue(res, 0, 0)) >= size || !end || *end ||
	     !t || t > UINT32_MAX || kl_db_lsn_parse(PQgetvalue(res, 0, 2), pos) < 0))
		rc = kl_repo_fail(r, -KL_EDBSERVER, "unexpected reply to IDENTIFY_SYSTEM");
	if (rc >= 0) {
		snprintf(sysid, size, "%s", PQgetvalue(res, 0, 0));
		*tli = (uint32_t)t;
	}
	PQclear(res);
	return rc;
}
