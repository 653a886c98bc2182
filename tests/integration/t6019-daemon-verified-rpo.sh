#!/usr/bin/env bash
# The RPO counts only verified restore points (docs/DAEMON.md, "Verified
# restore points"): a snapshot whose data is all there counts (and is
# remembered in the state directory), one whose pack is gone does not
# (status names the newest verified one, its RPO counts from there, the
# newer one is unverified and incomplete; /metrics agrees) until its
# packs are back; a db job's
# base backup and stream records are verified the same way. A reload
# that changes a streaming db job's conninfo restarts its stream with the
# new one; a reload that changes nothing leaves it running.
. "$(dirname "$0")/../lib.sh"
. "$KEEL_SOURCE_ROOT/tests/lib-pg.sh"
require_keel
pg_require
daemon_test_init
SRC=$TEST_DIR/src
mkdir -p "$SRC"
head -c 300000 /dev/urandom >"$SRC/a"
pg_init origin
pg_start origin
pg_sql origin "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 1000);"
PORT=$(free_port)

conf()
{
	cat >"$CONF" <<EOC
[repository "main"]
location = $KEEL_REPOSITORY
password-file = $KEEL_PASSWORD_FILE
[job "files"]
repository = main
paths = $SRC
host = testhost
schedule = every 1h
rpo-target = 1h
[job "shop"]
repository = main
kind = db
conninfo = $(pg_conninfo origin)$1
name = shop
stream = yes
schedule = every 1h
[http]
listen = 127.0.0.1:$PORT
EOC
}
conf ""
status()
{
	keel status --json --config "$CONF" --state-dir "$STATE" >"$TEST_DIR/status.json" || true
}
# field JOB KEY: a field of a job in the last status
field()
{
	python3 -c '
import json, sys
j = [j for j in json.load(open(sys.argv[1]))["jobs"] if j["job"] == sys.argv[2]][0]
print(j[sys.argv[3]])
' "$TEST_DIR/status.json" "$1" "$2"
}

# ---- a whole snapshot counts, and is remembered ----
expect_success keel daemon --run files --config "$CONF" --state-dir "$STATE"
first=$(keel snapshots --json --host testhost | json_get id | tail -n 1)
status
[ "$(field files verified_by)" = check ] || fail "not verified: $(cat "$TEST_DIR/status.json")"
[ "$(field files unverified_restore_points)" = 0 ] || fail "$(cat "$TEST_DIR/status.json")"
grep -qx "$first" "$STATE/verified/files" || fail "not remembered: $(cat "$STATE/verified/files")"

# ---- a newer snapshot whose pack is gone does not ----
sleep 2
touch "$TEST_DIR/marker"
head -c 300000 /dev/urandom >"$SRC/b"
expect_success keel daemon --run files --config "$CONF" --state-dir "$STATE"
second=$(keel snapshots --json --host testhost | json_get id | tail -n 1)
[ "$second" != "$first" ] || fail "no second snapshot"
# its new packs go aside (an interrupted upload, a lost file)
mkdir "$TEST_DIR/aside"
(cd "$KEEL_REPOSITORY" && find data -type f -newer "$TEST_DIR/marker" -print0 |
	xargs -0 -r cp --parents -t "$TEST_DIR/aside" &&
	find data -type f -newer "$TEST_DIR/marker" -delete)
[ -n "$(find "$TEST_DIR/aside" -type f)" ] || fail "the second snapshot wrote no pack"
status
python3 - "$TEST_DIR/status.json" <<'EOP' || fail "status with a snapshot lacking data: $(cat "$TEST_DIR/status.json")"
import json, sys
j = [j for j in json.load(open(sys.argv[1]))["jobs"] if j["job"] == "files"][0]
assert j["verified_by"] == "check", j
assert j["unverified_restore_points"] == 1 and j["incomplete_restore_points"] == 1, j
assert j["newest_verified"] < j["newest_snapshot"], j
# the RPO counts from the older, whole snapshot: at least the 2 s between them
assert j["rpo_seconds"] >= 2, j
EOP
grep -qx "$second" "$STATE/verified/files" && fail "the incomplete snapshot was remembered"

# ---- the packs back, the daemon: a whole third snapshot counts again; a db job with a stream ----
cp -a "$TEST_DIR/aside/data" "$KEEL_REPOSITORY/"
count() { grep -c "$1" "$TEST_DIR/daemon.err" || true; }
at_least() { [ "$(count "$1")" -ge "$2" ]; }
rm -f "$STATE/jobs/files.json" # runs at once
start_daemon
poll at_least "job 'files': snapshot .* saved" 1
poll at_least "job 'shop': snapshot .* saved" 1
poll at_least "stream 'shop': keel db stream started" 1
metrics_ok()
{
	curl -sf "http://127.0.0.1:$PORT/metrics" >"$TEST_DIR/metrics" &&
		grep -q '^keel_unverified_restore_points{job="files",repository="main"} 0.000$' "$TEST_DIR/metrics" &&
		grep -q '^keel_newest_verified_timestamp_seconds{job="shop",repository="main"} ' "$TEST_DIR/metrics"
}
poll metrics_ok
status
[ "$(field files verified_by)" = check ] && [ "$(field files unverified_restore_points)" = 0 ] ||
	fail "the third snapshot is not verified: $(cat "$TEST_DIR/status.json")"
[ "$(field shop verified_by)" = check ] || fail "shop: $(cat "$TEST_DIR/status.json")"

# ---- a reload that changes nothing keeps the stream; a new conninfo restarts it ----
stream_pid() { grep "stream 'shop': keel db stream started" "$TEST_DIR/daemon.err" | tail -n 1 | sed 's/.*(pid \([0-9]*\)).*/\1/'; }
# the stream may have been restarted once already (the daemon starts it beside
# the job's first base backup, and restarts a stream that exits): compare
# what happens across the reload only, with the stream settled
started_now() { count "stream 'shop': keel db stream started"; }
poll at_least "stream 'shop': keel db stream started" 1
sleep 2
before=$(started_now)
pid=$(stream_pid)
kill -0 "$pid" || fail "the stream is not running before the reload: $(cat "$TEST_DIR/daemon.err")"
kill -HUP "$DAEMON"
poll at_least "configuration reloaded" 1
sleep 1
[ "$(started_now)" = "$before" ] || fail "an unchanged stream was restarted: $(cat "$TEST_DIR/daemon.err")"
kill -0 "$pid" || fail "the stream is gone"
conf " connect_timeout=7"
kill -HUP "$DAEMON"
poll at_least "stream 'shop': its settings changed: restarting it" 1
poll at_least "stream 'shop': stopped (exit 0) for its new settings" 1
poll at_least "stream 'shop': keel db stream started" $((before + 1))
new=$(stream_pid)
[ "$new" != "$pid" ] || fail "the same stream runs"
tr '\0' ' ' <"/proc/$new/cmdline" | grep -q "connect_timeout=7" ||
	fail "the new stream runs without the new conninfo: $(tr '\0' ' ' <"/proc/$new/cmdline")"
# it streams: a new row reaches the repository
pg_sql origin "INSERT INTO t VALUES (1001); SELECT pg_switch_wal();" >/dev/null
lsn_num() { echo $(((16#${1%/*} << 32) + 16#${1#*/})); }
want=$(lsn_num "$(pg_sql origin "SELECT pg_current_wal_flush_lsn()")")
stored()
{
	local got
	keel db list --json >"$TEST_DIR/list.json" 2>/dev/null || return 1
	got=$(json_get wal_stop_lsn <"$TEST_DIR/list.json" | tail -n 1)
	[ -n "$got" ] && [ "$(lsn_num "$got")" -ge "$want" ]
}
poll stored
stop_daemon
