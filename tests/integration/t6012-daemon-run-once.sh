#!/usr/bin/env bash
# keel daemon --run JOB and --drill JOB (what keel-job@.service runs): one
# run in the foreground, recorded where keel status reads it; exit 0 on
# success, non-zero when the run fails, 2 for a job that is not there.
. "$(dirname "$0")/../lib.sh"
require_keel
has_python || skip_or_die "python3 is needed to read JSON"

keel_init >/dev/null
SRC=$TEST_DIR/src
STATE=$TEST_DIR/state
CONF=$TEST_DIR/keel.conf
mkdir -p "$SRC"
echo data >"$SRC/a"
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
schedule = hourly
rpo-target = 1h
$1
[drill "files"]
schedule = daily 04:00
rto-target = 1h
scratch = $TEST_DIR/scratch
EOC
}
write_conf ""
# a drill before any snapshot: nothing to do, no failure
keel daemon --config "$CONF" --state-dir "$STATE" --drill files >"$TEST_DIR/out"
grep -qx "drill 'files': the job has no snapshot to drill yet" "$TEST_DIR/out" || fail "$(cat "$TEST_DIR/out")"
keel daemon --config "$CONF" --state-dir "$STATE" --run files >"$TEST_DIR/out"
grep -q "^job 'files': snapshot [0-9a-f]\{8\} saved in " "$TEST_DIR/out" || fail "$(cat "$TEST_DIR/out")"
keel daemon --config "$CONF" --state-dir "$STATE" --drill files >"$TEST_DIR/out"
grep -q "^drill 'files': snapshot [0-9a-f]\{8\} restored and verified in " "$TEST_DIR/out" ||
	fail "$(cat "$TEST_DIR/out")"
keel status --json --config "$CONF" --state-dir "$STATE" >"$TEST_DIR/status.json"
python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
assert j["last_run"]["success"] and j["rpo_ok"] and j["rto_ok"] and j["rto_seconds"] > 0, j
' "$TEST_DIR/status.json" || fail "status: $(cat "$TEST_DIR/status.json")"
expect_exit 2 keel daemon --config "$CONF" --state-dir "$STATE" --run nope 2>"$TEST_DIR/err"
grep -q "no \[job \"nope\"\]" "$TEST_DIR/err" || fail "$(cat "$TEST_DIR/err")"
expect_exit 2 keel daemon --config "$CONF" --state-dir "$STATE" --run files --drill files 2>/dev/null

# a failing run: non-zero, and recorded as failed
write_conf "before = exit 7"
expect_failure keel daemon --config "$CONF" --state-dir "$STATE" --run files 2>"$TEST_DIR/err"
grep -q "job 'files' failed: the before hook exited with 7" "$TEST_DIR/err" || fail "$(cat "$TEST_DIR/err")"
grep -q '"success": false' "$STATE/jobs/files.json" || fail "not recorded: $(cat "$STATE/jobs/files.json")"
