#!/usr/bin/env bash
# The daemon's status page and /api/status (docs/DAEMON.md): /api/status
# is keel status --json; the page, rendered by a real headless chromium,
# shows the job green, then red once the repository is unwritable (the
# daemon runs as another user when we are root, so file modes bind it),
# with no secret and no file content on it. Listening beyond loopback
# needs a token-file, and then every request the token.
. "$(dirname "$0")/../lib.sh"
require_keel
has_python || skip_or_die "python3 is needed to read JSON"
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
[ -n "$CHROMIUM" ] || skip_or_die "chromium is needed for the page test (scripts/install-deps.sh)"
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
mkdir -p "$SRC" "$STATE" "$TEST_DIR/home"
echo "CONTENT-OF-A-FILE-7f3a" >"$SRC/a"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
TOKEN=$TEST_DIR/token
printf 'abcdefghijklmnop0123\n' >"$TOKEN"
chmod 600 "$TOKEN"
[ "${#RUN[@]}" = 0 ] || chown -R 65534:65534 "$TEST_DIR"

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
schedule = every 1s
rpo-target = 1h
[drill "files"]
schedule = every 3s
rto-target = 10m
scratch = $TEST_DIR/scratch
[http]
listen = $1:$PORT
${2:+token-file = $2}
EOC
}
start_daemon()
{
	: >"$TEST_DIR/daemon.err"
	# env and setpriv exec: $! is the daemon
	env HOME="$TEST_DIR/home" "${RUN[@]}" "$KEEL" daemon --config "$CONF" --state-dir "$STATE" \
		2>"$TEST_DIR/daemon.err" &
	DAEMON=$!
	BG_PIDS+=("$DAEMON")
}
# page FILE: the page as headless chromium renders it (its DOM)
page()
{
	HOME=$TEST_DIR/chromium-home timeout 60 "$CHROMIUM" --headless --no-sandbox --disable-gpu \
		--dump-dom "http://127.0.0.1:$PORT/" >"$1" 2>/dev/null
}
page_shows()
{
	page "$TEST_DIR/page.html" && grep -q "$1" "$TEST_DIR/page.html"
}

# ---- beyond loopback: a token-file is required, then the token ----
write_conf 0.0.0.0
expect_exit 2 "${RUN[@]}" "$KEEL" daemon --config "$CONF" --state-dir "$STATE" 2>"$TEST_DIR/err"
grep -q "listening beyond loopback needs token-file" "$TEST_DIR/err" || fail "$(cat "$TEST_DIR/err")"
write_conf 0.0.0.0 "$TOKEN"
start_daemon
poll grep -q 'status on http://' "$TEST_DIR/daemon.err"
code()
{
	curl -s -o /dev/null -w '%{http_code}' "$@"
}
[ "$(code "http://127.0.0.1:$PORT/metrics")" = 401 ] || fail "no token: not 401"
[ "$(code -H 'Authorization: Bearer wrong-token-0000000' "http://127.0.0.1:$PORT/")" = 401 ] ||
	fail "a wrong token: not 401"
[ "$(code -H 'Authorization: Bearer abcdefghijklmnop0123' "http://127.0.0.1:$PORT/metrics")" = 200 ] ||
	fail "the token in a header: not 200"
[ "$(code "http://127.0.0.1:$PORT/?token=abcdefghijklmnop0123")" = 200 ] ||
	fail "the token in the query: not 200"
stop_daemon

# ---- loopback: the page and /api/status ----
write_conf 127.0.0.1
start_daemon
api_ready()
{
	curl -sf "http://127.0.0.1:$PORT/api/status" >"$TEST_DIR/api.json" &&
		python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
assert j["last_run"]["success"] and j["rto_seconds"] is not None and j["repository_size_bytes"]
' "$TEST_DIR/api.json" 2>/dev/null
}
poll api_ready
# /api/status is keel status --json: the same document, taken a moment earlier
"${RUN[@]}" "$KEEL" status --json --config "$CONF" --state-dir "$STATE" >"$TEST_DIR/status.json"
python3 - "$TEST_DIR/api.json" "$TEST_DIR/status.json" <<'EOP' || fail "/api/status differs: $(cat "$TEST_DIR/api.json")"
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert a.keys() == b.keys() and len(a["jobs"]) == len(b["jobs"]) == 1
ja, jb = a["jobs"][0], b["jobs"][0]
assert ja.keys() == jb.keys(), (ja.keys(), jb.keys())
for k in ("job", "repository", "rpo_target_seconds", "rto_target_seconds", "rpo_ok", "rto_ok"):
    assert ja[k] == jb[k], k
EOP
poll page_shows '<tr id="job-files" class="ok">'
grep -q '<polyline' "$TEST_DIR/page.html" || fail "no sparkline on the page"
grep -q 'id="drill-files" class="ok"' "$TEST_DIR/page.html" || fail "no drill on the page"
for secret in "$KEEL_PASSWORD_FILE" "$(cat "$KEEL_PASSWORD_FILE")" "$KEEL_REPOSITORY" CONTENT-OF-A-FILE; do
	! grep -qF "$secret" "$TEST_DIR/page.html" || fail "the page shows '$secret'"
done
grep -q 'http-equiv="refresh"' "$TEST_DIR/page.html" || fail "the page does not reload itself"
! grep -Eq '<(script|link)|src=' "$TEST_DIR/page.html" || fail "the page has external assets or scripts"

# ---- the repository becomes unwritable: the page turns red ----
chmod -R a-w "$KEEL_REPOSITORY"
poll page_shows '<tr id="job-files" class="bad">'
grep -q 'id="run-files" class="bad"' "$TEST_DIR/page.html" || fail "the failed run is not shown"
chmod -R u+w "$KEEL_REPOSITORY"
poll page_shows '<tr id="job-files" class="ok">'
stop_daemon
