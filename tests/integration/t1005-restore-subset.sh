#!/usr/bin/env bash
# Partial restores (--include, --exclude, SNAPSHOT:subpath), dump of one
# file, and diff between two snapshots.
. "$(dirname "$0")/../lib.sh"
require_keel
require_treecmp

SRC=$TEST_DIR/src
mkdir -p "$SRC/a" "$SRC/b/sub" "$SRC/c"
printf 'one\n' >"$SRC/a/1.txt"
printf 'two\n' >"$SRC/a/2.txt"
head -c 700000 /dev/urandom >"$SRC/b/x.bin"
printf 'why\n' >"$SRC/b/sub/y.txt"
printf 'see\n' >"$SRC/c.txt"
printf 'same\n' >"$SRC/c/unchanged.txt"
keel_init
expect_success keel backup --json "$SRC" >"$TEST_DIR/b1.json"
S1=$(json_get snapshot_id <"$TEST_DIR/b1.json")
[ -n "$S1" ] || fail "backup --json named no snapshot_id"

found()
{
	[ -n "$(find "$1" -name "$2" -print -quit)" ]
}

# --include: only the .txt files (and the directories leading to them)
expect_success keel restore latest --target "$TEST_DIR/inc" --include '*.txt' >/dev/null
for f in 1.txt 2.txt y.txt c.txt unchanged.txt; do
	found "$TEST_DIR/inc" "$f" || fail "--include '*.txt' did not restore $f"
done
found "$TEST_DIR/inc" x.bin && fail "--include '*.txt' restored x.bin"
R=$(restored_root "$TEST_DIR/inc" "$SRC")
cmp "$SRC/b/sub/y.txt" "$R/b/sub/y.txt" || fail "included file differs"

# --exclude: everything but b/
expect_success keel restore latest --target "$TEST_DIR/exc" --exclude "$SRC/b" >/dev/null
R=$(restored_root "$TEST_DIR/exc" "$SRC")
[ -f "$R/a/1.txt" ] || fail "--exclude lost a/1.txt"
[ ! -e "$R/b" ] || fail "--exclude $SRC/b restored b"
expect_success keel restore latest --target "$TEST_DIR/exc2" --exclude '*.bin' --exclude 'sub' >/dev/null
found "$TEST_DIR/exc2" x.bin && fail "--exclude '*.bin' restored x.bin"
found "$TEST_DIR/exc2" y.txt && fail "--exclude sub restored sub/y.txt"
found "$TEST_DIR/exc2" 2.txt || fail "--exclude '*.bin' --exclude sub lost 2.txt"

# SNAPSHOT:subpath restores that subtree only: its contents at the top of
# the target, as restic does (not TARGET/b)
expect_success keel restore "latest:$SRC/b" --target "$TEST_DIR/sub" >/dev/null
found "$TEST_DIR/sub" c.txt && fail "restore latest:$SRC/b restored c.txt"
[ -f "$TEST_DIR/sub/x.bin" ] && [ ! -e "$TEST_DIR/sub/b" ] ||
	fail "restore latest:$SRC/b did not put b's contents at the top of the target: $(cd "$TEST_DIR/sub" && find . | head)"
expect_success treecmp --ignore-atime "$SRC/b/sub" "$TEST_DIR/sub/sub"
expect_success keel restore "${S1:0:12}:$SRC/a" --target "$TEST_DIR/sub2" >/dev/null
found "$TEST_DIR/sub2" 1.txt || fail "restore ID:$SRC/a lost 1.txt"
expect_exit 14 keel restore "latest:$SRC/no-such-dir" --target "$TEST_DIR/none"

# dump of one file
expect_success keel dump latest "$SRC/b/x.bin" >"$TEST_DIR/x.out"
cmp "$SRC/b/x.bin" "$TEST_DIR/x.out" || fail "dump of b/x.bin differs"
expect_success keel dump "${S1:0:8}" "$SRC/a/2.txt" >"$TEST_DIR/2.out"
cmp "$SRC/a/2.txt" "$TEST_DIR/2.out" || fail "dump of a/2.txt differs"
expect_exit 14 keel dump latest "$SRC/a/none.txt"
# a directory dumps as a tar (t1043 tests it in depth)
keel dump latest "$SRC/a" >"$TEST_DIR/a.tar" || fail "dump of a directory failed"
[ "$(tar -tf "$TEST_DIR/a.tar" | tr '\n' ' ')" = "${SRC#/}/a/ ${SRC#/}/a/1.txt ${SRC#/}/a/2.txt " ] ||
	fail "dump of a directory: $(tar -tf "$TEST_DIR/a.tar")"

# diff: added, removed, modified (content), metadata only
printf 'new\n' >"$SRC/a/new.txt"
rm "$SRC/a/2.txt"
printf 'see more\n' >"$SRC/c.txt"
chmod 0600 "$SRC/b/sub/y.txt"
expect_success keel backup --json "$SRC" >"$TEST_DIR/b2.json"
S2=$(json_get snapshot_id <"$TEST_DIR/b2.json")
expect_success keel diff "$S1" "$S2" >"$TEST_DIR/diff"
grep -E '^\+ .*a/new\.txt$' "$TEST_DIR/diff" >/dev/null || fail "diff does not show a/new.txt added: $(cat "$TEST_DIR/diff")"
grep -E '^- .*a/2\.txt$' "$TEST_DIR/diff" >/dev/null || fail "diff does not show a/2.txt removed"
grep -E '^M .*c\.txt$' "$TEST_DIR/diff" >/dev/null || fail "diff does not show c.txt modified"
grep -E 'y\.txt$' "$TEST_DIR/diff" >/dev/null || fail "diff does not show y.txt's new mode"
if grep -E '(unchanged\.txt|1\.txt|x\.bin)$' "$TEST_DIR/diff"; then
	fail "diff shows unchanged files"
fi
keel diff --json "$S1" "$S2" | json_check
expect_success keel diff "${S1:0:8}" latest >/dev/null
expect_exit 14 keel diff "$S1" ffffffffffff
