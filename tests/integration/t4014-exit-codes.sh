#!/usr/bin/env bash
# One test per row of docs/EXIT-CODES.md: each documented exit code for its
# main cause, where no other test proves it (the table under "Which test
# proves each code" in docs/EXIT-CODES.md names the others), and the rule
# "exit 13 means the repository really is damaged": a healthy repository
# never gives 13, an I/O error is 20 and not 13, and a 13 is confirmed by
# check --read-data.
. "$(dirname "$0")/../lib.sh"
require_keel

SRC=$TEST_DIR/src
mkdir -p "$SRC/sub"
head -c 200000 /dev/urandom >"$SRC/big.bin"
printf 'one\n' >"$SRC/sub/one.txt"

# case 0: success
keel_init >/dev/null
expect_success keel backup --no-progress "$SRC"

# case 1: cannot create the repository (it exists)
expect_error 1 'exist' keel init --kdf-ops 1 --kdf-mem 8

# case 2: usage error
expect_exit 2 keel backup --no-such-option "$SRC"

# case 4: the work is done, but the command's own lock cannot be deleted:
# every delete fails (src/backend/fault.c), so the retry in
# src/repo/lock.c cannot remove it either; the message names the lock
expect_error 4 'lock is left' env KEEL_TEST_FAULT=1+:eio:del "$KEEL" backup --no-progress "$SRC"
[ -n "$(ls -A "$KEEL_REPOSITORY/locks")" ] || fail "exit 4 but no lock left behind"
[ "$(snapshot_count)" = 2 ] || fail "exit 4 but the backup's snapshot is missing"
expect_success keel unlock
# forget --prune: forget's own lock left behind before prune is said too
# (delete 1 is the forgotten snapshot; prune then fails on its first delete,
# exit 20, and says its own lock is left too)
expect_error 20 'forget is done, but its lock is left' \
	env KEEL_TEST_FAULT=2+:eio:del "$KEEL" forget --keep-last 1 --prune
[ "$(snapshot_count)" = 1 ] || fail "forget --prune with a lock left did not forget"
expect_success keel unlock

# case 5: keel status, a job missed its RPO target (here: no snapshot of
# its paths at all; tests/integration/t6008-daemon.sh: one too old)
cat >"$TEST_DIR/keel.conf" <<EOC
[repository "r"]
location = $KEEL_REPOSITORY
password-file = $KEEL_PASSWORD_FILE
[job "never"]
repository = r
paths = $TEST_DIR/never-backed-up
schedule = hourly
rpo-target = 1h
EOC
mkdir -p "$TEST_DIR/state"
expect_exit 5 keel status --config "$TEST_DIR/keel.conf" --state-dir "$TEST_DIR/state" >/dev/null

# case 10: no repository at that location
expect_exit 10 keel -r "$TEST_DIR/nowhere" snapshots

# case 11: a conflicting live lock (a second prune)
start_paused prune-marked keel prune
expect_error 11 'locked' keel prune
resume prune-marked
wait_paused || fail "the paused prune failed"

# case 12: wrong password, every key file intact
printf 'wrong\n' >"$TEST_DIR/wrong"
expect_exit 12 env KEEL_PASSWORD_FILE="$TEST_DIR/wrong" "$KEEL" snapshots

# case 14: no such snapshot, no such path
expect_exit 14 keel restore 0123456789abcdef --target "$TEST_DIR/r14"
expect_exit 14 keel restore latest:/no/such/path --target "$TEST_DIR/r14"

# case 15: restore --verify reads back data that differs: the file is
# changed after restore wrote it, before it reads it back (the only file)
TGT=$TEST_DIR/r15
start_paused restore-written keel restore "latest:$SRC/sub" --verify --target "$TGT"
f=$(find "$TGT" -type f -name one.txt)
[ -n "$f" ] || fail "the paused restore wrote no one.txt"
printf 'X' | dd of="$f" bs=1 seek=0 conv=notrunc status=none
resume restore-written
rc=0
wait_paused || rc=$?
[ "$rc" = 15 ] || fail "restore --verify of changed data exited $rc, expected 15"

# cases 20 and 21: the storage's I/O error and full disk; the test backend
# names its fault instead of the errno, the system's own errors (strace
# makes every fsync fail; tests/faults/sweep.sh sweeps them) carry its text
expect_error 20 'put of' env KEEL_TEST_FAULT=1+:eio:put "$KEEL" backup --no-progress "$SRC"
expect_error 21 'put of' env KEEL_TEST_FAULT=1+:enospc:put "$KEEL" backup --no-progress "$SRC"
HAVE_STRACE=0
command -v strace >/dev/null && strace -f -qq -o /dev/null true 2>/dev/null && HAVE_STRACE=1
if [ "$HAVE_STRACE" = 1 ]; then
	under_strace
	expect_error 20 'Input/output error' strace -f -qq -o /dev/null \
		-e inject=fsync:error=EIO:when=1+ "$KEEL" backup --no-progress "$SRC"
	expect_error 21 'No space left on device' strace -f -qq -o /dev/null \
		-e inject=fsync:error=ENOSPC:when=1+ "$KEEL" backup --no-progress "$SRC"
	keel unlock >/dev/null
fi
expect_success keel check --read-data

# case 130: interrupted (by the signal itself: keel installs no handler;
# a background job of a script starts with SIGINT ignored, so env resets it)
before=$(snapshot_count)
start_paused before-snapshot env --default-signal=INT "$KEEL" backup --no-progress "$SRC"
kill -INT "$PAUSED_PID"
rc=0
wait_paused || rc=$?
[ "$rc" = 130 ] || fail "an interrupted backup exited $rc, expected 130"
[ "$(snapshot_count)" = "$before" ] || fail "an interrupted backup wrote its snapshot"

# case 13, held: "exit 13 means the repository really is damaged".
# A healthy repository after forget and prune is not damaged...
expect_success keel backup --no-progress "$SRC"
expect_success keel forget --keep-last 1
expect_success keel prune --max-unused 0
expect_success keel check --read-data
# ...an I/O error reading it is 20, not damage (strace fails every read
# of the largest pack)...
p=$(repo_files data | largest)
if [ "$HAVE_STRACE" = 1 ]; then
	expect_error 20 'Input/output error' strace -f -qq -o /dev/null -P "$p" \
		-e inject=pread64,read:error=EIO:when=1+ "$KEEL" restore latest --target "$TEST_DIR/r20"
	# ...and so is one found by check, which never calls it damage
	expect_error 20 'Input/output error' strace -f -qq -o /dev/null -P "$p" \
		-e inject=pread64,read:error=EIO:when=1+ "$KEEL" check --read-data
fi
# ...a key file that is damaged is 13, not a wrong password...
cp -a "$KEEL_REPOSITORY" "$TEST_DIR/keydamage"
k=$(find "$TEST_DIR/keydamage/keys" -type f | head -n 1)
flip_byte "$k" $(($(file_size "$k") / 2))
expect_error 13 'damaged' keel -r "$TEST_DIR/keydamage" snapshots
# ...and damage is 13 for every command that meets it, as check confirms
flip_byte "$p" $(($(file_size "$p") / 2))
expect_exit 13 keel check --read-data
expect_exit 13 keel restore latest --target "$TEST_DIR/r13"
