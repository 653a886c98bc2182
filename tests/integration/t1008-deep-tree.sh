#!/usr/bin/env bash
# A tree 5000 directories deep (paths of 10,000 bytes, far beyond
# PATH_MAX): backup, ls, check, diff and restore walk it with a small
# stack (2 MiB, a quarter of the default) and few descriptors (512),
# so none of them may recurse or hold a descriptor per level. Some
# levels have an entry after the deep child, which the backup reaches
# only by reopening that level after coming back up.
. "$(dirname "$0")/../lib.sh"
require_keel
require_treecmp

# On S3 every level's tree is a request of its own in each of the ten
# commands below: 5000 levels take six minutes there, 600 (still paths of
# 1200 bytes, and every step of each walk) half a minute.
if [ "${KEEL_TEST_BACKEND:-local}" = s3 ]; then
	DEPTH=${KEEL_TEST_DEPTH:-600}
else
	DEPTH=${KEEL_TEST_DEPTH:-5000}
fi
SRC=$TEST_DIR/src
mkdir "$SRC"
# perl, not a loop of mkdir and cd: bash's cd slows down with the length of $PWD
perl -e '
	my ($root, $depth) = @ARGV;
	chdir $root or die "chdir $root: $!";
	for my $i (1 .. $depth) {
		mkdir "d" or die "mkdir at $i: $!";
		if ($i % 500 == 0) {
			open(my $f, ">", "zz-$i") or die; print $f "level $i\n"; close $f;
		}
		chdir "d" or die "chdir at $i: $!";
	}
	open(my $f, ">", "leaf") or die; print $f "at the bottom\n"; close $f;
	symlink("leaf", "leaf-link") or die;
	link("leaf", ("../" x 100) . "leaf-up") or die "link: $!";
' "$SRC" "$DEPTH" || fail "cannot build the deep tree"
n_src=$(find "$SRC" | wc -l)
log "built $n_src entries, $DEPTH levels"

# keel under a small stack and descriptor limit
small()
{
	(
		ulimit -s 2048
		ulimit -n 512
		"$@"
	)
}

# the restored tree must equal the source; treecmp holds two descriptors
# per level, so it gets the hard limit
same_tree()
{
	local hard
	hard=$(ulimit -Hn)
	if [ "$hard" != unlimited ] && [ "$hard" -lt $((2 * DEPTH + 100)) ]; then
		skip_or_die "treecmp needs $((2 * DEPTH + 100)) descriptors, the hard limit is $hard"
	fi
	(
		ulimit -n "$hard"
		expect_success treecmp --ignore-atime "$1" "$2" >"$TEST_DIR/treecmp.out" 2>&1
	) || fail "restored tree differs: $(head -c 600 "$TEST_DIR/treecmp.out")"
}

keel_init
small expect_success keel backup "$SRC" >/dev/null
n_ls=$(small keel ls latest | wc -l)
[ "$n_ls" -ge "$n_src" ] || fail "ls listed $n_ls nodes for $n_src entries"
small expect_success keel check --read-data >/dev/null

small expect_success keel restore latest --target "$TEST_DIR/r" >/dev/null
R=$(restored_root "$TEST_DIR/r" "$SRC")
same_tree "$SRC" "$R"

# An incremental backup reads the parent's tree at every level; then a
# change at the bottom is one modified file for diff, 5000 levels down.
small keel backup --json "$SRC" >"$TEST_DIR/b2.json" || fail "second backup failed"
unmod=$(json_get files_unmodified <"$TEST_DIR/b2.json" | tail -1)
[ "$unmod" -ge $((DEPTH / 500 + 1)) ] || fail "the unchanged backup re-read files ($unmod unmodified)"
perl -e '
	chdir $ARGV[0] or die; chdir "d" or die for 1 .. $ARGV[1];
	open(my $f, ">>", "leaf") or die; print $f "changed\n"; close $f;
' "$SRC" "$DEPTH"
small expect_success keel backup "$SRC" >/dev/null
mapfile -t ids < <(snapshot_ids)
small keel diff "${ids[1]}" "${ids[2]}" >"$TEST_DIR/diff.out" || fail "diff failed"
grep -q '^M .*/leaf$' "$TEST_DIR/diff.out" || fail "diff did not report the changed leaf: $(cut -c1-200 "$TEST_DIR/diff.out")"
small expect_success keel check >/dev/null
# find, stats and dump as tar walk as deep in a small stack (files: zz-*, leaf, leaf-up)
[ "$(small keel find leaf | grep -c '/leaf$')" = 3 ] || fail "find did not find the leaf in 3 snapshots"
small keel stats --json >"$TEST_DIR/stats.json" || fail "stats failed"
[ "$(json_get total_file_count <"$TEST_DIR/stats.json")" = $((3 * (DEPTH / 500 + 2))) ] ||
	fail "stats counted $(json_get total_file_count <"$TEST_DIR/stats.json") files"
small keel dump latest "$SRC" >"$TEST_DIR/deep.tar" || fail "dump as tar failed"
[ "$(tar -tf "$TEST_DIR/deep.tar" | grep -c '/leaf$')" = 1 ] || fail "the tar lacks the leaf"

# only the bottom, through an include pattern 10,000 bytes long
deep=$SRC$(printf '/d%.0s' $(seq 1 "$DEPTH"))/leaf
small expect_success keel restore latest --target "$TEST_DIR/r2" --include "$deep" >/dev/null
got=$(perl -e 'chdir $ARGV[0] or die; chdir "d" or die for 1 .. $ARGV[1]; print -s "leaf"' \
	"$(restored_root "$TEST_DIR/r2" "$SRC")" "$DEPTH") || fail "the included leaf was not restored"
[ "$got" = "$(printf 'at the bottom\nchanged\n' | wc -c)" ] || fail "restored leaf has $got bytes"

small expect_success keel restore latest --target "$TEST_DIR/r3" >/dev/null
same_tree "$SRC" "$(restored_root "$TEST_DIR/r3" "$SRC")"

# a relative path given from a working directory deeper than PATH_MAX is
# made absolute without a fixed-size buffer (3000 levels: 6000 bytes)
if [ "$DEPTH" -gt 3000 ]; then
	perl -e 'chdir $ARGV[0] or die; chdir "d" or die for 1 .. 3000; shift; exec @ARGV or die' \
		"$SRC" "$KEEL" backup --json --tag from-deep-cwd d >"$TEST_DIR/b-rel.json" ||
		fail "backup of a relative path from a deep working directory failed"
	want=$SRC$(printf '/d%.0s' $(seq 1 3001))
	keel snapshots --json --tag from-deep-cwd | grep -qF "\"$want\"" ||
		fail "the snapshot does not record the ${#want}-byte absolute path"
else
	log "depth $DEPTH: the working directory deeper than PATH_MAX is not tried"
fi

# An exclude pattern is matched against the full path: zz-L sorts after
# "d", so the walk reaches it only after coming back up to its level
# (reopened, below the first 64 levels), and its path must be that level's.
L=$((DEPTH / 500 * 500))
if [ "$L" -ge 500 ]; then
	lvl=$SRC$(printf '/d%.0s' $(seq 1 "$((L - 1))"))
	small expect_success keel backup --tag excl --exclude "$lvl/zz-$L" "$SRC" >/dev/null
	small keel ls "$(snapshot_ids --tag excl)" >"$TEST_DIR/ls-excl.out" || fail "ls failed"
	grep -q "/zz-$L\$" "$TEST_DIR/ls-excl.out" && fail "zz-$L was not excluded by its full path"
	grep -q '/leaf$' "$TEST_DIR/ls-excl.out" || fail "the excluding backup lost the leaf"
	if [ "$L" -gt 500 ]; then
		grep -q "/zz-$((L - 500))\$" "$TEST_DIR/ls-excl.out" ||
			fail "zz-$((L - 500)) was excluded too"
	fi
fi

# Memory grows with the depth, not with its square: 2000 levels of
# 200-byte names, when every directory on the way down held its own full
# path, were 400 MB of paths (800 MB peak RSS); with one path for the
# walk, about 25 MB (70 MB with MALLOC_PERTURB_, which touches every
# page allocated; 60 MB under ASan). Two worker threads, whatever the
# number of cores; memory does not depend on the backend, so only the
# local run measures it.
if [ "${KEEL_TEST_BACKEND:-local}" = local ] && has_python; then
	WIDE=$TEST_DIR/wide
	mkdir "$WIDE"
	perl -e '
		my ($root, $depth) = @ARGV;
		my $n = "n" x 200;
		chdir $root or die "chdir $root: $!";
		for my $i (1 .. $depth) {
			mkdir $n or die "mkdir at $i: $!";
			chdir $n or die "chdir at $i: $!";
		}
		open(my $f, ">", "leaf") or die; print $f "at the bottom\n"; close $f;
	' "$WIDE" 2000 || fail "cannot build the tree of long names"
	# the largest resident set of the children python waited for: keel's.
	# ASan keeps up to 256 MB of freed memory in quarantine; 16 MB keep
	# the figure about what keel holds.
	peak_kb=$(ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16 small python3 -c '
import resource, subprocess, sys
rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
if rc != 0:
    sys.exit("keel backup: exit %d" % rc)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
' "$KEEL" backup --threads 2 --tag wide "$WIDE") || fail "the backup of 2000 levels of long names failed"
	log "peak RSS of the backup of 2000 levels of 200-byte names: $peak_kb KiB"
	[ "$peak_kb" -lt 200000 ] ||
		fail "the backup of 2000 levels of 200-byte names peaked at $peak_kb KiB (memory grows with the square of the depth?)"
	small keel ls "$(snapshot_ids --tag wide)" >"$TEST_DIR/ls-wide.out" || fail "ls failed"
	grep -q '/leaf$' "$TEST_DIR/ls-wide.out" ||
		fail "the leaf of the tree of long names is not in the snapshot"
fi
