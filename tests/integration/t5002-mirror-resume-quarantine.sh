#!/usr/bin/env bash
# keel mirror (docs/MIRROR.md): a run killed (-9) before the snapshots or
# failed by a storage fault leaves DEST valid, and the next run sends only
# what is missing; forget+prune in SOURCE reach DEST only after the
# quarantine (--delete-after), which --status shows with what is pending;
# and a mirror to ssh:// (keel serve) and back.
. "$(dirname "$0")/../lib.sh"
require_keel

SRC=$TEST_DIR/src
DEST=$TEST_DIR/dest
mkdir -p "$SRC"
head -c 200000 /dev/urandom >"$SRC/a.bin"

count() { find "$1" -type f ! -name '*.tmp.*' | wc -l; }
dest_snapshots() { KEEL_REPOSITORY=$DEST snapshot_count; }

keel_init >/dev/null
expect_success keel backup --no-progress "$SRC"
mirror_json "$KEEL_REPOSITORY" "$DEST"

# killed between the index files and the snapshots: DEST is valid (check
# passes), holds the new packs and index files, not the new snapshot
head -c 150000 /dev/urandom >"$SRC/b.bin"
expect_success keel backup --no-progress "$SRC"
# --status, keyless: the snapshot is pending; local listings carry no
# times, so the lag is a bound (since the last complete run's listing)
expect_success env -u KEEL_PASSWORD_FILE "$KEEL" mirror --status --json "$KEEL_REPOSITORY" "$DEST" >"$TEST_DIR/summary"
json_check <"$TEST_DIR/summary"
[ "$(summary_get objects | sed -n 2p)" = 1 ] || fail "--status does not show the pending snapshot"
[ "$(summary_get lag_exact)" = false ] || fail "a local lag cannot be exact"
[ "$(summary_get lag_seconds)" -ge 0 ] || fail "no lag while a snapshot is pending"
start_paused mirror-before-snapshots "$KEEL" mirror "$KEEL_REPOSITORY" "$DEST"
kill -9 "$PAUSED_PID"
wait "$PAUSED_PID" 2>/dev/null || true
[ "$(dest_snapshots)" = 1 ] || fail "a killed run copied the snapshot"
[ "$(count "$DEST/index")" = "$(count "$KEEL_REPOSITORY/index")" ] || fail "index files not copied"
expect_success keel -r "$DEST" check --read-data
mirror_json "$KEEL_REPOSITORY" "$DEST"
[ "$(summary_get copied)" = 1 ] || fail "the resumed run copied $(summary_get copied) objects, not the snapshot alone"
[ "$(dest_snapshots)" = 2 ] || fail "the resumed run did not copy the snapshot"

# killed after its first object: resumed without sending it again
head -c 150000 /dev/urandom >"$SRC/c.bin"
expect_success keel backup --no-progress "$SRC"
new=$(comm -23 <(repo_objects "$KEEL_REPOSITORY" | cut -c67-) <(repo_objects "$DEST" | cut -c67-) | wc -l)
start_paused mirror-object "$KEEL" mirror --connections 1 "$KEEL_REPOSITORY" "$DEST"
kill -9 "$PAUSED_PID"
wait "$PAUSED_PID" 2>/dev/null || true
expect_success keel -r "$DEST" check --read-data
mirror_json "$KEEL_REPOSITORY" "$DEST"
[ "$(summary_get copied)" = $((new - 1)) ] || fail "resumed run copied $(summary_get copied), not $((new - 1))"

# temporary files of killed writes in DEST: an old one goes, a fresh one stays
old=$DEST/data/00/$(printf '0%.0s' {1..64}).tmp.aaaaaa
fresh=$DEST/index/$(printf '1%.0s' {1..64}).tmp.bbbbbb
mkdir -p "$DEST/data/00"
echo partial >"$old"
echo partial >"$fresh"
touch -d '2 hours ago' "$old"
mirror_json "$KEEL_REPOSITORY" "$DEST"
[ "$(summary_get tmp_removed)" = 1 ] || fail "removed $(summary_get tmp_removed) temporary files, not 1"
[ ! -e "$old" ] && [ -e "$fresh" ] || fail "the wrong temporary file was removed"
rm "$fresh"

# a storage fault on the second write: exit 20, DEST valid, a rerun completes
head -c 150000 /dev/urandom >"$SRC/d.bin"
expect_success keel backup --no-progress "$SRC"
expect_error 20 "injected fault" env KEEL_TEST_FAULT=2:eio:put "$KEEL" mirror "$KEEL_REPOSITORY" "$DEST"
expect_success keel -r "$DEST" check --read-data
mirror_json "$KEEL_REPOSITORY" "$DEST"
[ "$(summary_get complete)" = true ] || fail "the rerun after a fault is not complete"
[ "$(repo_objects "$KEEL_REPOSITORY")" = "$(repo_objects "$DEST")" ] || fail "DEST differs after the rerun"

# forget+prune in SOURCE: DEST keeps everything for the quarantine
expect_success keel forget --keep-last 1 --prune >/dev/null
gone=$(comm -13 <(repo_objects "$KEEL_REPOSITORY" | cut -c67-) <(repo_objects "$DEST" | cut -c67-) | wc -l)
[ "$gone" -ge 4 ] || fail "prune removed only $gone objects"
mirror_json "$KEEL_REPOSITORY" "$DEST"
[ "$(summary_get quarantined)" = "$gone" ] || fail "quarantined $(summary_get quarantined), not $gone"
[ "$(summary_get deleted)" = 0 ] || fail "deleted before the quarantine ended"
[ "$(dest_snapshots)" = 4 ] || fail "DEST lost snapshots to the quarantine"
expect_success keel -r "$DEST" check --read-data
expect_success keel mirror --status --json "$KEEL_REPOSITORY" "$DEST" >"$TEST_DIR/summary"
[ "$(summary_get quarantined)" = "$gone" ] || fail "--status shows $(summary_get quarantined) in quarantine"
mirror_json --delete-after never "$KEEL_REPOSITORY" "$DEST"
[ "$(summary_get deleted)" = 0 ] || fail "--delete-after never deleted"
# the quarantine is over: DEST is SOURCE again, snapshots first
mirror_json --delete-after 0s "$KEEL_REPOSITORY" "$DEST"
[ "$(summary_get deleted)" = "$gone" ] || fail "deleted $(summary_get deleted), not $gone"
[ "$(repo_objects "$KEEL_REPOSITORY")" = "$(repo_objects "$DEST")" ] || fail "DEST differs after deletion"
[ "$(dest_snapshots)" = 1 ] || fail "DEST kept forgotten snapshots"
expect_success keel -r "$DEST" check --read-data

# over ssh:// (keel serve behind a stand-in for ssh): there and back, keyless
cat >"$TEST_DIR/ssh" <<EOS
#!/bin/sh
while [ \$# -gt 1 ]; do shift; done
exec sh -c "\$1"
EOS
chmod +x "$TEST_DIR/ssh"
export KEEL_REMOTE_COMMAND=$KEEL KEEL_SSH_COMMAND=$TEST_DIR/ssh
REMOTE=ssh://backup-host$TEST_DIR/remote
expect_success env -u KEEL_PASSWORD_FILE "$KEEL" mirror --no-progress "$KEEL_REPOSITORY" "$REMOTE"
expect_success env -u KEEL_PASSWORD_FILE "$KEEL" mirror --no-progress --verify "$REMOTE" "$TEST_DIR/back"
[ "$(repo_objects "$KEEL_REPOSITORY")" = "$(repo_objects "$TEST_DIR/back")" ] || fail "the ssh:// round trip differs"
expect_success keel -r "$REMOTE" check --read-data
