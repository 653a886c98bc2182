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
chmod 600 "$TEST_DIR/wrong"
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
# Every password failure names its source and the reason: what the user
# gave that cannot serve is a usage error (2), a failing command 1, a
# wrong password 12 (docs/EXIT-CODES.md)
expect_message()
{
	local want=$1 msg=$2 rc=0
	shift 2
	log "+ (expect exit $want, '$msg') $*"
	"$@" </dev/null >/dev/null 2>"$TEST_DIR/err" || rc=$?
	cat "$TEST_DIR/err" >&9
	[ "$rc" = "$want" ] || fail "expected exit $want, got $rc: $*"
	[ "$(cat "$TEST_DIR/err")" = "$msg" ] || fail "stderr is not '$msg': $(cat "$TEST_DIR/err")"
}
P="keel: snapshots: cannot read the password"
: >"$TEST_DIR/empty"
chmod 600 "$TEST_DIR/empty"
expect_message 2 "$P: password file '$TEST_DIR/empty' (--password-file) is empty" \
	keel --password-file "$TEST_DIR/empty" snapshots
expect_message 2 "$P: password file '$TEST_DIR/empty' (KEEL_PASSWORD_FILE) is empty" \
	env KEEL_PASSWORD_FILE="$TEST_DIR/empty" "$KEEL" snapshots
expect_message 2 "$P: password file '$TEST_DIR/no-such-file' (--password-file) does not exist" \
	keel --password-file "$TEST_DIR/no-such-file" snapshots
expect_message 2 "$P: password file '$TEST_DIR/no-such-file' (KEEL_PASSWORD_FILE) does not exist" \
	env KEEL_PASSWORD_FILE="$TEST_DIR/no-such-file" "$KEEL" snapshots
expect_message 1 "$P: the password command (--password-command) failed with exit status 7" \
	env -u KEEL_PASSWORD_FILE "$KEEL" --password-command 'exit 7' snapshots
expect_message 1 "$P: the password command (KEEL_PASSWORD_COMMAND) failed with exit status 3" \
	env -u KEEL_PASSWORD_FILE KEEL_PASSWORD_COMMAND='echo secret; exit 3' "$KEEL" snapshots
expect_message 2 "$P: the password command (--password-command) printed nothing" \
	env -u KEEL_PASSWORD_FILE "$KEEL" --password-command true snapshots
R="keel: snapshots: cannot open repository '$KEEL_REPOSITORY'"
expect_message 12 "$R: no key opens with the password from password file '$TEST_DIR/wrong' (KEEL_PASSWORD_FILE): wrong password or no key found" \
	env KEEL_PASSWORD_FILE="$TEST_DIR/wrong" "$KEEL" snapshots
expect_message 12 "$R: no key opens with the password from KEEL_PASSWORD: wrong password or no key found" \
	env -u KEEL_PASSWORD_FILE KEEL_PASSWORD=nope "$KEEL" snapshots
# no password source and no terminal (setsid: no controlling terminal)
expect_message 2 "$P: no password given: set KEEL_PASSWORD_FILE, KEEL_PASSWORD_COMMAND or KEEL_PASSWORD, give --password-file or --password-command, or run on a terminal" \
	timeout 30 setsid -w env -u KEEL_PASSWORD_FILE "$KEEL" snapshots
expect_message 2 "keel: key: cannot read the new password: no new password given: give --new-password-file, set KEEL_NEW_PASSWORD, or run on a terminal" \
	timeout 30 setsid -w "$KEEL" key add
# at init's prompt (on a terminal: a pty), two passwords that differ
prompt_init()
{
	python3 - "$@" <<'PY'
import os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
out = b""
def until(s):
    global out
    while s not in out:
        try:
            b = os.read(fd, 4096)
        except OSError:
            b = b""
        if not b:
            sys.exit("no '%s' from keel: %r" % (s.decode(), out))
        out += b
for answer in (b"one\n", b"two\n"):
    until(b"password")
    os.write(fd, answer)
    out = out.replace(b"password", b"", 1)
while True:
    try:
        b = os.read(fd, 4096)
    except OSError:
        break
    if not b:
        break
    out += b
_, st = os.waitpid(pid, 0)
sys.stderr.write(out.decode(errors="replace").replace("\r", ""))
sys.exit(os.waitstatus_to_exitcode(st))
PY
}
rc=0
(
	unset KEEL_PASSWORD_FILE
	prompt_init "$KEEL" -r "$TEST_DIR/new" init --kdf-ops 1 --kdf-mem 8
) 2>"$TEST_DIR/err" || rc=$?
[ "$rc" = 2 ] || fail "mismatched passwords at init's prompt gave exit $rc"
grep -q "^keel: init: cannot read the password: the passwords entered at the prompt do not match: nothing was changed, try again$" \
	"$TEST_DIR/err" || fail "mismatched passwords: $(cat "$TEST_DIR/err")"
[ ! -e "$TEST_DIR/new" ] || fail "init with mismatched passwords created something"

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

[ "$(repo_listing)" = "$before" ] || fail "the repository changed"
