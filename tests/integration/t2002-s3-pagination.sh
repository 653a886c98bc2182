#!/usr/bin/env bash
# Listings longer than a page: a repository with more than 1,000 snapshots
# (ListObjectsV2 returns at most 1,000 keys a page) is made on a local disk,
# copied object by object into a bucket with another S3 client (curl), and
# read there by keel: snapshots, check and restore see every object and
# agree with the local copy, with the server's pages and with small ones
# (which page through the packs and index files too). It also shows that
# the layouts match: a repository moves between a disk and a bucket by
# copying its files.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-s3.sh"
require_keel
s3_setup
s3_new_repo repo
S3_REPO=$KEEL_REPOSITORY
N=${KEEL_TEST_S3_SNAPSHOTS:-1010}

# tmpfs when there is one: a thousand backups fsync a lot
LOCAL=$TEST_DIR/local
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
	LOCAL=$(mktemp -d /dev/shm/keel-t2002.XXXXXX)
	# lib.sh's cleanup must still run: chain it
	trap 'rc=$?; rm -rf "$LOCAL"; (exit $rc); cleanup' EXIT
fi
export KEEL_REPOSITORY=$LOCAL/repo
keel_init >/dev/null

# Two writers at once (keel allows concurrent backups): half the time. The
# same bytes under the same name within a second make the same tree, so
# most backups add a snapshot and nothing else.
start=$SECONDS
for j in 0 1; do
	(
		for ((i = j; i < N; i += 2)); do
			printf 'the same content\n' | keel backup -q --stdin --stdin-filename file ||
				exit 1
		done
	) &
	BG_PIDS+=($!)
done
for pid in "${BG_PIDS[@]}"; do
	wait "$pid" || fail "a local backup failed"
done
BG_PIDS=()
log "$N local backups in $((SECONDS - start)) s"
keel check >"$TEST_DIR/check-local.out" || fail "local check failed"
(cd "$KEEL_REPOSITORY" && find . -type f ! -name '*.tmp.*' | sed 's|^\./||' | sort) >"$TEST_DIR/local-files"
n_files=$(wc -l <"$TEST_DIR/local-files")
n=$(grep -c "^snapshots/" "$TEST_DIR/local-files" || true)
[ "$n" = "$N" ] || fail "$n snapshots in the local repository, not $N"
log "local repository: $n_files objects, $(grep -c '^data/' "$TEST_DIR/local-files") packs"


# Copy with curl: one process, eight uploads at a time, the bucket made first.
s3_curl -X PUT "$KEEL_S3_ENDPOINT/$S3_BUCKET" -o /dev/null -w '%{http_code}' >"$TEST_DIR/mb" ||
	fail "cannot create the bucket"
[ "$(cat "$TEST_DIR/mb")" = 200 ] || fail "bucket creation answered $(cat "$TEST_DIR/mb")"
start=$SECONDS
while IFS= read -r f; do
	printf 'upload-file = "%s"\nurl = "%s/%s/repo/%s"\n' "$KEEL_REPOSITORY/$f" \
		"$KEEL_S3_ENDPOINT" "$S3_BUCKET" "$f"
done <"$TEST_DIR/local-files" >"$TEST_DIR/curl.conf"
s3_curl --no-progress-meter --parallel --parallel-max 8 -K "$TEST_DIR/curl.conf" -o /dev/null -w '%{http_code}\n' \
	>"$TEST_DIR/codes" || fail "curl failed"
n_ok=$(grep -c '^200$' "$TEST_DIR/codes" || true)
[ "$n_ok" = "$n_files" ] || fail "$n_ok of $n_files uploads succeeded: $(sort "$TEST_DIR/codes" | uniq -c)"
log "uploaded $n_files objects in $((SECONDS - start)) s"
s3_keys repo/ | sed 's|^repo/||' | sort >"$TEST_DIR/s3-files"
cmp "$TEST_DIR/local-files" "$TEST_DIR/s3-files" || fail "the bucket does not hold the local files"

# keel on the bucket sees all of it.
export KEEL_REPOSITORY=$S3_REPO
start=$SECONDS
[ "$(snapshot_count)" = "$N" ] || fail "keel snapshots lists $(snapshot_count), not $N"
expect_success keel check >"$TEST_DIR/check-s3.out"
cmp "$TEST_DIR/check-local.out" "$TEST_DIR/check-s3.out" ||
	fail "check differs: local '$(cat "$TEST_DIR/check-local.out")', s3 '$(cat "$TEST_DIR/check-s3.out")'"
grep -q "checked $N snapshots" "$TEST_DIR/check-s3.out" ||
	fail "check did not count $N snapshots: $(cat "$TEST_DIR/check-s3.out")"
log "snapshots and check on S3 in $((SECONDS - start)) s"

# Small pages too: eleven per listing of snapshots, several for packs and
# index files.
start=$SECONDS
[ "$(KEEL_S3_LIST_MAX_KEYS=97 snapshot_count)" = "$N" ] || fail "97-key pages lose snapshots"
KEEL_S3_LIST_MAX_KEYS=7 keel check >"$TEST_DIR/check-s3-small.out" || fail "check with 7-key pages"
cmp "$TEST_DIR/check-local.out" "$TEST_DIR/check-s3-small.out" || fail "check differs with 7-key pages"
log "snapshots and check with small pages in $((SECONDS - start)) s"

# The newest and the oldest snapshot restore from the bucket.
start=$SECONDS
ids=$(snapshot_ids)
for id in "${ids%%$'\n'*}" "${ids##*$'\n'}"; do
	rm -rf "$TEST_DIR/restore"
	expect_success keel restore "$id" --target "$TEST_DIR/restore" >/dev/null
	found=$(find "$TEST_DIR/restore" -type f -name file)
	[ -n "$found" ] || fail "snapshot $id restored no file"
	[ "$(cat "$found")" = "the same content" ] || fail "$found holds $(cat "$found")"
done
log "two restores in $((SECONDS - start)) s"
