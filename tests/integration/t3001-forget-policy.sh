#!/usr/bin/env bash
# keel forget through the CLI: a three-year history built with
# `backup --time` in Europe/Berlin (leap day, year end, ISO week 1 that
# starts in December, both DST changes); a policy run dry (nothing
# changes, the plan and its reasons are exact) and for real (exactly the
# kept snapshots remain, check passes, each restores to its content);
# local-time buckets follow TZ; removing by id; the refusals.
. "$(dirname "$0")/../lib.sh"
require_keel
export TZ=Europe/Berlin

SRC=$TEST_DIR/src
mkdir -p "$SRC"
head -c 300000 /dev/urandom >"$SRC/bulk"
keel_init

LABELS=$TEST_DIR/labels # "label id" per line
: >"$LABELS"

# snap LABEL HOST TIME [BACKUP ARGS...]: a snapshot whose file 'label' holds LABEL
snap()
{
	local label=$1 host=$2 time=$3 id
	shift 3
	printf '%s\n' "$label" >"$SRC/label"
	keel backup --json --host "$host" --time "$time" "$@" "$SRC" >"$TEST_DIR/b.json" ||
		fail "backup $label at '$time' failed"
	id=$(json_get snapshot_id <"$TEST_DIR/b.json")
	[ -n "$id" ] || fail "backup $label printed no snapshot id"
	printf '%s %s\n' "$label" "$id" >>"$LABELS"
}

id_of()
{
	awk -v l="$1" '$1 == l { print $2 }' "$LABELS"
}

# Host h1, oldest first. Local (Berlin) times unless an offset is given.
snap a h1 "2022-03-15 10:00:00" --tag keepme
snap b h1 "2022-12-31 23:30:00"
snap c h1 "2023-01-01 00:30:00"
snap d h1 "2023-06-10 10:00:00"
snap e h1 "2023-06-20 10:00:00"
snap f h1 "2024-02-28 10:00:00"
snap g h1 "2024-02-29 10:00:00"
snap h h1 "2024-03-31 01:30:00"       # CET, before the clocks jump to 03:00
snap i h1 "2024-03-31 03:30:00"       # CEST, the same (23-hour) day
snap j h1 "2024-10-27T02:30:00+02:00" # the first 02:30 (CEST)
snap k h1 "2024-10-27T02:30:00+01:00" # the second 02:30 (CET), the same day
snap l h1 "2024-10-28 00:30:00"       # Monday: in UTC still 27 October
snap m h1 "2024-12-30 08:00:00"       # Monday of 2025-W01
snap n h1 "2025-01-05 20:00:00"       # Sunday of 2025-W01
snap o h1 "2025-01-06 07:00:00"       # 2025-W02
snap p h1 "2025-01-06 19:00:00"
# Host h2: one day, its own group
snap q h2 "2020-01-01 10:00:00"
snap r h2 "2020-01-01 11:00:00"
snap s h2 "2020-01-01 12:00:00"
snap t h2 "2020-01-01 13:00:00"
[ "$(snapshot_count)" = 20 ] || fail "expected 20 snapshots"

# A time that does not exist in Berlin is refused.
expect_exit 2 keel backup --host h1 --time "2024-03-31 02:30:00" "$SRC"
expect_exit 2 keel backup --host h1 --time "yesterday" "$SRC"
[ "$(snapshot_count)" = 20 ] || fail "a refused backup saved a snapshot"

POLICY=(--keep-last 2 --keep-daily 5 --keep-weekly 3 --keep-monthly 4 --keep-yearly 3
	--keep-tag keepme)

# plan_lines < JSON: "keep LABEL reasons" / "remove LABEL", one per snapshot, sorted
plan_lines()
{
	python3 -c '
import json, sys
labels = dict(reversed(l.split()) for l in open(sys.argv[1]))
out = []
for g in json.load(sys.stdin):
    for s in g["keep"]:
        out.append("keep %s %s" % (labels[s["id"]], ",".join(s["reasons"])))
    for s in g["remove"]:
        out.append("remove %s" % labels[s["id"]])
print("\n".join(sorted(out)))
' "$LABELS"
}

# Worked out by hand (docs/FORGET.md), newest first p o n m l k j i h g f e d c b a:
# last 2: p o. daily 5: p (6 Jan), n (5 Jan), m (30 Dec), l (28 Oct), k (27 Oct: newer
# than j). weekly 3: p (W02), n (W01; m is W01 too), l (W44). monthly 4: p, m, l, i.
# yearly 3: p (2025), m (2024), e (2023). tag: a. Host h2: t is last, daily... s last.
cat >"$TEST_DIR/expected" <<'EOF'
keep a tag
keep e yearly
keep i monthly
keep k daily
keep l daily,weekly,monthly
keep m daily,monthly,yearly
keep n daily,weekly
keep o last
keep p last,daily,weekly,monthly,yearly
keep s last
keep t last,daily,weekly,monthly,yearly
remove b
remove c
remove d
remove f
remove g
remove h
remove j
remove q
remove r
EOF

repo_listing >"$TEST_DIR/before"
expect_success keel forget --dry-run --json "${POLICY[@]}" >"$TEST_DIR/plan.json"
json_check <"$TEST_DIR/plan.json"
plan_lines <"$TEST_DIR/plan.json" >"$TEST_DIR/plan"
diff -u "$TEST_DIR/expected" "$TEST_DIR/plan" >&9 || fail "the dry-run plan differs from the expected one"
[ "$(python3 -c 'import json,sys; print(len(json.load(sys.stdin)))' <"$TEST_DIR/plan.json")" = 2 ] ||
	fail "expected two groups (h1 and h2)"

# Human output of the dry run: a table per group with reasons, and the summary.
expect_success keel forget -n "${POLICY[@]}" >"$TEST_DIR/plan.txt"
grep -q "^group: host h1, paths $SRC\$" "$TEST_DIR/plan.txt" || fail "no group header for h1"
grep -q "^group: host h2, paths $SRC\$" "$TEST_DIR/plan.txt" || fail "no group header for h2"
grep -q "^keep 9 of 16 snapshots:" "$TEST_DIR/plan.txt" || fail "h1 does not keep 9 of 16"
grep -q "^$(id_of p | cut -c1-8)  2025-01-06 19:00:00  h1 .* last, daily, weekly, monthly, yearly\$" \
	"$TEST_DIR/plan.txt" || fail "p's row (local time, reasons) is not as expected"
grep -q "^would remove 9 of 20 snapshots" "$TEST_DIR/plan.txt" || fail "no dry-run summary"
repo_listing >"$TEST_DIR/after"
cmp -s "$TEST_DIR/before" "$TEST_DIR/after" || fail "a dry run changed the repository"

# Days follow TZ: in UTC, l (00:30 Berlin) falls on 27 October with k and j, so
# k is no longer a day's newest, and i becomes the fifth day's.
TZ=UTC keel forget -n --json "${POLICY[@]}" | plan_lines >"$TEST_DIR/plan-utc" ||
	fail "forget in UTC failed"
grep -qx "remove k" "$TEST_DIR/plan-utc" || fail "in UTC, k should be removed"
grep -qx "keep i daily,monthly" "$TEST_DIR/plan-utc" || fail "in UTC, i should be a daily"

# A filter: only h2 is considered, h1 is left alone whatever the policy.
keel forget -n --json --host h2 --keep-last 1 | plan_lines >"$TEST_DIR/plan-h2"
printf 'keep t last\nremove q\nremove r\nremove s\n' | diff -u - "$TEST_DIR/plan-h2" >&9 ||
	fail "--host h2 --keep-last 1 plan is wrong"
# No grouping: one group, whose newest is p.
keel forget -n --json --group-by '' --keep-last 1 >"$TEST_DIR/nogroup.json"
[ "$(python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d), len(d[0]["keep"]), d[0]["group_key"]["hostname"])' <"$TEST_DIR/nogroup.json")" = "1 1 None" ] ||
	fail "--group-by '' does not make one group"

# Refusals: no policy and no ids, ids with a policy, bad values. Nothing changes.
expect_exit 2 keel forget
expect_exit 2 keel forget --host h1
expect_exit 2 keel forget --keep-within 0d
expect_exit 2 keel forget --keep-daily 3 "$(id_of a)"
expect_exit 2 keel forget --keep-daily x
expect_exit 2 keel forget --keep-within 3w
expect_exit 2 keel forget --group-by hostname --keep-last 1
repo_listing >"$TEST_DIR/after"
cmp -s "$TEST_DIR/before" "$TEST_DIR/after" || fail "a refused forget changed the repository"

# For real.
expect_success keel forget "${POLICY[@]}" >"$TEST_DIR/real.txt" 2>"$TEST_DIR/real.err"
grep -q "^removed 9 of 20 snapshots" "$TEST_DIR/real.txt" || fail "no summary after removing"
grep -q "keel prune" "$TEST_DIR/real.err" || fail "no hint to run keel prune"
awk '$1 == "keep" { print $2 }' "$TEST_DIR/expected" | while read -r l; do id_of "$l"; done |
	sort >"$TEST_DIR/want-ids"
snapshot_ids | sort >"$TEST_DIR/have-ids"
diff -u "$TEST_DIR/want-ids" "$TEST_DIR/have-ids" >&9 || fail "the snapshots left are not the kept ones"
[ "$(repo_files snapshots | wc -l)" = 11 ] || fail "expected 11 snapshot files"
[ "$(dir_bytes "$KEEL_REPOSITORY/data")" -gt 0 ] || fail "forget touched data"
expect_success keel check

# Every kept snapshot restores to what it held.
awk '$1 == "keep" { print $2 }' "$TEST_DIR/expected" | while read -r l; do
	rm -rf "$TEST_DIR/restore"
	keel restore "$(id_of "$l")" --target "$TEST_DIR/restore" >/dev/null ||
		fail "restoring $l failed"
	root=$(restored_root "$TEST_DIR/restore" "$SRC")
	[ "$(cat "$root/label")" = "$l" ] || fail "snapshot $l restored '$(cat "$root/label")'"
	cmp -s "$root/bulk" "$SRC/bulk" || fail "snapshot $l restored a different bulk file"
done

# Applying the same policy again removes nothing.
expect_success keel forget --json "${POLICY[@]}" >"$TEST_DIR/again.json"
[ -z "$(plan_lines <"$TEST_DIR/again.json" | grep '^remove')" ] || fail "a second run removed more"

# By id: a missing id removes nothing (exit 14); ids and "latest" with a filter.
expect_exit 14 keel forget "$(id_of b)" "$(id_of o)"
[ "$(snapshot_count)" = 11 ] || fail "a failed forget by id removed something"
expect_success keel forget -n "$(id_of o | cut -c1-12)" >/dev/null
[ "$(snapshot_count)" = 11 ] || fail "forget -n by id removed something"
expect_success keel forget "$(id_of o | cut -c1-12)" latest --host h2 >/dev/null 2>&1
snapshot_ids | sort >"$TEST_DIR/have-ids"
grep -v -e "$(id_of o)" -e "$(id_of t)" "$TEST_DIR/want-ids" | diff -u - "$TEST_DIR/have-ids" >&9 ||
	fail "forget by id did not remove exactly o and t"
expect_success keel check
