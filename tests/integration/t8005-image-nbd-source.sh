#!/usr/bin/env bash
# keel image backup from NBD sources (docs/IMAGES.md): the same ext4 image
# backed up as a file, from an NBD export of it (nbdkit's file plugin, on a
# Unix socket and on TCP) and as a qcow2 file (qemu-nbd behind libnbd)
# gives the same chunks (nothing new after the first), the export's holes
# are skipped unread, and each restores to the same bytes.
. "$(dirname "$0")/../lib.sh"
. "$KEEL_SOURCE_ROOT/tests/lib-nbd.sh"
require_keel
require_nbd_tools

keel_init
K=262144
img=$TEST_DIR/disk.img
make_ext4_image "$img" 40M
sha_img=$(sha "$img")
size=$(stat -c %s "$img")
chunks=$((size / K))

keel image backup --chunk-size 256K --json "$img" >"$TEST_DIR/b1" || fail "file backup failed"
data1=$((chunks - $(json_get chunks_hole <"$TEST_DIR/b1") - $(json_get chunks_zero <"$TEST_DIR/b1")))

# an NBD export of the image by another server: nbdkit's file plugin
sock=$TEST_DIR/file.sock
nbdkit --foreground --readonly --unix "$sock" file "$img" &
BG_PIDS+=($!)
for _ in $(seq 1 100); do [ -S "$sock" ] && break; sleep 0.1; done
keel image backup --chunk-size 256K --json "$(nbd_uri "$sock")" >"$TEST_DIR/b2" || fail "NBD backup failed"
[ "$(json_get chunks_new <"$TEST_DIR/b2")" = 0 ] || fail "the NBD export has other chunks than the file: $(cat "$TEST_DIR/b2")"
[ "$(json_get bytes_total <"$TEST_DIR/b2")" = "$size" ] || fail "NBD backup: wrong size"
[ "$(json_get chunks <"$TEST_DIR/b2")" = "$chunks" ] || fail "NBD backup: wrong chunk count"
hole2=$(json_get chunks_hole <"$TEST_DIR/b2")
[ "$hole2" -gt 0 ] || fail "the export's holes (base:allocation) were read"
[ "$(json_get bytes_read <"$TEST_DIR/b2")" = $(((chunks - hole2) * K)) ] || fail "NBD backup read more than the non-holes"
[ $((chunks - hole2 - $(json_get chunks_zero <"$TEST_DIR/b2"))) = "$data1" ] || fail "NBD backup: other data chunks"
snap2=$(json_get snapshot_id <"$TEST_DIR/b2")
keel snapshots --json >"$TEST_DIR/snaps"
grep -qF "nbd+unix:///?socket=$sock" "$TEST_DIR/snaps" || fail "the snapshot does not name the URI as its path"
expect_success keel image restore -q "$snap2" "$TEST_DIR/r2.img"
[ "$(sha "$TEST_DIR/r2.img")" = "$sha_img" ] || fail "the NBD backup restores other bytes"
keel ls "$snap2" | grep -qx "/disk" || fail "an NBD image is not named 'disk' by default: $(keel ls "$snap2")"

# the same over TCP, named
port=$((20000 + RANDOM % 20000))
nbdkit --foreground --readonly --ipaddr 127.0.0.1 --port "$port" file "$img" &
BG_PIDS+=($!)
for _ in $(seq 1 100); do nbdinfo --size "nbd://127.0.0.1:$port" >/dev/null 2>&1 && break; sleep 0.1; done
keel image backup --name vda --chunk-size 256K --json "nbd://127.0.0.1:$port" >"$TEST_DIR/b3" || fail "TCP NBD backup failed"
[ "$(json_get chunks_new <"$TEST_DIR/b3")" = 0 ] || fail "the TCP export has other chunks"

# a qcow2 file: read through qemu-nbd by libnbd
expect_success qemu-img convert -f raw -O qcow2 "$img" "$TEST_DIR/disk.qcow2"
keel image backup --chunk-size 256K --json "$TEST_DIR/disk.qcow2" >"$TEST_DIR/b4" || fail "qcow2 backup failed"
[ "$(json_get chunks_new <"$TEST_DIR/b4")" = 0 ] || fail "the qcow2 has other chunks: $(cat "$TEST_DIR/b4")"
[ "$(json_get bytes_total <"$TEST_DIR/b4")" = "$size" ] || fail "qcow2 backup: not the virtual size"
[ "$(json_get method <"$TEST_DIR/b4")" = read ] || fail "qcow2 backup without bitmap: method is not read"
snap4=$(json_get snapshot_id <"$TEST_DIR/b4")
keel ls "$snap4" | grep -qx "/disk.qcow2" || fail "a qcow2 image is not named by its file"
expect_success keel image restore -q "$snap4" "$TEST_DIR/r4.img"
[ "$(sha "$TEST_DIR/r4.img")" = "$sha_img" ] || fail "the qcow2 backup restores other bytes"
# (this test's: others beside it serve a disk.qcow2 of their own)
! pgrep -f "qemu-nbd.*$TEST_DIR/disk.qcow2" >/dev/null || fail "qemu-nbd was left running"

# an export that is not there; a bitmap on a plain file
expect_failure keel image backup "$(nbd_uri "$TEST_DIR/nothing.sock")"
expect_exit 2 keel image backup --dirty-bitmap b0 "$img"
exit 0
