#!/usr/bin/env bash
# make-v1.sh KEEL: builds the golden repository of format version 1 in
# tests/golden/v1/ (run once, by hand, with the keel of that day; kept so
# that anyone can see how v1/repo was made). NEVER run it again for v1:
# the committed repository is the point (README.md). A new format version
# gets a make-v<N>.sh and a v<N>/ of its own.
#
# Source: a small deterministic tree below /tmp/keel-golden-v1 (fixed path,
# so the snapshots' paths are the same wherever the test runs). Snapshots:
#   old    host golden-a  /tmp/keel-golden-v1/old  data no later snapshot uses
#   base   host golden-a  /tmp/keel-golden-v1/src  a file of several chunks,
#          symlinks, a hard link, an empty file, xattrs, odd name bytes
#   incr   host golden-a  src again, incremental (one file changed, one new),
#          tag weekly
#   latest host golden-b  src with one more file (a different host)
# Written: v1/repo (the repository), v1/password, v1/manifest-<name>.txt
# (manifest.py of each snapshot's source), v1/snapshots.tsv (name, id,
# host, tag, time, source path) and v1/objects.tsv (role of each pack).
set -euo pipefail
export LC_ALL=C TZ=UTC
umask 022

KEEL=$(realpath "${1:?usage: make-v1.sh path/to/keel}")
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$HERE/v1
BASE=/tmp/keel-golden-v1
[ ! -e "$OUT/repo" ] || { echo "make-v1.sh: $OUT/repo exists; v1 is never remade" >&2; exit 1; }

rm -rf "$BASE"
mkdir -p "$OUT" "$BASE/old" "$BASE/src"
export KEEL_REPOSITORY=$OUT/repo KEEL_PASSWORD_FILE=$OUT/password
export HOME=$BASE/home XDG_CACHE_HOME=$BASE/home/.cache XDG_CONFIG_HOME=$BASE/home/.config
export KEEL_NO_CACHE=1
printf 'golden v1: not a secret, the test key of tests/golden\n' >"$KEEL_PASSWORD_FILE"

# prng SEED BYTES: deterministic incompressible bytes
prng()
{
	python3 -c '
import hashlib, sys
seed, n = sys.argv[1].encode(), int(sys.argv[2])
out = bytearray()
i = 0
while len(out) < n:
    out += hashlib.sha256(seed + i.to_bytes(8, "little")).digest()
    i += 1
sys.stdout.buffer.write(bytes(out[:n]))' "$1" "$2"
}

# stamp TIME PATH...: fixed mtimes (symlinks themselves too)
stamp()
{
	local t=$1
	shift
	touch -h -d "$t" "$@"
}

# ---- old: data only the first snapshot uses -------------------------------
prng old 20000 >"$BASE/old/gone.bin"
printf 'this file is only in the oldest snapshot\n' >"$BASE/old/gone.txt"
stamp '2024-01-01 10:00:00' "$BASE/old/gone.bin" "$BASE/old/gone.txt" "$BASE/old"

# ---- src ------------------------------------------------------------------
S=$BASE/src
mkdir -p "$S/dir/sub" "$S/xattr-dir" "$S/empty-dir"
prng big 100000 >"$S/big.bin"               # several chunks (chunk-max 32K)
prng medium 9000 >"$S/medium.bin"
seq 1 400 >"$S/dir/numbers.txt"             # compressible
printf 'version 1\n' >"$S/changing.txt"
: >"$S/empty"
printf '#!/bin/sh\necho golden\n' >"$S/dir/run.sh"
chmod 755 "$S/dir/run.sh"
printf 'private\n' >"$S/dir/sub/private.txt"
chmod 600 "$S/dir/sub/private.txt"
printf 'linked twice\n' >"$S/dir/hard-a"
ln "$S/dir/hard-a" "$S/hard-b"
ln -s big.bin "$S/link-to-big"
ln -s ../does/not/exist "$S/dir/dangling"
printf 'odd name\n' >"$S/odd $(printf '\001\377') name"
printf 'with xattrs\n' >"$S/xattr-dir/file"
setfattr -n user.golden -v dir-value "$S/xattr-dir"
setfattr -n user.golden -v file-value "$S/xattr-dir/file"
setfattr -n user.bin -v 0x00ff10 "$S/xattr-dir/file"
chmod 750 "$S/xattr-dir"
stamp_src()
{
	find "$S" -mindepth 1 -depth -print0 | xargs -0 touch -h -d "$1"
	touch -d "$1" "$S"
}
stamp_src '2024-01-02 10:00:00'

# objects_new DIR BEFORE: files below DIR not in the list BEFORE
objects_new()
{
	find "$KEEL_REPOSITORY/$1" -type f | sort | comm -13 "$2" -
}

backup()
{
	local name=$1 host=$2 tag=$3 time=$4 path=$5 id
	find "$KEEL_REPOSITORY/data" -type f | sort >"$BASE/packs.before"
	"$KEEL" backup --threads 1 --host "$host" ${tag:+--tag "$tag"} --time "$time" \
		--json "$path" >"$BASE/backup.json"
	id=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["snapshot_id"])' \
		<"$BASE/backup.json")
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$id" "$host" "${tag:--}" "$time" "$path" \
		>>"$OUT/snapshots.tsv"
	python3 "$HERE/manifest.py" "$path" >"$OUT/manifest-$name.txt"
	objects_new data "$BASE/packs.before" | while IFS= read -r p; do
		printf '%s\t%s\n' "${p#"$KEEL_REPOSITORY"/}" "$name"
	done >>"$BASE/packs.tsv"
}

"$KEEL" init --kdf-ops 1 --kdf-mem 8 --pack-size 1 --chunk-min 2K --chunk-avg 8K \
	--chunk-max 32K
: >"$OUT/snapshots.tsv"
: >"$BASE/packs.tsv"
backup old golden-a '' '2024-01-01 12:00:00' "$BASE/old"
backup base golden-a '' '2024-01-02 12:00:00' "$S"

printf 'version 2, longer\n' >"$S/changing.txt"
prng new 12000 >"$S/new.bin"
stamp '2024-01-03 10:00:00' "$S/changing.txt" "$S/new.bin" "$S"
backup incr golden-a weekly '2024-01-03 12:00:00' "$S"

prng host-b 6000 >"$S/host-b.bin"
stamp '2024-01-04 10:00:00' "$S/host-b.bin" "$S"
backup latest golden-b '' '2024-01-04 12:00:00' "$S"

# ---- roles of the packs ----------------------------------------------------
# Each backup wrote one data pack and one tree pack (asserted): trees have
# their own packer, so a pack holds one kind. The kind is found by damage:
# with the first blob of a copy's pack damaged, plain check (which reads
# every tree but no data) fails for a tree pack only. objects.tsv: path, role.
pack_kind()
{
	local copy=$BASE/kind-repo rc=0
	rm -rf "$copy"
	cp -a "$KEEL_REPOSITORY" "$copy"
	python3 -c '
import sys
f = open(sys.argv[1], "r+b")
f.seek(20)
b = f.read(1)
f.seek(20)
f.write(bytes([b[0] ^ 0xff]))' "$copy/$1"
	"$KEEL" -r "$copy" check >/dev/null 2>&1 || rc=$?
	rm -rf "$copy"
	case $rc in 0) echo data ;; 13) echo tree ;; *) echo "check exited $rc" >&2; exit 1 ;; esac
}
{
	for name in old base incr latest; do
		awk -F'\t' -v n="$name" '$2 == n { print $1 }' "$BASE/packs.tsv" >"$BASE/p"
		[ "$(wc -l <"$BASE/p")" = 2 ] || { echo "backup $name wrote $(wc -l <"$BASE/p") packs" >&2; exit 1; }
		while IFS= read -r p; do
			printf '%s\t%s-pack-%s\n' "$p" "$(pack_kind "$p")" "$name"
		done <"$BASE/p"
	done
	for d in config keys snapshots index; do
		find "$KEEL_REPOSITORY/$d" -type f | sort | sed "s|^$KEEL_REPOSITORY/||"
	done | awk '{ print $0 "\t" ($0 ~ /\// ? substr($0, 1, index($0, "/") - 1) : $0) }'
} >"$OUT/objects.tsv"

for kind in data tree; do
	[ "$(grep -c "	$kind-pack-" "$OUT/objects.tsv")" = 4 ] || { echo "not 4 $kind packs" >&2; exit 1; }
done
"$KEEL" check --read-data
rm -rf "$KEEL_REPOSITORY/locks"
echo "make-v1.sh: $OUT/repo: $(find "$KEEL_REPOSITORY" -type f -printf "%s\n" | awk "{ s += \$1 } END { print s }") bytes in files"
