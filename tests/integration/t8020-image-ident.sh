#!/usr/bin/env bash
# keel image backup records what each image holds (docs/IMAGES.md,
# "Identification"): partition tables made by sfdisk (GPT with its disk
# GUID and partition count, MBR with its types) and file systems made by
# mkfs directly on the image (ext4, ext2, xfs, vfat, btrfs, swap), each
# with the UUID and label given to mkfs; shown by the backup's summary,
# keel snapshots (text and --json) and keel ls --json. Unrecognised bytes
# record "".
. "$(dirname "$0")/../lib.sh"
require_keel
command -v mkfs.ext4 >/dev/null || skip_or_die "mkfs.ext4 missing"
command -v sfdisk >/dev/null || skip_or_die "sfdisk (fdisk) missing"
has_python || skip_or_die "python3 missing"

keel_init
d=$TEST_DIR
U=0e8a37a2-5c1d-4c5f-9d7e-3b1a2c4d5e6f
declare -A want

truncate -s 32M "$d/gpt.img"
printf 'label: gpt\nlabel-id: 6B1D2C3A-0F4E-4A5B-8C7D-1E2F3A4B5C6D\n,8M,L\n,8M,S\n,,L\n' |
	sfdisk -q "$d/gpt.img" >/dev/null || fail "sfdisk gpt failed"
want[gpt.img]="gpt disk-guid=6b1d2c3a-0f4e-4a5b-8c7d-1e2f3a4b5c6d partitions=3"
truncate -s 16M "$d/mbr.img"
printf 'label: dos\n,4M,83\n,4M,82\n' | sfdisk -q "$d/mbr.img" >/dev/null || fail "sfdisk dos failed"
want[mbr.img]="mbr partitions=2 types=83,82"
truncate -s 16M "$d/ext4.img"
mkfs.ext4 -q -F -U "$U" -L root-fs "$d/ext4.img" || fail "mkfs.ext4 failed"
want[ext4.img]="ext4 uuid=$U label=root-fs"
truncate -s 8M "$d/ext2.img"
mkfs.ext2 -q -F -U "$U" "$d/ext2.img" || fail "mkfs.ext2 failed"
want[ext2.img]="ext2 uuid=$U"
truncate -s 8M "$d/swap.img"
mkswap -U "$U" -L sw "$d/swap.img" >/dev/null 2>&1 || fail "mkswap failed"
want[swap.img]="swap uuid=$U label=sw"
if command -v mkfs.xfs >/dev/null; then
	truncate -s 320M "$d/xfs.img"
	mkfs.xfs -q -m uuid="$U" -L data "$d/xfs.img" || fail "mkfs.xfs failed"
	want[xfs.img]="xfs uuid=$U label=data"
fi
if command -v mkfs.vfat >/dev/null; then
	truncate -s 40M "$d/vfat.img"
	mkfs.vfat -F 32 -i 1234ABCD -n EFI "$d/vfat.img" >/dev/null || fail "mkfs.vfat failed"
	want[vfat.img]="vfat id=1234-ABCD label=EFI"
fi
if command -v mkfs.btrfs >/dev/null; then
	truncate -s 128M "$d/btrfs.img"
	mkfs.btrfs -q -U "$U" -L pool "$d/btrfs.img" || fail "mkfs.btrfs failed"
	want[btrfs.img]="btrfs uuid=$U label=pool"
fi
head -c 1048576 /dev/urandom >"$d/random.img"
want[random.img]=""

for name in "${!want[@]}"; do
	keel image backup --chunk-size 64K --json "$d/$name" >"$d/b.json" || fail "backup of $name failed"
	got=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["ident"][0])' <"$d/b.json")
	[ "$got" = "${want[$name]}" ] || fail "$name: recorded '$got', expected '${want[$name]}'"
	snap=$(json_get snapshot_id <"$d/b.json")
	keel image backup --chunk-size 64K "$d/$name" >"$d/b.txt" || fail "backup of $name failed"
	[ -z "${want[$name]}" ] || grep -qF "$d/$name: ${want[$name]}" "$d/b.txt" ||
		fail "$name: the summary does not show it: $(cat "$d/b.txt")"
	keel ls --json "$snap" | head -1 >"$d/ls.json"
	got=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["image"]["ident"][0])' <"$d/ls.json")
	[ "$got" = "${want[$name]}" ] || fail "$name: keel ls --json shows '$got'"
	log "$name: ${want[$name]:-(not recognised)}"
done

# two sources in one snapshot: one entry per path, in order
keel image backup --chunk-size 64K "$d/gpt.img" "$d/ext4.img" >/dev/null || fail "two-image backup failed"
keel snapshots --latest 1 --path "$d/gpt.img" >"$d/s.txt" || fail "keel snapshots failed"
grep -qF "$d/gpt.img: ${want[gpt.img]}" "$d/s.txt" && grep -qF "$d/ext4.img: ${want[ext4.img]}" "$d/s.txt" ||
	fail "keel snapshots does not show both images: $(cat "$d/s.txt")"
keel snapshots --json --latest 1 --path "$d/gpt.img" >"$d/s.json" || fail "keel snapshots --json failed"
python3 - "$d/s.json" "${want[gpt.img]}" "${want[ext4.img]}" <<'PY' || fail "keel snapshots --json: $(cat "$d/s.json")"
import json, sys
v = json.load(open(sys.argv[1]))
s = v[-1] if isinstance(v, list) else v
assert s["image"]["ident"] == sys.argv[2:4], s["image"]
assert s["image"]["method"] == "read" and s["image"]["consistency"] is None
PY

