#!/usr/bin/env bash
# The local metadata cache (keel issue #5, docs/S3.md "Metadata cache")
# against a real S3 gateway, with tests/tools/faultproxy (no faults) in
# between to log every request keel makes:
#
# - an incremental backup, a second "snapshots" and a second "ls"
#   download no snapshot or index object; a fresh cache downloads them
# - --no-cache, KEEL_NO_CACHE=1, --cache-dir and KEEL_CACHE_DIR work and
#   give the same output
# - a damaged cache entry is detected, fetched again and repaired
# - a snapshot forgotten by another client leaves the cache at the next
#   listing
# - deleting the cache directory while keel runs, and several keel
#   processes sharing one cache, are harmless
# - check reads the storage itself: damage the cache would hide is found
# - ssh:// repositories are cached too
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-s3.sh"
require_keel
require_treecmp
s3_setup
s3_new_repo repo
DIRECT=$KEEL_REPOSITORY
s3_proxy_start
export KEEL_REPOSITORY=s3:$S3_PROXY_ENDPOINT/$S3_BUCKET/repo
CACHE=$XDG_CACHE_HOME/keel

# log_mark: where the request log ends now
log_mark()
{
	wc -l <"$S3_PROXY_LOG"
}

# meta_gets MARK: downloads of snapshot and index objects logged after MARK
meta_gets()
{
	tail -n "+$(($1 + 1))" "$S3_PROXY_LOG" |
		grep -cE '^[0-9]+ GET [^ ?]*/(snapshots|index)/[0-9a-f]{64} ' || true
}

# expect_gets WANT MARK WHAT: WANT is "N" or "N+" (at least N)
expect_gets()
{
	local want=$1 got
	got=$(meta_gets "$2")
	case $want in
	*+) [ "$got" -ge "${want%+}" ] || fail "$3: $got metadata downloads, want at least ${want%+}" ;;
	*) [ "$got" -eq "$want" ] || fail "$3: $got metadata downloads, want $want" ;;
	esac
	log "$3: $got metadata downloads"
}

# entries TYPE: the cache's entries of one type (snapshots or index)
entries()
{
	find "$CACHE" -path "*/$1/*" -type f ! -name '*.tmp.*' 2>/dev/null | sort
}

SRC=$TEST_DIR/src
mkdir -p "$SRC/d"
pool_bytes 300000 >"$SRC/big"
for i in $(seq 1 10); do pool_bytes $((i * 101)) >"$SRC/d/f$i"; done
printf 'one\n' >"$SRC/text"

keel_init
expect_success keel backup "$SRC" >/dev/null
grep -qx 'Signature: 8a477f597d28d172789f06886806bc55' "$CACHE/CACHEDIR.TAG" ||
	fail "the cache directory has no CACHEDIR.TAG"
[ "$(entries snapshots | wc -l)" = 1 ] || fail "the snapshot written was not cached"
[ "$(entries index | wc -l)" -ge 1 ] || fail "the index written was not cached"
[ "$(stat -c %a "$(dirname "$(dirname "$(entries snapshots)")")")" = 700 ] ||
	fail "the cache directory is not private"

# an incremental backup reads the index and the snapshots: all cached
for i in 2 3 4; do
	printf '%d\n' "$i" >>"$SRC/text"
	m=$(log_mark)
	expect_success keel backup "$SRC" >/dev/null
	expect_gets 0 "$m" "incremental backup $i"
done

# a fresh cache downloads every snapshot once, then none (--no-check:
# without it, snapshots also loads the index to mark incomplete ones)
rm -rf "$CACHE"
m=$(log_mark)
expect_success keel snapshots --no-check --json >"$TEST_DIR/snaps1"
expect_gets 4+ "$m" "snapshots, fresh cache"
m=$(log_mark)
expect_success keel snapshots --no-check --json >"$TEST_DIR/snaps2"
expect_gets 0 "$m" "snapshots, second time"
cmp -s "$TEST_DIR/snaps1" "$TEST_DIR/snaps2" || fail "snapshots differ between runs"
[ "$(json_get id <"$TEST_DIR/snaps1" | wc -l)" = 4 ] || fail "not 4 snapshots: $(cat "$TEST_DIR/snaps1")"
m=$(log_mark)
expect_success keel ls -l latest >"$TEST_DIR/ls1"
expect_gets 1+ "$m" "ls, index not cached yet"
m=$(log_mark)
expect_success keel ls -l latest >"$TEST_DIR/ls2"
expect_gets 0 "$m" "ls, second time"
cmp -s "$TEST_DIR/ls1" "$TEST_DIR/ls2" || fail "ls differs between runs"

# the same without the cache, however it is turned off
m=$(log_mark)
expect_success keel --no-cache snapshots --json >"$TEST_DIR/snaps3"
expect_gets 4+ "$m" "snapshots --no-cache"
cmp -s "$TEST_DIR/snaps1" "$TEST_DIR/snaps3" || fail "snapshots differ with --no-cache"
m=$(log_mark)
expect_success keel snapshots --no-check --no-cache --json >"$TEST_DIR/snaps3"
expect_gets 4+ "$m" "snapshots with --no-cache after the command"
m=$(log_mark)
KEEL_NO_CACHE=1 expect_success keel ls -l latest >"$TEST_DIR/ls3"
expect_gets 1+ "$m" "ls with KEEL_NO_CACHE=1"
cmp -s "$TEST_DIR/ls1" "$TEST_DIR/ls3" || fail "ls differs with KEEL_NO_CACHE=1"

# another directory: --cache-dir and KEEL_CACHE_DIR
expect_success keel --cache-dir "$TEST_DIR/c2" snapshots --json >"$TEST_DIR/snaps4"
cmp -s "$TEST_DIR/snaps1" "$TEST_DIR/snaps4" || fail "snapshots differ with --cache-dir"
[ -f "$TEST_DIR/c2/CACHEDIR.TAG" ] || fail "--cache-dir was not used"
m=$(log_mark)
KEEL_CACHE_DIR=$TEST_DIR/c2 expect_success keel snapshots --no-check --json >/dev/null
expect_gets 0 "$m" "snapshots with KEEL_CACHE_DIR"

# damaged entries are detected, downloaded again and repaired
snap_entry=$(entries snapshots | sed -n 2p)
flip_byte "$snap_entry" 20
index_entry=$(entries index | sed -n 1p)
truncate -s 7 "$index_entry"
m=$(log_mark)
expect_success keel snapshots --no-check --json >"$TEST_DIR/snaps5"
expect_gets 1 "$m" "snapshots, one entry damaged"
cmp -s "$TEST_DIR/snaps1" "$TEST_DIR/snaps5" || fail "snapshots differ after damage in the cache"
[ "$(sha "$snap_entry")" = "$(basename "$snap_entry")" ] || fail "the damaged entry was not repaired"
m=$(log_mark)
expect_success keel ls -l latest >"$TEST_DIR/ls5"
expect_gets 1 "$m" "ls, one index entry damaged"
cmp -s "$TEST_DIR/ls1" "$TEST_DIR/ls5" || fail "ls differs after damage in the cache"
[ "$(sha "$index_entry")" = "$(basename "$index_entry")" ] || fail "the damaged index entry was not repaired"

# another client (its own cache, the direct endpoint) forgets a snapshot:
# the next listing here drops it from the cache too
victim=$(json_get id <"$TEST_DIR/snaps1" | sed -n 1p)
entries snapshots | grep -q "/$victim\$" || fail "snapshot $victim is not cached"
KEEL_CACHE_DIR=$TEST_DIR/other expect_success keel -r "$DIRECT" forget "$victim" >/dev/null
m=$(log_mark)
expect_success keel snapshots --no-check --json >"$TEST_DIR/snaps6"
expect_gets 0 "$m" "snapshots after a forget elsewhere"
! json_get id <"$TEST_DIR/snaps6" | grep -qx "$victim" || fail "forgotten snapshot $victim still listed"
! entries snapshots | grep -q "/$victim\$" || fail "forgotten snapshot $victim is still cached"
[ "$(entries snapshots | wc -l)" = 3 ] || fail "not 3 cached snapshots: $(entries snapshots)"

# the cache deleted again and again while keel reads and writes
(while :; do
	rm -rf "$CACHE" || true # races with keel's writes: "directory not empty"
	sleep 0.02
done) </dev/null >/dev/null 2>&1 &
deleter=$!
BG_PIDS+=("$deleter")
for i in 5 6; do
	printf '%d\n' "$i" >>"$SRC/text"
	pool_bytes 20000 >"$SRC/d/new$i"
	expect_success keel backup "$SRC" >/dev/null
	expect_success keel snapshots --no-check --json >/dev/null
	expect_success keel ls latest >/dev/null
done
kill "$deleter" || fail "the cache deleter stopped early"
wait "$deleter" 2>/dev/null || true
expect_success keel snapshots --no-check --json >"$TEST_DIR/snaps7"
expect_success keel --no-cache snapshots --json >"$TEST_DIR/snaps8"
cmp -s "$TEST_DIR/snaps7" "$TEST_DIR/snaps8" || fail "snapshots differ after the cache was deleted"
expect_success keel restore latest --target "$TEST_DIR/restore" >/dev/null
expect_success treecmp --ignore-atime "$SRC" "$(restored_root "$TEST_DIR/restore" "$SRC")"

# several processes filling one cache at once
rm -rf "$CACHE"
pids=()
for i in 1 2 3 4; do
	keel snapshots --no-check --json >"$TEST_DIR/par$i" 2>"$TEST_DIR/par$i.err" &
	pids+=($!)
done
for i in 1 2 3 4; do
	wait "${pids[$((i - 1))]}" || fail "parallel snapshots $i failed: $(cat "$TEST_DIR/par$i.err")"
	cmp -s "$TEST_DIR/snaps8" "$TEST_DIR/par$i" || fail "parallel snapshots $i differ"
done
[ -z "$(find "$CACHE" -name '*.tmp.*')" ] || fail "temporary files left in the cache"
for e in $(entries snapshots); do
	[ "$(sha "$e")" = "$(basename "$e")" ] || fail "entry $e is damaged"
done

# check reads the storage, never the cache: a damaged snapshot object on
# the server is found although the cache holds a good copy
m=$(log_mark)
expect_success keel check >/dev/null
expect_gets 5+ "$m" "check with a warm cache"
key=$(s3_keys repo/snapshots/ | sed -n 1p)
[ -n "$key" ] || fail "no snapshot object in the bucket"
entries snapshots | grep -q "/${key##*/}\$" || fail "snapshot ${key##*/} is not cached"
s3_curl -X PUT --data-binary 'not a snapshot' -o /dev/null "$KEEL_S3_ENDPOINT/$S3_BUCKET/$key" ||
	fail "cannot damage $key"
expect_exit 13 keel check
expect_exit 13 keel -r "$DIRECT" check

# ssh:// repositories: the cache answers for what it holds
s3_proxy_stop
DIR=$TEST_DIR/store
cat >"$TEST_DIR/ssh" <<EOS
#!/bin/sh
while [ \$# -gt 1 ]; do shift; done
exec sh -c "\$1"
EOS
chmod +x "$TEST_DIR/ssh"
export KEEL_SSH_COMMAND=$TEST_DIR/ssh KEEL_REMOTE_COMMAND=$KEEL
export KEEL_REPOSITORY=ssh://backup-host$DIR
rm -rf "$CACHE"
keel_init >/dev/null
expect_success keel backup "$SRC" >/dev/null
expect_success keel snapshots --no-check --json >"$TEST_DIR/ssh1"
[ "$(entries snapshots | wc -l)" = 1 ] || fail "ssh:// snapshot not cached"
# damaged in place on the server: served from the cache, seen without it
for f in "$DIR"/snapshots/*; do printf 'damaged' >"$f"; done
expect_success keel snapshots --no-check --json >"$TEST_DIR/ssh2"
cmp -s "$TEST_DIR/ssh1" "$TEST_DIR/ssh2" || fail "ssh:// snapshots not served from the cache"
keel --no-cache snapshots --json >"$TEST_DIR/ssh3" 2>/dev/null || true
! cmp -s "$TEST_DIR/ssh1" "$TEST_DIR/ssh3" || fail "--no-cache did not read the server"
