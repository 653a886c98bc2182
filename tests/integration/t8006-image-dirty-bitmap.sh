#!/usr/bin/env bash
# keel image backup --dirty-bitmap (docs/IMAGES.md): a qcow2 image with a
# persistent dirty bitmap (qemu-img bitmap --add), changed by qemu-io
# writes, is backed up incrementally: only the chunks the bitmap marks are
# read (bytes_read, chunks_clean), the others keep the parent's ids
# (image_method dirty-bitmap), and the snapshot restores to the image's
# bytes. The same through qemu-nbd --bitmap on a Unix socket; a source
# without the bitmap is refused.
. "$(dirname "$0")/../lib.sh"
. "$KEEL_SOURCE_ROOT/tests/lib-nbd.sh"
require_keel
require_nbd_tools

keel_init
K=262144
make_ext4_image "$TEST_DIR/disk.img" 32M
q=$TEST_DIR/disk.qcow2
expect_success qemu-img convert -f raw -O qcow2 "$TEST_DIR/disk.img" "$q"
expect_success qemu-img bitmap --add "$q" b0
size=$(stat -c %s "$TEST_DIR/disk.img")
chunks=$((size / K))

# the first backup has no parent: everything allocated is read
keel image backup --chunk-size 256K --dirty-bitmap b0 --json "$q" >"$TEST_DIR/b1" || fail "first backup failed"
[ "$(json_get method <"$TEST_DIR/b1")" = read ] || fail "a backup without parent says $(json_get method <"$TEST_DIR/b1")"
[ "$(json_get chunks_clean <"$TEST_DIR/b1")" = 0 ] || fail "a backup without parent took clean chunks"
snap1=$(json_get snapshot_id <"$TEST_DIR/b1")

# four chunks dirtied (the bitmap's granularity is 64 KiB): 4, 39 and 40 (one
# write across their boundary), 120
expect_success qemu-io -f qcow2 -c "write -P 0x11 1M 4096" -c "write -P 0x22 $((40 * K - 1000)) 2000" \
	-c "write -P 0x33 $((120 * K + 5000)) 100" "$q" >/dev/null
keel image backup --dirty-bitmap b0 --json "$q" >"$TEST_DIR/b2" || fail "bitmap backup failed"
json_check <"$TEST_DIR/b2"
[ "$(json_get method <"$TEST_DIR/b2")" = dirty-bitmap ] || fail "method: $(cat "$TEST_DIR/b2")"
[ "$(json_get parent <"$TEST_DIR/b2")" = "$snap1" ] || fail "the parent is not the first backup"
[ "$(json_get chunks_clean <"$TEST_DIR/b2")" = $((chunks - 4)) ] || fail "expected $((chunks - 4)) clean chunks: $(cat "$TEST_DIR/b2")"
[ "$(json_get bytes_read <"$TEST_DIR/b2")" = $((4 * K)) ] || fail "read more than the four dirty chunks: $(cat "$TEST_DIR/b2")"
[ "$(json_get chunks_new <"$TEST_DIR/b2")" = 4 ] || fail "expected four new chunks"
snap2=$(json_get snapshot_id <"$TEST_DIR/b2")
keel snapshots --json >"$TEST_DIR/snaps"
python3 - "$TEST_DIR/snaps" "$snap2" <<'PY' || fail "the snapshot does not record the method"
import json, sys
s = [x for x in json.load(open(sys.argv[1])) if x["id"] == sys.argv[2]][0]
sys.exit(0 if "dirty-bitmap" in json.dumps(s) else 1)
PY
expect_success qemu-img convert -f qcow2 -O raw "$q" "$TEST_DIR/want.img"
expect_success keel image restore -q "$snap2" "$TEST_DIR/r2.img"
cmp "$TEST_DIR/want.img" "$TEST_DIR/r2.img" || fail "the bitmap backup restores other bytes"
# and a full read of the same state finds nothing new
keel image backup --json "$q" >"$TEST_DIR/b2full" || fail "full backup failed"
[ "$(json_get chunks_new <"$TEST_DIR/b2full")" = 0 ] || fail "the bitmap backup missed a change"

# through an NBD export by qemu-nbd --bitmap (the bitmap accumulates: 4
# chunks from before, one more now)
sock=$TEST_DIR/q.sock
start_qemu_nbd()
{
	qemu-nbd --read-only --format=qcow2 "$@" --socket="$sock" "$q" &
	QPID=$!
	BG_PIDS+=("$QPID")
	for _ in $(seq 1 100); do [ -S "$sock" ] && return 0; sleep 0.1; done
	fail "qemu-nbd did not start"
}
stop_qemu_nbd()
{
	kill "$QPID" 2>/dev/null || true # it ends with its first client unless --persistent
	wait "$QPID" || true
	rm -f "$sock"
}
start_qemu_nbd --bitmap=b0
keel image backup --chunk-size 256K --dirty-bitmap b0 --json "$(nbd_uri "$sock")" >"$TEST_DIR/b3" || fail "NBD bitmap backup failed"
[ "$(json_get method <"$TEST_DIR/b3")" = read ] || fail "the URI's first backup has no parent"
stop_qemu_nbd
expect_success qemu-io -f qcow2 -c "write -P 0x44 $((60 * K)) 512" "$q" >/dev/null
start_qemu_nbd --bitmap=b0
keel image backup --dirty-bitmap b0 --json "$(nbd_uri "$sock")" >"$TEST_DIR/b4" || fail "second NBD bitmap backup failed"
[ "$(json_get method <"$TEST_DIR/b4")" = dirty-bitmap ] || fail "NBD: method $(cat "$TEST_DIR/b4")"
[ "$(json_get bytes_read <"$TEST_DIR/b4")" = $((5 * K)) ] || fail "NBD: expected 5 dirty chunks read: $(cat "$TEST_DIR/b4")"
[ "$(json_get chunks_new <"$TEST_DIR/b4")" = 1 ] || fail "NBD: expected one new chunk"
stop_qemu_nbd
expect_success qemu-img convert -f qcow2 -O raw "$q" "$TEST_DIR/want4.img"
expect_success keel image restore -q "$(json_get snapshot_id <"$TEST_DIR/b4")" "$TEST_DIR/r4.img"
cmp "$TEST_DIR/want4.img" "$TEST_DIR/r4.img" || fail "the NBD bitmap backup restores other bytes"

# an export without that bitmap: a usage error, nothing saved
start_qemu_nbd
expect_exit 2 keel image backup --dirty-bitmap b0 "$(nbd_uri "$sock")"
stop_qemu_nbd
expect_failure keel image backup --dirty-bitmap nope "$q"
exit 0
