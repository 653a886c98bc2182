#!/usr/bin/env bash
# A repository's prune schedule ([repository] prune = SCHEDULE): the daemon
# runs keel prune on it beside the jobs' backups and forgets (new data each
# run, keep-last 1), records each prune, and the repository checks clean.
. "$(dirname "$0")/../lib.sh"
require_keel

keel_init >/dev/null
SRC=$TEST_DIR/src
STATE=$TEST_DIR/state
CONF=$TEST_DIR/keel.conf
mkdir -p "$SRC"
cat >"$CONF" <<EOC
[repository "main"]
location = $KEEL_REPOSITORY
password-file = $KEEL_PASSWORD_FILE
prune = every 2s
[job "files"]
repository = main
paths = $SRC
host = testhost
schedule = every 1s
keep-last = 1
before = head -c 100000 /dev/urandom >"$SRC/r"
EOC
keel daemon --check-config --config "$CONF" >/dev/null

prunes_done() { [ "$(grep -c "prune 'main': done in" "$TEST_DIR/daemon.err")" -ge "$1" ]; }
runs_done() { [ "$(grep -c "job 'files': snapshot .* saved" "$TEST_DIR/daemon.err")" -ge "$1" ]; }

"$KEEL" daemon --config "$CONF" --state-dir "$STATE" 2>"$TEST_DIR/daemon.err" &
DAEMON=$!
BG_PIDS+=("$DAEMON")
poll runs_done 4
# a prune that starts after the fourth run's forget
poll prunes_done $(($(grep -c "prune 'main': run started" "$TEST_DIR/daemon.err") + 1))
kill -TERM "$DAEMON"
rc=0
wait "$DAEMON" || rc=$?
[ "$rc" = 0 ] || fail "the daemon exited $rc: $(cat "$TEST_DIR/daemon.err")"
! grep -q "prune 'main': the run failed" "$TEST_DIR/daemon.err" || fail "a prune failed: $(cat "$TEST_DIR/daemon.err")"
grep -q '"success": true' "$STATE/prune/main.json" || fail "prune record: $(cat "$STATE/prune/main.json")"
[ -s "$STATE/prune/main.log" ] || fail "no prune log"
expect_success keel check --read-data >/dev/null
[ "$(keel snapshots --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 1 ] ||
	fail "keep-last 1 was not applied"
# the data of the forgotten snapshots is gone: far less than one copy per run
runs=$(grep -c "job 'files': snapshot .* saved" "$TEST_DIR/daemon.err")
bytes=$(dir_bytes "$KEEL_REPOSITORY/data")
[ "$bytes" -lt $(((runs - 1) * 100000)) ] || fail "$bytes bytes of data after $runs runs: nothing pruned"
