#!/usr/bin/env bash
# Folding of a SQLite stream's records: the records a stream writes of one
# generation (one a second while commits arrive) are replaced by one
# record holding all their frames and commits when the generation ends
# (keel's own checkpoint), every 60 records, and when the stream stops.
# Measured: the records stored against the log records the repository
# keeps. Restores to moments inside folded records are exact, db check
# finds no gap and every folded record's frames continue the checksum
# chain (--all), and a stream killed before it folds leaves records that
# the next one goes on from.
. "$(dirname "$0")/../lib.sh"
. "$KEEL_SOURCE_ROOT/tests/lib-sqlite.sh"
sqlite_test_init
sqlite_hold_open "$db"

# 1. 150 commits 0.05 s apart (about 8 s: a record a second), a burst that
#    makes keel checkpoint (a new generation), 60 more commits; then SIGTERM
stream_start "$db" app stream.json
sleep 0.5
writer_start "$db" 150 0.05
writer_wait
writer_start "$db" 1200 0
writer_wait
writer_start "$db" 60 0.05
writer_wait
sleep 1.5
stream_stop
stored=$(json_get records <"$TEST_DIR/stream.json")
folded=$(json_get folded <"$TEST_DIR/stream.json")
kept=$(sqlite_list app log_records)
log "records stored: $stored, removed by folding: $folded, log records kept: $kept"
[ "$stored" -ge 10 ] || fail "expected at least 10 records stored, got $stored"
# one record per generation the stream wrote (two or three: the burst's checkpoint)
[ "$kept" -le 3 ] || fail "$kept log records kept of $stored stored: not folded"
[ "$folded" -ge $((stored - kept)) ] || fail "folded $folded of $stored, kept $kept"

expect_success keel db check app --all >/dev/null
for k in 3 77 149 1350 1390; do
	restore_at "$db" app "$k"
done
# inside the burst commits come faster than keel sees them (it times a
# commit when it reads it): a moment there restores a consistent prefix
# that holds at least the commits before the burst and none that began
# after the moment. The writer logs a commit's time after COMMIT returns,
# and keel may read the frame before that, so the bound is the time each
# row's transaction began (in its v column), not the logged time.
tns=$((($(commit_time 700) + $(commit_time 701)) / 2))
t=$(fmt_time "$tns")
most=$(sqlite3 "$db" "SELECT count(*) FROM t WHERE CAST(substr(v, 5, 19) AS INTEGER) < $tns")
expect_success keel db restore app --target "$TEST_DIR/in-burst.db" --time "$t" >/dev/null
[ "$(sqlite3 "$TEST_DIR/in-burst.db" 'PRAGMA integrity_check')" = ok ] || fail "in-burst.db fails integrity_check"
got=$(sqlite3 "$TEST_DIR/in-burst.db" 'SELECT count(*) FROM t')
[ "$got" -ge 150 ] && [ "$got" -le "$most" ] || fail "in-burst.db: $got rows, expected 150..$most"
rows "$db" "$got" >"$TEST_DIR/want"
rows "$TEST_DIR/in-burst.db" >"$TEST_DIR/got"
cmp -s "$TEST_DIR/want" "$TEST_DIR/got" || fail "in-burst.db: not the first $got rows"
expect_success keel db restore app --target "$TEST_DIR/latest.db" --latest >/dev/null
rows "$db" >"$TEST_DIR/want"
rows "$TEST_DIR/latest.db" >"$TEST_DIR/got"
cmp -s "$TEST_DIR/want" "$TEST_DIR/got" || fail "restore --latest is not every row"

# 2. killed before it folds: its records stay; the next stream goes on from them
stream_start "$db" app
sleep 0.5
writer_start "$db" 60 0.05
writer_wait
sleep 1.5
kill -KILL "$stream"
wait "$stream" 2>/dev/null || true
unfolded=$(sqlite_list app log_records)
[ "$unfolded" -gt "$kept" ] || fail "expected the killed stream's records to stay: $unfolded"
stream_start "$db" app stream3.json
sleep 0.5
writer_start "$db" 30 0.05
writer_wait
sleep 1.5
stream_stop
[ "$(sqlite_list app base_backups)" = 1 ] ||
	fail "a new base copy after the restart"
expect_success keel db check app --all >/dev/null
restore_at "$db" app "1440"
restore_at "$db" app "1490"
log "log records: $(sqlite_list app log_records) (the killed stream's $((unfolded - kept)) stay unfolded)"
expect_success keel check --read-data >/dev/null
