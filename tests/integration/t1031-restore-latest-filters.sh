#!/usr/bin/env bash
# 'latest' with --host, --tag and --path, as restic: the newest snapshot
# among those the filters select, for restore, ls, dump and diff; an error
# for a path not in the snapshot chosen names that snapshot (14); an
# --include that matches nothing is an error (14), not an empty success.
. "$(dirname "$0")/../lib.sh"
require_keel

A=$TEST_DIR/etc
B=$TEST_DIR/home
mkdir -p "$A" "$B"
printf 'alpha-host\n' >"$A/hostname"
printf 'notes\n' >"$B/notes.txt"
keel_init
expect_success keel backup --host alpha --tag sys "$A" >/dev/null
SA=$(keel snapshots --json | json_get id)
expect_success keel backup --host beta --tag user "$B" >/dev/null
SB=$(keel snapshots --json --host beta | json_get id)
[ -n "$SA" ] && [ -n "$SB" ] && [ "$SA" != "$SB" ] || fail "two snapshots expected: $SA $SB"

# plain 'latest' is beta's, which does not hold $A/hostname: the error says so
expect_error 14 "snapshot ${SB:0:8}" keel restore "latest:$A/hostname" --target "$TEST_DIR/r0"
grep -q "not in the snapshot" "$TEST_DIR/err" || fail "the error does not say the path is missing"
[ ! -e "$TEST_DIR/r0" ] || fail "a failed restore created its target"

# each filter picks alpha's snapshot
for filter in "--host alpha" "--tag sys" "--path $A"; do
	T=$TEST_DIR/r-${filter%% *}
	# shellcheck disable=SC2086 # the filter is two words
	expect_success keel restore "latest:$A/hostname" $filter --target "$T" >"$TEST_DIR/out"
	head -1 "$TEST_DIR/out" | grep -q "^restoring snapshot ${SA:0:8} of alpha:$A at " ||
		fail "restore latest $filter chose another snapshot: $(head -1 "$TEST_DIR/out")"
	[ "$(cat "$T/hostname")" = alpha-host ] || fail "restore latest $filter: wrong content"
done
expect_error 14 "no snapshot matches" keel restore latest --host gamma --target "$TEST_DIR/r1"
# --tag a,b: both; --tag a --tag b: either (restic); --path ignores a trailing '/'
expect_error 14 "no snapshot matches" keel restore latest --tag sys,user --target "$TEST_DIR/r1"
expect_success keel restore latest --tag sys --tag user --target "$TEST_DIR/r-or" >"$TEST_DIR/out"
head -1 "$TEST_DIR/out" | grep -q "^restoring snapshot ${SB:0:8} " || fail "--tag sys --tag user: $(head -1 "$TEST_DIR/out")"
expect_success keel restore latest --path "$A/" --target "$TEST_DIR/r-slash" >"$TEST_DIR/out"
head -1 "$TEST_DIR/out" | grep -q "^restoring snapshot ${SA:0:8} " || fail "--path $A/: $(head -1 "$TEST_DIR/out")"

# ls, dump and diff take the same filters
keel ls latest --host alpha >"$TEST_DIR/ls"
grep -qx "$A/hostname" "$TEST_DIR/ls" || fail "ls latest --host alpha: $(cat "$TEST_DIR/ls")"
grep -q notes "$TEST_DIR/ls" && fail "ls latest --host alpha listed beta's files"
[ "$(keel dump latest "$A/hostname" --tag sys)" = alpha-host ] || fail "dump latest --tag sys"
expect_error 14 "snapshot ${SB:0:8}" keel dump latest "$A/hostname"
keel diff "${SB:0:8}" latest --host alpha >"$TEST_DIR/diff"
grep -qE "^\+ +$A/hostname\$" "$TEST_DIR/diff" || fail "diff to latest --host alpha: $(cat "$TEST_DIR/diff")"
keel diff "${SA:0:8}" latest --path "$A" >"$TEST_DIR/diff"
grep -qx '0 added, 0 removed, 0 modified, 0 metadata changed, 0 type changed' "$TEST_DIR/diff" ||
	fail "diff of a snapshot with itself through latest --path: $(cat "$TEST_DIR/diff")"

# --include that matches nothing: 14, nothing created
expect_error 14 "no path in the snapshot matches the include patterns" \
	keel restore latest --target "$TEST_DIR/r2" --include '/nomatch*'
[ ! -e "$TEST_DIR/r2" ] || fail "restore --include of nothing created its target"
expect_success keel restore latest --target "$TEST_DIR/r3" --include 'notes*' >"$TEST_DIR/out"
grep -qx "created 1, replaced 0, unchanged 0, skipped 0, deleted 0" "$TEST_DIR/out" ||
	fail "restore --include notes*: $(cat "$TEST_DIR/out")"
exit 0
