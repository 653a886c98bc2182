#!/usr/bin/env bash
# keel db check: the log's continuity (a gap is flagged, exit 24, and
# db list says so too) and the data of what is new since the last check
# (remembered in the cache directory): a second check reads nothing, one after a new record reads
# only it, --all reads everything and finds damage (exit 13).
. "$(dirname "$0")/../lib.sh"
. "$KEEL_SOURCE_ROOT/tests/lib-pg.sh"
require_keel
pg_require
export KEEL_CACHE_DIR=$TEST_DIR/cache

keel_init
pg_init origin
pg_start origin
conn=$(pg_conninfo origin)
pg_sql origin "CREATE TABLE orders (id int PRIMARY KEY, item text);
	INSERT INTO orders SELECT g, 'before-' || g FROM generate_series(1, 2000) g;"
expect_success keel db backup "$conn" --name shop >/dev/null
stop=$(keel db list --json | json_get stop_lsn)
first=$(pg_sql origin "SELECT pg_walfile_name('$stop')")

# push_to: wal-push every completed segment from the base backup's on
# that was not pushed before
last=
push_to()
{
	local cur seg
	cur=$(pg_sql origin "SELECT pg_walfile_name(pg_current_wal_lsn())")
	for seg in $(cd "$TEST_DIR/pg/origin/data/pg_wal" && ls | grep -E '^[0-9A-F]{24}$' | sort); do
		[ ! "$seg" \< "$first" ] && [ "$seg" \> "$last" ] && [ "$seg" \< "$cur" ] || continue
		expect_success keel db wal-push "$TEST_DIR/pg/origin/data/pg_wal/$seg" --name shop >/dev/null
		last=$seg
	done
}
for i in 1 2 3; do
	pg_sql origin "INSERT INTO orders SELECT g, 'b$i' FROM generate_series($i * 10000, $i * 10000 + 99) g; SELECT pg_switch_wal()" >/dev/null
done
push_to
n=$(snapshot_count)
[ "$n" -ge 4 ] || fail "expected a base backup and at least 3 records, got $n"

check_json()
{
	keel --json db check shop "$@" >"$TEST_DIR/check.json" 2>"$TEST_DIR/check.err" || return $?
}
expect_success check_json
[ "$(keel db list --json | json_get wal_gaps)" = 0 ] || fail "db list --json: wal_gaps is not 0"
[ "$(json_get verified <"$TEST_DIR/check.json")" = "$n" ] || fail "the first check did not read all $n: $(cat "$TEST_DIR/check.json")"
[ "$(json_get gaps <"$TEST_DIR/check.json")" = 0 ] || fail "gaps in a continuous log: $(cat "$TEST_DIR/check.err")"
ls "$KEEL_CACHE_DIR"/db-check/*/shop >/dev/null || fail "no state file in the cache directory"
expect_success check_json
[ "$(json_get verified <"$TEST_DIR/check.json")" = 0 ] || fail "the second check read again: $(cat "$TEST_DIR/check.json")"

# one new segment: only it is read
pg_sql origin "INSERT INTO orders VALUES (99999, 'new'); SELECT pg_switch_wal()" >/dev/null
push_to
expect_success check_json
[ "$(json_get verified <"$TEST_DIR/check.json")" = 1 ] || fail "expected one new record read: $(cat "$TEST_DIR/check.json")"
[ "$(json_get snapshots <"$TEST_DIR/check.json")" = $((n + 1)) ] || fail "snapshot count: $(cat "$TEST_DIR/check.json")"

# a record in the middle forgotten: a gap, exit 24, the range named
mid=$(snapshot_ids | sed -n 3p)
expect_success keel forget "$mid" >/dev/null
expect_error 24 'gap on timeline 1 from [0-9A-F]*/[0-9A-F]* to [0-9A-F]*/[0-9A-F]*' keel db check shop
keel db list >"$TEST_DIR/list"
grep -q "^  WAL has 1 gap: see 'keel db check shop'$" "$TEST_DIR/list" || fail "db list does not flag the gap: $(cat "$TEST_DIR/list")"
[ "$(keel db list --json | json_get wal_gaps)" = 1 ] || fail "db list --json: wal_gaps is not 1"
keel db check shop >"$TEST_DIR/check.out" 2>/dev/null || true
grep -q '^database shop: .* 1 gap, 0 damaged$' "$TEST_DIR/check.out" || fail "unexpected summary: $(cat "$TEST_DIR/check.out")"

# damage in the base backup's data: the incremental check does not read
# it again (exit 24 for the gap only), --all does (exit 13)
pack=$(repo_files data | largest)
flip_byte "$pack" $(($(file_size "$pack") / 2))
expect_exit 24 keel db check shop
expect_error 13 'damaged' keel db check shop --all
expect_error 14 "no database 'nope'" keel db check nope
