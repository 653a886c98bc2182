#!/usr/bin/env bash
# keel stats (issue 14): repository size, restore size, raw size of the
# distinct data, distinct files, ratios, growth per snapshot and per host,
# --mode as restic, snapshot arguments and filters; exact figures.
. "$(dirname "$0")/../lib.sh"
require_keel

src=$TEST_DIR/src
mkdir -p "$src/a"
head -c 100000 /dev/urandom >"$src/a/f1"
cp "$src/a/f1" "$src/a/f2"            # the same content: stored once
head -c 5000 /dev/urandom >"$src/c"
head -c 200000 /dev/zero | tr '\0' a >"$src/z" # compresses well
keel_init
keel backup --host h1 "$src" >/dev/null || fail "backup 1"
S1=$(snapshot_ids | tail -1)
head -c 3000 /dev/urandom >"$src/d"
keel backup --host h2 "$src" >/dev/null || fail "backup 2"
S2=$(snapshot_ids | tail -1)

keel stats --json >"$TEST_DIR/all.json" || fail "stats --json"
json_check <"$TEST_DIR/all.json"
has_python || skip_or_die "no python3"
# want EXPR VALUE: EXPR over the JSON document d must print as VALUE; the
# checks are collected and evaluated at once by check (one python start)
checks=()
want()
{
	checks+=("$1	$2")
}
check()
{
	python3 - "$TEST_DIR/all.json" "${checks[@]}" <<'EOF' >&2 || fail "stats: wrong figures"
import json, sys
d = json.load(open(sys.argv[1]))
bad = 0
for c in sys.argv[2:]:
    expr, want = c.split("\t", 1)
    got = str(eval(expr, {"d": d}))
    if got != want:
        print("stats: %s is %s, expected %s" % (expr, got, want))
        bad = 1
sys.exit(bad)
EOF
	checks=()
}
want 'd["snapshots_count"]' 2
want 'd["total_file_count"]' 9
want 'd["total_size"]' $((405000 + 408000))
want 'd["restore_size"]' $((405000 + 408000))
want 'd["restore_file_count"]' 9
want 'd["unique_files"]' 4
want 'd["unique_files_size"]' 308000
want 'd["data_raw_size"]' 308000
want 'd["missing_blobs"]' 0
want 'd["data_stored_size"] < d["data_raw_size"]' True
want 'd["compression_ratio"] > 1.5' True
want 'round(d["deduplication_ratio"], 4)' "$(python3 -c 'print(round(813000 / 308000, 4))')"
want '[s["id"] for s in d["snapshots"]] == ["'"$S1"'", "'"$S2"'"]' True
want '[s["size"] for s in d["snapshots"]]' '[405000, 408000]'
want '[s["files"] for s in d["snapshots"]]' '[4, 5]'
want 'd["snapshots"][0]["new_data_raw_size"]' 305000
want 'd["snapshots"][1]["new_data_raw_size"]' 3000
want 'sum(s["new_raw_size"] for s in d["snapshots"]) == d["total_uncompressed_size"]' True
want 'sum(s["new_stored_size"] for s in d["snapshots"]) == d["data_stored_size"] + d["tree_stored_size"]' True
want '[(h["hostname"], h["snapshots"], h["latest_size"]) for h in d["hosts"]]' "[('h1', 1, 405000), ('h2', 1, 408000)]"
want 'd["hosts"][1]["new_raw_size"] == d["snapshots"][1]["new_raw_size"]' True
# the repository's size is that of its packs
total=0
n=0
for p in $(repo_files data); do
	total=$((total + $(file_size "$p")))
	n=$((n + 1))
done
want 'd["repository_size"]' "$total"
want 'd["packs"]' "$n"
want 'd["index_stored_size"] == d["data_stored_size"] + d["tree_stored_size"]' True

check

# one snapshot: all its data is new to it
keel stats --json "$S2" >"$TEST_DIR/all.json" || fail "stats S2"
want 'd["snapshots_count"]' 1
want 'd["snapshots"][0]["new_data_raw_size"]' 308000
check
keel stats --json --host h1 >"$TEST_DIR/all.json" || fail "stats --host h1"
want '[s["id"] for s in d["snapshots"]] == ["'"$S1"'"]' True
want 'd["total_size"]' 405000
check

# restic's modes
keel stats --mode restore-size >"$TEST_DIR/out" || fail "--mode restore-size"
grep -qx '        Total File Count:  9' "$TEST_DIR/out" || fail "restore-size count: $(cat "$TEST_DIR/out")"
grep -qx '              Total Size:  794 KiB' "$TEST_DIR/out" || fail "restore-size size"
keel stats --mode files-by-contents >"$TEST_DIR/out" || fail "--mode files-by-contents"
grep -qx '        Total File Count:  4' "$TEST_DIR/out" || fail "files-by-contents: $(cat "$TEST_DIR/out")"
keel stats --mode raw-data >"$TEST_DIR/out" || fail "--mode raw-data"
grep -q '^ Total Uncompressed Size:  ' "$TEST_DIR/out" || fail "raw-data: $(cat "$TEST_DIR/out")"
expect_error 2 "unknown mode" keel stats --mode nonsense
# with --json, total_size and total_file_count mean what restic's mean in the mode
keel stats --json --mode raw-data >"$TEST_DIR/all.json" || fail "--json --mode raw-data"
want 'd["total_size"] == d["data_stored_size"] + d["tree_stored_size"]' True
want 'd["restore_size"]' $((405000 + 408000))
check
keel stats --json --mode files-by-contents >"$TEST_DIR/all.json" || fail "--json --mode files-by-contents"
want '(d["total_file_count"], d["total_size"])' '(4, 308000)'
check
keel stats --json --mode restore-size >"$TEST_DIR/all.json" || fail "--json --mode restore-size"
want '(d["total_file_count"], d["total_size"])' "(9, $((405000 + 408000)))"
check

# the full report
keel stats >"$TEST_DIR/out" || fail "stats"
cat "$TEST_DIR/out" >&9
grep -qx 'snapshots:         2' "$TEST_DIR/out" || fail "report: snapshots"
grep -qx 'restore size:      794 KiB in 9 files' "$TEST_DIR/out" || fail "report: restore size"
grep -qx 'unique files:      4, 301 KiB' "$TEST_DIR/out" || fail "report: unique files"
grep -qE "^  ${S1:0:8}  .* h1 +396 KiB +" "$TEST_DIR/out" || fail "report: growth of $S1"
grep -qE "^  h2 +1 +" "$TEST_DIR/out" || fail "report: host h2"
expect_error 14 "" keel stats ffffffff
log "ok"
