# shellcheck shell=bash
#
# tests/lib.sh: sourced by every tests/integration/tNNNN-*.sh (git's
# test-lib.sh in small). A test is a bash script that exits 0 (pass),
# 1 (fail) or 77 (skip). Meson passes:
#   KEEL_BIN   the keel binary under test
#   TREECMP    tests/tools/treecmp
# When run by hand they are looked up in build-test/, build-ci/, build/.
#
# The library gives each test:
#   TEST_DIR            a private temporary directory, removed on exit
#                       (kept when KEEL_TEST_KEEP=1)
#   KEEL_REPOSITORY     $TEST_DIR/repo (exported; not created)
#   KEEL_PASSWORD_FILE  $TEST_DIR/password (exported)
#   keel ARGS...        runs the binary under test
#   keel_init [ARGS]    init with fast KDF parameters
#   expect_success CMD...      fail unless CMD exits 0
#   expect_exit CODE CMD...    fail unless CMD exits CODE
#   expect_failure CMD...      fail unless CMD exits non-zero (and not 2: usage)
#   skip_or_die MSG     exit 77, or fail when KEEL_TEST_REQUIRE_ALL=1
#   make_awkward_tree DIR      a tree with every kind of awkward entry
# and smaller helpers documented where they are defined.

set -euo pipefail
shopt -s inherit_errexit
export LC_ALL=C TZ=UTC
umask 022

TEST_NAME=$(basename "$0" .sh)
KEEL_SOURCE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# fd 9: the test's own log, which command redirections do not touch.
exec 9>&2

log()
{
	printf '%s\n' "$*" >&9
}

fail()
{
	log "FAIL: $TEST_NAME: $*"
	exit 1
}

skip_or_die()
{
	if [ "${KEEL_TEST_REQUIRE_ALL:-0}" = 1 ]; then
		log "FAIL: $TEST_NAME: required but not possible here: $*"
		exit 1
	fi
	log "SKIP: $TEST_NAME: $*"
	exit 77
}

find_built()
{
	local rel=$1 d
	for d in build-test build-ci build; do
		if [ -x "$KEEL_SOURCE_ROOT/$d/$rel" ]; then
			printf '%s\n' "$KEEL_SOURCE_ROOT/$d/$rel"
			return 0
		fi
	done
	return 1
}

KEEL=${KEEL_BIN:-$(find_built src/cli/keel || true)}
TREECMP=${TREECMP:-$(find_built tests/tools/treecmp || true)}
# tests/tools/jsonget: json_get and json_check without starting python3
JSONGET=${JSONGET:-$(find_built tests/tools/jsonget || true)}

# ---- temporary directory and cleanup ---------------------------------------

TEST_DIR=$(mktemp -d "${TMPDIR:-/tmp}/keel-$TEST_NAME.XXXXXX")
BG_PIDS=()

cleanup()
{
	local rc=$? pid
	for pid in "${BG_PIDS[@]}"; do
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	if [ "${KEEL_TEST_KEEP:-0}" = 1 ]; then
		log "kept $TEST_DIR"
	else
		# Directories with mode 0000 or 0500 cannot be emptied by a non-root user.
		chmod -R u+rwx "$TEST_DIR" 2>/dev/null || true
		rm -rf "$TEST_DIR" 2>/dev/null || true
	fi
	case $rc in
	0) log "PASS: $TEST_NAME" ;;
	77) ;;
	*) log "FAIL: $TEST_NAME (exit $rc)" ;;
	esac
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export HOME=$TEST_DIR/home XDG_CACHE_HOME=$TEST_DIR/home/.cache
# keel's configuration file (docs/S3.md): the tester's own must not count
export XDG_CONFIG_HOME=$TEST_DIR/home/.config
unset KEEL_CONFIG
mkdir -p "$HOME"

export KEEL_REPOSITORY=$TEST_DIR/repo
PASSWORD='correct horse battery staple'
export KEEL_PASSWORD_FILE=$TEST_DIR/password
printf '%s\n' "$PASSWORD" >"$KEEL_PASSWORD_FILE"
chmod 600 "$KEEL_PASSWORD_FILE"
unset KEEL_PASSWORD KEEL_PASSWORD_COMMAND

# KEEL_TEST_BACKEND=s3: the repository is in a bucket of a real S3 server
# (tests/lib-s3.sh) instead (suite integration-s3 in
# tests/integration/meson.build). Tests look inside it only through the
# helpers below that take S3 locations as well as files (dir_bytes,
# repo_listing, repo_files, file_size, flip_byte, repo_cp, ...).
if [ "${KEEL_TEST_BACKEND:-local}" = s3 ]; then
	# shellcheck source=tests/lib-s3.sh
	. "$KEEL_SOURCE_ROOT/tests/lib-s3.sh"
	s3_setup
	s3_new_repo repo
fi

# ---- running commands -----------------------------------------------------

# under_strace: a test that runs keel under strace calls this first. In an
# ASan build LeakSanitizer stops the process's threads with ptrace, which
# a process strace already traces cannot do, so it aborts (exit 134);
# leaks are left to the tests that run keel untraced
under_strace()
{
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
}

require_keel()
{
	[ -n "$KEEL" ] && [ -x "$KEEL" ] || skip_or_die "no keel binary (set KEEL_BIN)"
}

require_treecmp()
{
	[ -n "$TREECMP" ] && [ -x "$TREECMP" ] || skip_or_die "no treecmp binary (set TREECMP)"
}

keel()
{
	"$KEEL" "$@"
}

treecmp()
{
	"$TREECMP" "$@"
}

keel_init()
{
	expect_success keel init --kdf-ops 1 --kdf-mem 8 "$@"
}

expect_success()
{
	local rc=0
	log "+ $*"
	"$@" || rc=$?
	[ "$rc" -eq 0 ] || fail "expected success, got exit $rc: $*"
}

expect_exit()
{
	local want=$1 rc=0
	shift
	log "+ (expect exit $want) $*"
	"$@" || rc=$?
	[ "$rc" -eq "$want" ] || fail "expected exit $want, got $rc: $*"
}

# expect_error CODE PATTERN CMD...: CMD exits CODE and says PATTERN on
# stderr (kept in $TEST_DIR/err, and copied to the log); none of the
# strings in the array NEVER_SHOWN may appear there (secrets)
NEVER_SHOWN=()
expect_error()
{
	local want=$1 pattern=$2 rc=0 s
	shift 2
	log "+ (expect exit $want, '$pattern') $*"
	"$@" </dev/null >"$TEST_DIR/out" 2>"$TEST_DIR/err" || rc=$?
	cat "$TEST_DIR/err" >&9
	[ "$rc" = "$want" ] || fail "expected exit $want, got $rc: $*"
	grep -q -- "$pattern" "$TEST_DIR/err" || fail "stderr does not say '$pattern': $*"
	for s in "${NEVER_SHOWN[@]}"; do
		! grep -qF -e "$s" "$TEST_DIR/err" || fail "stderr shows a secret: $*"
	done
}

expect_failure()
{
	local rc=0
	log "+ (expect failure) $*"
	"$@" || rc=$?
	[ "$rc" -ne 0 ] || fail "expected failure, got success: $*"
	[ "$rc" -ne 2 ] || fail "expected a runtime failure, got a usage error (2): $*"
	[ "$rc" -lt 128 ] || fail "expected a clean failure, got exit $rc (signal?): $*"
}

# ---- small helpers ------------------------------------------------------

# file_size FILE: bytes (of an object, when FILE is an S3 location)
file_size()
{
	case $1 in s3:*)
		s3_size "$1"
		return
		;;
	esac
	stat -c %s "$1"
}

# dir_bytes DIR: total size of the regular files below DIR (0 if missing);
# of the objects below it when DIR is an S3 location (lib-s3.sh)
dir_bytes()
{
	case $1 in s3:*)
		s3_dir_bytes "$1"
		return
		;;
	esac
	if [ -d "$1" ]; then
		find "$1" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'
	else
		echo 0
	fi
}

# repo_listing: every file in the repository with its size and hash, sorted;
# two listings are equal when nothing was written. Locks are left out: a
# killed process leaves its lock, which is harmless (stale) and no data.
repo_listing()
{
	case $KEEL_REPOSITORY in s3:*)
		s3_repo_listing
		return
		;;
	esac
	(cd "$KEEL_REPOSITORY" && find . -path ./locks -prune -o -type f -print0 | sort -z |
		xargs -0 -r sha256sum)
	(cd "$KEEL_REPOSITORY" && find . -path './locks/*' -prune -o -print | sort)
}

# repo_files SUBDIR: files under $KEEL_REPOSITORY/SUBDIR, sorted; on S3
# the objects below it, named by their locations (s3:.../SUBDIR/...), which
# the helpers below take as they take file names
repo_files()
{
	case $KEEL_REPOSITORY in s3:*)
		s3_files "$KEEL_REPOSITORY/$1"
		return
		;;
	esac
	[ -d "$KEEL_REPOSITORY/$1" ] || fail "repository has no $1/ directory"
	find "$KEEL_REPOSITORY/$1" -type f | sort
}

# by_size gt|lt: the largest (gt) or the smallest (lt) of the files (or
# objects) named on stdin, one a line
by_size()
{
	local f size best="" best_size=""
	while IFS= read -r f; do
		size=$(file_size "$f")
		if [ -z "$best_size" ] || [ "$size" "-$1" "$best_size" ]; then
			best=$f
			best_size=$size
		fi
	done
	printf '%s\n' "$best"
}
largest() { by_size gt; }
smallest() { by_size lt; }

# repo_cp SRC DST: copies a file; either may be an object of the S3
# repository (to save one before damaging it, and to put it back)
repo_cp()
{
	local tmp
	case $1:$2 in
	s3:*:s3:*)
		tmp=$TEST_DIR/.s3-copy
		s3_get "$1" "$tmp"
		s3_put "$tmp" "$2"
		rm -f "$tmp"
		;;
	s3:*) s3_get "$1" "$2" ;;
	*:s3:*) s3_put "$1" "$2" ;;
	*) cp "$1" "$2" ;;
	esac
}

# repo_mv SRC DST: moves a file or an object (as repo_cp, then removes SRC)
repo_mv()
{
	case $1:$2 in
	*s3:*)
		repo_cp "$1" "$2"
		repo_rm "$1"
		;;
	*) mv "$1" "$2" ;;
	esac
}

# repo_rm FILE...: removes files or objects
repo_rm()
{
	local f
	for f in "$@"; do
		case $f in
		s3:*) s3_rm "$f" ;;
		*) rm -f "$f" ;;
		esac
	done
}

# repo_truncate SIZE FILE: cuts a file or object to SIZE bytes
repo_truncate()
{
	local f=$TEST_DIR/.s3-truncate
	case $2 in s3:*)
		s3_get "$2" "$f"
		truncate -s "$1" "$f"
		s3_put "$f" "$2"
		rm -f "$f"
		return
		;;
	esac
	truncate -s "$1" "$2"
}

# flip_byte FILE OFFSET: inverts the bits of one byte in place (of an
# object, when FILE is an S3 location)
flip_byte()
{
	local f=$1 off=$2 b
	case $f in s3:*)
		s3_flip_byte "$f" "$off"
		return
		;;
	esac
	b=$(od -An -tu1 -j "$off" -N1 "$f" | tr -d ' ')
	[ -n "$b" ] || fail "flip_byte: $f has no byte at $off"
	printf "\\$(printf '%03o' $((b ^ 0xff)))" |
		dd of="$f" bs=1 seek="$off" conv=notrunc status=none
}

# sha FILE: hex SHA-256 of a file
sha()
{
	sha256sum "$1" | cut -d' ' -f1
}

# has_python: true when python3 can check JSON
has_python()
{
	command -v python3 >/dev/null 2>&1
}

# json_check: stdin must be one JSON document or JSON lines
json_check()
{
	local f=$TEST_DIR/.json-check
	cat >"$f"
	[ -s "$f" ] || fail "empty JSON output"
	# jsonget accepts only what python3 accepts; 3: it cannot tell, ask python3
	if [ -x "$JSONGET" ] && "$JSONGET" --check <"$f"; then
		return 0
	fi
	if has_python; then
		python3 - "$f" <<'EOF' || fail "output is not JSON: $(head -c 300 "$f")"
import json, sys
text = open(sys.argv[1], encoding="utf-8", errors="surrogateescape").read()
try:
    json.loads(text)
except ValueError:
    lines = [l for l in text.splitlines() if l.strip()]
    for l in lines:
        json.loads(l)
EOF
	else
		grep -q '^[[:space:]]*[[{]' "$f" || fail "output is not JSON: $(head -c 300 "$f")"
	fi
}

# json_get KEY < JSON: every value of KEY anywhere in the document (or JSON
# lines), one per line, in document order
json_get()
{
	local key=$1 f rc=0
	# tests/tools/jsonget prints what the python3 below prints, or nothing
	# and exits 3 for what only python3 can tell (see its header)
	if [ -x "$JSONGET" ]; then
		f=$TEST_DIR/.json-get.$BASHPID
		cat >"$f"
		"$JSONGET" "$key" <"$f" || rc=$?
		if [ "$rc" != 3 ]; then
			rm -f "$f"
			return "$rc"
		fi
		rc=0
		json_get_python "$key" <"$f" || rc=$?
		rm -f "$f"
		return "$rc"
	fi
	json_get_python "$key"
}

json_get_python()
{
	local key=$1
	if has_python; then
		python3 -c '
import json, sys
key = sys.argv[1]
text = sys.stdin.read()
try:
    docs = [json.loads(text)]
except ValueError:
    docs = [json.loads(l) for l in text.splitlines() if l.strip()]
def walk(v):
    if isinstance(v, dict):
        for k, x in v.items():
            if k == key and not isinstance(x, (dict, list)):
                print("true" if x is True else "false" if x is False else x)
            walk(x)
    elif isinstance(v, list):
        for x in v:
            walk(x)
for d in docs:
    walk(d)
' "$key"
	else
		grep -o "\"$key\"[[:space:]]*:[[:space:]]*\\(\"[^\"]*\"\\|[^,}[:space:]]*\\)" |
			sed -e 's/^[^:]*:[[:space:]]*//' -e 's/^"//' -e 's/"$//'
	fi
}

# snapshot_ids [FILTER ARGS]: ids of the snapshots, oldest first
snapshot_ids()
{
	keel snapshots --json "$@" | json_get id
}

snapshot_count()
{
	local ids
	ids=$(snapshot_ids "$@") || fail "keel snapshots --json failed"
	if [ -z "$ids" ]; then echo 0; else printf '%s\n' "$ids" | wc -l; fi
}

# restored_root TARGET SRC: where a backup of SRC landed inside TARGET
# (TARGET/SRC with the full path, as restic does, or TARGET/basename, or
# TARGET itself)
restored_root()
{
	local target=$1 src=$2
	if [ -e "$target$src" ]; then
		printf '%s\n' "$target$src"
	elif [ -e "$target/$(basename "$src")" ]; then
		printf '%s\n' "$target/$(basename "$src")"
	else
		printf '%s\n' "$target"
	fi
}

# listed OUTFILE RELPATH: true when a line of OUTFILE is RELPATH or ends in /RELPATH
listed()
{
	awk -v want="$2" '
		$0 == want || $0 == "/" want { found = 1; exit }
		length($0) > length(want) && substr($0, length($0) - length(want)) == "/" want { found = 1; exit }
		END { exit !found }' "$1"
}

assert_listed()
{
	listed "$1" "$2" || fail "'$2' missing from $(basename "$1")"
}

assert_not_listed()
{
	if listed "$1" "$2"; then fail "'$2' should not be in $(basename "$1")"; fi
}

# as_user CMD...: runs CMD as uid/gid 65534 (nobody) when we are root
as_nobody()
{
	setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"
}

# asan_build: true when the binary under test was built with ASan (tests
# then use smaller data)
asan_build()
{
	[ -n "${ASAN_OPTIONS:-}" ] || nm -a "$KEEL" 2>/dev/null | grep -q __asan_init
}

# ---- the awkward tree ----------------------------------------------------

AWKWARD_POOL=$TEST_DIR/.random-pool
AWKWARD_POOL_OFF=0
AWKWARD_SKIPPED=()
AWKWARD_HAS_XATTR=0
AWKWARD_HAS_ACL=0
AWKWARD_IS_ROOT=0

# pool_bytes N: N bytes of the test's random pool; the same sequence of
# calls gives the same bytes, so make_awkward_tree can build twin trees
pool_bytes()
{
	local n=$1 size=$((4 << 20))
	[ -f "$AWKWARD_POOL" ] || head -c "$size" /dev/urandom >"$AWKWARD_POOL"
	if [ $((AWKWARD_POOL_OFF + n)) -gt "$size" ]; then AWKWARD_POOL_OFF=0; fi
	dd if="$AWKWARD_POOL" bs=64k iflag=skip_bytes,count_bytes skip="$AWKWARD_POOL_OFF" \
		count="$n" status=none
	AWKWARD_POOL_OFF=$(((AWKWARD_POOL_OFF + n * 7 + 4093) % size))
}

awkward_skip()
{
	AWKWARD_SKIPPED+=("$1")
	log "make_awkward_tree: skipped: $1"
}

# make_awkward_tree DIR: creates DIR with everything a backup must get right.
# Deterministic within one test: two calls make trees that treecmp finds equal
# (content comes from the test's random pool; every time stamp is set).
make_awkward_tree()
{
	local d=$1 i pad name
	local -a names
	AWKWARD_POOL_OFF=0
	AWKWARD_SKIPPED=()
	[ "$(id -u)" = 0 ] && AWKWARD_IS_ROOT=1
	mkdir -p "$d"

	# Regular files of several sizes; the same content twice; a file that
	# repeats one 64 KiB block (dedup inside a file); zeros written densely.
	mkdir "$d/files"
	: >"$d/files/empty"
	printf x >"$d/files/one-byte"
	pool_bytes 4096 >"$d/files/4k"
	pool_bytes 4097 >"$d/files/4k-plus-1"
	pool_bytes $((3 << 20)) >"$d/files/random-3m"
	cp "$d/files/random-3m" "$d/files/random-3m-copy"
	pool_bytes 65536 >"$TEST_DIR/.block"
	for i in $(seq 32); do cat "$TEST_DIR/.block"; done >"$d/files/repeated-2m"
	head -c $((1 << 20)) /dev/zero >"$d/files/dense-zeros-1m"
	printf 'no newline at end' >"$d/files/text"

	# Many small files in one directory.
	mkdir "$d/many"
	for i in $(seq 1 150); do printf '%s\n' "$i" >"$d/many/f$i"; done

	# Sixty levels of 90-byte names: the full path is over 5000 bytes, more
	# than PATH_MAX, so only relative (openat-style) access reaches the bottom.
	pad=$(printf 'p%.0s' $(seq 1 80))
	mkdir "$d/deep"
	(
		cd "$d/deep"
		for i in $(seq -w 1 60); do
			mkdir "level-$i-$pad"
			cd "level-$i-$pad"
		done
		printf 'at the bottom\n' >leaf
		ln -s leaf leaf-link
		ln leaf leaf-hardlink
	)

	# Empty directories.
	mkdir -p "$d/empty-dir" "$d/nested-empty/a/b/c"

	# Symlinks: relative, absolute, dangling, to a directory, to itself,
	# odd bytes and a long target.
	mkdir "$d/links"
	ln -s ../files/4k "$d/links/relative"
	ln -s /etc/hostname "$d/links/absolute"
	ln -s does/not/exist "$d/links/dangling"
	ln -s ../files "$d/links/to-dir"
	ln -s self-loop "$d/links/self-loop"
	ln -s "$(printf 'odd\001\377 target\\')" "$d/links/odd-target"
	ln -s "$(printf 'x/%.0s' $(seq 1 700))end" "$d/links/long-target"

	# Hard links: a pair in one directory, a triple across three.
	mkdir -p "$d/hard/a" "$d/hard/b" "$d/hard/c"
	printf 'a pair\n' >"$d/hard/a/pair-1"
	ln "$d/hard/a/pair-1" "$d/hard/a/pair-2"
	pool_bytes 100000 >"$d/hard/a/triple"
	ln "$d/hard/a/triple" "$d/hard/b/triple"
	ln "$d/hard/a/triple" "$d/hard/c/triple-third"

	# Sparse files: two 4 KiB islands in 64 MiB, only holes, data at the end.
	mkdir "$d/sparse"
	truncate -s 64M "$d/sparse/two-islands"
	pool_bytes 4096 | dd of="$d/sparse/two-islands" bs=4096 seek=256 conv=notrunc status=none
	pool_bytes 4096 | dd of="$d/sparse/two-islands" bs=4096 seek=12288 conv=notrunc status=none
	truncate -s 8M "$d/sparse/all-hole"
	truncate -s 16M "$d/sparse/tail-data"
	printf 'the end\n' | dd of="$d/sparse/tail-data" bs=1 seek=$(((16 << 20) - 8)) conv=notrunc status=none

	# Special files.
	mkdir "$d/special"
	mkfifo "$d/special/fifo"
	if [ "$AWKWARD_IS_ROOT" = 1 ]; then
		mknod "$d/special/char-1-3" c 1 3
		mknod "$d/special/block-7-0" b 7 0
	else
		awkward_skip "device nodes (not root)"
	fi
	if has_python; then
		(cd "$d/special" && python3 -c 'import socket; socket.socket(socket.AF_UNIX).bind("socket")')
	else
		awkward_skip "unix socket (no python3)"
	fi

	# Names: not UTF-8, newline, tab, spaces, leading dashes, backslashes,
	# glob and shell characters, control bytes, dots, 255 bytes.
	mkdir "$d/names"
	names=(
		$'not-utf8-\xff\xfe\x80'
		$'new\nline'
		$'tab\there'
		'with space'
		' leading space'
		'trailing space '
		'-leading-dash'
		'--help'
		'back\slash'
		'\'
		'*'
		'?'
		'[a-z]'
		"single'quote"
		'double"quote'
		'$HOME'
		$'ctrl\x01\x1f\x7f'
		'.hidden'
		'..dots'
		'...'
		'colon:name'
		'ünïcödé-✓'
		"$(printf 'n%.0s' $(seq 1 255))"
	)
	i=0
	for name in "${names[@]}"; do
		printf 'name %d\n' "$i" >"$d/names/$name"
		i=$((i + 1))
	done
	mkdir "$d/names/"$'dir\nwith newline'
	printf 'inside\n' >"$d/names/"$'dir\nwith newline'/$'\xff'

	# Modes. Ownership first: chown clears setuid and setgid.
	mkdir "$d/modes"
	for name in setuid setgid setuid-setgid sticky-file m0000 m0751 m0444 m0200 m0777 m0640; do
		printf '%s\n' "$name" >"$d/modes/$name"
	done
	mkdir "$d/modes/sticky-dir" "$d/modes/setgid-dir" "$d/modes/ro-dir" "$d/modes/m0000-dir" \
		"$d/modes/m0311-dir"
	printf 'in a read-only dir\n' >"$d/modes/ro-dir/file"
	mkdir "$d/modes/ro-dir/sub"
	printf 'in a mode 0000 dir\n' >"$d/modes/m0000-dir/file"
	printf 'in a 0311 dir\n' >"$d/modes/m0311-dir/file"
	if [ "$AWKWARD_IS_ROOT" = 1 ]; then
		mkdir "$d/owners"
		printf 'owned by 1234:5678\n' >"$d/owners/file"
		mkdir "$d/owners/dir"
		ln -s file "$d/owners/link"
		chown 1234:5678 "$d/owners/file" "$d/owners/dir" "$d/modes/setuid" "$d/modes/setgid"
		chown -h 4321:8765 "$d/owners/link"
		chown 65534:65534 "$d/modes/setuid-setgid"
	else
		awkward_skip "foreign owners (not root)"
	fi
	chmod 4755 "$d/modes/setuid"
	chmod 2755 "$d/modes/setgid"
	chmod 6750 "$d/modes/setuid-setgid"
	chmod 1644 "$d/modes/sticky-file"
	chmod 0751 "$d/modes/m0751"
	chmod 0444 "$d/modes/m0444"
	chmod 0777 "$d/modes/m0777"
	chmod 0640 "$d/modes/m0640"
	chmod 1777 "$d/modes/sticky-dir"
	chmod 2775 "$d/modes/setgid-dir"
	chmod 0555 "$d/modes/ro-dir/sub"
	chmod 0500 "$d/modes/ro-dir"
	if [ "$AWKWARD_IS_ROOT" = 1 ]; then
		chmod 0000 "$d/modes/m0000"
		chmod 0200 "$d/modes/m0200"
		chmod 0000 "$d/modes/m0000-dir"
		chmod 0311 "$d/modes/m0311-dir"
	else
		# A non-root backup could not read these.
		rm -rf "$d/modes/m0000" "$d/modes/m0200" "$d/modes/m0000-dir" "$d/modes/m0311-dir"
		awkward_skip "unreadable modes 0000, 0200 and 0311 (not root)"
	fi

	# Extended attributes, when the file system takes user.* ones.
	if setfattr -n user.keel.probe -v 1 "$d/files/text" 2>/dev/null; then
		AWKWARD_HAS_XATTR=1
		setfattr -x user.keel.probe "$d/files/text"
		setfattr -n user.keel.text -v 'hello world' "$d/files/4k"
		setfattr -n user.keel.binary -v 0x00ff00fe7f "$d/files/4k"
		setfattr -n user.keel.empty "$d/files/4k"
		setfattr -n user.keel.big -v "0x$(pool_bytes 3000 | od -An -v -tx1 | tr -d ' \n')" \
			"$d/files/one-byte"
		setfattr -n user.keel.dir -v 'on a directory' "$d/files"
		setfattr -n user.keel.link -v 'shared by hard links' "$d/hard/a/triple"
		setfattr -n user.keel.sparse -v 'sparse' "$d/sparse/two-islands"
		setfattr -n 'user.keel.odd name' -v $'\n' "$d/files/text"
	else
		awkward_skip "xattrs (file system refuses user.*)"
	fi

	# POSIX ACLs (system.posix_acl_access and _default), when supported.
	mkdir "$d/acl"
	printf 'acl\n' >"$d/acl/file"
	mkdir "$d/acl/dir"
	if setfacl -m u:1234:rw "$d/acl/file" 2>/dev/null; then
		AWKWARD_HAS_ACL=1
		setfacl -m u:1234:rw,g:5678:r,m::rw "$d/acl/file"
		setfacl -m u:1234:rwx,g:5678:rx "$d/acl/dir"
		setfacl -d -m u:1234:rx,g:5678:rx,o::- "$d/acl/dir"
	else
		awkward_skip "POSIX ACLs (file system refuses them)"
	fi

	# Times: every entry gets a fixed time with nanoseconds (so twin trees
	# match), then some get their own: before 1970, after 2038, odd ns.
	# -execdir reaches entries below PATH_MAX; -depth keeps directories last.
	PATH=/usr/local/bin:/usr/bin:/bin find "$d" -depth \
		-execdir touch -h -d '2020-02-29 12:34:56.987654321' {} +
	touch -d '2001-02-03 04:05:06.123456789' "$d/files/4k"
	touch -d '1965-06-07 08:09:10.5' "$d/files/one-byte"
	touch -d '2100-01-01 00:00:00.000000001' "$d/files/empty"
	touch -d '1970-01-01 00:00:00' "$d/files/text"
	touch -h -d '2010-10-10 10:10:10.101010101' "$d/links/relative"
	touch -h -d '1999-12-31 23:59:59.999999999' "$d/links/dangling"
	touch -d '2011-11-11 11:11:11.111111111' "$d/hard/a/triple"
	touch -d '2012-12-12 12:12:12.121212121' "$d/sparse/two-islands"
	touch -d '2005-05-05 05:05:05.050505050' "$d/modes/ro-dir"
	touch -d '2006-06-06 06:06:06.060606060' "$d/files"
	touch -d '2007-07-07 07:07:07.070707070' "$d"
	return 0
}

# ---- repositories side by side (keel mirror, keel copy) -----------------

# repo_objects DIR: every object of the local repository DIR (but locks,
# mirror states and temporary files) with its SHA-256, sorted by name
repo_objects()
{
	(cd "$1" && find config keys snapshots index data -type f ! -name '*.tmp.*' | sort |
		xargs sha256sum)
}

# mirror_json ARGS...: keel mirror --json, its summary in $TEST_DIR/summary
mirror_json()
{
	log "+ keel mirror --json $*"
	keel mirror --json "$@" >"$TEST_DIR/summary" 2>"$TEST_DIR/merr" ||
		fail "keel mirror $* failed: $(cat "$TEST_DIR/merr")"
	json_check <"$TEST_DIR/summary"
}

# summary_get KEY: KEY of the JSON summary in $TEST_DIR/summary
summary_get()
{
	json_get "$1" <"$TEST_DIR/summary"
}

# ---- waiting -----------------------------------------------------------

# poll CMD...: runs CMD every 50 ms until it succeeds. Fails after
# POLL_TRIES tries (600: 30 s), naming CMD and adding the content of the
# file POLL_LOG when one is set (a daemon's stderr).
poll()
{
	local i
	for ((i = 0; i < ${POLL_TRIES:-600}; i++)); do
		"$@" && return 0
		sleep 0.05
	done
	fail "timed out waiting for: $*${POLL_LOG:+ ($(cat "$POLL_LOG" 2>/dev/null))}"
}

# ---- a keel daemon (t60xx) -----------------------------------------------

# daemon_test_init: python3 (or skip), a repository without a cache,
# $STATE (made) and $CONF for the daemon, and poll for a minute, naming
# the daemon's messages when it times out
daemon_test_init()
{
	has_python || skip_or_die "python3 is needed to read JSON"
	export KEEL_NO_CACHE=1
	POLL_TRIES=1200
	POLL_LOG=$TEST_DIR/daemon.err
	keel_init >/dev/null
	STATE=$TEST_DIR/state
	CONF=$TEST_DIR/keel.conf
	mkdir -p "$STATE"
}

# free_port: a TCP port on 127.0.0.1 that is free now
free_port()
{
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_daemon: keel daemon --config $CONF --state-dir $STATE in the
# background ($DAEMON), its stderr in $TEST_DIR/daemon.err (emptied first)
start_daemon()
{
	: >"$TEST_DIR/daemon.err"
	"$KEEL" daemon --config "$CONF" --state-dir "$STATE" 2>"$TEST_DIR/daemon.err" &
	DAEMON=$!
	BG_PIDS+=("$DAEMON")
}

# stop_daemon: SIGTERM; it must exit 0
stop_daemon()
{
	local rc=0
	kill -TERM "$DAEMON"
	wait "$DAEMON" || rc=$?
	[ "$rc" = 0 ] || fail "the daemon exited $rc on SIGTERM: $(cat "$TEST_DIR/daemon.err")"
}

# ---- pausing a keel process at a point (src/util/testhook.c) ------------

# start_paused NAME CMD...: runs CMD in the background; the keel process it
# starts stops at pause point NAME. Waits until it got there (fails after
# 120 s or if the process ends first). Sets PAUSED_PID.
start_paused()
{
	local name=$1 i
	shift
	mkdir -p "$TEST_DIR/pause"
	rm -f "$TEST_DIR/pause/$name.reached" "$TEST_DIR/pause/$name.go"
	log "+ (paused at $name) $*"
	KEEL_TEST_PAUSE=$name KEEL_TEST_PAUSE_DIR=$TEST_DIR/pause "$@" &
	PAUSED_PID=$!
	BG_PIDS+=("$PAUSED_PID")
	for ((i = 0; i < 1200; i++)); do
		[ -e "$TEST_DIR/pause/$name.reached" ] && return 0
		kill -0 "$PAUSED_PID" 2>/dev/null || fail "$* ended before reaching $name"
		sleep 0.1
	done
	fail "$* did not reach $name"
}

# resume NAME: lets the paused process go on; wait for it with wait_paused
resume()
{
	touch "$TEST_DIR/pause/$1.go"
}

# wait_paused: exit status of the process start_paused started
wait_paused()
{
	local rc=0
	wait "$PAUSED_PID" || rc=$?
	return "$rc"
}

# drop_snapshot ID: keel forget ID, quietly
drop_snapshot()
{
	keel forget "$1" >/dev/null 2>&1 || fail "keel forget $1 failed"
}
