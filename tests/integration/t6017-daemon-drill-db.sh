#!/usr/bin/env bash
# Restore drills of db jobs (docs/DAEMON.md, "Drills"): PostgreSQL 15 with
# a stream: the drill restores the database's newest restorable moment
# (keel db restore --latest) into the scratch directory, starts a
# temporary server on a private socket until it answers a query, stops
# it, removes everything, and records the time (restore to the answer)
# in the repository as the RTO, drill-of naming the newest base backup;
# SQLite: restored, integrity_check passed, recorded the same way; a
# damaged repository fails the SQLite drill and alerts (webhook);
# MariaDB 10.11: restored, a temporary mariadbd on a private socket until
# it answers SELECT 1, stopped, recorded the same way.
. "$(dirname "$0")/../lib.sh"
. "$KEEL_SOURCE_ROOT/tests/lib-pg.sh"
. "$KEEL_SOURCE_ROOT/tests/lib-sqlite.sh"
. "$KEEL_SOURCE_ROOT/tests/lib-maria.sh"
# both servers stop before lib.sh's cleanup (each library's trap replaces the other's)
trap 'rc=$?; maria_cleanup; pg_cleanup; set +e; (exit $rc); cleanup' EXIT
require_keel
pg_require
sqlite_require
maria_require
daemon_test_init
pg_init origin
pg_start origin
conn=$(pg_conninfo origin)
maria_init morigin
maria_start morigin
maria_sql morigin "CREATE DATABASE inv; CREATE TABLE inv.items (id int PRIMARY KEY, v text);
	INSERT INTO inv.items VALUES (1, 'a'), (2, 'b');"
HOOKS=$TEST_DIR/hooks.jsonl
DB=$TEST_DIR/app.db
: >"$HOOKS"
pg_sql origin "CREATE TABLE orders (id int PRIMARY KEY, item text);
	INSERT INTO orders SELECT g, 'o-' || g FROM generate_series(1, 5000) g;"
sqlite_new "$DB"
sqlite3 "$DB" "INSERT INTO t (v) SELECT 'row' FROM (SELECT 1 UNION SELECT 2 UNION SELECT 3);"

python3 "$KEEL_SOURCE_ROOT/tests/webhook-receiver.py" "$HOOKS" "$TEST_DIR/hook-port" &
BG_PIDS+=($!)
poll test -s "$TEST_DIR/hook-port"

cat >"$CONF" <<EOC
[repository "main"]
location = $KEEL_REPOSITORY
password-file = $KEEL_PASSWORD_FILE
[job "shop"]
repository = main
kind = db
conninfo = $conn
name = shop
stream = yes
schedule = every 1h
[drill "shop"]
schedule = every 2s
rto-target = 10m
[job "app"]
repository = main
kind = db
conninfo = sqlite://$DB
name = app
schedule = every 1h
[drill "app"]
schedule = every 1s
rto-target = 10m
[job "maria"]
repository = main
kind = db
conninfo = $(maria_uri morigin)
name = maria
schedule = every 1h
[drill "maria"]
schedule = every 2s
rto-target = 10m
[notify]
webhook = http://127.0.0.1:$(cat "$TEST_DIR/hook-port")/keel
EOC
expect_success keel daemon --check-config --config "$CONF"
drilled() { grep -q "drill '$1': snapshot .* restored and verified" "$TEST_DIR/daemon.err"; }

start_daemon
poll drilled app
poll drilled shop
# mariabackup of even a small server takes a while on a loaded machine
POLL_TRIES=6000 poll drilled maria
# rows written after the base backup reach the drill through the stream
pg_sql origin "INSERT INTO orders SELECT g, 'late' FROM generate_series(5001, 5100) g;"
shop_drills() { grep -c "drill 'shop': snapshot .* restored and verified" "$TEST_DIR/daemon.err"; }
more_drills() { [ "$(shop_drills)" -gt "$1" ]; }
poll more_drills "$(shop_drills)"
stop_daemon
# every drill passes, shop's first too, right after its base backup while
# the stream's first WAL arrives (db list reads the index files written
# since it loaded the index)
grep -q "the drill failed" "$TEST_DIR/daemon.err" &&
	fail "a drill failed: $(cat "$TEST_DIR/daemon.err")"
# the temporary mariadbd is stopped, its words in its own log (removed)
pgrep -f -- "--datadir=$STATE/drill" && fail "a drill's mariadbd still runs"
grep -q "mariadbd: ready for connections" "$STATE/drills/maria.log" &&
	fail "the server log went to the drill's log"
# the scratch directory, the private socket directory and the server are gone
[ -z "$(ls -A "$STATE/drill")" ] || fail "scratch left: $(ls "$STATE/drill")"
ls -d /tmp/keel-drill.* 2>/dev/null && fail "a socket directory was left"
grep -q "database system is shut down" "$STATE/drills/shop.log" &&
	fail "the server log went to the drill's log"

keel db list --json >"$TEST_DIR/list.json"
keel snapshots --json --tag keel-drill >"$TEST_DIR/records.json"
python3 - "$TEST_DIR/list.json" "$TEST_DIR/records.json" "$STATE/drills/shop.json" \
	"$STATE/drills/app.json" "$STATE/drills/maria.json" <<'EOP' ||
	fail "the drill records do not match"
import json, sys
dbs = {d["name"]: d for d in json.load(open(sys.argv[1]))}
recs = json.load(open(sys.argv[2]))
for name, path in (("shop", sys.argv[3]), ("app", sys.argv[4]), ("maria", sys.argv[5])):
    state = json.load(open(path))
    mine = [dict(t.split("=", 1) for t in r["tags"] if "=" in t) for r in recs
            if "drill-job=" + name in r["tags"]]
    assert mine, (name, recs)
    last = mine[-1]
    base = dbs[name]["base_backups"][-1]
    assert last["drill-of"] == base["id"], (last, base)
    assert last["drill-result"] == "ok" and last["drill-sample"] == "100", last
    assert int(last["drill-bytes"]) == base["bytes_total"], (last, base)
    # the RTO is the drill's restore (and for a server its start), within the drill
    assert state["success"] and state["recorded"], state
    assert abs(state["rto_seconds"] - float(last["drill-seconds"])) < 0.001, (state, last)
    assert 0 < state["rto_seconds"] <= state["duration_seconds"], state
EOP
keel status --json --config "$CONF" --state-dir "$TEST_DIR/other" >"$TEST_DIR/status.json" ||
	fail "status exited $?: $(cat "$TEST_DIR/status.json")"
python3 -c '
import json, sys
for j in json.load(open(sys.argv[1]))["jobs"]:
    assert j["rto_ok"] is True and j["last_drill"]["success"] is True, j
' "$TEST_DIR/status.json" || fail "status: $(cat "$TEST_DIR/status.json")"

# ---- a damaged repository: the SQLite drill fails and alerts ----
for p in $(repo_files data); do
	flip_byte "$p" $(($(file_size "$p") / 2))
done
start_daemon
poll grep -q "drill 'app': the drill failed: keel db restore --latest exited with" "$TEST_DIR/daemon.err"
alerted()
{
	python3 - "$HOOKS" <<'EOP'
import json, sys
sys.exit(not any(a.get("job") == "app" and a.get("event") == "problem"
                 and "drill failed" in a.get("reasons", [])
                 for a in (json.loads(l) for l in open(sys.argv[1]) if l.strip())))
EOP
}
poll alerted
stop_daemon
[ -z "$(ls -A "$STATE/drill")" ] || fail "a failed drill left its scratch directory"
