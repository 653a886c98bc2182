#!/usr/bin/env bash
# The replication slot and the base backup: without a slot, db backup
# warns that nothing keeps its WAL, and once the server has recycled it, a
# stream started later refuses (exit 23) with what to do, never storing a
# log with a silent hole; db backup --create-slot creates the stream's
# slot before BASE_BACKUP, so the same recycling loses nothing: the stream
# started later resumes from the backup with no gap (db check) and a
# restore to the newest moment has every row.
. "$(dirname "$0")/../lib.sh"
. "$KEEL_SOURCE_ROOT/tests/lib-pg.sh"
require_keel
pg_require

keel_init
# no WAL kept for anyone but a slot: checkpoints recycle every older segment
pg_init origin "min_wal_size = 32MB" "max_wal_size = 64MB" "wal_keep_size = 0"
pg_start origin
conn=$(pg_conninfo origin)
pg_sql origin "CREATE TABLE orders (id int PRIMARY KEY, item text);
	INSERT INTO orders SELECT g, 'before-' || g FROM generate_series(1, 2000) g;"

# recycle N: N segments of WAL written and checkpointed away
recycle()
{
	local i
	for ((i = 0; i < $1; i++)); do
		pg_sql origin "INSERT INTO orders SELECT g, 'r' FROM generate_series($2 + $i * 1000, $2 + $i * 1000 + 99) g;
			SELECT pg_switch_wal(); CHECKPOINT;" >/dev/null
	done
}

slot_exists()
{
	[ "$(pg_sql origin "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$1'")" = 1 ]
}

# 1. no slot: a warning; WAL recycled; the stream refuses with the reason
keel --json db backup "$conn" --name noslot >"$TEST_DIR/b1.json" 2>"$TEST_DIR/b1.err" ||
	fail "db backup failed: $(cat "$TEST_DIR/b1.err")"
grep -q "no replication slot 'keel_noslot' keeps the WAL from this base backup on" "$TEST_DIR/b1.err" ||
	fail "no warning without a slot: $(cat "$TEST_DIR/b1.err")"
[ "$(json_get slot_reserved <"$TEST_DIR/b1.json")" = false ] || fail "slot_reserved: $(cat "$TEST_DIR/b1.json")"
slot_exists keel_noslot && fail "db backup created a slot without --create-slot"
recycle 6 100000
expect_error 23 "created only now" timeout 60 "$KEEL" db stream "$conn" --name noslot
[ "$(keel snapshots --json --tag db:noslot | json_get id | wc -l)" = 1 ] ||
	fail "the refused stream stored a record"

# 2. --create-slot: the slot exists before BASE_BACKUP and keeps its WAL
keel --json db backup "$conn" --name shop --create-slot >"$TEST_DIR/b2.json" 2>"$TEST_DIR/b2.err" ||
	fail "db backup --create-slot failed: $(cat "$TEST_DIR/b2.err")"
[ ! -s "$TEST_DIR/b2.err" ] || fail "a warning with --create-slot: $(cat "$TEST_DIR/b2.err")"
[ "$(json_get slot_created <"$TEST_DIR/b2.json")" = true ] &&
	[ "$(json_get slot_reserved <"$TEST_DIR/b2.json")" = true ] || fail "slot fields: $(cat "$TEST_DIR/b2.json")"
slot_exists keel_shop || fail "no slot keel_shop after --create-slot"
start=$(json_get start_lsn <"$TEST_DIR/b2.json")
[ "$(pg_sql origin "SELECT restart_lsn <= '$start' FROM pg_replication_slots WHERE slot_name = 'keel_shop'")" = t ] ||
	fail "the slot's restart_lsn is after the base backup's start $start"
recycle 6 200000
pg_sql origin "SELECT id, item FROM orders ORDER BY id" >"$TEST_DIR/rows-want"
"$KEEL" --json db stream "$conn" --name shop >"$TEST_DIR/stream.json" 2>"$TEST_DIR/stream.err" &
stream=$!
BG_PIDS+=("$stream")
end=$(pg_sql origin "SELECT pg_current_wal_lsn()")
for ((i = 0; i < 300; i++)); do
	got=$(pg_sql origin "SELECT coalesce(flush_lsn >= '$end', false) FROM pg_stat_replication WHERE application_name = 'keel'")
	[ "$got" != t ] || break
	kill -0 "$stream" 2>/dev/null || fail "the stream ended: $(cat "$TEST_DIR/stream.err")"
	sleep 0.1
done
[ "$got" = t ] || fail "the stream did not reach $end in 30 s"
kill -TERM "$stream"
wait "$stream" || fail "db stream failed: $(cat "$TEST_DIR/stream.err")"
grep -q 'created\|did not exist' "$TEST_DIR/stream.err" && fail "the stream created the slot again: $(cat "$TEST_DIR/stream.err")"
expect_success keel db check shop >/dev/null

# a second backup: the slot is there, no warning
keel db backup "$conn" --name shop >/dev/null 2>"$TEST_DIR/b3.err" || fail "db backup: $(cat "$TEST_DIR/b3.err")"
[ ! -s "$TEST_DIR/b3.err" ] || fail "a warning with the slot there: $(cat "$TEST_DIR/b3.err")"

# the newest moment from the first base backup of shop: every row
target=$TEST_DIR/pg/latest-data
pg_register latest
first=$(keel db list --json | python3 -c 'import json, sys; print([x for x in json.load(sys.stdin) if x["name"] == "shop"][0]["base_backups"][0]["id"])')
pg_sql origin "SELECT pg_drop_replication_slot('keel_shop')" >/dev/null
keel forget "$(keel db list --json | python3 -c 'import json, sys; print([x for x in json.load(sys.stdin) if x["name"] == "shop"][0]["base_backups"][1]["id"])')" >/dev/null
expect_success keel db restore shop --target "$target" --latest >/dev/null
pg_start latest "$target"
pg_sql latest "SELECT id, item FROM orders ORDER BY id" >"$TEST_DIR/rows-got"
cmp -s "$TEST_DIR/rows-want" "$TEST_DIR/rows-got" || fail "the restore from $first differs: $(wc -l <"$TEST_DIR/rows-got") rows, expected $(wc -l <"$TEST_DIR/rows-want")"
pg_stop latest
