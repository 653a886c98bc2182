#!/usr/bin/env bash
# restore onto a target that holds something already: --overwrite
# (if-changed, the default, always, if-newer, never), the counts of the
# summary, --delete (only below the target, never through a symlink),
# --dry-run (lists, changes nothing), SNAP:DIR restoring DIR's contents,
# and the targets that are refused: a file, and '/' without --force.
. "$(dirname "$0")/../lib.sh"
require_keel

SRC=$TEST_DIR/src
mkdir -p "$SRC/d/sub"
printf 'alpha\n' >"$SRC/d/a.txt"
printf 'bravo\n' >"$SRC/d/sub/b.txt"
head -c 300000 /dev/urandom >"$SRC/d/big.bin"
ln -s a.txt "$SRC/d/link"
printf 'top\n' >"$SRC/top.txt"
mkdir "$SRC/h"
printf 'linked\n' >"$SRC/h/h1"
ln "$SRC/h/h1" "$SRC/h/h2"
keel_init
expect_success keel backup "$SRC" >/dev/null
S=$(keel snapshots --json | json_get id)
T=$TEST_DIR/t

# summary_counts OUTFILE: the counts line of a restore's summary
counts()
{
	grep -E '^created [0-9]+, replaced' "$1" || fail "no counts line in: $(cat "$1")"
}

# SNAP:DIR puts DIR's contents into the target, as restic does; the
# snapshot chosen is named first
expect_success keel restore "latest:$SRC/d" --target "$T" >"$TEST_DIR/out"
head -1 "$TEST_DIR/out" | grep -qE "^restoring snapshot ${S:0:8} of [^ ]+:$SRC at .*, path $SRC/d, to $T\$" ||
	fail "restore does not name the snapshot first: $(head -1 "$TEST_DIR/out")"
[ "$(counts "$TEST_DIR/out")" = "created 4, replaced 0, unchanged 0, skipped 0, deleted 0" ] ||
	fail "first restore: $(counts "$TEST_DIR/out")"
[ "$(cat "$T/a.txt")" = alpha ] && [ "$(cat "$T/sub/b.txt")" = bravo ] ||
	fail "SNAP:DIR did not put the directory's contents into the target: $(cd "$T" && find . | sort)"
[ ! -e "$T/d" ] || fail "SNAP:DIR created DIR below the target"
cmp "$SRC/d/big.bin" "$T/big.bin" || fail "big.bin differs"
# a file PATH becomes TARGET/NAME
expect_success keel restore "latest:$SRC/top.txt" --target "$TEST_DIR/one" >/dev/null
[ "$(cat "$TEST_DIR/one/top.txt")" = top ] || fail "SNAP:FILE is not TARGET/NAME"

# a second restore: everything identical is left alone (a file replaced
# is a new inode: the hard links made here would stay with the old one)
ln "$T/a.txt" "$TEST_DIR/a.hl"
ln "$T/big.bin" "$TEST_DIR/big.hl"
expect_success keel restore "latest:$SRC/d" --target "$T" >"$TEST_DIR/out"
[ "$(counts "$TEST_DIR/out")" = "created 0, replaced 0, unchanged 4, skipped 0, deleted 0" ] ||
	fail "rerun: $(counts "$TEST_DIR/out")"
[ "$(stat -c %h "$T/a.txt")" = 2 ] && [ "$(stat -c %h "$T/big.bin")" = 2 ] ||
	fail "an identical file was replaced"
rm "$TEST_DIR/a.hl" "$TEST_DIR/big.hl"

# same size and same mtime, other content: if-changed compares content
printf 'ALPHA\n' >"$T/a.txt"
touch -r "$SRC/d/a.txt" "$T/a.txt"
printf 'X' | dd of="$T/big.bin" bs=1 seek=200000 conv=notrunc status=none
touch -r "$SRC/d/big.bin" "$T/big.bin"
chmod 0600 "$T/sub/b.txt" # metadata only: the content is the same
expect_success keel restore "latest:$SRC/d" --target "$T" --json >"$TEST_DIR/out.json"
[ "$(json_get replaced <"$TEST_DIR/out.json")" = 2 ] && [ "$(json_get unchanged <"$TEST_DIR/out.json")" = 2 ] &&
	[ "$(json_get created <"$TEST_DIR/out.json")" = 0 ] ||
	fail "if-changed with same size and mtime: $(cat "$TEST_DIR/out.json")"
[ "$(cat "$T/a.txt")" = alpha ] || fail "if-changed kept a file whose content differs"
cmp "$SRC/d/big.bin" "$T/big.bin" || fail "if-changed kept big.bin with a changed byte"
[ "$(stat -c %a "$T/sub/b.txt")" = "$(stat -c %a "$SRC/d/sub/b.txt")" ] ||
	fail "an unchanged file did not get its recorded mode"

# never: what is there stays, whatever it is
printf 'mine\n' >"$T/a.txt"
rm "$T/sub/b.txt"
expect_success keel restore "latest:$SRC/d" --target "$T" --overwrite never >"$TEST_DIR/out"
[ "$(counts "$TEST_DIR/out")" = "created 1, replaced 0, unchanged 0, skipped 3, deleted 0" ] ||
	fail "never: $(counts "$TEST_DIR/out")"
[ "$(cat "$T/a.txt")" = mine ] || fail "--overwrite never replaced a.txt"
[ "$(cat "$T/sub/b.txt")" = bravo ] || fail "--overwrite never did not create the missing b.txt"

# if-newer: a.txt newer than the snapshot's stays, an older big.bin is replaced,
# the others (as old as the snapshot's) stay
touch -d '2100-01-01' "$T/a.txt"
printf 'Y' | dd of="$T/big.bin" bs=1 seek=10 conv=notrunc status=none
touch -d '2000-01-01' "$T/big.bin"
expect_success keel restore "latest:$SRC/d" --target "$T" --overwrite if-newer >"$TEST_DIR/out"
[ "$(counts "$TEST_DIR/out")" = "created 0, replaced 1, unchanged 0, skipped 3, deleted 0" ] ||
	fail "if-newer: $(counts "$TEST_DIR/out")"
[ "$(cat "$T/a.txt")" = mine ] || fail "--overwrite if-newer replaced a newer a.txt"
cmp "$SRC/d/big.bin" "$T/big.bin" || fail "--overwrite if-newer kept an older big.bin"

# always: every file is replaced (new inodes), without looking at it
ln "$T/big.bin" "$TEST_DIR/big.hl"
expect_success keel restore "latest:$SRC/d" --target "$T" --overwrite always >"$TEST_DIR/out"
[ "$(counts "$TEST_DIR/out")" = "created 0, replaced 4, unchanged 0, skipped 0, deleted 0" ] ||
	fail "always: $(counts "$TEST_DIR/out")"
[ "$(cat "$T/a.txt")" = alpha ] || fail "--overwrite always kept a.txt"
[ "$(stat -c %h "$T/big.bin")" = 1 ] || fail "--overwrite always did not replace big.bin"
expect_error 2 "invalid --overwrite 'sometimes'" keel restore latest --target "$T" --overwrite sometimes

# --dry-run lists what would change and changes nothing; --delete removes
# what the snapshot lacks, never following a symlink out of the target
OUT=$TEST_DIR/outside
mkdir -p "$OUT/dir"
printf 'keep me\n' >"$OUT/dir/precious"
printf 'changed\n' >"$T/a.txt"
mkdir -p "$T/extra/deep"
printf 'x\n' >"$T/extra/deep/x"
printf 'y\n' >"$T/sub/y.tmp"
ln -s "$OUT/dir" "$T/escape"
printf 'k\n' >"$T/keep.log"
rm "$T/link"
snapshot_of_target()
{
	(cd "$T" && find . -printf '%p %y %s %T@ %i\n' | sort)
}
snapshot_of_target >"$TEST_DIR/before"
expect_success keel restore "latest:$SRC/d" --target "$T" --delete --exclude '*.log' --dry-run >"$TEST_DIR/out"
snapshot_of_target >"$TEST_DIR/after"
cmp "$TEST_DIR/before" "$TEST_DIR/after" || fail "--dry-run changed the target: $(diff "$TEST_DIR/before" "$TEST_DIR/after")"
grep -E '^(create|replace|delete) ' "$TEST_DIR/out" | sort >"$TEST_DIR/listed"
cat >"$TEST_DIR/want" <<EOT
create    $T/link
delete    $T/escape
delete    $T/extra/
delete    $T/extra/deep/
delete    $T/extra/deep/x
delete    $T/sub/y.tmp
replace   $T/a.txt
EOT
diff "$TEST_DIR/want" "$TEST_DIR/listed" || fail "--dry-run --delete listed other changes"
grep -qx 'dry run, nothing changed: would create 1, replace 1, delete 5; 2 unchanged, 0 skipped' "$TEST_DIR/out" ||
	fail "dry-run summary: $(tail -1 "$TEST_DIR/out")"
expect_success keel restore "latest:$SRC/d" --target "$T" --delete --exclude '*.log' >"$TEST_DIR/out"
[ "$(counts "$TEST_DIR/out")" = "created 1, replaced 1, unchanged 2, skipped 0, deleted 5" ] ||
	fail "--delete: $(counts "$TEST_DIR/out")"
[ "$(cat "$OUT/dir/precious")" = "keep me" ] || fail "--delete followed a symlink out of the target"
[ ! -e "$T/escape" ] && [ ! -L "$T/escape" ] || fail "--delete kept the symlink"
[ -f "$T/keep.log" ] || fail "--delete removed an excluded path"
(cd "$T" && find . ! -name keep.log | sort) >"$TEST_DIR/left"
printf '%s\n' . ./a.txt ./big.bin ./link ./sub ./sub/b.txt >"$TEST_DIR/want"
diff "$TEST_DIR/want" "$TEST_DIR/left" || fail "--delete left the target unlike the snapshot"
[ "$(readlink "$T/link")" = a.txt ] || fail "link not restored"
# with --include, only the directories it matches are cleaned
printf 'z\n' >"$T/sub/z.extra"
printf 't\n' >"$T/t.extra"
expect_success keel restore "latest:$SRC/d" --target "$T" --delete --include "$SRC/d/sub" >"$TEST_DIR/out"
[ "$(counts "$TEST_DIR/out")" = "created 0, replaced 0, unchanged 1, skipped 0, deleted 1" ] ||
	fail "--delete --include: $(counts "$TEST_DIR/out")"
[ ! -e "$T/sub/z.extra" ] && [ -f "$T/t.extra" ] || fail "--delete --include cleaned the wrong directories"
rm "$T/t.extra"

# hard links: a later name is unchanged only when it is the first name's
# file; a separate copy with the same content is replaced by the link
H=$TEST_DIR/h
expect_success keel restore "latest:$SRC/h" --target "$H" >/dev/null
expect_success keel restore "latest:$SRC/h" --target "$H" --dry-run >"$TEST_DIR/out"
grep -qx 'dry run, nothing changed: would create 0, replace 0, delete 0; 2 unchanged, 0 skipped' "$TEST_DIR/out" ||
	fail "dry run over restored hard links: $(tail -1 "$TEST_DIR/out")"
rm "$H/h2"
cp "$H/h1" "$H/h2"
expect_success keel restore "latest:$SRC/h" --target "$H" --dry-run >"$TEST_DIR/out"
grep -qx "replace   $H/h2" "$TEST_DIR/out" || fail "dry run does not replace a copy by the link: $(cat "$TEST_DIR/out")"
expect_success keel restore "latest:$SRC/h" --target "$H" >"$TEST_DIR/out"
[ "$(counts "$TEST_DIR/out")" = "created 0, replaced 1, unchanged 1, skipped 0, deleted 0" ] ||
	fail "hard links: $(counts "$TEST_DIR/out")"
[ "$(stat -c %i "$H/h1")" = "$(stat -c %i "$H/h2")" ] || fail "h2 is not linked to h1 again"

# refused targets: a file (2), '/' without --force (2, nothing read)
expect_error 2 "is not a directory" keel restore latest --target "$T/a.txt"
expect_error 2 "give --force" keel restore latest --target /
expect_error 2 "give --force" keel restore latest --target "$TEST_DIR/.."/../../../../../../..
exit 0
