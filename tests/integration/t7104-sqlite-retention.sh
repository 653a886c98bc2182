#!/usr/bin/env bash
# forget policies and a SQLite database's log: a policy counts its base
# copies; the log records older than the oldest kept base copy go with
# the ones it removes, and nothing a kept base copy needs: db check finds
# no gap from the oldest kept one on, and restores after it are exact,
# while a moment before it is refused. A policy that judges no base copy
# of the database removes no record; --dry-run removes nothing.
. "$(dirname "$0")/../lib.sh"
. "$KEEL_SOURCE_ROOT/tests/lib-sqlite.sh"
sqlite_test_init
# an application's connection, held open: the WAL stays between streams
sqlite_hold_open "$db"

count()
{
	keel snapshots --json --tag db:app | json_get id | wc -l
}

# B1 and its records (R1), B2 (db backup) and R2, B3 and R3
stream_while "$db" app 20 0.05
r1=$(($(count) - 1))
[ "$r1" -ge 1 ] || fail "expected a record after B1, got $r1"
expect_success keel db backup "sqlite://$db" --name app >/dev/null
stream_while "$db" app 20 0.05
expect_success keel db backup "sqlite://$db" --name app >/dev/null
stream_while "$db" app 20 0.05
[ "$(sqlite_list app base_backups)" = 3 ] || fail "expected 3 base copies: $(keel db list)"
expect_success keel db check app >/dev/null
before=$(count)

# a policy for other snapshots removes no record; a dry run says and removes nothing
expect_success keel forget --keep-last 1 --tag nothing >/dev/null
[ "$(count)" = "$before" ] || fail "a policy that judged no base copy removed records"
keel forget --keep-last 2 --dry-run >"$TEST_DIR/dry.out"
grep -q "^would remove $r1 database log records\? older than the oldest kept base backup$" "$TEST_DIR/dry.out" ||
	fail "dry run does not name the $r1 log records: $(cat "$TEST_DIR/dry.out")"
[ "$(count)" = "$before" ] || fail "--dry-run removed records"

# B1 goes, and exactly R1 with it
expect_success keel forget --keep-last 2 >/dev/null
[ "$(count)" = $((before - 1 - r1)) ] || fail "expected $((before - 1 - r1)) snapshots left, got $(count)"
[ "$(sqlite_list app base_backups)" = 2 ] || fail "expected 2 base copies left"
expect_success keel db check app --all >/dev/null
restore_at "$db" app 25
restore_at "$db" app 39
restore_at "$db" app 55
restore_latest "$db" app
expect_error 14 "before the oldest base copy" \
	keel db restore app --target "$TEST_DIR/old.db" --time "$(fmt_time "$(commit_time 10)")"
expect_success keel prune >/dev/null
expect_success keel check --read-data >/dev/null
