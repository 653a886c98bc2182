#!/usr/bin/env bash
# keel db backup / restore / list against a real PostgreSQL 15: two base
# backups (the second deduplicated against the first), a restore of the
# newest that starts with pg_ctl and holds exactly the rows, and the exit
# codes of a server keel cannot use (docs/EXIT-CODES.md 22).
. "$(dirname "$0")/../lib.sh"
. "$KEEL_SOURCE_ROOT/tests/lib-pg.sh"
require_keel
pg_require

keel_init
pg_init origin
pg_start origin
conn=$(pg_conninfo origin)

pg_sql origin "CREATE TABLE orders (id int PRIMARY KEY, item text, qty int);
	INSERT INTO orders SELECT g, 'item-' || g, g % 7 FROM generate_series(1, 20000) g;
	CREATE TABLE big AS SELECT g AS id, md5(g::text) AS h FROM generate_series(1, 100000) g;"
# a tablespace outside the data directory: restored beside it, in DIR.tablespaces/OID
as_pg mkdir "$TEST_DIR/pg/ts"
pg_sql origin "CREATE TABLESPACE ts LOCATION '$TEST_DIR/pg/ts'"
pg_sql origin "CREATE TABLE elsewhere TABLESPACE ts AS SELECT g AS id FROM generate_series(1, 3000) g"

expect_success keel db backup "$conn" --name shop >"$TEST_DIR/b1"
grep -q '^database shop (system [0-9]*): base backup [0-9a-f]\{8\} saved, timeline 1, start [0-9A-F]*/[0-9A-F]* stop [0-9A-F]*/[0-9A-F]*$' "$TEST_DIR/b1" ||
	fail "unexpected summary: $(cat "$TEST_DIR/b1")"

# more rows, some changed, then the second base backup
pg_sql origin "INSERT INTO orders SELECT g, 'item-' || g, 1 FROM generate_series(20001, 21000) g;
	UPDATE orders SET qty = 99 WHERE id % 1000 = 0; DELETE FROM orders WHERE id BETWEEN 500 AND 510;"
pg_sql origin "SELECT id, item, qty FROM orders ORDER BY id" >"$TEST_DIR/rows-expected"
[ "$(wc -l <"$TEST_DIR/rows-expected")" = 20989 ] || fail "unexpected row count in the origin"
cluster=$(du -sb "$TEST_DIR/pg/origin/data/base" | cut -f1)
before=$(dir_bytes "$KEEL_REPOSITORY")
expect_success keel db backup "$conn" --name shop --json >"$TEST_DIR/b2"
after=$(dir_bytes "$KEEL_REPOSITORY")
json_check <"$TEST_DIR/b2"
grew=$((after - before))
log "cluster's base/ $cluster bytes; the second base backup added $grew bytes"
[ "$grew" -lt $((cluster / 4)) ] || fail "second base backup added $grew bytes (base/ is $cluster)"

# rows written after the second base backup are not in its restore
pg_sql origin "INSERT INTO orders VALUES (999999, 'later', 1)"

# db list: one database, two base backups
expect_success keel db list >"$TEST_DIR/list"
grep -q '^shop (postgresql, system [0-9]*): 2 base backups$' "$TEST_DIR/list" ||
	fail "unexpected db list: $(cat "$TEST_DIR/list")"
[ "$(grep -c '^  [0-9a-f]\{8\}  ' "$TEST_DIR/list")" = 2 ] || fail "expected two base backups listed"
expect_success keel db list --json >"$TEST_DIR/list.json"
json_check <"$TEST_DIR/list.json"

# the snapshots are of kind database, tagged
keel snapshots --json >"$TEST_DIR/snaps.json"
grep -q '"kind":"database"' "$TEST_DIR/snaps.json" || fail "snapshots do not say kind database"
grep -q '"db:shop"' "$TEST_DIR/snaps.json" || fail "snapshots are not tagged db:shop"

# the repository holds them as any snapshot: check reads them
expect_success keel check --read-data >/dev/null

# restore the newest and start it beside the origin
target=$TEST_DIR/pg/restored-data
expect_success keel db restore shop --target "$target" --latest >"$TEST_DIR/r"
[ "$(stat -c %a "$target")" = 700 ] || fail "restored data directory is not mode 0700"
[ -f "$target/backup_label" ] || fail "no backup_label in the restored data directory"
ls "$target/pg_wal" | grep -q '^[0-9A-F]\{24\}$' || fail "no WAL segment in the restored pg_wal"
[ ! -e "$target.keel-restore" ] || fail "the restore's temporary directory was left"
pg_register restored
pg_start restored "$target"
pg_sql restored "SELECT id, item, qty FROM orders ORDER BY id" >"$TEST_DIR/rows-restored"
cmp "$TEST_DIR/rows-expected" "$TEST_DIR/rows-restored" || fail "restored rows differ"
[ "$(pg_sql restored "SELECT count(*) FROM big")" = 100000 ] || fail "restored table big differs"
[ "$(pg_sql restored "SELECT sum(id) FROM elsewhere")" = 4501500 ] || fail "restored tablespace differs"
oid=$(pg_sql restored "SELECT oid FROM pg_tablespace WHERE spcname = 'ts'")
[ "$(readlink "$target/pg_tblspc/$oid")" = "$target.tablespaces/$oid" ] ||
	fail "the tablespace is not in $target.tablespaces/$oid"
pg_stop restored

# a target that is not empty is refused
mkdir -p "$TEST_DIR/full" && touch "$TEST_DIR/full/x"
expect_error 2 "is not empty" keel db restore shop --target "$TEST_DIR/full" --latest
expect_error 14 "no base backup of database 'nosuch'" keel db restore nosuch --target "$TEST_DIR/new" --latest

# exit 22: an unknown role; a server that allows no replication connection
expect_error 22 'cannot connect to the database server.*role "nosuch" does not exist' \
	keel db backup "host=$TEST_DIR/pg/origin/sock port=$(pg_port origin) user=nosuch"
expect_error 22 'cannot connect' keel db backup "host=$TEST_DIR/pg/nowhere port=1 user=postgres"
# exit 23: the server goes away in the middle of the base backup
backup_to_err()
{
	keel db backup "$conn" --name shop 2>"$TEST_DIR/err23" >/dev/null
}
start_paused db-backup-archive backup_to_err
pg_stop origin immediate
resume db-backup-archive
rc=0
wait_paused || rc=$?
cat "$TEST_DIR/err23" >&9
[ "$rc" = 23 ] || fail "a server gone mid-backup gave exit $rc, expected 23"
grep -q 'the base backup broke off' "$TEST_DIR/err23" || fail "no message for a server gone mid-backup"
[ "$(snapshot_count)" = 2 ] || fail "a broken-off backup left a snapshot"
pg_start origin

pg_sql origin "ALTER SYSTEM SET max_wal_senders = 0"
pg_stop origin
pg_start origin
expect_error 22 'max_wal_senders' keel db backup "$conn" --name shop
expect_error 2 'invalid database name' keel db backup "$conn" --name 'a/b'
[ "$(snapshot_count)" = 2 ] || fail "a failed backup left a snapshot"
