#!/usr/bin/env bash
# kill -9 a backup at several points: check must pass after each, the next
# backup completes and reuses what was stored, and the restore is exact.
. "$(dirname "$0")/../lib.sh"
require_keel
require_treecmp

SRC=$TEST_DIR/src
mkdir -p "$SRC"
# A few hundred MB (less under ASan, which is slower; and on S3, where the
# one test gateway shares the machine's cores with keel and the other
# tests): random, so nothing deduplicates by accident.
if [ "${KEEL_TEST_BACKEND:-local}" = s3 ]; then
	n_files=4
elif asan_build; then
	n_files=6
else
	n_files=12
fi
for i in $(seq 1 "$n_files"); do
	head -c $((24 << 20)) /dev/urandom >"$SRC/file-$i.bin"
done
TOTAL=$(dir_bytes "$SRC")
log "source: $TOTAL bytes"
keel_init

# kill_at BYTES: starts a backup and kills it with SIGKILL once data/ holds
# BYTES (0: as soon as it runs); returns 1 if the backup finished first.
kill_at()
{
	local want=$1 pid rc=0
	"$KEEL" backup --no-progress "$SRC" >"$TEST_DIR/killed.out" 2>&1 &
	pid=$!
	BG_PIDS+=("$pid")
	if [ "$want" = 0 ]; then
		sleep 0.05
	else
		while kill -0 "$pid" 2>/dev/null && [ "$(dir_bytes "$KEEL_REPOSITORY/data")" -lt "$want" ]; do
			sleep 0.02
		done
	fi
	if kill -9 "$pid" 2>/dev/null; then
		wait "$pid" 2>/dev/null || rc=$?
		log "killed at $(dir_bytes "$KEEL_REPOSITORY/data") bytes of data (exit $rc)"
		return 0
	fi
	wait "$pid" 2>/dev/null || true
	log "the backup finished before reaching $want bytes"
	return 1
}

killed=0
for pct in 0 15 40 70; do
	if kill_at $((TOTAL * pct / 100)); then killed=$((killed + 1)); fi
	# After a crash the repository is consistent (unreferenced packs and
	# temporary files are not errors) and no stale lock blocks anyone.
	expect_success keel check >/dev/null
	expect_success keel snapshots >/dev/null
done
[ "$killed" -ge 2 ] || fail "only $killed of 4 backups could be killed before they finished"
[ "$(snapshot_count)" = 0 ] || log "note: a killed backup left a snapshot (it had finished its commit)"

# complete packs (named by their hash), not the *.tmp.* files of writes
# that were cut short; on S3 every object is complete (a PUT stores it
# whole or not at all)
pack_bytes()
{
	if [ "${KEEL_TEST_BACKEND:-local}" = s3 ]; then
		dir_bytes "$KEEL_REPOSITORY/data"
		return
	fi
	find "$KEEL_REPOSITORY/data" -type f -regextype posix-extended \
		-regex '.*/[0-9a-f]{64}' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'
}

# The next backup completes and reuses the data the killed ones stored
# (docs/FORMAT.md 7: it adopts packs that no index names yet).
stored=$(pack_bytes)
expect_success keel backup --json "$SRC" >"$TEST_DIR/final.json"
added=$(json_get data_added <"$TEST_DIR/final.json")
log "before the final backup data/ held $stored bytes in complete packs" \
	"($(dir_bytes "$KEEL_REPOSITORY/data") with temporary files); it added $added of $TOTAL"
# Killed runs may have stored some data twice, so only half of what is in
# complete packs must be reused.
if [ "$stored" -gt $((TOTAL / 4)) ]; then
	[ $((TOTAL - added)) -ge $((stored / 2)) ] ||
		fail "the final backup reused $((TOTAL - added)) of $TOTAL bytes although $stored were in complete packs"
fi

expect_success keel check --read-data >/dev/null
expect_success keel restore latest --target "$TEST_DIR/restore" >/dev/null
expect_success treecmp --ignore-atime "$SRC" "$(restored_root "$TEST_DIR/restore" "$SRC")"

# A restore killed halfway leaves the repository untouched and can be redone.
# With two threads, each stops at the pause point once it has finished a
# file: when it is killed, at most two of the four or more files are complete.
before=$(repo_listing)
start_paused restore-file-done "$KEEL" restore --threads 2 latest --target "$TEST_DIR/restore2"
complete=$(find "$TEST_DIR/restore2" -type f -size $((24 << 20))c | wc -l)
log "killed the restore with $complete of $n_files files complete"
[ "$complete" -ge 1 ] && [ "$complete" -lt "$n_files" ] ||
	fail "the restore was not halfway: $complete of $n_files files complete"
kill -9 "$PAUSED_PID"
wait_paused 2>/dev/null || true
[ "$(repo_listing)" = "$before" ] || fail "a killed restore changed the repository"
# its lock stays behind; on this host a dead pid makes it stale at once
expect_success keel backup "$SRC" >/dev/null
rm -rf "$TEST_DIR/restore2"
expect_success keel restore latest --target "$TEST_DIR/restore2" >/dev/null
expect_success treecmp --ignore-atime "$SRC" "$(restored_root "$TEST_DIR/restore2" "$SRC")"
