#!/usr/bin/env bash
# Bare-metal restore (docs/BARE-METAL.md): a machine's disk (a GPT made by
# sfdisk with two ext4 partitions made by mkfs.ext4 -d, reached through a
# loop device with partition scanning) is backed up as a block device and
# restored onto a new blank disk (another loop device); the new disk has
# the same partition table (sfdisk --dump), its file systems are
# e2fsck-clean and, mounted read-only, hold the same files. Needs root,
# loop devices and mount: skipped without them.
. "$(dirname "$0")/../lib.sh"
require_keel
for t in sfdisk mkfs.ext4 e2fsck losetup; do
	command -v "$t" >/dev/null || skip_or_die "$t missing (fdisk, e2fsprogs, mount)"
done
if [ "$(id -u)" != 0 ] || ! losetup -f >/dev/null 2>&1; then
	log "SKIP: $TEST_NAME: needs root and a free loop device"
	exit 77
fi
LOOPS=()
MNTS=()
undo()
{
	local rc=$? m l
	for m in "${MNTS[@]}"; do umount "$m" 2>/dev/null || true; done
	# part() runs in $(...): its loop devices are listed in a file
	for l in $(cat "$d/loops" 2>/dev/null) "${LOOPS[@]}"; do losetup -d "$l" 2>/dev/null || true; done
	(exit $rc)
	cleanup
}
d=$TEST_DIR
trap undo EXIT

# partition N of disk image $1 as a block device: the partscan node when
# the kernel made one (and /dev shows it), else a loop device over its range
part()
{
	local disk=$1 loop=$2 n=$3 start size
	if [ -b "${loop}p$n" ]; then
		echo "${loop}p$n"
		return
	fi
	start=$(sfdisk --dump "$disk" | awk -v n="$n" '$1 ~ (n "$") && /start=/ {gsub(/[^0-9]/, "", $4); print $4}')
	size=$(sfdisk --dump "$disk" | awk -v n="$n" '$1 ~ (n "$") && /size=/ {gsub(/[^0-9]/, "", $6); print $6}')
	[ -n "$start" ] && [ -n "$size" ] || fail "no partition $n in $(sfdisk --dump "$disk")"
	l=$(losetup -f --show -o $((start * 512)) --sizelimit $((size * 512)) "$disk") || fail "losetup of partition $n failed"
	echo "$l" >>"$d/loops"
	echo "$l"
}

keel_init
mkdir -p "$d/root/etc" "$d/root/home/ann" "$d/boot"
seq 1 30000 >"$d/root/etc/numbers"
head -c 3000000 /dev/urandom >"$d/root/home/ann/photo.raw"
echo 'hello' >"$d/root/home/ann/note.txt"
ln -s ../etc/numbers "$d/root/home/link"
head -c 500000 /dev/urandom >"$d/boot/vmlinuz"
echo 'menuentry' >"$d/boot/grub.cfg"

# the old machine's disk
truncate -s 64M "$d/disk.img"
printf 'label: gpt\nsize=16M, type=L, name=boot\ntype=L, name=root\n' | sfdisk -q "$d/disk.img" >/dev/null || fail "sfdisk failed"
disk=$(losetup -f --show -P "$d/disk.img") || fail "losetup -P failed"
LOOPS+=("$disk")
p1=$(part "$d/disk.img" "$disk" 1) && p2=$(part "$d/disk.img" "$disk" 2) || exit 1
mkfs.ext4 -q -F -L boot -d "$d/boot" "$p1" || fail "mkfs.ext4 boot failed"
mkfs.ext4 -q -F -L root -d "$d/root" "$p2" || fail "mkfs.ext4 root failed"
sync

# back it up as a block device
keel image backup --chunk-size 256K --name sda --json "$disk" >"$d/b.json" || fail "image backup of $disk failed"
python3 -c 'import json,sys; i=json.load(sys.stdin)["ident"][0]; assert i.startswith("gpt ") and i.endswith(" partitions=2"), i' <"$d/b.json" ||
	fail "the GPT was not recognised: $(cat "$d/b.json")"

# the new machine's blank disk (a bit larger, as new disks are)
truncate -s 80M "$d/new.img"
new=$(losetup -f --show -P "$d/new.img") || fail "losetup of the new disk failed"
LOOPS+=("$new")
keel image restore --verify latest:sda "$new" >"$d/r.txt" || fail "restore onto $new failed"
# the kernel reads the new partition table
blockdev --rereadpt "$new" 2>/dev/null || partx -u "$new" 2>/dev/null || true

# same partition table (device names aside; the backup GPT header sits at
# the old disk's end: sfdisk reports last-lba of the old size until fixed)
sfdisk --dump "$d/disk.img" | sed "s|$d/disk.img|DISK|" | grep -v '^last-lba' >"$d/old.dump"
sfdisk --dump "$d/new.img" 2>/dev/null | sed "s|$d/new.img|DISK|" | grep -v '^last-lba' >"$d/new.dump"
diff "$d/old.dump" "$d/new.dump" >&9 || fail "the partition tables differ"

q1=$(part "$d/new.img" "$new" 1) && q2=$(part "$d/new.img" "$new" 2) || exit 1
for p in "$q1" "$q2"; do
	e2fsck -fn "$p" >"$d/fsck" 2>&1 || fail "$p is not clean: $(cat "$d/fsck")"
done
mkdir "$d/m1" "$d/m2"
if ! mount -o ro "$q1" "$d/m1" 2>"$d/mount.err"; then
	log "SKIP: $TEST_NAME: cannot mount here: $(cat "$d/mount.err")"
	exit 77
fi
MNTS+=("$d/m1")
mount -o ro "$q2" "$d/m2" || fail "mount of the root partition failed"
MNTS+=("$d/m2")
diff -r --no-dereference "$d/boot" "$d/m1" -x lost+found >&9 || fail "the boot file system differs"
diff -r --no-dereference "$d/root" "$d/m2" -x lost+found >&9 || fail "the root file system differs"
[ "$(readlink "$d/m2/home/link")" = ../etc/numbers ] || fail "a symlink differs"
# sfdisk can move the backup GPT to the new disk's end
sfdisk --relocate gpt-bak-std "$new" >/dev/null 2>&1 || fail "sfdisk --relocate failed"
sfdisk --verify "$new" >&9 2>&1 || fail "the GPT is not valid after --relocate"
