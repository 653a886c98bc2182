# Helpers for the SQLite tests (t71xx): a writer process that commits rows
# at a known rate and logs each commit's time, and row comparisons.
#
#   sqlite_require            python3 with its sqlite3 module and the sqlite3 CLI, or skip
#   sqlite_test_init          keel and sqlite_require, a repository with its
#                             own cache, and $db: a new database (sqlite_new)
#   sqlite_new DB             a new database in WAL mode with the table t
#   writer_start DB N SECS    commit N rows (one per transaction) SECS apart
#                             in the background ($writer); each row's id,
#                             commit time and the time its transaction began
#                             (ns) go to $TEST_DIR/commits.log
#   writer_wait_rows N        until it has committed N rows
#   writer_wait               until it ends
#   rows DB [MAXID]           the table's rows (id|v), ordered, up to MAXID
#   commit_time ID            the logged commit time (ns) of row ID
#   moment_after K            a moment (ns) after commit K, before commit K+1
#   fmt_time NS               NS as --time takes it (UTC, nanoseconds)
#   sqlite_hold_open DB       an application's connection held open in the
#                             background ($holder; SIGTERM closes it): SQLite
#                             removes the WAL when the last connection closes
#   sqlite_list NAME FIELD    FIELD of NAME in `keel db list --json` (a list: its length)
#   stream_start DB NAME [JSON]
#                             keel db stream in the background ($stream),
#                             stdout/stderr to $TEST_DIR/stream.out/.err
#                             (with JSON: --json, stdout to $TEST_DIR/JSON)
#   stream_stop               SIGTERM, and it must exit 0
#   stream_while DB NAME N PAUSE [N PAUSE ...]
#                             a stream runs while the writer commits the
#                             batches (N rows PAUSE s apart), then stops
#   restore_at DB NAME K      restore NAME to the middle between the commits
#                             of rows K and K+1 ($TEST_DIR/at-K.db): it must
#                             pass integrity_check and hold exactly DB's first K rows
#   restore_latest DB NAME    restore NAME --latest ($TEST_DIR/latest.db): every row of DB

sqlite_require()
{
	command -v sqlite3 >/dev/null 2>&1 || skip_or_die "no sqlite3 command (apt-get install sqlite3)"
	python3 -c 'import sqlite3' 2>/dev/null || skip_or_die "no python3 with its sqlite3 module"
}

sqlite_test_init()
{
	require_keel
	sqlite_require
	export KEEL_CACHE_DIR=$TEST_DIR/cache
	keel_init
	db=$TEST_DIR/app.db
	sqlite_new "$db"
}

sqlite_new()
{
	sqlite3 "$1" 'PRAGMA journal_mode=WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);' >/dev/null
}

cat >"$TEST_DIR/writer.py" <<'PY'
import sqlite3, sys, time
db, n, pause, log = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
c = sqlite3.connect(db, isolation_level=None, timeout=30)
with open(log, "a") as f:
    for i in range(n):
        began = time.time_ns()
        c.execute("BEGIN IMMEDIATE")
        c.execute("INSERT INTO t (v) VALUES (?)", ("row %d %s" % (time.time_ns(), "p" * 300),))
        rid = c.execute("SELECT max(id) FROM t").fetchone()[0]
        c.execute("COMMIT")
        f.write("%d %d %d\n" % (rid, time.time_ns(), began))
        f.flush()
        if pause:
            time.sleep(pause)
PY

writer_start()
{
	python3 "$TEST_DIR/writer.py" "$1" "$2" "$3" "$TEST_DIR/commits.log" &
	writer=$!
	BG_PIDS+=("$writer")
}

# writer_wait_rows N: until the writer has committed N rows
writer_wait_rows()
{
	local i
	for ((i = 0; i < 300; i++)); do
		[ "$(wc -l <"$TEST_DIR/commits.log" 2>/dev/null || echo 0)" -lt "$1" ] || return 0
		sleep 0.1
	done
	fail "the writer did not commit $1 rows in 30 s"
}

writer_wait()
{
	wait "$writer" || fail "the writer failed"
}

rows()
{
	sqlite3 "$1" "SELECT id, v FROM t WHERE id <= ${2:-9223372036854775807} ORDER BY id"
}

commit_time()
{
	awk -v id="$1" '$1 == id { print $2 }' "$TEST_DIR/commits.log"
}

# moment_after K: the middle between commit K's logged time and the moment
# commit K+1's transaction began. keel times a commit by when it saw the
# frame or the WAL's mtime (which the kernel keeps coarsely: a jiffy early
# at most), so the middle leaves half the pause for either; the middle
# between the two logged times did not: a writer held up between COMMIT and
# logging its time logs K+1 after keel has already seen it
moment_after()
{
	local ct b
	ct=$(awk -v k="$1" '$1 == k { print $2 }' "$TEST_DIR/commits.log")
	b=$(awk -v k="$1" '$1 == k + 1 { print $3 }' "$TEST_DIR/commits.log")
	if [ -n "$b" ] && [ "$b" -gt "$ct" ]; then
		echo $((ct + (b - ct) / 2))
	else
		echo $((ct + 1))
	fi
}

fmt_time()
{
	python3 -c 'import sys, time; ns = int(sys.argv[1]); print(time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ns // 10**9)) + ".%09d+00" % (ns % 10**9))' "$1"
}

sqlite_hold_open()
{
	local i
	rm -f "$TEST_DIR/holder.ready"
	# SIGTERM closes the connection as an application's exit does
	python3 -c 'import signal, sqlite3, sys, time
c = sqlite3.connect(sys.argv[1]); c.execute("SELECT count(*) FROM sqlite_master").fetchall()
signal.signal(signal.SIGTERM, lambda *a: (c.close(), sys.exit(0)))
open(sys.argv[2], "w").close()
time.sleep(3600)' "$1" "$TEST_DIR/holder.ready" &
	holder=$!
	BG_PIDS+=("$holder")
	for ((i = 0; i < 300; i++)); do
		[ ! -e "$TEST_DIR/holder.ready" ] || return 0
		sleep 0.1
	done
	fail "the connection held open did not open in 30 s"
}

sqlite_list()
{
	keel db list --json | python3 -c 'import json, sys
v = [x for x in json.load(sys.stdin) if x["name"] == sys.argv[1]][0][sys.argv[2]]
print(len(v) if isinstance(v, list) else v)' "$1" "$2"
}

stream_start()
{
	if [ -n "${3:-}" ]; then
		"$KEEL" --json db stream "sqlite://$1" --name "$2" >"$TEST_DIR/$3" 2>"$TEST_DIR/stream.err" &
	else
		"$KEEL" db stream "sqlite://$1" --name "$2" >"$TEST_DIR/stream.out" 2>"$TEST_DIR/stream.err" &
	fi
	stream=$!
	BG_PIDS+=("$stream")
}

stream_stop()
{
	kill -TERM "$stream"
	wait "$stream" || fail "db stream failed: $(cat "$TEST_DIR/stream.err")"
}

stream_while()
{
	stream_start "$1" "$2"
	local db=$1
	shift 2
	sleep 0.5
	while [ $# -ge 2 ]; do
		writer_start "$db" "$1" "$2"
		writer_wait
		shift 2
	done
	sleep 1.5
	stream_stop
}

restore_at()
{
	local db=$1 name=$2 k=$3 t f=$TEST_DIR/at-$3.db
	t=$(fmt_time "$(moment_after "$k")")
	rm -f "$f"
	expect_success keel db restore "$name" --target "$f" --time "$t" >/dev/null
	[ "$(sqlite3 "$f" 'PRAGMA integrity_check')" = ok ] || fail "at-$k.db fails integrity_check"
	rows "$db" "$k" >"$TEST_DIR/want"
	rows "$f" >"$TEST_DIR/got"
	cmp -s "$TEST_DIR/want" "$TEST_DIR/got" ||
		fail "at-$k.db: $(wc -l <"$TEST_DIR/got") rows, expected the first $k"
}

restore_latest()
{
	local f=$TEST_DIR/latest.db
	rm -f "$f"
	expect_success keel db restore "$2" --target "$f" --latest >/dev/null
	rows "$1" >"$TEST_DIR/want"
	rows "$f" >"$TEST_DIR/got"
	cmp -s "$TEST_DIR/want" "$TEST_DIR/got" ||
		fail "restore --latest: $(wc -l <"$TEST_DIR/got") rows, expected every one"
}
