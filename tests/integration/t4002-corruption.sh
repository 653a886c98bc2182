#!/usr/bin/env bash
# Damage in the repository is found and named: a flipped byte in a pack, a
# missing pack, a tampered index file, a tampered snapshot. check exits 13,
# restore of damaged data exits 13, undamaged data still restores.
# With KEEL_TEST_BACKEND=s3 the same damage is done to the objects in the
# bucket (lib.sh's helpers take S3 locations too).
. "$(dirname "$0")/../lib.sh"
require_keel
require_treecmp
# The metadata cache (S3) would serve its intact copy of a snapshot that
# was damaged in the bucket: this test is about what a client without one
# finds (t2006 shows that check sees through the cache).
export KEEL_NO_CACHE=1

keel_init
mkdir -p "$TEST_DIR/v" "$TEST_DIR/o"
head -c $((3 << 20)) /dev/urandom >"$TEST_DIR/v/victim.bin"
printf 'small and fine\n' >"$TEST_DIR/v/fine.txt"
head -c $((1 << 20)) /dev/urandom >"$TEST_DIR/o/other.bin"

expect_success keel backup --tag victim --json "$TEST_DIR/v" >"$TEST_DIR/b1.json"
V=$(json_get snapshot_id <"$TEST_DIR/b1.json")
repo_files data >"$TEST_DIR/packs1"
repo_files snapshots >"$TEST_DIR/snaps1"
repo_files index >"$TEST_DIR/index1"
expect_success keel backup --tag other --json "$TEST_DIR/o" >"$TEST_DIR/b2.json"
O=$(json_get snapshot_id <"$TEST_DIR/b2.json")
[ -n "$V" ] && [ -n "$O" ] || fail "backup --json gave no snapshot ids"
expect_success keel check --read-data >/dev/null

# the largest pack of the first backup holds victim.bin's data
PACK=$(largest <"$TEST_DIR/packs1")
[ -n "$PACK" ] && [ "$(file_size "$PACK")" -gt $((1 << 20)) ] || fail "no pack with victim.bin's data"
repo_cp "$PACK" "$TEST_DIR/pack.orig"

# ---- one flipped byte in the middle of a pack -----------------------------
flip_byte "$PACK" $(($(file_size "$PACK") / 2))
rc=0
keel check --read-data >"$TEST_DIR/check.out" 2>&1 || rc=$?
cat "$TEST_DIR/check.out" >&2
[ "$rc" = 13 ] || fail "check --read-data on a damaged pack exited $rc, expected 13"
grep -q "${V:0:8}" "$TEST_DIR/check.out" || fail "check does not name the affected snapshot ${V:0:8}"
grep -q 'victim\.bin' "$TEST_DIR/check.out" || fail "check does not name the affected file victim.bin"
if grep -q "${O:0:8}" "$TEST_DIR/check.out"; then fail "check blames the undamaged snapshot"; fi

rc=0
keel restore "$V" --target "$TEST_DIR/r-victim" >/dev/null 2>"$TEST_DIR/err" || rc=$?
[ "$rc" = 13 ] || fail "restore of a damaged file exited $rc, expected 13"
grep -q 'victim\.bin' "$TEST_DIR/err" || fail "restore does not name victim.bin"
R=$(restored_root "$TEST_DIR/r-victim" "$TEST_DIR/v")
cmp "$TEST_DIR/v/fine.txt" "$R/fine.txt" || fail "restore of the damaged snapshot lost the undamaged fine.txt"
# the damaged file never stands under its own name with its own mtime
[ ! -e "$R/victim.bin" ] || fail "the damaged victim.bin is left under its own name"
[ -f "$R/victim.bin.keel-damaged" ] || fail "the damaged victim.bin is not kept as victim.bin.keel-damaged"
[ "$(stat -c %Y "$R/victim.bin.keel-damaged")" != "$(stat -c %Y "$TEST_DIR/v/victim.bin")" ] ||
	fail "victim.bin.keel-damaged has the original mtime"
grep -q "victim\.bin.*restored as 'victim\.bin\.keel-damaged'" "$TEST_DIR/err" ||
	fail "restore does not say where the damaged victim.bin went"
rc=0
keel restore "$V" --json --verify --target "$TEST_DIR/r-victim-v" >"$TEST_DIR/out.json" 2>"$TEST_DIR/err" || rc=$?
[ "$rc" = 13 ] || fail "restore --verify of a damaged file exited $rc, expected 13"
[ "$(json_get damaged_files <"$TEST_DIR/out.json")" = 1 ] || fail "--json summary does not count the damaged file"
grep -q '"path":"[^"]*victim\.bin".*keel-damaged' "$TEST_DIR/err" || fail "--json does not list the damaged file"
R=$(restored_root "$TEST_DIR/r-victim-v" "$TEST_DIR/v")
[ ! -e "$R/victim.bin" ] && [ -f "$R/victim.bin.keel-damaged" ] || fail "restore --verify left victim.bin under its name"
expect_exit 13 keel dump "$V" "$TEST_DIR/v/victim.bin" >/dev/null
expect_exit 13 keel restore "$V" --target "$TEST_DIR/r-victim2" --include victim.bin
expect_success keel restore "$O" --target "$TEST_DIR/r-other" >/dev/null
expect_success treecmp --ignore-atime "$TEST_DIR/o" "$(restored_root "$TEST_DIR/r-other" "$TEST_DIR/o")"
expect_success keel dump "$V" "$TEST_DIR/v/fine.txt" >/dev/null

# repaired: all is well again
repo_cp "$TEST_DIR/pack.orig" "$PACK"
expect_success keel check --read-data >/dev/null

# ---- the last bytes of a pack (header length), and a truncated pack --------
flip_byte "$PACK" $(($(file_size "$PACK") - 1))
expect_exit 13 keel check --read-data
repo_cp "$TEST_DIR/pack.orig" "$PACK"
repo_truncate $(($(file_size "$PACK") / 2)) "$PACK"
expect_exit 13 keel check --read-data
repo_cp "$TEST_DIR/pack.orig" "$PACK"

# ---- a missing pack: found without reading data ---------------------------
repo_mv "$PACK" "$TEST_DIR/pack.moved"
rc=0
keel check >"$TEST_DIR/check.out" 2>&1 || rc=$?
[ "$rc" = 13 ] || fail "check with a missing pack exited $rc, expected 13"
grep -q "${V:0:8}" "$TEST_DIR/check.out" || fail "check does not name the snapshot missing data"
expect_exit 13 keel restore "$V" --target "$TEST_DIR/r-missing"
repo_mv "$TEST_DIR/pack.moved" "$PACK"
expect_success keel check >/dev/null

# ---- a tampered index file ------------------------------------------------
IDX=$(head -n1 "$TEST_DIR/index1")
repo_cp "$IDX" "$TEST_DIR/index.orig"
flip_byte "$IDX" $(($(file_size "$IDX") / 2))
expect_exit 13 keel check
# Data whose index is damaged is still reachable through the pack headers.
expect_success keel restore "$O" --target "$TEST_DIR/r-other2" >/dev/null
repo_cp "$TEST_DIR/index.orig" "$IDX"
expect_success keel check --read-data >/dev/null

# ---- a tampered snapshot --------------------------------------------------
SNAP=$(head -n1 "$TEST_DIR/snaps1")
repo_cp "$SNAP" "$TEST_DIR/snap.orig"
flip_byte "$SNAP" $(($(file_size "$SNAP") / 2))
expect_exit 13 keel check
rc=0
keel restore "$V" --target "$TEST_DIR/r-tampered" >/dev/null 2>&1 || rc=$?
[ "$rc" = 13 ] || fail "restore of a tampered snapshot exited $rc, expected 13"
# the other snapshot is unaffected, and still listed (exit 13 for the
# damaged one is fine, listing nothing is not)
expect_success keel restore "$O" --target "$TEST_DIR/r-other3" >/dev/null
rc=0
keel snapshots >"$TEST_DIR/snapshots.out" 2>"$TEST_DIR/err" || rc=$?
[ "$rc" = 0 ] || [ "$rc" = 13 ] || fail "snapshots with one damaged snapshot exited $rc"
grep -q "${O:0:8}" "$TEST_DIR/snapshots.out" ||
	fail "one damaged snapshot hides the intact one from 'keel snapshots' (exit $rc: $(cat "$TEST_DIR/err"))"
grep -q "${V:0:8}" "$TEST_DIR/err" || fail "snapshots does not name the damaged snapshot ${V:0:8} on stderr"
# a snapshot file whose content does not match its name (swapped)
repo_cp "$TEST_DIR/snap.orig" "$SNAP"
expect_success keel check >/dev/null
OTHER_SNAP=$(repo_files snapshots | grep -vxF "$SNAP" | head -n1)
repo_cp "$SNAP" "$TEST_DIR/snap2.orig"
repo_cp "$OTHER_SNAP" "$SNAP"
expect_exit 13 keel check
repo_cp "$TEST_DIR/snap2.orig" "$SNAP"
expect_success keel check --read-data >/dev/null
