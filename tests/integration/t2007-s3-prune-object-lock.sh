#!/usr/bin/env bash
# forget and prune respect S3 Object Lock: forget keeps (and names)
# snapshots under retention and exits 16; prune condemns unused packs but
# never tries to delete one under retention, reports them as deleted later,
# and the repository stays whole. Then the concurrent prune and crash tests'
# basics on S3: prune beside a backup that read the index first.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-s3.sh"
require_keel
require_treecmp
s3_setup

SRC=$TEST_DIR/src
mkdir -p "$SRC"
head -c 600000 /dev/urandom >"$SRC/a"
s3_new_repo locked
expect_success keel init --kdf-ops 1 --kdf-mem 8 --pack-size 1 --object-lock-mode governance \
	--object-lock-days 1 >/dev/null
expect_success keel backup --no-progress "$SRC" >/dev/null
first=$(snapshot_ids | sed -n 1p)

# forget of a snapshot under retention: kept, named, exit 16
expect_exit 16 keel forget "$first" 2>"$TEST_DIR/forget.err"
grep -q "${first:0:8} is under retention" "$TEST_DIR/forget.err" ||
	fail "forget does not name the retained snapshot: $(cat "$TEST_DIR/forget.err")"
[ "$(snapshot_count)" = 1 ] || fail "a snapshot under retention went away"

# unused data under retention: a backup killed just before its snapshot
# leaves indexed packs that nothing uses
head -c 2000000 /dev/urandom >"$SRC/unused"
start_paused before-snapshot "$KEEL" backup --no-progress "$SRC"
kill -9 "$PAUSED_PID"
wait "$PAUSED_PID" 2>/dev/null || true
rm -f "$SRC/unused"
s3_keys "locked/data/" >"$TEST_DIR/packs-before"
expect_success keel prune --json >"$TEST_DIR/prune.json"
[ "$(json_get packs_deleted <"$TEST_DIR/prune.json")" = 0 ] || fail "prune deleted packs under retention"
[ "$(json_get packs_retained <"$TEST_DIR/prune.json")" -gt 0 ] ||
	fail "prune does not report the packs it must keep: $(cat "$TEST_DIR/prune.json")"
s3_keys "locked/data/" >"$TEST_DIR/packs-after"
cmp -s "$TEST_DIR/packs-before" "$TEST_DIR/packs-after" || fail "packs vanished from the bucket"
# prune did not even try: no delete marker in the bucket
# (the query as SigV4 signs it, sorted and with values: "?versions&prefix=a/b/"
# drew SignatureDoesNotMatch, and an error page has no marker either)
page=$(s3_curl "$KEEL_S3_ENDPOINT/$S3_BUCKET?prefix=$(s3_urlencode locked/data/)&versions=")
case $page in *'<ListVersionsResult'*) ;; *) fail "not a version listing: $page" ;; esac
markers=$( (grep -o '<DeleteMarker>' <<<"$page" || true) | wc -l)
[ "$markers" = 0 ] || fail "prune left $markers delete markers on packs"
expect_success keel check --read-data >/dev/null
expect_success keel prune >/dev/null
expect_success keel restore latest --target "$TEST_DIR/r" >/dev/null
cmp "$SRC/a" "$(restored_root "$TEST_DIR/r" "$SRC")/a" || fail "the restore differs"

# prune beside a backup that read the index before prune condemned, on S3
s3_new_repo plain
expect_success keel init --kdf-ops 1 --kdf-mem 8 --pack-size 1 >/dev/null
mkdir -p "$TEST_DIR/old"
head -c 1500000 /dev/urandom >"$TEST_DIR/old/o"
cp -a "$TEST_DIR/old" "$SRC/old"
expect_success keel backup --no-progress "$SRC" >/dev/null
drop_snapshot "$(snapshot_ids | tail -n 1)"
start_paused index-loaded "$KEEL" backup --no-progress "$SRC"
expect_success keel prune --json >"$TEST_DIR/p1.json"
[ "$(json_get packs_deleted <"$TEST_DIR/p1.json")" = 0 ] || fail "prune deleted packs a running backup may use"
resume index-loaded
wait_paused || fail "the backup beside prune failed"
expect_success keel prune >/dev/null
expect_success keel check --read-data >/dev/null
rm -rf "$TEST_DIR/r2"
expect_success keel restore latest --target "$TEST_DIR/r2" >/dev/null
expect_success treecmp --ignore-atime "$SRC" "$(restored_root "$TEST_DIR/r2" "$SRC")"
