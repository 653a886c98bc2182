#!/usr/bin/env bash
# keel tag (issue 14): --add, --remove, --set on named snapshots and on
# filters; the copy keeps everything but the tags; a tag killed between
# writing the copy and deleting the old snapshot leaves a recognisable
# pair that the next tag finishes; refused (16) on an append-only
# repository.
. "$(dirname "$0")/../lib.sh"
require_keel
has_python || skip_or_die "no python3"

src=$TEST_DIR/src
mkdir -p "$src"
echo one >"$src/f"
keel_init
keel backup --host h1 --tag a "$src" >/dev/null || fail "backup 1"
echo two >"$src/g"
keel backup --host h1 "$src" >/dev/null || fail "backup 2"
keel backup --host h2 "$src" >/dev/null || fail "backup 3"
S1=$(snapshot_ids | sed -n 1p)

# field F of the snapshot with id (or id prefix) ID, from snapshots --json
snap()
{
	keel snapshots --json | python3 -c '
import json, sys
for s in json.load(sys.stdin):
    if s["id"].startswith(sys.argv[1]):
        v = s.get(sys.argv[2])
        print(",".join(v) if isinstance(v, list) else v)' "$1" "$2"
}
tags_of() { snap "$1" tags; }

keel ls "$S1" >"$TEST_DIR/ls-before" || fail "ls"
snap "$S1" time >"$TEST_DIR/time-before"
keel tag --add b,c "$S1" >"$TEST_DIR/out" || fail "tag --add"
N1=$(sed -n 's/^snapshot [0-9a-f]\{8\} is now \([0-9a-f]\{8\}\), tags: a,b,c$/\1/p' "$TEST_DIR/out")
[ -n "$N1" ] || fail "tag --add output: $(cat "$TEST_DIR/out")"
grep -qx "1 snapshot changed, 0 unchanged" "$TEST_DIR/out" || fail "tag summary"
[ "$(snapshot_count)" = 3 ] || fail "tag must replace, not add, a snapshot"
[ -z "$(snap "${S1:0:8}" id)" ] || fail "the old snapshot is still there"
[ "$(tags_of "$N1")" = a,b,c ] || fail "tags after --add: $(tags_of "$N1")"
# everything but the tags (and the id) is as it was
keel ls "$N1" >"$TEST_DIR/ls-after" || fail "ls of the copy"
diff "$TEST_DIR/ls-before" "$TEST_DIR/ls-after" || fail "the copy lists other files"
[ "$(snap "$N1" time)" = "$(cat "$TEST_DIR/time-before")" ] || fail "the copy has another time"
[ "$(snap "$N1" hostname)" = h1 ] || fail "the copy has another host"

keel tag --remove a "$N1" >/dev/null || fail "tag --remove"
N2=$(keel snapshots --tag b,c --json | json_get id)
[ "$(tags_of "$N2")" = b,c ] || fail "tags after --remove a: $(tags_of "$N2")"
[ -n "$N2" ] || fail "no snapshot with tags b,c after --remove a"
keel tag --set x --set y,z "$N2" >/dev/null || fail "tag --set"
[ "$(keel snapshots --tag x,y,z --json | json_get short_id | wc -l)" = 1 ] || fail "--set x y,z"
N3=$(keel snapshots --tag x --json | json_get id)
keel tag --set '' "$N3" >/dev/null || fail "tag --set ''"
[ "$(keel snapshots --json | json_get id | while read -r id; do tags_of "$id"; done | tr -d '\n')" = "" ] ||
	fail "--set '' should leave no tags anywhere"

# filters: every snapshot of h1, then again (nothing left to change)
keel tag --host h1 --add weekly >"$TEST_DIR/out" || fail "tag --host h1"
grep -qx "2 snapshots changed, 0 unchanged" "$TEST_DIR/out" || fail "filter: $(cat "$TEST_DIR/out")"
keel tag --host h1 --add weekly >"$TEST_DIR/out" || fail "tag --host h1 again"
grep -qx "0 snapshots changed, 2 unchanged" "$TEST_DIR/out" || fail "again: $(cat "$TEST_DIR/out")"
[ "$(keel snapshots --tag weekly --json | json_get id | wc -l)" = 2 ] || fail "two weekly"
[ "$(keel snapshots --host h2 --tag weekly --json | json_get id | wc -l)" = 0 ] || fail "h2 tagged"
keel tag --json --tag weekly --add m >"$TEST_DIR/json" || fail "tag --json"
json_check <"$TEST_DIR/json"
[ "$(json_get new <"$TEST_DIR/json" | wc -l)" = 2 ] || fail "--json: two changed"
[ "$(json_get unchanged <"$TEST_DIR/json")" = 0 ] || fail "--json unchanged"

expect_error 2 "nothing to do" keel tag latest
expect_error 2 "cannot be given with" keel tag --set a --add b latest
expect_error 14 "" keel tag --add q ffffffff

# killed between writing the copy and deleting the old snapshot
H2=$(keel snapshots --host h2 --json | json_get id)
start_paused tag-written "$KEEL" tag --add k "$H2"
kill -9 "$PAUSED_PID"
wait_paused || true
[ "$(snapshot_count)" = 4 ] || fail "the copy and the old snapshot should both be there"
[ "$(snap "${H2:0:8}" hostname)" = h2 ] || fail "old snapshot gone"
[ "$(keel snapshots --host h2 --tag k --json | json_get id | wc -l)" = 1 ] || fail "no copy with k"
expect_success keel check >/dev/null
keel tag --host h1 --add z >"$TEST_DIR/out" 2>"$TEST_DIR/err" || fail "tag after the kill"
grep -qx "keel: tag: removed snapshot ${H2:0:8}, left by an interrupted tag: [0-9a-f]\{8\} replaces it" \
	"$TEST_DIR/err" || fail "leftover not finished: $(cat "$TEST_DIR/err")"
[ "$(snapshot_count)" = 3 ] || fail "three snapshots after finishing"
[ "$(keel snapshots --host h2 --json | json_get id | wc -l)" = 1 ] || fail "h2 has one snapshot"
[ "$(keel snapshots --host h2 --tag k --json | json_get id | wc -l)" = 1 ] || fail "h2 has k"

# append-only (keel serve --append-only behind ssh): refused, nothing written
if [ "${KEEL_TEST_BACKEND:-local}" = local ]; then
	cat >"$TEST_DIR/ssh-forced" <<EOS
#!/bin/sh
exec "$KEEL" serve --stdio --append-only "$KEEL_REPOSITORY"
EOS
	chmod +x "$TEST_DIR/ssh-forced"
	ids=$(snapshot_ids)
	KEEL_SSH_COMMAND=$TEST_DIR/ssh-forced KEEL_REMOTE_COMMAND=$KEEL \
		expect_error 16 "append-only" keel -r "ssh://backup-host$KEEL_REPOSITORY" tag --add q latest
	[ "$(snapshot_ids)" = "$ids" ] || fail "an append-only tag changed the snapshots"
fi
log "ok"
