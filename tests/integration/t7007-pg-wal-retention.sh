#!/usr/bin/env bash
# forget policies and the log: a policy counts a database's base backups;
# the log records older than the oldest kept base backup go with the ones
# it removes, and nothing a kept base backup needs: the log stays without
# a gap from the oldest kept one on (db check), and a restore from it to
# an LSN after the next one gives exactly the rows of then. A policy that
# judges no base backup of the database (a filter) removes no record.
. "$(dirname "$0")/../lib.sh"
. "$KEEL_SOURCE_ROOT/tests/lib-pg.sh"
require_keel
pg_require
export KEEL_CACHE_DIR=$TEST_DIR/cache

keel_init
pg_init origin
pg_start origin
conn=$(pg_conninfo origin)
pg_sql origin "CREATE TABLE orders (id int PRIMARY KEY, item text);
	INSERT INTO orders SELECT g, 'before-' || g FROM generate_series(1, 2000) g;"

rows()
{
	for i in "$@"; do
		pg_sql origin "INSERT INTO orders SELECT g, 'b$i' FROM generate_series($i * 10000, $i * 10000 + 99) g; SELECT pg_switch_wal()" >/dev/null
	done
	pg_wait_stored "$stream" 15
}
records()
{
	keel db list --json | json_get wal_records
}

expect_success keel db backup "$conn" --name shop >/dev/null # B1
"$KEEL" db stream "$conn" --name shop >"$TEST_DIR/stream.out" 2>"$TEST_DIR/stream.err" &
stream=$!
BG_PIDS+=("$stream")
rows 1 2
expect_success keel db backup "$conn" --name shop >/dev/null # B2
rows 3 4
l2=$(pg_sql origin "SELECT pg_current_wal_lsn()")
pg_sql origin "SELECT id, item FROM orders ORDER BY id" >"$TEST_DIR/rows-l2"
rows 5
expect_success keel db backup "$conn" --name shop >/dev/null # B3
rows 6
kill -TERM "$stream"
wait "$stream" || fail "the stream exited $?: $(cat "$TEST_DIR/stream.err")"
expect_success keel db check shop >/dev/null
b2_start=$(keel db list --json | json_get start_lsn | sed -n 2p)
before=$(records)

# a policy for other snapshots (a tag no base backup has) removes no record
expect_success keel forget --keep-last 1 --tag nothing >/dev/null
[ "$(records)" = "$before" ] || fail "a policy that judged no base backup removed records"

# --dry-run says, removes nothing
keel forget --keep-last 2 --dry-run >"$TEST_DIR/dry.out"
grep -q '^would remove [1-9][0-9]* database log records\? older than the oldest kept base backup$' "$TEST_DIR/dry.out" ||
	fail "dry run does not name the log records: $(cat "$TEST_DIR/dry.out")"
[ "$(records)" = "$before" ] || fail "--dry-run removed records"

expect_success keel forget --keep-last 2 >"$TEST_DIR/forget.out"
after=$(records)
[ "$after" -lt "$before" ] || fail "no log record removed ($before before, $after after)"
[ "$(keel db list --json | json_get start_lsn | wc -l)" = 2 ] || fail "expected 2 base backups left"
[ "$(keel db list --json | json_get start_lsn | sed -n 1p)" = "$b2_start" ] || fail "the oldest kept base backup is not B2"

# what B2 needs is all there: no gap, and a restore from B2 to L2 is exact
expect_success keel db check shop --all >/dev/null
target=$TEST_DIR/pg/at-l2-data
expect_success keel db restore shop --target "$target" --lsn "$l2" >/dev/null
pg_register at-l2
pg_start at-l2 "$target"
pg_sql at-l2 "SELECT id, item FROM orders ORDER BY id" >"$TEST_DIR/rows-at-l2"
cmp "$TEST_DIR/rows-l2" "$TEST_DIR/rows-at-l2" || fail "restore from B2 to $l2 differs after forget"
pg_stop at-l2
expect_success keel prune >/dev/null
expect_success keel check --read-data >/dev/null
