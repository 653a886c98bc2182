#!/usr/bin/env bash
# A full disk while writing the repository fails the backup cleanly (exit
# 21, no snapshot), the repository still passes check, and once there is
# room the next backup completes. A full restore target fails with 21 too.
# On S3 the full disk is a bucket quota (Ceph RGW answers 403 QuotaExceeded).
. "$(dirname "$0")/../lib.sh"
require_keel
require_treecmp

SRC=$TEST_DIR/src
mkdir -p "$SRC"
for i in 1 2 3; do head -c $((8 << 20)) /dev/urandom >"$SRC/r$i.bin"; done
echo small >"$SRC/note.txt"

umount_small() { :; }
if [ "${KEEL_TEST_BACKEND:-local}" = s3 ]; then
	# packs of 4 MiB: a few fit before the bucket is full, as on the tmpfs
	keel_init --pack-size 4
	s3_bucket_quota $((12 << 20))
else
	[ "$(id -u)" = 0 ] || skip_or_die "needs root to mount a small tmpfs"
	SMALL=$TEST_DIR/small
	mkdir -p "$SMALL"
	mount -t tmpfs -o size=12m tmpfs "$SMALL" 2>/dev/null || skip_or_die "cannot mount a tmpfs here"
	umount_small() { umount "$SMALL" 2>/dev/null || true; }
	trap 'umount_small; cleanup' EXIT
	export KEEL_REPOSITORY=$SMALL/repo
	keel_init
fi

rc=0
keel backup --no-progress "$SRC" 2>"$TEST_DIR/full.err" || rc=$?
cat "$TEST_DIR/full.err" >&2
[ "$rc" = 21 ] || fail "a backup into a full repository exited $rc, expected 21"
grep -qi -e 'no space' -e 'full' "$TEST_DIR/full.err" || fail "the message does not say the storage is full"
if grep -q -e AWS_ACCESS_KEY_ID -e 'access denied' "$TEST_DIR/full.err"; then
	fail "a full bucket is blamed on the credentials"
fi
[ "$(snapshot_count)" = 0 ] || fail "a failed backup left a snapshot"
expect_success keel check
if [ "${KEEL_TEST_BACKEND:-local}" = s3 ]; then
	# what was stored before the quota struck
	[ "$(dir_bytes "$KEEL_REPOSITORY/data")" -gt 0 ] || fail "no pack was stored before the quota struck"
	s3_bucket_quota $((128 << 20))
else
	# nothing half-written is left behind
	if find "$KEEL_REPOSITORY" -name '*.tmp.*' | grep -q .; then
		fail "temporary files left after ENOSPC: $(find "$KEEL_REPOSITORY" -name '*.tmp.*')"
	fi
	mount -o remount,size=128m "$SMALL"
fi

expect_success keel backup --no-progress "$SRC"
expect_success keel check --read-data
[ "$(snapshot_count)" = 1 ] || fail "expected one snapshot"

# restoring into a target that fills up
[ "$(id -u)" = 0 ] || skip_or_die "needs root to mount a small tmpfs as restore target"
TGT=$TEST_DIR/target
mkdir -p "$TGT"
mount -t tmpfs -o size=10m tmpfs "$TGT" || skip_or_die "cannot mount a tmpfs here"
trap 'umount "$TGT" 2>/dev/null || true; umount_small; cleanup' EXIT
expect_exit 21 keel restore latest --target "$TGT"
umount "$TGT"
expect_success keel restore latest --target "$TGT"
expect_success treecmp --ignore-atime "$SRC" "$(restored_root "$TGT" "$SRC")"
