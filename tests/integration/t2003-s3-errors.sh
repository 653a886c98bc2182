#!/usr/bin/env bash
# Errors against a real S3 server are clear and end in the documented exit
# codes: a wrong secret or access key (20, naming the cause), a missing
# bucket or repository (10), a wrong password (12), no credentials at all
# (2), nothing listening (1), a malformed location (2); credentials come
# from ~/.aws/credentials profiles too. Objects damaged or cut short in the
# bucket are found by check (13), and nothing is written by a refused
# command. SIGTERM midway through a backup leaves no lock in the bucket
# and exits 130 (docs/EXIT-CODES.md).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-s3.sh"
require_keel
s3_setup
s3_new_repo repo

SRC=$TEST_DIR/src
mkdir -p "$SRC"
printf 'hello\n' >"$SRC/file"
pool_bytes 300000 >"$SRC/big"
keel_init >/dev/null
expect_success keel backup "$SRC" >/dev/null

# failures come fast: two attempts, 10 ms apart
export KEEL_S3_RETRIES=2 KEEL_S3_RETRY_DELAY_MS=10

keys_before=$(s3_keys repo/)

expect_error 20 'SignatureDoesNotMatch.*AWS_SECRET_ACCESS_KEY' \
	env AWS_SECRET_ACCESS_KEY=not-the-secret "$KEEL" snapshots
expect_error 20 'InvalidAccessKeyId.*AWS_ACCESS_KEY_ID' \
	env AWS_ACCESS_KEY_ID=nobody "$KEEL" snapshots
expect_error 20 'SignatureDoesNotMatch' \
	env AWS_SECRET_ACCESS_KEY=not-the-secret "$KEEL" backup "$SRC"
expect_error 20 'InvalidAccessKeyId' \
	env AWS_ACCESS_KEY_ID=nobody "$KEEL" init --kdf-ops 1 --kdf-mem 8
expect_error 10 "bucket 'keel-no-such-bucket-$$' does not exist" \
	"$KEEL" -r "s3:$KEEL_S3_ENDPOINT/keel-no-such-bucket-$$/repo" snapshots
expect_error 10 'no repository' \
	"$KEEL" -r "s3:$KEEL_S3_ENDPOINT/$S3_BUCKET/nothing-here" snapshots
printf 'not the password\n' >"$TEST_DIR/wrong"
expect_error 12 'password' "$KEEL" --password-file "$TEST_DIR/wrong" snapshots
expect_error 12 'password' "$KEEL" --password-file "$TEST_DIR/wrong" backup "$SRC"
expect_error 2 'no credentials' \
	env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY "$KEEL" snapshots
expect_error 2 'not an S3 location' "$KEEL" -r "s3:ftp://127.0.0.1/$S3_BUCKET/repo" snapshots
expect_error 2 'not an S3 location' "$KEEL" -r "s3:$KEEL_S3_ENDPOINT/$S3_BUCKET//repo" snapshots
port=$(s3_free_port) || fail "no free port"
expect_error 1 'cannot connect' "$KEEL" -r "s3:http://127.0.0.1:$port/$S3_BUCKET/repo" snapshots
# .invalid never resolves (RFC 6761)
expect_error 1 "cannot resolve host 'keel-test.invalid' (DNS)" \
	"$KEEL" -r "s3:http://keel-test.invalid:$port/$S3_BUCKET/repo" snapshots
expect_error 2 'KEEL_S3_RETRIES' env KEEL_S3_RETRIES=lots "$KEEL" snapshots

[ "$(s3_keys repo/)" = "$keys_before" ] || fail "a refused command changed the repository"

# Credentials from a shared credentials file, by profile.
mkdir -p "$HOME/.aws"
cat >"$HOME/.aws/credentials" <<EOF
[default]
aws_access_key_id = nobody
aws_secret_access_key = nothing

[keel-test]
aws_access_key_id = $AWS_ACCESS_KEY_ID
aws_secret_access_key = $AWS_SECRET_ACCESS_KEY
EOF
expect_error 20 'InvalidAccessKeyId' env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY "$KEEL" snapshots
expect_success env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_PROFILE=keel-test \
	"$KEEL" snapshots >/dev/null
expect_error 2 "profile 'absent'" env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY \
	AWS_PROFILE=absent "$KEEL" snapshots

# Damage in the bucket: one byte of the largest pack flipped, then the
# pack cut short. check --read-data finds the first, check the second.
pack=$(s3_keys repo/data/ | head -n1)
[ -n "$pack" ] || fail "no pack in the bucket"
for k in $(s3_keys repo/data/); do
	size=$(s3_curl -I "$KEEL_S3_ENDPOINT/$S3_BUCKET/$k" | tr -d '\r' |
		awk 'tolower($1) == "content-length:" { print $2 }')
	if [ "$size" -gt "${best:-0}" ]; then
		best=$size
		pack=$k
	fi
done
s3_curl -o "$TEST_DIR/pack" "$KEEL_S3_ENDPOINT/$S3_BUCKET/$pack"
[ "$(file_size "$TEST_DIR/pack")" = "$best" ] || fail "downloaded pack has the wrong size"
cp "$TEST_DIR/pack" "$TEST_DIR/pack.orig"
expect_success keel check --read-data >/dev/null
flip_byte "$TEST_DIR/pack" 100
[ "$(s3_curl -T "$TEST_DIR/pack" -o /dev/null -w '%{http_code}' "$KEEL_S3_ENDPOINT/$S3_BUCKET/$pack")" = 200 ] ||
	fail "cannot replace the pack"
expect_exit 13 keel check --read-data
head -c $((best - 1000)) "$TEST_DIR/pack.orig" >"$TEST_DIR/pack.short"
[ "$(s3_curl -T "$TEST_DIR/pack.short" -o /dev/null -w '%{http_code}' "$KEEL_S3_ENDPOINT/$S3_BUCKET/$pack")" = 200 ] ||
	fail "cannot replace the pack"
expect_exit 13 keel check
expect_exit 13 keel restore latest --target "$TEST_DIR/restore"
# put back, all is well again
[ "$(s3_curl -T "$TEST_DIR/pack.orig" -o /dev/null -w '%{http_code}' "$KEEL_S3_ENDPOINT/$S3_BUCKET/$pack")" = 200 ] ||
	fail "cannot restore the pack"
expect_success keel check --read-data >/dev/null

# interrupted midway (paused once a pack is stored), a backup removes its
# lock from the bucket, saves no snapshot and exits 130; check passes
s3_new_repo intr
keel_init --pack-size 1 >/dev/null
mkdir -p "$TEST_DIR/big"
for i in 1 2 3 4 5 6; do pool_bytes 700000 >"$TEST_DIR/big/f$i"; done
start_paused pack-written env --default-signal=INT "$KEEL" backup --no-progress "$TEST_DIR/big" \
	2>"$TEST_DIR/err"
kill -TERM "$PAUSED_PID"
resume pack-written
rc=0
wait_paused || rc=$?
[ "$rc" = 130 ] || fail "a backup to S3 stopped by SIGTERM exited $rc, expected 130"
grep -qx 'keel: backup: interrupted: lock removed; [1-9][0-9]* packs* already written \(is\|are\) kept and reused by the next backup' \
	"$TEST_DIR/err" || fail "SIGTERM over S3: $(cat "$TEST_DIR/err")"
[ -z "$(s3_keys intr/locks/)" ] || fail "an interrupted backup left its lock in the bucket"
[ "$(snapshot_count)" = 0 ] || fail "an interrupted backup saved a snapshot"
expect_success keel check >/dev/null
