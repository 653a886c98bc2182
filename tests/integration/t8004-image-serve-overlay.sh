#!/usr/bin/env bash
# keel image serve --overlay (docs/IMAGES.md, "Overlay file"): writes
# through the export (qemu-io: inside a block, across blocks and chunks, at
# the end; nbdcopy: a whole other image) are read back, kept in the overlay
# file across a restart of serve, and leave the repository untouched;
# 'keel image backup nbd+unix://...' and 'keel image backup --from-overlay'
# take the overlay's state; an overlay
# of another snapshot and a damaged one are refused.
. "$(dirname "$0")/../lib.sh"
. "$KEEL_SOURCE_ROOT/tests/lib-nbd.sh"
require_keel
require_nbd_tools

keel_init
img=$TEST_DIR/disk.img
make_ext4_image "$img" 32M
keel image backup --chunk-size 256K --json "$img" >"$TEST_DIR/b1" || fail "image backup failed"
snap=$(json_get snapshot_id <"$TEST_DIR/b1")
size=$(stat -c %s "$img")
sock=$TEST_DIR/s.sock
uri=$(nbd_uri "$sock")
ov=$TEST_DIR/overlay
repo_listing >"$TEST_DIR/repo-before"

serve_start w1 "$snap" --socket "$sock" --overlay "$ov" --json
[ "$(json_get writable <"$TEST_DIR/serve-w1.out")" = true ] || fail "the export is not writable"
[ -f "$ov" ] || fail "no overlay file was made"
[ "$(stat -c %a "$ov")" = 600 ] || fail "the overlay is not mode 600"
expect_success nbdinfo --json "$uri" >"$TEST_DIR/info"
[ "$(json_get is_read_only <"$TEST_DIR/info")" = false ] || fail "the export is read-only"
expect_success qemu-io -f raw -c "write -P 0xab 1000 5000" -c "write -P 0xcd 20M 1M" \
	-c "write -P 0x5a 262000 70000" -c "write -P 0xee $((size - 3000)) 3000" -c flush "$uri" >/dev/null
cp --sparse=always "$img" "$TEST_DIR/want.img"
python3 - "$TEST_DIR/want.img" "$size" <<'PY'
import sys
f = open(sys.argv[1], 'r+b')
size = int(sys.argv[2])
for off, n, b in ((1000, 5000, 0xab), (20 << 20, 1 << 20, 0xcd), (262000, 70000, 0x5a),
                  (size - 3000, 3000, 0xee)):
    f.seek(off)
    f.write(bytes([b]) * n)
PY
sha_want=$(sha "$TEST_DIR/want.img")
expect_success nbdcopy "$uri" "$TEST_DIR/r1.img"
[ "$(sha "$TEST_DIR/r1.img")" = "$sha_want" ] || fail "the export does not read back what was written"
serve_stop w1

# the repository is untouched; the overlay holds the writes (a header, then sparse data)
repo_listing >"$TEST_DIR/repo-after"
cmp -s "$TEST_DIR/repo-before" "$TEST_DIR/repo-after" || fail "serving with an overlay changed the repository"
[ "$(head -c 8 "$ov")" = KEELOVL1 ] || fail "the overlay has no header"
[ "$(du -k "$ov" | cut -f1)" -lt 4096 ] || fail "the overlay is not sparse: $(du -k "$ov")"

# a restart with the same overlay serves the same bytes
serve_start w2 "$snap" --socket "$sock" --overlay "$ov"
expect_success qemu-img convert -f raw -O raw "$uri" "$TEST_DIR/r2.img"
[ "$(sha "$TEST_DIR/r2.img")" = "$sha_want" ] || fail "the overlay's writes were lost over a restart"
# backing up the export takes the overlay's state
keel image backup --name disk.img --json "$uri" >"$TEST_DIR/b2" || fail "backup of the export failed"
[ "$(json_get bytes_total <"$TEST_DIR/b2")" = "$size" ] || fail "backup of the export: wrong size"
serve_stop w2
snap2=$(json_get snapshot_id <"$TEST_DIR/b2")
expect_success keel image restore -q "$snap2" "$TEST_DIR/r3.img"
[ "$(sha "$TEST_DIR/r3.img")" = "$sha_want" ] || fail "the backup of the export is not the overlay's state"

# and so does --from-overlay, without serving: the served snapshot's chunk
# size and image name, only the chunks written are new (0, 1, 80..83, 127)
keel image backup --from-overlay --json "$ov" >"$TEST_DIR/b3" || fail "backup --from-overlay failed"
[ "$(json_get chunk_size <"$TEST_DIR/b3")" = 262144 ] || fail "--from-overlay: not the snapshot's chunk size"
new3=$(json_get chunks_new <"$TEST_DIR/b3")
[ "$new3" -ge 1 ] && [ "$new3" -le 7 ] || fail "--from-overlay stored $new3 new chunks: $(cat "$TEST_DIR/b3")"
snap3=$(json_get snapshot_id <"$TEST_DIR/b3")
keel ls "$snap3" | grep -qx /disk.img || fail "--from-overlay: not the image's name"
expect_success keel image restore -q "$snap3" "$TEST_DIR/r5.img"
[ "$(sha "$TEST_DIR/r5.img")" = "$sha_want" ] || fail "--from-overlay backed up other bytes"
expect_exit 2 keel image backup --from-overlay "$img"

# an overlay belongs to one snapshot's image; a damaged one is refused
"$KEEL" image serve "$snap2" --socket "$sock" --overlay "$ov" >/dev/null 2>"$TEST_DIR/err" &&
	fail "the overlay of another snapshot was served"
grep -q "belongs to image 'disk.img' of snapshot ${snap:0:8}" "$TEST_DIR/err" ||
	fail "no message says the overlay belongs to another image: $(cat "$TEST_DIR/err")"
cp "$ov" "$TEST_DIR/bad-ov"
printf '\x01' | dd of="$TEST_DIR/bad-ov" bs=1 seek=20 conv=notrunc status=none
"$KEEL" image serve "$snap" --socket "$sock" --overlay "$TEST_DIR/bad-ov" >/dev/null 2>"$TEST_DIR/err" &&
	fail "a damaged overlay was served"
grep -q "not a keel overlay" "$TEST_DIR/err" || fail "no message about the damaged overlay: $(cat "$TEST_DIR/err")"
[ ! -e "$sock" ] || fail "a failed serve left its socket"

# a whole other image written with nbdcopy into a fresh overlay
make_ext4_image "$TEST_DIR/other.img" 32M
serve_start w3 "$snap" --socket "$sock" --overlay "$TEST_DIR/ov2"
expect_success nbdcopy "$TEST_DIR/other.img" "$uri"
expect_success nbdcopy "$uri" "$TEST_DIR/r4.img"
cmp "$TEST_DIR/other.img" "$TEST_DIR/r4.img" || fail "nbdcopy into the export did not read back"
serve_stop w3
# the repository changed only by the backup of the export
[ "$(find "$KEEL_REPOSITORY/snapshots" -type f | wc -l)" = 3 ] || fail "expected three snapshots"
exit 0
