#!/usr/bin/env bash
# The repository on a small file system (a tmpfs of a few MiB) that fills
# during `keel db backup mariadb://...` and during `keel db stream`: keel
# exits 21 (no space left) saying so, leaves no snapshot that claims what
# it did not store and no temporary file, and `keel check` passes. Once
# there is room, the backup completes, the stream restarted continues
# where the stored binary log ends (`keel db check` finds no gap), and a
# restore holds every row.
. "$(dirname "$0")/../lib.sh"
. "$KEEL_SOURCE_ROOT/tests/lib-maria.sh"
require_keel
maria_require
command -v mariabackup >/dev/null || skip_or_die "mariabackup is not installed (mariadb-backup)"
[ "$(id -u)" = 0 ] || skip_or_die "needs root to mount a small tmpfs for the repository"
SMALL=$TEST_DIR/small
mkdir -p "$SMALL"
mount -t tmpfs -o size=4m tmpfs "$SMALL" 2>/dev/null || skip_or_die "cannot mount a tmpfs here"
# stop the servers first, then unmount, then lib.sh's cleanup
trap 'rc=$?; maria_cleanup; umount "$SMALL" 2>/dev/null; set +e; (exit $rc); cleanup' EXIT
export KEEL_REPOSITORY=$SMALL/repo
keel_init

maria_init src
maria_start src
uri=$(maria_uri src)
maria_sql src "CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY, pad BLOB) ENGINE=InnoDB"
# rows that do not compress: the base backup needs far more than 4 MiB
fill()
{
	maria_sql src "INSERT INTO shop.t SELECT seq + $1, RANDOM_BYTES(1024) FROM shop.seq_1_to_$2"
}
fill 0 6000
rows()
{
	maria_sql "$1" "SELECT id, SHA1(pad) FROM shop.t ORDER BY id"
}
no_tmp()
{
	! find "$KEEL_REPOSITORY" -name '*.tmp.*' | grep -q . ||
		fail "temporary files left after ENOSPC ($1): $(find "$KEEL_REPOSITORY" -name '*.tmp.*')"
}

# 1. the base backup does not fit
rc=0
keel db backup "$uri" --name shop >/dev/null 2>"$TEST_DIR/backup.err" || rc=$?
cat "$TEST_DIR/backup.err" >&2
[ "$rc" = 21 ] || fail "a MariaDB backup into a full repository exited $rc, not 21"
grep -qi 'no space' "$TEST_DIR/backup.err" || fail "the message does not say the disk is full"
[ "$(keel snapshots --json | json_get id | wc -l)" = 0 ] || fail "the failed backup left a snapshot"
no_tmp backup
expect_success keel check >/dev/null
mount -o remount,size=256m "$SMALL"
expect_success keel db backup "$uri" --name shop >/dev/null
expect_success keel check >/dev/null

# 2. the stream fills it: room for about 2 MiB more, 8 MiB of binary log to store
used=$(df -k --output=used "$SMALL" | tail -1)
mount -o remount,size=$((used + 2048))k "$SMALL"
"$KEEL" db stream "$uri" --name shop >"$TEST_DIR/stream.out" 2>"$TEST_DIR/stream.err" &
stream=$!
BG_PIDS+=("$stream")
for i in 1 2 3 4 5 6 7 8; do
	fill $((i * 10000)) 1000
done
rc=0
for ((i = 0; i < 600; i++)); do
	kill -0 "$stream" 2>/dev/null || break
	sleep 0.1
done
kill -0 "$stream" 2>/dev/null && fail "db stream still runs 60 s after the repository filled: $(cat "$TEST_DIR/stream.err")"
wait "$stream" || rc=$?
cat "$TEST_DIR/stream.err" >&2
[ "$rc" = 21 ] || fail "db stream on a full repository exited $rc, not 21"
grep -qi 'no space' "$TEST_DIR/stream.err" || fail "the stream's message does not say the disk is full"
no_tmp stream
mount -o remount,size=256m "$SMALL"
expect_success keel check >/dev/null

# 3. restarted with room, it continues with no gap, up to the server's end
fill 100000 100
rows src >"$TEST_DIR/want"
want=$(maria_sql src "SHOW MASTER STATUS" | awk '{print $1 ":" $2}')
"$KEEL" db stream "$uri" --name shop >"$TEST_DIR/stream2.out" 2>"$TEST_DIR/stream2.err" &
stream=$!
BG_PIDS+=("$stream")
for ((i = 0; i < 600; i++)); do
	[ "$(keel db list --json 2>/dev/null | json_get log_position || true)" = "$want" ] && break
	kill -0 "$stream" 2>/dev/null || fail "the restarted stream ended: $(cat "$TEST_DIR/stream2.err")"
	sleep 0.1
done
kill -TERM "$stream"
wait "$stream" || fail "the restarted stream exited $? on SIGTERM: $(cat "$TEST_DIR/stream2.err")"
[ "$(keel db list --json | json_get log_position)" = "$want" ] ||
	fail "the restarted stream did not store up to $want"
expect_success keel db check shop
expect_success keel check >/dev/null
maria_register r1
expect_success keel db restore shop --target "$TEST_DIR/r1" --position "$want" >/dev/null
maria_start r1 "$TEST_DIR/r1"
rows r1 >"$TEST_DIR/got"
cmp "$TEST_DIR/want" "$TEST_DIR/got" || fail "the restore after the full disk lacks rows"
