#!/usr/bin/env bash
# Runs the libFuzzer targets of a -Dfuzz=true build, two at a time.
#
#     fuzz/run-fuzz.sh BUILD_DIR [SECONDS] [TARGET...]
#
# SECONDS (default 20) is each target's -max_total_time; TARGETs default to
# every fuzz/fuzz-*.c. Each target reads fuzz/corpus/<name>/ (fuzz-cdc:
# fuzz/corpus/cdc/) as seeds and writes what it finds to
# BUILD_DIR/fuzz-work/<name>/, never to the source tree; crashes go to
# BUILD_DIR/fuzz-artifacts/. Logs: BUILD_DIR/fuzz-runs/<target>.log.
# Add a crash input to fuzz/corpus/<name>/ once it is fixed (STYLE.md 2.10).
#
# Prints "fuzz-result TARGET ok|fail" per target; exits 1 if any failed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

dir=${1:?usage: fuzz/run-fuzz.sh BUILD_DIR [SECONDS] [TARGET...]}
secs=${2:-20}
shift $(($# >= 2 ? 2 : 1))
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
	for src in fuzz/fuzz-*.c; do
		t=$(basename "$src" .c)
		[ "$t" = fuzz-main ] || targets+=("$t")
	done
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
runs=$dir/fuzz-runs
rm -rf "$runs"
mkdir -p "$runs" "$dir/fuzz-artifacts"

# one TARGET: writes $runs/TARGET.rc
one()
{
	local t=$1 work=$dir/fuzz-work/${1#fuzz-} seeds=fuzz/corpus/${1#fuzz-} rc=0
	local -a args=(-max_total_time="$secs" -timeout=25 -rss_limit_mb=2048 -print_final_stats=1
		-artifact_prefix="$dir/fuzz-artifacts/$t-" "$work")
	mkdir -p "$work"
	rm -f "$dir/fuzz-artifacts/$t-"*
	[ -d "$seeds" ] && args+=("$seeds")
	if [ ! -x "$dir/fuzz/$t" ]; then
		echo "no binary $dir/fuzz/$t (configure with -Dfuzz=true)" >"$runs/$t.log"
		rc=127
	else
		"$dir/fuzz/$t" "${args[@]}" >"$runs/$t.log" 2>&1 || rc=$?
	fi
	echo "$rc" >"$runs/$t.rc"
}

echo "run-fuzz: ${#targets[@]} targets, ${secs}s each, two at a time"
for t in "${targets[@]}"; do
	while [ "$(jobs -rp | wc -l)" -ge 2 ]; do wait -n || true; done
	one "$t" &
done
wait

failed=0
for t in "${targets[@]}"; do
	rc=$(cat "$runs/$t.rc" 2>/dev/null || echo missing)
	if [ "$rc" = 0 ]; then
		n=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$runs/$t.log" | grep -Eo '[0-9]+$' || true)
		printf '  %-20s ok    %s runs\n' "$t" "${n:-?}"
		echo "fuzz-result $t ok"
	else
		failed=1
		printf '  %-20s FAIL  exit %s, log %s\n' "$t" "$rc" "$runs/$t.log"
		tail -n 40 "$runs/$t.log" | sed 's/^/    /'
		for a in "$dir/fuzz-artifacts/$t-"*; do
			[ -e "$a" ] && echo "    artifact: $a"
		done
		echo "fuzz-result $t fail"
	fi
done
exit "$failed"
