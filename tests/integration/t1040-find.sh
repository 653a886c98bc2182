#!/usr/bin/env bash
# keel find: which snapshots hold an entry matching a pattern (issue 14).
# Base-name and whole-path patterns, -i, --snapshot, --host/--tag,
# --oldest/--newest, --long and --json, exit 14 for no match; and that
# trees shared between snapshots are read once and file data never.
. "$(dirname "$0")/../lib.sh"
require_keel

src=$TEST_DIR/src
mkdir -p "$src/docs/2026" "$src/other"
printf 'a\n' >"$src/docs/invoice-1.pdf"
printf 'bb\n' >"$src/docs/2026/invoice-2.pdf"
printf 'ccc\n' >"$src/docs/notes.txt"
printf 'dddd\n' >"$src/other/INVOICE-3.PDF"
touch -d '2026-01-02 03:04:05' "$src/docs/invoice-1.pdf"
touch -d '2026-06-01 12:00:00' "$src/docs/2026/invoice-2.pdf"
touch -d '2025-01-01 00:00:00' "$src/other/INVOICE-3.PDF"
keel_init
keel backup --host alpha --tag t1 "$src" >/dev/null || fail "backup 1"
S1=$(snapshot_ids | tail -1)
printf 'later\n' >"$src/docs/invoice-9.pdf"
touch -d '2026-07-01 00:00:00' "$src/docs/invoice-9.pdf"
keel backup --host beta "$src" >/dev/null || fail "backup 2"
S2=$(snapshot_ids | tail -1)
[ "$S1" != "$S2" ] || fail "two snapshots expected"

# base-name pattern, both snapshots, grouped, oldest first
keel find 'invoice*.pdf' >"$TEST_DIR/out" || fail "find failed"
cat "$TEST_DIR/out" >&9
paths=$(grep -o "$src/.*" "$TEST_DIR/out" | tr '\n' ' ')
[ "$paths" = "$src/docs/2026/invoice-2.pdf $src/docs/invoice-1.pdf $src/docs/2026/invoice-2.pdf $src/docs/invoice-1.pdf $src/docs/invoice-9.pdf " ] ||
	fail "find 'invoice*.pdf' listed: $paths"
[ "$(grep -c '^snapshot ' "$TEST_DIR/out")" = 2 ] || fail "two snapshot headers expected"
grep -q "^snapshot ${S1:0:8} of alpha at " "$TEST_DIR/out" || fail "no header for $S1"
grep -q "^snapshot ${S2:0:8} of beta at " "$TEST_DIR/out" || fail "no header for $S2"
grep -qE "^  2026-01-02 03:04:05 +2 $src/docs/invoice-1.pdf\$" "$TEST_DIR/out" ||
	fail "time and size of invoice-1.pdf"

# -i; a whole-path pattern; several patterns
[ "$(keel find -i --snapshot "$S1" 'invoice*.pdf' | grep -c "$src/")" = 3 ] || fail "-i should find 3"
[ "$(keel find --snapshot "$S1" 'docs/*/*.pdf' | grep -o "$src/.*")" = "$src/docs/2026/invoice-2.pdf" ] ||
	fail "whole-path pattern docs/*/*.pdf"
[ "$(keel find --snapshot "$S1" "$src/docs/*.txt" 'INVOICE*' | grep -o "$src/.*" | tr '\n' ' ')" = \
	"$src/docs/notes.txt $src/other/INVOICE-3.PDF " ] || fail "two patterns"
# a directory matches by its name too
[ "$(keel find --snapshot latest 2026 | grep -o "$src/.*")" = "$src/docs/2026" ] || fail "directory 2026"

# filters: host, tag, times
[ "$(keel find --host beta 'invoice-9*' | grep -c "$src/")" = 1 ] || fail "--host beta"
expect_error 14 "no match in 1 snapshot" keel find --tag t1 'invoice-9*'
[ "$(keel find --snapshot "$S2" --oldest '2026-03-01 00:00:00' --newest '2026-06-30 00:00:00' \
	'*.pdf' | grep -o "$src/.*")" = "$src/docs/2026/invoice-2.pdf" ] || fail "--oldest/--newest"
expect_error 14 "no match in 2 snapshots" keel find 'nothing-like-this'
expect_error 2 "invalid time" keel find --oldest yesterday x
expect_error 2 "no pattern given" keel find
expect_error 14 "" keel find --snapshot ffffffff x

# --long
keel find --long --snapshot "$S1" notes.txt >"$TEST_DIR/long" || fail "find --long"
grep -qE "^-rw-r--r-- +[^ ]+ +[^ ]+ +4 [0-9-]+ [0-9:]+ $src/docs/notes.txt\$" "$TEST_DIR/long" ||
	fail "--long line: $(cat "$TEST_DIR/long")"

# --json: one object per snapshot with matches
keel find --json 'invoice-1.pdf' >"$TEST_DIR/json" || fail "find --json"
json_check <"$TEST_DIR/json"
[ "$(wc -l <"$TEST_DIR/json")" = 2 ] || fail "--json: two lines expected"
[ "$(json_get snapshot <"$TEST_DIR/json" | tr '\n' ' ')" = "$S1 $S2 " ] || fail "--json snapshots"
[ "$(json_get hits <"$TEST_DIR/json" | tr '\n' ' ')" = "1 1 " ] || fail "--json hits"
[ "$(json_get size <"$TEST_DIR/json" | tr '\n' ' ')" = "2 2 " ] || fail "--json size"
mtimes=$(json_get mtime <"$TEST_DIR/json")
[ "$(cut -c1-11 <<<"$mtimes" | tr '\n' ' ')" = "2026-01-02T 2026-01-02T " ] || fail "--json mtime: $mtimes"

# fast: a tree shared by both snapshots is read once (docs/2026 and
# other/ did not change; every directory from the root to docs did)
n=$(tr -cd / <<<"$src" | wc -c)
keel find -v 'invoice*' 2>"$TEST_DIR/err" >/dev/null || fail "find -v"
grep -qx "keel: find: 2 snapshots searched, $((2 * (1 + n) + 4)) directories read" "$TEST_DIR/err" ||
	fail "shared trees read more than once: $(cat "$TEST_DIR/err")"

# and it reads no file data: with every pack that holds no tree moved
# away (ls still works without it), find gives the same answer
keel find 'invoice*.pdf' >"$TEST_DIR/before" || fail "find"
mkdir "$TEST_DIR/away"
moved=0
for p in $(repo_files data); do
	repo_mv "$p" "$TEST_DIR/away/${p##*/}"
	if keel ls latest >/dev/null 2>&1 && keel ls "$S1" >/dev/null 2>&1; then
		moved=$((moved + 1))
	else
		repo_mv "$TEST_DIR/away/${p##*/}" "$p"
	fi
done
[ "$moved" -ge 1 ] || fail "no data pack to move away"
expect_failure keel dump latest "$src/docs/notes.txt"
keel find 'invoice*.pdf' >"$TEST_DIR/after" || fail "find without data packs"
cmp "$TEST_DIR/before" "$TEST_DIR/after" || fail "find without data packs differs"

# a snapshot that cannot be read is left out, with a warning
if [ "${KEEL_TEST_BACKEND:-local}" = local ]; then
	printf 'garbage' >"$KEEL_REPOSITORY/snapshots/$(printf 'ab%.0s' {1..32})"
	keel find 'invoice*.pdf' >"$TEST_DIR/after" 2>"$TEST_DIR/err" || fail "find with a damaged snapshot"
	cmp "$TEST_DIR/before" "$TEST_DIR/after" || fail "find with a damaged snapshot differs"
	grep -qxF "keel: find: warning: 1 snapshot cannot be read and is left out ('keel check')" \
		"$TEST_DIR/err" || fail "no warning for the damaged snapshot: $(cat "$TEST_DIR/err")"
fi
log "ok"
