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
expect_message 2 "$P: password file '$TEST_DIR' (--password-file) is a directory" \
	keel --password-file "$TEST_DIR" snapshots
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
# On a terminal (a pty; PTY_ANSWERS: what to type at each prompt, "^C" for
# Ctrl-C), stderr gets what the terminal showed and whether echo is on at
# the end
cat >"$TEST_DIR/ptydrive.py" <<'PY'
import fcntl, os, select, sys, termios
fd, slave = os.openpty()
pid = os.fork()
if pid == 0:
    os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for i in range(3):
        os.dup2(slave, i)
    os.close(fd)
    os.execv(sys.argv[1], sys.argv[1:])
# the slave stays open here: a pty's settings reset when its last user goes
out = b""
def read_some(timeout):
    global out
    if select.select([fd], [], [], timeout)[0]:
        out += os.read(fd, 4096)
def until(s):
    while s not in out:
        if os.waitpid(pid, os.WNOHANG)[0]:
            sys.exit("no '%s' from keel: %r" % (s.decode(), out))
        read_some(0.1)
for answer in os.environ["PTY_ANSWERS"].split("|"):
    until(b"password")
    out = out.replace(b"password", b"", 1)
    os.write(fd, b"\x03" if answer == "^C" else answer.encode() + b"\n")
while True:
    done, st = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    read_some(0.1)
while select.select([fd], [], [], 0)[0]:
    out += os.read(fd, 4096)
echo = termios.tcgetattr(slave)[3] & termios.ECHO
sys.stderr.write(out.decode(errors="replace").replace("\r", "").replace("\033[K", ""))
sys.stderr.write("echo %s\n" % ("on" if echo else "off"))
sys.exit(os.waitstatus_to_exitcode(st))
PY
on_tty()
{
	local rc=0
	PTY_ANSWERS=$1 env -u KEEL_PASSWORD_FILE python3 "$TEST_DIR/ptydrive.py" "${@:2}" \
		2>"$TEST_DIR/err" || rc=$?
	cat "$TEST_DIR/err" >&9
	return "$rc"
}
# two passwords that differ at init's prompt
rc=0
on_tty 'one|two' "$KEEL" -r "$TEST_DIR/new" init --kdf-ops 1 --kdf-mem 8 || rc=$?
[ "$rc" = 2 ] || fail "mismatched passwords at init's prompt gave exit $rc"
grep -q "^keel: init: cannot read the password: the passwords entered at the prompt do not match: nothing was changed, try again$" \
	"$TEST_DIR/err" || fail "mismatched passwords: $(cat "$TEST_DIR/err")"
[ ! -e "$TEST_DIR/new" ] || fail "init with mismatched passwords created something"
# Ctrl-C at the prompt ends keel at once (130), with echo back on
rc=0
on_tty '^C' "$KEEL" backup "$SRC" || rc=$?
[ "$rc" = 130 ] || fail "Ctrl-C at the password prompt gave exit $rc"
grep -q "^keel: backup: interrupted$" "$TEST_DIR/err" || fail "Ctrl-C at the prompt: $(cat "$TEST_DIR/err")"
[ "$(tail -n 1 "$TEST_DIR/err")" = "echo on" ] || fail "Ctrl-C at the password prompt left echo off"

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
