#!/usr/bin/env bash
# Storage fault sweeps, as SQLite tests its pager: backup (first and
# incremental), forget, prune and repair run with a fault at operation N of
# the repository's backend, for N = 1, 2, ... until a run has no Nth
# operation (src/backend/fault.c: KEEL_TEST_FAULT=N:KIND, and
# KEEL_TEST_FAULT_REPORT names the file a fault that fires writes to).
# Each time the command must fail cleanly with the documented exit code of
# the fault (docs/EXIT-CODES.md; 0 only where the fault is one keel may
# tolerate, see expected()), check --read-data must pass afterwards, a
# plain rerun must succeed, and the latest snapshot must restore exactly.
# SWEEP_ALL=1 (by hand) sweeps every position and reports every finding
# instead of stopping at the first; see next_position() for the default.
# Hundreds of short runs, each with its fsyncs: on a tmpfs when there is one.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then export TMPDIR=/dev/shm; fi
. "$(dirname "$0")/../lib.sh"
require_keel
require_treecmp

# ---- the states the sweeps start from --------------------------------------

SRC=$TEST_DIR/src
mkdir -p "$SRC/sub"
head -c 300000 /dev/urandom >"$SRC/big.bin"
head -c 70000 /dev/urandom >"$SRC/sub/mid.bin"
printf 'one\n' >"$SRC/sub/one.txt"
ln -s sub/one.txt "$SRC/link"

STATES=$TEST_DIR/states
mkdir -p "$STATES"
save_state() { cp -a "$KEEL_REPOSITORY" "$STATES/$1"; }

keel_init >/dev/null
save_state empty
expect_success keel backup --no-progress "$SRC" >/dev/null
save_state one
# what only the first snapshot holds: something for prune to free
rm "$SRC/sub/mid.bin"
head -c 50000 /dev/urandom >"$SRC/new.bin"
printf 'two\n' >>"$SRC/sub/one.txt"
expect_success keel backup --no-progress "$SRC" >/dev/null
expect_success keel backup --no-progress --tag again "$SRC" >/dev/null
save_state three
expect_success keel forget --keep-last 1 >/dev/null
save_state forgotten
expect_success keel prune --max-unused 0 >/dev/null
save_state pruned-once

# ---- one sweep -------------------------------------------------------------

# expected CMD KIND OP TYPE: the exit statuses allowed (docs/EXIT-CODES.md)
# of CMD after a KIND fault in OP of an object of TYPE; 0 among them only
# where keel does not need the operation to succeed
expected()
{
	local cmd=$1 kind=$2 op=$3 type=$4
	case $cmd:$kind:$op:$type in
	# releasing a lock: a lock left behind is stale once the process is
	# gone, and no command waits for it
	*:del:locks) echo 0 20 ;;
	# the check before a snapshot is written that the lock is still there:
	# only "not found" proves it lost (src/repo/lock.c kl_lock_check)
	*:stat:locks) echo 0 20 ;;
	# another process's lock that cannot be read holds nothing back
	*-read:get:locks) echo 0 ;;
	# a key file that does not open is "wrong password" (nothing written)
	*-read:get:keys) echo 12 ;;
	# an index file that does not open is left out and counted; its packs
	# are indexed again from their headers (src/repo/index.c)
	*-read:get:index) echo 0 13 ;;
	# the parent snapshot and its trees only save work: without them
	# backup reads every file afresh (src/ops/backup.c)
	backup:*-read:get:snapshots | backup:*:get:data) echo 0 13 20 ;;
	# repair index leaves a pack whose header does not open out (exit 3)
	repair:*-read:get:data) echo 0 3 ;;
	# repair snapshots passes over a snapshot file it cannot open, and says
	# nothing (exit 0): there is nothing in it to salvage, but a report
	# (and exit 3) might be kinder; check names it
	repair:*-read:get:snapshots) echo 0 ;;
	# prune reads whole packs to repack them; damage in a blob it does not
	# keep does not matter
	prune:*-read:get:data) echo 0 13 ;;
	esac
	case $kind in
	eio | torn-write | lost-ack) echo 20 ;;
	enospc) echo 21 ;;
	short-read | bitflip-read) echo 13 ;;
	esac
}

# positions of a sweep: every one with SWEEP_ALL=1; else the first eight
# (opening the repository, its locks) and then every third, starting at
# an offset that changes from sweep to sweep, so that the sweeps together
# still reach every residue: all positions would take several minutes
# (hundreds of runs of four keel processes), a third keeps the test near
# a minute. KEEL_SWEEP_STRIDE=N takes every Nth instead (the ASan stage of
# scripts/test.sh thins it out: there the sweep looks for memory errors on
# error paths, which every sampled path shows as well). The offset also
# moves from day to day (KEEL_SWEEP_OFFSET, default the day of the year),
# so that each sweep reaches every position over STRIDE days of runs; the
# log names it, and KEEL_SWEEP_OFFSET=N repeats a run.
SWEEP_NO=0
SWEEP_OFFSET=${KEEL_SWEEP_OFFSET:-$((10#$(date -u +%j)))}
log "sweep offset $SWEEP_OFFSET (KEEL_SWEEP_OFFSET), stride ${KEEL_SWEEP_STRIDE:-3}"
next_position()
{
	local n=$1 stride=${KEEL_SWEEP_STRIDE:-3}
	[ "${SWEEP_ALL:-0}" = 1 ] && stride=1
	if [ "$n" -lt 8 ] || [ "$stride" = 1 ]; then
		echo $((n + 1))
		return
	fi
	n=$((n + 1))
	while [ $(((n + SWEEP_NO + SWEEP_OFFSET) % stride)) != 0 ]; do n=$((n + 1)); done
	echo "$n"
}

RUNS=0 BAD=0
# UNCHANGED: faulty runs that left the repository as it was, after the
# sweep's first such run with their exit status (run_at); UNCHANGED_SEEN:
# "SWEEP:STATUS" of those first runs
UNCHANGED=0 UNCHANGED_SEEN=
# bad MSG: fails the test; with SWEEP_ALL=1 (by hand, to see every finding
# at once) logs MSG and goes on with the next position instead
bad()
{
	[ "${SWEEP_ALL:-0}" = 1 ] || fail "$*"
	log "BAD: $*"
	BAD=$((BAD + 1))
}

# run_at N STATE KIND CMD...: one faulty run and what must follow it;
# returns 1 when the fault did not fire (past the last operation)
run_at()
{
	local n=$1 state=$2 kind=$3 rc line allowed
	local rep=$TEST_DIR/fault-report err=$TEST_DIR/fault-err
	shift 3
	rm -rf "$KEEL_REPOSITORY" "$TEST_DIR/restored"
	cp -a "$STATES/$state" "$KEEL_REPOSITORY"
	rm -f "$rep"
	rc=0
	KEEL_TEST_FAULT=$n:$kind KEEL_TEST_FAULT_REPORT=$rep keel "$@" >/dev/null 2>"$err" || rc=$?
	RUNS=$((RUNS + 1))
	if [ ! -s "$rep" ]; then
		# past the last operation: the command ran as without faults
		[ "$rc" = 0 ] || bad "$* from $state exited $rc with no fault: $(cat "$err")"
		return 1
	fi
	line=$(head -n 1 "$rep")
	# shellcheck disable=SC2086
	allowed=" $(expected "$1" $(echo "$line" | cut -d' ' -f3-5) | tr '\n' ' ')"
	if [[ $allowed != *" $rc "* ]]; then
		bad "$* from $state, $line: exit $rc, expected one of$allowed: $(cat "$err")"
		return 0
	fi
	# A run that failed before it changed anything (most read faults, and
	# every fault before the lock is taken) leaves the repository byte for
	# byte as the state was: what follows (check, the rerun, the restore)
	# is then the same test as at the sweep's first such position with the
	# same exit status, run on the same bytes, so it runs there only.
	if diff -r -q "$STATES/$state" "$KEEL_REPOSITORY" >/dev/null 2>&1; then
		if [[ " $UNCHANGED_SEEN " == *" $SWEEP_NO:$rc "* ]]; then
			UNCHANGED=$((UNCHANGED + 1))
			return 0
		fi
		UNCHANGED_SEEN+=" $SWEEP_NO:$rc"
	fi
	# Exit 3: repair took what it misread for damage and left it out, as
	# documented; check may then rightly find an intact pack in no index
	# (repair index), and the plain rerun puts it back: check after that.
	if [ "$rc" != 3 ] && ! keel check --read-data >"$TEST_DIR/check-out" 2>&1; then
		bad "check fails after $* from $state, $line (exit $rc): $(cat "$TEST_DIR/check-out")"
		return 0
	fi
	if ! keel "$@" >/dev/null 2>"$err"; then
		bad "rerun of $* from $state after $line fails: $(cat "$err")"
		return 0
	fi
	if [ "$rc" = 3 ] && ! keel check --read-data >"$TEST_DIR/check-out" 2>&1; then
		bad "check fails after $* from $state, $line (exit 3), and a rerun: $(cat "$TEST_DIR/check-out")"
		return 0
	fi
	# what the other commands leave check --read-data has verified; a
	# backup's snapshot must also be the source tree
	[ "$1" = backup ] || return 0
	if ! keel restore latest --target "$TEST_DIR/restored" >/dev/null 2>"$err"; then
		bad "restore after $* from $state, $line fails: $(cat "$err")"
	elif ! treecmp --ignore-atime "$SRC" "$(restored_root "$TEST_DIR/restored" "$SRC")"; then
		bad "the restore differs after $* from $state, $line"
	fi
	return 0
}

# sweep STATE KIND CMD...: the fault sweep of CMD from repository STATE
sweep()
{
	local state=$1 kind=$2 n=1 runs=0
	shift 2
	SWEEP_NO=$((SWEEP_NO + 1))
	while run_at "$n" "$state" "$kind" "$@"; do
		runs=$((runs + 1))
		n=$(next_position "$n")
	done
	log "$state: keel $*: $kind at $runs of $((n - 1)) operations"
}

for kind in eio enospc torn-write lost-ack short-read bitflip-read; do
	sweep empty "$kind" backup --no-progress "$SRC"
	sweep one "$kind" backup --no-progress "$SRC"
	sweep three "$kind" forget --keep-last 1
	sweep forgotten "$kind" prune --max-unused 0
	sweep pruned-once "$kind" prune --max-unused 0
	sweep three "$kind" repair index
	sweep three "$kind" repair snapshots --read-data
done
# repack_sweep KIND OPS EXIT WHAT: prune's repacking at every position,
# not a third (issue 13 defect 7: an I/O error there was reported as
# damage): each run whose error says WHAT must exit EXIT, never 13, and
# leave a repository check passes; at least one run must reach it
repack_sweep()
{
	local kind=$1 ops=$2 want=$3 what=$4 n=1 rc hits=0
	local rep=$TEST_DIR/fault-report err=$TEST_DIR/fault-err
	while :; do
		rm -rf "$KEEL_REPOSITORY"
		cp -a "$STATES/forgotten" "$KEEL_REPOSITORY"
		rm -f "$rep"
		rc=0
		KEEL_TEST_FAULT=$n:$kind:$ops KEEL_TEST_FAULT_REPORT=$rep \
			keel prune --max-unused 0 >/dev/null 2>"$err" || rc=$?
		[ -s "$rep" ] || break
		RUNS=$((RUNS + 1))
		if grep -q "$what" "$err"; then
			hits=$((hits + 1))
			[ "$rc" = "$want" ] ||
				bad "prune, $(head -n 1 "$rep"): exit $rc, expected $want: $(cat "$err")"
			keel check --read-data >"$TEST_DIR/check-out" 2>&1 ||
				bad "check fails after prune, $(head -n 1 "$rep"): $(cat "$TEST_DIR/check-out")"
		fi
		n=$((n + 1))
	done
	[ "$hits" -gt 0 ] || bad "no $kind fault of prune's repacking said '$what'"
	log "prune's repacking: $kind in $hits of $((n - 1)) $ops operations"
}
repack_sweep eio get 20 "cannot repack pack"
repack_sweep enospc put 21 "cannot write pack"

log "$RUNS faulty runs; $UNCHANGED more left the repository as it was (their check, rerun and restore ran once per sweep)"
[ "$BAD" = 0 ] || fail "$BAD findings (above)"
