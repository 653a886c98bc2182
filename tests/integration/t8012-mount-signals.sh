#!/usr/bin/env bash
# keel mount ends cleanly: SIGINT and SIGTERM unmount and exit 0, also
# while a file is being read (the reader gets its data or an error, never
# a hang); --allow-other lets another user read with the recorded modes
# checked; a user other than root mounts and unmounts through fusermount3;
# a mount point that is not a directory is refused before any password is
# asked for.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-mount.sh"
require_keel
require_fuse

MNT=$TEST_DIR/mnt
keel_init
chmod 0755 "$TEST_DIR" # the path to the files, as recorded, open to others too
mkdir -p "$TEST_DIR/src/private"
head -c 8000000 /dev/urandom >"$TEST_DIR/src/big"
printf 'for everyone\n' >"$TEST_DIR/src/public"
printf 'secret\n' >"$TEST_DIR/src/private/secret"
chmod 0700 "$TEST_DIR/src/private"
chmod 0644 "$TEST_DIR/src/public"
expect_success keel backup "$TEST_DIR/src" >/dev/null
S=$MNT/snapshots/latest$TEST_DIR/src

# SIGINT, after a read
mount_start "$MNT"
cmp "$TEST_DIR/src/big" "$S/big" || fail "big differs"
kill -INT "$MOUNT_PID"
mount_stop_wait

# SIGTERM while a reader is in the middle of a file
mount_start "$MNT"
(exec 3<"$S/big" && head -c 100000 <&3 >/dev/null && sleep 1 && cat <&3 >/dev/null) 2>/dev/null &
reader=$!
sleep 0.3
kill -TERM "$MOUNT_PID"
mount_stop_wait
wait "$reader" || true # it ends, one way or the other

# --json says where it is mounted, with how many snapshots
mkdir -p "$MNT"
keel --json mount "$MNT" >"$TEST_DIR/json" 2>/dev/null &
MOUNT_PID=$!
BG_PIDS+=("$MOUNT_PID")
for _ in $(seq 1 200); do is_mounted "$MNT" && break; sleep 0.1; done
is_mounted "$MNT" || fail "keel --json mount did not mount"
expect_success fusermount3 -u "$MNT"
mount_stop_wait
json_check <"$TEST_DIR/json"
[ "$(json_get snapshots <"$TEST_DIR/json")" = 1 ] || fail "--json: $(cat "$TEST_DIR/json")"

# --allow-other: another user reads what the modes let them, and no more
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	mount_start "$MNT" --allow-other
	[ "$(as_nobody cat "$S/public")" = "for everyone" ] || fail "nobody cannot read a 0644 file"
	! as_nobody cat "$S/private/secret" 2>/dev/null || fail "nobody read a file in a 0700 directory"
	expect_success fusermount3 -u "$MNT"
	mount_stop_wait
	mount_start "$MNT"
	! as_nobody ls "$MNT" >/dev/null 2>&1 || fail "without --allow-other another user got in"
	expect_success fusermount3 -u "$MNT"
	mount_stop_wait
else
	log "NOTE: $TEST_NAME: not root: --allow-other was not tried"
fi

# a user other than root mounts through the setuid fusermount3, and a
# signal unmounts through it too
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null && [ -u "$(command -v fusermount3)" ]; then
	nb=$TEST_DIR/nobody
	mkdir -p "$nb/mnt"
	cp -a "$KEEL_REPOSITORY" "$nb/repo"
	cp "$KEEL_PASSWORD_FILE" "$nb/password"
	chown -R 65534:65534 "$nb"
	# exec: MOUNT_PID is keel's own pid, which the signal must reach
	(KEEL_REPOSITORY=$nb/repo KEEL_PASSWORD_FILE=$nb/password HOME=$nb exec setpriv \
		--reuid=65534 --regid=65534 --clear-groups -- "$KEEL" mount "$nb/mnt" \
		>/dev/null 2>>"$TEST_DIR/mount.err") &
	MOUNT_PID=$!
	BG_PIDS+=("$MOUNT_PID")
	MOUNT_DIR=$nb/mnt
	for _ in $(seq 1 200); do is_mounted "$nb/mnt" && break; sleep 0.1; done
	is_mounted "$nb/mnt" || fail "nobody could not mount"
	! ls "$nb/mnt" >/dev/null 2>&1 || fail "root got into nobody's mount without --allow-other"
	[ "$(as_nobody cat "$nb/mnt/snapshots/latest$TEST_DIR/src/public")" = "for everyone" ] ||
		fail "nobody cannot read its own mount"
	kill -TERM "$MOUNT_PID"
	mount_stop_wait
else
	log "NOTE: $TEST_NAME: not root or no setuid fusermount3: a user's own mount was not tried"
fi

# a mount point that is not a directory: refused at once (exit 1)
touch "$TEST_DIR/file"
expect_error 1 "mount point" keel mount "$TEST_DIR/file"
expect_error 1 "mount point" keel mount "$TEST_DIR/missing"
