#!/usr/bin/env bash
# Soak: several hosts back up changing trees into one repository while
# forget, prune and check run beside them, as a real installation does.
# check must never exit non-zero on this healthy repository (a monitoring
# system that runs it must never page anyone for nothing), and every
# snapshot that remains must restore exactly the tree it was taken of.
#
# First, deterministically, what made check cry wolf (issue 13 defect 3):
# two hosts store the same new file at once, so two packs hold the same
# blobs; after prune, the new index lists them under one pack only.
#
# KEEL_SOAK_SECONDS (default 30) is how long the hosts run; everything
# stops by itself after that, or on the first failure.
. "$(dirname "$0")/../lib.sh"
require_keel
require_treecmp

SECONDS_TO_RUN=${KEEL_SOAK_SECONDS:-30}
HOSTS=3
keel_init --pack-size 1 --chunk-min 16K --chunk-avg 32K --chunk-max 128K

# ---- two hosts store the same new chunks at once --------------------------

mkdir -p "$TEST_DIR/dupA" "$TEST_DIR/dupB" "$TEST_DIR/pauseA" "$TEST_DIR/pauseB"
# each host's one data pack holds data of its own beside the shared copy,
# so that prune keeps both packs
head -c $((200 << 10)) /dev/urandom >"$TEST_DIR/dupA/same.bin"
cp -p "$TEST_DIR/dupA/same.bin" "$TEST_DIR/dupB/same.bin"
head -c $((300 << 10)) /dev/urandom >"$TEST_DIR/dupA/own.bin"
head -c $((300 << 10)) /dev/urandom >"$TEST_DIR/dupB/own.bin"
pids=()
for h in A B; do
	KEEL_TEST_PAUSE=index-loaded KEEL_TEST_PAUSE_DIR=$TEST_DIR/pause$h \
		"$KEEL" backup --no-progress --host "dup$h" "$TEST_DIR/dup$h" \
		>"$TEST_DIR/dup$h.out" 2>&1 &
	pids+=($!)
	BG_PIDS+=($!)
done
# both read the index before either stored anything: neither finds the other's blobs
for h in A B; do
	for ((i = 0; i < 1200; i++)); do
		[ -e "$TEST_DIR/pause$h/index-loaded.reached" ] && break
		sleep 0.1
	done
	[ -e "$TEST_DIR/pause$h/index-loaded.reached" ] || fail "backup dup$h did not load the index"
done
touch "$TEST_DIR/pauseA/index-loaded.go" "$TEST_DIR/pauseB/index-loaded.go"
for p in "${pids[@]}"; do
	wait "$p" || fail "a backup of the same new file failed: $(cat "$TEST_DIR"/dup?.out)"
done
expect_success keel check >/dev/null
expect_success keel prune --max-unused 100% >/dev/null
# prune's index lists the shared blobs under one pack; the other pack's copies are unused space
expect_success keel check
expect_success keel check --read-data >/dev/null
for h in A B; do
	rm -rf "$TEST_DIR/r"
	expect_success keel restore latest --host "dup$h" --target "$TEST_DIR/r" >/dev/null
	expect_success treecmp --ignore-atime "$TEST_DIR/dup$h" \
		"$(restored_root "$TEST_DIR/r" "$TEST_DIR/dup$h")"
done

# ---- the soak ---------------------------------------------------------------

STOP=$TEST_DIR/stop         # any loop that fails creates it; all loops then end
FAILED=$TEST_DIR/failed     # what failed, one line each
COPIES=$TEST_DIR/copies     # copies/<snapshot id>: the tree that snapshot was taken of
SHARED=$TEST_DIR/shared     # shared/<round>: the same new content for every host
mkdir -p "$COPIES" "$SHARED"
DEADLINE=$((SECONDS + SECONDS_TO_RUN))
LOOP_PIDS=()

# run_bg OUT CMD...: runs CMD in the background and waits for it, so that
# a TERM to this loop reaches CMD too (see stop_loops)
run_bg()
{
	local out=$1 rc=0
	shift
	"$@" >"$out" 2>&1 &
	CHILD=$!
	wait "$CHILD" || rc=$?
	CHILD=
	return "$rc"
}

loop_fail()
{
	printf '%s\n' "$*" >>"$FAILED"
	touch "$STOP"
	exit 1
}

# shared_round N: content every host adds in round N; the first host to get
# there writes it, so hosts backing up at once store the same new chunks
shared_round()
{
	local f=$SHARED/$1 tmp=$SHARED/$1.$BASHPID
	if [ ! -e "$f" ]; then
		head -c $((200 << 10)) /dev/urandom >"$tmp"
		mv -f "$tmp" "$f"
	fi
	printf '%s\n' "$f"
}

host_loop()
{
	local h=$1 src=$TEST_DIR/src/h$1 round=0 id
	CHILD=
	trap '[ -z "$CHILD" ] || kill -TERM "$CHILD" 2>/dev/null; exit 1' TERM
	mkdir -p "$src/keep" "$src/churn"
	head -c $((400 << 10)) /dev/urandom >"$src/keep/big.bin"
	while [ ! -e "$STOP" ] && [ "$SECONDS" -lt "$DEADLINE" ]; do
		round=$((round + 1))
		# change the tree: a new shared file, an edit, a removal, a rename
		cp "$(shared_round "$round")" "$src/churn/shared-$round.bin"
		head -c $((RANDOM * 4)) /dev/urandom >>"$src/keep/big.bin"
		head -c $((RANDOM % 5000)) /dev/urandom >"$src/churn/own-$round.txt"
		rm -f "$src/churn/shared-$((round - 3)).bin"
		[ ! -e "$src/churn/own-$((round - 2)).txt" ] ||
			mv "$src/churn/own-$((round - 2)).txt" "$src/keep/moved-$round.txt"
		run_bg "$TEST_DIR/h$h.out" "$KEEL" backup --no-progress --json --host "host$h" "$src" ||
			loop_fail "host$h round $round: backup exit $?: $(tail -n 5 "$TEST_DIR/h$h.out")"
		id=$(json_get snapshot_id <"$TEST_DIR/h$h.out" | tail -n 1)
		[ -n "$id" ] || loop_fail "host$h round $round: no snapshot id"
		# the tree does not change until the next round: this is what was backed up
		cp -a "$src" "$COPIES/$id.tmp" && mv "$COPIES/$id.tmp" "$COPIES/$id"
	done
}

maint_loop()
{
	local n=0 rc
	CHILD=
	trap '[ -z "$CHILD" ] || kill -TERM "$CHILD" 2>/dev/null; exit 1' TERM
	while [ ! -e "$STOP" ] && [ "$SECONDS" -lt "$DEADLINE" ]; do
		n=$((n + 1))
		run_bg "$TEST_DIR/forget.out" "$KEEL" forget --keep-last 3 ||
			loop_fail "forget $n: exit $?: $(tail -n 5 "$TEST_DIR/forget.out")"
		run_bg "$TEST_DIR/prune.out" "$KEEL" prune --max-unused 10% ||
			loop_fail "prune $n: exit $?: $(tail -n 5 "$TEST_DIR/prune.out")"
		rc=0
		if [ $((n % 3)) = 0 ]; then
			run_bg "$TEST_DIR/check.out" "$KEEL" check --read-data-subset 30% || rc=$?
		else
			run_bg "$TEST_DIR/check.out" "$KEEL" check || rc=$?
		fi
		[ "$rc" = 0 ] || loop_fail "check $n beside the hosts: exit $rc: $(cat "$TEST_DIR/check.out")"
		printf '%s\n' "$n" >"$TEST_DIR/maint.count"
	done
}

# On the way out, failed or not: every loop and the keel it runs ends.
stop_loops()
{
	local p
	touch "$STOP"
	for p in "${LOOP_PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in "${LOOP_PIDS[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	LOOP_PIDS=()
}
soak_exit()
{
	local rc=$?
	set +e
	stop_loops
	(exit "$rc")
	cleanup # lib.sh's, which takes the status from $?
}
trap soak_exit EXIT

log "soak: $HOSTS hosts, forget + prune + check, ${SECONDS_TO_RUN}s"
for h in $(seq 1 $HOSTS); do
	host_loop "$h" &
	LOOP_PIDS+=($!)
done
maint_loop &
LOOP_PIDS+=($!)
rc=0
for p in "${LOOP_PIDS[@]}"; do
	wait "$p" || rc=1
done
LOOP_PIDS=()
[ "$rc" = 0 ] && [ ! -s "$FAILED" ] ||
	fail "soak: $(cat "$FAILED" 2>/dev/null || echo "a loop ended on a failed command")"
[ -s "$TEST_DIR/maint.count" ] || fail "soak: no check completed"
log "soak: $(cat "$TEST_DIR/maint.count") rounds of forget, prune and check beside the hosts"

# ---- afterwards: the repository is clean, and every snapshot is exact -----

expect_success keel prune >/dev/null
expect_success keel check --read-data >/dev/null
n=0
for id in $(snapshot_ids --host host1 --host host2 --host host3); do
	[ -d "$COPIES/$id" ] || fail "snapshot $id: no record of its tree"
	rm -rf "$TEST_DIR/r"
	expect_success keel restore "$id" --target "$TEST_DIR/r" >/dev/null
	src=$(cd "$TEST_DIR/r" && find . -path "*/src/h?" -type d | head -n 1)
	[ -n "$src" ] || fail "snapshot $id: no source directory in the restore"
	expect_success treecmp --ignore-atime "$COPIES/$id" "$TEST_DIR/r/$src"
	n=$((n + 1))
done
[ "$n" -ge "$HOSTS" ] || fail "only $n snapshots of the hosts remain"
log "soak: $n snapshots restore exactly"
