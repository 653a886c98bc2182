#!/usr/bin/env bash
# Restore drills of command, image and mirror jobs (docs/DAEMON.md,
# "Drills"): a command job's output is restored and verified like a
# files job's snapshot; an image job's newest image snapshot is restored
# to a file with keel image restore --verify (every chunk read back); a
# mirror job's copy is restored from with the repository's password
# (its newest files snapshot that is no drill record). Each drill is
# recorded in the repository with the snapshot it restored and the time
# of the restore (the RTO, within the drill's own duration); a damaged
# copy fails the mirror's drill, which status reports (exit 5).
. "$(dirname "$0")/../lib.sh"
require_keel
daemon_test_init
SRC=$TEST_DIR/src
IMG=$TEST_DIR/disk.img
COPY=$TEST_DIR/copy
mkdir -p "$SRC"
for i in 1 2 3 4 5; do head -c 100000 /dev/urandom >"$SRC/f$i"; done
head -c 1000000 /dev/urandom >"$IMG"
truncate -s 4M "$IMG"

cat >"$CONF" <<EOC
[repository "main"]
location = $KEEL_REPOSITORY
password-file = $KEEL_PASSWORD_FILE
[job "files"]
repository = main
paths = $SRC
schedule = every 1h
[job "tar"]
repository = main
kind = command
command = tar -C $SRC -cf - .
stdin-filename = src.tar
schedule = every 1h
[job "disk"]
repository = main
kind = image
source = $IMG
schedule = every 1h
[job "copy"]
repository = main
kind = mirror
destination = $COPY
schedule = every 3s
[drill "tar"]
schedule = every 1s
rto-target = 10m
[drill "disk"]
schedule = every 1s
rto-target = 10m
[drill "copy"]
schedule = every 1s
rto-target = 10m
EOC
expect_success keel daemon --check-config --config "$CONF"

drilled() { grep -q "drill '$1': snapshot .* restored and verified" "$TEST_DIR/daemon.err"; }

start_daemon
poll drilled tar
poll drilled disk
poll drilled copy
stop_daemon
grep -q "the drill failed" "$TEST_DIR/daemon.err" && fail "a drill failed: $(cat "$TEST_DIR/daemon.err")"
[ -z "$(ls -A "$STATE/drill")" ] || fail "scratch left: $(ls "$STATE/drill")"

keel snapshots --json >"$TEST_DIR/snaps.json"
keel -r "$COPY" snapshots --json >"$TEST_DIR/copy.json"
python3 - "$TEST_DIR/snaps.json" "$TEST_DIR/copy.json" "$STATE" "$IMG" <<'EOP' || fail "the drill records do not match"
import json, sys
snaps, copy, state, img = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), sys.argv[3], sys.argv[4]
tags = lambda s: dict(t.split("=", 1) for t in s["tags"] if "=" in t)
rec = lambda s: "keel-drill" in s["tags"]
want = {
    "tar": [s for s in snaps if s["paths"] == ["/src.tar"]],
    "disk": [s for s in snaps if s["paths"] == [img]],
    "copy": [s for s in copy if s["kind"] == "files" and not rec(s)],
}
for job, cands in want.items():
    st = json.load(open("%s/drills/%s.json" % (state, job)))
    mine = [tags(s) for s in snaps if rec(s) and "drill-job=" + job in s["tags"]]
    assert mine and cands, (job, mine, cands)
    last = mine[-1]
    assert last["drill-result"] == "ok" and last["drill-of"] == st["snapshot_id"], (last, st)
    assert last["drill-of"] in [s["id"] for s in cands], (job, last, cands)
    assert st["success"] and st["recorded"], st
    assert abs(st["rto_seconds"] - float(last["drill-seconds"])) < 0.001, (st, last)
    assert 0 < st["rto_seconds"] <= st["duration_seconds"], st
# the image's drill restored all of it
d = [tags(s) for s in snaps if rec(s) and "drill-job=disk" in s["tags"]][-1]
assert int(d["drill-bytes"]) == [s for s in snaps if s["paths"] == [img]][-1]["summary"]["bytes_total"], d
EOP

# ---- a damaged copy: the mirror's drill fails, status exits 5 ----
for p in $(find "$COPY/data" -type f); do
	[ "$(file_size "$p")" -gt 65536 ] && flip_byte "$p" $(($(file_size "$p") / 2))
done
sed -i 's/^schedule = every 3s/schedule = every 1h/' "$CONF"
start_daemon
poll grep -q "drill 'copy': the drill failed: keel restore --verify exited with 13" "$TEST_DIR/daemon.err"
stop_daemon
expect_exit 5 keel status --json --config "$CONF" --state-dir "$STATE" >"$TEST_DIR/status.json"
python3 -c '
import json, sys
j = [j for j in json.load(open(sys.argv[1]))["jobs"] if j["job"] == "copy"][0]
assert j["rto_ok"] is False and j["last_drill"]["success"] is False, j
' "$TEST_DIR/status.json" || fail "status after a failed drill: $(cat "$TEST_DIR/status.json")"
