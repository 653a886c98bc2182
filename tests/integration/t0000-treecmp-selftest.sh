#!/usr/bin/env bash
# treecmp, the oracle of every restore test, must find twin awkward trees
# equal and must catch each kind of difference. Needs no keel.
. "$(dirname "$0")/../lib.sh"
require_treecmp

A=$TEST_DIR/a
B=$TEST_DIR/b
OUT=$TEST_DIR/treecmp.out

make_awkward_tree "$A"

twin()
{
	chmod -R u+rwx "$B" 2>/dev/null || true
	rm -rf "$B"
	make_awkward_tree "$B" 2>/dev/null
}

# expect_diff [TREECMP OPTIONS]: treecmp A B must exit 1
expect_diff()
{
	local rc=0
	treecmp "$@" "$A" "$B" 2>"$OUT" || rc=$?
	[ "$rc" = 1 ] || { cat "$OUT" >&2; fail "treecmp $* exited $rc, expected 1"; }
}

# expect_line TEXT: a line of the last output contains TEXT
expect_line()
{
	grep -qF -- "$1" "$OUT" || { cat "$OUT" >&2; fail "treecmp did not report: $1"; }
}

# in_deep CMD...: runs CMD in the deepest directory of $B/deep
in_deep()
{
	local -a CMD=("$@")
	(
		cd "$B/deep" || exit 1
		while set -- level-*; [ -d "$1" ]; do cd "$1" || exit 1; done
		exec "${CMD[@]}"
	)
}

# ---- equal trees --------------------------------------------------------
# Reading a directory or a symlink moves its atime (relatime), so only the
# first comparison of untouched twins can include atimes; later ones pass
# --ignore-atime.
twin
expect_success treecmp "$A" "$B"
log "awkward tree: $(find "$A" | wc -l) entries, skipped: ${AWKWARD_SKIPPED[*]:-nothing}"
expect_success treecmp --ignore-atime "$A" "$A"
expect_success treecmp --ignore-atime "$B" "$A"
expect_success treecmp --ignore-atime --ignore-ctime "$A" "$B"
# Twins were made at different moments, so their ctimes differ.
rc=0
treecmp --ignore-atime --check-ctime "$A" "$B" 2>"$OUT" || rc=$?
[ "$rc" = 1 ] || fail "--check-ctime found no difference between twins"
expect_line ": ctime differs"

# ---- usage ----------------------------------------------------------------
expect_exit 2 treecmp "$A"
expect_exit 2 treecmp "$A" "$TEST_DIR/does-not-exist"
expect_exit 2 treecmp --no-such-option "$A" "$B"
expect_success treecmp --help >/dev/null

# ---- one altered twin, every kind of difference at once --------------------
T='2020-02-29 12:34:56.987654321'
# content, same size and time
printf 'Z' | dd of="$B/files/random-3m" bs=1 seek=1000000 conv=notrunc status=none
touch -d "$T" "$B/files/random-3m"
# size
printf '!' >>"$B/files/text"
# permission bits, setuid, sticky on a directory
chmod 0755 "$B/modes/m0751"
chmod u-s "$B/modes/setuid"
chmod -t "$B/modes/sticky-dir"
# mtime off by one nanosecond; a symlink's own mtime
touch -d '2001-02-03 04:05:06.123456788' "$B/files/4k"
touch -h -d '2010-10-10 10:10:10.101010102' "$B/links/relative"
# symlink target
rm "$B/links/dangling"
ln -s does/not/exist2 "$B/links/dangling"
# type
rm "$B/special/fifo"
: >"$B/special/fifo"
# a missing name and an extra one, with bytes that must be escaped
rm "$B/names/"$'new\nline'
: >"$B/names/"$'extra\x01'
mv "$B/names/"$'dir\nwith newline'/$'\xff' "$B/names/"$'dir\nwith newline'/$'\xfe'
# hard links: break the triple in B, join two separate files in B
cp -p "$B/hard/b/triple" "$B/hard/b/triple.tmp"
mv "$B/hard/b/triple.tmp" "$B/hard/b/triple"
ln -f "$B/files/random-3m-copy" "$B/files/random-3m-copy.tmp"
rm "$B/files/random-3m-copy"
ln -f "$B/many/f1" "$B/files/random-3m-copy"
rm "$B/files/random-3m-copy.tmp"
# sparseness: a sparse file made dense, a dense one made sparse
cp --sparse=never -p "$B/sparse/all-hole" "$B/sparse/all-hole.tmp"
mv "$B/sparse/all-hole.tmp" "$B/sparse/all-hole"
fallocate -d "$B/files/dense-zeros-1m"
# content at the bottom of the over-PATH_MAX directory chain
in_deep sh -c 'printf "at the bottom!\n" >leaf'
if [ "$AWKWARD_IS_ROOT" = 1 ]; then
	rm "$B/special/char-1-3"
	mknod "$B/special/char-1-3" c 1 5
	chown 1235 "$B/owners/file"
	chgrp 5679 "$B/owners/dir"
	chown -h 4322 "$B/owners/link"
fi
if [ "$AWKWARD_HAS_XATTR" = 1 ]; then
	setfattr -n user.keel.text -v 'hello World' "$B/files/4k"
	setfattr -x user.keel.empty "$B/files/4k"
	setfattr -n user.keel.new -v 1 "$B/files/empty"
fi
if [ "$AWKWARD_HAS_ACL" = 1 ]; then
	setfacl -m u:1234:r "$B/acl/file"
	setfacl -k "$B/acl/dir"
fi

expect_diff --ignore-atime
expect_line "treecmp: files/random-3m: content differs at byte 1000000"
expect_line "treecmp: files/text: size differs: A=17 B=18"
expect_line "treecmp: modes/m0751: mode differs: A=0751 B=0755"
expect_line "treecmp: modes/setuid: mode differs: A=4755 B=0755"
expect_line "treecmp: modes/sticky-dir: mode differs: A=1777 B=0777"
expect_line "treecmp: files/4k: mtime differs: A=981173106.123456789 B=981173106.123456788"
expect_line "treecmp: links/relative: mtime differs"
expect_line "treecmp: links/dangling: symlink target differs: A=does/not/exist B=does/not/exist2"
expect_line "treecmp: special/fifo: type differs: A fifo, B regular file"
expect_line 'treecmp: names/new\x0aline: only in A'
expect_line 'treecmp: names/extra\x01: only in B'
expect_line 'treecmp: names/dir\x0awith newline/\xff: only in A'
expect_line 'treecmp: names/dir\x0awith newline/\xfe: only in B'
expect_line "in A, but not in B"
expect_line "hard/b/triple: hard link of hard/a/triple in A, but not in B"
expect_line "in B, but not in A"
expect_line "treecmp: sparse/all-hole: sparseness differs: A sparse"
expect_line "treecmp: files/dense-zeros-1m: sparseness differs: A dense"
expect_line "/leaf: size differs: A=14 B=15"
expect_line "treecmp: deep/level-01-"
if [ "$AWKWARD_IS_ROOT" = 1 ]; then
	expect_line "treecmp: special/char-1-3: device differs: A=1:3 B=1:5"
	expect_line "treecmp: owners/file: uid differs: A=1234 B=1235"
	expect_line "treecmp: owners/dir: gid differs: A=5678 B=5679"
	expect_line "treecmp: owners/link: uid differs: A=4321 B=4322"
fi
if [ "$AWKWARD_HAS_XATTR" = 1 ]; then
	expect_line "treecmp: files/4k: xattr user.keel.text differs: A=0x68656c6c6f20776f726c64 B=0x68656c6c6f20576f726c64"
	expect_line "treecmp: files/4k: xattr user.keel.empty only in A"
	expect_line "treecmp: files/empty: xattr user.keel.new only in B"
fi
if [ "$AWKWARD_HAS_ACL" = 1 ]; then
	expect_line "treecmp: acl/file: xattr system.posix_acl_access differs"
	expect_line "treecmp: acl/dir: xattr system.posix_acl_default only in A"
fi
# Nothing that was left alone is reported.
if grep -E 'treecmp: (files/repeated-2m|sparse/two-islands|hard/a/pair-[12]|links/absolute|many/f2): ' "$OUT"; then
	fail "treecmp reported an unchanged entry"
fi

# ---- options that hide a difference ----------------------------------------
# a restorer may leave sockets out
if [ -S "$A/special/socket" ]; then
	twin
	rm "$B/special/socket"
	touch -d "$T" "$B/special"
	expect_diff --ignore-atime
	expect_line "treecmp: special/socket: only in A"
	expect_success treecmp --ignore-atime --ignore-sockets "$A" "$B"
fi

# atimes: twins that nothing has read yet
twin
C=$TEST_DIR/c
make_awkward_tree "$C" 2>/dev/null
touch -a -d '2021-01-01 00:00:00.5' "$C/files/4k"
rc=0
treecmp "$B" "$C" 2>"$OUT" || rc=$?
[ "$rc" = 1 ] || { cat "$OUT" >&2; fail "treecmp missed an atime difference"; }
expect_line "treecmp: files/4k: atime differs: A=981173106.123456789 B=1609459200.500000000"
[ "$(wc -l <"$OUT")" = 2 ] || { cat "$OUT" >&2; fail "treecmp reported more than the atime"; }
expect_success treecmp --ignore-atime "$B" "$C"

if [ "$AWKWARD_IS_ROOT" = 1 ]; then
	chown 1 "$B/files/4k"
	chgrp 1 "$B/many/f3"
	expect_diff --ignore-atime
	expect_line "treecmp: files/4k: uid differs: A=0 B=1"
	expect_line "treecmp: many/f3: gid differs: A=0 B=1"
	expect_success treecmp --ignore-atime --ignore-owner "$A" "$B"
fi

# Same data and still sparse, but with a different hole map: equal by
# default, different with --exact-holes.
twin
dd if=/dev/zero of="$B/sparse/two-islands" bs=4096 seek=4096 count=16 conv=notrunc status=none
touch -d '2012-12-12 12:12:12.121212121' "$B/sparse/two-islands"
expect_success treecmp --ignore-atime "$A" "$B"
expect_diff --ignore-atime --exact-holes
expect_line "treecmp: sparse/two-islands: hole map differs"
