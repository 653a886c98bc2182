#!/usr/bin/env bash
# Restore drills (docs/DAEMON.md, "Drills"): the daemon restores the job's
# newest snapshot with restore --verify into a scratch directory, removes
# it, and records the time in the repository as a tagged snapshot; keel
# status on another machine (another state directory) reads the RTO from
# there, /metrics shows it; a drill-sample restores a share of the files
# and labels the time an estimate; a drill on a damaged repository fails,
# is recorded as failed and makes status exit 5.
. "$(dirname "$0")/../lib.sh"
require_keel
has_python || skip_or_die "python3 is needed to read JSON"
export KEEL_NO_CACHE=1

keel_init >/dev/null
SRC=$TEST_DIR/src
STATE=$TEST_DIR/state
CONF=$TEST_DIR/keel.conf
SCRATCH=$TEST_DIR/scratch
mkdir -p "$SRC"
for i in $(seq 10 29); do head -c 65536 /dev/urandom >"$SRC/f$i"; done
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

drills_logged()
{
	[ "$(grep -c "drill 'files': snapshot .* restored and verified" "$TEST_DIR/daemon.err")" -ge "$1" ]
}
write_conf()
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
[drill "files"]
schedule = every 1s
rto-target = 10m
scratch = $SCRATCH
$1
[http]
listen = 127.0.0.1:$PORT
EOC
}
# records FILE: the drill records of the repository (snapshots tagged keel-drill)
records()
{
	keel snapshots --json --tag keel-drill >"$1"
}

# ---- a drill of the whole snapshot ----
write_conf ""
keel daemon --check-config --config "$CONF" >"$TEST_DIR/out"
[ "$(cat "$TEST_DIR/out")" = "$CONF: valid: 1 repositories, 1 jobs, 1 drills" ] ||
	fail "unexpected --check-config output: $(cat "$TEST_DIR/out")"
start_daemon
poll drills_logged 2
metrics_ready()
{
	curl -sf "http://127.0.0.1:$PORT/metrics" >"$TEST_DIR/metrics" &&
		grep -q '^keel_rto_seconds{job="files",repository="main"} ' "$TEST_DIR/metrics"
}
poll metrics_ready
grep -qx 'keel_rto_target_seconds{job="files",repository="main"} 600.000' "$TEST_DIR/metrics" ||
	fail "no rto target in: $(cat "$TEST_DIR/metrics")"
grep -qx 'keel_last_drill_success{job="files",repository="main"} 1.000' "$TEST_DIR/metrics" ||
	fail "no drill success in: $(cat "$TEST_DIR/metrics")"
stop_daemon
[ -z "$(ls -A "$SCRATCH")" ] || fail "the scratch directory was not emptied: $(ls "$SCRATCH")"
[ -z "$(ls -A "$KEEL_REPOSITORY/locks")" ] || fail "a lock was left"

records "$TEST_DIR/records.json"
keel snapshots --json --host testhost --path "$SRC" >"$TEST_DIR/snaps.json"
grep -q '^keel_rto_seconds{job="files",repository="main"} ' "$TEST_DIR/metrics"
python3 - "$TEST_DIR/records.json" "$TEST_DIR/snaps.json" "$STATE/drills/files.json" "$TEST_DIR/metrics" <<'EOP' || fail "the drill records do not match"
import json, sys
recs = json.load(open(sys.argv[1]))
snaps = json.load(open(sys.argv[2]))
state = json.load(open(sys.argv[3]))
metrics = open(sys.argv[4]).read()
assert len(snaps) == 1, snaps  # the drills' records are not the job's snapshots
assert len(recs) >= 2, recs
for r in recs:
    assert r["hostname"] == "testhost" and r["paths"] == ["/keel-drill-files.json"], r
    tags = dict(t.split("=", 1) for t in r["tags"] if "=" in t)
    assert "keel-drill" in r["tags"], r
    assert tags["drill-job"] == "files" and tags["drill-of"] == snaps[0]["id"], r
    assert tags["drill-result"] == "ok" and tags["drill-sample"] == "100", r
    assert int(tags["drill-bytes"]) == 20 * 65536, r
last = dict(t.split("=", 1) for t in recs[-1]["tags"] if "=" in t)
# the RTO is the time of the restore the drill ran: within the drill's own duration
assert state["success"] and state["recorded"], state
assert abs(state["rto_seconds"] - float(last["drill-seconds"])) < 0.001, (state, last)
assert 0 < state["rto_seconds"] <= state["duration_seconds"], state
m = [l for l in metrics.splitlines() if l.startswith("keel_rto_seconds{")]
assert len(m) == 1 and float(m[0].split()[1]) > 0, m
EOP
# the record's file holds the same for people (keel dump)
keel dump "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[-1]["id"])' "$TEST_DIR/records.json")" \
	/keel-drill-files.json >"$TEST_DIR/record.json"
grep -q '"result": "ok"' "$TEST_DIR/record.json" || fail "record file: $(cat "$TEST_DIR/record.json")"

# another machine: an empty state directory, the RTO from the repository
keel status --json --config "$CONF" --state-dir "$TEST_DIR/other" >"$TEST_DIR/status.json" ||
	fail "status exited $?: $(cat "$TEST_DIR/status.json")"
python3 - "$TEST_DIR/status.json" "$TEST_DIR/records.json" <<'EOP' || fail "status: $(cat "$TEST_DIR/status.json")"
import json, sys
st = json.load(open(sys.argv[1]))
recs = json.load(open(sys.argv[2]))
j = st["jobs"][0]
last = dict(t.split("=", 1) for t in recs[-1]["tags"] if "=" in t)
assert st["targets_missed"] == 0 and j["rto_ok"] is True and j["rto_estimate"] is False, j
assert abs(j["rto_seconds"] - float(last["drill-seconds"])) < 0.0005, (j, last)
assert j["rto_target_seconds"] == 600 and j["last_drill"]["success"] is True, j
assert j["last_drill"]["snapshot_id"] == last["drill-of"], j
EOP
keel status --config "$CONF" --state-dir "$STATE" >"$TEST_DIR/status.txt"
grep -q '^files .* ok .* 10m  ok ' "$TEST_DIR/status.txt" || fail "status text: $(cat "$TEST_DIR/status.txt")"

# ---- a sample: 25% of the 20 files, the time scaled to the whole ----
write_conf "drill-sample = 25%"
start_daemon
poll grep -q "drill 'files': .* (an estimate from a sample)" "$TEST_DIR/daemon.err"
stop_daemon
records "$TEST_DIR/records.json"
python3 - "$TEST_DIR/records.json" <<'EOP' || fail "sample record: $(cat "$TEST_DIR/records.json")"
import json, sys
recs = json.load(open(sys.argv[1]))
last = dict(t.split("=", 1) for t in recs[-1]["tags"] if "=" in t)
assert last["drill-sample"] == "25" and int(last["drill-bytes"]) == 5 * 65536, last
assert len(recs) <= 10, len(recs)  # older records are forgotten
EOP
keel status --json --config "$CONF" --state-dir "$STATE" >"$TEST_DIR/status.json"
python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
assert j["rto_estimate"] is True and j["last_drill"]["sample_percent"] == 25, j
' "$TEST_DIR/status.json" || fail "status of a sample: $(cat "$TEST_DIR/status.json")"
keel status --config "$CONF" --state-dir "$STATE" >"$TEST_DIR/status.txt"
grep -q '^files .*s~ ' "$TEST_DIR/status.txt" || fail "no estimate mark: $(cat "$TEST_DIR/status.txt")"

# ---- a damaged repository: the drill fails, status exits 5 ----
write_conf ""
for p in $(repo_files data); do
	[ "$(file_size "$p")" -gt 65536 ] && flip_byte "$p" $(($(file_size "$p") / 2))
done
start_daemon
poll grep -q "drill 'files': the drill failed: keel restore --verify exited with 13" "$TEST_DIR/daemon.err"
stop_daemon
expect_exit 5 keel status --json --config "$CONF" --state-dir "$TEST_DIR/other" >"$TEST_DIR/status.json"
python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
assert j["rto_ok"] is False and j["last_drill"]["success"] is False, j
' "$TEST_DIR/status.json" || fail "status after a failed drill: $(cat "$TEST_DIR/status.json")"
[ -z "$(ls -A "$SCRATCH")" ] || fail "a failed drill left its scratch directory"
