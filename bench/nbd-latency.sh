#!/usr/bin/env bash
# bench/nbd-latency.sh: random 4 KiB read latency of 'keel image serve'
# (issue 18), from a local repository, or from S3 with -r s3:...; measures
# and reports, never fails on a figure. Not part of run.sh; bench/image.sh
# runs it.
#
#     bench/nbd-latency.sh [--size 256M] [--reads 2000] [--chunk-size 4M]
#                          [--keel PATH] [--plugin PATH] [-r REPO] [--image FILE]
#
# Makes a random image (or takes FILE: bench/image.sh's ext4 image), backs
# it up (into a new local repository unless -r names one, whose password is
# then taken from KEEL_PASSWORD*), serves it on
# a Unix socket and reads --reads random 4 KiB blocks in one qemu-io
# process, twice: cold (just started: most reads fetch their chunk) and warm
# (the same offsets again, from the chunk cache). Prints p50, p90, p99 and
# max in microseconds, from qemu-io's per-request rate.
set -euo pipefail
size=256M reads=2000 chunk=4M repo='' image='' root=$(cd "$(dirname "$0")/.." && pwd)
keel=$root/build/src/cli/keel plugin=$root/build/src/nbdkit/nbdkit-keel-plugin.so
while [ $# -gt 0 ]; do
	case $1 in
	--size) size=$2; shift 2 ;;
	--reads) reads=$2; shift 2 ;;
	--chunk-size) chunk=$2; shift 2 ;;
	--keel) keel=$2; shift 2 ;;
	--plugin) plugin=$2; shift 2 ;;
	-r) repo=$2; shift 2 ;;
	--image) image=$2; shift 2 ;;
	*) echo "nbd-latency: unknown argument '$1'" >&2; exit 2 ;;
	esac
done
for t in qemu-io nbdkit python3; do
	command -v "$t" >/dev/null || { echo "nbd-latency: $t missing" >&2; exit 1; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/keel-nbd-latency.XXXXXX")
pid=
trap '[ -z "$pid" ] || kill "$pid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
export KEEL_NBDKIT_PLUGIN=$plugin
if [ -z "$repo" ]; then
	repo=$work/repo
	export KEEL_PASSWORD=bench
	"$keel" -r "$repo" init -q --kdf-ops 1 --kdf-mem 8
fi
if [ -n "$image" ]; then
	img=$(realpath "$image")
	bytes=$(stat -c %s "$img")
else
	bytes=$(numfmt --from=iec "$size")
	img=$work/img
	head -c "$bytes" /dev/urandom >"$img"
fi
"$keel" -r "$repo" image backup -q --chunk-size "$chunk" "$img"
"$keel" -r "$repo" image serve latest --socket "$work/s.sock" >"$work/serve.out" 2>&1 &
pid=$!
for _ in $(seq 1 300); do grep -q serving "$work/serve.out" && break; sleep 0.1; done
python3 - "$bytes" "$reads" >"$work/cmds" <<'PY'
import random, sys
size, n = int(sys.argv[1]), int(sys.argv[2])
rnd = random.Random(18)
for _ in range(n):
    print("read %d 4096" % (rnd.randrange(size // 4096) * 4096))
PY
uri="nbd+unix:///?socket=$work/s.sock"
for pass in cold warm; do
	qemu-io -r -f raw "$uri" <"$work/cmds" >"$work/$pass.out" 2>&1
	python3 - "$pass" "$work/$pass.out" <<'PY'
import re, sys
lat = sorted(1e6 / float(m.group(1)) for m in
             re.finditer(r"and ([0-9.]+) ops/sec", open(sys.argv[2]).read()))
if not lat:
    sys.exit("no timings in qemu-io's output")
pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
print("%-5s reads %5d  p50 %8.0f us  p90 %8.0f us  p99 %8.0f us  max %8.0f us"
      % (sys.argv[1], len(lat), pick(.5), pick(.9), pick(.99), lat[-1]))
PY
done
