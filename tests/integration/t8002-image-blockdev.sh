#!/usr/bin/env bash
# keel image on block devices (loop devices): the size from BLKGETSIZE64,
# a device backed up with no new chunks when a file of the same bytes was
# backed up before, and restored onto a device as a delta. Needs root and
# loop devices, which containers often lack: skipped without them.
. "$(dirname "$0")/../lib.sh"
require_keel
if [ "$(id -u)" != 0 ] || ! losetup -f >/dev/null 2>&1; then
	log "SKIP: $TEST_NAME: needs root and a free loop device"
	exit 77
fi
LOOPS=()
trap 'rc=$?; for d in "${LOOPS[@]}"; do losetup -d "$d" 2>/dev/null; done; (exit $rc); cleanup' EXIT

keel_init
K=262144
img=$TEST_DIR/disk.img
truncate -s 8M "$img"
head -c 1048576 /dev/urandom | dd of="$img" bs=1M seek=2 conv=notrunc status=none
head -c 100000 /dev/urandom | dd of="$img" bs=4096 seek=1500 conv=notrunc status=none
expect_success keel image backup --chunk-size 256K --json "$img" >/dev/null

src=$(losetup -f --show -r "$img") || fail "losetup of the image failed"
LOOPS+=("$src")
keel image backup --chunk-size 256K --name disk.img --json "$src" >"$TEST_DIR/b" ||
	fail "backup of $src failed"
[ "$(json_get bytes_total <"$TEST_DIR/b")" = $((8 * 1048576)) ] || fail "wrong device size: $(cat "$TEST_DIR/b")"
[ "$(json_get chunks_new <"$TEST_DIR/b")" = 0 ] || fail "the device's chunks were not all known"

truncate -s 8M "$TEST_DIR/blank"
head -c 300000 /dev/urandom | dd of="$TEST_DIR/blank" bs=4096 seek=100 conv=notrunc status=none
dst=$(losetup -f --show "$TEST_DIR/blank") || fail "losetup of the target failed"
LOOPS+=("$dst")
keel image restore --json --verify latest "$dst" >"$TEST_DIR/r" || fail "restore onto $dst failed"
[ "$(json_get delta <"$TEST_DIR/r")" = true ] || fail "a device is always a delta restore"
# holes written as zeros where the target had data (chunk 100*4096/K = 1, 2)
[ "$(json_get holes_punched <"$TEST_DIR/r")" = 2 ] || fail "expected 2 chunks zeroed: $(cat "$TEST_DIR/r")"
[ "$(sha256sum <"$dst" | cut -d' ' -f1)" = "$(sha "$img")" ] || fail "the device differs from the image"
[ "$(json_get chunks_verified <"$TEST_DIR/r")" = 32 ] || fail "--verify did not read all 32 chunks"

# a device smaller than the image is refused
truncate -s 4M "$TEST_DIR/small"
small=$(losetup -f --show "$TEST_DIR/small") || fail "losetup of the small target failed"
LOOPS+=("$small")
expect_error 21 "smaller than the image" keel image restore latest "$small"
