# Helpers for the SQLite tests (t71xx): a writer process that commits rows
# at a known rate and logs each commit's time, and row comparisons.
#
#   sqlite_require            python3 with its sqlite3 module and the sqlite3 CLI, or skip
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

sqlite_require()
{
	command -v sqlite3 >/dev/null 2>&1 || skip_or_die "no sqlite3 command (apt-get install sqlite3)"
	python3 -c 'import sqlite3' 2>/dev/null || skip_or_die "no python3 with its sqlite3 module"
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
