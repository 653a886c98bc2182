#!/usr/bin/env bash
# Locks: one prune at a time, shared locks beside it, stale locks of dead
# processes ignored and removed by keel unlock, and a process whose lock
# was removed stops before it writes a snapshot.
. "$(dirname "$0")/../lib.sh"
require_keel

SRC=$TEST_DIR/src
mkdir -p "$SRC"
head -c 300000 /dev/urandom >"$SRC/f"
keel_init
expect_success keel backup --no-progress "$SRC" >/dev/null

# lock files, or lock objects below locks/ in the bucket
lock_count()
{
	repo_files locks | wc -l
}
[ "$(lock_count)" = 0 ] || fail "a finished backup left its lock"

# a prune holds its lock: a second prune is refused (exit 11, with who
# holds it), while backups and checks go on beside it
start_paused prune-marked "$KEEL" prune
[ "$(lock_count)" = 1 ] || fail "a running prune holds no lock"
expect_exit 11 keel prune 2>"$TEST_DIR/second.err"
grep -q "locked by prune (pid $PAUSED_PID" "$TEST_DIR/second.err" ||
	fail "the refusal does not say who holds the lock: $(cat "$TEST_DIR/second.err")"
expect_success keel backup --no-progress "$SRC" >/dev/null
expect_success keel check >/dev/null
# live locks are kept by keel unlock
expect_success keel unlock >/dev/null
[ "$(lock_count)" = 1 ] || fail "keel unlock removed a live lock"
resume prune-marked
wait_paused || fail "the first prune failed"
[ "$(lock_count)" = 0 ] || fail "prune left its lock"

# a prune killed with SIGKILL leaves its lock: it is stale at once on this
# host (dead pid), so the next prune runs, and keel unlock removes it
start_paused prune-marked "$KEEL" prune
kill -9 "$PAUSED_PID"
wait "$PAUSED_PID" 2>/dev/null || true
[ "$(lock_count)" = 1 ] || fail "the killed prune left no lock"
expect_success keel prune >/dev/null
expect_success keel unlock --json >"$TEST_DIR/unlock.json"
[ "$(json_get removed <"$TEST_DIR/unlock.json" | tail -n 1)" = 1 ] || fail "unlock did not remove the stale lock"
[ "$(lock_count)" = 0 ] || fail "a stale lock survived keel unlock"

# a backup whose lock is removed (unlock --remove-all) while it runs must
# not write its snapshot: a prune may have counted it as dead
n=$(snapshot_count)
start_paused index-loaded "$KEEL" backup --no-progress "$SRC"
expect_success keel unlock --remove-all >/dev/null
resume index-loaded
rc=0
wait_paused || rc=$?
[ "$rc" = 11 ] || fail "a backup that lost its lock exited $rc, not 11"
[ "$(snapshot_count)" = "$n" ] || fail "a backup that lost its lock wrote a snapshot"
expect_success keel check >/dev/null
