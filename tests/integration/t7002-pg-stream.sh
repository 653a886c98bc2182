#!/usr/bin/env bash
# keel db stream against a real PostgreSQL 15: WAL stored as it arrives
# (the server's slot confirmed only up to what is stored), SIGTERM a clean
# stop (exit 0), a restart after SIGKILL with no gap, db restore --latest
# replaying the streamed WAL, so rows
# committed after the base backup come back exactly, and restores to a
# time and to an LSN between commits (point in time).
. "$(dirname "$0")/../lib.sh"
. "$KEEL_SOURCE_ROOT/tests/lib-pg.sh"
require_keel
pg_require

keel_init
pg_init origin
pg_start origin
conn=$(pg_conninfo origin)

pg_sql origin "CREATE TABLE orders (id int PRIMARY KEY, item text);
	INSERT INTO orders SELECT g, 'before-' || g FROM generate_series(1, 5000) g;"
expect_success keel db backup "$conn" --name shop >/dev/null

# start_stream: keel db stream in the background (pid in $stream)
start_stream()
{
	"$KEEL" db stream "$conn" --name shop >"$TEST_DIR/stream.out" 2>"$TEST_DIR/stream.err" &
	stream=$!
	BG_PIDS+=("$stream")
}

start_stream

# rows in several transactions after the base backup, while streaming;
# T1 after the first, L2 after the second
batch()
{
	pg_sql origin "INSERT INTO orders SELECT g, 'after-$1-' || g FROM generate_series($1 * 10000, $1 * 10000 + 999) g"
}
batch 1
pg_sql origin "SELECT id, item FROM orders ORDER BY id" >"$TEST_DIR/rows-t1"
t1=$(pg_sql origin "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")
batch 2
l2=$(pg_sql origin "SELECT pg_current_wal_lsn()")
pg_sql origin "SELECT id, item FROM orders ORDER BY id" >"$TEST_DIR/rows-l2"
batch 3
pg_sql origin "UPDATE orders SET item = 'changed' WHERE id % 100 = 0; DELETE FROM orders WHERE id < 50"

# within a few seconds the repository holds it, and the slot says so
pg_wait_stored "$stream" 10
flushed=$(pg_sql origin "SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = 'keel_shop'")
[ -n "$flushed" ] || fail "no replication slot keel_shop"
keel db list >"$TEST_DIR/list"
grep -q '^  WAL: [0-9]* records\?, up to [0-9A-F]*/[0-9A-F]* (stored [0-9]*s ago)$' "$TEST_DIR/list" ||
	fail "db list does not show the WAL: $(cat "$TEST_DIR/list")"

# SIGTERM: what arrived is stored, exit 0
kill -TERM "$stream"
rc=0
wait "$stream" || rc=$?
cat "$TEST_DIR/stream.err" >&9
[ "$rc" = 0 ] || fail "db stream exited $rc on SIGTERM"
grep -q '^stream stopped: WAL up to [0-9A-F]*/[0-9A-F]* stored ([0-9]* records)$' "$TEST_DIR/stream.out" ||
	fail "unexpected stream summary: $(cat "$TEST_DIR/stream.out")"

# rows while no stream runs, then keel killed with SIGKILL and restarted:
# the slot kept the WAL, the stream resumes where the repository ends
batch 4
start_stream
pg_wait_stored "$stream" 10
kill -KILL "$stream"
wait "$stream" 2>/dev/null || true
batch 5
start_stream
pg_wait_stored "$stream" 10
kill -TERM "$stream"
rc=0
wait "$stream" || rc=$?
[ "$rc" = 0 ] || fail "db stream exited $rc on SIGTERM after a restart"
pg_sql origin "SELECT id, item FROM orders ORDER BY id" >"$TEST_DIR/rows-expected"

target=$TEST_DIR/pg/restored-data
expect_success keel db restore shop --target "$target" --latest >/dev/null
pg_register restored
pg_start restored "$target"
pg_sql restored "SELECT id, item FROM orders ORDER BY id" >"$TEST_DIR/rows-restored"
cmp "$TEST_DIR/rows-expected" "$TEST_DIR/rows-restored" ||
	fail "restored rows differ from the origin's at the last commit"
pg_stop restored
expect_success keel check --read-data >/dev/null

# a forget policy counts the base backup, never the log records
n=$(snapshot_count)
[ "$n" -ge 3 ] || fail "expected a base backup and log records, got $n snapshots"
expect_success keel forget --keep-last 1 >/dev/null
[ "$(snapshot_count)" = "$n" ] || fail "forget --keep-last 1 removed log records"

# point in time: as it was at T1 (after the first batch), at L2 (after the second)
restore_at()
{
	local name=$1
	shift
	expect_success keel db restore shop --target "$TEST_DIR/pg/$name-data" "$@" >/dev/null
	[ -f "$TEST_DIR/pg/$name-data/recovery.signal" ] || fail "no recovery.signal for $*"
	pg_register "$name"
	pg_start "$name" "$TEST_DIR/pg/$name-data"
	pg_sql "$name" "SELECT id, item FROM orders ORDER BY id" >"$TEST_DIR/rows-$name"
	pg_stop "$name"
}
restore_at at-t1 --time "$t1"
cmp "$TEST_DIR/rows-t1" "$TEST_DIR/rows-at-t1" || fail "restore --time '$t1' differs"
restore_at at-l2 --lsn "$l2"
cmp "$TEST_DIR/rows-l2" "$TEST_DIR/rows-at-l2" || fail "restore --lsn $l2 differs"

# targets the repository does not cover, and one without a time zone
expect_error 14 'the target is not covered: the repository holds .shop. from [0-9A-F]*/[0-9A-F]* to' \
	keel db restore shop --target "$TEST_DIR/future" --time '2999-01-01 00:00:00+00'
expect_error 14 'the target is not covered' keel db restore shop --target "$TEST_DIR/future" --lsn FF/0
expect_error 14 'before the oldest base backup' \
	keel db restore shop --target "$TEST_DIR/past" --time '2000-01-01 00:00:00+00'
expect_error 2 'invalid --time' keel db restore shop --target "$TEST_DIR/x" --time '2026-12-05 10:00:00'
expect_error 2 'one of --latest, --time, --lsn' keel db restore shop --target "$TEST_DIR/x" --latest --lsn 0/1
