#!/usr/bin/env bash
# keel image backup --lvm-snapshot --freeze (docs/IMAGES.md, "Consistency")
# with real LVM on a loop device: a volume group on a loop file, an ext4
# logical volume mounted and written to while it is backed up through a
# temporary snapshot (made with the file system frozen), which is removed
# afterwards, also when the backup fails; the snapshot records what was
# done, the restored image is e2fsck-clean; two volumes of one group
# backed up at once; and a source that is not a logical volume is
# refused. Without udev, lvm is told to make its device nodes itself.
# Needs root, loop devices and device-mapper: skipped without them (t8027
# runs it in a VM where the kernel lacks device-mapper).
. "$(dirname "$0")/../lib.sh"
require_keel
for t in pvcreate vgcreate lvcreate lvs vgremove mkfs.ext4 e2fsck; do
	command -v "$t" >/dev/null || skip_or_die "$t missing (lvm2, e2fsprogs)"
done
if [ "$(id -u)" != 0 ] || ! losetup -f >/dev/null 2>&1; then
	log "SKIP: $TEST_NAME: needs root and a free loop device"
	exit 77
fi
if [ ! -e /dev/mapper/control ] && ! dmsetup mknodes >/dev/null 2>&1 || ! dmsetup version >/dev/null 2>&1 ||
	! grep -qw device-mapper /proc/misc; then
	log "SKIP: $TEST_NAME: device-mapper is not available here (no dm_mod / /dev/mapper/control)"
	exit 77
fi
# lvm's configuration: a copy of the system's in TEST_DIR (LVM_SYSTEM_DIR,
# which keel's lvcreate and lvremove inherit), so that the metadata
# archives of the test's volume group stay out of /etc/lvm (which may
# also be read-only: t8027 runs this in a VM on the host's root). Without
# udev (a VM's init, a container) nobody makes the /dev/VG/LV nodes that
# lvm waits for unless it is told to make them itself.
export LVM_SYSTEM_DIR=$TEST_DIR/lvm LVM_SUPPRESS_FD_WARNINGS=1
mkdir "$LVM_SYSTEM_DIR"
[ ! -d /etc/lvm ] || cp -R /etc/lvm/. "$LVM_SYSTEM_DIR/" || fail "cannot copy /etc/lvm"
if [ ! -e /run/udev/control ]; then
	log "$TEST_NAME: udev is not running: lvm makes the device nodes itself"
	printf 'activation {\n\tudev_sync = 0\n\tudev_rules = 0\n}\n' >>"$LVM_SYSTEM_DIR/lvmlocal.conf"
fi
VG=keeltest$$
MNT=$TEST_DIR/mnt
LOOP=
WRITER=
undo()
{
	local rc=$?
	[ -z "$WRITER" ] || kill "$WRITER" 2>/dev/null || true
	fsfreeze -u "$MNT" 2>/dev/null || true
	umount "$MNT" 2>/dev/null || true
	vgremove -q -f "$VG" >/dev/null 2>&1 || true
	[ -z "$LOOP" ] || pvremove -q -f "$LOOP" >/dev/null 2>&1 || true
	[ -z "$LOOP" ] || losetup -d "$LOOP" 2>/dev/null || true
	(exit $rc)
	cleanup
}
trap undo EXIT

keel_init
truncate -s 200M "$TEST_DIR/pv.img"
LOOP=$(losetup -f --show "$TEST_DIR/pv.img") || fail "losetup failed"
pvcreate -q "$LOOP" >/dev/null || fail "pvcreate failed"
vgcreate -q "$VG" "$LOOP" >/dev/null || fail "vgcreate failed"
lvcreate -q -y -L 64M -n root "$VG" >/dev/null || fail "lvcreate failed"
LV=/dev/$VG/root
mkdir "$TEST_DIR/files" "$MNT"
seq 1 50000 >"$TEST_DIR/files/numbers"
mkfs.ext4 -q -F -d "$TEST_DIR/files" "$LV" || fail "mkfs.ext4 failed"
mount "$LV" "$MNT" || fail "mount failed"

(i=0; while :; do echo "$i" >"$MNT/counter.$((i % 50))"; i=$((i + 1)); done) &
WRITER=$!
sleep 0.5
keel image backup --chunk-size 256K --lvm-snapshot --freeze "$MNT" --json "$LV" >"$TEST_DIR/b.json" ||
	fail "backup with --lvm-snapshot failed"
snap=$(json_get snapshot_id <"$TEST_DIR/b.json")
timeout 10 sh -c "echo after >'$MNT/after' && sync -f '$MNT/after'" || fail "the file system stayed frozen"
kill "$WRITER"
wait "$WRITER" 2>/dev/null || true
WRITER=
[ "$(lvs --noheadings -o lv_name "$VG" | grep -c keel-snap)" = 0 ] || fail "the LVM snapshot was left: $(lvs "$VG")"

keel snapshots --json >"$TEST_DIR/s.json" || fail "keel snapshots failed"
python3 - "$TEST_DIR/s.json" "$snap" "lvm-snapshot $VG/root, freeze $MNT" "$LV" <<'PY' || fail "not recorded: $(cat "$TEST_DIR/s.json")"
import json, sys
v = json.load(open(sys.argv[1]))
s = [x for x in v if x["id"] == sys.argv[2]][0]
assert s["image"]["consistency"] == sys.argv[3], s["image"]
assert s["paths"] == [sys.argv[4]], s["paths"]
assert s["image"]["ident"][0].startswith("ext4 uuid="), s["image"]
PY
keel ls "$snap" | grep -qx /root || fail "the image is not named after the volume"
keel image restore "$snap" "$TEST_DIR/restored.img" >/dev/null || fail "restore failed"
e2fsck -fn "$TEST_DIR/restored.img" >"$TEST_DIR/fsck" 2>&1 || fail "restored image not clean: $(cat "$TEST_DIR/fsck")"

# two volumes of one group at once (their snapshots need two names), the
# frozen file system on one of them (device-mapper freezes it: an explicit
# freeze made lvcreate's suspend fail, EBUSY); then the other alone, with
# the file system frozen by keel while its snapshot is made
lvcreate -q -y -L 8M -n data "$VG" >/dev/null || fail "lvcreate of data failed"
head -c 4M /dev/urandom >"$TEST_DIR/data.bin"
dd if="$TEST_DIR/data.bin" of="/dev/$VG/data" bs=1M conv=fsync status=none || fail "cannot write data"
keel image backup --lvm-snapshot --freeze "$MNT" --json "$LV" "/dev/$VG/data" >"$TEST_DIR/b2.json" ||
	fail "backup of two volumes failed"
keel image backup --lvm-snapshot --freeze "$MNT" --json "/dev/$VG/data" >"$TEST_DIR/b3.json" ||
	fail "backup of the volume without the frozen file system failed"
[ "$(lvs --noheadings -o lv_name "$VG" | grep -c keel-snap)" = 0 ] || fail "LVM snapshots were left: $(lvs "$VG")"
keel image restore "$(json_get snapshot_id <"$TEST_DIR/b3.json")" "$TEST_DIR/data.img" >/dev/null ||
	fail "restore of data failed"
cmp -n 4194304 "$TEST_DIR/data.bin" "$TEST_DIR/data.img" || fail "data restored other bytes"

# a backup that fails after the snapshots were made (two sources, one --name) removes them
expect_error 2 "needs exactly one source" keel image backup --lvm-snapshot --name x "$LV" "$LV"
[ "$(lvs --noheadings -o lv_name "$VG" | grep -c keel-snap)" = 0 ] || fail "a failed backup left its LVM snapshot"
# not a logical volume
truncate -s 1M "$TEST_DIR/plain.img"
expect_error 2 "not an LVM logical volume" keel image backup --lvm-snapshot "$TEST_DIR/plain.img"
