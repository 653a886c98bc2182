#!/usr/bin/env bash
# keel mirror --object-lock-mode/--object-lock-days (docs/MIRROR.md): a copy
# on S3 keeps every object it receives under Object Lock of its own, even
# from a SOURCE without it (a keyless mirror cannot read SOURCE's config);
# the setting lives in the copy's state, so later runs keep locking; what
# SOURCE deleted stays after the quarantine while locked ("retained"); the
# mirror's own state objects are never locked. Refused: a local copy, a
# bucket without Object Lock, half an option pair.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-s3.sh"
require_keel
require_treecmp
s3_setup
s3_new_repo locked
M=$KEEL_REPOSITORY
BUCKET=$S3_BUCKET
export KEEL_REPOSITORY=$TEST_DIR/repo

SRC=$TEST_DIR/src
mkdir -p "$SRC"
head -c 300000 /dev/urandom >"$SRC/a.bin"
keel_init >/dev/null
expect_success keel backup --no-progress "$SRC" >/dev/null

mirror() { env -u KEEL_PASSWORD_FILE "$KEEL" mirror --no-progress "$@"; }

# header KEY NAME: the value of response header NAME to a HEAD of KEY
header()
{
	s3_curl -I "$KEEL_S3_ENDPOINT/$BUCKET/$1" | tr -d '\r' |
		awk -v n="$(tr 'A-Z' 'a-z' <<<"$2"):" 'tolower($1) == n { print $2 }'
}

# ---- refusals ------------------------------------------------------------------
expect_error 2 'go together' mirror --object-lock-mode governance "$KEEL_REPOSITORY" "$TEST_DIR/l"
expect_error 2 'go together' mirror --object-lock-days 2 "$KEEL_REPOSITORY" "$TEST_DIR/l"
expect_error 2 'object-lock-mode' mirror --object-lock-mode forever --object-lock-days 2 \
	"$KEEL_REPOSITORY" "$TEST_DIR/l"
expect_error 2 'needs a copy on S3' mirror --object-lock-mode governance --object-lock-days 1 \
	"$KEEL_REPOSITORY" "$TEST_DIR/l"
s3_new_repo plain
[ "$(s3_curl -X PUT -o /dev/null -w '%{http_code}' "$KEEL_S3_ENDPOINT/$S3_BUCKET")" = 200 ] ||
	fail "cannot create a plain bucket"
expect_error 2 'Object Lock' mirror --object-lock-mode governance --object-lock-days 1 \
	"$TEST_DIR/repo" "$KEEL_REPOSITORY"
[ -z "$(s3_keys plain/)" ] || fail "mirror wrote into a bucket it refused"
export KEEL_REPOSITORY=$TEST_DIR/repo

# ---- the first run sets it, later runs keep it -------------------------------------
expect_success mirror --object-lock-mode governance --object-lock-days 2 "$KEEL_REPOSITORY" "$M" \
	>"$TEST_DIR/out1"
grep -q 'governance Object Lock for 2 days' "$TEST_DIR/out1" ||
	fail "the summary does not say the retention: $(cat "$TEST_DIR/out1")"
S3_BUCKET=$BUCKET
s3_keys locked/ >"$TEST_DIR/keys1"
for d in config keys/ snapshots/ index/ data/ mirror/; do
	grep -q "^locked/$d" "$TEST_DIR/keys1" || fail "no $d in the copy"
done
while read -r key; do
	case $key in
	locked/mirror/*)
		[ -z "$(header "$key" x-amz-object-lock-mode)" ] ||
			fail "the mirror's state $key is locked: the next run could not replace it"
		;;
	*)
		[ "$(header "$key" x-amz-object-lock-mode)" = GOVERNANCE ] ||
			fail "$key is not under GOVERNANCE retention"
		;;
	esac
done <"$TEST_DIR/keys1"

head -c 300000 /dev/urandom >"$SRC/b.bin"
expect_success keel backup --no-progress "$SRC" >/dev/null
expect_success mirror --json "$KEEL_REPOSITORY" "$M" >"$TEST_DIR/out2"
[ "$(json_get object_lock_mode <"$TEST_DIR/out2")" = governance ] ||
	fail "the second run forgot the setting: $(cat "$TEST_DIR/out2")"
s3_keys locked/ | grep -vxF -f "$TEST_DIR/keys1" | grep -v '^locked/mirror/' >"$TEST_DIR/new" || true
[ -s "$TEST_DIR/new" ] || fail "the second run wrote nothing new"
while read -r key; do
	[ "$(header "$key" x-amz-object-lock-mode)" = GOVERNANCE ] ||
		fail "$key of the second run is not locked"
done <"$TEST_DIR/new"

# ---- deletions: quarantine over, still locked: retained, and the copy restores ------
expect_success keel forget --keep-last 1 >/dev/null
expect_success keel prune >/dev/null
expect_success mirror --json --delete-after 0s "$KEEL_REPOSITORY" "$M" >"$TEST_DIR/out3"
[ "$(json_get retained <"$TEST_DIR/out3")" -ge 1 ] ||
	fail "nothing retained though SOURCE deleted locked objects: $(cat "$TEST_DIR/out3")"
[ "$(json_get deleted <"$TEST_DIR/out3")" = 0 ] || fail "a locked object was deleted"
s3_keys locked/ >"$TEST_DIR/keys3"
[ "$(grep -vc '^locked/mirror/' "$TEST_DIR/keys3")" -ge "$(grep -vc '^locked/mirror/' "$TEST_DIR/keys1")" ] ||
	fail "objects went missing from the locked copy"
expect_success keel -r "$M" check --read-data >/dev/null
expect_success keel -r "$M" restore --no-progress latest --target "$TEST_DIR/r" >/dev/null
expect_success treecmp "$SRC" "$(restored_root "$TEST_DIR/r" "$SRC")"

# ---- none stops it for new objects ------------------------------------------------
head -c 300000 /dev/urandom >"$SRC/c.bin"
expect_success keel backup --no-progress "$SRC" >/dev/null
s3_keys locked/ >"$TEST_DIR/keys4"
expect_success mirror --json --object-lock-mode none "$KEEL_REPOSITORY" "$M" >"$TEST_DIR/out4"
[ "$(json_get object_lock_mode <"$TEST_DIR/out4")" = none ] || fail "none was not taken"
key=$(s3_keys locked/snapshots/ | grep -vxF -f "$TEST_DIR/keys4" | head -n 1)
[ -n "$key" ] || fail "no new snapshot in the copy"
[ -z "$(header "$key" x-amz-object-lock-mode)" ] || fail "$key is locked after 'none'"
