#!/usr/bin/env bash
# One test per row of docs/EXIT-CODES.md: each documented exit code for its
# main cause, where no other test proves it (the table under "Which test
# proves each code" in docs/EXIT-CODES.md names the others), and the rule
# "exit 13 means the repository really is damaged": a healthy repository
# never gives 13, an I/O error is 20 and not 13, and a 13 is confirmed by
# check --read-data. Messages are asserted where the case is about saying
# something (a path not in the snapshot, a repository that is a file, what
# an interrupted backup kept, nothing at all for a closed output).
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
# ...nor in a directory that holds anything else (nothing is written there)
mkdir -p "$TEST_DIR/full"
printf 'mine\n' >"$TEST_DIR/full/notes.txt"
expect_error 1 "^keel: init: cannot create repository at '$TEST_DIR/full': the directory is not empty and is not a keel repository (it holds 'notes.txt'): choose a new or empty directory$" \
	keel -r "$TEST_DIR/full" init --kdf-ops 1 --kdf-mem 8
[ "$(ls -A "$TEST_DIR/full")" = notes.txt ] || fail "init wrote into a directory that is not empty"

# case 2: usage error
expect_exit 2 keel backup --no-such-option "$SRC"
# a restore target that is a file; '/' without --force (no terminal to ask)
printf 'f\n' >"$TEST_DIR/afile"
expect_error 2 "is not a directory" keel restore latest --target "$TEST_DIR/afile"
expect_error 2 "give --force" keel restore latest --target /
# a source path that does not exist: found before anything is written
n=$(snapshot_count)
expect_error 2 "source path '$SRC/no-such' does not exist" keel backup "$SRC" "$SRC/no-such"
[ "$(snapshot_count)" = "$n" ] || fail "exit 2 but a snapshot was saved"
[ -z "$(ls -A "$KEEL_REPOSITORY/locks")" ] || fail "exit 2 but a lock was written"

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

# case 10: no repository at that location, nor at a file or below one
expect_exit 10 keel -r "$TEST_DIR/nowhere" snapshots
for f in "$SRC/big.bin" "$SRC/big.bin/sub"; do
	expect_error 10 "^keel: snapshots: cannot open repository '$f': a file (or below one), not a directory: no repository there$" \
		keel -r "$f" snapshots
done

# case 11: a conflicting live lock (a second prune)
start_paused prune-marked keel prune
expect_error 11 'locked' keel prune
resume prune-marked
wait_paused || fail "the paused prune failed"

# case 12: wrong password, every key file intact
printf 'wrong\n' >"$TEST_DIR/wrong"
expect_exit 12 env KEEL_PASSWORD_FILE="$TEST_DIR/wrong" "$KEEL" snapshots

# case 14: no such snapshot, no such path (restore and ls)
expect_exit 14 keel restore 0123456789abcdef --target "$TEST_DIR/r14"
expect_exit 14 keel restore latest:/no/such/path --target "$TEST_DIR/r14"
# and an --include that matches nothing in the snapshot
expect_error 14 "matches the include patterns" keel restore latest --include '/nomatch*' --target "$TEST_DIR/r14"
expect_error 14 "^keel: ls: path '/nonexistent' is not in snapshot [0-9a-f]\{8\}: not found$" \
	keel ls latest /nonexistent
expect_exit 14 keel ls 0123456789abcdef

# under --json, an error is one JSON object on stderr, its code the exit code
expect_exit 14 keel --json ls latest /nonexistent 2>"$TEST_DIR/err"
grep -qx '{"message_type":"error","code":14,"command":"ls","message":"path '"'"'/nonexistent'"'"' is not in snapshot [0-9a-f]\{8\}: not found"}' \
	"$TEST_DIR/err" || fail "a JSON error: $(cat "$TEST_DIR/err")"
expect_exit 10 keel --json -r "$TEST_DIR/nowhere" snapshots 2>"$TEST_DIR/err"
grep -qx '{"message_type":"error","code":10,"command":"snapshots","message":".*"}' \
	"$TEST_DIR/err" || fail "a JSON error: $(cat "$TEST_DIR/err")"

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

# case 141: a reader that goes away (keel ls | head -1) ends keel quietly
# with 141, as SIGPIPE ends cat or ls; more output than a pipe holds (dump
# writes with write(2), ls through stdio)
rcs=$(
	set +o pipefail
	keel dump latest "$SRC/big.bin" 2>"$TEST_DIR/err" | head -c 10 >/dev/null
	echo "${PIPESTATUS[0]}"
)
[ "$rcs" = 141 ] || fail "keel dump | head -c 10 exited $rcs, expected 141"
[ ! -s "$TEST_DIR/err" ] || fail "keel dump | head -c 10 said: $(cat "$TEST_DIR/err")"
mkdir -p "$TEST_DIR/many"
for i in $(seq 1 3000); do : >"$TEST_DIR/many/file-with-a-long-name-$i"; done
expect_success keel backup --no-progress "$TEST_DIR/many" >/dev/null
rcs=$(
	set +o pipefail
	keel ls latest 2>"$TEST_DIR/err" | head -1 >/dev/null
	echo "${PIPESTATUS[0]}"
)
[ "$rcs" = 141 ] || fail "keel ls | head -1 exited $rcs, expected 141"
[ ! -s "$TEST_DIR/err" ] || fail "keel ls | head -1 said: $(cat "$TEST_DIR/err")"

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

# case 22: no database server at that socket (t7001, against a real
# PostgreSQL, has its other causes and case 23)
mkdir -p "$TEST_DIR/no-server"
expect_exit 22 keel db backup "host=$TEST_DIR/no-server port=1 user=postgres"

# case 130: interrupted (a background job of a script starts with SIGINT
# ignored, and keel leaves an ignored signal ignored: env resets it).
# Paused before its snapshot, an interrupted backup saves none...
before=$(snapshot_count)
start_paused before-snapshot env --default-signal=INT "$KEEL" backup --no-progress "$SRC" \
	2>"$TEST_DIR/err130"
kill -INT "$PAUSED_PID"
resume before-snapshot
rc=0
wait_paused || rc=$?
[ "$rc" = 130 ] || fail "an interrupted backup exited $rc, expected 130"
[ "$(snapshot_count)" = "$before" ] || fail "an interrupted backup wrote its snapshot"
grep -qx 'keel: backup: interrupted: lock removed; [0-9]* packs* already written \(is\|are\) kept and reused by the next backup' \
	"$TEST_DIR/err130" || fail "an interrupted backup did not say what it kept: $(cat "$TEST_DIR/err130")"

# ...and midway (paused once a pack is durable, 1 MiB packs), SIGINT and
# SIGTERM alike stop it at once: exit 130, one line saying what was kept,
# no lock, no temporary file, check passes, and the next backup reuses
# the packs written
MAIN_REPO=$KEEL_REPOSITORY
export KEEL_REPOSITORY=$TEST_DIR/repo130
BIG=$TEST_DIR/big
mkdir -p "$BIG"
for i in 1 2 3 4 5 6 7 8; do head -c 700000 /dev/urandom >"$BIG/f$i"; done
keel_init --pack-size 1 >/dev/null
for sig in INT TERM; do
	start_paused pack-written env --default-signal=INT "$KEEL" backup --no-progress "$BIG" \
		2>"$TEST_DIR/err130"
	kill -"$sig" "$PAUSED_PID"
	t0=$(date +%s%N)
	resume pack-written
	rc=0
	wait_paused || rc=$?
	t=$((($(date +%s%N) - t0) / 1000000))
	[ "$rc" = 130 ] || fail "a backup stopped by SIG$sig exited $rc, expected 130"
	[ "$t" -lt 5000 ] || fail "a backup took ${t} ms to stop after SIG$sig"
	[ "$(wc -l <"$TEST_DIR/err130")" = 1 ] || fail "SIG$sig: not one line: $(cat "$TEST_DIR/err130")"
	grep -qx 'keel: backup: interrupted: lock removed; [1-9][0-9]* packs* already written \(is\|are\) kept and reused by the next backup' \
		"$TEST_DIR/err130" || fail "SIG$sig: $(cat "$TEST_DIR/err130")"
	[ -z "$(ls -A "$KEEL_REPOSITORY/locks")" ] || fail "SIG$sig left a lock behind"
	[ -z "$(find "$KEEL_REPOSITORY" -name '*.tmp.*')" ] || fail "SIG$sig left temporary files"
	[ "$(snapshot_count)" = 0 ] || fail "a backup stopped by SIG$sig saved a snapshot"
	expect_success keel check
done
keel --json backup --no-progress "$BIG" >"$TEST_DIR/out130" || fail "the backup after interrupts failed"
added=$(sed -n 's/.*"data_added":\([0-9]*\).*/\1/p' "$TEST_DIR/out130")
[ -n "$added" ] && [ "$added" -lt 5600000 ] ||
	fail "the backup after interrupts added $added bytes: it did not reuse the packs written"
expect_success keel check --read-data
# a second signal does not wait for the clean-up, but still removes the lock
for i in 1 2 3 4; do head -c 700000 /dev/urandom >"$BIG/new$i"; done
start_paused pack-written env --default-signal=INT "$KEEL" backup --no-progress "$BIG" \
	2>"$TEST_DIR/err130"
kill -INT "$PAUSED_PID"
kill -TERM "$PAUSED_PID"
rc=0
wait_paused || rc=$?
[ "$rc" = 130 ] || fail "a backup signalled twice exited $rc, expected 130"
grep -q 'interrupted again: stopped at once; lock removed' "$TEST_DIR/err130" ||
	fail "a second signal: $(cat "$TEST_DIR/err130")"
[ -z "$(ls -A "$KEEL_REPOSITORY/locks")" ] || fail "a second signal left the lock behind"
# a command without a lock ends at once
start_paused index-loaded env --default-signal=INT "$KEEL" ls latest 2>"$TEST_DIR/err130"
kill -INT "$PAUSED_PID"
rc=0
wait_paused || rc=$?
[ "$rc" = 130 ] || fail "an interrupted ls exited $rc, expected 130"
[ "$(cat "$TEST_DIR/err130")" = "keel: ls: interrupted" ] || fail "ls: $(cat "$TEST_DIR/err130")"
export KEEL_REPOSITORY=$MAIN_REPO

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
# ...a mirror of the healthy repository is 0, an I/O error reading it 20,
# and one that meets the damaged key file 13 (keyless: by its hash)
expect_success keel mirror "$KEEL_REPOSITORY" "$TEST_DIR/m0"
if [ "$HAVE_STRACE" = 1 ]; then
	expect_error 20 'Input/output error' strace -f -qq -o /dev/null -P "$p" \
		-e inject=pread64,read:error=EIO:when=1+ "$KEEL" mirror --verify \
		"$KEEL_REPOSITORY" "$TEST_DIR/m20"
fi
expect_error 13 'damaged in the source' keel mirror "$TEST_DIR/keydamage" "$TEST_DIR/m13"
# ...and damage is 13 for every command that meets it, as check confirms
flip_byte "$p" $(($(file_size "$p") / 2))
expect_exit 13 keel check --read-data
expect_exit 13 keel restore latest --target "$TEST_DIR/r13"
