#!/usr/bin/env bash
# keel image (docs/IMAGES.md): an ext4 image made by mkfs.ext4 -d on a
# sparse file, backed up, changed by writing into it, backed up again
# (only the changed chunks are stored), restored whole and as deltas in
# both directions (only the differing chunks written, holes punched),
# sparse, and e2fsck-clean.
. "$(dirname "$0")/../lib.sh"
require_keel
command -v mkfs.ext4 >/dev/null && command -v debugfs >/dev/null && command -v e2fsck >/dev/null ||
	skip_or_die "e2fsprogs (mkfs.ext4, debugfs, e2fsck) missing"

keel_init
K=262144 # --chunk-size 256K
img=$TEST_DIR/disk.img
mkdir "$TEST_DIR/files"
head -c 1048576 /dev/urandom >"$TEST_DIR/files/big"
head -c 300000 /dev/urandom >"$TEST_DIR/files/small"
seq 1 20000 >"$TEST_DIR/files/text"
truncate -s 64M "$img"
expect_success mkfs.ext4 -q -F -b 4096 -d "$TEST_DIR/files" "$img"
# mkfs leaves unwritten (zeroed) extents, which SEEK_DATA calls holes or
# data depending on the page cache: the assertions count chunks without
# data (holes and zero chunks) together, and reads by the holes seen
sync "$img"
size=$(stat -c %s "$img")
chunks=$((size / K))

# first backup: every chunk is a hole (unread), zeros, or new data
keel image backup --chunk-size 256K --json "$img" >"$TEST_DIR/b1" || fail "first image backup failed"
json_check <"$TEST_DIR/b1"
snap1=$(json_get snapshot_id <"$TEST_DIR/b1")
read1=$(json_get bytes_read <"$TEST_DIR/b1")
hole1=$(json_get chunks_hole <"$TEST_DIR/b1")
zero1=$(json_get chunks_zero <"$TEST_DIR/b1")
new1=$(json_get chunks_new <"$TEST_DIR/b1")
[ "$(json_get chunks <"$TEST_DIR/b1")" = "$chunks" ] || fail "expected $chunks chunks"
[ "$(json_get bytes_total <"$TEST_DIR/b1")" = "$size" ] || fail "bytes_total is not the image's size"
[ "$hole1" -gt 0 ] || fail "no hole was skipped unread"
[ "$read1" = $(((chunks - hole1) * K)) ] || fail "read $read1 bytes, expected all but the holes"
[ "$new1" -gt 0 ] && [ $((hole1 + zero1 + new1)) -le "$chunks" ] || fail "chunk counts do not add up"
cp --sparse=always "$img" "$TEST_DIR/old.img"
sha_old=$(sha "$img")

# the same image again: all read, nothing new
keel image backup --json "$img" >"$TEST_DIR/b1b" || fail "unchanged backup failed"
[ "$(json_get chunks_new <"$TEST_DIR/b1b")" = 0 ] || fail "an unchanged image stored new chunks"
data1=$((chunks - hole1 - zero1))
hole=$(json_get chunks_hole <"$TEST_DIR/b1b")
[ "$(json_get bytes_read <"$TEST_DIR/b1b")" = $(((chunks - hole) * K)) ] || fail "not every chunk but holes was read"
[ $((chunks - hole - $(json_get chunks_zero <"$TEST_DIR/b1b"))) = "$data1" ] ||
	fail "an unchanged image has other data chunks: $(cat "$TEST_DIR/b1" "$TEST_DIR/b1b")"

# change three chunks: two blocks of file data, one free block in a hole
blk0=$(debugfs -R "bmap /big 0" "$img" 2>/dev/null)
blk128=$(debugfs -R "bmap /big 128" "$img" 2>/dev/null)
[ -n "$blk0" ] && [ -n "$blk128" ] || fail "debugfs found no blocks of /big"
[ $((blk0 * 4096 / K)) != $((blk128 * 4096 / K)) ] || fail "the two blocks share a chunk"
free_off=$((40 * 1048576))
expect_success dd if=/dev/urandom of="$img" bs=4096 seek="$blk0" count=1 conv=notrunc status=none
expect_success dd if=/dev/urandom of="$img" bs=4096 seek="$blk128" count=1 conv=notrunc status=none
expect_success dd if=/dev/urandom of="$img" bs=4096 seek=$((free_off / 4096)) count=1 conv=notrunc status=none
sync "$img"
sha_new=$(sha "$img")

keel image backup --json "$img" >"$TEST_DIR/b2" || fail "second image backup failed"
[ "$(json_get chunk_size <"$TEST_DIR/b2")" = "$K" ] || fail "the chunk size was not the parent's"
snap1b=$(json_get snapshot_id <"$TEST_DIR/b1b")
[ "$(json_get parent <"$TEST_DIR/b2")" = "$snap1b" ] || fail "the parent is not the last image snapshot"
[ "$(json_get chunks_new <"$TEST_DIR/b2")" = 3 ] || fail "expected 3 new chunks: $(cat "$TEST_DIR/b2")"
[ "$(json_get bytes_new <"$TEST_DIR/b2")" = $((3 * K)) ] || fail "expected $((3 * K)) new bytes"
hole=$(json_get chunks_hole <"$TEST_DIR/b2")
[ "$(json_get bytes_read <"$TEST_DIR/b2")" = $(((chunks - hole) * K)) ] || fail "not every chunk but holes was read"
[ $((chunks - hole - $(json_get chunks_zero <"$TEST_DIR/b2"))) = $((data1 + 1)) ] ||
	fail "expected one data chunk more: $(cat "$TEST_DIR/b2")"
stored=$(json_get bytes_stored <"$TEST_DIR/b2")
[ "$stored" -lt $((3 * K + 65536)) ] || fail "the second backup stored $stored bytes"

# a whole restore to a new file: same bytes, sparse, a clean file system
keel image restore --json latest "$TEST_DIR/r.img" >"$TEST_DIR/r1" || fail "restore failed"
[ "$(json_get delta <"$TEST_DIR/r1")" = false ] || fail "a new file is no delta restore"
[ "$(sha "$TEST_DIR/r.img")" = "$sha_new" ] || fail "the restored image differs"
alloc=$(($(stat -c '%b * %B' "$TEST_DIR/r.img")))
[ "$alloc" -le $(((data1 + 1) * K)) ] || fail "the restored image is not sparse: $alloc bytes allocated"
expect_success e2fsck -fn "$TEST_DIR/r.img"

# delta restore onto the older copy: only the three changed chunks written
keel image restore --json --verify "latest:disk.img" "$TEST_DIR/old.img" >"$TEST_DIR/r2" ||
	fail "delta restore failed"
[ "$(json_get delta <"$TEST_DIR/r2")" = true ] || fail "not a delta restore"
[ "$(json_get chunks_written <"$TEST_DIR/r2")" = 3 ] || fail "expected 3 chunks written: $(cat "$TEST_DIR/r2")"
[ "$(json_get holes_punched <"$TEST_DIR/r2")" = 0 ] || fail "expected no hole punched"
[ "$(json_get chunks_verified <"$TEST_DIR/r2")" = "$chunks" ] || fail "--verify did not read all back"
[ "$(sha "$TEST_DIR/old.img")" = "$sha_new" ] || fail "the delta-restored image differs"

# and back: the first snapshot onto the changed image writes two chunks and punches one hole
keel image restore --json "$snap1" "$img" >"$TEST_DIR/r3" || fail "delta restore back failed"
[ "$(json_get chunks_written <"$TEST_DIR/r3")" = 2 ] || fail "expected 2 chunks written: $(cat "$TEST_DIR/r3")"
[ "$(json_get holes_punched <"$TEST_DIR/r3")" = 1 ] || fail "expected 1 hole punched"
[ "$(sha "$img")" = "$sha_old" ] || fail "restoring the first snapshot back differs"
expect_success e2fsck -fn "$img"

# nothing to do: nothing written
keel image restore --json "$snap1" "$img" >"$TEST_DIR/r4" || fail "a restore onto itself failed"
[ "$(json_get chunks_written <"$TEST_DIR/r4")" = 0 ] || fail "an equal target got chunks written"

# 'latest' is the newest image snapshot, not a newer file backup
expect_success keel backup "$TEST_DIR/files" >/dev/null
expect_success keel image restore latest "$TEST_DIR/r5.img" >/dev/null
[ "$(sha "$TEST_DIR/r5.img")" = "$sha_new" ] || fail "latest did not pick the newest image snapshot"
expect_error 2 "not an image snapshot" keel image restore "$(snapshot_ids | tail -n 1)" "$TEST_DIR/x.img"
expect_error 14 "no image 'nope'" keel image restore "latest:nope" "$TEST_DIR/x.img"
expect_error 2 "chunk-size" keel image backup --chunk-size 3000 "$img"

# the file restore reads an image snapshot as a sparse file (what readers
# older than the image fields do, docs/FORMAT.md), and check finds it whole
expect_success keel restore "$snap1" --target "$TEST_DIR/plain" >/dev/null
[ "$(sha "$TEST_DIR/plain/disk.img")" = "$sha_old" ] || fail "keel restore of an image snapshot differs"
expect_success keel check --read-data >/dev/null
expect_error 2 "neither a file nor a block device" keel image backup "$TEST_DIR/files"
expect_error 1 "cannot open" keel image backup "$TEST_DIR/no-such.img"
