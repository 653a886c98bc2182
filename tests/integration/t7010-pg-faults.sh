#!/usr/bin/env bash
# keel db against a PostgreSQL 15 that cannot give what keel needs, and a
# repository that fills up mid-stream (issue 15, "Bad input and faults"):
# no free replication slot (a clear message, exit 23, nothing stored), no
# free walsender (exit 22), and a full disk while streaming: exit 21,
# the slot confirmed only up to what is stored, so once there is room
# again the stream resumes with no gap and a restore has every row.
. "$(dirname "$0")/../lib.sh"
. "$KEEL_SOURCE_ROOT/tests/lib-pg.sh"
require_keel
pg_require

# ---- no free slot, no free walsender -----------------------------------------------
keel_init >/dev/null
pg_init tight "max_replication_slots = 1" "max_wal_senders = 2"
pg_start tight
tconn=$(pg_conninfo tight)
pg_sql tight "SELECT pg_create_physical_replication_slot('someone_else')" >/dev/null
expect_error 23 'replication slot' keel db stream "$tconn" --name tight
[ "$(snapshot_count)" = 0 ] || fail "a refused stream stored something"
# both walsenders busy (two idle replication connections), so a base backup cannot start
for i in 1 2; do
	as_pg "$PG_BIN/psql" -X -q "$tconn dbname=postgres replication=database" \
		-c "SELECT pg_sleep(60)" >/dev/null 2>&1 &
	BG_PIDS+=($!)
done
for ((i = 0; i < 100; i++)); do
	[ "$(pg_sql tight "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender'")" -ge 2 ] && break
	sleep 0.1
done
expect_error 22 'max_wal_senders' keel db backup "$tconn" --name tight
pg_stop tight

# ---- a full repository mid-stream -------------------------------------------------------
if [ "${KEEL_TEST_BACKEND:-local}" = s3 ]; then
	skip_or_die "the full repository part runs on a local tmpfs only"
fi
[ "$(id -u)" = 0 ] || skip_or_die "needs root to mount a small tmpfs"
SMALL=$TEST_DIR/small
mkdir -p "$SMALL"
mount -t tmpfs -o size=24m tmpfs "$SMALL" 2>/dev/null || skip_or_die "cannot mount a tmpfs here"
trap 'rc=$?; pg_cleanup; umount "$SMALL" 2>/dev/null; set +e; (exit $rc); cleanup' EXIT
export KEEL_REPOSITORY=$SMALL/repo
keel_init --compression 0 >/dev/null

pg_init origin
pg_start origin
conn=$(pg_conninfo origin)
pg_sql origin "CREATE TABLE t (id int PRIMARY KEY, pad text)"
expect_success keel db backup "$conn" --name shop >/dev/null
"$KEEL" db stream "$conn" --name shop >"$TEST_DIR/stream.out" 2>"$TEST_DIR/stream.err" &
stream=$!
BG_PIDS+=("$stream")
# incompressible rows until the stream stops for lack of room
for ((b = 0; b < 40; b++)); do
	kill -0 "$stream" 2>/dev/null || break
	pg_sql origin "INSERT INTO t SELECT g, md5(random()::text) || repeat(md5(random()::text), 30)
		FROM generate_series($b * 2000, $b * 2000 + 1999) g"
	sleep 0.2
done
rc=0
wait "$stream" || rc=$?
cat "$TEST_DIR/stream.err" >&9
[ "$rc" = 21 ] || fail "a stream into a full repository exited $rc, expected 21"
grep -qi -e 'no space' -e 'full' "$TEST_DIR/stream.err" || fail "the message does not say the storage is full"
expect_success keel check >/dev/null

# room again: the slot kept what keel had not stored; the stream resumes without a gap
mount -o remount,size=256m "$SMALL"
pg_sql origin "INSERT INTO t VALUES (-1, 'after the disk was full')"
"$KEEL" db stream "$conn" --name shop >"$TEST_DIR/stream2.out" 2>"$TEST_DIR/stream2.err" &
stream=$!
BG_PIDS+=("$stream")
want=$(pg_sql origin "SELECT pg_current_wal_flush_lsn()")
for ((i = 0; i < 300; i++)); do
	got=$(keel db list --json 2>/dev/null | json_get wal_stop_lsn || true)
	[ -n "$got" ] && [ "$(lsn_num "$got")" -ge "$(lsn_num "$want")" ] && break
	kill -0 "$stream" 2>/dev/null || fail "the stream ended: $(cat "$TEST_DIR/stream2.err")"
	sleep 0.1
done
kill -TERM "$stream"
wait "$stream" || fail "db stream exited $? on SIGTERM after the disk had room"
expect_success keel db check shop >/dev/null
pg_sql origin "SELECT id, pad FROM t ORDER BY id" >"$TEST_DIR/rows-expected"
expect_success keel db restore shop --target "$TEST_DIR/pg/restored-data" --latest >/dev/null
pg_register restored
pg_start restored "$TEST_DIR/pg/restored-data"
pg_sql restored "SELECT id, pad FROM t ORDER BY id" >"$TEST_DIR/rows-restored"
cmp -s "$TEST_DIR/rows-expected" "$TEST_DIR/rows-restored" ||
	fail "the restore after a full disk lacks rows ($(wc -l <"$TEST_DIR/rows-restored") of $(wc -l <"$TEST_DIR/rows-expected"))"
pg_stop restored
