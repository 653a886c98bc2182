#!/usr/bin/env bash
# Hard links and holes in detail: link groups survive partial restores, a
# large sparse file costs neither repository space nor disk space when
# restored, and a dense file of zeros stays dense.
. "$(dirname "$0")/../lib.sh"
require_keel
require_treecmp

SRC=$TEST_DIR/src
mkdir -p "$SRC/a" "$SRC/b"
head -c 200000 /dev/urandom >"$SRC/a/h1"
ln "$SRC/a/h1" "$SRC/b/h2"
ln "$SRC/a/h1" "$SRC/a/h3"
printf 'pair\n' >"$SRC/a/p1"
ln "$SRC/a/p1" "$SRC/b/p2"
# 256 MiB, three 64 KiB islands; a file of 8 MiB of written zeros
truncate -s 256M "$SRC/big-sparse"
for off in 0 2000 4000; do
	head -c 65536 /dev/urandom | dd of="$SRC/big-sparse" bs=64k seek="$off" conv=notrunc status=none
done
head -c $((8 << 20)) /dev/zero >"$SRC/dense-zeros"
truncate -s 1G "$SRC/only-hole"
keel_init

expect_success keel backup "$SRC" >/dev/null
data=$(dir_bytes "$KEEL_REPOSITORY/data")
log "repository data after the backup: $data bytes"
# holes and zeros deduplicate: far less than the 1.5 GiB logical size
[ "$data" -lt $((8 << 20)) ] || fail "holes cost $data bytes in the repository"

expect_success keel restore latest --target "$TEST_DIR/r" >/dev/null
R=$(restored_root "$TEST_DIR/r" "$SRC")
expect_success treecmp --ignore-atime "$SRC" "$R"
[ "$(stat -c %h "$R/a/h1")" = 3 ] || fail "the link triple has $(stat -c %h "$R/a/h1") links"
[ "$(stat -c %i "$R/a/h1")" = "$(stat -c %i "$R/b/h2")" ] || fail "a/h1 and b/h2 are not linked"
alloc=$(($(stat -c %b "$R/big-sparse") * 512 + $(stat -c %b "$R/only-hole") * 512))
[ "$alloc" -lt $((32 << 20)) ] || fail "restored sparse files take $alloc bytes of disk"
dense=$(($(stat -c %b "$R/dense-zeros") * 512))
[ "$dense" -ge $((8 << 20)) ] || fail "a dense file of zeros was restored sparse ($dense bytes allocated)"

# Restoring only some paths of a link group still gives correct files;
# paths of the group that are restored together are linked.
expect_success keel restore latest --target "$TEST_DIR/r2" --include h2 --include h3 >/dev/null
R2=$(restored_root "$TEST_DIR/r2" "$SRC")
[ ! -e "$R2/a/h1" ] || fail "--include h2 --include h3 restored h1"
cmp "$SRC/a/h1" "$R2/b/h2" || fail "b/h2 differs when restored without a/h1"
cmp "$SRC/a/h1" "$R2/a/h3" || fail "a/h3 differs when restored without a/h1"
[ "$(stat -c %i "$R2/b/h2")" = "$(stat -c %i "$R2/a/h3")" ] || fail "b/h2 and a/h3 are not linked"

# restoring a subtree holding one link of a group
expect_success keel restore "latest:$SRC/b" --target "$TEST_DIR/r3" >/dev/null
f=$(find "$TEST_DIR/r3" -name h2 -print -quit)
[ -n "$f" ] && cmp "$SRC/a/h1" "$f" || fail "restore of b/ alone did not give h2's content"

# A file written in parts by several workers: once its last part is queued
# the workers may finish and free it while the walk is still returning from
# the queue, and the walk must not read it again (a use after free that
# ASan shows here; on a loaded machine it crashed a restore with SIGSEGV
# once, t5005-copy-s3). The walk waits at the point until the file is done.
start_paused restore-parts-queued "$KEEL" restore --threads 2 "latest:$SRC/big-sparse" \
	--target "$TEST_DIR/r4"
want=$(stat -c %y "$SRC/big-sparse")
for _ in $(seq 600); do
	[ "$(stat -c %y "$TEST_DIR/r4/big-sparse" 2>/dev/null)" = "$want" ] && break
	sleep 0.1
done
[ "$(stat -c %y "$TEST_DIR/r4/big-sparse" 2>/dev/null)" = "$want" ] ||
	fail "big-sparse was not finished while the walk waited"
resume restore-parts-queued
wait_paused || fail "the restore of big-sparse failed (exit $?)"
cmp "$SRC/big-sparse" "$TEST_DIR/r4/big-sparse" || fail "big-sparse differs"
