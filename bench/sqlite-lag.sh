#!/usr/bin/env bash
# Capture lag of keel db stream on a SQLite database (issue 19), next to a
# Litestream-style WAL copy (Litestream is not packaged in Debian, so this
# is our own: every second, copy what the WAL grew by into a shadow file
# and fsync it, as Litestream's default 1 s monitor interval does).
#
#     bench/sqlite-lag.sh [--keel PATH] [--rate N] [--seconds S]
#
# A writer commits N rows a second (one a transaction) for S seconds and
# logs each commit's time; both followers run at once on the same
# database. For every commit it reports, as p50/p99/max:
#   keel seen     when keel's commit clock saw it (the time restores use;
#                 below 0 when keel saw the frame before the writer's COMMIT
#                 returned, which waits for its fsync)
#   keel durable  when the log record holding it was in the repository
#   shipper       when a copy of it was in the shadow file, fsynced
# It measures and reports; it never fails because a figure is slow.
set -euo pipefail
cd "$(dirname "$0")/.."
keel=build/src/cli/keel rate=50 seconds=20
while [ $# -gt 0 ]; do
	case $1 in
	--keel) keel=$2; shift ;;
	--rate) rate=$2; shift ;;
	--seconds) seconds=$2; shift ;;
	*) echo "usage: $0 [--keel PATH] [--rate N] [--seconds S]" >&2; exit 2 ;;
	esac
	shift
done
keel=$(realpath "$keel")
work=$(mktemp -d "${TMPDIR:-/tmp}/keel-sqlite-lag.XXXXXX")
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
export KEEL_REPOSITORY=$work/repo KEEL_PASSWORD_FILE=$work/pw HOME=$work XDG_CACHE_HOME=$work/.cache
echo bench >"$work/pw"
chmod 600 "$work/pw"
"$keel" init --kdf-ops 1 --kdf-mem 8 >/dev/null
db=$work/app.db
sqlite3 "$db" 'PRAGMA journal_mode=WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);' >/dev/null

"$keel" db stream "sqlite://$db" --name app >/dev/null 2>"$work/stream.err" &
stream=$!
python3 - "$db-wal" "$work/shadow" "$work/ships.log" <<'PY' &
import os, sys, time
wal, shadow, log = sys.argv[1:4]
out = os.open(shadow, os.O_WRONLY | os.O_CREAT, 0o600)
done = 0
with open(log, "w") as f:
    while True:
        time.sleep(1)
        try:
            fd = os.open(wal, os.O_RDONLY)
        except FileNotFoundError:
            continue
        size = os.fstat(fd).st_size
        if size > done:
            data = os.pread(fd, size - done, done)
            os.pwrite(out, data, done)
            os.fsync(out)
            done += len(data)
        os.close(fd)
        f.write("%d\n" % time.time_ns())
        f.flush()
PY
shipper=$!
sleep 1
python3 - "$db" "$rate" "$seconds" "$work/commits.log" <<'PY'
import sqlite3, sys, time
db, rate, seconds, log = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
c = sqlite3.connect(db, isolation_level=None, timeout=30)
end = time.time() + seconds
with open(log, "w") as f:
    while time.time() < end:
        c.execute("BEGIN IMMEDIATE")
        c.execute("INSERT INTO t (v) VALUES (?)", ("x" * 200,))
        c.execute("COMMIT")
        f.write("%d\n" % time.time_ns())
        time.sleep(1 / rate)
PY
sleep 2
kill -TERM "$stream"
wait "$stream"
kill "$shipper"

# the snapshots in order, each with its end; the log records' commit lists
# (the base copy has none: its dump fails and is skipped)
"$keel" snapshots --json --tag db:app >"$work/snaps.json"
python3 - "$work/snaps.json" <<'PY' >"$work/records.txt"
import json, sys
for s in json.load(open(sys.argv[1])):
    print(s["id"], s["time_end"])
PY
: >"$work/seen.log"
while read -r id end; do
	if "$keel" dump "$id" /wal/commits >"$work/c" 2>/dev/null; then
		awk -v e="$end" '{ print $2, e }' "$work/c" >>"$work/seen.log"
	fi
done <"$work/records.txt"

python3 - "$work/commits.log" "$work/seen.log" "$work/ships.log" "$rate" "$seconds" <<'PY'
import calendar, sys
commits = [int(x) for x in open(sys.argv[1])]
seen = []
for line in open(sys.argv[2]):
    t, e = line.split()
    ns = calendar.timegm(tuple(int(x) for x in e[:10].split("-")) + tuple(int(x) for x in e[11:19].split(":"))) * 10**9 + int(e[20:29])
    seen.append((int(t), ns))
seen.sort()
ships = sorted(int(x) for x in open(sys.argv[3]))
n = min(len(commits), len(seen))
def stats(name, v):
    v = sorted(v)
    if not v:
        print("%-14s no data" % name)
        return
    p = lambda q: v[min(len(v) - 1, int(q * len(v)))] / 1e6
    print("%-14s p50 %8.1f ms   p99 %8.1f ms   max %8.1f ms" % (name, p(0.5), p(0.99), v[-1] / 1e6))
print("%d commits at %s/s for %s s (%d seen by keel)" % (len(commits), sys.argv[4], sys.argv[5], len(seen)))
stats("keel seen", [seen[i][0] - commits[i] for i in range(n)])
stats("keel durable", [seen[i][1] - commits[i] for i in range(n)])
import bisect
stats("shipper", [ships[bisect.bisect_left(ships, c)] - c for c in commits if bisect.bisect_left(ships, c) < len(ships)])
PY
