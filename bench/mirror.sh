#!/usr/bin/env bash
# bench/mirror.sh: keel mirror next to restic copy and rclone sync (issue
# 16): the time, the bytes written to the copy, the objects written and,
# on S3, the requests sent, for the first copy of a repository and for the
# copy after a 1 % mutation of the data and a second backup.
#
#     bench/mirror.sh [--runs N] [--no-s3] [--keel PATH] [--no-install]
#
# What each tool does, on the same data:
#   keel mirror    keyless, object for object, every object hashed before
#                  it is written (the keel repository);
#   rclone sync    the same keel repository's files, compared by size and
#                  modification time (checksums off, its default);
#   restic copy    snapshot by snapshot from one restic repository to
#                  another made with --copy-chunker-params (both
#                  passwords; decrypts and re-encrypts).
# Local: a directory on the same disk. S3: the project's Ceph RADOS Gateway
# on loopback (scripts/ceph-rgw-start.sh), with a counting HTTP proxy
# (tests/tools/faultproxy.c, no faults) between each tool and the gateway.
# Each figure is the median of --runs runs (default 3); the machine's load
# at the start of each run is printed. It measures and reports; it never
# fails because a figure is slow.
set -euo pipefail
BENCH=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$BENCH")
. "$BENCH/lib.sh"

RUNS=3 S3=1 KEEL= INSTALL=1
while [ $# -gt 0 ]; do
	case $1 in
	--runs) RUNS=$2; shift ;;
	--no-s3) S3= ;;
	--keel) KEEL=$2; shift ;;
	--no-install) INSTALL= ;;
	-h | --help) sed -n '2,22p' "$0"; exit 0 ;;
	*) die "unknown option $1" ;;
	esac
	shift
done

WORK=$BENCH/work/mirror
OUT=$BENCH/out
mkdir -p "$WORK/bin" "$OUT"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RESULTS=$OUT/mirror-$STAMP.tsv
printf 'run\ttool\tstore\tphase\twall_s\tbytes\tobjects\trequests\tload\n' >"$RESULTS"

bench_install restic rclone time
for p in restic rclone; do command -v "$p" >/dev/null || die "$p is missing (apt-get install $p)"; done
release_keel
KEELGEN=$WORK/bin/keelgen
cc -O2 -std=gnu11 -o "$KEELGEN" "$BENCH/gen/keelgen.c" || die "cannot build keelgen"
PROXY=$WORK/bin/faultproxy
cc -O2 -std=gnu11 -D_GNU_SOURCE -pthread -o "$PROXY" "$ROOT/tests/tools/faultproxy.c" || die "cannot build faultproxy"

# ---- data and the two source states ---------------------------------------------------
# Real files of this machine (headers, documentation, translations): the
# same for every tool in a run, which is what the ratios need.
DATA=$WORK/data
rm -rf "$DATA" "$WORK/undo" "$WORK/src" "$WORK/pw"
mkdir -p "$DATA"
for d in /usr/include /usr/share/doc /usr/share/locale /usr/share/perl5; do
	[ -d "$d" ] || continue
	mkdir -p "$DATA$(dirname "$d")"
	cp -a "$d" "$DATA$d"
done
say "== data: $(find "$DATA" -type f | wc -l) files, $(bytes_of "$DATA") bytes"
printf 'bench-password\n' >"$WORK/pw"
chmod 600 "$WORK/pw"
export KEEL_PASSWORD_FILE=$WORK/pw RESTIC_PASSWORD_FILE=$WORK/pw
export RESTIC_CACHE_DIR=$WORK/cache/restic XDG_CACHE_HOME=$WORK/cache/xdg

# src/keel1, src/restic1: one backup; src/keel2, src/restic2: and a
# second one after the mutation (~1 % of the files edited, appended,
# deleted or added)
mkdir -p "$WORK/src"
"$KEEL" -r "$WORK/src/keel" --no-progress init >/dev/null
restic -r "$WORK/src/restic" -q init --repository-version 2 >/dev/null
"$KEEL" -r "$WORK/src/keel" --no-progress backup "$DATA" >/dev/null
restic -r "$WORK/src/restic" -q --compression auto backup "$DATA" >/dev/null
cp -a "$WORK/src/keel" "$WORK/src/keel1"
cp -a "$WORK/src/restic" "$WORK/src/restic1"
mutation=$( (cd "$DATA" && find . -type f | LC_ALL=C sort) | "$KEELGEN" mutate 1 "$DATA" "$WORK/undo")
say "== mutation: $mutation"
"$KEEL" -r "$WORK/src/keel" --no-progress backup "$DATA" >/dev/null
restic -r "$WORK/src/restic" -q --compression auto backup "$DATA" >/dev/null
mv "$WORK/src/keel" "$WORK/src/keel2"
mv "$WORK/src/restic" "$WORK/src/restic2"

# ---- S3 -----------------------------------------------------------------------------------
S3_DIR=$WORK/ceph
s3_stop() { [ -z "$S3" ] || "$ROOT/scripts/ceph-rgw-stop.sh" "$S3_DIR" >/dev/null 2>&1 || true; }
PROXY_PID=
cleanup() {
	[ -z "$PROXY_PID" ] || kill "$PROXY_PID" 2>/dev/null || true
	s3_stop
}
trap cleanup EXIT
if [ -n "$S3" ]; then
	if command -v radosgw >/dev/null; then
		unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy
		s3_stop
		rm -rf "$S3_DIR"
		eval "$("$ROOT/scripts/ceph-rgw-start.sh" "$S3_DIR" 2>"$WORK/ceph.log" | grep '^export ')" ||
			die "the Ceph gateway did not start ($WORK/ceph.log)"
		rm -f "$WORK/proxy.port"
		"$PROXY" --log "$WORK/proxy.log" --port-file "$WORK/proxy.port" 0 \
			"${KEEL_S3_ENDPOINT#http://}" </dev/null 2>"$WORK/proxy.err" &
		PROXY_PID=$!
		for _ in $(seq 1 100); do [ -s "$WORK/proxy.port" ] && break; sleep 0.05; done
		[ -s "$WORK/proxy.port" ] || die "the counting proxy did not start"
		EP=http://127.0.0.1:$(cat "$WORK/proxy.port")
		export RCLONE_CONFIG_BENCH_TYPE=s3 RCLONE_CONFIG_BENCH_PROVIDER=Ceph
		export RCLONE_CONFIG_BENCH_ENDPOINT=$EP RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID
		export RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY
		export RCLONE_CONFIG_BENCH_REGION=$AWS_DEFAULT_REGION
		# rclone 1.60 cannot use a CA bundle with its own transport (plain HTTP here)
		unset AWS_CA_BUNDLE
		export RCLONE_CONFIG=/dev/null
	else
		say "== no Ceph gateway installed (scripts/install-deps.sh): S3 left out"
		S3=
	fi
fi

# ---- measuring ----------------------------------------------------------------------------
requests() { [ -f "$WORK/proxy.log" ] && wc -l <"$WORK/proxy.log" || echo 0; }
listing() { # listing STORE DEST: "name size" of every file or object
	case $1 in
	local) (cd "$2" && find . -type f -printf '%p %s\n' | LC_ALL=C sort) ;;
	s3) { rclone lsl "bench:${2#s3:$EP/}" 2>/dev/null || true; } | awk '{ print $4, $1 }' | LC_ALL=C sort ;;
	esac
}
# one TOOL STORE PHASE RUN DEST CMD...: times CMD; bytes and objects are
# what the copy gained (new names, or names whose size changed)
one() {
	local tool=$1 store=$2 phase=$3 run=$4 dest=$5 t0 t1 r0 r1 load rc=0
	shift 5
	listing "$store" "$dest" >"$WORK/before" 2>/dev/null || : >"$WORK/before"
	load=$(cut -d' ' -f1 /proc/loadavg)
	r0=$(requests)
	sync
	t0=$(now)
	"$@" >"$WORK/log-$tool-$store-$phase-$run" 2>&1 || rc=$?
	t1=$(now)
	r1=$(requests)
	[ "$rc" = 0 ] || say "   $tool $store $phase failed (exit $rc): $(tail -n 3 "$WORK/log-$tool-$store-$phase-$run" | oneline)"
	listing "$store" "$dest" >"$WORK/after"
	read -r objects bytes <<<"$(LC_ALL=C comm -13 "$WORK/before" "$WORK/after" |
		awk '{ n++; b += $2 } END { printf "%d %.0f\n", n, b }')"
	[ "$store" = s3 ] || r1=$r0
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$tool" "$store" "$phase" \
		"$(fsub "$t1" "$t0")" "$bytes" "$objects" "$((r1 - r0))" "$load" >>"$RESULTS"
	printf '  run %s %-7s %-5s %-11s %8.2fs %12s bytes %6s objects %6s requests (load %s)\n' \
		"$run" "$tool" "$store" "$phase" "$(fsub "$t1" "$t0")" "$bytes" "$objects" \
		"$((r1 - r0))" "$load" >&2
}

for run in $(seq 1 "$RUNS"); do
	for store in local ${S3:+s3}; do
		for tool in keel rclone restic; do
			case $store in
			local) dest=$WORK/dst/$tool ;;
			s3) dest=s3:$EP/bench-$run-$tool/repo ;;
			esac
			rm -rf "$WORK/dst/$tool"
			mkdir -p "$WORK/dst"
			if [ "$tool" = restic ]; then
				restic -r "$dest" -q init --from-repo "$WORK/src/restic1" \
					--from-password-file "$WORK/pw" --copy-chunker-params >/dev/null
			fi
			[ "$store" = s3 ] && [ "$tool" = rclone ] &&
				rclone mkdir "bench:bench-$run-$tool" >/dev/null 2>&1
			for phase in initial mutated; do
				n=1
				[ "$phase" = mutated ] && n=2
				case $tool in
				keel) one keel "$store" "$phase" "$run" "$dest" \
					env -u KEEL_PASSWORD_FILE "$KEEL" mirror --no-progress \
					"$WORK/src/keel$n" "$dest" ;;
				rclone)
					rdest=$dest
					[ "$store" = s3 ] && rdest=bench:bench-$run-$tool/repo
					one rclone "$store" "$phase" "$run" "$dest" \
						rclone sync --transfers 4 "$WORK/src/keel$n" "$rdest" ;;
				restic) one restic "$store" "$phase" "$run" "$dest" \
					restic -r "$dest" copy --from-repo "$WORK/src/restic$n" \
					--from-password-file "$WORK/pw" ;;
				esac
			done
			rm -rf "$WORK/dst/$tool"
		done
	done
done

# ---- report: medians, and keel's ratio to each other tool ---------------------------------
{
	printf '\n== keel mirror vs rclone sync vs restic copy: medians of %s runs (%s)\n' "$RUNS" "$STAMP"
	printf '   data: %s; mutation: %s\n' "$(bytes_of "$DATA") bytes" "$mutation"
	printf '%-6s %-8s %-7s %9s %8s %14s %8s %9s\n' store phase tool "wall s" "x keel" bytes objects requests
	awk -F'\t' 'NR > 1 { k = $3 "\t" $4 "\t" $2; w[k] = w[k] " " $5; b[k] = $6; o[k] = $7; r[k] = $8 }
	function median(s,   a, n, i, j, t) {
		n = split(s, a, " ")
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	END {
		for (k in w) m[k] = median(w[k])
		for (k in m) {
			split(k, f, "\t")
			kk = f[1] "\t" f[2] "\tkeel"
			ratio = (kk in m && m[kk] > 0) ? sprintf("%.2f", m[k] / m[kk]) : "-"
			printf "%-6s %-8s %-7s %9.2f %8s %14s %8s %9s\n", f[1], f[2], f[3], m[k], ratio, b[k], o[k], r[k]
		}
	}' "$RESULTS" | sort -k1,1 -k2,2 -k3,3
	printf '   "x keel": the tool'"'"'s wall time over keel'"'"'s (above 1: keel is faster).\n'
	printf '   rows: %s\n' "$RESULTS"
} | tee "$OUT/mirror-$STAMP.txt"
