#!/usr/bin/env bash
# --time in the server's time zone: the server runs in Asia/Tokyo (TZ in
# mariadbd's environment), keel in America/New_York. The base backup
# records the server's zone; db restore --time T reads T there by default,
# in UTC with --time-zone UTC, in +09:00 with an offset, and as a moment
# with a 'Z' suffix: each restore holds exactly the rows committed by T.
# The binary log is MIXED, so an INSERT of a TIMESTAMP literal is replayed
# as a statement in zone SYSTEM: the temporary server must run in the
# server's zone too, or the restored values move by 14 hours. A zone that
# does not exist is refused (exit 2).
. "$(dirname "$0")/../lib.sh"
. "$KEEL_SOURCE_ROOT/tests/lib-maria.sh"
require_keel
maria_require
command -v mariabackup >/dev/null || skip_or_die "mariabackup is not installed (mariadb-backup)"
for z in Asia/Tokyo America/New_York; do
	[ -f "/usr/share/zoneinfo/$z" ] || skip_or_die "no zone file for $z (tzdata)"
done
export TZ=America/New_York
server_tz=Asia/Tokyo

keel_init
maria_init src --binlog-format=MIXED
TZ=$server_tz maria_start src
uri=$(maria_uri src)
[ "$(maria_sql src "SELECT TIMESTAMPDIFF(HOUR, UTC_TIMESTAMP(), NOW())")" = 9 ] ||
	fail "the server does not run in $server_tz"
maria_sql src "CREATE DATABASE shop; CREATE TABLE shop.orders (id INT PRIMARY KEY,
	item VARCHAR(64), ts TIMESTAMP NULL) ENGINE=InnoDB"
rows()
{
	maria_sql "$1" "SELECT id, item, ts, UNIX_TIMESTAMP(ts) FROM shop.orders ORDER BY id"
}
batch() { maria_batch src "$1" "'2026-03-01 12:00:00'"; }
# stamp NAME: the server's local time and UTC between the last commit and the next
stamp()
{
	rows src >"$TEST_DIR/want-$1"
	sleep 1.1
	maria_sql src "SELECT NOW(), UTC_TIMESTAMP()" >"$TEST_DIR/t-$1"
	sleep 1.1
}
local_t() { cut -f1 "$TEST_DIR/t-$1"; }
utc_t() { cut -f2 "$TEST_DIR/t-$1"; }

batch 10
expect_success keel db backup "$uri" --name shop >/dev/null
keel db list --json >"$TEST_DIR/list.json"
[ "$(json_get time_zone <"$TEST_DIR/list.json")" = "$server_tz" ] ||
	fail "the base backup does not record $server_tz: $(cat "$TEST_DIR/list.json")"
[ "$(json_get utc_offset <"$TEST_DIR/list.json")" = 32400 ] ||
	fail "the base backup does not record the offset +09:00"
"$KEEL" db stream "$uri" --name shop >"$TEST_DIR/stream.out" 2>"$TEST_DIR/stream.err" &
stream=$!
BG_PIDS+=("$stream")
batch 10
stamp t1
batch 10
stamp t2
batch 10
for ((i = 0; i < 150; i++)); do
	want=$(maria_sql src "SHOW MASTER STATUS" | awk '{print $1 ":" $2}')
	[ "$(keel db list --json 2>/dev/null | json_get log_position || true)" = "$want" ] && break
	sleep 0.1
done
kill -TERM "$stream"
wait "$stream" || fail "db stream exited $? on SIGTERM: $(cat "$TEST_DIR/stream.err")"

k=0
restore_check()
{
	local want=$1
	shift
	k=$((k + 1))
	maria_register "r$k"
	expect_success keel db restore shop --target "$TEST_DIR/r$k" "$@" >/dev/null
	TZ=$server_tz maria_start "r$k" "$TEST_DIR/r$k"
	rows "r$k" >"$TEST_DIR/got-$k"
	cmp "$TEST_DIR/want-$want" "$TEST_DIR/got-$k" ||
		fail "restore $*: rows differ from $want: $(diff "$TEST_DIR/want-$want" "$TEST_DIR/got-$k" | head -5)"
	maria_stop "r$k"
	rm -rf "${TEST_DIR:?}/r$k"
}
restore_check t1 --time "$(local_t t1)"
restore_check t2 --time "$(utc_t t2)" --time-zone UTC
restore_check t1 --time "$(local_t t1)" --time-zone +09:00
restore_check t2 --time "$(utc_t t2)Z"
restore_check t1 --time "$(local_t t1)" --time-zone "$server_tz"

expect_error 2 "unknown time zone 'Mars/Olympus_Mons'" \
	keel db restore shop --target "$TEST_DIR/x" --time "$(local_t t1)" --time-zone Mars/Olympus_Mons
expect_error 2 "unknown time zone '+25:00'" \
	keel db restore shop --target "$TEST_DIR/x" --time "$(local_t t1)" --time-zone +25:00
expect_error 2 "time-zone goes with --time" \
	keel db restore shop --target "$TEST_DIR/x" --latest --time-zone UTC
expect_error 2 "invalid --time" \
	keel db restore shop --target "$TEST_DIR/x" --time "$(local_t t1)+99"
[ ! -e "$TEST_DIR/x" ] || fail "a refused restore created its target"
