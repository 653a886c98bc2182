#!/usr/bin/env bash
# A snapshot object that cannot be read (issue 13): 'latest' never means an
# older snapshot in its place, every command that resolves 'latest' or an
# id names the damaged one and exits 13, a backup warns and takes the newest
# readable parent; and the damaged object can be removed (repair snapshots
# --forget, forget --unreadable ID), after which prune runs again.
. "$(dirname "$0")/../lib.sh"
require_keel
require_treecmp
# the metadata cache (S3) would serve its intact copy of the snapshot
export KEEL_NO_CACHE=1

# snap_file ID: the repository file (or object) of snapshot ID
snap_file()
{
	repo_files snapshots | grep "/$1\$"
}

# damage ID: one byte inverted in the middle of snapshot ID's object
damage()
{
	local f
	f=$(snap_file "$1")
	[ -n "$f" ] || fail "no object for snapshot $1"
	flip_byte "$f" $(($(file_size "$f") / 2))
}

# restored_text TARGET: the content of f.txt as restored into TARGET
restored_text()
{
	cat "$(restored_root "$1" "$TEST_DIR/src")/f.txt"
}

keel_init
mkdir -p "$TEST_DIR/src"
echo old >"$TEST_DIR/src/f.txt"
expect_success keel backup --json "$TEST_DIR/src" >"$TEST_DIR/b1.json"
S1=$(json_get snapshot_id <"$TEST_DIR/b1.json")
echo new >"$TEST_DIR/src/f.txt"
expect_success keel backup --json "$TEST_DIR/src" >"$TEST_DIR/b2.json"
S2=$(json_get snapshot_id <"$TEST_DIR/b2.json")
[ -n "$S1" ] && [ -n "$S2" ] || fail "backup --json gave no snapshot ids"
cp -a "$KEEL_REPOSITORY" "$TEST_DIR/repo.orig"

# ---- the newest snapshot is damaged: no command takes the older one ------
damage "$S2"
expect_error 13 "${S2:0:16}" keel restore latest --target "$TEST_DIR/r1"
[ ! -e "$(restored_root "$TEST_DIR/r1" "$TEST_DIR/src")/f.txt" ] ||
	fail "restore latest restored the older snapshot in place of the damaged newest"
# a damaged snapshot's host and tags are unknown: a filter cannot rule it out
expect_error 13 "${S2:0:16}" keel restore latest --host no-such-host --target "$TEST_DIR/r2"
expect_error 13 "${S2:0:16}" keel ls latest
expect_error 13 "${S2:0:16}" keel dump latest "$TEST_DIR/src/f.txt"
expect_error 13 "${S2:0:16}" keel diff "$S1" latest
# an id names that snapshot, whole or as a prefix
expect_error 13 "${S2:0:16}" keel ls "$S2"
expect_error 13 "${S2:0:16}" keel restore "${S2:0:8}" --target "$TEST_DIR/r3"
# the older one is still there for who names it
expect_success keel restore "$S1" --target "$TEST_DIR/r4" >/dev/null
[ "$(restored_text "$TEST_DIR/r4")" = old ] || fail "restore of $S1 restored other content"
# a backup still works: it warns and reads against the newest readable parent
expect_success keel backup --json "$TEST_DIR/src" >"$TEST_DIR/b3.json" 2>"$TEST_DIR/err"
cat "$TEST_DIR/err" >&9
grep -q "cannot be read" "$TEST_DIR/err" || fail "backup does not warn about the damaged snapshot"
S3=$(json_get snapshot_id <"$TEST_DIR/b3.json")
# ... but a damaged parent named with --parent fails it
expect_error 13 "${S2:0:16}" keel backup --parent "$S2" "$TEST_DIR/src"
# S2's time is unknown: it may still be newer than S3
expect_error 13 "${S2:0:16}" keel restore latest --target "$TEST_DIR/r5"

cp -a "$KEEL_REPOSITORY" "$TEST_DIR/repo.damaged"

# ---- the way out: prune refuses, repair snapshots --forget removes it ----
expect_error 13 "repair snapshots --forget" keel prune
expect_error 13 "${S2:0:16} cannot be read" keel repair snapshots
[ -n "$(snap_file "$S2")" ] || fail "repair snapshots without --forget removed the snapshot"
expect_error 3 "${S2:0:16} cannot be read: it would be removed" \
	keel repair snapshots --forget --dry-run
[ -n "$(snap_file "$S2")" ] || fail "repair snapshots --dry-run removed the snapshot"
expect_error 3 "${S2:0:16} cannot be read: removed" keel repair snapshots --forget
[ -z "$(snap_file "$S2")" ] || fail "repair snapshots --forget left the unreadable snapshot"
expect_success keel check
expect_success keel prune
expect_success keel restore latest --target "$TEST_DIR/r8" >/dev/null
[ "$(restored_text "$TEST_DIR/r8")" = new ] || fail "restore latest after repair: wrong content"

# ---- ... or forget --unreadable ID -----------------------------------------
export KEEL_REPOSITORY=$TEST_DIR/repo.damaged
expect_error 13 "forget --unreadable" keel forget "$S2"
expect_error 2 "not rules" keel forget --unreadable --keep-last 1
expect_error 13 "${S2:0:16}" keel forget --unreadable latest
expect_success keel forget --unreadable --dry-run "${S2:0:8}" >"$TEST_DIR/out"
grep -q "${S2:0:8}  (cannot be read" "$TEST_DIR/out" || fail "forget --dry-run does not list it"
[ -n "$(snap_file "$S2")" ] || fail "forget --dry-run removed the snapshot"
expect_success keel forget --unreadable --json "$S2" "$S1" >"$TEST_DIR/out"
json_check <"$TEST_DIR/out"
[ -z "$(snap_file "$S2")" ] || fail "forget --unreadable left the unreadable snapshot"
[ -z "$(snap_file "$S1")" ] || fail "forget --unreadable left a readable snapshot it was given"
expect_success keel check
expect_success keel prune
[ "$(snapshot_count)" = 1 ] || fail "forget removed another number of snapshots"

# ---- one snapshot only, and it is damaged: 13 (damaged), not 14 ----------
export KEEL_REPOSITORY=$TEST_DIR/repo-one
keel_init
expect_success keel backup --json "$TEST_DIR/src" >"$TEST_DIR/b-one.json"
damage "$(json_get snapshot_id <"$TEST_DIR/b-one.json")"
expect_exit 13 keel restore latest --target "$TEST_DIR/r6" 2>/dev/null

# ---- an older snapshot is damaged, and a newer one names it as parent ----
export KEEL_REPOSITORY=$TEST_DIR/repo-base
cp -a "$TEST_DIR/repo.orig" "$KEEL_REPOSITORY"
damage "$S1"
expect_success keel restore latest --target "$TEST_DIR/r7" >/dev/null
[ "$(restored_text "$TEST_DIR/r7")" = new ] || fail "restore latest did not restore the newest"
expect_error 13 "${S1:0:16}" keel ls "$S1"

log "ok"
