/*
 * src/db's MariaDB files (docs/DATABASES.md, "MariaDB"): the server's URI,
 * the connection through libmariadb, and the options file that hands a
 * password to mariabackup, mariadb-dump and mariadb-binlog (never argv).
 */
#ifndef KEEL_DB_MARIA_INTERNAL_H
#define KEEL_DB_MARIA_INTERNAL_H

#include <mysql.h>

#include "keel/db.h"
#include "keel/repo.h"

/* The environment variable naming a file whose first line is the password. */
#define KL_MARIA_PASSWORD_ENV "KEEL_MARIADB_PASSWORD_FILE"
/*
 * The password from the file $KEEL_MARIADB_PASSWORD_FILE names (its first
 * line), or *ret NULL when the variable is not set. Free it with
 * kl_maria_password_free (wipes it). -KL_EUSAGE with the reason.
 */
int kl_maria_password(struct kl_repo *r, char **ret);
void kl_maria_password_free(char *pw);

/*
 * A connection to the server u names: the password from
 * KEEL_MARIADB_PASSWORD_FILE, else ?defaults-file=, else the client
 * library's option files ([client] in ~/.my.cnf). Errors: -KL_EDBCONNECT
 * with the server's message (wrong user or password, no server at the
 * socket). *ret to mysql_close.
 */
int kl_maria_connect(struct kl_repo *r, const struct kl_maria_uri *u, MYSQL **ret);
/*
 * The first column of the first row of sql's result into buf ("" for
 * NULL or no row). -KL_EDBSERVER with the server's message.
 */
int kl_maria_value(struct kl_repo *r, MYSQL *m, const char *sql, char *buf, size_t size);

/*
 * The arguments every client tool gets to reach u's server: in args, from
 * args[0] on, "--defaults-extra-file=F" first when a password file is set
 * (F: a 0600 file in a private directory holding "[client] password=...",
 * removed by kl_maria_tool_release) or "--defaults-file=" for
 * ?defaults-file=, then --user, --host, --port, --socket as u gives them.
 */
struct kl_maria_tool {
	char *dir, *file; /* the private directory and its options file, or NULL */
	char *args[6];
	size_t n;
};
int kl_maria_tool_init(struct kl_repo *r, const struct kl_maria_uri *u, struct kl_maria_tool *t);
void kl_maria_tool_release(struct kl_maria_tool *t);

/* What keel reads of the server before a backup. */
struct kl_maria_server {
	bool log_bin;
	uint32_t server_id;
	char hostname[256];
	char version[64];
	char datadir[4096];
	/* kl_maria_server_tz: the zone it reads local times in ("" unknown), its offset now */
	char time_zone[128];
	int32_t utc_offset;
	bool has_utc_offset;
};
int kl_maria_server_info(struct kl_repo *r, MYSQL *m, struct kl_maria_server *ret);
/* "mariadb-HOSTNAME", characters a name cannot hold as '_'. */
void kl_maria_default_name(const struct kl_maria_server *s, char *buf, size_t size);
/*
 * Parses uri into u (kl_maria_uri_release it), connects (*m to
 * mysql_close) and, if sv, reads the server's settings.
 */
int kl_maria_open(struct kl_repo *r, const char *uri, struct kl_maria_uri *u, MYSQL **m,
		  struct kl_maria_server *sv);

/* ---- time zones (maria-tz.c) ---- */

/* kl_maria_tz_* (zones, --time): in keel/db.h */
/*
 * The server's zone and offset into sv (time_zone, utc_offset): @@global.time_zone,
 * or for SYSTEM the TZ in mariadbd's environment, else the host's /etc/localtime,
 * kept only when it gives the offset the server reports now.
 */
int kl_maria_server_tz(struct kl_repo *r, MYSQL *m, struct kl_maria_server *sv);
/* "bin.000003" -> 3; -KL_EUSAGE if the name has no numeric suffix. */
int kl_maria_binlog_number(const char *file, uint64_t *ret);

/* ---- child processes (maria-backup.c) ---- */

/* A temporary file (O_TMPFILE) for a tool's log. */
int kl_maria_tmpfile(struct kl_repo *r, int *ret);
/* Starts argv[0] (from PATH) with the given descriptors (-1: keel's) as stdin, stdout, stderr. */
int kl_maria_child_start(struct kl_repo *r, char *const argv[], int in_fd, int out_fd, int log_fd,
			 pid_t *ret);
/* The same, with TZ=tz in the child's environment (tz NULL: keel's own). */
int kl_maria_child_start_tz(struct kl_repo *r, char *const argv[], int in_fd, int out_fd,
			    int log_fd, const char *tz, pid_t *ret);
/*
 * Waits for it: 0 if it exited 0; -KL_ECMD if it could not be run (not
 * installed); else -KL_EDBSERVER with the last lines of its log.
 */
int kl_maria_child_wait(struct kl_repo *r, pid_t pid, int log_fd, const char *tool);
/*
 * The binlog stream's side of a restore (src/db/maria-binlog*.c, issue
 * 19's "keel db stream mariadb://"): writes the binlog files that NAME's
 * log records hold from position from (file_number << 32 | offset) up to
 * the target (o->time, read as the moment t in ns, or o->lsn; o->latest:
 * all) into dir, named as on
 * the server. The restore then replays dir as it does --binlog-dir.
 */
int kl_maria_binlog_fetch(struct kl_repo *r, const char *name, uint64_t from,
			  const struct kl_db_restore_opts *o, int64_t t, const char *dir);

/* maria-dump.c: o->dump: the newest dump of d (or o->base) into the new file o->target. */
int kl_maria_restore_dump(struct kl_repo *r, const struct kl_db_info *d,
			  const struct kl_db_restore_opts *o, struct kl_id *base_ret);
/* Removes dir and everything below it (keel's own temporary directories). */
void kl_maria_rmtree(const char *dir);

#endif
