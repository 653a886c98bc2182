#!/usr/bin/env bash
# A restore that cannot restore everything as recorded says so and exits 3
# (issue 13.12): as an ordinary user, owners, devices, trusted xattrs and
# the setuid bit of another user's program are omitted (a socket is not);
# each is warned about and the summary counts them, also with --verify.
. "$(dirname "$0")/../lib.sh"
require_keel
[ "$(id -u)" = 0 ] || skip_or_die "needs root to make the tree (owners, devices) and drop to nobody"
command -v setpriv >/dev/null || skip_or_die "needs setpriv to drop root"
has_python || skip_or_die "needs python3 to make a socket"
chmod 0755 "$TEST_DIR"
setpriv --reuid=65534 --regid=65534 --clear-groups -- test -x "$KEEL" ||
	skip_or_die "nobody cannot run $KEEL"

SRC=$TEST_DIR/src
mkdir -p "$SRC"
printf 'mine\n' >"$SRC/owned"
chown 1234:1234 "$SRC/owned"
printf '#!/bin/sh\n' >"$SRC/prog"
chown 1234:1234 "$SRC/prog"
chmod 04755 "$SRC/prog"
mknod "$SRC/null" c 1 3
python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$SRC/sock"
XATTR=0
if command -v setfattr >/dev/null && setfattr -n trusted.keel -v 1 "$SRC/owned" 2>/dev/null; then
	XATTR=1
fi
keel_init
expect_success keel backup "$SRC" >/dev/null
# nobody reads the repository and takes its lock there
chown -R 65534:65534 "$KEEL_REPOSITORY" "$KEEL_PASSWORD_FILE"
mkdir "$TEST_DIR/r" "$TEST_DIR/rv"
chown 65534:65534 "$TEST_DIR/r" "$TEST_DIR/rv"

expect_error 3 "restored with omissions" as_nobody "$KEEL" restore latest --target "$TEST_DIR/r"
grep -q "owner not restored" "$TEST_DIR/err" || fail "no warning that owners are not restored"
grep -q "prog'*: setuid/setgid bit not restored" "$TEST_DIR/err" || fail "no warning about prog's setuid bit"
[ -S "$(restored_root "$TEST_DIR/r" "$SRC")/sock" ] || fail "the socket is not restored"
grep -q "null'*: device not restored" "$TEST_DIR/err" || fail "no warning about the device"
[ "$XATTR" = 0 ] || grep -q "extended attribute not restored" "$TEST_DIR/err" ||
	fail "no warning about the trusted xattr"
grep -q "not restored as recorded: owners of" "$TEST_DIR/out" || fail "the summary does not say what was omitted"
R=$(restored_root "$TEST_DIR/r" "$SRC")
[ "$(stat -c %a "$R/prog")" = 755 ] || fail "prog kept its setuid bit, now owned by nobody"
cmp "$SRC/owned" "$R/owned" || fail "owned differs"

# --verify finds no difference, but does not hide the omissions
expect_error 3 "restored with omissions" as_nobody "$KEEL" restore latest --verify --json --target "$TEST_DIR/rv"
[ "$(json_get specials_omitted <"$TEST_DIR/out")" = 1 ] || fail "--json does not count the device"
[ "$(json_get setid_cleared <"$TEST_DIR/out")" = 1 ] || fail "--json does not count the setuid bit cleared"

# root restores everything as recorded: owners, the device, the setuid bit, the socket
expect_success keel restore latest --target "$TEST_DIR/root"
R=$(restored_root "$TEST_DIR/root" "$SRC")
expect_success treecmp --ignore-atime "$SRC" "$R"
[ "$(stat -c %a:%u "$R/prog")" = 4755:1234 ] || fail "root: prog lost its setuid bit or owner"
# root with --no-owner: a root-owned setuid program of someone else's must not appear
expect_error 3 "setuid/setgid bit not restored" keel restore latest --no-owner --target "$TEST_DIR/root2"
R=$(restored_root "$TEST_DIR/root2" "$SRC")
[ "$(stat -c %a "$R/prog")" = 755 ] || fail "--no-owner: prog kept its setuid bit, now owned by root"
