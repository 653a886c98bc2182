#!/usr/bin/env bash
# keel db backup of MariaDB: what goes wrong says so, with its exit code
# (docs/EXIT-CODES.md) and no snapshot: a password in the URI (2), a
# wrong password (22), a password file for a user that has one (works,
# through mariabackup too), no server at the socket (22), binary logging
# off (23, with how to turn it on), mariabackup not installed (1).
. "$(dirname "$0")/../lib.sh"
. "$KEEL_SOURCE_ROOT/tests/lib-maria.sh"
require_keel
maria_require
command -v mariabackup >/dev/null || skip_or_die "mariabackup is not installed (mariadb-backup)"

keel_init
maria_init a
maria_start a
sock=$(maria_socket a)
maria_sql a "CREATE USER keel@localhost IDENTIFIED BY 'Se\"cr\\\\et x';
	GRANT RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR, SELECT ON *.* TO keel@localhost"

# a password in the URI is refused before anything connects
expect_exit 2 keel db backup "mariadb://keel:secret@localhost/?socket=$sock" --name a 2>"$TEST_DIR/err"
grep -q 'password in the URI is refused' "$TEST_DIR/err" || fail "$(cat "$TEST_DIR/err")"
expect_exit 2 keel db backup "mariadb://root@localhost/shop?socket=$sock" --name a 2>/dev/null
expect_exit 2 keel db backup "mariadb://root@localhost/?sock=$sock" --name a 2>/dev/null

# a wrong password: 22, the server's message
printf 'wrong\n' >"$TEST_DIR/mpw"
chmod 600 "$TEST_DIR/mpw"
KEEL_MARIADB_PASSWORD_FILE=$TEST_DIR/mpw expect_exit 22 \
	keel db backup "mariadb://keel@localhost/?socket=$sock" --name a 2>"$TEST_DIR/err"
grep -q "Access denied for user 'keel'@'localhost'" "$TEST_DIR/err" || fail "$(cat "$TEST_DIR/err")"
grep -q KEEL_MARIADB_PASSWORD_FILE "$TEST_DIR/err" || fail "no hint where the password comes from"
# the right one (quotes, a backslash and a space in it) reaches libmariadb and mariabackup
printf '%s\n' 'Se"cr\et x' >"$TEST_DIR/mpw"
KEEL_MARIADB_PASSWORD_FILE=$TEST_DIR/mpw expect_success \
	keel db backup "mariadb://keel@localhost/?socket=$sock" --name a >/dev/null
# and no option file of keel's is left behind
ls -d "${TMPDIR:-/tmp}"/keel-maria-* 2>/dev/null && fail "keel left its option file behind"
# ?defaults-file= gives it too
printf '[client]\npassword="Se\\"cr\\\\et x"\n' >"$TEST_DIR/my.cnf"
expect_success keel db backup "mariadb://keel@localhost/?socket=$sock&defaults-file=$TEST_DIR/my.cnf" \
	--name a >/dev/null
[ "$(snapshot_count)" = 2 ] || fail "expected 2 snapshots"

# no server at the socket: 22
expect_exit 22 keel db backup "mariadb://root@localhost/?socket=$TEST_DIR/nothing.sock" \
	--name a 2>"$TEST_DIR/err"
grep -q "Can't connect" "$TEST_DIR/err" || fail "$(cat "$TEST_DIR/err")"

# mariabackup not installed: 1, and what to install
expect_exit 1 env PATH=/nonexistent "$KEEL_BIN" db backup "$(maria_uri a)" --name a 2>"$TEST_DIR/err"
grep -q 'apt-get install mariadb-backup' "$TEST_DIR/err" || fail "$(cat "$TEST_DIR/err")"

# binary logging off: 23, and how to turn it on
maria_init nobin --skip-log-bin
maria_start nobin
expect_exit 23 keel db backup "$(maria_uri nobin)" --name nobin 2>"$TEST_DIR/err"
grep -q 'binary logging is off.*log_bin' "$TEST_DIR/err" || fail "$(cat "$TEST_DIR/err")"
[ "$(snapshot_count)" = 2 ] || fail "a failed backup saved a snapshot"
expect_success keel check >/dev/null
