#!/usr/bin/env bash
# backup --exclude, --exclude-file, --exclude-caches, --exclude-larger-than
# and -x (--one-file-system).
. "$(dirname "$0")/../lib.sh"
require_keel

SRC=$TEST_DIR/src
mkdir -p "$SRC/sub/deeper" "$SRC/scratch" "$SRC/cache" "$SRC/fake-cache" "$SRC/mnt"
printf 'keep\n' >"$SRC/keep.txt"
printf 'log\n' >"$SRC/skip.log"
printf 'keep\n' >"$SRC/sub/keep2.txt"
printf 'log\n' >"$SRC/sub/deeper/skip2.log"
printf 'scratch\n' >"$SRC/scratch/junk"
printf 'listed\n' >"$SRC/listed-in-file.txt"
printf 'listed\n' >"$SRC/sub/also-listed.dat"
head -c $((2 << 20)) /dev/urandom >"$SRC/big.bin"
head -c $((512 << 10)) /dev/urandom >"$SRC/sub/medium.bin"
# a cache directory, marked as https://bford.info/cachedir/ says
printf 'Signature: 8a477f597d28d172789f06886806bc55\n# a cache\n' >"$SRC/cache/CACHEDIR.TAG"
printf 'cached\n' >"$SRC/cache/cached-data"
# a tag with the wrong signature does not count
printf 'Signature: not the right one\n' >"$SRC/fake-cache/CACHEDIR.TAG"
printf 'not cached\n' >"$SRC/fake-cache/data"
printf 'listed-in-file.txt\n*.dat\n' >"$TEST_DIR/excludes"
keel_init

expect_success keel backup --tag ex \
	--exclude '*.log' --exclude scratch \
	--exclude-file "$TEST_DIR/excludes" \
	--exclude-caches \
	--exclude-larger-than 1M \
	"$SRC" >/dev/null
keel ls latest --tag ex >"$TEST_DIR/ls"
L=$TEST_DIR/ls
for p in keep.txt sub/keep2.txt sub/medium.bin fake-cache/data fake-cache/CACHEDIR.TAG sub/deeper; do
	assert_listed "$L" "$p"
done
for p in skip.log sub/deeper/skip2.log scratch/junk listed-in-file.txt sub/also-listed.dat \
	big.bin cache/cached-data; do
	assert_not_listed "$L" "$p"
done
listed "$L" scratch && fail "an excluded directory is listed"

# Without options everything is there.
expect_success keel backup --tag all "$SRC" >/dev/null
keel ls latest --tag all >"$TEST_DIR/ls-all"
for p in skip.log scratch/junk listed-in-file.txt big.bin cache/cached-data sub/also-listed.dat; do
	assert_listed "$TEST_DIR/ls-all" "$p"
done

# Sizes take suffixes; the limit is inclusive of smaller files only.
expect_success keel backup --tag size --exclude-larger-than 600K "$SRC" >/dev/null
keel ls latest --tag size >"$TEST_DIR/ls-size"
assert_listed "$TEST_DIR/ls-size" sub/medium.bin
assert_not_listed "$TEST_DIR/ls-size" big.bin
expect_exit 2 keel backup --exclude-larger-than lots "$SRC"

# -x: a file system mounted below the source is not crossed. The mount
# lives in a private mount namespace that ends with the command.
if ! command -v unshare >/dev/null || ! unshare -m --propagation private true 2>/dev/null; then
	skip_or_die "-x needs a private mount namespace (unshare -m)"
fi
run_with_mount()
{
	unshare -m --propagation private sh -c '
		mount -t tmpfs keel-test "$1/mnt" || exit 99
		printf "on another fs\n" >"$1/mnt/inside"
		shift
		exec "$@"' sh "$SRC" "$@"
}
rc=0
run_with_mount "$KEEL" backup --tag crossed "$SRC" >/dev/null 2>"$TEST_DIR/err" || rc=$?
[ "$rc" != 99 ] || skip_or_die "cannot mount a tmpfs here"
[ "$rc" = 0 ] || fail "backup across a mount point exited $rc: $(cat "$TEST_DIR/err")"
expect_success run_with_mount "$KEEL" backup --tag one-fs -x "$SRC" >/dev/null
expect_success run_with_mount "$KEEL" backup --tag one-fs-long --one-file-system "$SRC" >/dev/null
keel ls latest --tag crossed >"$TEST_DIR/ls-crossed"
assert_listed "$TEST_DIR/ls-crossed" mnt/inside
for t in one-fs one-fs-long; do
	keel ls latest --tag "$t" >"$TEST_DIR/ls-$t"
	assert_not_listed "$TEST_DIR/ls-$t" mnt/inside
	assert_listed "$TEST_DIR/ls-$t" keep.txt
done
