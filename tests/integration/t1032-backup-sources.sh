#!/usr/bin/env bash
# Where backup's paths come from and what it leaves out: a source that
# does not exist (exit 2 before anything is written; --ignore-missing),
# the repository and keel's cache inside a source (by identity, not by
# path), --files-from, --files-from-raw, --iexclude, --exclude-if-present.
. "$(dirname "$0")/../lib.sh"
require_keel

SRC=$TEST_DIR/src
mkdir -p "$SRC/docs" "$SRC/photos" "$SRC/tmp/deep" "$SRC/build" "$SRC/other"
printf 'doc\n' >"$SRC/docs/a.txt"
printf 'jpg\n' >"$SRC/photos/a.jpg"
printf 'JPG\n' >"$SRC/photos/B.Jpg"
printf 'png\n' >"$SRC/photos/c.png"
printf 'x\n' >"$SRC/tmp/deep/x"
: >"$SRC/tmp/.nobackup"
printf 'o\n' >"$SRC/build/out.o"
: >"$SRC/build/.skip-me"
printf 'keep\n' >"$SRC/other/keep"
# the repository inside the source, named by -r through a symbolic link
export KEEL_REPOSITORY=$TEST_DIR/link/repo
ln -s "$SRC" "$TEST_DIR/link"
keel_init >/dev/null
OUT=$TEST_DIR/out
LS=$TEST_DIR/ls
has_python || skip_or_die "no python3 to read the snapshots' paths"

# paths [--latest 1]: the paths of the snapshots, one a line
paths()
{
	keel snapshots --json "$@" |
		python3 -c 'import json, sys; [print(p) for s in json.load(sys.stdin) for p in s["paths"]]'
}

# a source path that does not exist: exit 2, nothing written (no lock, no data)
repo_listing >"$TEST_DIR/before"
expect_error 2 "source path '$SRC/no-such' does not exist; nothing was written" \
	keel backup "$SRC/docs" "$SRC/no-such"
repo_listing | diff "$TEST_DIR/before" - || fail "a missing source wrote to the repository"
[ -z "$(ls -A "$KEEL_REPOSITORY/locks")" ] || fail "a missing source left a lock"
# a path through a file is as missing
expect_error 2 "source path '$SRC/docs/a.txt/x' does not exist" keel backup "$SRC/docs/a.txt/x"
# nothing at all to back up
expect_error 2 'none of the given paths exist' keel backup --ignore-missing "$SRC/nope"

# --ignore-missing: a warning, and the snapshot's paths are those that exist
expect_success keel backup --ignore-missing "$SRC/docs" "$SRC/no-such" \
	>"$OUT" 2>"$TEST_DIR/err"
grep -qx "keel: backup: warning: source path '$SRC/no-such' does not exist: left out" \
	"$TEST_DIR/err" || fail "no warning: $(cat "$TEST_DIR/err")"
[ "$(paths --latest 1)" = "$SRC/docs" ] ||
	fail "paths of the snapshot: $(paths --latest 1)"
# the same paths as a plain backup of docs: one forget group
expect_success keel backup "$SRC/docs" >/dev/null
[ "$(paths | sort -u)" = "$SRC/docs" ] ||
	fail "the snapshots' paths differ"

# the repository inside the source: skipped with a note, found by identity;
# keel's cache too (KEEL_CACHE_DIR inside the source)
mkdir -p "$SRC/cache-dir"
printf 'cached\n' >"$SRC/cache-dir/entry"
KEEL_CACHE_DIR=$SRC/cache-dir keel backup "$SRC" >"$OUT" 2>"$TEST_DIR/err" ||
	fail "backup of the tree holding the repository failed"
cat >"$TEST_DIR/want" <<W
keel: backup: note: '$SRC/cache-dir' skipped: it is keel's cache
keel: backup: note: '$SRC/repo' skipped: it is the repository
W
diff "$TEST_DIR/want" "$TEST_DIR/err" || fail "notes differ"
keel ls latest >"$LS"
assert_not_listed "$LS" src/repo
assert_not_listed "$LS" repo/config
assert_not_listed "$LS" cache-dir/entry
assert_listed "$LS" other/keep
rm -rf "$SRC/cache-dir"
# the repository named as a source itself: left out, and nothing else to save
expect_success keel backup "$SRC/repo" "$SRC/other" >"$OUT" 2>"$TEST_DIR/err"
grep -qx "keel: backup: note: '$SRC/repo' skipped: it is the repository" "$TEST_DIR/err" ||
	fail "no note: $(cat "$TEST_DIR/err")"
keel ls latest >"$LS"
assert_not_listed "$LS" src/repo
assert_listed "$LS" other/keep

# --iexclude ignores case, --exclude does not;
# --exclude-if-present (twice) drops a directory holding either name, itself too
expect_success keel backup --iexclude '*.JPG' --exclude '*.PNG' \
	--exclude-if-present .nobackup --exclude-if-present .skip-me "$SRC" >/dev/null 2>&1
keel ls latest >"$LS"
assert_not_listed "$LS" photos/a.jpg
assert_not_listed "$LS" photos/B.Jpg
assert_listed "$LS" photos/c.png
assert_not_listed "$LS" src/tmp
assert_not_listed "$LS" tmp/deep/x
assert_not_listed "$LS" src/build
assert_listed "$LS" docs/a.txt
expect_exit 2 keel backup --exclude-if-present a/b "$SRC"
# NAME:HEADER (restic): only where that file begins with HEADER
mkdir -p "$SRC/hdr-yes" "$SRC/hdr-no"
printf 'KEEP-OUT of backups\n' >"$SRC/hdr-yes/.tag"
printf 'keep me\n' >"$SRC/hdr-no/.tag"
expect_success keel backup --exclude-if-present '.tag:KEEP-OUT' "$SRC" >/dev/null 2>&1
keel ls latest >"$LS"
assert_not_listed "$LS" src/hdr-yes
assert_listed "$LS" src/hdr-no/.tag
assert_listed "$LS" src/tmp/deep/x
rm -rf "$SRC/hdr-yes" "$SRC/hdr-no"

# --files-from: comments, blank lines, a CR; '-' reads stdin; with arguments
printf '# my list\n\n%s/docs\r\n   \n%s/photos/c.png\n' "$SRC" "$SRC" >"$TEST_DIR/list"
expect_success keel backup --files-from "$TEST_DIR/list" "$SRC/other" >/dev/null 2>&1
paths --latest 1 >"$OUT"
printf '%s\n' "$SRC/docs" "$SRC/other" "$SRC/photos/c.png" | diff - "$OUT" ||
	fail "--files-from paths differ"
printf '%s\n' "$SRC/build" | keel backup --files-from - >/dev/null 2>&1 ||
	fail "--files-from - failed"
[ "$(paths --latest 1)" = "$SRC/build" ] || fail "--files-from -"
# --files-from-raw: NUL-separated, a name with a newline
mkdir "$SRC/odd
name"
printf 'odd\n' >"$SRC/odd
name/f"
printf '%s\0%s\0' "$SRC/odd
name" "$SRC/docs" >"$TEST_DIR/raw"
expect_success keel backup --files-from-raw "$TEST_DIR/raw" >/dev/null 2>&1
[ "$(paths --latest 1 | wc -l)" = 3 ] ||
	fail "--files-from-raw paths: $(paths --latest 1)"
# a missing path in a list is as missing; a list with NUL bytes needs -raw
printf '%s\n' "$SRC/gone" >"$TEST_DIR/list2"
expect_error 2 "source path '$SRC/gone' does not exist" keel backup --files-from "$TEST_DIR/list2"
expect_error 2 "cannot read the list of paths" keel backup --files-from "$TEST_DIR/raw"
expect_error 2 "cannot read the list of paths '$TEST_DIR/no-list'" \
	keel backup --files-from "$TEST_DIR/no-list"
expect_error 2 'no paths to back up' keel backup --files-from /dev/null
expect_success keel check >/dev/null
