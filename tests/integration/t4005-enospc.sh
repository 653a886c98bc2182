#!/usr/bin/env bash
# A full disk while writing the repository fails the backup cleanly (exit
# 21, no snapshot), the repository still passes check, and once there is
# room the next backup completes. A full restore target fails with 21 too.
. "$(dirname "$0")/../lib.sh"
require_keel
require_treecmp

[ "$(id -u)" = 0 ] || skip_or_die "needs root to mount a small tmpfs"
SMALL=$TEST_DIR/small
mkdir -p "$SMALL"
mount -t tmpfs -o size=12m tmpfs "$SMALL" 2>/dev/null || skip_or_die "cannot mount a tmpfs here"
umount_small() { umount "$SMALL" 2>/dev/null || true; }
trap 'umount_small; cleanup' EXIT

SRC=$TEST_DIR/src
mkdir -p "$SRC"
for i in 1 2 3; do head -c $((8 << 20)) /dev/urandom >"$SRC/r$i.bin"; done
echo small >"$SRC/note.txt"

export KEEL_REPOSITORY=$SMALL/repo
keel_init
expect_exit 21 keel backup --no-progress "$SRC"
[ "$(snapshot_count)" = 0 ] || fail "a failed backup left a snapshot"
expect_success keel check
# nothing half-written is left behind
if find "$KEEL_REPOSITORY" -name '*.tmp.*' | grep -q .; then
	fail "temporary files left after ENOSPC: $(find "$KEEL_REPOSITORY" -name '*.tmp.*')"
fi

mount -o remount,size=128m "$SMALL"
expect_success keel backup --no-progress "$SRC"
expect_success keel check --read-data
[ "$(snapshot_count)" = 1 ] || fail "expected one snapshot"

# restoring into a target that fills up
TGT=$TEST_DIR/target
mkdir -p "$TGT"
mount -t tmpfs -o size=10m tmpfs "$TGT"
trap 'umount "$TGT" 2>/dev/null || true; umount_small; cleanup' EXIT
expect_exit 21 keel restore latest --target "$TGT"
umount "$TGT"
expect_success keel restore latest --target "$TGT"
expect_success treecmp --ignore-atime "$SRC" "$(restored_root "$TGT" "$SRC")"
