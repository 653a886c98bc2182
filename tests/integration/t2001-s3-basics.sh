#!/usr/bin/env bash
# A repository on a real S3 server (Ceph RGW on loopback): init creates the
# bucket, backup, snapshots, restore (identical with all metadata, with and
# without read-ahead), ls, dump, an incremental backup, check --read-data,
# and the object layout in the bucket mirrors the local one. Listing with
# tiny pages gives the same answers as with the server's default.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-s3.sh"
require_keel
require_treecmp
s3_setup
s3_new_repo repo

SRC=$TEST_DIR/src
make_awkward_tree "$SRC"
log "awkward tree made; skipped: ${AWKWARD_SKIPPED[*]:-nothing}"

keel_init
expect_exit 1 keel init --kdf-ops 1 --kdf-mem 8 # it exists now

expect_success keel backup --json "$SRC" >"$TEST_DIR/backup.json"
json_check <"$TEST_DIR/backup.json"
[ "$(json_get partial <"$TEST_DIR/backup.json")" = false ] || fail "backup is partial"
[ "$(snapshot_count)" = 1 ] || fail "expected one snapshot"

expect_success keel restore latest --target "$TEST_DIR/restore" >/dev/null
ROOT=$(restored_root "$TEST_DIR/restore" "$SRC")
[ "$ROOT" != "$TEST_DIR/restore" ] || fail "restore did not recreate $SRC below the target"
expect_success treecmp --ignore-atime --ignore-sockets "$SRC" "$ROOT"

# single files through ranged reads of packs
keel dump latest "$SRC/files/4k-plus-1" >"$TEST_DIR/dump"
cmp "$SRC/files/4k-plus-1" "$TEST_DIR/dump" || fail "dump differs"
keel dump latest "$SRC/files/random-3m" | cmp - "$SRC/files/random-3m" || fail "dump of 3m differs"
expect_success keel ls latest >"$TEST_DIR/ls.out"
assert_listed "$TEST_DIR/ls.out" files/repeated-2m

# The layout below the prefix is the local one.
s3_keys repo/ >"$TEST_DIR/keys"
grep -qx 'repo/config' "$TEST_DIR/keys" || fail "no repo/config in the bucket"
for d in keys snapshots index; do
	grep -Eq "^repo/$d/[0-9a-f]{64}\$" "$TEST_DIR/keys" || fail "nothing in repo/$d/"
done
grep -Eq '^repo/data/([0-9a-f]{2})/\1[0-9a-f]{62}$' "$TEST_DIR/keys" || fail "no packs in repo/data/xx/"
bad=$(grep -Ev '^repo/(config|(keys|snapshots|index)/[0-9a-f]{64}|data/([0-9a-f]{2})/\3[0-9a-f]{62})$' \
	"$TEST_DIR/keys" || true)
[ -z "$bad" ] || fail "unexpected keys in the bucket: $bad"
n_packs=$(grep -c '^repo/data/' "$TEST_DIR/keys")

# An incremental backup of a changed tree stores only what changed.
printf 'changed\n' >"$SRC/files/text"
pool_bytes 200000 >"$SRC/files/new-file"
expect_success keel backup --json "$SRC" >"$TEST_DIR/backup2.json"
json_check <"$TEST_DIR/backup2.json"
[ "$(snapshot_count)" = 2 ] || fail "expected two snapshots"
# without read-ahead: every blob its own ranged GET
KEEL_S3_READAHEAD_MB=0 expect_success keel restore latest --target "$TEST_DIR/restore2" >/dev/null
expect_success treecmp --ignore-atime --ignore-sockets "$SRC" "$(restored_root "$TEST_DIR/restore2" "$SRC")"

expect_success keel check --read-data >"$TEST_DIR/check.out"
grep -q 'no errors' "$TEST_DIR/check.out" || fail "check did not say 'no errors': $(cat "$TEST_DIR/check.out")"

# Pages of three keys: every listing follows continuation tokens.
KEEL_S3_LIST_MAX_KEYS=3 keel check >"$TEST_DIR/check-small-pages.out" ||
	fail "check with 3-key pages failed"
keel check >"$TEST_DIR/check-default.out"
cmp "$TEST_DIR/check-default.out" "$TEST_DIR/check-small-pages.out" ||
	fail "check counts differ with small pages"
[ "$(KEEL_S3_LIST_MAX_KEYS=1 snapshot_count)" = 2 ] || fail "snapshots with 1-key pages"

# A second repository in the same bucket, under another prefix, is
# independent of the first.
repo1=$KEEL_REPOSITORY
export KEEL_REPOSITORY=s3:$KEEL_S3_ENDPOINT/$S3_BUCKET/other/nested
keel_init
expect_success keel backup "$SRC/files" >/dev/null
[ "$(snapshot_count)" = 1 ] || fail "the second repository sees other snapshots"
export KEEL_REPOSITORY=$repo1
[ "$(snapshot_count)" = 2 ] || fail "the first repository changed"

# Virtual-hosted addressing (KEEL_S3_VIRTUAL_HOST=1): requests go to
# BUCKET.localhost, which curl sends to loopback without asking DNS; the
# test gateway serves "localhost" (scripts/ceph-rgw-start.sh). The
# repository is the same whichever way it is addressed.
if [ -z "${KEEL_TEST_S3_ENDPOINT:-}" ]; then
	vhost=s3:http://localhost:${KEEL_S3_ENDPOINT##*:}/$S3_BUCKET/vhost
	KEEL_S3_VIRTUAL_HOST=1 expect_success keel -r "$vhost" init --kdf-ops 1 --kdf-mem 8 >/dev/null
	KEEL_S3_VIRTUAL_HOST=1 expect_success keel -r "$vhost" backup "$SRC/files" >/dev/null
	KEEL_S3_VIRTUAL_HOST=1 expect_success keel -r "$vhost" restore latest \
		--target "$TEST_DIR/restore-vhost" >/dev/null
	expect_success treecmp --ignore-atime "$SRC/files" \
		"$(restored_root "$TEST_DIR/restore-vhost" "$SRC/files")"
	[ "$(keel -r "s3:$KEEL_S3_ENDPOINT/$S3_BUCKET/vhost" snapshots --json | json_get id |
		wc -l)" = 1 ] || fail "path-style access does not see the virtual-hosted snapshot"
fi

log "repository: $(wc -l <"$TEST_DIR/keys") objects, $n_packs packs before the second backup"
