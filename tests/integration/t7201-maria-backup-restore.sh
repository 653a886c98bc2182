#!/usr/bin/env bash
# keel db backup/restore of MariaDB: a hot backup while a writer commits
# rows, restored as a data directory that plain mariadbd starts, holding
# exactly the rows committed before the backup's binlog position (a prefix
# of the writer's); a second backup deduplicates against the first; a
# restore to a binlog position and to a time replays the binary logs
# (here the server's own binlog files: --binlog-dir) through a temporary
# server and gives exactly the rows of that moment; targets outside what
# is covered are refused with the range (exit 14); keel db list shows it.
. "$(dirname "$0")/../lib.sh"
. "$KEEL_SOURCE_ROOT/tests/lib-maria.sh"
require_keel
maria_require
command -v mariabackup >/dev/null || skip_or_die "mariabackup is not installed (mariadb-backup)"

keel_init
maria_init src
maria_start src
uri=$(maria_uri src)
maria_sql src "CREATE DATABASE shop;
	CREATE TABLE shop.orders (id INT PRIMARY KEY, item VARCHAR(64), qty INT) ENGINE=InnoDB;
	CREATE TABLE shop.big (id INT PRIMARY KEY, pad VARCHAR(2000)) ENGINE=InnoDB;
	USE shop; INSERT INTO big SELECT seq, REPEAT(MD5(seq), 60) FROM seq_1_to_8000;
	CREATE TABLE shop.notes (id INT PRIMARY KEY, body TEXT) ENGINE=Aria;
	INSERT INTO shop.notes VALUES (1, 'aria too')"

rows()
{
	maria_sql "$1" "SELECT id, item, qty FROM shop.orders ORDER BY id;
		SELECT COUNT(*), SUM(CRC32(pad)) FROM shop.big; SELECT * FROM shop.notes ORDER BY id"
}

# a writer: one session committing a row at a time until $TEST_DIR/stop exists
writer()
{
	local i=0
	while [ ! -e "$TEST_DIR/stop" ]; do
		i=$((i + 1))
		echo "INSERT INTO shop.orders VALUES ($i, 'item-$i', $((i % 7)));"
		sleep 0.01
	done | mariadb --no-defaults -S "$(maria_socket src)" -u root
}
writer &
wpid=$!
until [ "$(maria_sql src 'SELECT COUNT(*) FROM shop.orders')" -ge 50 ]; do sleep 0.1; done
expect_success keel db backup "$uri" --name shop >"$TEST_DIR/b1.out"
grep -q '^database shop (mariadb, server id 1): backup [0-9a-f]\{8\} saved at binlog bin\.000001:[0-9]*, GTID 0-1-[0-9]*$' \
	"$TEST_DIR/b1.out" || fail "unexpected backup output: $(cat "$TEST_DIR/b1.out")"
sleep 0.5
touch "$TEST_DIR/stop"
wait $wpid
total=$(maria_sql src 'SELECT COUNT(*) FROM shop.orders')

# restore, start with plain mariadbd, compare: ids 1..n exactly, n within the writer's run
maria_register r1
expect_success keel db restore shop --target "$TEST_DIR/r1" --latest >/dev/null
maria_start r1 "$TEST_DIR/r1"
rows r1 >"$TEST_DIR/got1"
n=$(maria_sql r1 'SELECT COUNT(*) FROM shop.orders')
[ "$n" -ge 50 ] && [ "$n" -lt "$total" ] || fail "the backup was not taken while the writer ran ($n rows)"
[ "$(maria_sql r1 'SELECT MAX(id) FROM shop.orders')" = "$n" ] || fail "the restored rows are not a prefix"
maria_sql src "SELECT id, item, qty FROM shop.orders WHERE id <= $n ORDER BY id;
	SELECT COUNT(*), SUM(CRC32(pad)) FROM shop.big; SELECT * FROM shop.notes ORDER BY id" >"$TEST_DIR/want1"
cmp "$TEST_DIR/want1" "$TEST_DIR/got1" || fail "restored rows differ from the first $n commits"
maria_stop r1

# a second backup: a few rows changed in ~16 MB of rows, far less new data than the first.
# InnoDB goes on rewriting pages for a while after the writer (purge, page
# flushes): a backup of that settling first, so that the one measured
# shows what the three changed rows cost
expect_success keel db backup "$uri" --name shop >/dev/null
maria_sql src "UPDATE shop.big SET pad = REPEAT('x', 2000) WHERE id IN (5, 4000, 7000)"
expect_success keel db backup "$uri" --name shop --json >"$TEST_DIR/b2.json"
added=$(json_get data_added <"$TEST_DIR/b2.json")
total=$(json_get bytes_total <"$TEST_DIR/b2.json")
log "second backup: $added new of $total"
[ "$added" -lt $((total / 5)) ] || fail "the second backup added $added of $total bytes"
pos2=$(json_get binlog_pos <"$TEST_DIR/b2.json")

# changes after the backup: a position in a later binlog file, then a time, then more
maria_sql src "FLUSH BINARY LOGS; INSERT INTO shop.orders VALUES (100001, 'after', 1);
	CREATE USER restored@localhost IDENTIFIED BY 'x'"
pos=$(maria_sql src "SHOW MASTER STATUS" | awk '{print $1 ":" $2}')
rows src >"$TEST_DIR/want-pos"
maria_sql src "INSERT INTO shop.orders VALUES (100002, 'at time', 2)"
rows src >"$TEST_DIR/want-time"
sleep 1.1
t=$(date '+%Y-%m-%d %H:%M:%S')
sleep 1.1
maria_sql src "DROP TABLE shop.orders"
mkdir "$TEST_DIR/binlogs"
cp "$TEST_DIR/maria/src/data"/bin.0* "$TEST_DIR/binlogs/"

maria_register r2
expect_success keel db restore shop --target "$TEST_DIR/r2" --position "$pos" \
	--binlog-dir "$TEST_DIR/binlogs" >/dev/null
maria_start r2 "$TEST_DIR/r2"
rows r2 >"$TEST_DIR/got-pos"
cmp "$TEST_DIR/want-pos" "$TEST_DIR/got-pos" || fail "restore to $pos: rows differ"
[ "$(maria_sql r2 "SELECT COUNT(*) FROM mysql.user WHERE user = 'restored'")" = 1 ] ||
	fail "CREATE USER was not replayed"
maria_stop r2

maria_register r3
expect_success keel db restore shop --target "$TEST_DIR/r3" --time "$t" \
	--binlog-dir "$TEST_DIR/binlogs" >/dev/null
maria_start r3 "$TEST_DIR/r3"
rows r3 >"$TEST_DIR/got-time"
cmp "$TEST_DIR/want-time" "$TEST_DIR/got-time" || fail "restore to $t: rows differ (DROP TABLE replayed?)"
maria_stop r3

# outside what is covered: before the oldest backup, after the binlogs, no binlogs at all
expect_exit 14 keel db restore shop --target "$TEST_DIR/x" --position bin.000001:4 \
	--binlog-dir "$TEST_DIR/binlogs" 2>"$TEST_DIR/err"
grep -q 'before the oldest base backup' "$TEST_DIR/err" || fail "$(cat "$TEST_DIR/err")"
expect_exit 14 keel db restore shop --target "$TEST_DIR/x" --position bin.000009:4 \
	--binlog-dir "$TEST_DIR/binlogs" 2>"$TEST_DIR/err"
grep -q 'not covered: base backup at bin.000001:[0-9]*, binary logs up to bin.00000[0-9]:[0-9]*' \
	"$TEST_DIR/err" || fail "$(cat "$TEST_DIR/err")"
expect_exit 14 keel db restore shop --target "$TEST_DIR/x" --time "$t" 2>"$TEST_DIR/err"
grep -q "not covered: the repository holds 'shop' at binlog bin.000001:$pos2" "$TEST_DIR/err" ||
	fail "$(cat "$TEST_DIR/err")"
[ ! -e "$TEST_DIR/x" ] || fail "a refused restore left its target"
# a chosen base backup: the first one
id1=$(keel db list --json | json_get id | sed -n 1p)
expect_success keel db restore shop --target "$TEST_DIR/r4" --latest --base "${id1:0:8}" >"$TEST_DIR/r4.out"
grep -q "restored base backup ${id1:0:8}" "$TEST_DIR/r4.out" || fail "$(cat "$TEST_DIR/r4.out")"

keel db list >"$TEST_DIR/list"
grep -q '^shop (mariadb, server id 1): 3 base backups$' "$TEST_DIR/list" || fail "$(cat "$TEST_DIR/list")"
[ "$(keel db list --json | json_get engine)" = mariadb ] || fail "db list --json"
expect_success keel check --read-data >/dev/null
