#!/usr/bin/env bash
# check --read-data-subset=n/m reads a partition of the packs by pack id:
# groups 1/5..5/5 together read every pack exactly once; an N% sample is
# repeatable with --read-data-seed. check counts the temporary files that
# interrupted writes leave and --remove-stale-tmp removes only those older
# than an hour, never a write in flight.
. "$(dirname "$0")/../lib.sh"
require_keel

SRC=$TEST_DIR/src
mkdir -p "$SRC"
for i in $(seq 1 12); do
	head -c $((2 << 20)) /dev/urandom >"$SRC/f$i"
done
keel_init --pack-size 1
expect_success keel backup "$SRC" >/dev/null

summary()
{
	json_get "$1" <"$TEST_DIR/check.json" | tail -1
}

keel check --json >"$TEST_DIR/check.json" || fail "check failed"
packs=$(summary packs)
[ "$packs" -ge 10 ] || fail "only $packs packs: the test needs more"

# Groups 1..5 of 5: every pack once.
sum=0
for n in 1 2 3 4 5; do
	keel check --json --read-data-subset="$n/5" >"$TEST_DIR/check.json" ||
		fail "check of group $n/5 failed"
	read=$(summary packs_read)
	log "group $n/5: $read packs"
	sum=$((sum + read))
done
[ "$sum" = "$packs" ] || fail "groups 1/5..5/5 read $sum packs of $packs"

# A damaged data pack is found by exactly one group. (The largest pack
# holds data: trees have packs of their own, which every check reads.)
pack=$(repo_files data | largest)
flip_byte "$pack" 100
found=0
for n in 1 2 3 4 5; do
	rc=0
	keel check --read-data-subset="$n/5" >/dev/null 2>&1 || rc=$?
	case $rc in
	0) ;;
	13) found=$((found + 1)) ;;
	*) fail "check of group $n/5 exited $rc" ;;
	esac
done
[ "$found" = 1 ] || fail "$found groups found the damaged pack, want 1"
flip_byte "$pack" 100
expect_success keel check --read-data >/dev/null

# An N% sample: the seed check prints repeats it; a given seed gives one sample.
keel check --json --read-data-subset=30% >"$TEST_DIR/check.json" || fail "30% check failed"
seed=$(summary subset_seed)
bytes=$(summary bytes_read)
[ "${#seed}" = 32 ] || fail "no seed in the summary: '$seed'"
keel check --json --read-data-subset=30% --read-data-seed="$seed" >"$TEST_DIR/check.json" ||
	fail "seeded check failed"
[ "$(summary subset_seed)" = "$seed" ] || fail "the seed given is not the seed used"
[ "$(summary bytes_read)" = "$bytes" ] || fail "the same seed read other packs"
keel check --read-data-subset=30% --read-data-seed=nightly >"$TEST_DIR/a.out" || fail "check failed"
keel check --read-data-subset=30% --read-data-seed=nightly >"$TEST_DIR/b.out" || fail "check failed"
cmp -s "$TEST_DIR/a.out" "$TEST_DIR/b.out" || fail "one text seed gave two samples"
want=$(((packs * 300 + 999) / 1000))
grep -q "read $want packs" "$TEST_DIR/a.out" || fail "30% of $packs packs: $(cat "$TEST_DIR/a.out")"

for bad in 0/5 6/5 5/0 x/5 1/ /5 0% 101% -1% nan% 1e1% 5%x %; do
	expect_exit 2 keel check --read-data-subset="$bad"
done

# Temporary files, named as the local backend names them: one a killed
# backup left two hours ago, one of a write that may be in flight. S3 has
# none (an object appears whole with its PUT, or not at all).
if [ "${KEEL_TEST_BACKEND:-local}" = s3 ]; then
	expect_success keel restore latest --target "$TEST_DIR/r" >/dev/null
	exit 0
fi
old=$KEEL_REPOSITORY/data/00/0000000000000000000000000000000000000000000000000000000000000000.tmp.1a2b3c
new=$KEEL_REPOSITORY/index/1111111111111111111111111111111111111111111111111111111111111111.tmp.4d5e6f
head -c 1000 /dev/urandom >"$old"
head -c 500 /dev/urandom >"$new"
touch -d '2 hours ago' "$old"
keel check --json >"$TEST_DIR/check.json" || fail "temporary files made check fail"
[ "$(summary tmp_files)" = 2 ] || fail "check counted $(summary tmp_files) temporary files"
[ "$(summary tmp_bytes)" = 1500 ] || fail "check counted $(summary tmp_bytes) bytes"
[ "$(summary tmp_stale)" = 1 ] || fail "check counted $(summary tmp_stale) stale files"
[ "$(summary tmp_removed)" = 0 ] || fail "check removed files without being asked"
[ -e "$old" ] && [ -e "$new" ] || fail "check removed a temporary file"
keel check >"$TEST_DIR/check.out" || fail "check failed"
grep -q '2 temporary files' "$TEST_DIR/check.out" || fail "check did not mention them: $(cat "$TEST_DIR/check.out")"

keel check --json --remove-stale-tmp >"$TEST_DIR/check.json" || fail "check --remove-stale-tmp failed"
[ "$(summary tmp_removed)" = 1 ] && [ "$(summary tmp_removed_bytes)" = 1000 ] ||
	fail "removed $(summary tmp_removed) files, $(summary tmp_removed_bytes) bytes"
[ ! -e "$old" ] || fail "the stale temporary file is still there"
[ -e "$new" ] || fail "a fresh temporary file (a write in flight) was removed"
expect_success keel check --read-data >/dev/null
expect_success keel restore latest --target "$TEST_DIR/r" >/dev/null
