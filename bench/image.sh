#!/usr/bin/env bash
# bench/image.sh: disk images (issue 18). keel image backup/restore next
# to restic and borg backing up the same image as one file, and the NBD
# read latency of keel image serve from a local and an S3 repository.
# It measures and reports; it never fails because a figure is slow.
#
#     bench/image.sh [--size 2G] [--runs 3] [--tools "keel restic borg"]
#                    [--no-s3] [--reads 1000] [--keel PATH] [--plugin PATH]
#                    [--read-only]
#
# The image is an ext4 file system made by mkfs.ext4 -d (kept in
# bench/work/image/, rebuilt when --size changes): files of /usr (programs,
# libraries, documentation: about 55% of the size, hard links of the first
# files in path order), a 5% file of random bytes (a database's pages) and
# 3% of text logs; the rest is free space. Per run, every tool gets a new
# repository and backs up:
#   first       the raw image
#   unchanged   the same image again
#   after 1%    the image after a 1% mutation: mounted (a loop device) and
#               changed through the file system: new files (0.4%), files
#               overwritten in place (0.4%), logs appended to (0.2%); without
#               root or loop devices, the same amounts as raw 1 MiB writes
# keel also backs up the image as qcow2 with a persistent dirty bitmap
# (qemu-img bitmap --add), read through qemu-nbd --bitmap: "first qcow2"
# reads it all, "unchanged bitmap" and "after 1% bitmap" read only what
# the bitmap marks (the mutation is applied to the qcow2 through qemu-io,
# so its bitmap sees it). Then: a full restore to a new file, and for keel
# a delta restore (keel image restore onto the image as it was before the
# mutation); the full restore is of the qcow2's last snapshot (so the
# comparison with the mutated image also checks the bitmap's backup).
# "stored" is what the backup added to the repository (du); the bitmap's
# backups share keel's repository with the raw ones, so what they store is
# only what the raw backup before them did not.
# Medians of the runs, and ratios to keel's, are printed at the end.
# --read-only: keel alone, reading the image: first, unchanged, first
# qcow2 (the qcow2 read through qemu-nbd against the raw file read with
# SEEK_DATA; both backups after the first find every chunk stored).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
size=2G runs=3 tools="keel restic borg" s3=1 reads=1000 read_only=0
KEEL=$ROOT/build/src/cli/keel plugin=$ROOT/build/src/nbdkit/nbdkit-keel-plugin.so
while [ $# -gt 0 ]; do
	case $1 in
	--size) size=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	--tools) tools=$2; shift 2 ;;
	--no-s3) s3=0; shift ;;
	--reads) reads=$2; shift 2 ;;
	--keel) KEEL=$(realpath "$2"); shift 2 ;;
	--plugin) plugin=$(realpath "$2"); shift 2 ;;
	--read-only) read_only=1 tools=keel s3=0; shift ;;
	*) echo "bench/image.sh: unknown argument '$1'" >&2; exit 2 ;;
	esac
done
KEEL_INIT_ARGS="--kdf-ops 1 --kdf-mem 8"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
for t in $tools qemu-img qemu-io qemu-nbd nbdkit mkfs.ext4 python3; do
	command -v "${t/keel/$KEEL}" >/dev/null || die "$t missing"
done
export KEEL_NBDKIT_PLUGIN=$plugin
WORK=$ROOT/bench/work/image
W=$WORK/run
CACHE=$W/cache
mkdir -p "$WORK"
bytes=$(numfmt --from=iec "$size")
base=$WORK/base-$size.img
results=$WORK/results.tsv
mnt=$WORK/mnt
S3_STARTED=0
cleanup() {
	if mountpoint -q "$mnt" 2>/dev/null; then umount "$mnt"; fi
	[ "$S3_STARTED" = 0 ] || "$ROOT/scripts/ceph-rgw-stop.sh" "$WORK/ceph" >/dev/null 2>&1 || true
	rm -rf "$W" "$WORK/ceph"
}
trap cleanup EXIT

# ---- the image ---------------------------------------------------------------
make_base() {
	local c=$WORK/content
	rm -rf "$c" "$base"
	mkdir -p "$c/var/lib" "$c/var/log"
	find /usr -xdev -type f -size +0 -printf '%s %p\n' | sort -k2 |
		awk -v max="$((bytes * 55 / 100))" '{ s += $1 } s <= max { print $2 }' >"$WORK/files"
	(cd / && sed 's,^/,,' "$WORK/files" | cpio -pdm --quiet --link "$c" 2>/dev/null) ||
		(cd / && sed 's,^/,,' "$WORK/files" | cpio -pdm --quiet "$c")
	head -c $((bytes * 5 / 100)) /dev/urandom >"$c/var/lib/db.bin"
	python3 - "$c/var/log" $((bytes * 3 / 100)) <<'PY'
import random, sys
d, total = sys.argv[1], int(sys.argv[2])
rnd = random.Random(18)
for i in range(8):
    with open("%s/app%d.log" % (d, i), "w") as f:
        n = 0
        while n < total // 8:
            line = "2026-12-06T%02d:%02d:%02d host app[%d]: request id=%x took %d ms status=%d\n" % (
                rnd.randrange(24), rnd.randrange(60), rnd.randrange(60), rnd.randrange(9999),
                rnd.getrandbits(64), rnd.randrange(900), rnd.choice((200, 200, 200, 404, 500)))
            f.write(line)
            n += len(line)
PY
	truncate -s "$bytes" "$base.tmp"
	mkfs.ext4 -q -F -b 4096 -d "$c" "$base.tmp"
	mv "$base.tmp" "$base"
	rm -rf "$c"
}
[ -s "$base" ] || { say "== making a $size ext4 image (mkfs.ext4 -d)"; make_base; }

# mutate IMG: about 1% of the image's size changed through its file system
mutate() {
	local img=$1 n=$((bytes / 100))
	mkdir -p "$mnt"
	if [ "$(id -u)" = 0 ] && mount -o loop "$img" "$mnt" 2>/dev/null; then
		python3 - "$mnt" "$n" <<'PY'
import os, random, sys
m, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(1801)
os.makedirs(m + "/home/u", exist_ok=True)
for i in range(8):  # new files: 0.4%
    with open("%s/home/u/new%d" % (m, i), "wb") as f:
        f.write(os.urandom(n * 4 // 10 // 8))
big = sorted(os.path.join(r, f) for r, _, fs in os.walk(m + "/usr") for f in fs
             if os.path.getsize(os.path.join(r, f)) > 1 << 20)
left = n * 4 // 10  # files overwritten in place: 0.4%
for p in rnd.sample(big, min(len(big), 40)):
    k = min(os.path.getsize(p), left, 512 << 10)
    with open(p, "r+b") as f:
        f.seek(rnd.randrange(os.path.getsize(p) - k + 1))
        f.write(os.urandom(k))
    left -= k
    if left <= 0:
        break
for i in range(8):  # logs appended to: 0.2%
    with open("%s/var/log/app%d.log" % (m, i), "a") as f:
        f.write(("2026-12-07T00:00:00 host app: more %d\n" % i) * (n * 2 // 10 // 8 // 40))
PY
		umount "$mnt"
	else
		python3 - "$img" "$n" <<'PY'
import os, random, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
size, n = os.fstat(fd).st_size, int(sys.argv[2])
rnd = random.Random(1801)
for _ in range(max(1, n >> 20)):
    os.pwrite(fd, os.urandom(1 << 20), rnd.randrange(size >> 20) << 20)
os.close(fd)
PY
	fi
}

# qcow2_apply OLD NEW QCOW2: writes the 64 KiB blocks where NEW differs
# from OLD into QCOW2 through qemu-io, so that its dirty bitmap sees them
qcow2_apply() {
	python3 - "$1" "$2" "$W/ext" >"$W/ext.cmds" <<'PY'
import os, sys
a, b, d = open(sys.argv[1], "rb"), open(sys.argv[2], "rb"), sys.argv[3]
os.makedirs(d, exist_ok=True)
off, run, runs, B = 0, None, [], 65536
while True:
    x, y = a.read(1 << 20), b.read(1 << 20)
    if not y:
        break
    if x != y:
        for i in range(0, len(y), B):
            if x[i:i + B] != y[i:i + B]:
                o = off + i
                if run and run[0] + run[1] == o:
                    run[1] += len(y[i:i + B])
                else:
                    run = [o, len(y[i:i + B])]
                    runs.append(run)
    off += len(y)
for k, (o, n) in enumerate(runs):
    b.seek(o)
    p = "%s/%d" % (d, k)
    open(p, "wb").write(b.read(n))
    print("write -q -s %s %d %d" % (p, o, n))
PY
	qemu-io -f qcow2 "$3" <"$W/ext.cmds" >/dev/null
	rm -rf "$W/ext"
}

# ---- timing ------------------------------------------------------------------
# timed RUN TOOL SCENARIO REPO CMD...: wall seconds and what the repository grew by
timed() {
	local run=$1 tool=$2 scen=$3 repo=$4 t0 t1 b0 b1
	shift 4
	b0=$(bytes_of "$repo" || echo 0)
	t0=$(now)
	if ! "$@" >"$W/cmd.log" 2>&1; then
		say "  $tool $scen FAILED: $(tail -n3 "$W/cmd.log" | oneline)"
		printf '%s\t%s\t%s\tFAILED\t\n' "$run" "$tool" "$scen" >>"$results"
		return 1
	fi
	t1=$(now)
	b1=$(bytes_of "$repo" || echo 0)
	printf '%s\t%s\t%s\t%s\t%s\n' "$run" "$tool" "$scen" "$(fsub "$t1" "$t0")" $((${b1:-0} - ${b0:-0})) >>"$results"
	say "  $tool $scen: $(fsub "$t1" "$t0") s, +$(( (${b1:-0} - ${b0:-0}) >> 10 )) KiB (load $(load1))"
}
warm() { cat "$@" >/dev/null; }
snap_of() { "$KEEL" -r "$1" snapshots --json | python3 -c '
import json, sys
s = [x for x in json.load(sys.stdin) if x["paths"] == [sys.argv[1]]]
print(s[-1]["id"])' "$2"; }

# ---- the runs ----------------------------------------------------------------
: >"$results"
say "== $size image: $(du -h "$base" | cut -f1) allocated; $runs run(s) of: $tools (load $(uptime | sed 's/.*average: //'))"
for run in $(seq 1 "$runs"); do
	rm -rf "$W"
	mkdir -p "$W" "$CACHE"
	tool_env
	img=$W/disk.img q=$W/disk.qcow2
	cp --sparse=always "$base" "$img"
	qemu-img convert -f raw -O qcow2 "$base" "$q"
	qemu-img bitmap --add "$q" b0
	say "== run $run of $runs"
	for t in $tools; do
		r=$W/repo-$t
		mapfile -t c < <(cmd_init "$t" "$r")
		[ ${#c[@]} -gt 0 ] && "${c[@]}" >"$W/init.log" 2>&1 || die "$t init failed: $(oneline <"$W/init.log")"
		case $t in
		keel) bk=("$KEEL" -r "$r" --no-progress image backup -q) ;;
		restic) bk=(restic -r "$r" -q --compression auto backup) ;;
		borg) bk=(borg create --compression 'zstd,3') ;;
		esac
		for scen in first unchanged; do
			warm "$img"
			if [ "$t" = borg ]; then
				timed "$run" "$t" "$scen" "$r" "${bk[@]}" "$r::$scen" "$img" || true
			else
				timed "$run" "$t" "$scen" "$r" "${bk[@]}" "$img" || true
			fi
		done
		if [ "$t" = keel ]; then
			timed "$run" keel "first qcow2" "$r" "${bk[@]}" "$q" || true
			[ "$read_only" = 1 ] ||
				timed "$run" keel "unchanged bitmap" "$r" "${bk[@]}" --dirty-bitmap b0 "$q" || true
		fi
	done
	[ "$read_only" = 0 ] || continue
	mutate "$img"
	qcow2_apply "$base" "$img" "$q"
	for t in $tools; do
		r=$W/repo-$t
		warm "$img"
		case $t in
		keel)
			timed "$run" keel "after 1%" "$r" "$KEEL" -r "$r" --no-progress image backup -q "$img" || true
			timed "$run" keel "after 1% bitmap" "$r" "$KEEL" -r "$r" --no-progress image backup -q --dirty-bitmap b0 "$q" || true
			rm -f "$W/out.img"
			# the qcow2's snapshot: the restore also checks the bitmap's backup
			timed "$run" keel "full restore" "$W/none" "$KEEL" -r "$r" --no-progress image restore "$(snap_of "$r" "$q")" "$W/out.img" || true
			cmp -s "$W/out.img" "$img" || say "  keel: THE RESTORED IMAGE DIFFERS"
			cp --sparse=always "$base" "$W/out.img"
			warm "$W/out.img"
			timed "$run" keel "delta restore" "$W/none" "$KEEL" -r "$r" --no-progress image restore "$(snap_of "$r" "$img")" "$W/out.img" || true
			cmp -s "$W/out.img" "$img" || say "  keel: THE DELTA-RESTORED IMAGE DIFFERS"
			;;
		restic)
			timed "$run" restic "after 1%" "$r" restic -r "$r" -q --compression auto backup "$img" || true
			rm -rf "$W/out"
			timed "$run" restic "full restore" "$W/none" restic -r "$r" -q restore latest --target "$W/out" || true
			cmp -s "$W/out$img" "$img" || say "  restic: THE RESTORED IMAGE DIFFERS"
			;;
		borg)
			timed "$run" borg "after 1%" "$r" borg create --compression zstd,3 "$r::after" "$img" || true
			rm -rf "$W/out" && mkdir -p "$W/out"
			timed "$run" borg "full restore" "$W/none" env -C "$W/out" borg extract "$r::after" || true
			cmp -s "$W/out$img" "$img" || say "  borg: THE RESTORED IMAGE DIFFERS"
			;;
		esac
		rm -rf "$W/out" "$W/out.img"
	done
done

# ---- NBD latency -------------------------------------------------------------
lat() { # lat WHERE ARGS...: bench/nbd-latency.sh on the image, its lines kept
	say "== NBD random 4 KiB reads, $1 repository"
	"$ROOT/bench/nbd-latency.sh" --keel "$KEEL" --plugin "$plugin" --reads "$reads" \
		--image "$base" "${@:2}" 2>&1 | sed "s/^/$1 /" | tee -a "$WORK/latency.txt" >&2 || true
}
: >"$WORK/latency.txt"
if [[ " $tools " == *" keel "* ]] && [ "$read_only" = 0 ]; then
	lat local
	if [ "$s3" = 1 ] && command -v radosgw >/dev/null; then
		port=$((20000 + RANDOM % 30000))
		S3_STARTED=1
		if KEEL_CEPH_BLOCK_GB=$((bytes * 2 / 1073741824 + 8)) "$ROOT/scripts/ceph-rgw-start.sh" \
			"$WORK/ceph" "$port" >"$WORK/s3.env" 2>"$WORK/s3.log"; then
			unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY
			# shellcheck disable=SC1091
			. "$WORK/s3.env"
			export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION
			s3r=s3:$KEEL_S3_ENDPOINT/keel-bench-image/repo
			if "$KEEL" -r "$s3r" --no-progress init $KEEL_INIT_ARGS >"$WORK/s3-init.log" 2>&1; then
				lat s3 -r "$s3r"
			else
				say "keel init on S3 failed: $(oneline <"$WORK/s3-init.log")"
			fi
		else
			say "the S3 gateway did not start: $(tail -n2 "$WORK/s3.log" | oneline)"
		fi
	fi
fi

# ---- report ------------------------------------------------------------------
say "== medians of $runs run(s), $size image, load now $(uptime | sed 's/.*average: //')"
python3 - "$results" "$bytes" <<'PY'
import collections, statistics, sys
rows = collections.defaultdict(list)
order = []
for line in open(sys.argv[1]):
    run, tool, scen, sec, grew = line.rstrip("\n").split("\t")
    if sec == "FAILED":
        continue
    if (scen, tool) not in rows:
        order.append((scen, tool))
    rows[(scen, tool)].append((float(sec), int(grew or 0)))
size = int(sys.argv[2])
print("%-18s %-7s %9s %9s %11s %10s %10s" % ("scenario", "tool", "seconds", "MiB/s", "stored MiB",
                                          "time/keel", "bytes/keel"))
med = {k: (statistics.median(s for s, _ in v), statistics.median(b for _, b in v))
       for k, v in rows.items()}
for scen, tool in sorted(order, key=lambda k: [s for s, _ in order].index(k[0])):
    s, b = med[(scen, tool)]
    k = med.get((scen, "keel"))
    stored = "" if "restore" in scen else "%.1f" % (b / 2**20)
    rt = "%.2f" % (s / k[0]) if k and k[0] > 0 and tool != "keel" else ""
    # a ratio of two nearly empty backups says nothing
    rb = ("%.2f" % (b / k[1]) if k and k[1] >= 1 << 20 and tool != "keel" and "restore" not in scen
          else "")
    print("%-18s %-7s %9.2f %9.0f %11s %10s %10s" % (scen, tool, s, size / 2**20 / s if s else 0,
                                                   stored, rt, rb))
PY
cat "$WORK/latency.txt"
