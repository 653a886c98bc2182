#!/usr/bin/env bash
# keel db stream survives a server restart: the connection goes, keel
# warns and reconnects with backoff, resumes where its repository ends
# (the slot kept the WAL), and rows written before, during and after the
# restart all come back from a restore. A terminated walsender is the
# same: keel reconnects. Each warning carries libpq's word on why the
# connection went (a crash, a shutdown, a refusal), on one line.
. "$(dirname "$0")/../lib.sh"
. "$KEEL_SOURCE_ROOT/tests/lib-pg.sh"
require_keel
pg_require

keel_init

# every warning of a lost connection says libpq's why after the what
# (the clean end of a shutdown, which has none, aside)
warnings_say_why()
{
	local bare
	bare=$(grep 'reconnecting in' "$1" | grep -v '(a shutdown)' |
		grep -vE '^keel: db: [^:]+: [^;]+; reconnecting in') || true
	[ -z "$bare" ] || fail "a reconnect warning without libpq's message: $bare"
}
pg_init origin
pg_start origin
conn=$(pg_conninfo origin)
pg_sql origin "CREATE TABLE orders (id int PRIMARY KEY, item text);
	INSERT INTO orders SELECT g, 'before-' || g FROM generate_series(1, 2000) g;"
expect_success keel db backup "$conn" --name shop >/dev/null

"$KEEL" db stream "$conn" --name shop >"$TEST_DIR/stream.out" 2>"$TEST_DIR/stream.err" &
stream=$!
BG_PIDS+=("$stream")

batch()
{
	pg_sql origin "INSERT INTO orders SELECT g, 'after-$1-' || g FROM generate_series($1 * 10000, $1 * 10000 + 999) g"
}
batch 1
pg_wait_stored "$stream" 20
# a restart with rows written right after it, while keel reconnects
pg_stop origin
sleep 0.5
pg_start origin
batch 2
pg_stop origin immediate
pg_start origin
batch 3
pg_wait_stored "$stream" 20
kill -0 "$stream" 2>/dev/null || fail "the stream ended at the restart: $(cat "$TEST_DIR/stream.err")"
grep -q 'reconnecting in' "$TEST_DIR/stream.err" ||
	fail "no reconnect warning: $(cat "$TEST_DIR/stream.err")"
warnings_say_why "$TEST_DIR/stream.err"
kill -TERM "$stream"
rc=0
wait "$stream" || rc=$?
cat "$TEST_DIR/stream.err" >&9
[ "$rc" = 0 ] || fail "db stream exited $rc on SIGTERM: $(cat "$TEST_DIR/stream.err")"
pg_sql origin "SELECT id, item FROM orders ORDER BY id" >"$TEST_DIR/rows-expected"
grep -q 'after-3-30999' "$TEST_DIR/rows-expected" || fail "batch 3 missing at the origin"

target=$TEST_DIR/pg/restored-data
expect_success keel db restore shop --target "$target" --latest >/dev/null
pg_register restored
pg_start restored "$target"
pg_sql restored "SELECT id, item FROM orders ORDER BY id" >"$TEST_DIR/rows-restored"
cmp "$TEST_DIR/rows-expected" "$TEST_DIR/rows-restored" ||
	fail "restored rows differ from the origin's (rows lost across the restart)"
pg_stop restored

# the walsender terminated (57P01, as an administrator would): keel reconnects
"$KEEL" db stream "$conn" --name shop >"$TEST_DIR/stream.out" 2>"$TEST_DIR/stream.err" &
stream=$!
BG_PIDS+=("$stream")
batch 4
pg_wait_stored "$stream" 20
n=$(pg_sql origin "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_replication")
[ "$n" = 1 ] || fail "expected one walsender to terminate, got $n"
batch 5
pg_wait_stored "$stream" 20
kill -TERM "$stream"
rc=0
wait "$stream" || rc=$?
[ "$rc" = 0 ] || fail "db stream exited $rc after its walsender was terminated"
grep -q 'reconnecting in' "$TEST_DIR/stream.err" ||
	fail "no reconnect warning after the termination: $(cat "$TEST_DIR/stream.err")"
warnings_say_why "$TEST_DIR/stream.err"
