#!/usr/bin/env bash
# The stored binary log's continuity: db check passes on an unbroken log
# and exits 24 naming the hole when a record is gone; positions are the
# server's (FILE:OFFSET, the base backup's GTID), never PostgreSQL LSNs; binlog-get refuses
# to write across the hole (24); a stream whose next file the server has
# purged while keel was down ends with exit 23 and says so.
. "$(dirname "$0")/../lib.sh"
. "$KEEL_SOURCE_ROOT/tests/lib-maria.sh"
require_keel
maria_require

keel_init
maria_init origin
maria_start origin
uri=$(maria_uri origin)
maria_sql origin "CREATE DATABASE shop; CREATE TABLE shop.t (id int PRIMARY KEY)"

# run_stream: stream until the repository holds the server's end, then SIGTERM
run_stream()
{
	local want got i
	"$KEEL" db stream "$uri" --name shop >"$TEST_DIR/stream.out" 2>"$TEST_DIR/stream.err" &
	stream=$!
	BG_PIDS+=("$stream")
	want=$(maria_sql origin "SHOW MASTER STATUS" | awk '{print $1 ":" $2}')
	for ((i = 0; i < 150; i++)); do
		# read again each time: the server writes a checkpoint event after a rotation
		want=$(maria_sql origin "SHOW MASTER STATUS" | awk '{print $1 ":" $2}')
		got=$(keel db list --json 2>/dev/null | json_get log_position || true)
		[ "$got" = "$want" ] && break
		kill -0 "$stream" 2>/dev/null || fail "the stream ended: $(cat "$TEST_DIR/stream.err")"
		sleep 0.1
	done
	[ "$got" = "$want" ] || fail "the stream did not reach $want"
	kill -TERM "$stream"
	wait "$stream" || fail "db stream exited $? on SIGTERM"
}

expect_success keel db backup "$uri" --name shop >/dev/null
base_gtid=$(keel db list --json | json_get gtid)
for i in 1 2 3; do
	maria_sql origin "INSERT INTO shop.t VALUES ($i); FLUSH BINARY LOGS"
	run_stream
done
end=$(maria_sql origin "SHOW MASTER STATUS" | awk '{print $1 ":" $2}')
expect_success keel db check shop >"$TEST_DIR/check.out"
grep -qx "binary log checked from bin.000001:0 to $end; oldest base backup at bin.000001:[0-9]*, GTID $base_gtid" \
	"$TEST_DIR/check.out" || fail "db check does not give the server's positions: $(cat "$TEST_DIR/check.out")"
! grep -q '[0-9A-F]/[0-9A-F]' "$TEST_DIR/check.out" || fail "db check prints LSNs for MariaDB"
expect_success keel db check shop --json >"$TEST_DIR/check.json"
[ "$(json_get log_to <"$TEST_DIR/check.json")" = "$end" ] &&
	[ "$(json_get log_from <"$TEST_DIR/check.json")" = bin.000001:0 ] &&
	[ "$(json_get base_gtid <"$TEST_DIR/check.json")" = "$base_gtid" ] &&
	[ "$(json_get engine <"$TEST_DIR/check.json")" = mariadb ] &&
	json_get base_position <"$TEST_DIR/check.json" | grep -qx 'bin.000001:[0-9]*' ||
	fail "db check --json does not give the server's positions: $(cat "$TEST_DIR/check.json")"

# a record of the middle file removed: a gap, named
mid=$(keel snapshots --json | python3 -c '
import json, sys
v = json.load(sys.stdin)
print(v[len(v) // 2]["id"])')
expect_success keel forget "$mid" >/dev/null
expect_error 24 'gap in the binary log from bin\.[0-9]*:[0-9]* to bin\.[0-9]*:[0-9]*$' keel db check shop
mkdir "$TEST_DIR/binlogs"
expect_error 24 'the binary log has a gap' keel db binlog-get shop "$TEST_DIR/binlogs"

# files purged while no stream ran: the next stream cannot go on
maria_sql origin "INSERT INTO shop.t VALUES (10); FLUSH BINARY LOGS; INSERT INTO shop.t VALUES (11); FLUSH BINARY LOGS"
last=$(maria_sql origin "SHOW MASTER STATUS" | awk '{print $1}')
maria_sql origin "PURGE BINARY LOGS TO '$last'"
expect_error 23 'purged' keel db stream "$uri" --name shop
