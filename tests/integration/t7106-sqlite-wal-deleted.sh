#!/usr/bin/env bash
# When the last connection to a WAL database closes, SQLite checkpoints
# everything into the database file and removes the -wal file. A stream
# started after that (keel's own connections were the last, or the
# application's closed while keel was not running) finds the file equal to
# what the repository holds and goes on without a gap and without a new
# base copy: restores to moments before, between and after the streams
# give exactly the rows committed by then, and db check exits 0. Rows
# committed while keel was not running and checkpointed by their writer's
# close are a real gap: a new base copy, db check exits 24, a moment in
# the gap is refused and the others restore exactly.
. "$(dirname "$0")/../lib.sh"
. "$KEEL_SOURCE_ROOT/tests/lib-sqlite.sh"
sqlite_test_init

# rounds N: N times a writer that opens the database, commits 3 rows 0.1 s apart and closes
rounds()
{
	local i
	for ((i = 0; i < $1; i++)); do
		writer_start "$db" 3 0.1
		writer_wait
		sleep 0.2
	done
}

# streamed N [hold]: a stream while N rounds run, then it stops (with hold:
# after an application's connection opened, which is then the last one)
streamed()
{
	stream_start "$db" app
	sleep 0.5
	rounds "$1"
	sleep 1.5
	if [ -n "${2:-}" ]; then
		sqlite_hold_open "$db"
		sleep 0.5
	fi
	stream_stop
}

no_wal()
{
	[ ! -s "$db-wal" ] || fail "the WAL is still there ($1): the test does not test what it says"
}

# 1. a stream from the start while writers open, commit and close (rows 1-12);
#    keel's close is the last: the WAL goes
streamed 4
no_wal "after keel's close"

# 2. a restart with the WAL gone (rows 13-24); 3. the application's
#    connection is the last to close, while keel is not running (rows 25-36)
streamed 4 hold
kill "$holder"
wait "$holder" 2>/dev/null || true
no_wal "after the application's close"
streamed 4
[ "$(sqlite_list app base_backups)" = 1 ] || fail "a clean close took a new base copy: $(keel db list)"
[ "$(sqlite_list app gaps)" = 0 ] || fail "a clean close counts as a gap: $(keel db list)"
expect_success keel db check app --all >/dev/null
for k in 2 5 12 13 20 24 25 30 35; do
	restore_at "$db" app "$k"
done
restore_latest "$db" app

# 4. a real gap: rows committed while keel is not running, checkpointed by
#    their writer's close (rows 37-39), then a stream (rows 40-45)
writer_start "$db" 3 0.1
writer_wait
no_wal "after a writer's close"
streamed 2
[ "$(sqlite_list app base_backups)" = 2 ] || fail "no new base copy after a real gap: $(keel db list)"
[ "$(sqlite_list app gaps)" = 1 ] || fail "db list does not show the gap: $(keel db list)"
expect_error 24 'has 1 gap' keel db check app
expect_error 14 "not covered" keel db restore app --target "$TEST_DIR/gap.db" \
	--time "$(fmt_time $((($(commit_time 38) + $(commit_time 39)) / 2)))"
[ ! -e "$TEST_DIR/gap.db" ] || fail "a refused restore left a file"
for k in 30 41 43; do
	restore_at "$db" app "$k"
done
restore_latest "$db" app
expect_success keel check --read-data >/dev/null
