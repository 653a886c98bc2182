# shellcheck shell=bash
#
# tests/lib-nbd.sh: sourced after tests/lib.sh by the tests of keel image
# serve and of NBD sources (t8003..t8009). Real tools only: nbdkit (keel's
# plugin runs in it), libnbd's nbdcopy and nbdinfo, qemu-img, qemu-io,
# qemu-nbd, mkfs.ext4.
#
#   require_nbd_tools          skip (or fail under KEEL_TEST_REQUIRE_ALL) without them
#   make_ext4_image FILE SIZE  an ext4 image made by mkfs.ext4 -d from random files
#   serve_start NAME ARGS...   keel image serve ARGS... in the background, until it
#                              says it serves; its pid in SERVE_PID_<NAME>, its
#                              output in $TEST_DIR/serve-NAME.{out,err}
#   serve_stop NAME [SIGNAL]   SIGTERM (or SIGNAL), and it must exit 0
#   nbd_uri SOCKET             nbd+unix:///?socket=SOCKET

require_nbd_tools()
{
	local t
	for t in nbdkit nbdcopy nbdinfo qemu-img qemu-io qemu-nbd mkfs.ext4; do
		command -v "$t" >/dev/null || skip_or_die "$t missing (scripts/install-deps.sh)"
	done
	KEEL_NBDKIT_PLUGIN=${KEEL_NBDKIT_PLUGIN:-$(find_built src/nbdkit/nbdkit-keel-plugin.so || true)}
	[ -n "$KEEL_NBDKIT_PLUGIN" ] && [ -r "$KEEL_NBDKIT_PLUGIN" ] ||
		skip_or_die "keel's nbdkit plugin is not built (KEEL_NBDKIT_PLUGIN)"
	export KEEL_NBDKIT_PLUGIN
	# A sanitizer build's plugin needs the sanitizer's runtime in nbdkit,
	# which is not built with it: preloaded by a wrapper found first in PATH.
	if [ "$(nm -D "$KEEL_NBDKIT_PLUGIN" 2>/dev/null | grep -c ' U __asan_')" != 0 ]; then
		local rt
		rt=$(clang-14 -print-file-name=libclang_rt.asan-x86_64.so 2>/dev/null || true)
		[ -r "$rt" ] || skip_or_die "an ASan plugin needs clang-14's shared ASan runtime"
		mkdir -p "$TEST_DIR/bin"
		printf '#!/bin/sh\nLD_PRELOAD=%s ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 exec %s "$@"\n' \
			"$rt" "$(command -v nbdkit)" >"$TEST_DIR/bin/nbdkit"
		chmod +x "$TEST_DIR/bin/nbdkit"
		export PATH=$TEST_DIR/bin:$PATH
	fi
}

make_ext4_image()
{
	local img=$1 size=$2 d=$TEST_DIR/ext4-files.$RANDOM
	mkdir -p "$d/sub"
	head -c 1500000 /dev/urandom >"$d/big"
	head -c 300000 /dev/urandom >"$d/sub/small"
	seq 1 30000 >"$d/text"
	truncate -s "$size" "$img"
	expect_success mkfs.ext4 -q -F -b 4096 -d "$d" "$img"
	sync "$img"
}

nbd_uri()
{
	printf 'nbd+unix:///?socket=%s' "$1"
}

serve_start()
{
	local name=$1 i pid
	shift
	# "$KEEL" itself, not the keel function: $! must be its pid, for the signals
	"$KEEL" image serve "$@" >"$TEST_DIR/serve-$name.out" 2>"$TEST_DIR/serve-$name.err" &
	pid=$!
	BG_PIDS+=("$pid")
	printf -v "SERVE_PID_$name" '%s' "$pid"
	for i in $(seq 1 300); do
		grep -q serving "$TEST_DIR/serve-$name.out" 2>/dev/null && return 0
		kill -0 "$pid" 2>/dev/null ||
			fail "keel image serve $* exited: $(cat "$TEST_DIR/serve-$name.err")"
		sleep 0.1
	done
	fail "keel image serve $* did not start serving in 30 s"
}

serve_stop()
{
	local name=$1 sig=${2:-TERM} var rc=0
	var=SERVE_PID_$name
	kill -"$sig" "${!var}"
	wait "${!var}" || rc=$?
	[ "$rc" = 0 ] || fail "keel image serve ($name) exited $rc on SIG$sig: $(cat "$TEST_DIR/serve-$name.err")"
}
