#!/usr/bin/env bash
# A directory too big for one tree blob (issue 3) is stored as a head and
# continuation parts. KEEL_TEST_TREE_SPLIT (honoured by KL_TESTING builds
# only) lowers the split point from 2^20 entries to 400, so 3000 entries
# make 8 parts instead of needing a million files. Backup, check, ls,
# dump, diff, restore and an incremental backup must all see the whole
# directory; check must count the parts as used blobs.
. "$(dirname "$0")/../lib.sh"
require_keel
require_treecmp

SRC=$TEST_DIR/src
mkdir -p "$SRC/big" "$SRC/other"
# entries of every kind across the parts, a directory in the middle one
perl -e '
	chdir $ARGV[0] or die;
	for my $i (1 .. 3000) {
		open(my $f, ">", sprintf("f%05d", $i)) or die; print $f "x"; close $f;
	}
	mkdir "f01500d" or die;
	open(my $f, ">", "f01500d/inside") or die; print $f "deep\n"; close $f;
	symlink("f00001", "f02222-link") or die;
	open($f, ">", "f03000") or die; print $f "the last one\n"; close $f;
' "$SRC/big" || fail "cannot build the big directory"
echo other >"$SRC/other/a"
n_big=$(find "$SRC/big" -mindepth 1 -maxdepth 1 | wc -l)
log "built $n_big entries in big/"

# summary numbers of keel check --json
check_num()
{
	keel check --json | json_get "$1" | tail -1
}

# the same backup unsplit, to count its blobs (beside the test's repository:
# in $TEST_DIR, or in its bucket on S3)
REPO=$KEEL_REPOSITORY
export KEEL_REPOSITORY=${REPO%/*}/plain
keel_init
expect_success keel backup "$SRC" >/dev/null
plain_blobs=$(check_num blobs)
plain_trees=$(check_num trees)

export KEEL_REPOSITORY=$REPO KEEL_TEST_TREE_SPLIT=400
keel_init
expect_success keel backup "$SRC" >/dev/null
split_blobs=$(check_num blobs)
[ "$split_blobs" -ne "$plain_blobs" ] || skip_or_die "big/ was not split (keel built without -Dtestable?)"
# ceil(3002 / 400) = 8 blobs for big/ instead of 1; check counts heads as trees
[ "$split_blobs" -eq $((plain_blobs + 7)) ] || fail "$split_blobs blobs, want $plain_blobs + 7"
[ "$(check_num trees)" -eq "$plain_trees" ] || fail "check walked another number of trees"
[ "$(check_num unused_blobs)" -eq 0 ] || fail "check takes continuation parts for unused blobs"
expect_success keel check --read-data >/dev/null

# ls and dump see entries in every part
keel ls latest >"$TEST_DIR/ls.out" || fail "ls failed"
for p in big/f00001 big/f00400 big/f00401 big/f01500d/inside big/f02222-link big/f03000 other/a; do
	assert_listed "$TEST_DIR/ls.out" "$p"
done
n_ls=$(grep -c '/big/[^/]*$' "$TEST_DIR/ls.out") || true
[ "$n_ls" -eq "$n_big" ] || fail "ls listed $n_ls entries of big/, want $n_big"
[ "$(keel dump latest "$SRC/big/f03000")" = "the last one" ] || fail "dump of the last entry"
[ "$(keel dump latest "$SRC/big/f01500d/inside")" = "deep" ] || fail "dump below a middle part"

expect_success keel restore latest --target "$TEST_DIR/r" >/dev/null
R=$(restored_root "$TEST_DIR/r" "$SRC")
treecmp --ignore-atime "$SRC" "$R" >"$TEST_DIR/treecmp.out" 2>&1 ||
	fail "restored tree differs: $(head -c 600 "$TEST_DIR/treecmp.out")"

# an unchanged incremental backup matches every file against the parent's
# joined tree
keel backup --json "$SRC" >"$TEST_DIR/b2.json" || fail "second backup failed"
unmod=$(json_get files_unmodified <"$TEST_DIR/b2.json" | tail -1)
[ "$unmod" -eq 3002 ] || fail "the unchanged backup re-read files ($unmod unmodified)"

# changes in the first and last parts, and a new entry, are one diff
echo changed >"$SRC/big/f03000"
rm "$SRC/big/f00002"
echo new >"$SRC/big/f01999x"
expect_success keel backup "$SRC" >/dev/null
mapfile -t ids < <(snapshot_ids)
keel diff "${ids[1]}" "${ids[2]}" >"$TEST_DIR/diff.out" || fail "diff failed"
grep -q '^M .*/big/f03000$' "$TEST_DIR/diff.out" || fail "diff: no M big/f03000: $(head -c 400 "$TEST_DIR/diff.out")"
grep -q '^- .*/big/f00002$' "$TEST_DIR/diff.out" || fail "diff: no - big/f00002"
grep -q '^+ .*/big/f01999x$' "$TEST_DIR/diff.out" || fail "diff: no + big/f01999x"
n_diff=$(grep -c '/big/' "$TEST_DIR/diff.out") || true
[ "$n_diff" -eq 3 ] || fail "diff listed $n_diff changes in big/, want 3: $(head -c 400 "$TEST_DIR/diff.out")"
expect_success keel check >/dev/null
