#!/usr/bin/env bash
# prune: frees what no snapshot uses, repacks partly used packs, keeps
# every byte the remaining snapshots need, and survives kill -9 at each of
# its steps (the next prune finishes the job).
. "$(dirname "$0")/../lib.sh"
require_keel
require_treecmp

SRC=$TEST_DIR/src
mkdir -p "$SRC/keep" "$SRC/gone"
for i in 1 2 3 4 5 6; do
	head -c $((700 << 10)) /dev/urandom >"$SRC/keep/k$i"
	head -c $((900 << 10)) /dev/urandom >"$SRC/gone/g$i"
done
keel_init --pack-size 1 --chunk-min 64K --chunk-avg 128K --chunk-max 512K

# data_bytes: bytes of the repository's packs
data_bytes()
{
	if [ "${KEEL_TEST_BACKEND:-local}" = s3 ]; then
		keel prune --dry-run --json | json_get bytes
	else
		dir_bytes "$KEEL_REPOSITORY/data"
	fi
}

# prune_cycle: two snapshots, the first forgotten; returns with the second
# (without gone/) as the only snapshot
prune_cycle()
{
	mkdir -p "$SRC/gone"
	for i in 1 2 3 4 5 6; do
		head -c $((900 << 10)) /dev/urandom >"$SRC/gone/g$i"
	done
	expect_success keel backup --no-progress "$SRC" >/dev/null
	first=$(snapshot_ids | tail -n 1)
	rm -rf "$TEST_DIR/last-gone"
	mv "$SRC/gone" "$TEST_DIR/last-gone"
	expect_success keel backup --no-progress "$SRC" >/dev/null
	drop_snapshot "$first"
}

prune_cycle
[ "$(snapshot_count)" = 1 ] || fail "expected one snapshot"
before=$(data_bytes)

# a dry run deletes nothing and says what it would free
expect_success keel prune --dry-run --json >"$TEST_DIR/dry.json"
[ "$(data_bytes)" = "$before" ] || fail "prune --dry-run changed the repository"
would=$(json_get bytes_unused <"$TEST_DIR/dry.json")
repack=$(json_get bytes_repack <"$TEST_DIR/dry.json")
[ $((would + repack)) -gt $((4 << 20)) ] || fail "dry run finds only $would + $repack bytes to free"

expect_success keel prune --json >"$TEST_DIR/prune.json"
after=$(data_bytes)
log "data: $before bytes before prune, $after after"
[ "$after" -lt $((before - (4 << 20))) ] || fail "prune freed too little: $before -> $after"
# what remains is about what keep/ needs (4.2 MB of random data) plus overhead
[ "$after" -lt $((6 << 20)) ] || fail "after prune $after bytes remain for 4.2 MB of data"
expect_success keel check --read-data >/dev/null
expect_success keel restore latest --target "$TEST_DIR/r1" >/dev/null
expect_success treecmp --ignore-atime "$SRC" "$(restored_root "$TEST_DIR/r1" "$SRC")"

# a second prune has nothing to do
expect_success keel prune --json >"$TEST_DIR/prune2.json"
[ "$(json_get packs_deleted <"$TEST_DIR/prune2.json")" = 0 ] || fail "second prune deleted packs"
[ "$(data_bytes)" = "$after" ] || fail "second prune changed the data"

# --max-unused 100% repacks nothing: partly used packs stay
prune_cycle
expect_success keel prune --max-unused 100% --json >"$TEST_DIR/prune3.json"
[ "$(json_get packs_repack <"$TEST_DIR/prune3.json")" = 0 ] || fail "--max-unused 100% repacked"
expect_success keel check --read-data >/dev/null
# the percentage parser check shares: tenths are fine, nonsense is a usage error
expect_success keel prune --dry-run --max-unused 5.5% >/dev/null
for bad in -1% 101% abc % 5%x 1e1 ""; do
	expect_exit 2 keel prune --dry-run --max-unused "$bad"
done

# an index file that its successor supersedes but that could not be deleted
# (storage under retention keeps it) must not bring pruned packs back: a
# backup of the same data again stores it anew (the index files are copied
# out and back one by one: objects, on S3)
prune_cycle
mkdir -p "$TEST_DIR/old-index"
repo_files index >"$TEST_DIR/old-index.list"
while IFS= read -r f; do
	repo_cp "$f" "$TEST_DIR/old-index/${f##*/}"
done <"$TEST_DIR/old-index.list"
expect_success keel prune >/dev/null
repo_files index >"$TEST_DIR/new-index.list"
grep -vxF -f "$TEST_DIR/new-index.list" "$TEST_DIR/old-index.list" >"$TEST_DIR/gone.list" ||
	fail "prune superseded no index file"
while IFS= read -r f; do
	repo_cp "$TEST_DIR/old-index/${f##*/}" "$f"
done <"$TEST_DIR/gone.list"
expect_success keel check --read-data >/dev/null
cp -a "$TEST_DIR/last-gone" "$SRC/gone"
expect_success keel backup --no-progress "$SRC" >/dev/null
expect_success keel check --read-data >/dev/null
expect_success keel restore latest --target "$TEST_DIR/r-superseded" >/dev/null
expect_success treecmp --ignore-atime "$SRC" "$(restored_root "$TEST_DIR/r-superseded" "$SRC")"
with_gone=$(snapshot_ids | tail -n 1)
rm -rf "$SRC/gone"
expect_success keel backup --no-progress "$SRC" >/dev/null
drop_snapshot "$with_gone"
expect_success keel prune >/dev/null
expect_success keel check --read-data >/dev/null

# kill -9 at every step of prune: the repository stays whole and the next
# prune completes
for point in prune-marked prune-repacked prune-condemned prune-reindexed prune-deleted-one; do
	prune_cycle
	start_paused "$point" "$KEEL" prune --no-progress
	kill -9 "$PAUSED_PID"
	wait "$PAUSED_PID" 2>/dev/null || true
	expect_success keel check --read-data >/dev/null
	expect_success keel restore latest --target "$TEST_DIR/r-$point" >/dev/null
	expect_success treecmp --ignore-atime "$SRC" "$(restored_root "$TEST_DIR/r-$point" "$SRC")"
	expect_success keel prune >/dev/null
	expect_success keel check --read-data >/dev/null
	left=$(data_bytes)
	[ "$left" -lt $((7 << 20)) ] || fail "after a prune killed at $point, $left bytes remain"
done
expect_success keel restore latest --target "$TEST_DIR/r-end" >/dev/null
expect_success treecmp --ignore-atime "$SRC" "$(restored_root "$TEST_DIR/r-end" "$SRC")"
