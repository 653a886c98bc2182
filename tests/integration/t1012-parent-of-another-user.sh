#!/usr/bin/env bash
# A parent snapshot taken by another user saw other xattrs: trusted.* ones
# only root can list, and user.* ones only who may read the file. So a
# backup takes xattrs from its parent only if the parent was taken by the
# same user; else root's second backup would lose what nobody's first could
# not see.
. "$(dirname "$0")/../lib.sh"
require_keel

[ "$(id -u)" = 0 ] || skip_or_die "needs root (trusted.* xattrs, setpriv)"
command -v setpriv >/dev/null || skip_or_die "no setpriv"
SRC=$TEST_DIR/src
mkdir -p "$SRC"
printf 'data\n' >"$SRC/file"
setfattr -n trusted.keel.root -v 'root only' "$SRC/file" 2>/dev/null ||
	skip_or_die "no trusted.* xattrs here"
setfattr -n user.keel.all -v 'everyone' "$SRC/file" 2>/dev/null ||
	skip_or_die "no user.* xattrs here"
keel_init

# nobody reaches the repository, the sources and a password of its own
NOBODY=$TEST_DIR/nobody
mkdir -p "$NOBODY/home"
cp "$KEEL_PASSWORD_FILE" "$NOBODY/password"
chown -R 65534:65534 "$NOBODY"
chmod 755 "$TEST_DIR"
chmod -R a+rwX "$KEEL_REPOSITORY"
chmod -R a+rX "$SRC"

# the ctime must be older than the parent's start by 2 s to be taken over
sleep 3
expect_success setpriv --reuid=65534 --regid=65534 --clear-groups \
	env HOME="$NOBODY/home" XDG_CACHE_HOME="$NOBODY/home/.cache" \
	KEEL_PASSWORD_FILE="$NOBODY/password" "$KEEL" backup --tag nobody "$SRC" >/dev/null
expect_success keel backup --tag root "$SRC" >/dev/null

expect_success keel restore latest --tag root --target "$TEST_DIR/r" >/dev/null
got=$(restored_root "$TEST_DIR/r" "$SRC")/file
[ "$(getfattr --only-values -n trusted.keel.root "$got" 2>/dev/null)" = 'root only' ] ||
	fail "root's backup lost trusted.keel.root (taken from nobody's parent)"
[ "$(getfattr --only-values -n user.keel.all "$got" 2>/dev/null)" = 'everyone' ] ||
	fail "root's backup lost user.keel.all"
