#!/usr/bin/env bash
# keel mirror through S3 (docs/MIRROR.md): local to S3, S3 to S3 (another
# prefix of the gateway), S3 back to local, each keyless; check --read-data
# and a restore from the S3 copy alone; --status's lag from the listing's
# times (exact on S3) while a snapshot is pending.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-s3.sh"
require_keel
require_treecmp
s3_setup
s3_new_repo m1
M1=$KEEL_REPOSITORY
M2=${M1%/m1}/m2
export KEEL_REPOSITORY=$TEST_DIR/repo
LOCAL=$TEST_DIR/back

SRC=$TEST_DIR/src
mkdir -p "$SRC/sub"
head -c 200000 /dev/urandom >"$SRC/a.bin"
printf 'one\n' >"$SRC/sub/one.txt"
keel_init >/dev/null
expect_success keel backup --no-progress "$SRC"

objects() { (cd "$1" && find config keys snapshots index data -type f | sort | xargs sha256sum); }

expect_success env -u KEEL_PASSWORD_FILE "$KEEL" mirror --no-progress "$KEEL_REPOSITORY" "$M1"
expect_success env -u KEEL_PASSWORD_FILE "$KEEL" mirror --no-progress --verify "$M1" "$M2"
expect_success env -u KEEL_PASSWORD_FILE "$KEEL" mirror --no-progress "$M2" "$LOCAL"
[ "$(objects "$KEEL_REPOSITORY")" = "$(objects "$LOCAL")" ] || fail "the round trip differs"
expect_success keel -r "$M2" check --read-data

# a snapshot SOURCE has and the copy lacks: the lag comes from its time
printf 'two\n' >"$SRC/sub/two.txt"
expect_success keel -r "$M1" backup --no-progress "$SRC"
expect_success keel mirror --status --json "$M1" "$M2" >"$TEST_DIR/status"
json_check <"$TEST_DIR/status"
[ "$(json_get lag_exact <"$TEST_DIR/status")" = true ] || fail "S3's lag is not exact"
[ "$(json_get objects <"$TEST_DIR/status" | sed -n 2p)" = 1 ] || fail "one snapshot pending expected"
expect_success keel mirror --no-progress "$M1" "$M2"
expect_success keel mirror --status --json "$M1" "$M2" >"$TEST_DIR/status"
[ "$(json_get lag_seconds <"$TEST_DIR/status")" = 0 ] || fail "lag after a complete run"

# SOURCE gone: the S3 copy restores
rm -rf "$KEEL_REPOSITORY"
expect_success keel -r "$M2" restore --no-progress latest --target "$TEST_DIR/restored"
expect_success treecmp "$SRC" "$(restored_root "$TEST_DIR/restored" "$SRC")"
