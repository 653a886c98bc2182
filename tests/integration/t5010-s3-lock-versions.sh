#!/usr/bin/env bash
# With S3 Object Lock (a versioned bucket) a delete removes every version
# of the key, not only the newest: Ceph RGW ignores If-None-Match, so the
# same PUT twice (a retry, two writers) leaves two versions, and deleting
# only the newest brought the older one back as the object. Here: the lock
# file of a backup PUT a second time; the backup's unlock leaves no lock
# and no version of it. And an older version still under retention keeps
# the object: the delete says so (exit 16) instead of success.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-s3.sh"
require_keel
s3_setup
command -v openssl >/dev/null || skip_or_die "no openssl (for Content-MD5)"

SRC=$TEST_DIR/src
mkdir -p "$SRC"
head -c 200000 /dev/urandom >"$SRC/a"
s3_new_repo locked
expect_success keel init --kdf-ops 1 --kdf-mem 8 --object-lock-mode governance \
	--object-lock-days 1 >/dev/null

# versions KEY: how many versions (delete markers aside) the bucket keeps of KEY
versions()
{
	local page
	page=$(s3_curl "$KEEL_S3_ENDPOINT/$S3_BUCKET?prefix=$(s3_urlencode "$1")&versions=") ||
		fail "cannot list the versions of $1"
	case $page in *'<ListVersionsResult'*) ;; *) fail "not a version listing: $page" ;; esac
	grep -o '<Version>.*</Version>' <<<"$page" | sed 's/<\/Version>/&\n/g' |
		grep -c "<Key>$1</Key>" || true
}

# put_again KEY [HEADER...]: the object's bytes PUT once more, a second version
put_again()
{
	local key=$1 md5
	shift
	s3_curl -o "$TEST_DIR/obj" "$KEEL_S3_ENDPOINT/$S3_BUCKET/$key" || fail "cannot read $key"
	md5=$(openssl md5 -binary "$TEST_DIR/obj" | base64)
	[ "$(s3_curl -X PUT -H 'If-None-Match: *' -H "Content-MD5: $md5" "$@" \
		--data-binary @"$TEST_DIR/obj" -o /dev/null -w '%{http_code}' \
		"$KEEL_S3_ENDPOINT/$S3_BUCKET/$key")" = 200 ] ||
		skip_or_die "the store refuses a second PUT of $key (it honours If-None-Match)"
}

# a lock file (never under retention) with two versions
start_paused index-loaded "$KEEL" backup --no-progress "$SRC"
lock=$(s3_keys locked/locks/ | head -n 1)
[ -n "$lock" ] || fail "no lock object while the backup runs"
put_again "$lock"
[ "$(versions "$lock")" = 2 ] || fail "expected two versions of $lock, found $(versions "$lock")"
resume index-loaded
wait_paused || fail "the backup failed"
[ -z "$(s3_keys locked/locks/)" ] || fail "a lock object is back after the unlock: $(s3_keys locked/locks/)"
[ "$(versions "$lock")" = 0 ] || fail "$(versions "$lock") versions of $lock are left"
expect_success keel prune >/dev/null # an exclusive lock: no stale one in the way

# the newest version out of retention, an older one within: the object stays,
# and forget says it is retained
snap=$(s3_keys locked/snapshots/ | head -n 1)
put_again "$snap" -H 'x-amz-object-lock-mode: GOVERNANCE' \
	-H "x-amz-object-lock-retain-until-date: $(date -u -d '+5 seconds' +%Y-%m-%dT%H:%M:%SZ)"
sleep 6
expect_exit 16 keel forget "${snap##*/}"
[ "$(snapshot_count)" = 1 ] || fail "the snapshot is gone though a version under retention is left"
expect_success keel check >/dev/null
