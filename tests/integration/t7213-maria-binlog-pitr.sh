#!/usr/bin/env bash
# Point in time from the streamed binary log: a base backup, keel db
# stream while rows are committed, DROP TABLE; db binlog-get writes the
# stored files and db restore replays them to several times and to a
# position: the rows are exactly those committed by then, and the table
# is back when restored to just before the DROP.
. "$(dirname "$0")/../lib.sh"
. "$KEEL_SOURCE_ROOT/tests/lib-maria.sh"
require_keel
maria_require
command -v mariabackup >/dev/null || skip_or_die "mariabackup is not installed (mariadb-backup)"

keel_init
maria_init src
maria_start src
uri=$(maria_uri src)
maria_sql src "CREATE DATABASE shop; CREATE TABLE shop.orders (id INT PRIMARY KEY, item VARCHAR(64)) ENGINE=InnoDB"
rows()
{
	maria_sql "$1" "SELECT id, item FROM shop.orders ORDER BY id"
}
batch() { maria_batch src "$1"; }
# stamp NAME: the time now, after the last commit's second and before the next's
stamp()
{
	rows src >"$TEST_DIR/want-$1"
	sleep 1.1
	date '+%Y-%m-%d %H:%M:%S' >"$TEST_DIR/t-$1"
	sleep 1.1
}

batch 20
expect_success keel db backup "$uri" --name shop >/dev/null
"$KEEL" db stream "$uri" --name shop >"$TEST_DIR/stream.out" 2>"$TEST_DIR/stream.err" &
stream=$!
BG_PIDS+=("$stream")
batch 30
stamp t1
batch 30
maria_sql src "FLUSH BINARY LOGS"
batch 30
rows src >"$TEST_DIR/want-pos"
pos=$(maria_sql src "SHOW MASTER STATUS" | awk '{print $1 ":" $2}')
batch 5
stamp t2
maria_sql src "DROP TABLE shop.orders"
for ((i = 0; i < 150; i++)); do
	want=$(maria_sql src "SHOW MASTER STATUS" | awk '{print $1 ":" $2}')
	[ "$(keel db list --json 2>/dev/null | json_get log_position || true)" = "$want" ] && break
	sleep 0.1
done
kill -TERM "$stream"
wait "$stream" || fail "db stream exited $? on SIGTERM: $(cat "$TEST_DIR/stream.err")"
grep -q "stored up to $want\|binary log up to $want" "$TEST_DIR/stream.out" ||
	fail "the stream did not store up to $want: $(cat "$TEST_DIR/stream.out")"

mkdir "$TEST_DIR/binlogs"
expect_success keel db binlog-get shop "$TEST_DIR/binlogs" >/dev/null
k=0
restore_check()
{
	local want=$1
	shift
	k=$((k + 1))
	maria_register "r$k"
	expect_success keel db restore shop --target "$TEST_DIR/r$k" "$@" >/dev/null
	maria_start "r$k" "$TEST_DIR/r$k"
	rows "r$k" >"$TEST_DIR/got-$k"
	cmp "$TEST_DIR/want-$want" "$TEST_DIR/got-$k" || fail "restore $*: rows differ from $want"
	maria_stop "r$k"
}
# from the files binlog-get wrote, and straight from the repository (the
# restore fetches the stored binary log itself)
restore_check t1 --time "$(cat "$TEST_DIR/t-t1")" --binlog-dir "$TEST_DIR/binlogs"
restore_check t2 --time "$(cat "$TEST_DIR/t-t2")" --binlog-dir "$TEST_DIR/binlogs"
restore_check t1 --time "$(cat "$TEST_DIR/t-t1")"
restore_check t2 --time "$(cat "$TEST_DIR/t-t2")"
restore_check pos --position "$pos"
keel db list >"$TEST_DIR/list"
grep -q '^  restorable: ' "$TEST_DIR/list" || fail "db list shows no restorable stretch: $(cat "$TEST_DIR/list")"
expect_success keel db check shop >/dev/null
