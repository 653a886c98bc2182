#!/bin/bash
# bench/compare.sh OLD.json NEW.json [TOOL]: one tool's medians (keel by
# default) from two bench/run.sh results side by side, with NEW/OLD.
# Only meaningful between runs of the same mode on the same machine kind;
# it warns when the corpus recipe or the machine differ.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: bench/compare.sh OLD.json NEW.json [TOOL]" >&2; exit 2; }
old=$1 new=$2 tool=${3:-keel}
command -v jq >/dev/null || { echo "bench/compare.sh: needs jq" >&2; exit 1; }

for f in "$old" "$new"; do
	jq -r '"\(.commit)  \(.date)  \(.mode), \(.runs) run(s), load at ceilings \(.ceilings.load1)"' "$f"
done
[ "$(jq -r .corpus.spec "$old")" = "$(jq -r .corpus.spec "$new")" ] ||
	echo "warning: the corpora differ (corpus.spec), figures are not comparable"
[ "$(jq -r '.machine.cpu + " " + (.machine.nproc | tostring)' "$old")" = \
  "$(jq -r '.machine.cpu + " " + (.machine.nproc | tostring)' "$new")" ] ||
	echo "warning: different machines"

printf '\n%s: old -> new (new/old; below 1 is better)\n' "$tool"
jq -r -n --arg t "$tool" --slurpfile a "$old" --slurpfile b "$new" '
	def r(x; y): if (x // 0) > 0 and y != null then "\(y / x * 100 | round / 100)x" else "-" end;
	def f(v): if v == null then "-" else (v * 100 | round / 100 | tostring) end;
	$a[0].scenarios as $A | $b[0].scenarios as $B |
	($B | keys_unsorted[]) as $s |
	($A[$s].tools[$t] // {}) as $x | ($B[$s].tools[$t] // {}) as $y |
	if ($x.status == "ok" and $y.status == "ok") then
		"\($s): wall \(f($x.wall_s)) -> \(f($y.wall_s)) s (\(r($x.wall_s; $y.wall_s)))" +
		", cpu \(f($x.cpu_s)) -> \(f($y.cpu_s)) s (\(r($x.cpu_s; $y.cpu_s)))" +
		", RSS \(f($x.peak_rss_kib / 1024)) -> \(f($y.peak_rss_kib / 1024)) MiB (\(r($x.peak_rss_kib; $y.peak_rss_kib)))" +
		", repo \(r($x.repo_bytes; $y.repo_bytes))"
	else
		"\($s): \($x.status // "absent") -> \($y.status // "absent")"
	end'
