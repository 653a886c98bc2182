#!/usr/bin/env bash
# Scale-out: several hosts back up into one S3 repository at the same time
# and share deduplicated data; a prune and a check run while they do.
# Afterwards every host's snapshots restore exactly, data common to all
# hosts is stored once, and check --read-data passes.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-s3.sh"
require_keel
require_treecmp
s3_setup
s3_new_repo shared
keel_init >/dev/null

HOSTS=6
mkdir -p "$TEST_DIR/common"
head -c 4000000 /dev/urandom >"$TEST_DIR/common/shared.bin"
for h in $(seq 1 $HOSTS); do
	mkdir -p "$TEST_DIR/h$h"
	cp "$TEST_DIR/common/shared.bin" "$TEST_DIR/h$h/"
	head -c 1000000 /dev/urandom >"$TEST_DIR/h$h/own.bin"
done

run_round()
{
	local pids=() h rc=0
	for h in $(seq 1 $HOSTS); do
		"$KEEL" backup --no-progress --host "host$h" "$TEST_DIR/h$h" \
			>"$TEST_DIR/b$h.out" 2>"$TEST_DIR/b$h.err" &
		pids+=($!)
		BG_PIDS+=($!)
	done
	"$KEEL" prune >"$TEST_DIR/prune.out" 2>&1 &
	pids+=($!)
	BG_PIDS+=($!)
	"$KEEL" check >"$TEST_DIR/check.out" 2>&1 &
	pids+=($!)
	BG_PIDS+=($!)
	for h in "${pids[@]}"; do
		wait "$h" || rc=1
	done
	[ "$rc" = 0 ] || fail "a concurrent command failed: $(cat "$TEST_DIR"/b*.err "$TEST_DIR/prune.out" "$TEST_DIR/check.out")"
}

# hosts that start together cannot reuse each other's new data; once one
# has stored the common file, every other host finds it
expect_success keel backup --no-progress --host seed "$TEST_DIR/common" >/dev/null
run_round
# second round: every host changed its own file
for h in $(seq 1 $HOSTS); do
	head -c 500000 /dev/urandom >>"$TEST_DIR/h$h/own.bin"
done
run_round
[ "$(snapshot_count)" = $((HOSTS * 2 + 1)) ] || fail "expected $((HOSTS * 2 + 1)) snapshots, got $(snapshot_count)"

# the common 4 MB went in once, not once per host: the repository holds
# about 4 + 6 * 1.5 MB, well below 6 * 5.5 MB
stored=$(keel prune --dry-run --json | json_get bytes)
log "repository: $stored bytes for $HOSTS hosts"
[ "$stored" -lt $((20 << 20)) ] || fail "shared data was not deduplicated: $stored bytes"

expect_success keel check --read-data >/dev/null
for h in $(seq 1 $HOSTS); do
	rm -rf "$TEST_DIR/r"
	expect_success keel restore latest --host "host$h" --target "$TEST_DIR/r" >/dev/null
	expect_success treecmp --ignore-atime "$TEST_DIR/h$h" "$(restored_root "$TEST_DIR/r" "$TEST_DIR/h$h")"
done
