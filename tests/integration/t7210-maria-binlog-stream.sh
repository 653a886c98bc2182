#!/usr/bin/env bash
# keel db stream mariadb://: the binary log stored as it arrives, byte
# for byte (db binlog-get gives files equal to the server's), across a
# rotation (FLUSH BINARY LOGS), a server restart mid-stream and keel
# killed with SIGKILL and started again (no gap: db check passes); SIGTERM
# a clean stop (exit 0) with everything received stored; the server killed
# with SIGKILL while rows arrive: the stored log holds every row it kept.
. "$(dirname "$0")/../lib.sh"
. "$KEEL_SOURCE_ROOT/tests/lib-maria.sh"
require_keel
maria_require

keel_init
maria_init origin
maria_start origin
uri=$(maria_uri origin)
data=$TEST_DIR/maria/origin/data

maria_sql origin "CREATE DATABASE shop; CREATE TABLE shop.orders (id int PRIMARY KEY, item text)"

start_stream()
{
	"$KEEL" db stream "$uri" --name shop "$@" >"$TEST_DIR/stream.out" 2>"$TEST_DIR/stream.err" &
	stream=$!
	BG_PIDS+=("$stream")
}

# wait_stored: until the repository holds the binary log up to the server's end
wait_stored()
{
	local want got i
	want=$(maria_sql origin "SHOW MASTER STATUS" | awk '{print $1 ":" $2}')
	for ((i = 0; i < 150; i++)); do
		# read again each time: the server writes a checkpoint event after a rotation
		want=$(maria_sql origin "SHOW MASTER STATUS" | awk '{print $1 ":" $2}')
		got=$(keel db list --json 2>/dev/null | json_get log_position || true)
		[ "$got" = "$want" ] && return 0
		kill -0 "$stream" 2>/dev/null || fail "the stream ended: $(cat "$TEST_DIR/stream.err")"
		sleep 0.1
	done
	fail "the stream did not store the binary log up to $want in 15 s (it holds '$got')"
}

batch() { maria_batch origin "$1"; }

start_stream
batch 50
wait_stored

# rotation: the stream follows into the next file
maria_sql origin "FLUSH BINARY LOGS"
batch 50
maria_sql origin "FLUSH BINARY LOGS"
batch 20
wait_stored

# the server restarts mid-stream: the stream reconnects and goes on
maria_stop origin
maria_start origin
batch 30
wait_stored
grep -q 'reconnecting in' "$TEST_DIR/stream.err" || fail "no reconnect warning: $(cat "$TEST_DIR/stream.err")"

# keel killed: rows meanwhile, then a new stream resumes where the repository ends
kill -KILL "$stream"
wait "$stream" 2>/dev/null || true
batch 40
maria_sql origin "FLUSH BINARY LOGS"
batch 10
start_stream --json
wait_stored

# SIGTERM: exit 0, everything received stored
kill -TERM "$stream"
rc=0
wait "$stream" || rc=$?
[ "$rc" = 0 ] || fail "db stream exited $rc on SIGTERM: $(cat "$TEST_DIR/stream.err")"
want=$(maria_sql origin "SHOW MASTER STATUS" | awk '{print $1 ":" $2}')
[ "$(json_get stop_position <"$TEST_DIR/stream.out")" = "$want" ] ||
	fail "unexpected stream summary: $(cat "$TEST_DIR/stream.out") (server at $want)"

# the stored files are the server's, byte for byte
mkdir "$TEST_DIR/binlogs"
expect_success keel db binlog-get shop "$TEST_DIR/binlogs" >/dev/null
for f in $(maria_sql origin "SHOW BINARY LOGS" | awk '{print $1}'); do
	[ -f "$TEST_DIR/binlogs/$f" ] || fail "binlog-get wrote no $f"
	cmp "$data/$f" "$TEST_DIR/binlogs/$f" || fail "stored $f differs from the server's: $(cmp -l "$data/$f" "$TEST_DIR/binlogs/$f" | head -5; ls -l "$data" "$TEST_DIR/binlogs")"
done
[ "$(find "$TEST_DIR/binlogs" -type f | wc -l)" = "$(maria_sql origin "SHOW BINARY LOGS" | wc -l)" ] ||
	fail "binlog-get wrote other files: $(ls "$TEST_DIR/binlogs")"

# a replay of the stored files gives every row (mariadb-binlog reads them whole)
mariadb-binlog --no-defaults "$TEST_DIR"/binlogs/bin.* >"$TEST_DIR/replay.sql" ||
	fail "mariadb-binlog cannot read the stored files"

# no gap, every record readable; db list shows the log
expect_success keel db check shop >/dev/null
keel db list >"$TEST_DIR/list"
grep -q "^shop (mariadb, server id 1): 0 base backups$" "$TEST_DIR/list" ||
	fail "db list: $(cat "$TEST_DIR/list")"
grep -q "^  binary log: up to $want (stored [0-9]*s ago)$" "$TEST_DIR/list" ||
	fail "db list does not show the log's end: $(cat "$TEST_DIR/list")"
expect_success keel check --read-data >/dev/null

# the server killed (SIGKILL) while rows arrive: after its crash recovery the
# stream goes on, and the stored log holds every row the server kept (a
# transaction is committed after recovery exactly when its events are in
# the binary log, so the inserts stored must be the table's rows)
maria_sql origin "CREATE TABLE shop.crash (id int AUTO_INCREMENT PRIMARY KEY, v text)"
start_stream
wait_stored
(
	for i in $(seq 1 400); do
		maria_sql origin "INSERT INTO shop.crash (v) VALUES ('row $i')" 2>/dev/null || break
	done
) &
writer=$!
BG_PIDS+=("$writer")
sleep 1
maria_stop origin KILL
wait "$writer" 2>/dev/null || true
maria_start origin
maria_sql origin "INSERT INTO shop.crash (v) VALUES ('after the crash')"
wait_stored
kept=$(maria_sql origin "SELECT count(*) FROM shop.crash")
[ "$kept" -gt 1 ] || fail "no rows reached the server before it was killed"
kill -TERM "$stream"
wait "$stream" || fail "db stream failed after the server's crash: $(cat "$TEST_DIR/stream.err")"
mkdir "$TEST_DIR/binlogs2"
expect_success keel db binlog-get shop "$TEST_DIR/binlogs2" >/dev/null
stored=$(mariadb-binlog --no-defaults --base64-output=DECODE-ROWS -v "$TEST_DIR"/binlogs2/bin.* |
	grep -c '^### INSERT INTO `shop`.`crash`' || true)
log "the server killed: it kept $kept rows of shop.crash, the stored log has $stored inserts"
[ "$stored" = "$kept" ] || fail "the stored binary log holds $stored inserts into shop.crash, the server $kept rows"
expect_success keel db check shop >/dev/null
