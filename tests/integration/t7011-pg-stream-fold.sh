#!/usr/bin/env bash
# keel db stream folds its records (docs/DATABASES.md, "The log"): while a
# WAL segment grows, a record of it is stored about once a second; once
# the segment is complete and stored whole, those records (prefixes of
# it) are removed, so the repository holds one record per segment and not
# one per second. Nothing a restore needs goes: db check finds no gap and
# a restore has every row.
. "$(dirname "$0")/../lib.sh"
. "$KEEL_SOURCE_ROOT/tests/lib-pg.sh"
require_keel
pg_require

keel_init >/dev/null
pg_init origin
pg_start origin
conn=$(pg_conninfo origin)
pg_sql origin "CREATE TABLE t (id int PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())"
expect_success keel db backup "$conn" --name shop >/dev/null

"$KEEL" db stream --json "$conn" --name shop >"$TEST_DIR/stream.out" 2>"$TEST_DIR/stream.err" &
stream=$!
BG_PIDS+=("$stream")
records() { keel db list --json | json_get wal_records; }
# a few seconds of commits: a record of the growing segment each second
for i in $(seq 1 6); do
	pg_sql origin "INSERT INTO t (id) VALUES ($i)"
	sleep 1.2
done
before=$(records)
[ "$before" -ge 4 ] || fail "expected a record a second, have $before"
# the segment ends (the server switches to the next one); more commits after
pg_sql origin "SELECT pg_switch_wal()" >/dev/null
pg_sql origin "INSERT INTO t (id) VALUES (100)"
want=$(pg_sql origin "SELECT pg_current_wal_flush_lsn()")
for ((i = 0; i < 300; i++)); do
	got=$(keel db list --json 2>/dev/null | json_get wal_stop_lsn || true)
	[ -n "$got" ] && [ "$(lsn_num "$got")" -ge "$(lsn_num "$want")" ] && break
	kill -0 "$stream" 2>/dev/null || fail "the stream ended: $(cat "$TEST_DIR/stream.err")"
	sleep 0.1
done
kill -TERM "$stream"
wait "$stream" || fail "db stream exited $? on SIGTERM"
folded=$(json_get folded <"$TEST_DIR/stream.out")
[ "$folded" -ge 3 ] || fail "only $folded records folded: $(cat "$TEST_DIR/stream.out")"
written=$(json_get records <"$TEST_DIR/stream.out")
after=$(records)
[ "$after" = $((written - folded)) ] ||
	fail "the repository holds $after records; $written were written and $folded folded"
log "records: $before while the segment grew; $written written, $folded folded, $after kept"

expect_success keel db check shop >/dev/null
pg_sql origin "SELECT id FROM t ORDER BY id" >"$TEST_DIR/rows-expected"
expect_success keel db restore shop --target "$TEST_DIR/pg/restored-data" --latest >/dev/null
pg_register restored
pg_start restored "$TEST_DIR/pg/restored-data"
pg_sql restored "SELECT id FROM t ORDER BY id" >"$TEST_DIR/rows-restored"
cmp -s "$TEST_DIR/rows-expected" "$TEST_DIR/rows-restored" ||
	fail "the restore differs after folding: $(tr '\n' ' ' <"$TEST_DIR/rows-restored")"
pg_stop restored
expect_success keel check >/dev/null
