#!/usr/bin/env bash
# A file with several names is read and chunked once per backup, not once
# per name: bytes_read in the backup's summary and in the snapshot counts
# it once, and the names are still restored as one inode.
. "$(dirname "$0")/../lib.sh"
require_keel
require_treecmp

SRC=$TEST_DIR/src
BIG=$((24 << 20))
mkdir -p "$SRC/a" "$SRC/b" "$SRC/c"
head -c "$BIG" /dev/urandom >"$SRC/a/big"
# names before and after the first one in walk order, in other directories
ln "$SRC/a/big" "$SRC/0-first-name"
ln "$SRC/a/big" "$SRC/b/big2"
ln "$SRC/a/big" "$SRC/c/big3"
ln "$SRC/a/big" "$SRC/a/zz-big4"
printf 'small\n' >"$SRC/b/small"
: >"$SRC/c/empty"
ln "$SRC/c/empty" "$SRC/c/empty2"
small=$(file_size "$SRC/b/small")
keel_init

summary_value()
{
	json_get "$1" | tail -1
}

keel backup --json "$SRC" >"$TEST_DIR/b1.json" || fail "backup failed"
read1=$(summary_value bytes_read <"$TEST_DIR/b1.json")
[ "$read1" = $((BIG + small)) ] || fail "first backup read $read1 bytes, want $((BIG + small))"
snap=$(keel snapshots --json | summary_value bytes_read)
[ "$snap" = "$read1" ] || fail "the snapshot says bytes_read $snap, the backup $read1"
total=$(summary_value bytes_total <"$TEST_DIR/b1.json")
[ "$total" = $((5 * BIG + small)) ] || fail "bytes_total $total: every name should count"

expect_success keel check --read-data >/dev/null
expect_success keel restore latest --target "$TEST_DIR/r" >/dev/null
R=$(restored_root "$TEST_DIR/r" "$SRC")
expect_success treecmp --ignore-atime "$SRC" "$R"
[ "$(stat -c %h "$R/a/big")" = 5 ] || fail "restored a/big has $(stat -c %h "$R/a/big") links"
for n in 0-first-name b/big2 c/big3 a/zz-big4; do
	[ "$(stat -c %i "$R/$n")" = "$(stat -c %i "$R/a/big")" ] || fail "$n is not linked to a/big"
done

# A new name changes the inode's ctime, so the file is read again, but
# once: the new name and the old ones share that read.
ln "$SRC/a/big" "$SRC/c/big5"
keel backup --json "$SRC" >"$TEST_DIR/b2.json" || fail "second backup failed"
read2=$(summary_value bytes_read <"$TEST_DIR/b2.json")
[ "$read2" = "$BIG" ] || fail "second backup read $read2 bytes, want $BIG"
added=$(summary_value data_added <"$TEST_DIR/b2.json")
[ "$added" -lt $((1 << 20)) ] || fail "second backup added $added bytes of data"

# Unchanged: nothing read at all.
keel backup --json "$SRC" >"$TEST_DIR/b3.json" || fail "third backup failed"
read3=$(summary_value bytes_read <"$TEST_DIR/b3.json")
[ "$read3" = 0 ] || fail "unchanged backup read $read3 bytes"

expect_success keel restore latest --target "$TEST_DIR/r2" >/dev/null
expect_success treecmp --ignore-atime "$SRC" "$(restored_root "$TEST_DIR/r2" "$SRC")"
expect_success keel check >/dev/null
