#!/usr/bin/env bash
# backup -v and -vv: the parent snapshot and each file's status (text on
# stdout, "verbose_status" objects under --json); --dry-run saves nothing
# and says so; --json "status" objects with percent_done and
# seconds_remaining; nothing of this without being asked.
. "$(dirname "$0")/../lib.sh"
require_keel

SRC=$TEST_DIR/src
mkdir -p "$SRC/sub"
printf 'a\n' >"$SRC/a.txt"
printf 'b\n' >"$SRC/sub/b.txt"
printf 'c\n' >"$SRC/sub/c.txt"
keel_init >/dev/null
OUT=$TEST_DIR/out

# without -v: the summary only, nothing on stderr
keel backup "$SRC" >"$OUT" 2>"$TEST_DIR/err" || fail "first backup failed"
[ ! -s "$TEST_DIR/err" ] || fail "stderr without -v: $(cat "$TEST_DIR/err")"
! grep -q "^new \|parent snapshot" "$OUT" || fail "files listed without -v"
first=$(snapshot_ids | tail -n 1)

# -v: the parent and the new and changed files, in walk order; not the unmodified
printf 'a2\n' >"$SRC/a.txt"
printf 'd\n' >"$SRC/sub/d.txt"
keel backup -v "$SRC" >"$OUT" || fail "backup -v failed"
cat >"$TEST_DIR/want" <<W
using parent snapshot ${first:0:8}
changed    $SRC/a.txt
new        $SRC/sub/d.txt
W
head -n 3 "$OUT" | diff "$TEST_DIR/want" - || fail "backup -v listed otherwise"
grep -q '^Files: 1 new, 1 changed, 2 unmodified$' "$OUT" || fail "summary: $(cat "$OUT")"
second=$(snapshot_ids | tail -n 1)

# -vv: every file with its status
printf 'c2\n' >"$SRC/sub/c.txt"
keel backup -vv "$SRC" >"$OUT" || fail "backup -vv failed"
cat >"$TEST_DIR/want" <<W
using parent snapshot ${second:0:8}
unmodified $SRC/a.txt
unmodified $SRC/sub/b.txt
changed    $SRC/sub/c.txt
unmodified $SRC/sub/d.txt
W
head -n 5 "$OUT" | diff "$TEST_DIR/want" - || fail "backup -vv listed otherwise"

# --force reads everything: no parent is used
keel backup -v --force "$SRC" >"$OUT" || fail "backup -v --force failed"
[ "$(head -n 1 "$OUT")" = "no parent snapshot: every file is read" ] ||
	fail "--force: $(head -n 1 "$OUT")"
[ "$(grep -c '^new  ' "$OUT")" = 4 ] || fail "--force -v: $(cat "$OUT")"

# --json -vv: one verbose_status object per file, then the summary
keel backup --json -vv "$SRC" >"$OUT" || fail "backup --json -vv failed"
json_check <"$OUT"
[ "$(grep -c '"message_type":"verbose_status"' "$OUT")" = 4 ] ||
	fail "verbose_status objects: $(cat "$OUT")"
grep -qF "{\"message_type\":\"verbose_status\",\"action\":\"unmodified\",\"item\":\"$SRC/a.txt\",\"data_size\":3}" \
	"$OUT" || fail "verbose_status of a.txt: $(cat "$OUT")"
[ "$(tail -n 1 "$OUT" | json_get message_type)" = summary ] || fail "summary not last"
# and without -v none
keel backup --json "$SRC" >"$OUT" || fail "backup --json failed"
! grep -q verbose_status "$OUT" || fail "verbose_status without -v"

# --json: status objects, the last one at 100 % with nothing remaining
grep '"message_type":"status"' "$OUT" | tail -n 1 >"$TEST_DIR/status"
[ -s "$TEST_DIR/status" ] || fail "no status object under --json"
[ "$(json_get percent_done <"$TEST_DIR/status")" = 1.0 ] || fail "last status: $(cat "$TEST_DIR/status")"
[ "$(json_get seconds_remaining <"$TEST_DIR/status")" = 0 ] || fail "last status: $(cat "$TEST_DIR/status")"
[ "$(json_get total_files <"$TEST_DIR/status")" = 4 ] || fail "last status: $(cat "$TEST_DIR/status")"
[ "$(json_get total_bytes <"$TEST_DIR/status")" = 10 ] || fail "last status: $(cat "$TEST_DIR/status")"
# --quiet: the summary alone
keel backup --json -q "$SRC" >"$OUT" || fail "backup --json -q failed"
[ "$(wc -l <"$OUT")" = 1 ] && grep -q '"message_type":"summary"' "$OUT" || fail "--json -q: $(cat "$OUT")"

# on a terminal: the progress line on stderr, with the share done (the last
# one at 100 % of the files and bytes counted); never with --no-progress
if command -v script >/dev/null 2>&1; then
	script -qec "'$KEEL' backup '$SRC' >'$TEST_DIR/tty-out'" /dev/null >"$TEST_DIR/tty" \
		</dev/null || fail "backup on a terminal failed"
	grep -q '\] 100\.0% 4/4 files, 10 B, ' "$TEST_DIR/tty" || fail "progress: $(cat -v "$TEST_DIR/tty")"
	grep -q '^snapshot [0-9a-f]\{8\} saved$' "$TEST_DIR/tty-out" || fail "no summary on a terminal"
	script -qec "'$KEEL' backup --no-progress '$SRC' >/dev/null" /dev/null >"$TEST_DIR/tty" \
		</dev/null || fail "backup --no-progress on a terminal failed"
	[ ! -s "$TEST_DIR/tty" ] || fail "--no-progress: $(cat -v "$TEST_DIR/tty")"
fi

# --dry-run: lists, says that nothing was saved, and writes nothing
printf 'e\n' >"$SRC/e.txt"
n=$(snapshot_count)
repo_listing >"$TEST_DIR/before"
keel backup --dry-run -v "$SRC" >"$OUT" || fail "backup --dry-run failed"
grep -qx "new        $SRC/e.txt" "$OUT" || fail "dry run did not list the new file: $(cat "$OUT")"
grep -qx 'dry run: nothing saved (no data, no snapshot)' "$OUT" || fail "dry run: $(cat "$OUT")"
! grep -q 'snapshot .* saved' "$OUT" || fail "dry run says a snapshot was saved"
grep -q '^Would be added to the repository: ' "$OUT" || fail "dry run: $(cat "$OUT")"
keel backup -n --json "$SRC" >"$OUT" || fail "backup -n --json failed"
tail -n 1 "$OUT" >"$TEST_DIR/summary"
grep -q '"snapshot_id":null,"dry_run":true,' "$TEST_DIR/summary" || fail "dry run JSON: $(cat "$TEST_DIR/summary")"
! grep -q '0000000000' "$OUT" || fail "a zero snapshot id in the dry run's JSON"
[ "$(snapshot_count)" = "$n" ] || fail "dry run added a snapshot"
repo_listing | diff "$TEST_DIR/before" - || fail "dry run wrote to the repository"
[ -z "$(ls -A "$KEEL_REPOSITORY/locks")" ] || fail "dry run left a lock"
