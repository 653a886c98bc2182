#!/usr/bin/env bash
# Alerts (docs/DAEMON.md): a webhook receiver started here counts the
# daemon's POSTs. Backups that stop (the repository made unwritable; the
# daemon runs as another user when we are root) raise exactly one alert,
# however many runs fail; writable again, exactly one recovery; a restart
# repeats neither; a drill on a damaged repository fails and alerts.
. "$(dirname "$0")/../lib.sh"
require_keel
has_python || skip_or_die "python3 is needed for the webhook receiver"
export KEEL_NO_CACHE=1

RUN=()
if [ "$(id -u)" = 0 ]; then
	RUN=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
	chmod 0755 "$TEST_DIR"
fi
keel_init >/dev/null
SRC=$TEST_DIR/src
STATE=$TEST_DIR/state
CONF=$TEST_DIR/keel.conf
HOOKS=$TEST_DIR/hooks.jsonl
mkdir -p "$SRC" "$STATE"
head -c 200000 /dev/urandom >"$SRC/a"
: >"$HOOKS"
[ "${#RUN[@]}" = 0 ] || chown -R 65534:65534 "$TEST_DIR"

python3 "$KEEL_SOURCE_ROOT/tests/webhook-receiver.py" "$HOOKS" "$TEST_DIR/hook-port" &
BG_PIDS+=($!)

poll test -s "$TEST_DIR/hook-port"
HOOK_PORT=$(cat "$TEST_DIR/hook-port")

cat >"$CONF" <<EOC
[repository "main"]
location = $KEEL_REPOSITORY
password-file = $KEEL_PASSWORD_FILE
[job "files"]
repository = main
paths = $SRC
host = testhost
schedule = every 2s
rpo-target = 1h
[drill "files"]
schedule = every 2s
rto-target = 10m
scratch = $TEST_DIR/scratch
[notify]
webhook = http://127.0.0.1:$HOOK_PORT/keel
EOC

start_daemon()
{
	: >"$TEST_DIR/daemon.err"
	# setpriv execs: $! is the daemon
	"${RUN[@]}" "$KEEL" daemon --config "$CONF" --state-dir "$STATE" 2>"$TEST_DIR/daemon.err" &
	DAEMON=$!
	BG_PIDS+=("$DAEMON")
}
count() { grep -c "$1" "$TEST_DIR/daemon.err" || true; }
at_least() { [ "$(count "$1")" -ge "$2" ]; }
alerts() { wc -l <"$HOOKS"; }
alerts_are() { [ "$(alerts)" = "$1" ]; }
# nth N FIELD: a field of the Nth alert (1-based)
nth()
{
	sed -n "${1}p" "$HOOKS" | python3 -c 'import json, sys; v = json.load(sys.stdin)[sys.argv[1]]; print(",".join(v) if isinstance(v, list) else v)' "$2"
}

start_daemon
poll at_least "job 'files': snapshot .* saved" 2
poll at_least "drill 'files': snapshot .* restored" 1
sleep 1
alerts_are 0 || fail "alerts while all is well: $(cat "$HOOKS")"

# ---- backups stop: one alert, however many runs fail ----
chmod -R a-w "$KEEL_REPOSITORY"
t0=$(date +%s)
poll alerts_are 1
t1=$(date +%s)
# within one schedule period of the first failed run (and some slack for a loaded machine)
[ $((t1 - t0)) -le 12 ] || fail "the alert took $((t1 - t0)) s"
[ "$(nth 1 event)" = problem ] && [ "$(nth 1 job)" = files ] || fail "alert 1: $(sed -n 1p "$HOOKS")"
[ "$(nth 1 reasons)" = "run failed" ] || fail "alert 1's reasons: $(sed -n 1p "$HOOKS")"
n=$(count "job 'files': the run failed")
poll at_least "job 'files': the run failed" $((n + 3))
alerts_are 1 || fail "more than one alert for one problem: $(cat "$HOOKS")"

# ---- writable again: one recovery ----
chmod -R u+w "$KEEL_REPOSITORY"
poll alerts_are 2
[ "$(nth 2 event)" = recovered ] || fail "alert 2: $(sed -n 2p "$HOOKS")"
n=$(count "job 'files': snapshot .* saved")
poll at_least "job 'files': snapshot .* saved" $((n + 2))
alerts_are 2 || fail "alerts after the recovery: $(cat "$HOOKS")"
stop_daemon

# ---- a restart repeats nothing ----
start_daemon
poll at_least "job 'files': snapshot .* saved" 2
sleep 1
alerts_are 2 || fail "alerts after a restart: $(cat "$HOOKS")"

# ---- a drill on a damaged repository fails and alerts ----
for p in $(repo_files data); do
	[ "$(file_size "$p")" -gt 100000 ] && flip_byte "$p" $(($(file_size "$p") / 2))
done
poll alerts_are 3
[ "$(nth 3 event)" = problem ] && [ "$(nth 3 reasons)" = "drill failed" ] ||
	fail "alert 3: $(sed -n 3p "$HOOKS")"
grep -q "drill 'files': the drill failed" "$TEST_DIR/daemon.err" || fail "no failed drill logged"
stop_daemon
