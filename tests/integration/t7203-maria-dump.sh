#!/usr/bin/env bash
# keel db dump of MariaDB: mariadb-dump --single-transaction of every
# database with routines, events and triggers as a snapshot (tag db-dump),
# listed by keel db list, written back to a file by db restore --dump, and
# loaded into a fresh server: the same rows, the routine and the trigger.
. "$(dirname "$0")/../lib.sh"
. "$KEEL_SOURCE_ROOT/tests/lib-maria.sh"
require_keel
maria_require
command -v mariadb-dump >/dev/null || skip_or_die "mariadb-dump is not installed (mariadb-client)"

keel_init
maria_init src
maria_start src
maria_sql src "CREATE DATABASE shop; USE shop;
	CREATE TABLE orders (id INT PRIMARY KEY, item VARCHAR(64), qty INT);
	INSERT INTO orders SELECT seq, CONCAT('item-', seq), seq % 7 FROM seq_1_to_5000;
	CREATE TABLE audit (n INT);
	CREATE TRIGGER orders_ins AFTER INSERT ON orders FOR EACH ROW INSERT INTO audit VALUES (NEW.id);
	CREATE FUNCTION twice(x INT) RETURNS INT DETERMINISTIC RETURN 2 * x;
	CREATE DATABASE crm; CREATE TABLE crm.c (id INT PRIMARY KEY, name TEXT);
	INSERT INTO crm.c VALUES (1, 'o''brien'), (2, 'zoë')"
rows()
{
	maria_sql "$1" "SELECT * FROM shop.orders ORDER BY id; SELECT * FROM crm.c ORDER BY id;
		SELECT shop.twice(21)"
}
rows src >"$TEST_DIR/want"

expect_success keel db dump "$(maria_uri src)" --name shop >"$TEST_DIR/out"
grep -q '^database shop (mariadb): dump [0-9a-f]\{8\} saved, ' "$TEST_DIR/out" || fail "$(cat "$TEST_DIR/out")"
keel snapshots --tag db-dump --json | grep -q '"db:shop"' || fail "no snapshot tagged db-dump"
keel db list >"$TEST_DIR/list"
grep -q '^shop (mariadb, server id 1): 0 base backups, 1 dump$' "$TEST_DIR/list" || fail "$(cat "$TEST_DIR/list")"

expect_success keel db restore shop --dump --target "$TEST_DIR/all.sql" >/dev/null
grep -q 'CHANGE MASTER TO MASTER_LOG_FILE=' "$TEST_DIR/all.sql" || fail "no binlog position in the dump"
# an existing file is not overwritten
expect_exit 2 keel db restore shop --dump --target "$TEST_DIR/all.sql" 2>/dev/null

maria_init dst
maria_start dst
mariadb --no-defaults -S "$(maria_socket dst)" -u root <"$TEST_DIR/all.sql" || fail "the dump does not load"
rows dst >"$TEST_DIR/got"
cmp "$TEST_DIR/want" "$TEST_DIR/got" || fail "rows differ after loading the dump"
maria_sql dst "INSERT INTO shop.orders VALUES (9999, 'x', 1)"
[ "$(maria_sql dst 'SELECT COUNT(*) FROM shop.audit WHERE n = 9999')" = 1 ] || fail "the trigger is gone"

# a wrong password: 22, nothing saved
printf 'nope\n' >"$TEST_DIR/mpw"
KEEL_MARIADB_PASSWORD_FILE=$TEST_DIR/mpw expect_exit 22 keel db dump "$(maria_uri src)" --name shop 2>/dev/null
[ "$(snapshot_count)" = 1 ] || fail "a failed dump saved a snapshot"
