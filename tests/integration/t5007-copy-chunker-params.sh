#!/usr/bin/env bash
# keel init --from-repo SOURCE --copy-chunker-params (docs/COPY.md): DEST
# has its own password and master key but cuts as SOURCE does, so a copy
# keeps SOURCE's blob boundaries, a copy of related data stores about
# nothing new, and a backup straight into DEST deduplicates with what was
# copied. Usage errors of the options.
. "$(dirname "$0")/../lib.sh"
require_keel
require_treecmp

SRC=$TEST_DIR/src
DEST=$TEST_DIR/dest
FROM_PW=$TEST_DIR/from-password
printf 'the other password\n' >"$FROM_PW"
chmod 600 "$FROM_PW"
mkdir -p "$SRC/sub"
head -c 4000000 /dev/urandom >"$SRC/big.bin"
head -c 300000 /dev/urandom >"$SRC/sub/mid.bin"
printf 'small\n' >"$SRC/sub/small.txt"

# SOURCE with small chunks, so that a file is many blobs
keel_init --chunk-min 64K --chunk-avg 128K --chunk-max 512K >/dev/null
expect_success keel backup --no-progress "$SRC"

dkeel() { KEEL_PASSWORD_FILE=$FROM_PW "$KEEL" -r "$DEST" "$@"; }
copy_json()
{
	log "+ keel -r DEST copy --json $*"
	dkeel copy --json --from-repo "$KEEL_REPOSITORY" --from-password-file "$KEEL_PASSWORD_FILE" \
		"$@" >"$TEST_DIR/summary" 2>"$TEST_DIR/cerr" ||
		fail "keel copy failed: $(cat "$TEST_DIR/cerr")"
	json_check <"$TEST_DIR/summary"
}

# usage errors: nothing is created
expect_error 2 "from-repo" dkeel init --kdf-ops 1 --kdf-mem 8 --copy-chunker-params
expect_error 2 "copy-chunker-params" dkeel init --kdf-ops 1 --kdf-mem 8 \
	--from-repo "$KEEL_REPOSITORY"
expect_error 2 "chunk" dkeel init --kdf-ops 1 --kdf-mem 8 --from-repo "$KEEL_REPOSITORY" \
	--copy-chunker-params --chunk-min 1M
expect_error 12 "source" dkeel init --kdf-ops 1 --kdf-mem 8 --from-repo "$KEEL_REPOSITORY" \
	--copy-chunker-params --from-password-file "$FROM_PW"
[ ! -e "$DEST" ] || fail "a failed init left $DEST"

expect_success dkeel init --kdf-ops 1 --kdf-mem 8 --from-repo "$KEEL_REPOSITORY" \
	--copy-chunker-params --from-password-file "$KEEL_PASSWORD_FILE"
# another master key: the other password does not open SOURCE, nor SOURCE's DEST
expect_exit 12 env KEEL_PASSWORD_FILE="$FROM_PW" "$KEEL" snapshots
expect_exit 12 keel -r "$DEST" snapshots

copy_json
[ "$(summary_get snapshots_copied)" = 1 ] || fail "not copied"
[ "$(summary_get rechunked)" = False ] || [ "$(summary_get rechunked)" = false ] || fail "cut again"
blobs=$(summary_get blobs_read)
[ "$blobs" -ge 20 ] || fail "only $blobs blobs: the chunks are not SOURCE's small ones"
[ "$(summary_get blobs_new)" = "$blobs" ] || fail "$(summary_get blobs_new) blobs new of $blobs"
expect_success dkeel check --read-data
rm -rf "$TEST_DIR/restored"
expect_success dkeel restore --no-progress latest --target "$TEST_DIR/restored"
expect_success treecmp --ignore-atime "$SRC" "$(restored_root "$TEST_DIR/restored" "$SRC")"

# related data: a few bytes changed in the middle of big.bin, a file added
printf 'CHANGED' | dd of="$SRC/big.bin" bs=1 seek=2000000 conv=notrunc status=none
cp "$SRC/sub/mid.bin" "$SRC/sub/mid-copy.bin"
expect_success keel backup --no-progress "$SRC"
copy_json
[ "$(summary_get snapshots_copied)" = 1 ] || fail "second snapshot not copied"
# one or two chunks of big.bin around the change: at most 2 x 512K
[ "$(summary_get bytes_new)" -le 1048576 ] || fail "$(summary_get bytes_new) bytes new for a 7-byte change"
[ "$(summary_get bytes_read)" -le 1500000 ] || fail "read $(summary_get bytes_read) bytes for a 7-byte change"
rm -rf "$TEST_DIR/restored"
expect_success dkeel restore --no-progress latest --target "$TEST_DIR/restored"
expect_success treecmp --ignore-atime "$SRC" "$(restored_root "$TEST_DIR/restored" "$SRC")"

# a backup straight into DEST (every file read: --force) cuts as SOURCE did: nothing new
dkeel backup --no-progress --force --json "$SRC" >"$TEST_DIR/summary" || fail "backup into DEST failed"
[ "$(json_get blobs_new <"$TEST_DIR/summary" | tail -1)" = 0 ] ||
	fail "a backup into DEST stored $(json_get blobs_new <"$TEST_DIR/summary" | tail -1) new blobs"
expect_success dkeel check
