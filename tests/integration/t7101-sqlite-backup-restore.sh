#!/usr/bin/env bash
# keel db backup/restore of SQLite databases: a consistent copy of a
# database a writer keeps committing to (every restored row set is a
# prefix of the writer's commits and passes integrity_check), unchanged
# pages cost next to nothing the second time, a database in rollback
# journal mode is copied too, and the errors: no file, not a database,
# stream of a database not in WAL mode, an existing target.
. "$(dirname "$0")/../lib.sh"
. "$KEEL_SOURCE_ROOT/tests/lib-sqlite.sh"
require_keel
sqlite_require

keel_init
db=$TEST_DIR/app.db
sqlite_new "$db"

# a copy while the writer commits as fast as it can
writer_start "$db" 3000 0
writer_wait_rows 100
expect_success keel db backup "sqlite://$db" --name app >"$TEST_DIR/backup.out"
grep -q '^database app (sqlite): base copy [0-9a-f]\{8\} saved at generation [0-9]* frame [0-9]*$' \
	"$TEST_DIR/backup.out" || fail "unexpected backup output: $(cat "$TEST_DIR/backup.out")"
writer_wait
expect_success keel db restore app --target "$TEST_DIR/r1.db" --latest >/dev/null
[ "$(sqlite3 "$TEST_DIR/r1.db" 'PRAGMA integrity_check')" = ok ] || fail "r1.db fails integrity_check"
n=$(sqlite3 "$TEST_DIR/r1.db" 'SELECT count(*) FROM t')
[ "$n" -gt 0 ] && [ "$n" -lt 3000 ] || fail "the copy was not taken while the writer ran ($n rows)"
# exactly the first n commits: ids 1..n, the same rows as the origin's
rows "$db" "$n" >"$TEST_DIR/want"
rows "$TEST_DIR/r1.db" >"$TEST_DIR/got"
cmp "$TEST_DIR/want" "$TEST_DIR/got" || fail "the copy is not the first $n commits"

# deduplication: a few changed rows in a database of 20 MB add a chunk of
# 64 KiB each (content-defined chunks, about 256 KiB each, would not pass)
sqlite3 "$db" "CREATE TABLE big (id INTEGER PRIMARY KEY, b BLOB);
	WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 5000)
	INSERT INTO big SELECT i, randomblob(4000) FROM s;
	PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
expect_success keel db backup "sqlite://$db" --name app --json >"$TEST_DIR/b2.json"
sqlite3 "$db" "UPDATE big SET b = randomblob(4000) WHERE id IN (10, 2000, 4000)" >/dev/null
expect_success keel db backup "sqlite://$db" --name app --json >"$TEST_DIR/b3.json"
total=$(json_get bytes_total <"$TEST_DIR/b3.json")
added=$(json_get data_added <"$TEST_DIR/b3.json")
log "second copy: $added of $total bytes new"
[ "$total" -gt 20000000 ] || fail "the copy holds $total bytes"
[ "$added" -le $((4 * 65536)) ] || fail "3 changed rows added $added of $total bytes"
expect_success keel db restore app --target "$TEST_DIR/r2.db" --latest >/dev/null
cmp <(sqlite3 "$db" 'SELECT id, hex(b) FROM big') <(sqlite3 "$TEST_DIR/r2.db" 'SELECT id, hex(b) FROM big') ||
	fail "restored blobs differ"

# a database in rollback journal mode: copied (under a read lock), not streamed
old=$TEST_DIR/old.db
sqlite3 "$old" 'CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t (v) VALUES ("a"), ("b");'
expect_success keel db backup "sqlite://$old" --name old >/dev/null
expect_success keel db restore old --target "$TEST_DIR/old-r.db" --latest >/dev/null
[ "$(sqlite3 "$TEST_DIR/old-r.db" 'SELECT group_concat(v) FROM t')" = a,b ] || fail "old.db restored wrong"
expect_error 22 "is not in WAL mode (journal_mode is delete).*PRAGMA journal_mode=WAL" \
	keel db stream "sqlite://$old" --name old

# a database that fails integrity_check is copied as it is, but never restored
python3 - "$TEST_DIR/bad.db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("PRAGMA page_size = 1024")
c.execute("CREATE TABLE t (x TEXT)")
c.execute("CREATE INDEX i ON t (x)")
for i in range(200):
    c.execute("INSERT INTO t VALUES (?)", ("key%05d" % i,))
c.close()
d = bytearray(open(sys.argv[1], "rb").read())
k = d.find(b"key00150", 2048)
d[k:k + 8] = b"key99150"  # out of order now: rows missing from the index
open(sys.argv[1], "wb").write(d)
PY
[ "$(sqlite3 "$TEST_DIR/bad.db" 'PRAGMA integrity_check' | sed -n 1p)" != ok ] || fail "bad.db is not damaged"
expect_success keel db backup "sqlite://$TEST_DIR/bad.db" --name bad >/dev/null
expect_error 23 "the restored database fails PRAGMA integrity_check (row [0-9]* missing from index i): it was not kept" \
	keel db restore bad --target "$TEST_DIR/bad-r.db" --latest
[ -z "$(find "$TEST_DIR" -maxdepth 1 -name 'bad-r.db*')" ] || fail "a failed restore left files"

# errors
expect_error 22 "cannot open SQLite database '$TEST_DIR/none.db'" \
	keel db backup "sqlite://$TEST_DIR/none.db" --name x
head -c 8192 /dev/urandom >"$TEST_DIR/junk.db"
expect_error 22 "is not a usable SQLite database: file is not a database" \
	keel db backup "sqlite://$TEST_DIR/junk.db" --name x
expect_error 22 "is not a usable SQLite database" keel db stream "sqlite://$TEST_DIR/junk.db" --name x
expect_error 2 "exists: a database is restored as a new file" \
	keel db restore app --target "$TEST_DIR/r1.db" --latest
expect_error 2 "restores by --time or --latest" keel db restore app --target "$TEST_DIR/x.db" --lsn 0/1
expect_error 14 "before the oldest base copy" \
	keel db restore app --target "$TEST_DIR/x.db" --time '2000-01-01 00:00:00+00'
[ ! -e "$TEST_DIR/x.db" ] || fail "a refused restore left a file"
expect_error 2 "invalid database name" keel db backup "sqlite://$db" --name 'a b'

# the list: both databases, engine sqlite
keel db list --json >"$TEST_DIR/list.json"
json_check <"$TEST_DIR/list.json"
[ "$(json_get engine <"$TEST_DIR/list.json" | sort -u)" = sqlite ] || fail "db list: $(cat "$TEST_DIR/list.json")"
keel db list >"$TEST_DIR/list"
grep -q "^app (sqlite, $db): 3 base copies, 0 log records$" "$TEST_DIR/list" ||
	fail "db list: $(cat "$TEST_DIR/list")"
expect_success keel check --read-data >/dev/null
