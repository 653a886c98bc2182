#!/usr/bin/env bash
# File times far from today survive backup and listing: 'ls -l' and
# 'ls --json' print a file's mtime from its seconds and nanoseconds, so
# dates after 2262 or before 1677 (beyond int64 nanoseconds) and before
# 1970 with a fraction of a second come out as they are (issue 13, 9).
. "$(dirname "$0")/../lib.sh"
require_keel

src=$TEST_DIR/src
mkdir -p "$src"
for f in far:'2400-01-01 00:00:00' old:'1600-02-03 04:05:06' \
	frac:'1965-06-07 08:09:10.5' recent:'2020-01-02 03:04:05.25'; do
	: >"$src/${f%%:*}"
	touch -d "${f#*:}" "$src/${f%%:*}" 2>/dev/null || skip_or_die "touch cannot set ${f#*:}"
done
[ "$(stat -c %Y "$src/far")" = 13569465600 ] || skip_or_die "the file system cannot hold 2400"
# ext4 stops at 1901: check 1600 only where the file system holds it
old=0
[ "$(stat -c %Y "$src/old")" -lt -11000000000 ] || { log "the file system cannot hold 1600"; rm "$src/old"; old=1; }

keel_init
expect_success keel backup "$src" >/dev/null

keel ls --json latest >"$TEST_DIR/ls.json" || fail "ls --json failed"
json_check <"$TEST_DIR/ls.json"
want()
{
	grep -F "\"path\":\"$src/$1\"" "$TEST_DIR/ls.json" | grep -qF "\"mtime\":\"$2\"" ||
		fail "ls --json: $1 should have mtime $2: $(grep -F "/$1\"" "$TEST_DIR/ls.json")"
}
want far 2400-01-01T00:00:00.000000000Z
[ "$old" = 1 ] || want old 1600-02-03T04:05:06.000000000Z
want frac 1965-06-07T08:09:10.500000000Z
want recent 2020-01-02T03:04:05.250000000Z

keel ls -l latest >"$TEST_DIR/ls.txt" || fail "ls -l failed"
wantl()
{
	grep -E " $2 $src/$1\$" "$TEST_DIR/ls.txt" >/dev/null ||
		fail "ls -l: $1 should have mtime $2: $(grep -F "/$1" "$TEST_DIR/ls.txt")"
}
wantl far '2400-01-01 00:00:00'
[ "$old" = 1 ] || wantl old '1600-02-03 04:05:06'
wantl frac '1965-06-07 08:09:10'
wantl recent '2020-01-02 03:04:05'
log "ok"
