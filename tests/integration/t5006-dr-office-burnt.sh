#!/usr/bin/env bash
# docs/DR.md, "The office burnt down": a primary repository, mirrored
# offsite without its password; the primary and everything on its host
# are lost; on new hardware, with nothing but the mirror and the
# password (no cache, no configuration, no environment), every snapshot
# is there and whole, restores equal the backed-up trees, and backups go
# on into a new primary made from the mirror.
. "$(dirname "$0")/../lib.sh"
require_keel
require_treecmp

SRC=$TEST_DIR/src
OFFSITE=$TEST_DIR/offsite
mkdir -p "$SRC"
make_awkward_tree "$SRC/awk" 2>/dev/null
head -c 2000000 /dev/urandom >"$SRC/big.bin"

# the office: hourly backups, a mirror offsite (keyless)
keel_init >/dev/null
expect_success keel backup --no-progress --tag hourly "$SRC"
# what the first snapshot holds (make_awkward_tree makes the same tree again)
make_awkward_tree "$TEST_DIR/first/awk" 2>/dev/null
cp -p "$SRC/big.bin" "$TEST_DIR/first/"
touch -r "$SRC" "$TEST_DIR/first"
printf 'later\n' >"$SRC/later.txt"
rm -f "$SRC/big.bin"
expect_success keel backup --no-progress --tag hourly "$SRC"
expect_success env -u KEEL_PASSWORD_FILE "$KEEL" mirror --no-progress "$KEEL_REPOSITORY" "$OFFSITE"
n=$(keel snapshots --json | json_get id | wc -l)

# the fire: the primary, its host's cache and configuration are gone
cp "$KEEL_PASSWORD_FILE" "$TEST_DIR/password-from-the-safe"
rm -rf "$KEEL_REPOSITORY" "$HOME"
mkdir -p "$TEST_DIR/newhost"

# new hardware: only the mirror's location and the password
newhost()
{
	env -i PATH="$PATH" HOME="$TEST_DIR/newhost" ${ASAN_OPTIONS:+ASAN_OPTIONS="$ASAN_OPTIONS"} \
		${UBSAN_OPTIONS:+UBSAN_OPTIONS="$UBSAN_OPTIONS"} \
		KEEL_PASSWORD_FILE="$TEST_DIR/password-from-the-safe" "$KEEL" "$@"
}
log "+ newhost keel -r OFFSITE snapshots"
newhost -r "$OFFSITE" snapshots --check >"$TEST_DIR/out" 2>"$TEST_DIR/err" || fail "snapshots failed"
cat "$TEST_DIR/out" >&9
[ "$(grep -c hourly "$TEST_DIR/out")" = "$n" ] || fail "not all $n snapshots in the mirror"
! grep -q "(incomplete" "$TEST_DIR/out" "$TEST_DIR/err" || fail "a snapshot is incomplete"
expect_success newhost -r "$OFFSITE" check --read-data
expect_success newhost -r "$OFFSITE" restore --no-progress latest --target "$TEST_DIR/new"
expect_success treecmp --ignore-atime "$SRC" "$(restored_root "$TEST_DIR/new" "$SRC")"
oldest=$(newhost -r "$OFFSITE" snapshots --json | json_get id | sed -n 1p)
expect_success newhost -r "$OFFSITE" restore --no-progress "$oldest" --target "$TEST_DIR/old"
expect_success treecmp --ignore-atime "$TEST_DIR/first" "$(restored_root "$TEST_DIR/old" "$SRC")"

# back in business: a new primary from the mirror, backups go on, the mirror follows
expect_success newhost mirror --no-progress "$OFFSITE" "$TEST_DIR/primary2"
printf 'after the fire\n' >"$SRC/after.txt"
expect_success newhost -r "$TEST_DIR/primary2" backup --no-progress --tag hourly "$SRC"
expect_success newhost mirror --no-progress "$TEST_DIR/primary2" "$OFFSITE"
[ "$(newhost -r "$OFFSITE" snapshots --json | json_get id | wc -l)" = $((n + 1)) ] ||
	fail "the mirror did not follow the new primary"
expect_success newhost -r "$OFFSITE" check
