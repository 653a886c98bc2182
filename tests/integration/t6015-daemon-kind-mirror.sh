#!/usr/bin/env bash
# A mirror job (docs/DAEMON.md, "Job kinds"): keel mirror of the
# repository to a second local repository every 2s, without the password;
# the copy restores; keel status gives the copy's RPO (from the copy's lag
# and the repository's newest snapshot), small while the mirror runs;
# once the mirror job stops running (its schedule moved away by a reload)
# while backups go on, the copy's RPO grows past its target and exactly
# one alert says so, however many statuses follow.
. "$(dirname "$0")/../lib.sh"
require_keel
has_python || skip_or_die "python3 is needed for the webhook receiver"
export KEEL_NO_CACHE=1

keel_init >/dev/null
SRC=$TEST_DIR/src
STATE=$TEST_DIR/state
CONF=$TEST_DIR/keel.conf
COPY=$TEST_DIR/copy
HOOKS=$TEST_DIR/hooks.jsonl
mkdir -p "$SRC" "$STATE"
head -c 200000 /dev/urandom >"$SRC/a"
: >"$HOOKS"

python3 "$KEEL_SOURCE_ROOT/tests/webhook-receiver.py" "$HOOKS" "$TEST_DIR/hook-port" &
BG_PIDS+=($!)
POLL_TRIES=900 # poll waits up to 45 s here
poll test -s "$TEST_DIR/hook-port"
HOOK_PORT=$(cat "$TEST_DIR/hook-port")

conf()
{
	cat >"$CONF" <<EOC
[repository "main"]
location = $KEEL_REPOSITORY
password-file = $KEEL_PASSWORD_FILE
[job "files"]
repository = main
paths = $SRC
schedule = every 2s
[job "copy"]
repository = main
kind = mirror
destination = $COPY
schedule = $1
rpo-target = 8s
[notify]
webhook = http://127.0.0.1:$HOOK_PORT/keel
EOC
}
count() { grep -c "$1" "$TEST_DIR/daemon.err" || true; }
at_least() { [ "$(count "$1")" -ge "$2" ]; }
alerts() { wc -l <"$HOOKS"; }
alerts_are() { [ "$(alerts)" = "$1" ]; }
copy_rpo()
{
	keel status --json --config "$CONF" --state-dir "$STATE" >"$TEST_DIR/status.json" || true
	python3 -c '
import json, sys
for j in json.load(open(sys.argv[1]))["jobs"]:
    if j["job"] == "copy":
        print(j["kind"], "none" if j["rpo_seconds"] is None else j["rpo_seconds"])
' "$TEST_DIR/status.json"
}

conf "every 2s"
expect_success keel daemon --check-config --config "$CONF"
"$KEEL" daemon --config "$CONF" --state-dir "$STATE" 2>"$TEST_DIR/daemon.err" &
DAEMON=$!
BG_PIDS+=("$DAEMON")
poll at_least "job 'copy': copy made" 2
poll at_least "job 'files': snapshot .* saved" 2
# the mirror's child never had the password: its argument vector has none
! grep -q -- "--password-file" "$STATE/jobs/copy.log" 2>/dev/null || fail "the mirror got a password file"

read -r kind rpo <<<"$(copy_rpo)"
[ "$kind" = mirror ] || fail "status: $(cat "$TEST_DIR/status.json")"
python3 -c "import sys; sys.exit(0 if float('$rpo') < 8 else 1)" ||
	fail "the copy's RPO is $rpo while the mirror runs: $(cat "$TEST_DIR/status.json")"
sleep 2
alerts_are 0 || fail "alerts while all is well: $(cat "$HOOKS")"

# the copy is a repository that restores with the password
id=$(keel -r "$COPY" snapshots --json | json_get id | tail -n 1)
[ -n "$id" ] || fail "the copy holds no snapshot"
expect_success keel -r "$COPY" restore "$id" --target "$TEST_DIR/restored"
cmp "$SRC/a" "$TEST_DIR/restored$SRC/a" || fail "the copy restores something else"

# ---- the mirror stops running, the backups go on: the copy's RPO grows, one alert ----
conf "daily 03:00"
kill -HUP "$DAEMON"
poll at_least "configuration reloaded" 1
sleep 2 # a mirror run under way at the reload ends
n=$(count "job 'copy': copy made")
read -r kind rpo1 <<<"$(copy_rpo)"
sleep 3
read -r kind rpo2 <<<"$(copy_rpo)"
python3 -c "import sys; sys.exit(0 if float('$rpo2') >= float('$rpo1') + 2 else 1)" ||
	fail "the copy's RPO did not grow: $rpo1, then $rpo2"
poll alerts_are 1
python3 - "$HOOKS" <<'EOP' || fail "the alert: $(cat "$HOOKS")"
import json, sys
a = json.loads(open(sys.argv[1]).readline())
assert a["event"] == "problem" and a["job"] == "copy", a
assert "RPO target missed" in a["reasons"], a
EOP
m=$(count "job 'files': snapshot .* saved")
poll at_least "job 'files': snapshot .* saved" $((m + 4))
alerts_are 1 || fail "more than one alert for one problem: $(cat "$HOOKS")"
[ "$(count "job 'copy': copy made")" = "$n" ] || fail "the mirror job still ran: $(cat "$TEST_DIR/daemon.err")"

# ---- it runs again: one recovery ----
conf "every 2s"
kill -HUP "$DAEMON"
poll alerts_are 2
python3 - "$HOOKS" <<'EOP' || fail "the recovery: $(cat "$HOOKS")"
import json, sys
a = json.loads(open(sys.argv[1]).readlines()[1])
assert a["event"] == "recovered" and a["job"] == "copy", a
EOP
kill -TERM "$DAEMON"
rc=0
wait "$DAEMON" || rc=$?
[ "$rc" = 0 ] || fail "the daemon exited $rc on SIGTERM: $(cat "$TEST_DIR/daemon.err")"
