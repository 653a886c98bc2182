#!/usr/bin/env bash
# A wrong password exits 12 from every command and writes nothing to the
# repository; every password source works; no password and no terminal is
# an error, never a hang.
. "$(dirname "$0")/../lib.sh"
require_keel

SRC=$TEST_DIR/src
mkdir -p "$SRC"
printf 'hello\n' >"$SRC/file"
keel_init
expect_success keel backup "$SRC" >/dev/null
before=$(repo_listing)

printf 'not the password\n' >"$TEST_DIR/wrong"
wrong()
{
	KEEL_PASSWORD_FILE=$TEST_DIR/wrong keel "$@" </dev/null
}
expect_exit 12 wrong snapshots
expect_exit 12 wrong backup "$SRC"
expect_exit 12 wrong backup --stdin --stdin-filename x
expect_exit 12 wrong restore latest --target "$TEST_DIR/restore"
expect_exit 12 wrong ls latest
expect_exit 12 wrong dump latest "$SRC/file"
expect_exit 12 wrong check --read-data
expect_exit 12 wrong key list
expect_exit 12 wrong key add --new-password-file "$TEST_DIR/wrong"
expect_exit 12 wrong key passwd --new-password-file "$TEST_DIR/wrong"
expect_exit 12 wrong diff latest latest
expect_exit 12 env -u KEEL_PASSWORD_FILE KEEL_PASSWORD='not the password' "$KEEL" snapshots
expect_exit 12 keel --password-file "$TEST_DIR/wrong" snapshots
expect_exit 12 env -u KEEL_PASSWORD_FILE "$KEEL" --password-command 'echo nope' snapshots
expect_exit 12 env -u KEEL_PASSWORD_FILE KEEL_PASSWORD_COMMAND='echo nope' "$KEEL" snapshots
# an empty password file is refused (as wrong, or as unusable)
: >"$TEST_DIR/empty"
rc=0
keel --password-file "$TEST_DIR/empty" snapshots </dev/null >/dev/null 2>&1 || rc=$?
[ "$rc" = 12 ] || [ "$rc" = 2 ] || fail "an empty password file gave exit $rc"
[ ! -e "$TEST_DIR/restore" ] || [ -z "$(ls -A "$TEST_DIR/restore")" ] ||
	fail "restore with a wrong password wrote files"

after=$(repo_listing)
if [ "$after" != "$before" ]; then
	diff <(printf '%s\n' "$before") <(printf '%s\n' "$after") >&2 || true
	fail "commands with a wrong password changed the repository"
fi

# The right password from each source.
expect_success keel snapshots >/dev/null
expect_success keel --password-file "$KEEL_PASSWORD_FILE" snapshots >/dev/null
expect_success env -u KEEL_PASSWORD_FILE KEEL_PASSWORD="$PASSWORD" "$KEEL" snapshots >/dev/null
expect_success env -u KEEL_PASSWORD_FILE "$KEEL" --password-command "cat '$KEEL_PASSWORD_FILE'" snapshots >/dev/null
expect_success env -u KEEL_PASSWORD_FILE KEEL_PASSWORD_COMMAND="printf '%s' '$PASSWORD'" "$KEEL" snapshots >/dev/null
# a failing password command is an error
rc=0
env -u KEEL_PASSWORD_FILE "$KEEL" --password-command 'exit 7' snapshots </dev/null >/dev/null 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "a failing --password-command was accepted"
# a missing password file is an error, not a prompt
rc=0
keel --password-file "$TEST_DIR/no-such-file" snapshots </dev/null >/dev/null 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "a missing password file was accepted"

# A flag wins over the environment: KEEL_PASSWORD_FILE (exported here, and
# naming the right password) must not win over --password-command, nor the
# other way round; two explicit sources of one level are a usage error (2).
expect_exit 12 keel --password-command 'echo nope' snapshots
expect_success env KEEL_PASSWORD_FILE="$TEST_DIR/wrong" "$KEEL" --password-command "cat '$KEEL_PASSWORD_FILE'" snapshots >/dev/null
expect_success env KEEL_PASSWORD_COMMAND='echo nope' "$KEEL" --password-file "$KEEL_PASSWORD_FILE" snapshots >/dev/null
expect_error 2 "both given" keel --password-file "$KEEL_PASSWORD_FILE" --password-command "cat '$KEEL_PASSWORD_FILE'" snapshots
expect_error 2 "both set" env KEEL_PASSWORD_COMMAND="cat '$KEEL_PASSWORD_FILE'" "$KEEL" snapshots

# A password file that others can read or write is warned about (as ssh
# does for keys), and still used; a private one gets no warning.
cp "$KEEL_PASSWORD_FILE" "$TEST_DIR/shared"
chmod 644 "$TEST_DIR/shared"
expect_error 0 "password file '$TEST_DIR/shared' is readable by others (mode 0644)" \
	keel --password-file "$TEST_DIR/shared" snapshots
chmod 602 "$TEST_DIR/shared"
expect_error 0 "is writable by others (mode 0602)" keel --password-file "$TEST_DIR/shared" snapshots
keel snapshots >/dev/null 2>"$TEST_DIR/err" || fail "keel snapshots failed"
! grep -q "password file" "$TEST_DIR/err" || fail "a private password file was warned about"

# No password source and no terminal: an error well before any timeout.
rc=0
timeout 30 setsid -w env -u KEEL_PASSWORD_FILE "$KEEL" snapshots </dev/null >/dev/null 2>"$TEST_DIR/err" || rc=$?
[ "$rc" != 124 ] || fail "keel waited for a password without a terminal"
[ "$rc" != 0 ] || fail "keel opened the repository without a password"
[ -s "$TEST_DIR/err" ] || fail "no message when no password is available"

[ "$(repo_listing)" = "$before" ] || fail "the repository changed"
