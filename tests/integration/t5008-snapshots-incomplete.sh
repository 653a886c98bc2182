#!/usr/bin/env bash
# keel snapshots marks a snapshot whose trees or data are not all in the
# repository (docs/COPY.md, "Snapshots whose data is not all there"): a
# mirror that lost packs, a copy made without the index files; --no-check
# and a whole repository show nothing; JSON says incomplete and how much;
# mirror --status --snapshots counts only a snapshot of DEST that is whole.
. "$(dirname "$0")/../lib.sh"
require_keel

SRC=$TEST_DIR/src
DEST=$TEST_DIR/dest
mkdir -p "$SRC"
printf 'one\n' >"$SRC/one.txt"
keel_init >/dev/null
expect_success keel backup --no-progress "$SRC"
packs() { (cd "$1/data" && find . -type f ! -name '*.tmp.*' | sort); }
packs "$KEEL_REPOSITORY" >"$TEST_DIR/packs1"
head -c 500000 /dev/urandom >"$SRC/two.bin"
expect_success keel backup --no-progress "$SRC"
first=$(keel snapshots --json | json_get id | sed -n 1p)
second=$(keel snapshots --json | json_get id | tail -1)

# a whole repository: nothing marked, nothing said
keel snapshots --check >"$TEST_DIR/out" 2>"$TEST_DIR/err" || fail "snapshots failed"
! grep -q "(incomplete" "$TEST_DIR/out" || fail "a whole repository marked incomplete"
[ ! -s "$TEST_DIR/err" ] || fail "snapshots warned: $(cat "$TEST_DIR/err")"

# a mirror that lost the second backup's packs
expect_success keel mirror --no-progress "$KEEL_REPOSITORY" "$DEST"
comm -13 "$TEST_DIR/packs1" <(packs "$DEST") >"$TEST_DIR/new-packs"
[ -s "$TEST_DIR/new-packs" ] || fail "the second backup wrote no pack"
(cd "$DEST/data" && xargs rm -f) <"$TEST_DIR/new-packs"
keel -r "$DEST" snapshots --check >"$TEST_DIR/out" 2>"$TEST_DIR/err" || fail "snapshots failed"
cat "$TEST_DIR/out" "$TEST_DIR/err" >&9
grep "^${second:0:8} .*(incomplete: [0-9]* blobs\? missing)" "$TEST_DIR/out" ||
	fail "the second snapshot is not marked"
! grep "^${first:0:8} .*(incomplete" "$TEST_DIR/out" || fail "the first snapshot is marked"
grep -q "1 snapshot refers to data that is not in the repository" "$TEST_DIR/err" ||
	fail "no warning"
keel -r "$DEST" snapshots --check --json >"$TEST_DIR/json"
json_check <"$TEST_DIR/json"
[ "$(json_get incomplete <"$TEST_DIR/json")" = True ] ||
	[ "$(json_get incomplete <"$TEST_DIR/json")" = true ] || fail "JSON: not incomplete"
[ "$(json_get missing_blobs <"$TEST_DIR/json")" -ge 1 ] || fail "JSON: nothing missing"
keel -r "$DEST" snapshots --no-check >"$TEST_DIR/out" 2>"$TEST_DIR/err"
! grep -q "(incomplete" "$TEST_DIR/out" "$TEST_DIR/err" || fail "--no-check looked"
# mirror --status --snapshots: the newest snapshot of DEST whose data is all there
keel mirror --status --snapshots --json "$KEEL_REPOSITORY" "$DEST" >"$TEST_DIR/status" ||
	fail "mirror --status --snapshots failed"
json_check <"$TEST_DIR/status"
[ "$(json_get id <"$TEST_DIR/status" | sed -n 1p)" = "$second" ] || fail "newest in SOURCE"
[ "$(json_get id <"$TEST_DIR/status" | sed -n 2p)" = "$first" ] ||
	fail "the incomplete snapshot counts as the newest in DEST: $(cat "$TEST_DIR/status")"
# the mirror's next run brings them back
expect_success keel mirror --no-progress "$KEEL_REPOSITORY" "$DEST"
keel -r "$DEST" snapshots --check >"$TEST_DIR/out" 2>&1
! grep -q "(incomplete" "$TEST_DIR/out" || fail "still incomplete after the mirror"
keel mirror --status --snapshots --json "$KEEL_REPOSITORY" "$DEST" >"$TEST_DIR/status"
[ "$(json_get id <"$TEST_DIR/status" | sed -n 2p)" = "$second" ] || fail "not complete again"

# a copy made by hand without the index files: every snapshot is incomplete
mkdir -p "$TEST_DIR/hand"
cp -r "$KEEL_REPOSITORY/config" "$KEEL_REPOSITORY/keys" "$KEEL_REPOSITORY/snapshots" \
	"$KEEL_REPOSITORY/data" "$TEST_DIR/hand/"
keel -r "$TEST_DIR/hand" snapshots --check >"$TEST_DIR/out" 2>"$TEST_DIR/err" || fail "snapshots failed"
[ "$(grep -c "(incomplete" "$TEST_DIR/out")" = 2 ] || fail "not both marked: $(cat "$TEST_DIR/out")"
grep -q "2 snapshots refer to data" "$TEST_DIR/err" || fail "no warning for 2"
