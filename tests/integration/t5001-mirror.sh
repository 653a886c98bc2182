#!/usr/bin/env bash
# keel mirror (docs/MIRROR.md): a keyless copy that check --read-data
# accepts, incremental runs that send only what is new, damage in DEST
# found and repaired (a wrong size always, a wrong hash with --verify),
# a damaged object of SOURCE not copied (exit 13), and a restore from DEST
# alone once SOURCE is gone.
. "$(dirname "$0")/../lib.sh"
require_keel
require_treecmp

SRC=$TEST_DIR/src
DEST=$TEST_DIR/dest
mkdir -p "$SRC/sub"
head -c 300000 /dev/urandom >"$SRC/big.bin"
printf 'one\n' >"$SRC/sub/one.txt"

new_objects()
{
	comm -23 <(repo_objects "$KEEL_REPOSITORY" | cut -c67-) <(repo_objects "$DEST" | cut -c67-) |
		wc -l
}

keel_init >/dev/null
expect_success keel backup --no-progress "$SRC"

# no password: the mirror must not ask for one, nor read one
n=$(new_objects)
mirror_json "$KEEL_REPOSITORY" "$DEST" </dev/null
[ "$(summary_get copied)" = "$n" ] || fail "first mirror copied $(summary_get copied) objects, not $n"
[ "$(summary_get skipped)" = 0 ] || fail "first mirror skipped objects"
[ "$(summary_get complete)" = true ] || fail "first mirror not complete"
[ "$(repo_objects "$KEEL_REPOSITORY")" = "$(repo_objects "$DEST")" ] || fail "DEST differs from SOURCE"
# keyless: no password anywhere in the environment
expect_success env -u KEEL_PASSWORD_FILE "$KEEL" mirror --no-progress "$KEEL_REPOSITORY" "$DEST"
expect_success keel -r "$DEST" check --read-data

# incremental: only the new objects are sent
printf 'two\n' >"$SRC/sub/two.txt"
expect_success keel backup --no-progress "$SRC"
before=$(repo_objects "$DEST" | wc -l)
n=$(new_objects)
[ "$n" -ge 3 ] || fail "a backup added only $n objects"
mirror_json "$KEEL_REPOSITORY" "$DEST"
[ "$(summary_get copied)" = "$n" ] || fail "incremental mirror copied $(summary_get copied), not $n"
[ "$(summary_get skipped)" = "$before" ] ||
	fail "incremental mirror skipped $(summary_get skipped), not $before"
[ "$(repo_objects "$KEEL_REPOSITORY")" = "$(repo_objects "$DEST")" ] || fail "DEST differs after run 2"
# --dry-run writes nothing
printf 'three\n' >"$SRC/sub/three.txt"
expect_success keel backup --no-progress "$SRC"
n=$(new_objects)
mirror_json --dry-run "$KEEL_REPOSITORY" "$DEST"
[ "$(summary_get copied)" = "$n" ] || fail "dry run would copy $(summary_get copied), not $n"
[ "$(new_objects)" = "$n" ] || fail "dry run wrote to DEST"
mirror_json "$KEEL_REPOSITORY" "$DEST"

# damage in DEST: a truncated index file is found by its size on any run;
# a pack with one byte changed only by --verify; both come back whole
idx=$(find "$DEST/index" -type f | head -n1)
pack=$(find "$DEST/data" -type f -size +100k | head -n1)
truncate -s 10 "$idx"
flip_byte "$pack" 1000
mirror_json "$KEEL_REPOSITORY" "$DEST"
[ "$(summary_get repaired)" = 1 ] ||
	fail "the truncated index file was not repaired: $(summary_get repaired)"
grep -q "index/.*wrong size" "$TEST_DIR/merr" || fail "damage by size not reported"
[ "$(sha "$idx")" = "$(basename "$idx")" ] || fail "the index file is still damaged"
mirror_json --verify "$KEEL_REPOSITORY" "$DEST"
[ "$(summary_get repaired)" = 1 ] ||
	fail "--verify did not repair the altered pack: $(summary_get repaired)"
grep -q "data/.*damaged in the copy" "$TEST_DIR/merr" || fail "altered pack not reported"
[ "$(sha "$pack")" = "$(basename "$pack")" ] || fail "the pack is still damaged"
[ "$(repo_objects "$KEEL_REPOSITORY")" = "$(repo_objects "$DEST")" ] || fail "DEST differs after repair"
expect_success keel -r "$DEST" check --read-data

# a damaged object in SOURCE is not copied; the rest is; exit 13
printf 'four\n' >"$SRC/sub/four.txt"
head -c 100000 /dev/urandom >"$SRC/sub/more.bin"
expect_success keel backup --no-progress "$SRC"
bad=$(comm -23 <(repo_objects "$KEEL_REPOSITORY" | cut -c67- | grep '^data/') \
	<(repo_objects "$DEST" | cut -c67-) | head -n1)
[ -n "$bad" ] || fail "the backup wrote no pack"
cp "$KEEL_REPOSITORY/$bad" "$TEST_DIR/good-pack"
flip_byte "$KEEL_REPOSITORY/$bad" 10
expect_error 13 "damaged in the source" keel mirror "$KEEL_REPOSITORY" "$DEST"
[ ! -e "$DEST/$bad" ] || fail "a damaged pack of SOURCE was copied"
[ "$(new_objects)" = 1 ] || fail "the rest was not copied: $(new_objects) objects left"
cp "$TEST_DIR/good-pack" "$KEEL_REPOSITORY/$bad"
mirror_json "$KEEL_REPOSITORY" "$DEST"
[ "$(summary_get copied)" = 1 ] || fail "the repaired pack was not copied"
[ "$(repo_objects "$KEEL_REPOSITORY")" = "$(repo_objects "$DEST")" ] || fail "DEST differs at the end"

# the status, keyless: nothing pending, a complete run, no lag
expect_success env -u KEEL_PASSWORD_FILE "$KEEL" mirror --status --json "$KEEL_REPOSITORY" "$DEST" >"$TEST_DIR/summary"
json_check <"$TEST_DIR/summary"
[ "$(summary_get lag_seconds)" = 0 ] || fail "lag $(summary_get lag_seconds) after a complete run"
[ "$(summary_get objects | sort -u)" = 0 ] || fail "objects pending after a complete run"
[ -n "$(summary_get last_complete_run)" ] && [ "$(summary_get last_complete_run)" != None ] ||
	fail "no complete run recorded"

# the office burns: SOURCE is gone, DEST and the password restore everything
rm -rf "$KEEL_REPOSITORY"
expect_success keel -r "$DEST" check --read-data
expect_success keel -r "$DEST" restore --no-progress latest --target "$TEST_DIR/restored"
expect_success treecmp "$SRC" "$(restored_root "$TEST_DIR/restored" "$SRC")"
