#!/usr/bin/env bash
# keel db stream of a SQLite database in WAL mode while a writer commits
# rows at a known rate: restores to several moments between commits give
# exactly the rows committed by then; DROP TABLE and a restore to just
# before it; keel's own checkpoint (the WAL starts over: a new generation
# followed without a gap); SIGKILL of keel mid-stream and a restart with
# no gap and no new base copy; SIGTERM a clean stop; a checkpoint that
# resets the WAL while keel is not running: a new base copy, the moments
# between refused, the others still right. Every restored file passes
# PRAGMA integrity_check (keel runs it, and so does the test).
. "$(dirname "$0")/../lib.sh"
. "$KEEL_SOURCE_ROOT/tests/lib-sqlite.sh"
require_keel
sqlite_require

keel_init
db=$TEST_DIR/app.db
sqlite_new "$db"

start_stream()
{
	"$KEEL" db stream "sqlite://$db" --name app >"$TEST_DIR/stream.out" 2>"$TEST_DIR/stream.err" &
	stream=$!
	BG_PIDS+=("$stream")
}

# wait_stored NS: until the newest restorable moment is at NS or later
wait_stored()
{
	local end=$((SECONDS + 20))
	while [ "$SECONDS" -lt "$end" ]; do
		keel db list --json >"$TEST_DIR/list.json" 2>/dev/null || true
		python3 - "$1" "$TEST_DIR/list.json" <<'PY' && return 0
import calendar, json, sys
want = int(sys.argv[1])
try:
    d = [x for x in json.load(open(sys.argv[2])) if x["name"] == "app"][0]
    t = d["newest_restorable"]
except (ValueError, IndexError, KeyError):
    sys.exit(1)
ns = calendar.timegm(tuple(int(x) for x in t[:10].split("-")) + tuple(int(x) for x in t[11:19].split(":"))) * 10**9 + int(t[20:29])
sys.exit(0 if ns >= want else 1)
PY
		kill -0 "$stream" 2>/dev/null || fail "the stream ended: $(cat "$TEST_DIR/stream.err")"
		sleep 0.1
	done
	fail "the stream did not store up to $1 in 20 s"
}

now_ns()
{
	python3 -c 'import time; print(time.time_ns())'
}

# restore_at NAME K: restore to a moment between commits K and K+1; the
# rows must be exactly 1..K (K = 0: before the first)
n_restored=0
restore_at()
{
	local name=$1 k=$2 t
	t=$(fmt_time "$(moment_after "$k")")
	expect_success keel db restore app --target "$TEST_DIR/$name.db" --time "$t" >/dev/null
	check_restored "$name" "$k"
}

check_restored()
{
	local f=$TEST_DIR/$1.db
	[ "$(sqlite3 "$f" 'PRAGMA integrity_check')" = ok ] || fail "$1.db fails integrity_check"
	rows "$db" "$2" >"$TEST_DIR/want"
	rows "$f" >"$TEST_DIR/got"
	cmp -s "$TEST_DIR/want" "$TEST_DIR/got" ||
		fail "$1.db: $(wc -l <"$TEST_DIR/got") rows, expected the first $2"
	n_restored=$((n_restored + 1))
}

bases()
{
	keel db list --json | python3 -c 'import json, sys; print(len([x for x in json.load(sys.stdin) if x["name"] == "app"][0]["base_backups"]))'
}

gaps()
{
	keel db list --json | python3 -c 'import json, sys; print(len([x for x in json.load(sys.stdin) if x["name"] == "app"][0]["gaps"]))'
}

wal_salt()
{
	od -An -tx1 -j16 -N8 "$db-wal" | tr -d ' \n'
}

# 1. a stream from the start (it takes the base copy), a writer at 10 commits a second
start_stream
sleep 0.5
writer_start "$db" 60 0.1
writer_wait
wait_stored "$(commit_time 60)"
for k in 1 7 30 59; do
	restore_at t1-$k "$k"
done
[ "$(bases)" = 1 ] || fail "expected one base copy"

# 2. DROP TABLE, and a restore to just before it
before=$(now_ns)
sleep 0.3
sqlite3 "$db" 'DROP TABLE t'
wait_stored "$before"
expect_success keel db restore app --target "$TEST_DIR/before-drop.db" --time "$(fmt_time "$before")" >/dev/null
[ "$(sqlite3 "$TEST_DIR/before-drop.db" 'PRAGMA integrity_check')" = ok ] || fail "before-drop.db fails integrity_check"
[ "$(sqlite3 "$TEST_DIR/before-drop.db" 'SELECT count(*) FROM t')" = 60 ] || fail "the table is not back"
expect_success keel db restore app --target "$TEST_DIR/after-drop.db" --latest >/dev/null
[ -z "$(sqlite3 "$TEST_DIR/after-drop.db" "SELECT name FROM sqlite_schema WHERE name = 't'")" ] ||
	fail "restore --latest still has the dropped table"
sqlite3 "$db" 'CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)'
: >"$TEST_DIR/commits.log"

# 3. bursts of 1,500 commits: keel checkpoints, the WAL starts over (a new
#    salt), and each new generation follows the one before without a gap.
#    Moments to restore to are between commits 0.1 s apart (in a burst,
#    commits come every few ms: closer than keel's clock can tell apart)
salt0=$(wal_salt)
writer_start "$db" 700 0
writer_wait
writer_start "$db" 10 0.1
writer_wait
writer_start "$db" 800 0
writer_wait
writer_start "$db" 10 0.1
writer_wait
wait_stored "$(commit_time 1520)"
[ "$(wal_salt)" != "$salt0" ] || fail "the WAL did not start over (keel did not checkpoint)"
[ "$(bases)" = 1 ] && [ "$(gaps)" = 0 ] || fail "a new base copy or a gap after keel's checkpoint"
restore_at t3-705 705
restore_at t3-1515 1515
expect_success keel db restore app --target "$TEST_DIR/t3-latest.db" --latest >/dev/null
check_restored t3-latest 1520

# 4. SIGKILL mid-stream while the writer commits, and a restart: no gap, no new base copy
writer_start "$db" 40 0.1
writer_wait_rows 1530
kill -KILL "$stream"
wait "$stream" 2>/dev/null || true
sleep 1
start_stream
writer_wait
wait_stored "$(commit_time 1560)"
[ "$(bases)" = 1 ] && [ "$(gaps)" = 0 ] || fail "a gap or a new base copy after SIGKILL: $(keel db list)"
restore_at t4-1555 1555
expect_success keel db restore app --target "$TEST_DIR/t4-latest.db" --latest >/dev/null
check_restored t4-latest 1560

# 5. SIGTERM: a clean stop, all stored
writer_start "$db" 10 0.1
writer_wait
kill -TERM "$stream"
rc=0
wait "$stream" || rc=$?
[ "$rc" = 0 ] || fail "db stream exited $rc on SIGTERM: $(cat "$TEST_DIR/stream.err")"
grep -q '^stream stopped: WAL up to [0-9A-F]*/[0-9A-F]* stored ([0-9]* records)$' "$TEST_DIR/stream.out" ||
	fail "unexpected stream summary: $(cat "$TEST_DIR/stream.out")"
expect_success keel db restore app --target "$TEST_DIR/t5.db" --latest >/dev/null
check_restored t5 1570

# 6. while keel is not running: rows, a checkpoint that resets the WAL, rows
writer_start "$db" 10 0.1
writer_wait
sqlite3 "$db" 'PRAGMA wal_checkpoint(TRUNCATE)' >/dev/null
writer_start "$db" 10 0.1
writer_wait
gap_t=$(commit_time 1585)
started=$(now_ns)
start_stream
wait_stored "$started"
[ "$(bases)" = 2 ] || fail "no new base copy after a reset while keel was not running"
[ "$(gaps)" = 1 ] || fail "the list does not show the gap: $(keel db list)"
keel db list >"$TEST_DIR/list"
grep -q '^  gap: ' "$TEST_DIR/list" || fail "db list: $(cat "$TEST_DIR/list")"
writer_start "$db" 10 0.1
writer_wait
wait_stored "$(commit_time 1600)"
expect_success keel db restore app --target "$TEST_DIR/t6-latest.db" --latest >/dev/null
check_restored t6-latest 1600
restore_at t6-1595 1595
restore_at t6-1565 1565
expect_error 14 "the target is not covered" \
	keel db restore app --target "$TEST_DIR/gap.db" --time "$(fmt_time "$gap_t")"
[ ! -e "$TEST_DIR/gap.db" ] || fail "a refused restore left a file"
expect_error 14 "not covered" keel db restore app --target "$TEST_DIR/f.db" --time '2999-01-01 00:00:00+00'
kill -TERM "$stream"
wait "$stream" || fail "db stream failed on SIGTERM"
log "$n_restored restored files compared"
expect_success keel check --read-data >/dev/null
