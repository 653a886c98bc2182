/* src/db's PostgreSQL files: the connection they share (pg-conn.c). */
#ifndef KEEL_DB_PG_INTERNAL_H
#define KEEL_DB_PG_INTERNAL_H

#include <libpq-fe.h>

#include "keel/db.h"
#include "keel/repo.h"

/* Fails with code and "what: the server's message". */
int kl_pgc_fail(struct kl_repo *r, PGconn *conn, int code, const char *what);
/* A physical replication connection (replication=true added to conninfo); *ret to PQfinish. */
int kl_pgc_connect(struct kl_repo *r, const char *conninfo, PGconn **ret);
/* res has status want, else -KL_EDBSERVER with the server's message. */
int kl_pgc_expect(struct kl_repo *r, PGconn *conn, PGresult *res, ExecStatusType want,
		  const char *what);
/* IDENTIFY_SYSTEM: the system identifier (decimal), and the timeline and WAL position. */
int kl_pgc_identify(struct kl_repo *r, PGconn *conn, char *sysid, size_t size, uint32_t *tli,
		    uint64_t *pos);

#endif
