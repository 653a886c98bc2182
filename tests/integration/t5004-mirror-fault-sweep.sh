#!/usr/bin/env bash
# keel mirror under storage faults (src/backend/fault.c, docs/TESTING.md):
# each KIND at a few positions of an incremental mirror with a deletion
# to make. Every run exits 0 (a glitch of a read is read again), 20 or 21,
# never 13 (no damage was there) nor 1; DEST passes check --read-data
# after it; a plain rerun completes and DEST holds SOURCE's objects.
. "$(dirname "$0")/../lib.sh"
require_keel

SRC=$TEST_DIR/src
BASE=$TEST_DIR/base
DEST=$TEST_DIR/dest
mkdir -p "$SRC"

keel_init >/dev/null
head -c 100000 /dev/urandom >"$SRC/a.bin"
expect_success keel backup --no-progress "$SRC"
head -c 100000 /dev/urandom >"$SRC/b.bin"
expect_success keel backup --no-progress "$SRC"
expect_success keel mirror --no-progress "$KEEL_REPOSITORY" "$BASE"
# SOURCE moves on: a new snapshot to copy, one forgotten to delete (0s)
head -c 100000 /dev/urandom >"$SRC/c.bin"
expect_success keel backup --no-progress "$SRC"
expect_success keel forget --keep-last 2 >/dev/null
want=$(repo_objects "$KEEL_REPOSITORY")

fired=0
for spec in eio enospc:put short-read:get bitflip-read:get torn-write:put lost-ack; do
	for n in 1 3 5; do
		kind=${spec%%:*}
		ops=${spec#"$kind"}
		rm -rf "$DEST"
		cp -a "$BASE" "$DEST"
		rm -f "$TEST_DIR/fired"
		rc=0
		KEEL_TEST_FAULT=$n:$kind$ops KEEL_TEST_FAULT_REPORT=$TEST_DIR/fired \
			"$KEEL" mirror --no-progress --verify --delete-after 0s \
			"$KEEL_REPOSITORY" "$DEST" >"$TEST_DIR/out" 2>"$TEST_DIR/err" || rc=$?
		what="$n:$kind$ops ($(cat "$TEST_DIR/fired" 2>/dev/null || echo 'did not fire'))"
		[ -s "$TEST_DIR/fired" ] && fired=$((fired + 1))
		log "fault $what: exit $rc"
		case $rc in
		0 | 20 | 21) ;;
		*) fail "exit $rc after fault $what: $(cat "$TEST_DIR/err")" ;;
		esac
		case $kind:$rc in short-read:0 | bitflip-read:0 | eio:* | lost-ack:* | enospc:* | torn-write:*) ;;
		*) fail "exit $rc after read glitch $what: $(cat "$TEST_DIR/err")" ;;
		esac
		"$KEEL" -r "$DEST" check --read-data >/dev/null 2>"$TEST_DIR/err" ||
			fail "DEST damaged after fault $what: $(cat "$TEST_DIR/err")"
		"$KEEL" mirror --no-progress --delete-after 0s "$KEEL_REPOSITORY" "$DEST" \
			>/dev/null 2>"$TEST_DIR/err" || fail "rerun after fault $what failed: $(cat "$TEST_DIR/err")"
		[ "$(repo_objects "$DEST")" = "$want" ] || fail "DEST differs from SOURCE after fault $what"
	done
done
[ "$fired" -ge 15 ] || fail "only $fired of the 18 faults fired"
