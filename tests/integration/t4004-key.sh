#!/usr/bin/env bash
# key add / list / passwd / remove: each key opens the repository, a
# changed password replaces the old one, the last key cannot be removed.
. "$(dirname "$0")/../lib.sh"
require_keel

keel_init
mkdir -p "$TEST_DIR/src"
printf 'data\n' >"$TEST_DIR/src/f"
expect_success keel backup "$TEST_DIR/src" >/dev/null

key_ids()
{
	keel key list --json | json_get id
}
[ "$(key_ids | wc -l)" = 1 ] || fail "a new repository has $(key_ids | wc -l) keys"
FIRST=$(key_ids)
keel key list --json | json_check
[ "$(keel key list --json | json_get current)" = true ] || fail "key list does not mark the current key"

P2=$TEST_DIR/pw2
printf 'second password\n' >"$P2"
expect_success keel key add --new-password-file "$P2" >/dev/null
[ "$(key_ids | wc -l)" = 2 ] || fail "key add did not add a key"
SECOND=$(key_ids | grep -vxF "$FIRST")
expect_success keel --password-file "$P2" snapshots >/dev/null
expect_success keel snapshots >/dev/null
expect_success keel --password-file "$P2" restore latest --target "$TEST_DIR/r2" >/dev/null
# the key used is marked current
current_key()
{
	keel key list --json | python3 -c '
import json, sys
print(" ".join(k["id"] for k in json.load(sys.stdin) if k.get("current") is True))'
}
if has_python; then
	[ "$(current_key)" = "$FIRST" ] || fail "key list marks $(current_key) current, not $FIRST"
	[ "$(KEEL_PASSWORD_FILE=$P2 current_key)" = "$SECOND" ] ||
		fail "with the second password, key list does not mark the second key current"
fi

# passwd changes the password of the key in use: the old password stops
# working, the new one works, the other key is untouched.
P3=$TEST_DIR/pw3
printf 'third password\n' >"$P3"
expect_success keel key passwd --new-password-file "$P3" >/dev/null
expect_exit 12 keel snapshots
expect_success keel --password-file "$P3" snapshots >/dev/null
expect_success keel --password-file "$P2" snapshots >/dev/null
[ "$(KEEL_PASSWORD_FILE=$P3 key_ids | wc -l)" = 2 ] || fail "key passwd changed the number of keys"
export KEEL_PASSWORD_FILE=$P3
THIRD=$(key_ids | grep -vxF "$SECOND")

# remove the second key: its password stops working
expect_success keel key remove "${SECOND:0:8}" >/dev/null
expect_exit 12 keel --password-file "$P2" snapshots
[ "$(key_ids | wc -l)" = 1 ] || fail "key remove did not remove the key"
[ "$(key_ids)" = "$THIRD" ] || fail "the wrong key was removed"

# the last key: refused (2, docs/EXIT-CODES.md), and still there
expect_exit 2 keel key remove "${THIRD:0:8}"
[ "$(key_ids)" = "$THIRD" ] || fail "the last key was removed"
expect_success keel snapshots >/dev/null
# removing a key that does not exist: not found
expect_exit 14 keel key remove ffffffffffff

# a password given by environment opens the key whose file ends in a newline
expect_success env -u KEEL_PASSWORD_FILE KEEL_PASSWORD='third password' "$KEEL" snapshots >/dev/null
expect_success keel check --read-data >/dev/null
