#!/usr/bin/env bash
# keel's keel-mariabackup-XXXXXX directory (mariabackup's --target-dir)
# does not outlive keel: killed with SIGKILL while mariabackup streams,
# keel leaves nothing in $TMPDIR (the directory goes once the stream
# flows). Killed before that, the directory stays until the next backup,
# which removes it; one that a live process holds (its flock) stays.
. "$(dirname "$0")/../lib.sh"
. "$KEEL_SOURCE_ROOT/tests/lib-maria.sh"
require_keel
maria_require
command -v mariabackup >/dev/null || skip_or_die "mariabackup is not installed (mariadb-backup)"
command -v flock >/dev/null || skip_or_die "no flock (util-linux)"

keel_init
maria_init src
maria_start src
uri=$(maria_uri src)
maria_sql src "CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY, pad BLOB) ENGINE=InnoDB"
maria_sql src "INSERT INTO shop.t SELECT seq, REPEAT('x', 1000) FROM shop.seq_1_to_2000"

# keel's temporary files here only, so that what is left is keel's
tmp=$TEST_DIR/tmp
mkdir "$tmp"
left()
{
	find "$tmp" -mindepth 1 -maxdepth 1 -name 'keel-mariabackup-*' ! -name '*live*' | sort
}

# killed at its start: before mariabackup, the directory exists
TMPDIR=$tmp start_paused maria-tmpdir "$KEEL" db backup "$uri" --name shop
[ -n "$(left)" ] || fail "no keel-mariabackup directory while keel waits at its start"
stale=$(left)
kill -9 "$PAUSED_PID"
wait "$PAUSED_PID" 2>/dev/null || true
[ "$(left)" = "$stale" ] || fail "expected '$stale' left by the kill, found '$(left)'"

# a live keel's directory, as another backup holds it
mkdir "$tmp/keel-mariabackup-live01"
exec {live}<"$tmp/keel-mariabackup-live01"
flock -n "$live" || fail "cannot lock keel-mariabackup-live01"

# the next backup removes the stale one, and its own
TMPDIR=$tmp expect_success keel db backup "$uri" --name shop >/dev/null
[ -z "$(left)" ] || fail "left after the next backup: $(left)"
[ -d "$tmp/keel-mariabackup-live01" ] || fail "a backup removed a directory a live process holds"

# killed while mariabackup streams: nothing is left, at once
TMPDIR=$tmp start_paused maria-backup-file "$KEEL" db backup "$uri" --name shop
mb=$(pgrep -P "$PAUSED_PID" -x mariabackup || true)
kill -9 "$PAUSED_PID"
wait "$PAUSED_PID" 2>/dev/null || true
[ -z "$(left)" ] || fail "keel killed while mariabackup streamed left $(left)"
# the orphan ends on its closed pipe, and writes nothing there either
for ((i = 0; i < 600 && ${#mb} > 0; i++)); do
	kill -0 "$mb" 2>/dev/null || break
	sleep 0.1
done
[ -z "$(left)" ] || fail "left after the orphaned mariabackup ended: $(left)"
exec {live}<&-
expect_success keel check >/dev/null
