#!/usr/bin/env bash
# keel daemon and keel status (docs/DAEMON.md): a configuration error names
# the file, line and key; --check-config validates; the daemon runs a job
# on an "every 1s" schedule (several snapshots, retention applied, excludes
# and the host kept) and serves GET /metrics, stops on SIGTERM with exit 0
# and no lock left, runs a missed calendar run once at start; status reports the RPO as the age of
# the newest snapshot and exits 5 when a target is missed; SIGHUP reloads.
. "$(dirname "$0")/../lib.sh"
require_keel

keel_init >/dev/null
SRC=$TEST_DIR/src
STATE=$TEST_DIR/state
CONF=$TEST_DIR/keel.conf
mkdir -p "$SRC"
echo data >"$SRC/a"
echo scratch >"$SRC/b.tmp"

count_snapshots()
{
	keel snapshots --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'
}
runs_logged()
{
	[ "$(grep -c "job 'files': snapshot .* saved" "$TEST_DIR/daemon.err")" -ge "$1" ]
}

write_conf()
{
	cat >"$CONF" <<EOC
# a test configuration
[repository "main"]
location = $KEEL_REPOSITORY
password-file = $KEEL_PASSWORD_FILE

[job "files"]
repository = main
paths = $SRC
exclude = *.tmp
host = testhost
schedule = $1   # fast
keep-last = 2
rpo-target = $2
${3:+[http]
listen = 127.0.0.1:$3}
EOC
}

# ---- configuration errors and --check-config ----
write_conf "every 1s" 1h
sed -i 's/^schedule = .*/schedule = often/' "$CONF"
expect_exit 2 keel daemon --check-config --config "$CONF" >"$TEST_DIR/out" 2>"$TEST_DIR/err"
[ "$(cat "$TEST_DIR/err")" = "keel: daemon: $CONF: line 11: schedule: 'often' is not a schedule (every 15m, hourly, daily 02:30, weekly sun 03:00, or a cron line)" ] ||
	fail "unexpected error: $(cat "$TEST_DIR/err")"
[ ! -s "$TEST_DIR/out" ] || fail "output on stdout for a bad configuration"
# the daemon refuses to start with it, and status too
expect_exit 2 keel daemon --config "$CONF" --state-dir "$STATE" 2>/dev/null
expect_exit 2 keel status --config "$CONF" --state-dir "$STATE" 2>/dev/null
expect_exit 2 keel daemon --check-config --config "$TEST_DIR/missing.conf" 2>/dev/null

write_conf "every 1s" 1h
keel daemon --check-config --config "$CONF" >"$TEST_DIR/out"
[ "$(cat "$TEST_DIR/out")" = "$CONF: valid: 1 repositories, 1 jobs, 0 drills" ] ||
	fail "unexpected --check-config output: $(cat "$TEST_DIR/out")"

# ---- the daemon runs the job, again and again, serves /metrics, and stops on SIGTERM ----
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
write_conf "every 1s" 1h "$PORT"
# the binary itself, not the keel function: $! must be the daemon
"$KEEL" daemon --config "$CONF" --state-dir "$STATE" 2>"$TEST_DIR/daemon.err" &
DAEMON=$!
BG_PIDS+=("$DAEMON")
poll runs_logged 3
metrics_ready()
{
	curl -sf "http://127.0.0.1:$PORT/metrics" >"$TEST_DIR/metrics" &&
		grep -q '^keel_rpo_seconds{job="files",repository="main"} ' "$TEST_DIR/metrics"
}
poll metrics_ready
grep -qx 'keel_rpo_target_seconds{job="files",repository="main"} 3600.000' "$TEST_DIR/metrics" ||
	fail "no rpo target in: $(cat "$TEST_DIR/metrics")"
grep -qx 'keel_last_run_success{job="files",repository="main"} 1.000' "$TEST_DIR/metrics" ||
	fail "no last run success in: $(cat "$TEST_DIR/metrics")"
grep -q '^# TYPE keel_last_success_timestamp_seconds gauge$' "$TEST_DIR/metrics" ||
	fail "no TYPE line in: $(cat "$TEST_DIR/metrics")"
awk '$1 == "keel_rpo_seconds{job=\"files\",repository=\"main\"}" { exit !($2 >= 0 && $2 < 20) }' \
	"$TEST_DIR/metrics" || fail "keel_rpo_seconds out of range: $(cat "$TEST_DIR/metrics")"
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/nothing")" = 404 ] ||
	fail "an unknown path is not 404"
kill -TERM "$DAEMON"
rc=0
wait "$DAEMON" || rc=$?
[ "$rc" = 0 ] || fail "the daemon exited $rc on SIGTERM"
tail -n 1 "$TEST_DIR/daemon.err" | grep -qx 'keel: daemon: stopped' || fail "no clean stop"
[ -z "$(ls -A "$KEEL_REPOSITORY/locks")" ] || fail "a lock was left: $(ls "$KEEL_REPOSITORY/locks")"
# keep-last = 2 was applied after each backup
[ "$(count_snapshots)" = 2 ] || fail "expected 2 snapshots after retention, got $(count_snapshots)"
keel snapshots --json | python3 -c '
import json, sys
for s in json.load(sys.stdin):
    assert s["hostname"] == "testhost", s
    assert s["paths"] == [sys.argv[1]], s
' "$SRC" || fail "snapshots have the wrong host or paths"
keel ls latest >"$TEST_DIR/ls"
grep -q '/a$' "$TEST_DIR/ls" || fail "a is not in the snapshot"
! grep -q 'b.tmp' "$TEST_DIR/ls" || fail "the excluded b.tmp is in the snapshot"
# the state file records the last run
python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
assert s["success"] is True and s["error"] is None, s
assert len(s["snapshot_id"]) == 64 and s["end"] >= s["start"] and s["last_success"] == s["end"], s
' "$STATE/jobs/files.json" || fail "bad state file: $(cat "$STATE/jobs/files.json")"
newest=$(keel snapshots --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["id"])')
grep -q "\"snapshot_id\": \"$newest\"" "$STATE/jobs/files.json" || fail "the state names another snapshot"

# ---- status: the RPO is the newest snapshot's age ----
# (the daemon is stopped: the snapshots do not change; the RPO status gives
# must lie between the newest snapshot's age before and after it ran)
keel snapshots --json >"$TEST_DIR/snaps.json"
t_before=$(date +%s.%N)
keel status --json --config "$CONF" --state-dir "$STATE" >"$TEST_DIR/status.json"
t_after=$(date +%s.%N)
python3 - "$TEST_DIR/status.json" "$TEST_DIR/snaps.json" "$t_before" "$t_after" <<'EOP' || fail "status does not match: $(cat "$TEST_DIR/status.json")"
import json, sys
from datetime import datetime, timezone
st = json.load(open(sys.argv[1]))
snaps = json.load(open(sys.argv[2]))
before, after = float(sys.argv[3]), float(sys.argv[4])
j = st["jobs"][0]
assert st["targets_missed"] == 0 and j["job"] == "files" and j["rpo_ok"] is True, st
t = snaps[-1]["time"]
sec = datetime.strptime(t[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
snap = sec + float("0." + t[20:-1])
assert before - snap - 0.001 <= j["rpo_seconds"] <= after - snap + 0.001, (before - snap, j["rpo_seconds"], after - snap)
assert j["rpo_target_seconds"] == 3600, j
assert j["last_run"]["success"] is True and j["last_run"]["snapshot_id"] == snaps[-1]["id"], j
EOP
keel status --config "$CONF" --state-dir "$STATE" >"$TEST_DIR/status.txt"
grep -q '^files .* ok .* 60m  ok ' "$TEST_DIR/status.txt" || fail "status text: $(cat "$TEST_DIR/status.txt")"

# ---- a missed target: exit 5 ----
write_conf "every 1s" 1s
poll_missed()
{
	local rc=0
	keel status --config "$CONF" --state-dir "$STATE" >"$TEST_DIR/status.txt" || rc=$?
	[ "$rc" = 5 ]
}
poll poll_missed
grep -q ' MISS ' "$TEST_DIR/status.txt" || fail "no MISS in: $(cat "$TEST_DIR/status.txt")"
expect_exit 5 keel status --json --config "$CONF" --state-dir "$STATE" >"$TEST_DIR/status.json"
python3 -c '
import json, sys
st = json.load(open(sys.argv[1]))
assert st["targets_missed"] == 1 and st["jobs"][0]["rpo_ok"] is False, st
' "$TEST_DIR/status.json" || fail "status --json of a miss: $(cat "$TEST_DIR/status.json")"

# ---- a calendar run missed while the daemon was down runs once at start ----
write_conf "daily 00:00" 1h
python3 -c '
import json, sys, time
p = sys.argv[1]
s = json.load(open(p))
s["start"] = s["end"] = int(time.time()) - 3 * 86400
json.dump(s, open(p, "w"))
' "$STATE/jobs/files.json"
: >"$TEST_DIR/daemon.err"
"$KEEL" daemon --config "$CONF" --state-dir "$STATE" 2>"$TEST_DIR/daemon.err" &
DAEMON=$!
BG_PIDS+=("$DAEMON")
poll runs_logged 1
kill -TERM "$DAEMON"
rc=0
wait "$DAEMON" || rc=$?
[ "$rc" = 0 ] || fail "the daemon exited $rc on SIGTERM"
[ "$(grep -c 'run started' "$TEST_DIR/daemon.err")" = 1 ] || fail "not exactly one run: $(cat "$TEST_DIR/daemon.err")"

# ---- SIGHUP picks up a changed schedule; a bad file keeps the old one ----
# (the last run was just now: "daily 00:00" is not due before midnight)
: >"$TEST_DIR/daemon.err"
"$KEEL" daemon --config "$CONF" --state-dir "$STATE" 2>"$TEST_DIR/daemon.err" &
DAEMON=$!
BG_PIDS+=("$DAEMON")
poll grep -q 'keel: daemon: started: 1 jobs' "$TEST_DIR/daemon.err"
write_conf "every 1s" 1h
kill -HUP "$DAEMON"
poll grep -q 'keel: daemon: configuration reloaded: 1 jobs' "$TEST_DIR/daemon.err"
poll runs_logged 1
echo 'bad line' >>"$CONF"
kill -HUP "$DAEMON"
poll grep -q "keel: daemon: keeping the old configuration: $CONF: line 15: expected 'name = value'" "$TEST_DIR/daemon.err"
poll runs_logged 2
kill -TERM "$DAEMON"
rc=0
wait "$DAEMON" || rc=$?
[ "$rc" = 0 ] || fail "the daemon exited $rc on SIGTERM"
[ -z "$(ls -A "$KEEL_REPOSITORY/locks")" ] || fail "a lock was left: $(ls "$KEEL_REPOSITORY/locks")"
