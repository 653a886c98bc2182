#!/usr/bin/env bash
# keel db stream follows a timeline switch: it streams from a standby,
# the standby is promoted (timeline 2) and written to, and the stream goes
# on without stopping (the history file stored, the new timeline's WAL
# stored from the switch). A restore to a time after the promote replays
# across the switch and gives exactly the rows committed by then.
. "$(dirname "$0")/../lib.sh"
. "$KEEL_SOURCE_ROOT/tests/lib-pg.sh"
require_keel
pg_require

keel_init
pg_init primary
pg_start primary
pg_sql primary "CREATE TABLE orders (id int PRIMARY KEY, item text);
	INSERT INTO orders SELECT g, 'before-' || g FROM generate_series(1, 2000) g;"

# a standby of it (streaming replication, standby.signal)
pg_register standby
as_pg "$PG_BIN/pg_basebackup" -h "$TEST_DIR/pg/primary/sock" -p "$(pg_port primary)" \
	-U postgres -D "$TEST_DIR/pg/standby/data" -R -X stream >"$TEST_DIR/basebackup.log" 2>&1 ||
	fail "pg_basebackup of the standby failed: $(cat "$TEST_DIR/basebackup.log")"
pg_start standby
conn=$(pg_conninfo standby)

# a base backup of the standby, then the stream from it
expect_success keel db backup "$conn" --name shop >/dev/null
"$KEEL" db stream "$conn" --name shop >"$TEST_DIR/stream.out" 2>"$TEST_DIR/stream.err" &
stream=$!
BG_PIDS+=("$stream")

batch()
{
	pg_sql "$1" "INSERT INTO orders SELECT g, 'after-$2-' || g FROM generate_series($2 * 10000, $2 * 10000 + 999) g"
}
batch primary 1
# until the standby replayed it, then until keel stored it
lsn=$(pg_sql primary "SELECT pg_current_wal_flush_lsn()")
for ((i = 0; i < 100; i++)); do
	r=$(pg_sql standby "SELECT pg_last_wal_replay_lsn() >= '$lsn'")
	[ "$r" = t ] && break
	sleep 0.1
done
pg_wait_stored "$stream" 15 "$lsn"

# the failover: the primary goes, the standby is promoted (timeline 2)
pg_stop primary
as_pg "$PG_BIN/pg_ctl" -D "$TEST_DIR/pg/standby/data" -w -t 30 promote >/dev/null ||
	fail "promote failed"
batch standby 2
pg_sql standby "SELECT id, item FROM orders ORDER BY id" >"$TEST_DIR/rows-t"
t=$(pg_sql standby "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")
sleep 0.2
batch standby 3
pg_wait_stored "$stream" 15 "$(pg_sql standby "SELECT pg_current_wal_flush_lsn()")"
kill -0 "$stream" 2>/dev/null || fail "the stream stopped at the timeline switch: $(cat "$TEST_DIR/stream.err")"

kill -TERM "$stream"
rc=0
wait "$stream" || rc=$?
cat "$TEST_DIR/stream.err" >&9
[ "$rc" = 0 ] || fail "db stream exited $rc: $(cat "$TEST_DIR/stream.err")"
[ ! -s "$TEST_DIR/stream.err" ] || fail "the stream warned: $(cat "$TEST_DIR/stream.err")"

# the repository holds timeline 2's history file and WAL
keel db list --json >"$TEST_DIR/list.json"
json_get wal_timeline <"$TEST_DIR/list.json" | grep -qx 2 ||
	fail "db list does not show timeline 2: $(cat "$TEST_DIR/list.json")"

# restore to T (after the promote, on timeline 2)
target=$TEST_DIR/pg/at-t-data
expect_success keel db restore shop --target "$target" --time "$t" >/dev/null
[ -f "$target/pg_wal/00000002.history" ] || fail "no 00000002.history in the restored pg_wal"
pg_register at-t
pg_start at-t "$target"
pg_sql at-t "SELECT id, item FROM orders ORDER BY id" >"$TEST_DIR/rows-at-t"
cmp "$TEST_DIR/rows-t" "$TEST_DIR/rows-at-t" || fail "restore --time '$t' across the switch differs"
pg_stop at-t

# --latest crosses the switch too: every row of batch 3
pg_sql standby "SELECT id, item FROM orders ORDER BY id" >"$TEST_DIR/rows-latest"
target=$TEST_DIR/pg/latest-data
expect_success keel db restore shop --target "$target" --latest >/dev/null
pg_register latest
pg_start latest "$target"
pg_sql latest "SELECT id, item FROM orders ORDER BY id" >"$TEST_DIR/rows-at-latest"
cmp "$TEST_DIR/rows-latest" "$TEST_DIR/rows-at-latest" || fail "restore --latest across the switch differs"
pg_stop latest
expect_success keel check --read-data >/dev/null
