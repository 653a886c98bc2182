#!/usr/bin/env bash
# keel copy (docs/COPY.md): snapshots copied between repositories with
# different passwords and chunker settings restore to the source tree;
# a second copy sends nothing; a related snapshot reads only what
# changed; --dry-run stores nothing; filters, ids, the environment's
# KEEL_FROM_* and a wrong source password (exit 12).
. "$(dirname "$0")/../lib.sh"
require_keel
require_treecmp

SRC=$TEST_DIR/src
DEST=$TEST_DIR/dest
FROM_PW=$TEST_DIR/from-password
printf 'another password\n' >"$FROM_PW"
chmod 600 "$FROM_PW"
mkdir -p "$SRC"
make_awkward_tree "$SRC/awk" 2>/dev/null
head -c 3000000 /dev/urandom >"$SRC/big.bin"
mkdir -p "$SRC/d1/d2"
head -c 200000 /dev/urandom >"$SRC/d1/d2/mid.bin"

# SOURCE: the test's repository (its password), DEST: another password, small chunks
keel_init >/dev/null
expect_success keel backup --no-progress --tag first "$SRC"
expect_success keel -r "$DEST" --password-file "$FROM_PW" init --kdf-ops 1 --kdf-mem 8 \
	--chunk-min 64K --chunk-avg 128K --chunk-max 512K

# copy_json ARGS...: keel -r DEST copy --json, the summary in $TEST_DIR/summary
copy_json()
{
	log "+ keel -r DEST copy --json $*"
	KEEL_PASSWORD_FILE=$FROM_PW "$KEEL" -r "$DEST" copy --json --from-password-file \
		"$KEEL_PASSWORD_FILE" "$@" >"$TEST_DIR/summary" 2>"$TEST_DIR/cerr" ||
		fail "keel copy $* failed: $(cat "$TEST_DIR/cerr")"
	json_check <"$TEST_DIR/summary"
}
dkeel() { KEEL_PASSWORD_FILE=$FROM_PW "$KEEL" -r "$DEST" "$@"; }
restore_cmp()
{
	rm -rf "$TEST_DIR/restored"
	expect_success dkeel restore --no-progress "$1" --target "$TEST_DIR/restored"
	expect_success treecmp --ignore-atime "$SRC" "$(restored_root "$TEST_DIR/restored" "$SRC")"
}

copy_json --from-repo "$KEEL_REPOSITORY"
[ "$(summary_get snapshots_copied)" = 1 ] || fail "copied $(summary_get snapshots_copied) snapshots, not 1"
[ "$(summary_get rechunked)" = True ] || [ "$(summary_get rechunked)" = true ] || fail "not cut again"
[ "$(summary_get bytes_new)" -ge 3000000 ] || fail "only $(summary_get bytes_new) bytes new"
expect_success dkeel check --read-data
restore_cmp latest
# the copy records its original
orig=$(keel snapshots --json | json_get id)
[ "$(dkeel snapshots --json | json_get original)" = "$orig" ] || fail "no original recorded"
[ "$(dkeel snapshots --json --tag first | json_get id | wc -l)" = 1 ] || fail "tags not copied"

# a second copy sends nothing: the snapshot is skipped
before=$(find "$DEST/data" -type f | wc -l)
copy_json --from-repo "$KEEL_REPOSITORY"
[ "$(summary_get snapshots_copied)" = 0 ] || fail "copied again"
[ "$(summary_get snapshots_skipped)" = 1 ] || fail "not skipped"
[ "$(summary_get bytes_read)" = 0 ] || fail "read $(summary_get bytes_read) bytes for nothing"
[ "$(find "$DEST/data" -type f | wc -l)" = "$before" ] || fail "a pack was written"

# a related snapshot: the unchanged files come from the copy made before, unread
printf 'new\n' >"$SRC/d1/new.txt"
expect_success keel backup --no-progress "$SRC"
# dry run: nothing stored, nothing listed
copy_json --from-repo "$KEEL_REPOSITORY" --dry-run
[ "$(summary_get snapshots_copied)" = 1 ] || fail "dry run would copy $(summary_get snapshots_copied)"
[ "$(dkeel snapshots --json | json_get id | wc -l)" = 1 ] || fail "dry run wrote a snapshot"
[ "$(find "$DEST/data" -type f | wc -l)" = "$before" ] || fail "dry run wrote a pack"
copy_json --from-repo "$KEEL_REPOSITORY"
[ "$(summary_get snapshots_copied)" = 1 ] || fail "second snapshot not copied"
[ "$(summary_get snapshots_skipped)" = 1 ] || fail "first snapshot not skipped"
[ "$(summary_get bytes_read)" -lt 100000 ] || fail "read $(summary_get bytes_read) bytes for a 4-byte change"
[ "$(summary_get files_known)" -ge 1 ] || fail "unchanged big.bin was read again"
restore_cmp latest
expect_success dkeel check --read-data

# a copy killed after its packs were written, before the index file naming
# them: DEST checks clean without the snapshot, the next copy adopts the packs
head -c 1000000 /dev/urandom >"$SRC/d1/killed.bin"
expect_success keel backup --no-progress "$SRC"
start_paused copy-before-index env KEEL_PASSWORD_FILE="$FROM_PW" "$KEEL" -r "$DEST" copy \
	--no-progress --from-repo "$KEEL_REPOSITORY" --from-password-file "$KEEL_PASSWORD_FILE"
kill -9 "$PAUSED_PID"
wait_paused || true
[ "$(dkeel snapshots --json | json_get id | wc -l)" = 2 ] || fail "a killed copy saved a snapshot"
expect_success dkeel check
copy_json --from-repo "$KEEL_REPOSITORY"
[ "$(summary_get snapshots_copied)" = 1 ] || fail "the snapshot of the killed copy was not copied"
[ "$(summary_get bytes_new)" -lt 100000 ] || fail "the killed copy's packs were stored again"
restore_cmp latest
expect_success dkeel check --read-data

# snapshots by id and by filter; the source from the environment
rm -f "$SRC/d1/new.txt"
expect_success keel backup --no-progress --host elsewhere "$SRC"
third=$(keel snapshots --json --host elsewhere | json_get id)
copy_json --from-repo "$KEEL_REPOSITORY" --host nowhere
[ "$(summary_get snapshots_copied)" = 0 ] || fail "--host nowhere copied something"
log "+ KEEL_FROM_REPOSITORY, KEEL_FROM_PASSWORD, an id"
KEEL_FROM_REPOSITORY=$KEEL_REPOSITORY KEEL_FROM_PASSWORD=$PASSWORD KEEL_PASSWORD_FILE=$FROM_PW \
	"$KEEL" -r "$DEST" copy --json "${third:0:8}" >"$TEST_DIR/summary" ||
	fail "copy with KEEL_FROM_* failed"
[ "$(summary_get snapshots_copied)" = 1 ] || fail "the snapshot named was not copied"
[ "$(dkeel snapshots --json --host elsewhere | json_get id | wc -l)" = 1 ] || fail "no copy of $third"
restore_cmp "$(dkeel snapshots --json --host elsewhere | json_get id)"

# errors: a wrong source password (12), no source (2), a source that is no repository (10)
printf 'wrong\n' >"$TEST_DIR/wrong"
chmod 600 "$TEST_DIR/wrong"
NEVER_SHOWN=("$PASSWORD" "another password")
expect_error 12 "no key of the source opens with the password from password file '$TEST_DIR/wrong'" \
	env KEEL_PASSWORD_FILE="$FROM_PW" "$KEEL" -r "$DEST" copy \
	--from-repo "$KEEL_REPOSITORY" --from-password-file "$TEST_DIR/wrong"
expect_error 2 "from-repo" env KEEL_PASSWORD_FILE="$FROM_PW" "$KEEL" -r "$DEST" copy
expect_error 10 "source" env KEEL_PASSWORD_FILE="$FROM_PW" "$KEEL" -r "$DEST" copy \
	--from-repo "$TEST_DIR/nothing" --from-password-file "$TEST_DIR/wrong"
# no terminal, no source password: a usage error naming where one comes from
expect_error 2 "KEEL_FROM_PASSWORD" env KEEL_PASSWORD_FILE="$FROM_PW" setsid "$KEEL" -r "$DEST" \
	copy --from-repo "$KEEL_REPOSITORY"

# a disk image keeps its fixed chunks though DEST cuts files otherwise
# (keel image serve and --dirty-bitmap count on them): an image backup
# straight into DEST of the same image then finds every chunk stored
head -c 2000000 /dev/urandom >"$TEST_DIR/disk.img"
truncate -s 4M "$TEST_DIR/disk.img"
keel image backup --chunk-size 256K --json "$TEST_DIR/disk.img" >"$TEST_DIR/ib1" ||
	fail "image backup failed"
img_snap=$(json_get snapshot_id <"$TEST_DIR/ib1")
copy_json --from-repo "$KEEL_REPOSITORY" "${img_snap:0:8}"
[ "$(summary_get snapshots_copied)" = 1 ] || fail "the image snapshot was not copied"
expect_success dkeel check --read-data
dkeel image backup --json "$TEST_DIR/disk.img" >"$TEST_DIR/ib2" || fail "image backup into DEST failed"
[ "$(json_get chunk_size <"$TEST_DIR/ib2")" = $((256 << 10)) ] || fail "not the copy's chunk size"
[ "$(json_get chunks_new <"$TEST_DIR/ib2")" = 0 ] ||
	fail "$(json_get chunks_new <"$TEST_DIR/ib2") chunks of the copied image were not stored as chunks"
img_copy=$(json_get copy <"$TEST_DIR/summary")
dkeel image restore --verify "$img_copy" "$TEST_DIR/disk-copy.img" >/dev/null ||
	fail "image restore of the copy failed"
cmp "$TEST_DIR/disk.img" "$TEST_DIR/disk-copy.img" || fail "the copied image differs"
