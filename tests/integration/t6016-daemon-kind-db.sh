#!/usr/bin/env bash
# A db job with stream = yes (docs/DAEMON.md, "Job kinds") against a real
# PostgreSQL 15: the daemon runs keel db backup on the schedule and keeps
# a keel db stream child running (started again after it exits: here its
# first start may find no base backup yet); rows written later reach the
# repository within seconds, so the database's RPO (now less its newest
# restorable moment) stays small while the base backup ages; SIGTERM to
# the daemon stops the stream child cleanly (exit 0, what arrived stored)
# and the daemon exits 0; a stream killed with SIGKILL is started again
# and resumes from its slot; a reload with stream = no stops it, one with
# stream = yes starts it again; a restore brings the last rows back.
. "$(dirname "$0")/../lib.sh"
. "$KEEL_SOURCE_ROOT/tests/lib-pg.sh"
require_keel
pg_require
has_python || skip_or_die "python3 is needed to read keel status --json"

keel_init >/dev/null
pg_init origin
pg_start origin
conn=$(pg_conninfo origin)
STATE=$TEST_DIR/state
CONF=$TEST_DIR/keel.conf
mkdir -p "$STATE"
# libpq reads passwords from here (none needed by this server: its line never matches)
echo "nohost:1:nodb:nouser:unused" >"$TEST_DIR/pgpass"
chmod 600 "$TEST_DIR/pgpass"

pg_sql origin "CREATE TABLE orders (id int PRIMARY KEY, item text);
	INSERT INTO orders SELECT g, 'before-' || g FROM generate_series(1, 2000) g;"

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$CONF" <<EOC
[repository "main"]
location = $KEEL_REPOSITORY
password-file = $KEEL_PASSWORD_FILE
[job "shop"]
repository = main
kind = db
conninfo = $conn
name = shop
pgpass-file = $TEST_DIR/pgpass
stream = yes
schedule = every 1h
rpo-target = 1h
[http]
listen = 127.0.0.1:$PORT
EOC
expect_success keel daemon --check-config --config "$CONF"

POLL_TRIES=1200 # poll waits up to 60 s here, and names the daemon's errors
POLL_LOG=$TEST_DIR/daemon.err
count() { grep -c "$1" "$TEST_DIR/daemon.err" || true; }
at_least() { [ "$(count "$1")" -ge "$2" ]; }
# stored: the repository holds the WAL up to the origin's last commit
stored()
{
	local want got
	want=$(lsn_num "$(pg_sql origin "SELECT pg_current_wal_flush_lsn()")")
	keel db list --json >"$TEST_DIR/list.json" 2>/dev/null || return 1
	got=$(json_get wal_stop_lsn <"$TEST_DIR/list.json" | tail -n 1)
	[ -n "$got" ] && [ "$(lsn_num "$got")" -ge "$want" ]
}
shop_rpo()
{
	keel status --json --config "$CONF" --state-dir "$STATE" >"$TEST_DIR/status.json" ||
		fail "keel status failed: $(cat "$TEST_DIR/status.json")"
	python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
assert j["kind"] == "db", j
print(j["rpo_seconds"])
' "$TEST_DIR/status.json"
}

"$KEEL" daemon --config "$CONF" --state-dir "$STATE" 2>"$TEST_DIR/daemon.err" &
DAEMON=$!
BG_PIDS+=("$DAEMON")
poll at_least "job 'shop': snapshot .* saved" 1
poll at_least "stream 'shop': keel db stream started" 1
# the password never reaches an argument vector: the conninfo has none, the
# pgpass file's name travels in the environment
for p in $(pgrep -P "$DAEMON"); do
	! tr '\0' ' ' <"/proc/$p/cmdline" | grep -q pgpass || fail "pgpass-file in argv"
done

pg_sql origin "INSERT INTO orders SELECT g, 'during-' || g FROM generate_series(10000, 10999) g"
poll stored
base_time=$(date +%s)
sleep 6
t_write=$(date +%s.%N)
pg_sql origin "INSERT INTO orders SELECT g, 'later-' || g FROM generate_series(20000, 20999) g;
	UPDATE orders SET item = 'changed' WHERE id % 100 = 0"
poll stored
# started beside the first base backup, which made its slot first: the
# stream never had to refuse a slot made after the backup's start (exit 23)
! grep -q "keel db stream exited with" "$TEST_DIR/daemon.err" ||
	fail "the stream exited: $(cat "$TEST_DIR/daemon.err")"
rpo=$(shop_rpo)
t_now=$(date +%s.%N)
# the base backup is more than 6 s older than the write; the database's
# newest restorable moment is the write's (stored by the stream), not its
python3 -c "import sys; sys.exit(0 if float('$rpo') <= $t_now - $t_write + 0.5 else 1)" ||
	fail "the database's RPO is $rpo s, the write was $t_write, now $t_now: $(cat "$TEST_DIR/status.json")"
[ $(($(date +%s) - base_time)) -ge 6 ] || fail "the clock went wrong"
# /metrics says so too, from the daemon's next status: the age of the
# newest restorable moment, well below the base backup's
metrics_small()
{
	local base_age=$(($(date +%s) - base_time))
	curl -sf --max-time 5 "http://127.0.0.1:$PORT/metrics" >"$TEST_DIR/metrics" &&
		awk -v max=$((base_age - 3)) '
			$1 == "keel_rpo_seconds{job=\"shop\",repository=\"main\"}" { found = 1; ok = $2 < max }
			END { exit !(found && ok) }' "$TEST_DIR/metrics"
}
for ((i = 0; i < 150; i++)); do
	metrics_small && break
	sleep 0.1
done
metrics_small || fail "keel_rpo_seconds is the base backup's age: $(grep rpo "$TEST_DIR/metrics")"

# ---- the stream child killed: started again after its backoff, nothing lost ----
stream_pid=$(pgrep -P "$DAEMON" -f "db stream" | sed -n 1p)
[ -n "$stream_pid" ] || fail "no keel db stream child: $(cat "$TEST_DIR/daemon.err")"
n=$(count "stream 'shop': keel db stream started")
kill -KILL "$stream_pid"
poll at_least "stream 'shop': keel db stream exited with 137" 1
poll at_least "stream 'shop': keel db stream started" $((n + 1))
pg_sql origin "INSERT INTO orders SELECT g, 'after-kill-' || g FROM generate_series(30000, 30999) g"
poll stored
pg_sql origin "SELECT id, item FROM orders ORDER BY id" >"$TEST_DIR/rows"

# ---- a reload with stream = no stops it (exit 0), stream = yes starts it again ----
sed -i 's/^stream = yes$/stream = no/' "$CONF"
kill -HUP "$DAEMON"
poll at_least "stream 'shop': stopped (exit 0)" 1
n=$(count "stream 'shop': keel db stream started")
sleep 2
[ "$(count "stream 'shop': keel db stream started")" = "$n" ] || fail "the stream started again"
sed -i 's/^stream = no$/stream = yes/' "$CONF"
kill -HUP "$DAEMON"
poll at_least "stream 'shop': keel db stream started" $((n + 1))
sleep 2 # connected and streaming

# ---- SIGTERM: the stream child stops cleanly, then the daemon ----
stream_pid=$(pgrep -P "$DAEMON" -f "db stream" | sed -n 1p)
[ -n "$stream_pid" ] || fail "no keel db stream child: $(cat "$TEST_DIR/daemon.err")"
kill -TERM "$DAEMON"
rc=0
wait "$DAEMON" || rc=$?
[ "$rc" = 0 ] || fail "the daemon exited $rc on SIGTERM: $(cat "$TEST_DIR/daemon.err")"
at_least "stream 'shop': stopped (exit 0)" 2 ||
	fail "the stream did not stop cleanly: $(cat "$TEST_DIR/daemon.err")"
! kill -0 "$stream_pid" 2>/dev/null || fail "the stream child outlived the daemon"
grep -q '^stream stopped: WAL up to' "$STATE/streams/shop.log" ||
	fail "no clean stop in the stream's log: $(cat "$STATE/streams/shop.log")"

# ---- the last rows come back ----
pg_stop origin
target=$TEST_DIR/pg/restored-data
expect_success keel db restore shop --target "$target" --latest >/dev/null
pg_register restored
pg_start restored "$target"
pg_sql restored "SELECT id, item FROM orders ORDER BY id" >"$TEST_DIR/rows-restored"
cmp "$TEST_DIR/rows" "$TEST_DIR/rows-restored" || fail "the restored rows differ"
pg_stop restored
