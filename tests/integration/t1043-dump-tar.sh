#!/usr/bin/env bash
# keel dump of a directory streams a POSIX tar (issue 14): GNU tar extracts
# it into a tree that treecmp finds equal to the source (names of every
# kind and length, symlinks with long targets, hard links, modes, owners,
# times before 1970 and with nanoseconds, devices as root, xattrs); a
# subdirectory, --target, a file as before, and the errors.
. "$(dirname "$0")/../lib.sh"
require_keel
require_treecmp
command -v tar >/dev/null || skip_or_die "no GNU tar"

src=$TEST_DIR/src
make_awkward_tree "$src"
# GNU tar cannot create paths beyond PATH_MAX (its mkdir fails with
# ENAMETOOLONG, where keel's restore goes by directory descriptors): the
# awkward tree's deepest directories stay out
rm -rf "$src/deep"
# and holes are not kept: a sparse file is written whole (as tar without
# --sparse does), so the 100 MiB of sparse files stay out too
rm -rf "$src/sparse"
# what a tar must carry beyond the awkward tree
mkdir -p "$src/tar"
long=$(printf 'd%.0s' {1..120})
mkdir -p "$src/tar/$long/$long"
echo deep >"$src/tar/$long/$long/$(printf 'f%.0s' {1..200})"
ln -s "$(printf 't%.0s' {1..150})/target" "$src/tar/long-symlink"
echo linked >"$src/tar/h1"
ln "$src/tar/h1" "$src/tar/h2"
echo old >"$src/tar/old"
touch -h -d '1960-05-06 07:08:09.25' "$src/tar/old" 2>/dev/null || true
mkfifo "$src/tar/fifo"
chmod 4751 "$src/tar/h1" 2>/dev/null || true
keel_init
keel backup "$src" >/dev/null 2>"$TEST_DIR/backup.err" || [ $? = 3 ] || fail "backup"

# the whole snapshot, to stdout; GNU tar reads it back
keel dump latest / >"$TEST_DIR/all.tar" || fail "dump /"
mkdir "$TEST_DIR/x"
tar --xattrs --xattrs-include='*' -xpf "$TEST_DIR/all.tar" -C "$TEST_DIR/x" 2>"$TEST_DIR/tar.err" ||
	fail "GNU tar cannot extract: $(head -c 1000 "$TEST_DIR/tar.err")"
# sockets are left out of a tar, as GNU tar does
treecmp --ignore-atime --ignore-sockets "$src" "$TEST_DIR/x$src" >"$TEST_DIR/cmp" 2>&1 ||
	fail "extracted tree differs: $(head -20 "$TEST_DIR/cmp")"
# the listing: paths without a leading '/', directories with a trailing one
tar -tf "$TEST_DIR/all.tar" >"$TEST_DIR/list"
grep -qx "${src#/}/tar/h2" "$TEST_DIR/list" || fail "tar lacks ${src#/}/tar/h2"
grep -qx "${src#/}/tar/" "$TEST_DIR/list" || fail "tar lacks ${src#/}/tar/"
! grep -q '^/' "$TEST_DIR/list" || fail "absolute names in the tar"
tar -tvf "$TEST_DIR/all.tar" >"$TEST_DIR/listv"
grep -q "^h.* ${src#/}/tar/h2 link to ${src#/}/tar/h1\$" "$TEST_DIR/listv" ||
	fail "h2 is not a hard link to h1 in the tar"
[ "$(stat -c %i "$TEST_DIR/x$src/tar/h1")" = "$(stat -c %i "$TEST_DIR/x$src/tar/h2")" ] ||
	fail "extracted h1 and h2 are not one file"

# a subdirectory, with --target; the same bytes as to stdout
keel dump --target "$TEST_DIR/sub.tar" latest "$src/tar" || fail "dump --target"
keel dump --archive tar latest "$src/tar" >"$TEST_DIR/sub2.tar" || fail "dump --archive tar"
cmp "$TEST_DIR/sub.tar" "$TEST_DIR/sub2.tar" || fail "--target and stdout differ"
[ "$(tar -tf "$TEST_DIR/sub.tar" | sed -n 1p)" = "${src#/}/tar/" ] || fail "sub.tar starts elsewhere"
tar -tf "$TEST_DIR/sub.tar" >"$TEST_DIR/sublist"
! grep -qv "^${src#/}/tar/" "$TEST_DIR/sublist" || fail "sub.tar holds more than tar/"
mkdir "$TEST_DIR/y"
tar -xpf "$TEST_DIR/sub.tar" -C "$TEST_DIR/y" || fail "extract sub.tar"
treecmp --ignore-atime "$src/tar" "$TEST_DIR/y$src/tar" >"$TEST_DIR/cmp" 2>&1 ||
	fail "extracted subtree differs: $(head -20 "$TEST_DIR/cmp")"

# a file dumps as before, also with --target
keel dump latest "$src/tar/h1" >"$TEST_DIR/h1" || fail "dump of a file"
cmp "$TEST_DIR/h1" "$src/tar/h1" || fail "dump of a file differs"
keel dump -t "$TEST_DIR/h1b" latest "$src/tar/h1" || fail "dump -t of a file"
cmp "$TEST_DIR/h1b" "$src/tar/h1" || fail "dump -t of a file differs"

expect_error 2 "unknown archive format" keel dump --archive zip latest "$src/tar"
expect_error 2 "not a regular file or a directory" keel dump latest "$src/tar/fifo"
expect_error 14 "" keel dump latest "$src/no-such-dir"
expect_error 1 "cannot create" keel dump --target "$TEST_DIR/no/such/dir/x.tar" latest "$src/tar"
log "ok"
