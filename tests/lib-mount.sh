# shellcheck shell=bash
#
# tests/lib-mount.sh: keel mount in tests (sourced after tests/lib.sh).
#   require_fuse            skip (77) where /dev/fuse or fusermount3 is missing
#   mount_start MNT ARGS... keel mount MNT in the background; waits until it
#                           is mounted; MOUNT_PID is its pid
#   mount_stop_wait         waits for MOUNT_PID and checks that it exited 0
#                           and left MNT unmounted
#   is_mounted DIR          DIR is a mount point (from mountinfo: root cannot
#                           stat a FUSE mount of another user's without
#                           allow_other, so mountpoint(1) would say no)
# A test that fails while mounted leaves no mount behind: the EXIT trap
# unmounts first.

MOUNT_DIR=
MOUNT_PID=

require_fuse()
{
	[ -c /dev/fuse ] || skip_or_die "no /dev/fuse"
	command -v fusermount3 >/dev/null || skip_or_die "fusermount3 missing (Debian: fuse3)"
}

is_mounted()
{
	awk -v m="$1" '$5 == m { found = 1 } END { exit !found }' /proc/self/mountinfo
}

mount_cleanup()
{
	if [ -n "$MOUNT_DIR" ] && is_mounted "$MOUNT_DIR"; then
		fusermount3 -u -z "$MOUNT_DIR" 2>/dev/null || umount -l "$MOUNT_DIR" 2>/dev/null || true
	fi
}
trap 'rc=$?; set +e; mount_cleanup; (exit $rc); cleanup' EXIT

mount_start()
{
	local mnt=$1
	shift
	MOUNT_DIR=$mnt
	mkdir -p "$mnt"
	log "+ keel mount $mnt $* &"
	# SIGINT stays deliverable (a background job of a script ignores it otherwise)
	env --default-signal=INT "$KEEL" mount "$mnt" "$@" 2>>"$TEST_DIR/mount.err" &
	MOUNT_PID=$!
	BG_PIDS+=("$MOUNT_PID")
	for _ in $(seq 1 200); do
		is_mounted "$mnt" && return 0
		kill -0 "$MOUNT_PID" 2>/dev/null || break
		sleep 0.1
	done
	cat "$TEST_DIR/mount.err" >&9
	fail "keel mount $mnt did not mount"
}

mount_stop_wait()
{
	local rc=0
	for _ in $(seq 1 200); do
		kill -0 "$MOUNT_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$MOUNT_PID" 2>/dev/null && fail "keel mount is still running after its unmount"
	wait "$MOUNT_PID" || rc=$?
	[ "$rc" = 0 ] || {
		cat "$TEST_DIR/mount.err" >&9
		fail "keel mount exited $rc, expected 0"
	}
	! is_mounted "$MOUNT_DIR" || fail "$MOUNT_DIR is still mounted"
}
