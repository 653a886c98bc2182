#!/usr/bin/env bash
# keel db dump: pg_dumpall --globals-only and pg_dump -Fc of every
# database in one snapshot (tag db-dump), listed by db list; one table
# restored from it with pg_restore into a new database gives exactly the
# rows; the role the globals define is there. A password in CONNINFO
# reaches pg_dump through its environment, never its command line.
. "$(dirname "$0")/../lib.sh"
. "$KEEL_SOURCE_ROOT/tests/lib-pg.sh"
require_keel
pg_require
export PATH=$PG_BIN:$PATH

keel_init
pg_init origin
pg_start origin
conn=$(pg_conninfo origin)
pg_sql origin "CREATE ROLE clerk LOGIN"
pg_sql origin "CREATE DATABASE shopdb OWNER clerk"
sql_shop()
{
	as_pg "$PG_BIN/psql" -X -A -t -q -v ON_ERROR_STOP=1 -h "$TEST_DIR/pg/origin/sock" \
		-p "$(pg_port origin)" -U postgres -d "$1" -c "$2"
}
sql_shop shopdb "CREATE TABLE orders (id int PRIMARY KEY, item text);
	INSERT INTO orders SELECT g, 'item-' || g FROM generate_series(1, 3000) g;
	CREATE TABLE customers (id int PRIMARY KEY, name text);
	INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 10) g;"
sql_shop shopdb "SELECT id, item FROM orders ORDER BY id" >"$TEST_DIR/rows-expected"

keel --json db dump "$conn" --name shop >"$TEST_DIR/dump.json" 2>"$TEST_DIR/dump.err" ||
	fail "db dump failed: $(cat "$TEST_DIR/dump.err")"
id=$(json_get snapshot_id <"$TEST_DIR/dump.json")
[ "$(json_get databases <"$TEST_DIR/dump.json")" = 2 ] || fail "expected postgres and shopdb: $(cat "$TEST_DIR/dump.json")"
[ "$(snapshot_count --tag db-dump)" = 1 ] || fail "the dump has no db-dump tag"
keel db list >"$TEST_DIR/list"
grep -q '^shop (postgresql, system [0-9]*): 0 base backups, 1 dump$' "$TEST_DIR/list" ||
	fail "db list does not show the dump: $(cat "$TEST_DIR/list")"
grep -q "^  ${id:0:8}  .*  dump  " "$TEST_DIR/list" || fail "db list does not list dump ${id:0:8}: $(cat "$TEST_DIR/list")"
keel ls "$id" >"$TEST_DIR/ls"
grep -q 'databases/shopdb.dump$' "$TEST_DIR/ls" || fail "no databases/shopdb.dump: $(cat "$TEST_DIR/ls")"

# globals: the role; one table into a new database with pg_restore
keel dump "$id" globals.sql >"$TEST_DIR/globals.sql"
grep -q 'CREATE ROLE clerk' "$TEST_DIR/globals.sql" || fail "globals.sql lacks the role"
keel dump "$id" databases/shopdb.dump >"$TEST_DIR/shopdb.dump"
chmod 644 "$TEST_DIR/shopdb.dump"
pg_sql origin "CREATE DATABASE restored"
as_pg "$PG_BIN/pg_restore" -h "$TEST_DIR/pg/origin/sock" -p "$(pg_port origin)" -U postgres \
	-d restored -t orders --no-owner "$TEST_DIR/shopdb.dump" ||
	fail "pg_restore of one table failed"
sql_shop restored "SELECT id, item FROM orders ORDER BY id" >"$TEST_DIR/rows-restored"
cmp "$TEST_DIR/rows-expected" "$TEST_DIR/rows-restored" || fail "restored table differs"
[ "$(sql_shop restored "SELECT count(*) FROM pg_tables WHERE tablename = 'customers'")" = 0 ] ||
	fail "pg_restore -t orders restored other tables"

# a dump tool that fails: nothing stored, exit 1 with the tool named
n=$(snapshot_count)
mkdir -p "$TEST_DIR/bin"
printf '#!/bin/sh\necho "pg_dump: simulated failure" >&2\nexit 3\n' >"$TEST_DIR/bin/pg_dump"
chmod +x "$TEST_DIR/bin/pg_dump"
PATH=$TEST_DIR/bin:$PATH expect_error 1 'pg_dump failed (exit status 3)' keel db dump "$conn" --name shop
[ "$(snapshot_count)" = "$n" ] || fail "a failed dump stored a snapshot"

# a password in CONNINFO: given to pg_dump as PGPASSWORD, not in its argv
printf '#!/bin/sh\nps -o args= -p $$ >&2; [ "$PGPASSWORD" = s3cret ] || exit 9\ncase "$*" in *s3cret*) exit 8;; esac\nexec %s/pg_dump "$@"\n' "$PG_BIN" >"$TEST_DIR/bin/pg_dump"
PATH=$TEST_DIR/bin:$PATH expect_success keel db dump "$conn password=s3cret" --name shop >/dev/null
