#!/usr/bin/env bash
# keel image serve (docs/IMAGES.md): an ext4 image made by mkfs.ext4 -d,
# backed up, exported read-only over NBD straight from the repository (on
# a Unix socket and on TCP) and read by real clients (nbdcopy, qemu-img
# convert, nbdinfo): the same bytes as the image; holes are reported as
# holes; writes are refused; SIGTERM and SIGINT stop it cleanly (exit 0,
# socket and lock gone); a second image of the snapshot is chosen by name; a
# repository over ssh:// serves the same (and in suite integration-s3 the
# whole test runs against a bucket of a real S3 server).
. "$(dirname "$0")/../lib.sh"
. "$KEEL_SOURCE_ROOT/tests/lib-nbd.sh"
require_keel
require_nbd_tools

keel_init
img=$TEST_DIR/disk.img
make_ext4_image "$img" 48M
head -c 3000000 /dev/urandom >"$TEST_DIR/other.img"
truncate -s 5M "$TEST_DIR/other.img"
keel image backup --chunk-size 256K --json "$img" "$TEST_DIR/other.img" >"$TEST_DIR/b1" ||
	fail "image backup failed"
snap=$(json_get snapshot_id <"$TEST_DIR/b1")
sha_img=$(sha "$img")
size=$(stat -c %s "$img")
sock=$TEST_DIR/s.sock

serve_start ro "$snap:disk.img" --socket "$sock" --json
json_check <"$TEST_DIR/serve-ro.out"
[ "$(json_get uri <"$TEST_DIR/serve-ro.out")" = "$(nbd_uri "$sock")" ] || fail "wrong uri: $(cat "$TEST_DIR/serve-ro.out")"
[ "$(json_get writable <"$TEST_DIR/serve-ro.out")" = false ] || fail "a serve without overlay is writable"
# the password never reaches nbdkit's command line
pgrep -a nbdkit | grep -q "password-fd=" || fail "nbdkit was not given password-fd"
! pgrep -a nbdkit | grep -q -- "$(head -c 20 "$KEEL_PASSWORD_FILE")" || fail "the password is in nbdkit's argv"

expect_success nbdinfo --json "$(nbd_uri "$sock")" >"$TEST_DIR/info"
[ "$(json_get export-size <"$TEST_DIR/info")" = "$size" ] || fail "nbdinfo: wrong size: $(cat "$TEST_DIR/info")"
[ "$(json_get is_read_only <"$TEST_DIR/info")" = true ] || fail "the export is not read-only"
# mkfs left most of the image unallocated: the map shows holes
expect_success nbdinfo --map "$(nbd_uri "$sock")" >"$TEST_DIR/map"
grep -q "hole,zero" "$TEST_DIR/map" || fail "no hole in the export's map: $(cat "$TEST_DIR/map")"

expect_success nbdcopy "$(nbd_uri "$sock")" "$TEST_DIR/copy.img"
[ "$(sha "$TEST_DIR/copy.img")" = "$sha_img" ] || fail "nbdcopy read other bytes than the image"
expect_success qemu-img convert -f raw -O raw "$(nbd_uri "$sock")" "$TEST_DIR/conv.img"
[ "$(sha "$TEST_DIR/conv.img")" = "$sha_img" ] || fail "qemu-img convert read other bytes than the image"
# small reads at odd offsets, across chunk boundaries
for off in 0 262143 1000000 $((size - 5000)); do
	expect_success qemu-io -r -f raw -c "read -v $off 4096" "$(nbd_uri "$sock")" >"$TEST_DIR/io"
	python3 - "$img" "$off" "$TEST_DIR/io" <<'PY' || fail "qemu-io read at $off differs"
import sys, re
img, off, out = sys.argv[1], int(sys.argv[2]), open(sys.argv[3]).read()
want = open(img, 'rb').read()[off:off + 4096]
got = bytes(int(h, 16) for line in out.splitlines() if re.match(r'^[0-9a-f]{8}:', line)
            for h in line[10:58].split())
sys.exit(0 if got == want else 1)
PY
done
# writes are refused by a read-only export
! qemu-io -f raw -c "write -P 0x55 0 4096" "$(nbd_uri "$sock")" >/dev/null 2>&1 ||
	fail "a write to the read-only export succeeded"

# a lock is held while serving, and gone after SIGTERM with the socket
locks()
{
	case $KEEL_REPOSITORY in
	s3:*) s3_files "$KEEL_REPOSITORY/locks" ;;
	*) find "$KEEL_REPOSITORY/locks" -type f ;;
	esac
}
[ -n "$(locks)" ] || fail "no lock while serving"
serve_stop ro
[ ! -e "$sock" ] || fail "the socket was left behind"
[ -z "$(locks)" ] || fail "a lock was left behind"
! pgrep -f "nbdkit.*$sock" >/dev/null || fail "nbdkit still runs"

# TCP, the other image, 'latest' with the image named
# (job control: a background job of a script would ignore SIGINT, which
# stops this one)
port=$((20000 + RANDOM % 20000))
set -m
serve_start tcp latest:other.img --listen "127.0.0.1:$port" --readahead 0
set +m
expect_success nbdcopy "nbd://127.0.0.1:$port" "$TEST_DIR/other.copy"
cmp "$TEST_DIR/other.img" "$TEST_DIR/other.copy" || fail "the second image differs"
serve_stop tcp INT
! pgrep -f "nbdkit.*--port $port" >/dev/null || fail "nbdkit still runs after SIGINT"

# a repository reached over ssh (keel serve at the other end, as in t1042):
# the plugin inside nbdkit opens its own connection
if [ "${KEEL_TEST_BACKEND:-local}" = local ]; then
	cat >"$TEST_DIR/ssh-fake" <<EOS
#!/bin/sh
# (an ASan build's nbdkit wrapper preloads the runtime: not for this keel)
unset LD_PRELOAD
exec "$KEEL" serve --stdio "$KEEL_REPOSITORY"
EOS
	chmod +x "$TEST_DIR/ssh-fake"
	export KEEL_SSH_COMMAND=$TEST_DIR/ssh-fake KEEL_REMOTE_COMMAND=$KEEL
	serve_start ssh -r "ssh://backup-host$KEEL_REPOSITORY" "$snap:disk.img" --socket "$sock"
	expect_success nbdcopy "$(nbd_uri "$sock")" "$TEST_DIR/ssh.img"
	[ "$(sha "$TEST_DIR/ssh.img")" = "$sha_img" ] || fail "served over ssh: other bytes"
	serve_stop ssh
	unset KEEL_SSH_COMMAND KEEL_REMOTE_COMMAND
fi

# errors: two images and none named, an image that is not there (nbdkit
# says so); no address, two addresses (usage)
expect_failure keel image serve "$snap" --socket "$sock"
expect_failure keel image serve "$snap:nope.img" --socket "$sock"
expect_exit 2 keel image serve "$snap:disk.img"
expect_exit 2 keel image serve "$snap:disk.img" --socket "$sock" --listen 1234
exit 0
