#!/usr/bin/env bash
# keel mount over a damaged repository: a file whose data cannot be read
# fails its reads with EIO (no hang, no garbage), while other files, the
# listing and a clean unmount (exit 0) keep working.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-mount.sh"
require_keel
require_fuse

MNT=$TEST_DIR/mnt
keel_init
mkdir "$TEST_DIR/src"
printf 'small and intact\n' >"$TEST_DIR/src/small"
expect_success keel backup "$TEST_DIR/src" >/dev/null
# the big file in a later backup: its packs hold nothing the small file needs
repo_files data >"$TEST_DIR/packs-before"
head -c 6000000 /dev/urandom >"$TEST_DIR/src/big"
expect_success keel backup "$TEST_DIR/src" >/dev/null
# a byte in the middle of each new pack of data (nearly all of it the big
# file's); a small pack holds the new trees, which stay intact
n=0
while IFS= read -r pack; do
	size=$(file_size "$pack")
	[ "$size" -gt 1000000 ] || continue
	flip_byte "$pack" $((size / 2))
	n=$((n + 1))
done < <(repo_files data | comm -13 "$TEST_DIR/packs-before" -)
[ "$n" -gt 0 ] || fail "the second backup wrote no pack"

mount_start "$MNT"
S=$MNT/snapshots/latest$TEST_DIR/src
[ "$(cat "$S/small")" = "small and intact" ] || fail "the intact file cannot be read"
[ "$(stat -c %s "$S/big")" = 6000000 ] || fail "the damaged file's size is not its recorded size"
rc=0
cat "$S/big" >/dev/null 2>"$TEST_DIR/cat.err" || rc=$?
[ "$rc" != 0 ] || fail "reading a file with damaged data succeeded"
grep -q "Input/output error" "$TEST_DIR/cat.err" || fail "not EIO: $(cat "$TEST_DIR/cat.err")"
# the mount goes on
ls "$MNT/snapshots" >/dev/null || fail "the mount broke after a damaged read"
[ "$(cat "$S/small")" = "small and intact" ] || fail "the intact file is not readable after"
expect_success fusermount3 -u "$MNT"
mount_stop_wait
