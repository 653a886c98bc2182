#!/usr/bin/env bash
# Stream backups: --stdin, --stdin-from-command (success and failure), and
# dump giving the bytes back.
. "$(dirname "$0")/../lib.sh"
require_keel

keel_init
head -c 3000000 /dev/urandom >"$TEST_DIR/input"

# --stdin
expect_success keel backup --stdin --stdin-filename data.bin --tag stdin <"$TEST_DIR/input" >/dev/null
[ "$(snapshot_count)" = 1 ] || fail "expected one snapshot"
expect_success keel dump latest data.bin >"$TEST_DIR/out"
cmp "$TEST_DIR/input" "$TEST_DIR/out" || fail "dump of a --stdin snapshot differs"
expect_success keel dump latest /data.bin >"$TEST_DIR/out"
cmp "$TEST_DIR/input" "$TEST_DIR/out" || fail "dump of /data.bin differs"
keel ls latest >"$TEST_DIR/ls"
assert_listed "$TEST_DIR/ls" data.bin

# An empty stream is a snapshot holding an empty file.
expect_success keel backup --stdin --stdin-filename empty.bin </dev/null >/dev/null
expect_success keel dump latest empty.bin >"$TEST_DIR/out"
[ ! -s "$TEST_DIR/out" ] || fail "dump of an empty stream is not empty"

# The same stream again stores no new data (only a small tree for the new name).
before=$(dir_bytes "$KEEL_REPOSITORY/data")
expect_success keel backup --stdin --stdin-filename again.bin <"$TEST_DIR/input" >/dev/null
after=$(dir_bytes "$KEEL_REPOSITORY/data")
[ $((after - before)) -lt 65536 ] || fail "the same stream stored $((after - before)) more bytes"

# --stdin-from-command: the command's output is the file.
expect_success keel backup --stdin-from-command --stdin-filename cmd.out --tag cmd -- \
	sh -c 'cat "$1"; printf "trailer\n"' sh "$TEST_DIR/input" >/dev/null
{ cat "$TEST_DIR/input"; printf 'trailer\n'; } >"$TEST_DIR/expected"
expect_success keel dump latest cmd.out >"$TEST_DIR/out"
cmp "$TEST_DIR/expected" "$TEST_DIR/out" || fail "dump of a --stdin-from-command snapshot differs"
n=$(snapshot_count)

# A command that fails (after writing some output), one killed by a signal
# and one that does not exist: non-zero exit, no snapshot added.
rc=0
keel backup --stdin-from-command --stdin-filename bad.out -- \
	sh -c 'head -c 100000 "$1"; exit 3' sh "$TEST_DIR/input" >/dev/null 2>"$TEST_DIR/err" || rc=$?
[ "$rc" = 1 ] || fail "a failing command gave exit $rc, expected 1 (docs/EXIT-CODES.md)"
[ -s "$TEST_DIR/err" ] || fail "a failing command gave no message"
rc=0
keel backup --stdin-from-command --stdin-filename killed.out -- \
	sh -c 'printf partial; kill -9 $$' >/dev/null 2>&1 || rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -lt 128 ] || fail "a killed command gave exit $rc"
rc=0
keel backup --stdin-from-command --stdin-filename missing.out -- \
	"$TEST_DIR/no-such-program" >/dev/null 2>&1 || rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -lt 128 ] || fail "a missing command gave exit $rc"
[ "$(snapshot_count)" = "$n" ] || fail "a failed command left a snapshot"
expect_exit 14 keel dump latest bad.out

# Usage: --stdin with paths, --stdin-from-command without a command.
expect_exit 2 keel backup --stdin --stdin-filename x "$TEST_DIR"
expect_exit 2 keel backup --stdin-from-command --stdin-filename x --

# dump of something that is not there: 14
expect_exit 14 keel dump latest no-such-file
expect_exit 14 keel dump 0000000000 data.bin
expect_success keel check --read-data >/dev/null
