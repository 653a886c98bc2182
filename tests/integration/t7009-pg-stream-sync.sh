#!/usr/bin/env bash
# keel db stream --synchronous with synchronous_standby_names = 'keel':
# the server counts keel as its synchronous standby, a commit with
# synchronous_commit = on returns only once keel stored it (the
# repository holds the commit's LSN the moment it returns), and a commit
# waits while keel is stopped (SIGSTOP) until it runs again.
. "$(dirname "$0")/../lib.sh"
. "$KEEL_SOURCE_ROOT/tests/lib-pg.sh"
require_keel
pg_require

keel_init
pg_init origin
pg_start origin
conn=$(pg_conninfo origin)
pg_sql origin "CREATE TABLE orders (id int PRIMARY KEY, item text)"
expect_success keel db backup "$conn" --name shop >/dev/null

stored()
{
	lsn_num "$(keel db list --json | json_get wal_stop_lsn)"
}

"$KEEL" db stream "$conn" --name shop --synchronous >"$TEST_DIR/stream.out" 2>"$TEST_DIR/stream.err" &
stream=$!
BG_PIDS+=("$stream")
for ((i = 0; i < 100; i++)); do
	state=$(pg_sql origin "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'keel'")
	[ -n "$state" ] && break
	kill -0 "$stream" 2>/dev/null || fail "the stream ended: $(cat "$TEST_DIR/stream.err")"
	sleep 0.1
done
[ "$state" = async ] || fail "keel streams as '$state' before it is named"
# named now: with no standby streaming, every commit before would have waited
pg_sql origin "ALTER SYSTEM SET synchronous_standby_names = 'keel'" >/dev/null
pg_sql origin "SELECT pg_reload_conf()" >/dev/null
for ((i = 0; i < 100; i++)); do
	state=$(pg_sql origin "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'keel'")
	[ "$state" = sync ] && break
	sleep 0.1
done
[ "$state" = sync ] || fail "keel is not the synchronous standby: $(pg_sql origin 'SELECT application_name, state, sync_state, sync_priority, flush_lsn, write_lsn FROM pg_stat_replication')"

# each commit is stored when it returns
for i in 1 2 3 4 5; do
	# the WAL position inside the transaction, after its insert: the commit
	# record ends past it (the flush position read afterwards may hold other
	# WAL written since, by the server itself)
	want=$(lsn_num "$(pg_sql origin "SET synchronous_commit = on; BEGIN;
		INSERT INTO orders VALUES ($i, 'sync-$i'); SELECT pg_current_wal_insert_lsn(); COMMIT;")")
	got=$(stored)
	[ "$got" -ge "$want" ] || fail "commit $i returned before keel stored it ($got < $want)"
done

# keel stopped: a commit waits; it goes on once keel runs again
kill -STOP "$stream"
pg_sql origin "SET synchronous_commit = on; INSERT INTO orders VALUES (100, 'waits')" &
commit=$!
sleep 1.5
kill -0 "$commit" 2>/dev/null || fail "the commit returned while keel was stopped"
kill -CONT "$stream"
wait "$commit" || fail "the commit failed"
[ "$(pg_sql origin "SELECT item FROM orders WHERE id = 100")" = waits ] || fail "row 100 missing"

kill -TERM "$stream"
rc=0
wait "$stream" || rc=$?
[ "$rc" = 0 ] || fail "db stream exited $rc: $(cat "$TEST_DIR/stream.err")"
