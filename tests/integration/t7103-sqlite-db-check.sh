#!/usr/bin/env bash
# keel db check of a SQLite database: the log records form an unbroken
# chain from the base copy (positions, salts, a new generation only where
# the one before ended: keel's own checkpoint), and every record's frames
# continue the WAL's checksum chain (a record that did not would count as
# damaged, exit 13); a second check reads nothing; a reset of the WAL
# while keel was not running (a new base copy) and a record removed from
# the middle of a chain are gaps, named, exit 24, counted in --json.
. "$(dirname "$0")/../lib.sh"
. "$KEEL_SOURCE_ROOT/tests/lib-sqlite.sh"
sqlite_test_init
# a connection held open, as an application's: the WAL stays between streams
sqlite_hold_open "$db"

check_json()
{
	keel --json db check app "$@" >"$TEST_DIR/check.json" 2>"$TEST_DIR/check.err"
}

field()
{
	json_get "$1" <"$TEST_DIR/check.json"
}

# 1. a base copy and a chain of records: no gap, every record's checksums hold
stream_while "$db" app 30 0.05
n=$(snapshot_count)
[ "$n" -ge 2 ] || fail "expected a base copy and a record, got $n"
expect_success check_json
[ "$(field gaps)" = 0 ] && [ "$(field damaged)" = 0 ] || fail "check: $(cat "$TEST_DIR/check.json") $(cat "$TEST_DIR/check.err")"
[ "$(field verified)" = "$n" ] || fail "the first check did not read all $n: $(cat "$TEST_DIR/check.json")"
expect_success check_json
[ "$(field verified)" = 0 ] || fail "the second check read again: $(cat "$TEST_DIR/check.json")"

# 2. a restart (the WAL still holds the last position: the chain goes on),
#    and a burst that makes keel checkpoint: the next generation follows
salt0=$(od -An -tx1 -j16 -N8 "$db-wal" | tr -d ' \n')
stream_while "$db" app 1500 0 10 0.1
[ "$(od -An -tx1 -j16 -N8 "$db-wal" | tr -d ' \n')" != "$salt0" ] || fail "the WAL did not start over"
[ "$(sqlite_list app base_backups)" = 1 ] ||
	fail "the restart took a new base copy"
n2=$(snapshot_count)
expect_success check_json
[ "$(field gaps)" = 0 ] && [ "$(field damaged)" = 0 ] || fail "check after a new generation: $(cat "$TEST_DIR/check.json") $(cat "$TEST_DIR/check.err")"
[ "$(field verified)" = $((n2 - n)) ] || fail "expected $((n2 - n)) new snapshots read: $(cat "$TEST_DIR/check.json")"
expect_success check_json --all
[ "$(field verified)" = "$n2" ] || fail "--all did not read all $n2: $(cat "$TEST_DIR/check.json")"
[ "$(field damaged)" = 0 ] || fail "--all: $(cat "$TEST_DIR/check.err")"

# 3. a checkpoint that resets the WAL while keel is not running: the next
#    stream takes a new base copy; what lies between is a gap
writer_start "$db" 10 0
writer_wait
sqlite3 "$db" 'PRAGMA wal_checkpoint(TRUNCATE)' >/dev/null
writer_start "$db" 10 0
writer_wait
stream_while "$db" app 10 0.05
expect_exit 24 check_json
[ "$(field gaps)" = 1 ] || fail "expected one gap: $(cat "$TEST_DIR/check.json") $(cat "$TEST_DIR/check.err")"
grep -q 'gap from generation [0-9]* frame [0-9]* to generation [0-9]* frame [0-9]*' "$TEST_DIR/check.err" ||
	fail "the gap is not named: $(cat "$TEST_DIR/check.err")"
expect_error 24 'has 1 gap' keel db check app
[ "$(sqlite_list app gaps)" = 1 ] ||
	fail "db list does not show the gap"

# 4. a record removed from the middle of the first chain: a second gap
mid=$(keel snapshots --json --tag db:app | python3 -c '
import json, sys
v = [s for s in json.load(sys.stdin) if s.get("kind") != "database"]
v.sort(key=lambda s: s["time"])
print(v[len(v) // 3]["id"])')
expect_success keel forget "$mid" >/dev/null
expect_exit 24 check_json
[ "$(field gaps)" = 2 ] || fail "expected two gaps: $(cat "$TEST_DIR/check.json") $(cat "$TEST_DIR/check.err")"
expect_success keel check --read-data >/dev/null
