#!/usr/bin/env bash
# Two backups store the same new blob, each in its own pack and index file,
# after prune loaded the index and before it listed the packs. Marking
# reads their index files back; the in-memory index keeps one copy, so the
# other pack looks unused and is condemned. The index file naming it must
# be superseded in the same run, or check and restore find an index that
# names a deleted pack (t6007's soak found it once in a few runs; this is
# the same interleaving, made exact with pause points).
. "$(dirname "$0")/../lib.sh"
require_keel
require_treecmp

SRC=$TEST_DIR/src
keel_init --pack-size 1 --chunk-min 64K --chunk-avg 128K --chunk-max 512K
mkdir -p "$SRC"
head -c $((300 << 10)) /dev/urandom >"$SRC/base"
expect_success keel backup --no-progress "$SRC" >/dev/null

# pause NAME DIR CMD...: runs CMD in the background, stopped at the point
# NAME until DIR/NAME.go exists; sets PID
pause()
{
	local name=$1 dir=$2 i
	shift 2
	mkdir -p "$dir"
	KEEL_TEST_PAUSE=$name KEEL_TEST_PAUSE_DIR=$dir "$@" >"$dir.out" 2>&1 &
	PID=$!
	BG_PIDS+=("$PID")
	for ((i = 0; i < 1200; i++)); do
		[ -e "$dir/$name.reached" ] && return 0
		kill -0 "$PID" 2>/dev/null || fail "$* ended before reaching $name: $(cat "$dir.out")"
		sleep 0.1
	done
	fail "$* did not reach $name"
}

round()
{
	local n=$1 pa pb pp
	head -c $((200 << 10)) /dev/urandom >"$SRC/new$n"
	pause index-loaded "$TEST_DIR/p$n" keel prune --json
	pp=$PID
	# both backups read the index before either stored the new file
	pause index-loaded "$TEST_DIR/a$n" keel backup --no-progress --host a "$SRC"
	pa=$PID
	pause index-loaded "$TEST_DIR/b$n" keel backup --no-progress --host b "$SRC"
	pb=$PID
	touch "$TEST_DIR/a$n/index-loaded.go" "$TEST_DIR/b$n/index-loaded.go"
	wait "$pa" || fail "backup a failed: $(cat "$TEST_DIR/a$n.out")"
	wait "$pb" || fail "backup b failed: $(cat "$TEST_DIR/b$n.out")"
	touch "$TEST_DIR/p$n/index-loaded.go"
	wait "$pp" || fail "prune failed: $(cat "$TEST_DIR/p$n.out")"
	log "prune: $(cat "$TEST_DIR/p$n.out")"
	expect_success keel check --read-data >/dev/null
	for h in a b; do
		rm -rf "$TEST_DIR/r"
		expect_success keel restore latest --host "$h" --target "$TEST_DIR/r" >/dev/null
		expect_success treecmp --ignore-atime "$SRC" "$(restored_root "$TEST_DIR/r" "$SRC")"
	done
}

round 1
# the duplicate pack must have gone in the same run, not left for later
[ "$(json_get packs_deleted <"$TEST_DIR/p1.out")" -ge 1 ] ||
	fail "prune deleted no pack: the duplicate copy was not condemned"
round 2

# A backup whose first pack prune listed and whose later packs and index
# file came after: that index file cannot be superseded (prune does not
# know all its packs), so every pack it names stays.
head -c $((3 << 20)) /dev/urandom >"$SRC/big"
pause pack-written "$TEST_DIR/a3" keel backup --no-progress --host a "$SRC"
pa=$PID
pause prune-listed "$TEST_DIR/p3" keel prune --json
pp=$PID
touch "$TEST_DIR/a3/pack-written.go"
wait "$pa" || fail "backup a failed: $(cat "$TEST_DIR/a3.out")"
touch "$TEST_DIR/p3/prune-listed.go"
wait "$pp" || fail "prune failed: $(cat "$TEST_DIR/p3.out")"
expect_success keel check --read-data >/dev/null
rm -rf "$TEST_DIR/r"
expect_success keel restore latest --host a --target "$TEST_DIR/r" >/dev/null
expect_success treecmp --ignore-atime "$SRC" "$(restored_root "$TEST_DIR/r" "$SRC")"
expect_success keel prune >/dev/null
expect_success keel check --read-data >/dev/null
