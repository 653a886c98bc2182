#!/usr/bin/env bash
# t8022 (keel image backup --lvm-snapshot --freeze with real LVM on a loop
# device) where the kernel has no device-mapper (a container): it runs
# inside a VM. qemu-system-x86_64 boots the kernel of linux-image-amd64
# with an initramfs of busybox-static and the kernel's virtio and 9p
# modules; its init mounts this machine's root file system read-only over
# virtio-9p (the keel build, lvm2, e2fsprogs, bash and python3 come from
# there) and a writable 9p export of a directory of this test, gives the
# root fresh /proc, /sys, /dev (devtmpfs), /run and /tmp (tmpfs), chroots
# into it and there loads dm-mod, dm-snapshot, loop and ext4 with the
# host's modprobe and runs t8022 as root, with no udev. Its output and
# exit code come back on the serial console and in the export. t8022 must
# pass inside the VM: its skip (77) is a failure here, as the point is
# that it runs. KVM where /dev/kvm is usable, TCG (slow) elsewhere.
. "$(dirname "$0")/../lib.sh"
. "$KEEL_SOURCE_ROOT/tests/lib-vm.sh"
require_keel
for t in qemu-system-x86_64 cpio gzip modprobe; do
	command -v "$t" >/dev/null || skip_or_die "$t missing (qemu-system-x86, cpio, kmod)"
done
for t in lvcreate mkfs.ext4 e2fsck python3; do
	command -v "$t" >/dev/null || skip_or_die "$t missing (lvm2, e2fsprogs, python3): t8022 needs it in the VM"
done
bb=$(command -v busybox || true)
[ -n "$bb" ] && ! ldd "$bb" >/dev/null 2>&1 || skip_or_die "no static busybox (busybox-static)"
kernel=$(ls -1v /boot/vmlinuz-* 2>/dev/null | tail -n1 || true)
kver=${kernel#/boot/vmlinuz-}
[ -n "$kernel" ] && [ -r "$kernel" ] && [ -d "/lib/modules/$kver" ] ||
	skip_or_die "no readable kernel with its modules in /boot (linux-image-amd64)"
# the ones the chroot loads itself must exist for this kernel too
for m in dm-mod dm-snapshot loop ext4; do
	modprobe -S "$kver" --show-depends "$m" >/dev/null 2>&1 ||
		skip_or_die "kernel $kver has no module $m"
done
accel=(-accel tcg)
if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then accel=(-enable-kvm -cpu host); fi
inner=$KEEL_SOURCE_ROOT/tests/integration/t8022-image-lvm-snapshot.sh
[ -r "$inner" ] || fail "$inner is missing"

d=$TEST_DIR
nonce=$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')
mkdir -p "$d/ir/bin" "$d/ir/lib/modules" "$d/ir/host" "$d/out"

# ---- the initramfs: busybox, the virtio and 9p modules, an init ------------
cp "$bb" "$d/ir/bin/busybox"
vm_modules "$kver" "$d/ir" virtio_pci 9pnet_virtio 9p
# The script the chroot runs: what meson gives a test (lib.sh), the host
# paths of the build; TEST_DIR of t8022 in the VM's tmpfs /tmp (loop files
# on 9p are not what t8022 is about).
{
	printf '#!/bin/bash\n'
	printf 'export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C TMPDIR=/tmp\n'
	for v in KEEL_BIN TREECMP JSONGET ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS; do
		[ -z "${!v:-}" ] || printf 'export %s=%q\n' "$v" "${!v}"
	done
	printf 'export KEEL_TEST_REQUIRE_ALL=1\n'
	printf 'for m in dm-mod dm-snapshot loop ext4; do modprobe "$m" || echo "KEEL-MODPROBE-FAILED $m"; done\n'
	printf 'bash %q >/run/keel-out/t8022.log 2>&1 </dev/null\n' "$inner"
	printf 'rc=$?\n'
	printf 'cat /run/keel-out/t8022.log\n'
	printf 'echo "$rc" >/run/keel-out/rc\n'
	printf 'echo "KEEL-T8022-EXIT $rc %s"\n' "$nonce"
} >"$d/out/inner.sh"
# The VM's /tmp is a fresh tmpfs; what the chroot runs from the host's /tmp
# (a clone of the project there, as in `git clone . /tmp/x`) is bound into it
tmp_keep=
for p in "$KEEL_SOURCE_ROOT" "${KEEL_BIN:-}" "${TREECMP:-}" "${JSONGET:-}" "$inner"; do
	[ -n "$p" ] || continue
	p=$(realpath -m "$p")
	case $p in /tmp/?*) n=${p#/tmp/} n=${n%%/*} ;; *) continue ;; esac
	case " $tmp_keep " in *" $n "*) ;; *) tmp_keep+=" $n" ;; esac
done
cat >"$d/ir/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mkdir -p /proc /sys /dev
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo "KEEL-BOOTED $nonce" >/dev/ttyS0
for m in \$(cat /modules); do insmod /lib/modules/\$m || echo "KEEL-INSMOD-FAILED \$m" >/dev/ttyS0; done
o=trans=virtio,version=9p2000.L,msize=262144
if mount -t 9p -o ro,cache=loose,\$o hostroot /host; then
	# the host's /proc, /dev, ... are not this kernel's: fresh ones
	mount -t proc proc /host/proc
	mount -t sysfs sys /host/sys
	mount -t devtmpfs dev /host/dev
	ln -sf /proc/self/fd /host/dev/fd
	mkdir -p /host/dev/shm
	mount -t tmpfs -o mode=1777 shm /host/dev/shm
	mount -t tmpfs -o mode=755 run /host/run
	mkdir -p /hostsave
	mount -o bind /host/tmp /hostsave
	mount -t tmpfs -o mode=1777 tmp /host/tmp
	for n in $tmp_keep; do
		mkdir -p "/host/tmp/\$n"
		mount -o bind "/hostsave/\$n" "/host/tmp/\$n" || echo "KEEL-BIND-FAILED \$n" >/dev/ttyS0
	done
	mkdir -p /host/run/keel-out /host/run/lock
	mount -t 9p -o \$o out /host/run/keel-out
	chroot /host /bin/bash /run/keel-out/inner.sh >/dev/ttyS0 2>&1
	sync
else
	echo "KEEL-NO-HOSTROOT" >/dev/ttyS0
fi
poweroff -f
EOF
chmod 755 "$d/ir/init"
(cd "$d/ir" && find . | cpio -o -H newc --quiet | gzip -1) >"$d/initrd.gz"

# ---- the VM -----------------------------------------------------------------
# The host's root read-only (multidevs=remap: it spans several file
# systems, whose inode numbers would collide), $d/out writable. In the
# background, so that cleanup (lib.sh) kills it when the test ends early;
# at most 10 minutes (TCG on a busy machine: t8022 takes 1-2 minutes).
# One vCPU: two (two TCG threads) took twice as long on a loaded 2-core
# machine, and take a core from the tests beside it.
qemu-system-x86_64 "${accel[@]}" -m 1024 -smp 1 -display none -nodefaults \
	-no-reboot -serial "file:$d/console" \
	-kernel "$kernel" -initrd "$d/initrd.gz" -append "console=ttyS0 panic=-1 quiet" \
	-fsdev local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap \
	-device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot \
	-fsdev local,id=out,path="$d/out",security_model=none \
	-device virtio-9p-pci,fsdev=out,mount_tag=out >"$d/qemu.log" 2>&1 &
qemu=$!
BG_PIDS+=("$qemu")
i=0
while kill -0 "$qemu" 2>/dev/null && [ $i -lt 600 ]; do sleep 1; i=$((i + 1)); done
kill -0 "$qemu" 2>/dev/null && fail "the VM still runs after 600 s: $(tail -n30 "$d/console")"
rc=0
wait "$qemu" || rc=$?
[ "$rc" = 0 ] || fail "qemu exited $rc: $(tail -n5 "$d/qemu.log") $(tail -n30 "$d/console" 2>/dev/null)"
grep -q "KEEL-BOOTED $nonce" "$d/console" || fail "the VM did not boot: $(tail -n30 "$d/console")"
grep -q KEEL-NO-HOSTROOT "$d/console" && fail "the VM could not mount the host's root: $(tail -n30 "$d/console")"
grep -q KEEL-INSMOD-FAILED "$d/console" && fail "the initramfs could not load a module: $(grep KEEL- "$d/console")"
grep -q KEEL-MODPROBE-FAILED "$d/console" && fail "modprobe in the VM failed: $(grep KEEL- "$d/console")"
line=$(grep -a "^KEEL-T8022-EXIT [0-9]* $nonce" "$d/console" || true)
[ -n "$line" ] || fail "t8022 did not finish in the VM: $(tail -n40 "$d/console")"
inner_rc=$(echo "$line" | cut -d' ' -f2)
log "t8022 in the VM (exit $inner_rc):"
sed 's/^/    /' "$d/out/t8022.log" >&9 2>/dev/null || true
[ "$(cat "$d/out/rc" 2>/dev/null)" = "$inner_rc" ] || fail "the export and the console disagree on t8022's exit"
[ "$inner_rc" = 0 ] || fail "t8022 exited $inner_rc in the VM"
grep -qx "PASS: t8022-image-lvm-snapshot" "$d/out/t8022.log" || fail "t8022 did not report its success"
exit 0
