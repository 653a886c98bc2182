#!/usr/bin/env bash
# prune and repair with a directory split over several tree blobs (see
# t1010): prune must keep the continuation parts of every live tree, and
# repair must salvage a split directory, leaving out only the damaged file.
. "$(dirname "$0")/../lib.sh"
require_keel
require_treecmp

export KEEL_TEST_TREE_SPLIT=400
SRC=$TEST_DIR/src
mkdir -p "$SRC/big"
perl -e '
	chdir $ARGV[0] or die;
	for my $i (1 .. 3000) {
		open(my $f, ">", sprintf("f%05d", $i)) or die; print $f "x"; close $f;
	}
' "$SRC/big" || fail "cannot build the big directory"
keel_init

# ---- prune keeps the parts of the directory's newer tree -----------------
expect_success keel backup "$SRC" >/dev/null
echo changed >"$SRC/big/f00007"
echo changed >"$SRC/big/f02999"
expect_success keel backup "$SRC" >/dev/null
mapfile -t ids < <(snapshot_ids)
drop_snapshot "${ids[0]}"
expect_success keel prune >/dev/null
keel check --json >"$TEST_DIR/check.json" || fail "check after prune: $(grep -v '"summary"' "$TEST_DIR/check.json" | head -c 600)"
[ "$(json_get unused_blobs <"$TEST_DIR/check.json" | tail -1)" -eq 0 ] || fail "prune left unused blobs"
expect_success keel restore latest --target "$TEST_DIR/r1" >/dev/null
treecmp --ignore-atime "$SRC" "$(restored_root "$TEST_DIR/r1" "$SRC")" >"$TEST_DIR/treecmp.out" 2>&1 ||
	fail "restored tree differs: $(head -c 600 "$TEST_DIR/treecmp.out")"

# ---- repair salvages the split directory without the damaged file --------
head -c $((3 << 20)) /dev/urandom >"$SRC/big/f01234-victim"
repo_files data >"$TEST_DIR/before"
expect_success keel backup "$SRC" >/dev/null
touch -r "$SRC/big" "$TEST_DIR/big-mtime"
PACK=$(repo_files data | comm -13 "$TEST_DIR/before" - | largest)
flip_byte "$PACK" $(($(file_size "$PACK") / 2))
expect_exit 13 keel check --read-data >/dev/null 2>&1
expect_exit 3 keel repair snapshots --read-data --forget --json >"$TEST_DIR/rs.json"
grep -q '"message_type":"lost","path":"[^"]*/big/f01234-victim"' "$TEST_DIR/rs.json" ||
	fail "repair does not list the victim as lost: $(head -c 600 "$TEST_DIR/rs.json")"
[ "$(json_get files_lost <"$TEST_DIR/rs.json" | tail -n 1)" = 1 ] || fail "repair lost more than the victim"
rm "$SRC/big/f01234-victim"
touch -r "$TEST_DIR/big-mtime" "$SRC/big"
expect_success keel restore latest --target "$TEST_DIR/r2" >/dev/null
treecmp --ignore-atime "$SRC/big" "$(restored_root "$TEST_DIR/r2" "$SRC")/big" >"$TEST_DIR/treecmp.out" 2>&1 ||
	fail "the repaired snapshot differs: $(head -c 600 "$TEST_DIR/treecmp.out")"
expect_success keel prune >/dev/null
expect_success keel check --read-data >/dev/null
