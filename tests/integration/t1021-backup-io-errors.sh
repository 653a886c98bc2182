#!/usr/bin/env bash
# I/O errors during a backup keep their errno and give the documented exit
# code (docs/EXIT-CODES.md: 20), and what could not be read is not counted
# as backed up (issue 13 items 10 and 15). The errors are real EIO results
# of system calls, injected by strace(1) on one path only.
. "$(dirname "$0")/../lib.sh"
require_keel
command -v strace >/dev/null || skip_or_die "needs strace to inject I/O errors"
under_strace
strace -f -qq -o /dev/null -e trace=openat -e inject=openat:error=EIO:when=65535 true ||
	skip_or_die "strace cannot inject errors here (ptrace refused?)"

# with_eio PATH SYSCALLS CMD...: runs CMD with every SYSCALL on PATH failing
# with EIO. strace -P matches a path given whole, or a descriptor of it
# (also the directory descriptor of an openat), not a name relative to one.
with_eio()
{
	local path=$1 calls=$2
	shift 2
	strace -f -qq -o /dev/null -P "$path" -e trace="$calls" -e inject="$calls":error=EIO "$@"
}

SRC=$TEST_DIR/src
mkdir -p "$SRC/above/dir/sub"
printf 'ok\n' >"$SRC/above/dir/ok.txt"
head -c 100000 /dev/urandom >"$SRC/above/dir/sub/bad.bin"
printf 'more\n' >"$SRC/above/dir/z-more.txt"
keel_init >/dev/null

# A directory above the source that cannot be opened: its errno, exit 20
# (was: exit 1, "No such file or directory").
expect_error 20 'none of the given paths could be read: Input/output error' \
	with_eio "$SRC/above" openat "$KEEL" backup "$SRC/above/dir"
! grep -q 'No such file' "$TEST_DIR/err" || fail "an EIO was reported as ENOENT"

# The only source, a file that fails once opened (fstat): nothing was read,
# so no snapshot, with the real errno (was: "Invalid argument", and a
# "partial" snapshot counting the file as new).
expect_error 20 'none of the given paths could be read: Input/output error' \
	with_eio "$SRC/above/dir/sub/bad.bin" fstat,newfstatat "$KEEL" backup \
	"$SRC/above/dir/sub/bad.bin"
! grep -q 'Invalid argument' "$TEST_DIR/err" || fail "an EIO was reported as EINVAL"
[ "$(snapshot_count)" = 0 ] || fail "a snapshot was saved although nothing could be read"

# A file that cannot be opened is an error, not a new file: the summary and
# the snapshot count only what was stored (was: "Files: 3 new", its bytes in
# the totals).
rc=0
with_eio "$SRC/above/dir/sub" openat "$KEEL" backup --json "$SRC/above/dir" \
	>"$TEST_DIR/b.json" 2>"$TEST_DIR/err" || rc=$?
cat "$TEST_DIR/err" >&2
[ "$rc" = 3 ] || fail "a backup with one unreadable file exited $rc, expected 3"
grep -q 'bad\.bin.*Input/output error' "$TEST_DIR/err" || fail "the unreadable file is not named"
[ "$(json_get files_new <"$TEST_DIR/b.json")" = 2 ] ||
	fail "files_new is $(json_get files_new <"$TEST_DIR/b.json"), expected 2"
[ "$(json_get bytes_total <"$TEST_DIR/b.json")" = 8 ] ||
	fail "bytes_total is $(json_get bytes_total <"$TEST_DIR/b.json"), expected 8 (ok.txt, z-more.txt)"
[ "$(json_get errors <"$TEST_DIR/b.json")" = 1 ] || fail "the summary counts no error"
[ "$(keel snapshots --json | json_get bytes_total)" = 8 ] ||
	fail "the snapshot's size counts the file that was not stored"
rc=0
with_eio "$SRC/above/dir/sub" openat "$KEEL" backup "$SRC/above/dir" >"$TEST_DIR/out" 2>/dev/null ||
	rc=$?
[ "$rc" = 3 ] || fail "exit $rc, expected 3"
grep -q '^Files: 0 new, 0 changed, 2 unmodified' "$TEST_DIR/out" ||
	fail "the summary counts the unreadable file: $(head -1 "$TEST_DIR/out")"
grep -q '^processed 2 files, 8 B' "$TEST_DIR/out" || fail "processed counts the unreadable file"

# The snapshots cannot be listed to find the parent: an I/O error, exit
# 20, said as such (was: "parent snapshot '?' not found").
expect_error 20 'cannot list the snapshots to find the parent: Input/output error' \
	with_eio "$KEEL_REPOSITORY/snapshots" getdents64 "$KEEL" backup "$SRC/above/dir"
! grep -q 'not found' "$TEST_DIR/err" || fail "an I/O error was reported as 'not found'"

# --parent naming a snapshot that cannot be read: 20, not "not found" (14);
# one that does not exist is still 14.
id=$(keel snapshots --json | json_get id | tail -n 1)
[ -n "$id" ] || fail "no snapshot id"
expect_error 20 'Input/output error' \
	with_eio "$KEEL_REPOSITORY/snapshots/$id" read,pread64 "$KEEL" backup --parent "$id" "$SRC/above/dir"
expect_error 14 "no snapshot 'abcdef'" keel backup --parent abcdef "$SRC/above/dir"
expect_success keel check >/dev/null
