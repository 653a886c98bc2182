#!/usr/bin/env bash
# Incremental backups: an unchanged tree stores no new data; changes
# (including one that keeps size and mtime) are picked up; every snapshot
# restores to the tree as it was.
. "$(dirname "$0")/../lib.sh"
require_keel
require_treecmp

SRC=$TEST_DIR/src
mkdir -p "$SRC/docs" "$SRC/data" "$SRC/empty"
for i in 1 2 3 4 5 6 7 8; do
	head -c $((i * 300000)) /dev/urandom >"$SRC/data/blob-$i"
	printf 'document %d\n' "$i" >"$SRC/docs/doc-$i.txt"
done
ln -s ../docs/doc-1.txt "$SRC/data/link"
keel_init

# saved copy of the source as it is now (cp -a keeps times, modes, links)
save()
{
	cp -a "$SRC" "$TEST_DIR/saved-$1"
}

expect_success keel backup --tag one --json "$SRC" >"$TEST_DIR/b1.json"
save one
data1=$(dir_bytes "$KEEL_REPOSITORY/data")
[ "$data1" -gt 2000000 ] || fail "first backup stored only $data1 bytes of data"

# Nothing changed: no new file data in the repository, and the stats say
# so. (The directories above the source, /tmp and the test directory,
# change all the time and their metadata is recorded, so a few small tree
# blobs may be new.)
expect_success keel backup --tag two --json "$SRC" >"$TEST_DIR/b2.json"
save two
data2=$(dir_bytes "$KEEL_REPOSITORY/data")
[ $((data2 - data1)) -lt 65536 ] || fail "unchanged tree added $((data2 - data1)) bytes to data/"
added=$(json_get data_added <"$TEST_DIR/b2.json")
[ "$added" -lt 16384 ] || fail "unchanged backup reports data_added $added"
log "unchanged backup: data_added $added, data/ grew by $((data2 - data1)) bytes"
[ "$(json_get files_new <"$TEST_DIR/b2.json")" = 0 ] || fail "unchanged backup reports new files"
[ "$(json_get files_changed <"$TEST_DIR/b2.json")" = 0 ] || fail "unchanged backup reports changed files"
n_unmod=$(json_get files_unmodified <"$TEST_DIR/b2.json")
[ "$n_unmod" -ge 16 ] || fail "unchanged backup reports only $n_unmod unmodified files"
parent=$(json_get parent <"$TEST_DIR/b2.json")
[ -n "$parent" ] || fail "second backup names no parent snapshot"
[ "$(snapshot_count)" = 2 ] || fail "expected 2 snapshots"

# Changes: append to one file, add one, remove one, chmod one, and
# rewrite one in place keeping its size and mtime (only ctime tells).
head -c 1000 /dev/urandom >>"$SRC/data/blob-2"
printf 'new\n' >"$SRC/docs/new.txt"
rm "$SRC/docs/doc-8.txt"
chmod 0600 "$SRC/docs/doc-3.txt"
old_mtime=$(stat -c %y "$SRC/data/blob-5")
head -c 4096 /dev/urandom | dd of="$SRC/data/blob-5" bs=4096 seek=10 conv=notrunc status=none
touch -d "$old_mtime" "$SRC/data/blob-5"
expect_success keel backup --tag three --json "$SRC" >"$TEST_DIR/b3.json"
save three
added=$(json_get data_added <"$TEST_DIR/b3.json")
[ "$added" -gt 0 ] || fail "third backup added no data"
# Dedup: far less than the tree's 10 MB is new.
[ "$added" -lt 6000000 ] || fail "third backup added $added bytes for small changes"
changed=$(json_get files_changed <"$TEST_DIR/b3.json")
[ "$changed" -ge 2 ] || fail "third backup saw only $changed changed files (blob-2 and blob-5 changed)"

# Every snapshot restores to the tree as it was then.
for t in one two three; do
	expect_success keel restore latest --tag "$t" --target "$TEST_DIR/restore-$t" >/dev/null
	expect_success treecmp --ignore-atime "$TEST_DIR/saved-$t" \
		"$(restored_root "$TEST_DIR/restore-$t" "$SRC")"
done
# the in-place rewrite with the old mtime must not have been missed
cmp -s "$SRC/data/blob-5" "$(restored_root "$TEST_DIR/restore-three" "$SRC")/data/blob-5" ||
	fail "a change that kept size and mtime was not backed up"

expect_success keel check --read-data >/dev/null
