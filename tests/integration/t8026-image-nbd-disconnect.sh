#!/usr/bin/env bash
# keel image backup of an NBD export keeps several reads in flight
# (docs/IMAGES.md). When the server goes away in the middle (nbdkit killed
# by its own read of the second half), or answers one read with an error,
# the backup fails with an error naming the source, saves no snapshot, and
# the repository still checks; the same export without the fault backs up
# and restores byte for byte.
. "$(dirname "$0")/../lib.sh"
. "$KEEL_SOURCE_ROOT/tests/lib-nbd.sh"
require_keel
# nbdkit itself: under ASan, require_nbd_tools puts a wrapper first in PATH
# that preloads the sanitizer's runtime, which the eval scripts' shell and
# dd would inherit (and fail with); keel's plugin is not used here
NBDKIT=$(command -v nbdkit || true)
require_nbd_tools
"$NBDKIT" eval --dump-plugin >/dev/null 2>&1 || skip_or_die "nbdkit's eval plugin is missing"

keel_init
K=262144
img=$TEST_DIR/disk.img
head -c $((64 * K)) /dev/urandom >"$img" # 64 chunks of 256 KiB
sock=$TEST_DIR/s.sock
pidf=$TEST_DIR/nbdkit.pid

# serve FAULT: nbdkit serving $img through shell scripts, parallel; FAULT
# runs first in each read of the second half (offset $4, count $3)
serve()
{
	rm -f "$sock" "$pidf"
	"$NBDKIT" -f -U "$sock" -P "$pidf" eval \
		thread_model='echo parallel' \
		get_size="echo $(stat -c %s "$img")" \
		pread="if [ \$4 -ge $((32 * K)) ]; then $1; fi
dd if='$img' iflag=skip_bytes,count_bytes skip=\$4 count=\$3 status=none" &
	NBDKIT_PID=$!
	BG_PIDS+=("$NBDKIT_PID")
	for _ in $(seq 1 100); do [ -S "$sock" ] && [ -s "$pidf" ] && return 0; sleep 0.1; done
	fail "nbdkit did not start"
}
unserve()
{
	kill "$NBDKIT_PID" 2>/dev/null || true
	wait "$NBDKIT_PID" 2>/dev/null || true
}

# no_snapshot NAME: backup NAME failed cleanly, nothing saved
no_snapshot()
{
	grep -q "cannot read 'nbd+unix://" "$TEST_DIR/$1.err" || fail "$1: $(cat "$TEST_DIR/$1.err")"
	grep -q "no snapshot was saved" "$TEST_DIR/$1.err" || fail "$1: $(cat "$TEST_DIR/$1.err")"
	keel snapshots --json >"$TEST_DIR/snaps" || fail "keel snapshots failed"
	[ "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$TEST_DIR/snaps")" = 0 ] ||
		fail "$1 left a snapshot: $(cat "$TEST_DIR/snaps")"
	expect_success keel check
}

# the server killed (SIGKILL: no reply, no NBD_CMD_DISC) by its first read
# of the second half, while other reads are in flight
serve "kill -9 \$(cat '$pidf'); sleep 5"
expect_failure keel image backup --chunk-size 256K "$(nbd_uri "$sock")" 2>"$TEST_DIR/kill.err"
unserve
no_snapshot kill
# lost, not refused: the reads before the fault were answered
! grep -q "Input/output error" "$TEST_DIR/kill.err" || fail "kill: $(cat "$TEST_DIR/kill.err")"

# an error reply (EIO) to the reads of the second half
serve "echo 'EIO injected' >&2; exit 1"
expect_failure keel image backup --chunk-size 256K "$(nbd_uri "$sock")" 2>"$TEST_DIR/eio.err"
unserve
no_snapshot eio
grep -q "offset $((32 * K))" "$TEST_DIR/eio.err" || fail "eio: not the first failed offset: $(cat "$TEST_DIR/eio.err")"

# without the fault: the export is backed up and restores to its bytes
serve ":"
keel image backup --chunk-size 256K --json "$(nbd_uri "$sock")" >"$TEST_DIR/ok" || fail "backup failed"
unserve
[ "$(json_get bytes_read <"$TEST_DIR/ok")" = $((64 * K)) ] || fail "read: $(cat "$TEST_DIR/ok")"
expect_success keel image restore -q "$(json_get snapshot_id <"$TEST_DIR/ok")" "$TEST_DIR/out.img"
cmp "$img" "$TEST_DIR/out.img" || fail "the restored image differs"
exit 0
