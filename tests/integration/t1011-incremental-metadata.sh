#!/usr/bin/env bash
# An incremental backup takes xattrs, ACLs and symlink targets from the
# parent snapshot for entries whose inode and ctime did not change (any
# change to them changes the ctime), once the parent was taken more than
# 2 s after that ctime. What it takes must be exactly what is on disk, and
# every change since must be seen.
. "$(dirname "$0")/../lib.sh"
require_keel
require_treecmp

SRC=$TEST_DIR/src
keel_init
make_awkward_tree "$SRC"
log "awkward tree made; skipped: ${AWKWARD_SKIPPED[*]:-nothing}"

# restore_same TAG: the snapshot tagged TAG restores to the source as it is
restore_same()
{
	local rrc=0
	rm -rf "$TEST_DIR/r-$1"
	expect_exit $rrc keel restore latest --tag "$1" --target "$TEST_DIR/r-$1" >/dev/null
	expect_success treecmp --ignore-atime "$SRC" \
		"$(restored_root "$TEST_DIR/r-$1" "$SRC")"
}

# the first backup reads everything; so does the second for entries whose
# ctime is within 2 s of the first's start, so wait that out
sleep 3
expect_success keel backup --tag one "$SRC" >/dev/null
expect_success keel backup --tag two "$SRC" >/dev/null
restore_same two

# Changes that only the ctime shows: an xattr set, changed and removed, an
# ACL changed, a symlink replaced by one to another target (same name).
if [ -n "${AWKWARD_HAS_XATTR:-}" ]; then
	setfattr -n user.keel.text -v 'changed' "$SRC/files/4k"
	setfattr -x user.keel.dir "$SRC/files"
	setfattr -n user.keel.added -v 'new' "$SRC/files/one-byte"
fi
if [ -n "${AWKWARD_HAS_ACL:-}" ]; then
	setfacl -m u:4321:r "$SRC/acl/file"
	setfacl -k "$SRC/acl/dir"
fi
link=$(find "$SRC" -type l -print -quit)
[ -n "$link" ] || fail "the awkward tree has no symlink"
target=$(readlink "$link")
ln -sfn "$target-elsewhere" "$link"
# keep the mtimes of the directories around it: only ctimes differ now
expect_success keel backup --tag three "$SRC" >/dev/null
restore_same three
# and once more with everything settled
sleep 3
expect_success keel backup --tag four "$SRC" >/dev/null
expect_success keel backup --tag five "$SRC" >/dev/null
restore_same five

# --force reads everything again: the same tree
expect_success keel backup --force --tag six "$SRC" >/dev/null
restore_same six
expect_success keel check >/dev/null
