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

/*
 * pg-stream.c: stores a log record (kind 5) of db->name whose tree is
 * pg_wal/file holding data; db gives its timeline, LSNs and the rest.
 */
int kl_pgc_record(struct kl_repo *r, const char *host, unsigned threads,
		  const struct kl_snapshot_db *db, const char *file, const uint8_t *data,
		  size_t len, struct kl_id *id_ret);

/* pg-slot.c: the slot a stream uses (docs/DATABASES.md, "The slot"). */
struct kl_pgc_slot {
	bool exists, physical;
	bool reserved; /* it holds WAL from restart_lsn on */
	uint64_t restart_lsn;
};
/* The slot's name into buf: given (checked), else keel_NAME in lower case, '_' for the rest. */
int kl_pgc_slot_name(struct kl_repo *r, const char *given, const char *name, char *buf,
		     size_t size);
/* READ_REPLICATION_SLOT: ret->exists false when there is none. */
int kl_pgc_slot_read(struct kl_repo *r, PGconn *conn, const char *slot, struct kl_pgc_slot *ret);
/* CREATE_REPLICATION_SLOT slot PHYSICAL RESERVE_WAL; *created false when it existed. */
int kl_pgc_slot_create(struct kl_repo *r, PGconn *conn, const char *slot, bool *created);
/* pg-target.c: "YYYY-MM-DD HH:MM:SS[.f](+|-)HH[:MM]" or "...Z", as ns since the epoch. */
int kl_pgr_parse_time(const char *s, int64_t *ret);
/* The newest base backup before o's target, which the repository must cover. */
int kl_pgr_choose(struct kl_repo *r, const struct kl_db_restore_opts *o, struct kl_id *id_ret,
		  struct kl_id *tree_ret, uint64_t *start_ret);
/*
 * For --time and --lsn: recovery.signal and the recovery target in
 * postgresql.auto.conf; for --latest only when the WAL crosses timelines
 * (crash recovery would stay on the base backup's), without a target.
 */
int kl_pgr_recovery(struct kl_repo *r, const struct kl_db_restore_opts *o, const char *target,
		    bool timelines);

#endif
