# tests/lib-vm.sh: what the tests that boot /boot's kernel in qemu share
# (t8024, t8027). Sourced after lib.sh.

# vm_modules KVER DIR MODULE...: the modules and the ones they need, in
# load order (modprobe resolves the dependencies; the ones built into the
# kernel are skipped), unpacked into DIR/lib/modules, their file names
# in DIR/modules for the init to insmod
vm_modules()
{
	local kver=$1 ir=$2 what path m
	shift 2
	mkdir -p "$ir/lib/modules"
	for m in "$@"; do
		modprobe -S "$kver" --show-depends "$m" ||
			skip_or_die "modprobe cannot resolve $m for $kver"
	done >"$ir.deps"
	: >"$ir/modules"
	while read -r what path _; do
		[ "$what" = insmod ] || continue
		m=$(basename "$path")
		grep -qx "${m%.ko*}.ko" "$ir/modules" && continue
		case $m in
		*.ko) cp "$path" "$ir/lib/modules/" ;;
		*.ko.xz) xz -dc "$path" >"$ir/lib/modules/${m%.xz}" ;;
		*.ko.zst) zstd -qdc "$path" >"$ir/lib/modules/${m%.zst}" ;;
		*) skip_or_die "cannot unpack module $path" ;;
		esac
		echo "${m%.ko*}.ko" >>"$ir/modules"
	done <"$ir.deps"
}
