#!/usr/bin/env bash
# keel repair: the index rebuilt from packs alone; damaged snapshots
# salvaged into new ones that leave out exactly the damaged files, which are
# listed; afterwards prune clears the damage and check passes again.
. "$(dirname "$0")/../lib.sh"
require_keel
require_treecmp

keel_init
mkdir -p "$TEST_DIR/v" "$TEST_DIR/o"
head -c $((3 << 20)) /dev/urandom >"$TEST_DIR/v/victim.bin"
printf 'small and fine\n' >"$TEST_DIR/v/fine.txt"
head -c $((1 << 20)) /dev/urandom >"$TEST_DIR/o/other.bin"
expect_success keel backup --json "$TEST_DIR/v" >"$TEST_DIR/b1.json"
V=$(json_get snapshot_id <"$TEST_DIR/b1.json")
repo_files data >"$TEST_DIR/packs1"
expect_success keel backup --json "$TEST_DIR/o" >"$TEST_DIR/b2.json"
O=$(json_get snapshot_id <"$TEST_DIR/b2.json")

# ---- the index, lost entirely, comes back from the packs ------------------
repo_files index >"$TEST_DIR/index1"
[ -s "$TEST_DIR/index1" ] || fail "two backups wrote no index"
mapfile -t index1 <"$TEST_DIR/index1"
repo_rm "${index1[@]}"
expect_success keel repair index --dry-run >/dev/null
[ -z "$(repo_files index)" ] || fail "repair index --dry-run wrote an index"
expect_success keel repair index --json >"$TEST_DIR/ri.json"
[ "$(json_get packs_damaged <"$TEST_DIR/ri.json")" = 0 ] || fail "repair index found damage"
expect_success keel check --read-data >/dev/null
expect_success keel restore "$V" --target "$TEST_DIR/r1" >/dev/null
expect_success treecmp --ignore-atime "$TEST_DIR/v" "$(restored_root "$TEST_DIR/r1" "$TEST_DIR/v")"

# ---- a flipped byte in victim.bin's data ------------------------------------
PACK=$(largest <"$TEST_DIR/packs1")
flip_byte "$PACK" $(($(file_size "$PACK") / 2))
expect_exit 13 keel check --read-data >/dev/null 2>&1
# without --read-data nothing is missing, so nothing to repair
expect_success keel repair snapshots --dry-run --json >"$TEST_DIR/dry.json"
[ "$(json_get files_lost <"$TEST_DIR/dry.json" | tail -n 1)" = 0 ] || fail "repair without --read-data lost files"
expect_exit 3 keel repair snapshots --read-data --forget --json >"$TEST_DIR/rs.json"
grep -q '"message_type":"lost","path":"[^"]*/victim.bin"' "$TEST_DIR/rs.json" ||
	fail "repair does not list victim.bin as lost: $(cat "$TEST_DIR/rs.json")"
[ "$(json_get files_lost <"$TEST_DIR/rs.json" | tail -n 1)" = 1 ] || fail "repair lost more than victim.bin"
[ "$(json_get snapshots_repaired <"$TEST_DIR/rs.json" | tail -n 1)" = 1 ] || fail "repair did not repair exactly one snapshot"
snapshot_ids | grep -q "^$V" && fail "--forget kept the damaged snapshot"
[ "$(snapshot_count --tag repaired)" = 1 ] || fail "no snapshot tagged repaired"
R=$(snapshot_ids --tag repaired)
expect_success keel restore "$R" --target "$TEST_DIR/r2" >/dev/null
RR=$(restored_root "$TEST_DIR/r2" "$TEST_DIR/v")
cmp "$TEST_DIR/v/fine.txt" "$RR/fine.txt" || fail "the repaired snapshot lost fine.txt"
[ ! -e "$RR/victim.bin" ] || fail "the repaired snapshot still has victim.bin"
expect_success keel restore "$O" --target "$TEST_DIR/r3" >/dev/null
expect_success treecmp --ignore-atime "$TEST_DIR/o" "$(restored_root "$TEST_DIR/r3" "$TEST_DIR/o")"
# prune drops the damaged data nobody uses any more; then all is well
expect_success keel prune >/dev/null
expect_success keel check --read-data >/dev/null

# ---- a pack gone: repair index drops it, repair snapshots the files -------
head -c $((2 << 20)) /dev/urandom >"$TEST_DIR/v/victim2.bin"
repo_files data >"$TEST_DIR/before"
expect_success keel backup --json "$TEST_DIR/v" >/dev/null
NEW=$(repo_files data | comm -13 "$TEST_DIR/before" - | largest)
repo_rm "$NEW"
expect_exit 13 keel check >/dev/null 2>&1
expect_success keel repair index >/dev/null
expect_exit 3 keel repair snapshots --forget >"$TEST_DIR/rs2.out" 2>"$TEST_DIR/rs2.err"
# the biggest new pack holds victim2.bin's data, or victim.bin's (stored
# again: the repaired snapshot left it out), as the chunks fell
grep -qE 'victim2?\.bin' "$TEST_DIR/rs2.err" || fail "repair does not name the lost file: $(cat "$TEST_DIR/rs2.err")"
expect_success keel check --read-data >/dev/null
expect_success keel prune >/dev/null
expect_success keel check --read-data >/dev/null

# ---- the trees' pack gone: the directories are lost, repair goes on --------
mkdir -p "$TEST_DIR/w/sub"
head -c $((1 << 20)) /dev/urandom >"$TEST_DIR/w/sub/data.bin"
repo_files data >"$TEST_DIR/before-w"
expect_success keel backup "$TEST_DIR/w" >/dev/null
TREES=$(repo_files data | comm -13 "$TEST_DIR/before-w" - | smallest)
repo_rm "$TREES"
expect_success keel repair index >/dev/null
expect_exit 3 keel repair snapshots --forget >"$TEST_DIR/rs3.out" 2>"$TEST_DIR/rs3.err"
grep -q 'directory cannot be read' "$TEST_DIR/rs3.err" ||
	fail "repair does not report the unreadable directory: $(cat "$TEST_DIR/rs3.err")"
[ "$(snapshot_count --tag repaired)" = 3 ] || fail "no third repaired snapshot"
expect_success keel check --read-data >/dev/null
expect_success keel prune >/dev/null
expect_success keel check --read-data >/dev/null
