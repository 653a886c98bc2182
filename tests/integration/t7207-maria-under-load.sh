#!/usr/bin/env bash
# What bench/maria.sh needs of keel on a busy MariaDB server:
# - keel db backup while the server writes: mariabackup's log copier sends
#   the redo log (ib_logfile0) in pieces between the other files' chunks
#   (always so when redo is left to copy at the start); keel spools it and
#   the backup restores with every committed row;
# - keel --json db stream: a "stored" line as each log record is durable,
#   naming where the stored binary log ends (what bench/maria.sh measures
#   the commit-to-stored lag with): a commit's position is reached, the
#   repository holds at least what a line says when it is printed, the
#   positions only grow, a rotation reports the old file whole, and
#   without --json no such line is printed.
. "$(dirname "$0")/../lib.sh"
. "$KEEL_SOURCE_ROOT/tests/lib-maria.sh"
require_keel
maria_require
has_python || skip_or_die "python3 is needed to read the JSON lines"

keel_init
# a redo log large enough that the rows below are not checkpointed before the backup
maria_init origin --innodb-log-file-size=128M --innodb-buffer-pool-size=256M
maria_start origin
uri=$(maria_uri origin)
data=$TEST_DIR/maria/origin/data
out=$TEST_DIR/stream.json

maria_sql origin "CREATE DATABASE shop; CREATE TABLE shop.orders (id int PRIMARY KEY, item text)"

# a base backup while a writer commits, after 48 MB of rows whose redo is
# not yet checkpointed
maria_sql origin "CREATE TABLE shop.bulk (id int AUTO_INCREMENT PRIMARY KEY, pad text);
	INSERT INTO shop.bulk (pad) SELECT repeat('x', 1000) FROM shop.seq_1_to_48000"
(
	for ((i = 1; ; i++)); do
		maria_sql origin "INSERT INTO shop.bulk (pad) VALUES (repeat('w', 1000))" || exit 0
	done
) &
writer=$!
BG_PIDS+=("$writer")
keel db backup "$uri" --name shop >"$TEST_DIR/backup.out" 2>&1 ||
	fail "db backup while the server writes: $(cat "$TEST_DIR/backup.out")"
kill "$writer"
wait "$writer" 2>/dev/null || true
n_backup=$(maria_sql origin "SELECT count(*) FROM shop.bulk")
maria_stop origin
maria_register copy
expect_success keel db restore shop --target "$TEST_DIR/copy" --latest >/dev/null
maria_start copy "$TEST_DIR/copy"
got=$(maria_sql copy "SELECT count(*) FROM shop.bulk")
[ "$got" -ge 48000 ] && [ "$got" -le "$n_backup" ] ||
	fail "the backup taken while the server wrote restores $got rows of shop.bulk (48000 to $n_backup expected)"
maria_stop copy
maria_start origin
"$KEEL" --json db stream "$uri" --name shop >"$out" 2>"$TEST_DIR/stream.err" &
stream=$!
BG_PIDS+=("$stream")

# the newest stored line's position, FILE:OFFSET ("" if none yet)
last_stored()
{
	python3 -c '
import json, sys
pos = ""
for l in open(sys.argv[1]):
    try:
        d = json.loads(l)
    except ValueError:
        continue
    if d.get("message_type") == "stored":
        pos = d["position"]
print(pos)' "$out"
}
# covers A B: position A is at or past position B
covers()
{
	local fa=${1%:*} oa=${1##*:} fb=${2%:*} ob=${2##*:}
	[[ $fa > $fb ]] || { [ "$fa" = "$fb" ] && [ "$oa" -ge "$ob" ]; }
}
# wait_line WANT: until a stored line covers WANT; then the repository must too
wait_line()
{
	local got i
	for ((i = 0; i < 150; i++)); do
		got=$(last_stored)
		if [ -n "$got" ] && covers "$got" "$1"; then
			local repo
			repo=$(keel db list --json | json_get log_position)
			covers "$repo" "$got" ||
				fail "db stream printed $got stored, the repository holds the log up to '$repo'"
			return 0
		fi
		kill -0 "$stream" 2>/dev/null || fail "the stream ended: $(cat "$TEST_DIR/stream.err")"
		sleep 0.1
	done
	fail "no stored line reached $1 in 15 s (last: '$got'): $(cat "$out")"
}
master() { maria_sql origin "SHOW MASTER STATUS" | awk '{print $1 ":" $2}'; }

for n in 1 2 3; do
	maria_sql origin "INSERT INTO shop.orders VALUES ($n, 'item-$n')"
	wait_line "$(master)"
done

# a rotation: the first file is reported stored whole, at its size on disk
first=$(master)
first=${first%:*}
maria_sql origin "FLUSH BINARY LOGS"
maria_sql origin "INSERT INTO shop.orders VALUES (4, 'item-4')"
wait_line "$(master)"
size=$(stat -c %s "$data/$first")
grep -q "\"position\":\"$first:$size\"" "$out" || fail "no stored line for $first whole ($size bytes): $(cat "$out")"

kill -TERM "$stream"
rc=0
wait "$stream" || rc=$?
[ "$rc" = 0 ] || fail "db stream exited $rc on SIGTERM: $(cat "$TEST_DIR/stream.err")"

# every line valid JSON with a time, the positions never going back, the
# summary last, its stop_position the last stored line's
python3 - "$out" <<'PY' || fail "unexpected stream output: $(cat "$out")"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert lines[-1]["message_type"] == "summary", lines[-1]
stored = [d for d in lines[:-1] if d["message_type"] == "stored"]
assert len(stored) == len(lines) - 1 and len(stored) >= 5, lines
key = lambda p: (p.rsplit(":", 1)[0], int(p.rsplit(":", 1)[1]))
for a, b in zip(stored, stored[1:]):
    assert key(a["position"]) <= key(b["position"]), (a, b)
    assert a["time"] <= b["time"] and a["time"].endswith("Z"), (a, b)
assert stored[-1]["position"] == lines[-1]["stop_position"], (stored[-1], lines[-1])
PY

# without --json: the plain summary only
maria_sql origin "INSERT INTO shop.orders VALUES (5, 'item-5')"
"$KEEL" db stream "$uri" --name shop >"$TEST_DIR/plain.out" 2>"$TEST_DIR/plain.err" &
stream=$!
BG_PIDS+=("$stream")
for ((i = 0; i < 150; i++)); do
	[ "$(keel db list --json | json_get log_position)" = "$(master)" ] && break
	sleep 0.1
done
kill -TERM "$stream"
wait "$stream" || fail "db stream failed: $(cat "$TEST_DIR/plain.err")"
! grep -q message_type "$TEST_DIR/plain.out" ||
	fail "db stream without --json printed JSON: $(cat "$TEST_DIR/plain.out")"
grep -q "^stream stopped: binary log up to $(master) stored" "$TEST_DIR/plain.out" ||
	fail "unexpected summary: $(cat "$TEST_DIR/plain.out")"
