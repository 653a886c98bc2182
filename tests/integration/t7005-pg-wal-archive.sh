#!/usr/bin/env bash
# keel db wal-push as archive_command and keel db wal-get as
# restore_command: an archiving server stores each completed segment as a
# log record (once: pushing the same bytes again stores nothing, other
# bytes under a stored name are refused), and a restored data directory
# whose pg_wal is empty recovers to a time through wal-get alone.
# With KEEL_TEST_BACKEND=s3 (t7005-pg-wal-archive-s3) the repository is in
# a bucket of the Ceph gateway and the server has no AWS_* variable: the
# key pair reaches archive_command and restore_command through keel's
# configuration file (KEEL_CONFIG, mode 0600, the server's user's), whose
# path alone is in the command; the secret is in no argv and no
# postgresql.conf.
. "$(dirname "$0")/../lib.sh"
. "$KEEL_SOURCE_ROOT/tests/lib-pg.sh"
require_keel
pg_require

# the server's user runs archive_command: the repository, its password
# file and keel's cache are that user's, and every keel command runs as it
R=$TEST_DIR/pg/repo
P=$TEST_DIR/pg/password
C=$TEST_DIR/pg/cache
K=$TEST_DIR/pg/keel-config
# owned by the server's user, mode 0600: keel refuses secrets others may read
private_copy()
{
	as_pg cp "$1" "$2" 2>/dev/null || { as_pg tee "$2" <"$1" >/dev/null; }
	chmod 600 "$2"
	[ "$(id -u)" != 0 ] || chown postgres: "$2"
}
cp "$KEEL_PASSWORD_FILE" "$P.tmp"
private_copy "$P.tmp" "$P"
s3=
if [ "${KEEL_TEST_BACKEND:-local}" = s3 ]; then
	s3=1
	R=$KEEL_REPOSITORY
	SECRET=$AWS_SECRET_ACCESS_KEY
	cat >"$K.tmp" <<EOC
[s3 "$KEEL_S3_ENDPOINT/$S3_BUCKET"]
access_key_id = $AWS_ACCESS_KEY_ID
secret_access_key = $AWS_SECRET_ACCESS_KEY
region = $AWS_DEFAULT_REGION
EOC
	private_copy "$K.tmp" "$K"
	rm -f "$K.tmp"
fi
# keel as the server's user, with no AWS_* variable: the key pair comes from $K
pkeel()
{
	as_pg env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN \
		KEEL_CONFIG="$K" KEEL_REPOSITORY="$R" KEEL_PASSWORD_FILE="$P" KEEL_CACHE_DIR="$C" "$KEEL" "$@"
}
expect_success pkeel init --kdf-ops 1 --kdf-mem 8 >/dev/null

env_cmd="env KEEL_PASSWORD_FILE=$P KEEL_CACHE_DIR=$C ${s3:+KEEL_CONFIG=$K }$KEEL -r $R"
pg_init arch "archive_mode = on" "archive_command = '$env_cmd db wal-push %p --name shop'"
# a server (and so its archive_command) starts without the key pair in its environment
pg_start_nokeys()
{
	local ak=${AWS_ACCESS_KEY_ID:-} sk=${AWS_SECRET_ACCESS_KEY:-}
	unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
	pg_start "$@"
	[ -z "$s3" ] || export AWS_ACCESS_KEY_ID=$ak AWS_SECRET_ACCESS_KEY=$sk
}
pg_start_nokeys arch
conn=$(pg_conninfo arch)
pg_sql arch "CREATE TABLE orders (id int PRIMARY KEY, item text);
	INSERT INTO orders SELECT g, 'before-' || g FROM generate_series(1, 2000) g;"
expect_success pkeel db backup "$conn" --name shop >/dev/null

# switch: ends the segment and waits until the server archived it
switch()
{
	local seg i got
	seg=$(pg_sql arch "SELECT pg_walfile_name(pg_switch_wal())")
	for ((i = 0; i < 150; i++)); do
		got=$(pg_sql arch "SELECT last_archived_wal || ' ' || failed_count FROM pg_stat_archiver")
		[ "${got%% *}" \< "$seg" ] || { [ "${got#* }" = 0 ] || fail "archiving failed: $(tail -5 "$TEST_DIR/pg/arch/log")"; return 0; }
		sleep 0.1
	done
	fail "segment $seg was not archived in 15 s: $(tail -5 "$TEST_DIR/pg/arch/log")"
}
batch()
{
	pg_sql arch "INSERT INTO orders SELECT g, 'after-$1-' || g FROM generate_series($1 * 10000, $1 * 10000 + 999) g"
}
batch 1
pg_sql arch "SELECT id, item FROM orders ORDER BY id" >"$TEST_DIR/rows-t"
t=$(pg_sql arch "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")
sleep 0.2
batch 2
switch
batch 3
switch

# wal-get gives a stored segment back; pushed again, nothing is stored
seg=$(pg_sql arch "SELECT last_archived_wal FROM pg_stat_archiver")
W=$TEST_DIR/pg/work
as_pg mkdir -p "$W"
expect_success pkeel db wal-get "$seg" "$W/$seg" --name shop
[ "$(stat -c %s "$W/$seg")" = 16777216 ] || fail "wal-get wrote $(stat -c %s "$W/$seg") bytes"
n=$(pkeel snapshots --json | json_get id | wc -l)
pkeel --json db wal-push "$W/$seg" --name shop >"$TEST_DIR/push.json" ||
	fail "pushing a stored segment again failed"
[ "$(json_get already <"$TEST_DIR/push.json")" = true ] || fail "not deduplicated: $(cat "$TEST_DIR/push.json")"
[ "$(pkeel snapshots --json | json_get id | wc -l)" = "$n" ] || fail "a second push stored a record"
# other bytes under a stored name: refused
printf 'X' | as_pg dd of="$W/$seg" bs=1 seek=100000 conv=notrunc status=none
expect_failure pkeel db wal-push "$W/$seg" --name shop
# not a segment: accepted, nothing stored; a name not stored: exit 14
as_pg touch "$W/000000010000000000000002.00000028.backup"
expect_success pkeel db wal-push "$W/000000010000000000000002.00000028.backup" --name shop
expect_exit 14 pkeel db wal-get 000000010000000F00000001 "$W/x" --name shop
expect_exit 14 pkeel db wal-get 00000002.history "$W/x" --name shop

# a restore to T whose pg_wal is emptied: the WAL comes through wal-get
target=$TEST_DIR/pg/at-t-data
pg_register at-t
expect_success pkeel db restore shop --target "$target" --time "$t" >/dev/null
as_pg find "$target/pg_wal" -maxdepth 1 -type f -name '0*' -delete
[ -z "$(ls "$target/pg_wal" | grep '^0' || true)" ] || fail "pg_wal not emptied"
echo "restore_command = '$env_cmd db wal-get %f %p --name shop'" | as_pg tee -a "$target/postgresql.auto.conf" >/dev/null
echo "archive_mode = off" | as_pg tee -a "$target/postgresql.auto.conf" >/dev/null
pg_start_nokeys at-t "$target"
pg_sql at-t "SELECT id, item FROM orders ORDER BY id" >"$TEST_DIR/rows-at-t"
cmp "$TEST_DIR/rows-t" "$TEST_DIR/rows-at-t" || fail "restore through wal-get to '$t' differs"
grep -q 'restored log file "0' "$TEST_DIR/pg/at-t/log" || fail "the server did not use wal-get: $(tail "$TEST_DIR/pg/at-t/log")"
pg_stop at-t
expect_success pkeel check --read-data >/dev/null
if [ -n "$s3" ]; then
	# the repository is the bucket's, and the secret is in no server configuration
	[ ! -e "$TEST_DIR/pg/repo" ] || fail "a local repository was made"
	s3_repo_listing | grep -q 'snapshots/' || fail "no snapshot in the bucket"
	! grep -rqF "$SECRET" "$TEST_DIR/pg/arch/data"/postgresql*.conf "$target"/postgresql*.conf ||
		fail "the secret is in a postgresql.conf"
fi
