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

#endif
