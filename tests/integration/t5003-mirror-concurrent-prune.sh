#!/usr/bin/env bash
# keel mirror beside a prune of SOURCE (docs/MIRROR.md, "Order"): a run
# paused after it listed SOURCE's snapshots and index files, while forget
# and prune repack and delete, sees the index change under its listing of
# packs, copies no snapshot from that pass, lists again and ends complete,
# with DEST valid (check --read-data) and restoring the newest snapshot.
# --status --snapshots gives per host and paths the newest snapshot in
# each (with the password), and --limit-upload holds its rate.
. "$(dirname "$0")/../lib.sh"
require_keel
require_treecmp

SRC=$TEST_DIR/src
DEST=$TEST_DIR/dest
mkdir -p "$SRC"

keel_init >/dev/null
for i in 1 2 3; do
	head -c 100000 /dev/urandom >"$SRC/f$i.bin"
	expect_success keel backup --no-progress "$SRC"
	rm "$SRC/f$i.bin"
done
expect_success keel mirror --no-progress "$KEEL_REPOSITORY" "$DEST"
head -c 100000 /dev/urandom >"$SRC/f4.bin"
expect_success keel backup --no-progress "$SRC"

start_paused mirror-listed-index "$KEEL" mirror --json "$KEEL_REPOSITORY" "$DEST" >"$TEST_DIR/summary"
expect_success keel forget --keep-last 1 >/dev/null
expect_success keel prune --max-unused 0 >/dev/null
resume mirror-listed-index
expect_success wait_paused
json_check <"$TEST_DIR/summary"
[ "$(summary_get passes)" -ge 2 ] || fail "the run did not list again after the prune: $(summary_get passes) passes"
[ "$(summary_get complete)" = true ] || fail "the run is not complete"
expect_success keel -r "$DEST" check --read-data
expect_success keel -r "$DEST" restore --no-progress latest --target "$TEST_DIR/restored"
expect_success treecmp "$SRC" "$(restored_root "$TEST_DIR/restored" "$SRC")"
# everything SOURCE has is in DEST; what prune removed waits in quarantine
missing=$(cd "$KEEL_REPOSITORY" && find config keys snapshots index data -type f | while read -r f; do
	cmp -s "$f" "$DEST/$f" || echo "$f"
done)
[ -z "$missing" ] || fail "DEST lacks: $missing"
[ "$(summary_get quarantined)" -gt 0 ] || fail "nothing in quarantine after a prune"

# --status --snapshots (with the key): per host and paths, newest in each
expect_success keel backup --no-progress --host elsewhere "$SRC"
expect_success keel mirror --status --snapshots --json "$KEEL_REPOSITORY" "$DEST" >"$TEST_DIR/summary"
json_check <"$TEST_DIR/summary"
python3 - "$TEST_DIR/summary" "$(KEEL_REPOSITORY=$DEST snapshot_ids --host "$(hostname)" | tail -n1)" <<'EOS' ||
import json, sys
d = json.load(open(sys.argv[1]))
g = {x["host"]: x for x in d["groups"]}
assert len(g) == 2, g
other = g.pop("elsewhere")
assert other["newest_dest"] is None and other["lag_seconds"] is None, other
mine = list(g.values())[0]
assert mine["newest_dest"]["id"] == mine["newest_source"]["id"] == sys.argv[2], mine
assert mine["lag_seconds"] == 0, mine
EOS
	fail "--status --snapshots: $(cat "$TEST_DIR/summary")"
printf 'wrong\n' >"$TEST_DIR/wrong"
chmod 600 "$TEST_DIR/wrong"
expect_error 12 'wrong password' env KEEL_PASSWORD_FILE="$TEST_DIR/wrong" "$KEEL" mirror --status --snapshots "$KEEL_REPOSITORY" "$DEST"

# --limit-upload: a whole copy at 64 KiB/s takes its bytes' time (the
# bucket starts empty), whatever the connections
expect_success keel mirror --json --connections 4 --limit-upload 64k "$KEEL_REPOSITORY" "$TEST_DIR/slow" >"$TEST_DIR/summary"
bytes=$(summary_get copied_bytes)
ns=$(summary_get duration_ns)
[ "$bytes" -gt 80000 ] || fail "copied only $bytes bytes"
[ "$ns" -ge $((bytes * 1000000000 / 65536 * 9 / 10)) ] ||
	fail "$bytes bytes at 64 KiB/s took only $ns ns"
