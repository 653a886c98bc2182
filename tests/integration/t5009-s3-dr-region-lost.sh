#!/usr/bin/env bash
# docs/DR.md, "The cloud region is lost": the primary in one bucket
# ("region A"), mirrored keyless to another ("region B"); region A is
# wiped; from region B alone (the password, the key pair, no cache) every
# snapshot is listed whole, checked, restored equal to the source tree,
# and made the new primary, whose backups go on and mirror to a third
# place.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-s3.sh"
require_keel
require_treecmp
s3_setup
s3_new_repo main
A=$KEEL_REPOSITORY
A_BUCKET=$S3_BUCKET
s3_new_repo dr
B=$KEEL_REPOSITORY
export KEEL_REPOSITORY=$A

SRC=$TEST_DIR/src
mkdir -p "$SRC/sub"
head -c 700000 /dev/urandom >"$SRC/a.bin"
printf 'one\n' >"$SRC/sub/one.txt"
ln -s sub/one.txt "$SRC/link"
keel_init >/dev/null
expect_success keel backup --no-progress "$SRC"
printf 'two\n' >"$SRC/sub/two.txt"
expect_success keel backup --no-progress "$SRC"
expect_success env -u KEEL_PASSWORD_FILE "$KEEL" mirror --no-progress "$A" "$B"
expect_success keel mirror --status "$A" "$B"

# region A is lost: every object of its bucket gone
keys=$(S3_BUCKET=$A_BUCKET s3_keys main/)
[ -n "$keys" ] || fail "region A held nothing"
for k in $keys; do
	s3_curl -X DELETE "$KEEL_S3_ENDPOINT/$A_BUCKET/$k" -o /dev/null || fail "cannot delete $k"
done
[ -z "$(S3_BUCKET=$A_BUCKET s3_keys main/)" ] || fail "region A not empty"
expect_exit 10 keel -r "$A" snapshots

# from region B alone: a host that never saw the primary
cp "$KEEL_PASSWORD_FILE" "$TEST_DIR/pw"
rm -rf "$HOME"
mkdir -p "$TEST_DIR/newhost"
newhost()
{
	env -i PATH="$PATH" HOME="$TEST_DIR/newhost" ${ASAN_OPTIONS:+ASAN_OPTIONS="$ASAN_OPTIONS"} \
		${UBSAN_OPTIONS:+UBSAN_OPTIONS="$UBSAN_OPTIONS"} \
		AWS_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" AWS_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" \
		AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}" \
		KEEL_PASSWORD_FILE="$TEST_DIR/pw" "$KEEL" "$@"
}
log "+ newhost keel -r B snapshots"
newhost -r "$B" snapshots --check >"$TEST_DIR/out" 2>"$TEST_DIR/err" || fail "snapshots failed"
cat "$TEST_DIR/out" "$TEST_DIR/err" >&9
[ "$(grep -c '^[0-9a-f]\{8\} ' "$TEST_DIR/out")" = 2 ] || fail "not both snapshots in region B"
! grep -q "(incomplete" "$TEST_DIR/out" "$TEST_DIR/err" || fail "a snapshot is incomplete"
expect_success newhost -r "$B" check --read-data
expect_success newhost -r "$B" restore --no-progress latest --target "$TEST_DIR/restored"
expect_success treecmp --ignore-atime "$SRC" "$(restored_root "$TEST_DIR/restored" "$SRC")"

# region B becomes the primary's home: a new primary from the mirror, a new mirror elsewhere
NEWPRIMARY=${B%/dr}/main
expect_success newhost mirror --no-progress "$B" "$NEWPRIMARY"
printf 'three\n' >"$SRC/sub/three.txt"
expect_success newhost -r "$NEWPRIMARY" backup --no-progress "$SRC"
expect_success newhost mirror --no-progress "$NEWPRIMARY" "$TEST_DIR/third"
[ "$(newhost -r "$TEST_DIR/third" snapshots --json | json_get id | wc -l)" = 3 ] ||
	fail "the new mirror lacks snapshots"
expect_success newhost -r "$TEST_DIR/third" check
