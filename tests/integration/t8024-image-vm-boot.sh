#!/usr/bin/env bash
# A VM boots from 'keel image serve' (docs/IMAGES.md, "Booting a VM from
# the repository"). The boot disk is made from Debian's packages: a FAT
# file system (mkfs.vfat) holding SYSLINUX's boot sector and loader, the
# kernel of linux-image-amd64 and an initramfs of busybox-static and the
# kernel's virtio/vfat modules, whose init prints a marker line with a
# nonce to the serial console, mounts the disk it booted from, logs the
# boot in a file on it when it is writable, and powers off. The disk is
# backed up and deleted; qemu-system-x86_64's BIOS then loads the boot
# sector, SYSLINUX, the kernel and the initramfs from the NBD export,
# i.e. from the repository. Two boots: read-only (the marker, nothing
# written) and with --overlay (the VM's file is in the overlay, across a
# restart of serve, and in 'keel image backup --from-overlay'; the
# repository's image is unchanged). KVM where /dev/kvm is usable, TCG
# (slow: about 30 s a boot on a quiet machine) elsewhere.
. "$(dirname "$0")/../lib.sh"
. "$KEEL_SOURCE_ROOT/tests/lib-vm.sh"
. "$KEEL_SOURCE_ROOT/tests/lib-nbd.sh"
require_keel
require_nbd_tools
for t in qemu-system-x86_64 syslinux mcopy mtype mdir mkfs.vfat cpio gzip modprobe; do
	command -v "$t" >/dev/null ||
		skip_or_die "$t missing (qemu-system-x86, syslinux, mtools, dosfstools, cpio, kmod)"
done
bb=$(command -v busybox || true)
[ -n "$bb" ] && ! ldd "$bb" >/dev/null 2>&1 || skip_or_die "no static busybox (busybox-static)"
kernel=$(ls -1v /boot/vmlinuz-* 2>/dev/null | tail -n1 || true)
kver=${kernel#/boot/vmlinuz-}
[ -n "$kernel" ] && [ -r "$kernel" ] && [ -d "/lib/modules/$kver" ] ||
	skip_or_die "no readable kernel with its modules in /boot (linux-image-amd64)"
accel=(-accel tcg)
if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then accel=(-enable-kvm -cpu host); fi

# ---- the boot disk ----------------------------------------------------------
d=$TEST_DIR
nonce=$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')
mkdir -p "$d/ir/bin" "$d/ir/lib/modules"
cp "$bb" "$d/ir/bin/busybox"
# the virtio disk and its FAT file system
vm_modules "$kver" "$d/ir" virtio_pci virtio_blk vfat nls_cp437 nls_ascii
cat >"$d/ir/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mkdir -p /proc /sys /dev /mnt
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo "KEEL-BOOTED $nonce" >/dev/ttyS0
for m in \$(cat /modules); do insmod /lib/modules/\$m; done
i=0
while [ ! -b /dev/vda ] && [ \$i -lt 300 ]; do sleep 0.1; i=\$((i + 1)); done
mode=rw
[ "\$(cat /sys/block/vda/ro 2>/dev/null)" = 0 ] || mode=ro
if mount -t vfat -o \$mode /dev/vda /mnt; then
	echo "KEEL-DISK \$mode \$(cat /mnt/BOOTS.TXT 2>/dev/null | wc -l)" >/dev/ttyS0
	[ \$mode = ro ] || echo "boot $nonce" >>/mnt/BOOTS.TXT
	umount /mnt
else
	echo "KEEL-DISK none" >/dev/ttyS0
fi
sync
poweroff -f
EOF
chmod 755 "$d/ir/init"
(cd "$d/ir" && find . | cpio -o -H newc --quiet | gzip -1) >"$d/initrd.gz"
printf 'DEFAULT linux\nPROMPT 0\nTIMEOUT 0\nLABEL linux\n  KERNEL vmlinuz\n  INITRD initrd.gz\n  APPEND console=ttyS0 panic=-1 quiet\n' >"$d/syslinux.cfg"
img=$d/boot.img
truncate -s 48M "$img"
expect_success mkfs.vfat -n KEELBOOT "$img" >/dev/null
expect_success syslinux --install "$img"
export MTOOLS_SKIP_CHECK=1
for f in "$kernel:vmlinuz" "$d/initrd.gz:initrd.gz" "$d/syslinux.cfg:syslinux.cfg"; do
	expect_success mcopy -i "$img" "${f%:*}" "::${f##*:}"
done

keel_init
keel image backup --chunk-size 256K --json "$img" >"$d/b1" || fail "image backup failed"
snap=$(json_get snapshot_id <"$d/b1")
# from here on the disk exists only in the repository
rm -f "$img" "$d/initrd.gz"
sock=$d/s.sock
uri=$(nbd_uri "$sock")

# boot NAME DRIVE-OPTIONS: runs the VM until it powers off (or 15 minutes
# pass); its serial console in $d/console-NAME
boot()
{
	local name=$1 opts=$2 rc=0
	timeout 900 qemu-system-x86_64 "${accel[@]}" -m 256 -display none -nodefaults \
		-no-reboot -serial "file:$d/console-$name" \
		-drive "file=$uri,format=raw,if=virtio$opts" >"$d/qemu-$name.log" 2>&1 || rc=$?
	[ "$rc" = 0 ] || fail "qemu ($name) exited $rc: $(tail -n5 "$d/qemu-$name.log") $(tail -n5 "$d/console-$name" 2>/dev/null)"
	grep -q "KEEL-BOOTED $nonce" "$d/console-$name" ||
		fail "the VM ($name) did not boot from the export: $(tail -n15 "$d/console-$name")"
}

# ---- a read-only boot -------------------------------------------------------
serve_start ro "$snap" --socket "$sock"
boot ro ,readonly=on
grep -q '^KEEL-DISK ro 0' "$d/console-ro" ||
	fail "the read-only VM did not mount its disk: $(grep KEEL- "$d/console-ro")"
serve_stop ro

# ---- a writable boot: what the VM writes stays in the overlay ---------------
ov=$d/overlay
serve_start rw "$snap" --socket "$sock" --overlay "$ov"
boot rw ''
grep -q '^KEEL-DISK rw 0' "$d/console-rw" ||
	fail "the VM did not mount its disk writable: $(grep KEEL- "$d/console-rw")"
serve_stop rw
# serve again on the same overlay: the VM's file is there
serve_start rw2 "$snap" --socket "$sock" --overlay "$ov"
expect_success nbdcopy "$uri" "$d/after.img"
serve_stop rw2
mtype -i "$d/after.img" ::BOOTS.TXT >"$d/boots" 2>&1 || fail "the overlay lost the VM's file: $(cat "$d/boots")"
[ "$(cat "$d/boots")" = "boot $nonce" ] || fail "the VM's file reads '$(cat "$d/boots")'"
# the repository's image is unchanged; --from-overlay takes the VM's state
expect_success keel image restore -q "$snap" "$d/orig.img"
mdir -i "$d/orig.img" ::BOOTS.TXT >/dev/null 2>&1 && fail "the VM's write reached the repository's image"
keel image backup --from-overlay --json "$ov" >"$d/b2" || fail "backup --from-overlay failed"
expect_success keel image restore -q "$(json_get snapshot_id <"$d/b2")" "$d/ovl.img"
cmp -s "$d/ovl.img" "$d/after.img" || fail "--from-overlay backed up other bytes than the export served"
exit 0
