#!/usr/bin/env bash
# The slowest tests of the last `meson test` in build directories, from
# their meson-logs/testlog.json:
#
#     scripts/test-times.sh [-n N] [BUILD_DIR...]
#
# prints, per directory, the N (default 15) slowest tests (seconds, result,
# name) and the sum of all durations; directories default to those
# scripts/test.sh makes (build-test, build-asan) that have a log. Compare
# two runs by saving the output; the sum exceeds the wall time by the
# parallelism of `meson test`.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

n=15
if [ "${1:-}" = -n ]; then
	n=${2:?-n needs a number}
	shift 2
fi
case ${1:-} in
-h | --help)
	sed -n '2,/^$/s/^# \{0,1\}//p' "$0"
	exit 0
	;;
esac
dirs=("$@")
if [ "${#dirs[@]}" -eq 0 ]; then
	for d in build-test build-asan; do
		[ -s "$d/meson-logs/testlog.json" ] && dirs+=("$d")
	done
fi
[ "${#dirs[@]}" -gt 0 ] || {
	echo "test-times.sh: no meson-logs/testlog.json (run meson test first)" >&2
	exit 1
}
for d in "${dirs[@]}"; do
	log=$d/meson-logs/testlog.json
	[ -s "$log" ] || {
		echo "test-times.sh: no $log" >&2
		exit 1
	}
	echo "== $d"
	python3 - "$log" "$n" <<'EOF'
import json, sys
tests = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8", errors="replace") if l.strip()]
tests.sort(key=lambda t: -t.get("duration", 0))
for t in tests[: int(sys.argv[2])]:
    print("%8.1f  %-8s %s" % (t.get("duration", 0), t.get("result", "?"), t.get("name", "?")))
print("%8.1f  sum of %d tests" % (sum(t.get("duration", 0) for t in tests), len(tests)))
EOF
done
