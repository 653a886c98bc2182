#!/usr/bin/env bash
# keel image backup --dirty-bitmap reuses the parent snapshot's chunks only
# when the bitmap describes the changes since it (docs/IMAGES.md): a parent
# of another disk of the same size at the same path (random bytes, which no
# ident tells apart; ext4 file systems, which their UUIDs do), or one taken
# before the bitmap was started, is not reused: every chunk is read, a note
# says why, and the snapshot restores to the disk's bytes. Then a real
# incremental on the last one still reuses it; a parent taken with
# another bitmap is not reused either, and the next backup with the new
# bitmap reuses its first one.
. "$(dirname "$0")/../lib.sh"
. "$KEEL_SOURCE_ROOT/tests/lib-nbd.sh"
require_keel
require_nbd_tools

keel_init
K=262144
q=$TEST_DIR/disk.qcow2

# backup_check NAME ARGS...: keel image backup --json ARGS... into $TEST_DIR/NAME
backup_check()
{
	local name=$1
	shift
	keel image backup --chunk-size 256K --json "$@" >"$TEST_DIR/$name" 2>"$TEST_DIR/$name.err" ||
		fail "backup $name failed: $(cat "$TEST_DIR/$name.err")"
	json_check <"$TEST_DIR/$name"
}

# restores_to NAME QCOW2: the snapshot of backup NAME holds the qcow2's bytes
restores_to()
{
	rm -f "$TEST_DIR/want.img" "$TEST_DIR/got.img"
	expect_success qemu-img convert -f qcow2 -O raw "$2" "$TEST_DIR/want.img"
	expect_success keel image restore -q "$(json_get snapshot_id <"$TEST_DIR/$1")" "$TEST_DIR/got.img"
	cmp "$TEST_DIR/want.img" "$TEST_DIR/got.img" || fail "backup $1 restores other bytes"
}

# read_in_full NAME WHY: backup NAME had a parent but read every chunk, noting WHY
read_in_full()
{
	local f=$TEST_DIR/$1
	[ -n "$(json_get parent <"$f")" ] || fail "$1: no parent: $(cat "$f")"
	[ "$(json_get method <"$f")" = read ] || fail "$1 used the bitmap: $(cat "$f")"
	[ "$(json_get chunks_clean <"$f")" = 0 ] || fail "$1 took clean chunks: $(cat "$f")"
	json_get note <"$f" | grep -q -- "$2" || fail "$1: no note saying '$2': $(cat "$f")"
}

# qcow2_of RAW: $q made anew from RAW, with a new dirty bitmap b0
qcow2_of()
{
	rm -f "$q"
	expect_success qemu-img convert -f raw -O qcow2 "$1" "$q"
	expect_success qemu-img bitmap --add "$q" b0
}

# 1. two disks of random bytes, 8 MiB each, one after the other at $q
head -c $((32 * K)) /dev/urandom >"$TEST_DIR/a.img"
head -c $((32 * K)) /dev/urandom >"$TEST_DIR/b.img"
qcow2_of "$TEST_DIR/a.img"
backup_check a --dirty-bitmap b0 "$q"
[ "$(json_get method <"$TEST_DIR/a")" = read ] || fail "the first backup says $(cat "$TEST_DIR/a")"
qcow2_of "$TEST_DIR/b.img" # its bitmap is empty: everything looks clean
backup_check b --dirty-bitmap b0 "$q"
read_in_full b "differs from the parent snapshot"
[ "$(json_get bytes_read <"$TEST_DIR/b")" = $((32 * K)) ] || fail "b did not read it all: $(cat "$TEST_DIR/b")"
restores_to b "$q"
# the text output says it too
qcow2_of "$TEST_DIR/a.img"
keel image backup --dirty-bitmap b0 "$q" >/dev/null 2>"$TEST_DIR/text.err" || fail "text backup failed"
grep -q "note: --dirty-bitmap: image 'disk.qcow2' read in full" "$TEST_DIR/text.err" ||
	fail "no note on stderr: $(cat "$TEST_DIR/text.err")"

# 2. two ext4 file systems of the same size: their UUIDs differ
make_ext4_image "$TEST_DIR/e1.img" 16M
make_ext4_image "$TEST_DIR/e2.img" 16M
qcow2_of "$TEST_DIR/e1.img"
backup_check e1 --dirty-bitmap b0 "$q"
qcow2_of "$TEST_DIR/e2.img"
backup_check e2 --dirty-bitmap b0 "$q"
read_in_full e2 "the parent snapshot is of another disk"
restores_to e2 "$q"

# 3. the same disk, its bitmap started after the parent: the write before
# it (chunk 0, the first a sample of clean chunks reads) is in no bitmap
head -c $((32 * K)) /dev/urandom >"$TEST_DIR/c.img"
rm -f "$q"
expect_success qemu-img convert -f raw -O qcow2 "$TEST_DIR/c.img" "$q"
backup_check c1 "$q"
expect_success qemu-io -f qcow2 -c "write -P 0x55 8192 4096" "$q" >/dev/null
expect_success qemu-img bitmap --add "$q" b0
expect_success qemu-io -f qcow2 -c "write -P 0x66 $((20 * K)) 4096" "$q" >/dev/null
backup_check c2 --dirty-bitmap b0 "$q"
read_in_full c2 "differs from the parent snapshot"
restores_to c2 "$q"

# 4. and an incremental of that disk now reuses c2 (taken while b0 ran)
expect_success qemu-io -f qcow2 -c "write -P 0x77 $((5 * K)) 4096" "$q" >/dev/null
backup_check c3 --dirty-bitmap b0 "$q"
[ "$(json_get method <"$TEST_DIR/c3")" = dirty-bitmap ] || fail "c3 did not use the bitmap: $(cat "$TEST_DIR/c3")"
[ -z "$(json_get note <"$TEST_DIR/c3")" ] || fail "c3 has a note: $(cat "$TEST_DIR/c3")"
# dirty: chunks 5 and 20; the others are the parent's
[ "$(json_get chunks_clean <"$TEST_DIR/c3")" = 30 ] || fail "c3: expected 30 clean chunks: $(cat "$TEST_DIR/c3")"
restores_to c3 "$q"

# 5. another bitmap, started after a write the parent (taken with b0) lacks:
# in chunk 12, which the sample (the first clean chunk of each quarter:
# 8 in 8..15) does not read. The parent's bitmap name tells.
expect_success qemu-io -f qcow2 -c "write -P 0x88 $((12 * K)) 4096" "$q" >/dev/null
expect_success qemu-img bitmap --add "$q" b1
backup_check c4 --dirty-bitmap b1 "$q"
read_in_full c4 "the parent snapshot was taken with the dirty bitmap 'b0'"
restores_to c4 "$q"
# ... and the next one with b1 reuses c4 (taken with b1)
expect_success qemu-io -f qcow2 -c "write -P 0x99 $((3 * K)) 4096" "$q" >/dev/null
backup_check c5 --dirty-bitmap b1 "$q"
[ "$(json_get method <"$TEST_DIR/c5")" = dirty-bitmap ] || fail "c5 did not use the bitmap: $(cat "$TEST_DIR/c5")"
[ "$(json_get chunks_clean <"$TEST_DIR/c5")" = 31 ] || fail "c5: expected 31 clean chunks: $(cat "$TEST_DIR/c5")"
restores_to c5 "$q"
# the snapshots record the bitmap's name (field 32), shown by keel snapshots
keel snapshots --json >"$TEST_DIR/s.json" || fail "keel snapshots failed"
python3 - "$TEST_DIR/s.json" "$(json_get snapshot_id <"$TEST_DIR/c1")" \
	"$(json_get snapshot_id <"$TEST_DIR/c3")" "$(json_get snapshot_id <"$TEST_DIR/c4")" <<'PY' ||
import json, sys
v = {x["id"]: x for x in json.load(open(sys.argv[1]))}
assert v[sys.argv[2]]["image"]["bitmap"] is None, v[sys.argv[2]]["image"]
assert v[sys.argv[3]]["image"]["bitmap"] == "b0", v[sys.argv[3]]["image"]
assert v[sys.argv[4]]["image"]["bitmap"] == "b1", v[sys.argv[4]]["image"]
PY
	fail "image.bitmap is wrong: $(cat "$TEST_DIR/s.json")"
keel snapshots >"$TEST_DIR/s.txt" || fail "keel snapshots failed"
grep -q '^ *dirty bitmap: b1$' "$TEST_DIR/s.txt" || fail "no 'dirty bitmap: b1' line: $(cat "$TEST_DIR/s.txt")"
exit 0
