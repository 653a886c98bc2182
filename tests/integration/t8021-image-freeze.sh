#!/usr/bin/env bash
# keel image backup --freeze (docs/IMAGES.md, "Consistency"): an ext4 on a
# loop device, mounted and written to while its device is backed up with
# the file system frozen; the snapshot records "freeze MOUNTPOINT", the
# file system is thawed afterwards (also when the backup fails), and the
# restored image is e2fsck-clean with the files as they were. Needs root,
# loop devices and mount: skipped without them.
. "$(dirname "$0")/../lib.sh"
require_keel
command -v mkfs.ext4 >/dev/null && command -v e2fsck >/dev/null || skip_or_die "e2fsprogs missing"
if [ "$(id -u)" != 0 ] || ! losetup -f >/dev/null 2>&1; then
	log "SKIP: $TEST_NAME: needs root and a free loop device"
	exit 77
fi
MNT=$TEST_DIR/mnt
LOOP=
WRITER=
undo()
{
	local rc=$?
	[ -z "$WRITER" ] || kill "$WRITER" 2>/dev/null || true
	fsfreeze -u "$MNT" 2>/dev/null || true
	umount "$MNT" || true
	[ -z "$LOOP" ] || losetup -d "$LOOP" 2>/dev/null || true
	(exit $rc)
	cleanup
}
trap undo EXIT

keel_init
img=$TEST_DIR/fs.img
truncate -s 160M "$img"
mkdir "$TEST_DIR/files" "$MNT"
seq 1 50000 >"$TEST_DIR/files/numbers"
head -c 2000000 /dev/urandom >"$TEST_DIR/files/random"
mkfs.ext4 -q -F -d "$TEST_DIR/files" "$img" || fail "mkfs.ext4 failed"
LOOP=$(losetup -f --show "$img") || fail "losetup failed"
if ! mount "$LOOP" "$MNT" 2>"$TEST_DIR/mount.err"; then
	log "SKIP: $TEST_NAME: cannot mount here: $(cat "$TEST_DIR/mount.err")"
	exit 77
fi

# a writer that keeps changing the file system during the backup
(i=0; while :; do echo "$i" >"$MNT/counter.$((i % 50))"; i=$((i + 1)); done) &
WRITER=$!
sleep 0.5
keel image backup --chunk-size 256K --freeze "$MNT" --json "$LOOP" >"$TEST_DIR/b.json" ||
	fail "backup with --freeze failed"
snap=$(json_get snapshot_id <"$TEST_DIR/b.json")
# thawed: a write finishes at once
timeout 10 sh -c "echo after >'$MNT/after' && sync -f '$MNT/after'" || fail "the file system stayed frozen"
kill "$WRITER"
wait "$WRITER" 2>/dev/null || true
WRITER=

keel snapshots --json >"$TEST_DIR/s.json" || fail "keel snapshots failed"
python3 - "$TEST_DIR/s.json" "$snap" "freeze $MNT" <<'PY' || fail "consistency not recorded: $(cat "$TEST_DIR/s.json")"
import json, sys
v = json.load(open(sys.argv[1]))
s = [x for x in v if x["id"] == sys.argv[2]][0]
assert s["image"]["consistency"] == sys.argv[3], s["image"]
assert s["image"]["ident"][0].startswith("ext4 uuid="), s["image"]
PY
keel snapshots | grep -qF "consistency: freeze $MNT" || fail "keel snapshots does not show the consistency"

# the frozen state is a clean file system with the files
keel image restore "$snap" "$TEST_DIR/restored.img" >/dev/null || fail "restore failed"
e2fsck -fn "$TEST_DIR/restored.img" >"$TEST_DIR/fsck" 2>&1 || fail "restored image not clean: $(cat "$TEST_DIR/fsck")"
command -v debugfs >/dev/null && {
	debugfs -R "dump /numbers $TEST_DIR/numbers" "$TEST_DIR/restored.img" 2>/dev/null
	cmp -s "$TEST_DIR/numbers" "$TEST_DIR/files/numbers" || fail "a file differs in the restored image"
}

# a failed backup thaws too
expect_error 1 "cannot open" keel image backup --freeze "$MNT" "$TEST_DIR/no-such-device"
timeout 10 sh -c "echo again >'$MNT/again' && sync -f '$MNT/again'" || fail "a failed backup left it frozen"
# a freeze that cannot be done leaves nothing behind
expect_error 2 "cannot freeze" keel image backup --freeze "$TEST_DIR/no-such-dir" "$LOOP"

# interrupted (SIGTERM: a background job ignores SIGINT) while frozen (once: the normal error path; twice: at once):
# thawed either way
head -c 100000000 /dev/urandom >"$MNT/big" && sync
for sigs in 1 2; do
	"$KEEL" image backup --threads 1 --freeze "$MNT" "$LOOP" >/dev/null 2>"$TEST_DIR/int.err" &
	pid=$!
	sleep 0.3
	for _ in $(seq "$sigs"); do kill -TERM "$pid" 2>/dev/null || true; sleep 0.05; done
	rc=0
	wait "$pid" || rc=$?
	[ "$rc" = 130 ] || [ "$rc" = 0 ] || fail "interrupted backup ($sigs signals) exited $rc: $(cat "$TEST_DIR/int.err")"
	[ "$rc" = 130 ] || log "note: the backup ended before the signal"
	timeout 10 sh -c "echo x >'$MNT/after-int' && sync -f '$MNT/after-int'" ||
		fail "an interrupted backup ($sigs signals) left the file system frozen"
done
