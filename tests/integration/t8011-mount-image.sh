#!/usr/bin/env bash
# keel mount with a disk image snapshot (docs/IMAGES.md, docs/MOUNT.md):
# an ext4 image made by mkfs.ext4 -d is backed up with keel image backup;
# in the mount it is one large regular file with the image's bytes, sparse
# where the image's holes were, and mount -o loop,ro opens it, so single
# files come out of the disk backup equal to the originals.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-mount.sh"
require_keel
require_treecmp
require_fuse
command -v mkfs.ext4 >/dev/null || skip_or_die "mkfs.ext4 missing (e2fsprogs)"
command -v python3 >/dev/null || skip_or_die "python3 missing"

MNT=$TEST_DIR/mnt
keel_init
mkdir "$TEST_DIR/files" "$TEST_DIR/files/sub"
head -c 3000000 /dev/urandom >"$TEST_DIR/files/random"
seq 1 50000 >"$TEST_DIR/files/sub/numbers"
printf 'hello from the image\n' >"$TEST_DIR/files/sub/hello"
# whole seconds: mkfs.ext4 -d copies times without their nanoseconds
find "$TEST_DIR/files" -depth -exec touch -h -d @1770000000 {} +
img=$TEST_DIR/disk.img
truncate -s 48M "$img"
expect_success mkfs.ext4 -q -F -b 4096 -d "$TEST_DIR/files" "$img"
expect_success keel image backup --chunk-size 256K --tag disk "$img" >/dev/null
id=$(snapshot_ids | tail -n1)

mount_start "$MNT"
[ "$(ls "$MNT/tags")" = disk ] || fail "tags/: $(ls "$MNT/tags")"
f=$MNT/ids/${id:0:8}/disk.img
[ -f "$f" ] || fail "the image is not a regular file in the mount: $(ls -la "$MNT/ids/${id:0:8}")"
[ "$(stat -c %s "$f")" = "$(stat -c %s "$img")" ] || fail "the image's size differs"
[ "$(sha "$f")" = "$(sha "$img")" ] || fail "the image's bytes differ"
# the unused part of the file system is a hole for SEEK_HOLE (cp --sparse keeps it)
python3 - "$f" <<'PY' || fail "the mounted image has no hole for SEEK_HOLE"
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
if os.lseek(fd, 0, os.SEEK_HOLE) >= os.fstat(fd).st_size:
    sys.exit(1)
PY
expect_success cp --sparse=always "$f" "$TEST_DIR/copy.img"
[ "$(du -k "$TEST_DIR/copy.img" | cut -f1)" -lt 24000 ] || fail "a copy of the mounted image is not sparse"

# single files out of the disk backup: a loop device over the FUSE file
if ! command -v losetup >/dev/null || [ "$(id -u)" != 0 ] || ! losetup -f >/dev/null 2>&1; then
	log "NOTE: $TEST_NAME: no free loop device (or not root): the loop mount was not tried"
else
	mkdir "$TEST_DIR/loop"
	expect_success mount -o loop,ro -t ext4 "$f" "$TEST_DIR/loop"
	# the image's root has lost+found and mkfs's own times: compare below it
	rc=0
	treecmp --ignore-atime --ignore-owner "$TEST_DIR/files/sub" "$TEST_DIR/loop/sub" || rc=$?
	cmp "$TEST_DIR/files/random" "$TEST_DIR/loop/random" || rc=1
	umount "$TEST_DIR/loop" || fail "cannot unmount the loop mount"
	[ "$rc" = 0 ] || fail "files from the loop-mounted image differ"
	log "loop mount of the FUSE file: files equal"
fi

# SIGTERM unmounts and keel exits 0
kill -TERM "$MOUNT_PID"
mount_stop_wait
