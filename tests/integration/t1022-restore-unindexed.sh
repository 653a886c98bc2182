#!/usr/bin/env bash
# With index/ deleted, restore says the data is not in the index and
# advises 'keel repair index' (the data is intact: it is no tampering);
# after the repair everything restores (issue 13.11).
. "$(dirname "$0")/../lib.sh"
require_keel
require_treecmp
export KEEL_NO_CACHE=1

SRC=$TEST_DIR/src
mkdir -p "$SRC/d"
printf 'one\n' >"$SRC/d/one.txt"
head -c 300000 /dev/urandom >"$SRC/two.bin"
keel_init
expect_success keel backup "$SRC" >/dev/null
for f in $(repo_files index); do repo_rm "$f"; done

expect_error 13 "not in the index" keel restore latest --target "$TEST_DIR/r1"
grep -q "repair index" "$TEST_DIR/err" || fail "restore does not advise 'keel repair index'"
if grep -q "tampered" "$TEST_DIR/err"; then fail "restore calls a missing index tampering"; fi
# a subtree: its directory listing, then its files
expect_error 13 "not in the index" keel restore "latest:$SRC/d" --target "$TEST_DIR/r2"

expect_success keel repair index >/dev/null
expect_success keel restore latest --target "$TEST_DIR/r3" >/dev/null
expect_success treecmp --ignore-atime "$SRC" "$(restored_root "$TEST_DIR/r3" "$SRC")"
