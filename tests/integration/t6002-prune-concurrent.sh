#!/usr/bin/env bash
# prune beside running backups (docs/FORMAT.md 7): a backup that read the
# index before a prune condemned a pack may still use that pack's blobs; the
# pack must then survive. Deterministic interleavings with pause points,
# then real processes racing.
. "$(dirname "$0")/../lib.sh"
require_keel
require_treecmp

SRC=$TEST_DIR/src
keel_init --pack-size 1 --chunk-min 64K --chunk-avg 128K --chunk-max 512K

# make_old: a snapshot of old/ only, then forgotten, so that old/'s blobs
# are unused; the files stay in $TEST_DIR/old for the next backup to bring back
make_old()
{
	rm -rf "$TEST_DIR/old" "$SRC"
	mkdir -p "$TEST_DIR/old" "$SRC"
	for i in 1 2 3 4; do
		head -c $((600 << 10)) /dev/urandom >"$TEST_DIR/old/o$i"
	done
	cp -a "$TEST_DIR/old" "$SRC/old"
	expect_success keel backup --no-progress "$SRC" >/dev/null
	drop_snapshot "$(snapshot_ids | tail -n 1)"
}

verify_latest()
{
	expect_success keel check --read-data >/dev/null
	rm -rf "$TEST_DIR/r"
	expect_success keel restore latest --target "$TEST_DIR/r" >/dev/null
	expect_success treecmp --ignore-atime "$SRC" "$(restored_root "$TEST_DIR/r" "$SRC")"
}

# A: the backup reads the index, then prune condemns old/'s packs; the
# backup then stores old/ again by reference. prune must wait for it, and
# the next prune must keep (rescue) those packs.
make_old
start_paused index-loaded "$KEEL" backup --no-progress "$SRC"
expect_success keel prune --json >"$TEST_DIR/a1.json"
[ "$(json_get packs_deleted <"$TEST_DIR/a1.json")" = 0 ] ||
	fail "prune deleted packs while a backup that read the index ran"
[ "$(json_get locks_waited_for <"$TEST_DIR/a1.json")" = 1 ] ||
	fail "prune did not wait for the running backup"
resume index-loaded
wait_paused || fail "the backup beside prune failed"
expect_success keel prune --json >"$TEST_DIR/a2.json"
[ "$(json_get packs_rescued <"$TEST_DIR/a2.json")" -gt 0 ] ||
	fail "the second prune rescued nothing"
verify_latest

# B: prune marks, a whole backup runs and ends (using old/'s blobs), then
# prune condemns: nobody holds a lock, so it deletes at once, but only after
# marking the new snapshot.
make_old
start_paused prune-marked "$KEEL" prune --json
pid_prune=$PAUSED_PID
mkdir -p "$SRC" && cp -a "$TEST_DIR/old/." "$SRC/old/"
expect_success keel backup --no-progress "$SRC" >/dev/null
resume prune-marked
wait "$pid_prune" || fail "prune failed"
verify_latest

# C: the same with real processes racing: backups of changing data while
# prunes run, then everything must be there.
mkdir -p "$SRC/live"
for round in 1 2 3 4 5 6; do
	for i in 1 2 3; do
		head -c $((300 << 10)) /dev/urandom >"$SRC/live/f$i"
	done
	cp -a "$TEST_DIR/old/o$((round % 4 + 1))" "$SRC/live/copy"
	"$KEEL" backup --no-progress --host a "$SRC" >/dev/null 2>"$TEST_DIR/ba.err" &
	pa=$!
	BG_PIDS+=("$pa")
	"$KEEL" prune >/dev/null 2>"$TEST_DIR/p.err" &
	pp=$!
	BG_PIDS+=("$pp")
	"$KEEL" backup --no-progress --host b "$SRC" >/dev/null 2>"$TEST_DIR/bb.err" || fail "backup b: $(cat "$TEST_DIR/bb.err")"
	wait "$pa" || fail "backup a failed: $(cat "$TEST_DIR/ba.err")"
	wait "$pp" || fail "prune failed: $(cat "$TEST_DIR/p.err")"
	# forget all but the newest two of each host
	for h in a b; do
		snapshot_ids --host "$h" | head -n -2 | while read -r id; do drop_snapshot "$id"; done
	done
done
expect_success keel prune >/dev/null
expect_success keel check --read-data >/dev/null
for h in a b; do
	for id in $(snapshot_ids --host "$h"); do
		rm -rf "$TEST_DIR/r"
		expect_success keel restore "$id" --target "$TEST_DIR/r" >/dev/null
	done
done
verify_latest
