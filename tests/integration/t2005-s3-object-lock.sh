#!/usr/bin/env bash
# S3 Object Lock (ransomware protection): keel init --object-lock-mode
# governance|compliance --object-lock-days N creates the bucket with Object
# Lock and writes every object (key files, config, packs, indexes,
# snapshots) with that retention. Nobody can delete an object's data
# before its date: a version delete is refused (403), in COMPLIANCE mode
# even with the governance bypass, and keel itself refuses to delete
# (key remove: exit 16) instead of hiding the object behind a delete
# marker. A plain DELETE from outside only adds a delete marker, and
# removing the marker brings the object back. The repository stays fully
# usable. Refused: object lock on a local repository, on a bucket without
# Object Lock, and half an option pair.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-s3.sh"
require_keel
require_treecmp
s3_setup

SRC=$TEST_DIR/src
mkdir -p "$SRC/dir"
pool_bytes 400000 >"$SRC/big"
printf 'hello\n' >"$SRC/dir/text"

# header KEY NAME [CURL-ARGS]: the value of response header NAME to a HEAD of KEY
header()
{
	local key=$1 name=$2
	shift 2
	s3_curl -I "$@" "$KEEL_S3_ENDPOINT/$S3_BUCKET/$key" | tr -d '\r' |
		awk -v n="$(tr 'A-Z' 'a-z' <<<"$name"):" 'tolower($1) == n { print $2 }'
}

# ---- refusals ----------------------------------------------------------------

expect_error 2 'local directory' keel -r "$TEST_DIR/local" init --kdf-ops 1 --kdf-mem 8 \
	--object-lock-mode governance --object-lock-days 1
[ ! -e "$TEST_DIR/local/config" ] || fail "a local repository was created"
expect_error 2 'go together' keel -r "$TEST_DIR/local" init --object-lock-mode governance
expect_error 2 'go together' keel -r "$TEST_DIR/local" init --object-lock-days 3
expect_error 2 'object-lock-mode' keel -r "$TEST_DIR/local" init --object-lock-mode forever \
	--object-lock-days 3
expect_error 2 'object-lock-days' keel -r "$TEST_DIR/local" init --object-lock-mode compliance \
	--object-lock-days 0

# a bucket made without Object Lock cannot get it later
s3_new_repo plain
[ "$(s3_curl -X PUT -o /dev/null -w '%{http_code}' "$KEEL_S3_ENDPOINT/$S3_BUCKET")" = 200 ] ||
	fail "cannot create a plain bucket"
expect_error 2 'does not have Object Lock enabled' keel init --kdf-ops 1 --kdf-mem 8 \
	--object-lock-mode governance --object-lock-days 1
[ -z "$(s3_keys plain/)" ] || fail "init wrote into a bucket it refused"

# ---- one repository per mode ---------------------------------------------------

# check_locked KEY MODE DAYS: KEY carries MODE and a date DAYS from now
check_locked()
{
	local key=$1 mode=$2 days=$3 until want now
	[ "$(header "$key" x-amz-object-lock-mode)" = "$mode" ] ||
		fail "$key is not under $mode retention"
	until=$(date -u -d "$(header "$key" x-amz-object-lock-retain-until-date)" +%s) ||
		fail "$key has no readable retain-until date"
	now=$(date +%s)
	want=$((now + days * 86400))
	[ "$until" -gt $((want - 600)) ] && [ "$until" -le $((want + 60)) ] ||
		fail "$key is kept until $(date -u -d "@$until"), not about $days days"
}

for mode in governance compliance; do
	MODE=$(tr 'a-z' 'A-Z' <<<"$mode")
	days=2
	[ "$mode" = compliance ] && days=1
	s3_new_repo "$mode"
	log "---- $mode: $KEEL_REPOSITORY"
	expect_success keel init --kdf-ops 1 --kdf-mem 8 --object-lock-mode "$mode" \
		--object-lock-days "$days" >"$TEST_DIR/init.out"
	grep -q "$days days (S3 Object Lock, $mode mode)" "$TEST_DIR/init.out" ||
		fail "init does not say the retention: $(cat "$TEST_DIR/init.out")"
	expect_success keel backup "$SRC" >/dev/null
	first=$(keel key list --json | json_get id)
	printf 'another password\n' >"$TEST_DIR/pw2"
	expect_success keel key add --new-password-file "$TEST_DIR/pw2" >/dev/null

	# every object keel wrote is locked: config, keys, snapshots, index, packs
	s3_keys "$mode/" >"$TEST_DIR/keys"
	for d in config keys/ snapshots/ index/ data/; do
		grep -q "^$mode/$d" "$TEST_DIR/keys" || fail "no $d in the bucket"
	done
	while read -r key; do
		check_locked "$key" "$MODE" "$days"
	done <"$TEST_DIR/keys"
	log "$(wc -l <"$TEST_DIR/keys") objects under $MODE retention"

	# no one deletes a version before its date: without the bypass, and in
	# COMPLIANCE mode with it
	pack=$(grep "^$mode/data/" "$TEST_DIR/keys" | head -n1)
	snap=$(grep "^$mode/snapshots/" "$TEST_DIR/keys" | head -n1)
	for key in "$pack" "$snap" "$mode/config"; do
		vid=$(header "$key" x-amz-version-id)
		[ -n "$vid" ] || fail "$key has no version id"
		code=$(s3_curl -X DELETE -o /dev/null -w '%{http_code}' \
			"$KEEL_S3_ENDPOINT/$S3_BUCKET/$key?versionId=$vid")
		[ "$code" = 403 ] || fail "deleting version $vid of $key gave $code, not 403"
		if [ "$mode" = compliance ]; then
			code=$(s3_curl -X DELETE -H 'x-amz-bypass-governance-retention: true' \
				-o /dev/null -w '%{http_code}' \
				"$KEEL_S3_ENDPOINT/$S3_BUCKET/$key?versionId=$vid")
			[ "$code" = 403 ] || fail "COMPLIANCE: the bypass deleted $key ($code)"
		fi
	done

	# keel does not delete a locked object either (nor hide it behind a marker)
	n_keys=$(keel key list --json | json_get id | wc -l)
	[ "$n_keys" = 2 ] || fail "expected two keys, got $n_keys"
	victim=$(keel key list --json | json_get id | grep -vx "$first")
	expect_error 16 'retention' keel key remove "${victim:0:12}"
	[ "$(keel key list --json | json_get id | wc -l)" = 2 ] || fail "key remove took a locked key"
	[ "$(s3_curl -o /dev/null -w '%{http_code}' \
		"$KEEL_S3_ENDPOINT/$S3_BUCKET/$mode/keys/$victim")" = 200 ] ||
		fail "the locked key file is hidden now"

	# an attacker's plain DELETE only adds a delete marker; removing the
	# marker brings the snapshot back
	s3_curl -X DELETE -D "$TEST_DIR/del.h" -o /dev/null "$KEEL_S3_ENDPOINT/$S3_BUCKET/$snap"
	marker=$(tr -d '\r' <"$TEST_DIR/del.h" | awk 'tolower($1) == "x-amz-version-id:" { print $2 }')
	[ -n "$marker" ] || fail "a plain DELETE made no delete marker"
	[ "$(snapshot_count)" = 0 ] || fail "the snapshot did not disappear behind its marker"
	[ "$(s3_curl -X DELETE -o /dev/null -w '%{http_code}' \
		"$KEEL_S3_ENDPOINT/$S3_BUCKET/$snap?versionId=$marker")" = 204 ] ||
		fail "cannot remove the delete marker"
	[ "$(snapshot_count)" = 1 ] || fail "the snapshot did not come back"

	# and the repository works as always
	printf 'more\n' >>"$SRC/dir/text"
	expect_success keel backup "$SRC" >/dev/null
	[ "$(snapshot_count)" = 2 ] || fail "expected two snapshots"
	expect_success keel restore latest --target "$TEST_DIR/restore-$mode" >/dev/null
	expect_success treecmp --ignore-atime "$SRC" "$(restored_root "$TEST_DIR/restore-$mode" "$SRC")"
	expect_success keel check --read-data >/dev/null
	s3_keys "$mode/" | while read -r key; do check_locked "$key" "$MODE" "$days"; done
done

# A second repository in a bucket that has Object Lock already (init asks
# GetObjectLockConfiguration instead of creating the bucket).
second=s3:$KEEL_S3_ENDPOINT/$S3_BUCKET/second
expect_success keel -r "$second" init --kdf-ops 1 --kdf-mem 8 --object-lock-mode governance \
	--object-lock-days 3 >/dev/null
expect_success keel -r "$second" backup "$SRC/dir" >/dev/null
check_locked second/config GOVERNANCE 3
s3_keys second/snapshots/ | while read -r key; do check_locked "$key" GOVERNANCE 3; done

# Without Object Lock, a repository in a versioned bucket behaves as before.
s3_new_repo nolock
keel_init >/dev/null
[ -z "$(header nolock/config x-amz-object-lock-mode)" ] || fail "an unlocked repository has locks"
