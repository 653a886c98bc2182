#!/usr/bin/env bash
# keel against a misbehaving S3 service: tests/tools/faultproxy sits between
# keel and the gateway and, for one kind of fault at a time and then for
# all of them mixed, drops connections before the answer, resets them in
# the middle of a request or an answer, answers 503 SlowDown in bursts,
# 500 and 502, answers late or not at all (timeouts), and cuts answers
# short (with the full Content-Length, and with a Content-Length that
# matches the cut but a Content-Range that does not).
#
# With enough retries every backup through the proxy completes, its
# restore (through the proxy too) is identical to the source, and
# check --read-data passes. With too few retries a command may fail, but
# only cleanly, with exit 1 (a storage service error): never a crash,
# never "damaged" (13), and never a wrong restore. Either way, afterwards
# and without the proxy, check --read-data passes and the next backup and
# its restore are right.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-s3.sh"
require_keel
require_treecmp
s3_setup
s3_new_repo repo
DIRECT=$KEEL_REPOSITORY

SRC=$TEST_DIR/src
mkdir -p "$SRC/small"
if asan_build; then big=600000; else big=2500000; fi
pool_bytes "$big" >"$SRC/big"
pool_bytes 300000 >"$SRC/medium"
for i in $(seq 1 40); do pool_bytes $((i * 97)) >"$SRC/small/f$i"; done
printf 'hello\n' >"$SRC/text"

# 1 MiB packs and small chunks: a backup is dozens of requests, a restore too
keel_init --pack-size 1 --chunk-min 16K --chunk-avg 64K --chunk-max 256K
expect_success keel backup "$SRC" >/dev/null

# quick retries; an attempt that moves nothing for 2 s is abandoned
export KEEL_S3_RETRY_DELAY_MS=20 KEEL_S3_TIMEOUT=2
ROUND=0

# change_source: new content each round, so that every backup writes packs
change_source()
{
	ROUND=$((ROUND + 1))
	pool_bytes 150000 >"$SRC/round-$ROUND"
	printf 'round %d\n' "$ROUND" >>"$SRC/text"
	pool_bytes $((ROUND * 1000 + 7)) >"$SRC/small/f$((ROUND % 40 + 1))"
}

# verified_restore REPO: restores latest from REPO and compares it with SRC
verified_restore()
{
	local t=$TEST_DIR/restore-$ROUND-$RANDOM
	expect_success keel -r "$1" restore latest --target "$t" >/dev/null
	expect_success treecmp --ignore-atime "$SRC" "$(restored_root "$t" "$SRC")"
	rm -rf "$t"
}

# must_survive KIND [FAULTPROXY-OPTIONS]: with KIND at 20 % (or the faults
# of SPEC: KIND=RATE for one kind at another rate, a list for a mix) and at
# most two faults in a row per request, backup, restore and check all
# succeed with four attempts per request
must_survive()
{
	local kind=$1 spec=$1=0.2 via n start=$SECONDS
	shift
	case $kind in
	*,*) spec=$kind kind=mix ;;
	*=*) spec=$kind kind=${kind%%=*} ;;
	esac
	change_source
	s3_proxy_start --seed "$ROUND" --faults "$spec" --max-consecutive 2 "$@"
	via=s3:$S3_PROXY_ENDPOINT/$S3_BUCKET/repo
	KEEL_S3_RETRIES=4 expect_success keel -r "$via" backup "$SRC" >/dev/null
	KEEL_S3_RETRIES=4 verified_restore "$via"
	KEEL_S3_RETRIES=4 expect_success keel -r "$via" check --read-data >/dev/null
	s3_proxy_stop
	if [ "$kind" = mix ]; then
		n=$(awk '$NF != "none"' "$S3_PROXY_LOG" | wc -l)
	else
		n=$(s3_proxy_count "$kind")
	fi
	log "$kind: $n of $(wc -l <"$S3_PROXY_LOG") requests faulted ($((SECONDS - start)) s)"
	[ "$n" -gt 0 ] || fail "no request met fault '$kind'"
}

# the faults of all kinds, for the mixed rounds
mix='drop=0.03,reset-req=0.03,reset=0.03,slowdown=0.03,500=0.03,502=0.03,slow=0.02,truncate=0.03,short=0.03'

must_survive drop
must_survive reset-req
must_survive reset
must_survive slowdown --burst 3
must_survive 500
must_survive 502
# a few are enough: each late answer costs its delay, each stall the 2 s
# of KEEL_S3_TIMEOUT (at 20 %, the stalls alone took 90 s)
must_survive slow=0.05 --slow-ms 300
must_survive slow=0.03 --slow-ms 3000 # longer than KEEL_S3_TIMEOUT: a stall
must_survive truncate
must_survive short
must_survive "$mix" --burst 2 --slow-ms 2500
# Every request's first answer lost: each PUT landed, its retry met 412
# (If-None-Match) and keel recognised the object as its own by the ETag.
must_survive drop=1 --max-consecutive 1
grep -q ' PUT .* drop$' "$S3_PROXY_LOG" || fail "no PUT was dropped after it landed"

# Without the proxy all is well.
expect_success keel check --read-data >/dev/null
verified_restore "$DIRECT"

# clean_or_ok RC WHAT: exit 0 or 1 (storage service error), nothing else
clean_or_ok()
{
	case $1 in
	0 | 1) ;;
	*) fail "$2 ended with exit $1: neither success nor a clean failure (1)" ;;
	esac
}

# Every fault mixed, with two attempts per request and no cap on faults in
# a row: some commands fail, and those must fail cleanly.
failed=0
for seed in 1 2 3; do
	change_source
	s3_proxy_start --seed "$seed" --faults "$mix" --burst 2 --slow-ms 2500
	via=s3:$S3_PROXY_ENDPOINT/$S3_BUCKET/repo
	rc=0
	KEEL_S3_RETRIES=2 keel -r "$via" backup "$SRC" >/dev/null 2>"$TEST_DIR/err" || rc=$?
	cat "$TEST_DIR/err" >&9
	clean_or_ok "$rc" "backup through the mix (seed $seed)"
	if [ "$rc" = 0 ]; then
		rc=0
		KEEL_S3_RETRIES=2 keel -r "$via" restore latest --target "$TEST_DIR/mixed-$seed" \
			>/dev/null 2>"$TEST_DIR/err" || rc=$?
		cat "$TEST_DIR/err" >&9
		clean_or_ok "$rc" "restore through the mix (seed $seed)"
		[ "$rc" != 0 ] ||
			expect_success treecmp --ignore-atime "$SRC" \
				"$(restored_root "$TEST_DIR/mixed-$seed" "$SRC")"
	fi
	[ "$rc" = 0 ] || failed=$((failed + 1))
	rc=0
	KEEL_S3_RETRIES=2 keel -r "$via" check --read-data >/dev/null 2>"$TEST_DIR/err" || rc=$?
	cat "$TEST_DIR/err" >&9
	clean_or_ok "$rc" "check through the mix (seed $seed)"
	s3_proxy_stop
	log "mix, seed $seed: $(awk '$NF != "none"' "$S3_PROXY_LOG" | wc -l) of" \
		"$(wc -l <"$S3_PROXY_LOG") requests faulted"

	# afterwards, directly: the repository is sound and takes the next backup
	expect_success keel check --read-data >/dev/null
	expect_success keel backup "$SRC" >/dev/null
	verified_restore "$DIRECT"
done
log "mix: $failed of 3 rounds had a command fail (cleanly)"
