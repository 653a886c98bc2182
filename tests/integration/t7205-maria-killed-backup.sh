#!/usr/bin/env bash
# keel killed (SIGKILL) in the middle of `keel db backup mariadb://...`:
# while mariabackup streams (a few files stored), after a pack was written,
# and just before the snapshot is written. Each time no snapshot claims a
# base backup, the orphaned mariabackup ends (its pipe is gone) and does
# not hold the server's backup lock, and `keel check` passes; the next
# backup completes and restores to exactly the rows committed before it.
. "$(dirname "$0")/../lib.sh"
. "$KEEL_SOURCE_ROOT/tests/lib-maria.sh"
require_keel
maria_require
command -v mariabackup >/dev/null || skip_or_die "mariabackup is not installed (mariadb-backup)"
command -v pgrep >/dev/null || skip_or_die "no pgrep (procps)"

keel_init
maria_init src
maria_start src
uri=$(maria_uri src)
# some megabytes of rows that do not compress, beside the server's own files
maria_sql src "CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY, pad BLOB) ENGINE=InnoDB"
for ((i = 0; i < 8; i++)); do
	maria_sql src "INSERT INTO shop.t SELECT seq + $((i * 1000)), RANDOM_BYTES(1024) FROM shop.seq_1_to_1000" 2>/dev/null ||
		maria_sql src "INSERT INTO shop.t SELECT seq + $((i * 1000)), UNHEX(SHA2(RAND(), 512)) FROM shop.seq_1_to_1000"
done
rows()
{
	maria_sql "$1" "SELECT id, SHA1(pad) FROM shop.t ORDER BY id"
}

base_backups()
{
	keel db list --json | python3 -c '
import json, sys
print(sum(len(d.get("base_backups", [])) for d in json.load(sys.stdin)))'
}

for point in maria-backup-file pack-written before-snapshot; do
	start_paused "$point" "$KEEL" db backup "$uri" --name shop
	mb=$(pgrep -P "$PAUSED_PID" -x mariabackup || true)
	kill -9 "$PAUSED_PID"
	rc=0
	wait "$PAUSED_PID" 2>/dev/null || rc=$?
	[ "$rc" = 137 ] || fail "keel killed at $point exited $rc, not 137"
	log "killed at $point (mariabackup: ${mb:-done})"
	# the orphan sees its pipe closed and ends, releasing BACKUP STAGE
	for ((i = 0; i < 600 && ${#mb} > 0; i++)); do
		kill -0 "$mb" 2>/dev/null || break
		sleep 0.1
	done
	[ -z "$mb" ] || ! kill -0 "$mb" 2>/dev/null ||
		fail "mariabackup ($mb) still runs 60 s after keel was killed at $point"
	expect_success keel check >/dev/null
	[ "$(base_backups)" = 0 ] || fail "a backup killed at $point left a base backup"
	[ "$(keel snapshots --json | json_get id | wc -l)" = 0 ] ||
		fail "a backup killed at $point left a snapshot"
	# the server is not left in a backup stage: a write goes through at once
	timeout 20 mariadb --no-defaults -S "$(maria_socket src)" -u root \
		-e "INSERT INTO shop.t VALUES (100000 + ${#point}, 'after')" ||
		fail "the server blocks writes after keel was killed at $point"
done

maria_sql src "INSERT INTO shop.t VALUES (200000, 'last')"
rows src >"$TEST_DIR/want"
expect_success keel db backup "$uri" --name shop >/dev/null
[ "$(base_backups)" = 1 ] || fail "the backup after the kills did not save a base backup"
expect_success keel check >/dev/null
expect_success keel db check shop >/dev/null
maria_register r1
expect_success keel db restore shop --target "$TEST_DIR/r1" --latest >/dev/null
maria_start r1 "$TEST_DIR/r1"
rows r1 >"$TEST_DIR/got"
cmp "$TEST_DIR/want" "$TEST_DIR/got" || fail "the restored rows differ from the source's"
