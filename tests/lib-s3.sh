# shellcheck shell=bash
#
# tests/lib-s3.sh: sourced after tests/lib.sh by the S3 tests (t2*), as
# git's lib-httpd.sh is. It gives each test a real S3 server on 127.0.0.1:
#
#   s3_setup            starts (or joins) a Ceph RADOS Gateway and exports
#                       AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
#                       AWS_DEFAULT_REGION and KEEL_S3_ENDPOINT; skips the
#                       test (skip_or_die) when Ceph is not installed
#   s3_new_repo [NAME]  points KEEL_REPOSITORY at a new, unique bucket:
#                       s3:$KEEL_S3_ENDPOINT/BUCKET/NAME (bucket in S3_BUCKET)
#   s3_curl ARGS...     curl with SigV4 and the test's key pair (an
#                       independent S3 client, to look at or damage objects)
#   s3_keys PREFIX      every key below PREFIX in S3_BUCKET, following
#                       continuation tokens, one per line
#   s3_objects PREFIX   the same as "KEY SIZE ETAG" lines
#   s3_dir_bytes LOC    total size of the objects below LOC, an S3 location
#                       in S3_BUCKET such as "$KEEL_REPOSITORY/data" (the S3
#                       side of lib.sh's dir_bytes)
#   s3_repo_listing     every object of $KEEL_REPOSITORY with size and ETag
#                       (MD5), sorted: equal when nothing was written (the S3
#                       side of lib.sh's repo_listing)
#
# One gateway serves every S3 test of a run, and the runs of several build
# directories at once: starting Ceph takes about 20 s, a test then needs
# only its own bucket. scripts/test.sh starts it ahead, while it builds,
# with `bash tests/lib-s3.sh --start PID`, which also gives PID (the
# script itself) a lease, so that the gateway lives from stage to stage. The first test starts it under a lock in
# $KEEL_TEST_S3_STATE (default ${TMPDIR:-/tmp}/keel-test-s3-UID-N, N a
# checksum of the source tree's path); each test
# leaves its pid there as a lease; a small reaper stops the gateway and
# wipes its data once no lease has been alive for KEEL_TEST_S3_IDLE
# seconds (default 30). Daemons run in their own session with every
# descriptor redirected, so neither meson nor a test's cleanup waits on them.
#
# KEEL_TEST_S3_ENDPOINT=http://HOST:PORT with AWS_ACCESS_KEY_ID and
# AWS_SECRET_ACCESS_KEY set runs the tests against another S3 server
# instead (MinIO, a cloud); nothing is started then.

# run as a script (--reaper, --start): the source tree is this file's
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	KEEL_SOURCE_ROOT=$(cd "$(dirname "$0")/.." && pwd)
fi
# one gateway per user and source tree: another checkout may run other scripts
S3_STATE=${KEEL_TEST_S3_STATE:-${TMPDIR:-/tmp}/keel-test-s3-$(id -u)-$(printf '%s' \
	"${KEEL_SOURCE_ROOT:-}" | cksum | cut -d' ' -f1)}
S3_IDLE=${KEEL_TEST_S3_IDLE:-30}
S3_BUCKET=
S3_SCRIPTS=$KEEL_SOURCE_ROOT/scripts

# s3_proc_start PID: the process's start time (clock ticks since boot), so
# that a lease outlives neither its process nor a reuse of its pid
s3_proc_start()
{
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	awk '{ print $20 }' <<<"$stat"
}

# s3_lease_alive FILE: the lease's process still runs
s3_lease_alive()
{
	local pid start
	pid=$(basename "$1")
	start=$(s3_proc_start "$pid") || return 1
	[ "$start" = "$(cat "$1" 2>/dev/null)" ]
}

s3_answers()
{
	curl -s -o /dev/null -m 3 "$1/"
}

# s3_reaper STATE IDLE: runs detached; stops the gateway when idle
s3_reaper()
{
	local state=$1 idle=$2 quiet=0 f alive
	while sleep 1; do
		alive=0
		for f in "$state"/leases/*; do
			[ -e "$f" ] || continue
			if s3_lease_alive "$f"; then alive=1; else rm -f "$f"; fi
		done
		if [ "$alive" = 1 ]; then
			quiet=0
			continue
		fi
		quiet=$((quiet + 1))
		[ "$quiet" -ge "$idle" ] || continue
		# a test may be joining right now: decide under the lock
		exec 8>"$state.lock"
		flock 8
		alive=0
		for f in "$state"/leases/*; do
			[ -e "$f" ] && s3_lease_alive "$f" && alive=1
		done
		if [ "$alive" = 0 ]; then
			"$S3_SCRIPTS/ceph-rgw-stop.sh" "$state/ceph" >/dev/null 2>&1
			rm -rf "$state/ceph" "$state/env"
			rm -f "$state/reaper.pid"
			exit 0
		fi
		flock -u 8
		exec 8>&-
		quiet=0
	done
}

if [ "${1:-}" = --reaper ] && [ "${BASH_SOURCE[0]}" = "$0" ]; then
	KEEL_SOURCE_ROOT=$(cd "$(dirname "$0")/.." && pwd)
	S3_SCRIPTS=$KEEL_SOURCE_ROOT/scripts
	s3_reaper "$2" "$3"
	exit 0
fi

# s3_free_port: a port P with P and P+1 (the monitor's) free on 127.0.0.1
s3_free_port()
{
	local p i
	for i in $(seq 1 50); do
		p=$((20000 + RANDOM % 30000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null &&
			! (exec 3<>"/dev/tcp/127.0.0.1/$((p + 1))") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

s3_start_reaper()
{
	local pid
	pid=$(cat "$S3_STATE/reaper.pid" 2>/dev/null || true)
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
		grep -qa lib-s3.sh "/proc/$pid/cmdline" 2>/dev/null; then
		return 0
	fi
	# no descriptor of the test (its log on fd 9, the lock on fd 8) stays open in it
	setsid bash "$KEEL_SOURCE_ROOT/tests/lib-s3.sh" --reaper "$S3_STATE" "$S3_IDLE" \
		</dev/null >/dev/null 2>&1 8>&- 9>&- &
	echo $! >"$S3_STATE/reaper.pid"
}

# s3_start_locked: with the lock held, makes $S3_STATE/env describe a live gateway
s3_start_locked()
{
	local port try
	if [ -f "$S3_STATE/env" ]; then
		# shellcheck disable=SC1091
		. "$S3_STATE/env"
		s3_answers "$KEEL_S3_ENDPOINT" && return 0
		log "lib-s3: the gateway at $KEEL_S3_ENDPOINT is gone; starting a new one"
	fi
	"$S3_SCRIPTS/ceph-rgw-stop.sh" "$S3_STATE/ceph" >/dev/null 2>&1 || true
	rm -rf "$S3_STATE/ceph" "$S3_STATE/env"
	for try in 1 2; do
		port=$(s3_free_port) || fail "lib-s3: no free port"
		if "$S3_SCRIPTS/ceph-rgw-start.sh" "$S3_STATE/ceph" "$port" \
			>"$S3_STATE/env.new" 2>"$S3_STATE/start.log" 8>&- 9>&-; then
			mv "$S3_STATE/env.new" "$S3_STATE/env"
			# shellcheck disable=SC1091
			. "$S3_STATE/env"
			return 0
		fi
		log "lib-s3: starting Ceph on port $port failed (try $try):"
		tail -n 5 "$S3_STATE/start.log" >&9
		"$S3_SCRIPTS/ceph-rgw-stop.sh" "$S3_STATE/ceph" >/dev/null 2>&1 || true
		for f in "$S3_STATE"/ceph/log/*.log; do
			[ -f "$f" ] && { log "--- $f"; tail -n 15 "$f" >&9; }
		done
		rm -rf "$S3_STATE/ceph"
	done
	fail "lib-s3: cannot start a Ceph RADOS Gateway (see above)"
}

s3_setup()
{
	local prog start
	# loopback only: a proxy from the environment must not see our requests
	unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy
	export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
	command -v curl >/dev/null || skip_or_die "curl is not installed"
	if [ -n "${KEEL_TEST_S3_ENDPOINT:-}" ]; then
		[ -n "${AWS_ACCESS_KEY_ID:-}" ] && [ -n "${AWS_SECRET_ACCESS_KEY:-}" ] ||
			fail "KEEL_TEST_S3_ENDPOINT needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
		export KEEL_S3_ENDPOINT=$KEEL_TEST_S3_ENDPOINT
		export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1}
		return 0
	fi
	for prog in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph-authtool ceph flock setsid; do
		command -v "$prog" >/dev/null ||
			skip_or_die "no '$prog': Ceph is not installed (scripts/install-deps.sh installs it)"
	done
	mkdir -p "$S3_STATE/leases"
	exec 8>"$S3_STATE.lock"
	flock 8
	start=$SECONDS
	s3_start_locked
	s3_proc_start $$ >"$S3_STATE/leases/$$"
	s3_start_reaper
	flock -u 8
	exec 8>&-
	log "lib-s3: S3 server $KEEL_S3_ENDPOINT (ready after $((SECONDS - start)) s)"
	export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION KEEL_S3_ENDPOINT
	unset AWS_SESSION_TOKEN AWS_PROFILE AWS_REGION
}

s3_new_repo()
{
	local name=${1:-repo} t
	t=$(printf '%s' "$TEST_NAME" | tr -c 'a-z0-9\n' '-' | cut -c1-24)
	S3_BUCKET=keel-$t-$(date +%s)-$$-$RANDOM
	S3_BUCKET=${S3_BUCKET:0:63}
	export KEEL_REPOSITORY=s3:$KEEL_S3_ENDPOINT/$S3_BUCKET/$name
}

s3_curl()
{
	curl -s --aws-sigv4 "aws:amz:${AWS_DEFAULT_REGION:-us-east-1}:s3" \
		--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
		-H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$@"
}

# s3_urlencode STRING: every byte but unreserved ones as %XX
s3_urlencode()
{
	local s=$1 out= c i
	for ((i = 0; i < ${#s}; i++)); do
		c=${s:i:1}
		case $c in
		[A-Za-z0-9._~-]) out+=$c ;;
		*) out+=$(printf '%%%02X' "'$c") ;;
		esac
	done
	printf '%s' "$out"
}

s3_keys()
{
	local prefix=$1 token= page q
	while :; do
		q="list-type=2&prefix=$(s3_urlencode "$prefix")"
		[ -z "$token" ] || q="continuation-token=$(s3_urlencode "$token")&$q"
		page=$(s3_curl "$KEEL_S3_ENDPOINT/$S3_BUCKET?$q") || fail "s3_keys: listing failed"
		case $page in *'<ListBucketResult'*) ;; *) fail "s3_keys: not a listing: $page" ;; esac
		grep -o '<Key>[^<]*</Key>' <<<"$page" | sed -e 's/^<Key>//' -e 's/<\/Key>$//' || true
		case $page in *'<IsTruncated>true</IsTruncated>'*) ;; *) break ;; esac
		token=$(grep -o '<NextContinuationToken>[^<]*</NextContinuationToken>' <<<"$page" |
			sed -e 's/^<NextContinuationToken>//' -e 's/<\/NextContinuationToken>$//')
		[ -n "$token" ] || fail "s3_keys: truncated listing without a token"
	done
}

# s3_list_pages PREFIX: the raw ListObjectsV2 pages below PREFIX, one per line
s3_list_pages()
{
	local prefix=$1 token= page q
	while :; do
		q="list-type=2&prefix=$(s3_urlencode "$prefix")"
		[ -z "$token" ] || q="continuation-token=$(s3_urlencode "$token")&$q"
		page=$(s3_curl "$KEEL_S3_ENDPOINT/$S3_BUCKET?$q") || fail "s3_list_pages: listing failed"
		case $page in *'<ListBucketResult'*) ;; *) fail "s3_list_pages: not a listing: $page" ;; esac
		printf '%s\n' "$page" | tr -d '\n'
		echo
		case $page in *'<IsTruncated>true</IsTruncated>'*) ;; *) break ;; esac
		token=$(grep -o '<NextContinuationToken>[^<]*</NextContinuationToken>' <<<"$page" |
			sed -e 's/^<NextContinuationToken>//' -e 's/<\/NextContinuationToken>$//')
		[ -n "$token" ] || fail "s3_list_pages: truncated listing without a token"
	done
}

s3_objects()
{
	local page
	s3_list_pages "$1" | while IFS= read -r page; do
		printf '%s' "$page" | awk -v RS='<Contents>' 'NR > 1 {
		k = s = e = ""
		if (match($0, /<Key>[^<]*<\/Key>/)) k = substr($0, RSTART + 5, RLENGTH - 11)
		if (match($0, /<Size>[0-9]*<\/Size>/)) s = substr($0, RSTART + 6, RLENGTH - 13)
		if (match($0, /<ETag>[^<]*<\/ETag>/)) e = substr($0, RSTART + 6, RLENGTH - 13)
		gsub(/&quot;|"/, "", e)
		if (k != "") print k, s, e
	}'
	done
}

# s3_loc_prefix LOC: the key prefix of an S3 location in S3_BUCKET
s3_loc_prefix()
{
	local p=${1#s3:"$KEEL_S3_ENDPOINT"/"$S3_BUCKET"}
	[ "$p" != "$1" ] || fail "'$1' is not in bucket $S3_BUCKET"
	p=${p#/}
	printf '%s\n' "${p%/}"
}

s3_dir_bytes()
{
	local p
	p=$(s3_loc_prefix "$1")
	s3_objects "${p:+$p/}" | awk '{ s += $2 } END { print s + 0 }'
}

s3_repo_listing()
{
	local p out
	p=$(s3_loc_prefix "$KEEL_REPOSITORY")
	out=$(s3_objects "${p:+$p/}" | sort)
	# a repository has its config at least: nothing listed means a broken listing
	grep -q "^${p:+$p/}config [0-9]* [0-9a-f]" <<<"$out" || fail "s3_repo_listing: no config in: $out"
	# locks are left out, as repo_listing does: a killed process leaves its lock
	grep -v "^${p:+$p/}locks/" <<<"$out" || true
}

# ---- fault injection (tests/tools/faultproxy.c) ----------------------------
#
#   s3_proxy_start [FAULTPROXY-OPTIONS...]
#                       starts a faultproxy between keel and the gateway on a
#                       free port of 127.0.0.1: sets S3_PROXY_ENDPOINT
#                       (http://127.0.0.1:PORT), S3_PROXY_LOG (one line per
#                       request) and S3_PROXY_PID; stops it at exit
#   s3_proxy_stop       stops it
#   s3_proxy_count KIND how many requests met fault KIND so far

FAULTPROXY=${FAULTPROXY:-$(declare -F find_built >/dev/null && find_built tests/tools/faultproxy || true)}
S3_PROXY_PID=
S3_PROXY_N=0

s3_proxy_start()
{
	local up=${KEEL_S3_ENDPOINT#http://} i
	[ -n "$FAULTPROXY" ] && [ -x "$FAULTPROXY" ] || skip_or_die "no faultproxy binary (set FAULTPROXY)"
	case $KEEL_S3_ENDPOINT in http://*) ;; *) skip_or_die "faultproxy speaks plain HTTP only" ;; esac
	s3_proxy_stop
	S3_PROXY_N=$((S3_PROXY_N + 1))
	S3_PROXY_LOG=$TEST_DIR/faultproxy-$S3_PROXY_N.log
	: >"$S3_PROXY_LOG"
	rm -f "$TEST_DIR/faultproxy.port"
	"$FAULTPROXY" --log "$S3_PROXY_LOG" --port-file "$TEST_DIR/faultproxy.port" "$@" 0 "${up%%/*}" \
		</dev/null 2>>"$TEST_DIR/faultproxy.err" 8>&- 9>&- &
	S3_PROXY_PID=$!
	BG_PIDS+=("$S3_PROXY_PID")
	for i in $(seq 1 100); do
		[ -s "$TEST_DIR/faultproxy.port" ] && break
		kill -0 "$S3_PROXY_PID" 2>/dev/null ||
			fail "faultproxy did not start: $(cat "$TEST_DIR/faultproxy.err")"
		sleep 0.05
	done
	[ -s "$TEST_DIR/faultproxy.port" ] || fail "faultproxy did not say its port"
	S3_PROXY_ENDPOINT=http://127.0.0.1:$(cat "$TEST_DIR/faultproxy.port")
	log "lib-s3: faultproxy $* on $S3_PROXY_ENDPOINT (log $S3_PROXY_LOG)"
}

s3_proxy_stop()
{
	[ -n "$S3_PROXY_PID" ] || return 0
	kill "$S3_PROXY_PID" 2>/dev/null || true
	wait "$S3_PROXY_PID" 2>/dev/null || true
	S3_PROXY_PID=
}

s3_proxy_count()
{
	awk -v k="$1" '$NF == k { n++ } END { print n + 0 }' "$S3_PROXY_LOG"
}

# ---- objects as files: the S3 side of lib.sh's file helpers ----------------
#
# An object is named by its S3 location in S3_BUCKET, as repo_files prints
# it: "$KEEL_REPOSITORY/data/ab/ab12...". lib.sh's file_size, flip_byte,
# repo_files, repo_cp, repo_mv, repo_rm and repo_truncate call these for
# such names, so a test damages a pack the same way on either backend.
#
#   s3_url LOC          the object's URL
#   s3_files LOC        every object below LOC, as locations, sorted
#   s3_size LOC         its size in bytes (HEAD)
#   s3_get LOC FILE     downloads it into FILE
#   s3_put FILE LOC     uploads FILE as it (a plain PUT, as a damaging disk
#                       or a tampering admin would leave it)
#   s3_rm LOC           deletes it
#   s3_flip_byte LOC OFFSET  inverts one byte: GET, change, PUT

s3_url()
{
	local k
	k=$(s3_loc_prefix "$1")
	[ -n "$k" ] || fail "'$1' names the bucket, not an object"
	printf '%s/%s/%s\n' "$KEEL_S3_ENDPOINT" "$S3_BUCKET" "$k"
}

s3_files()
{
	local p
	p=$(s3_loc_prefix "$1")
	s3_keys "${p:+$p/}" | sed "s|^|s3:$KEEL_S3_ENDPOINT/$S3_BUCKET/|" | sort
}

s3_size()
{
	local u h
	u=$(s3_url "$1")
	h=$(s3_curl -f -I "$u") || fail "s3_size: HEAD '$1' failed"
	h=$(tr -d '\r' <<<"$h" | awk 'tolower($1) == "content-length:" { print $2 }')
	[ -n "$h" ] || fail "s3_size: no Content-Length for '$1'"
	printf '%s\n' "$h"
}

s3_get()
{
	local u
	u=$(s3_url "$1")
	s3_curl -f -o "$2" "$u" || fail "s3_get: GET '$1' failed"
}

s3_put()
{
	local u
	u=$(s3_url "$2")
	s3_curl -f -o /dev/null -T "$1" "$u" || fail "s3_put: PUT '$2' failed"
}

s3_rm()
{
	local u
	u=$(s3_url "$1")
	s3_curl -f -o /dev/null -X DELETE "$u" || fail "s3_rm: DELETE '$1' failed"
}

s3_flip_byte()
{
	local f=$TEST_DIR/.s3-flip
	s3_get "$1" "$f"
	flip_byte "$f" "$2"
	s3_put "$f" "$1"
	rm -f "$f"
}

# ---- the gateway's administration -----------------------------------------
#
#   s3_admin ARGS...    radosgw-admin on the tests' own gateway (skips the
#                       test against another server: KEEL_TEST_S3_ENDPOINT)
#   s3_bucket_quota BYTES  limits S3_BUCKET to BYTES of objects: the S3 side
#                       of a small file system (RGW then answers a PUT that
#                       would exceed it with 403 QuotaExceeded)

s3_admin()
{
	[ -z "${KEEL_TEST_S3_ENDPOINT:-}" ] ||
		skip_or_die "radosgw-admin needs the tests' own gateway, not $KEEL_TEST_S3_ENDPOINT"
	radosgw-admin -c "$S3_STATE/ceph/ceph.conf" -n client.admin "$@"
}

s3_bucket_quota()
{
	s3_admin quota set --quota-scope=bucket --bucket="$S3_BUCKET" --max-size="$1" >/dev/null ||
		fail "cannot set the quota of bucket $S3_BUCKET"
	s3_admin quota enable --quota-scope=bucket --bucket="$S3_BUCKET" >/dev/null ||
		fail "cannot enable the quota of bucket $S3_BUCKET"
}

# ---- started ahead: bash tests/lib-s3.sh --start PID ----------------------

if [ "${1:-}" = --start ] && [ "${BASH_SOURCE[0]}" = "$0" ]; then
	[ -n "${2:-}" ] && [ -d "/proc/$2" ] || {
		echo "usage: bash tests/lib-s3.sh --start PID" >&2
		exit 2
	}
	log() { printf 'lib-s3: %s\n' "$*" >&2; }
	fail()
	{
		log "$*"
		exit 1
	}
	exec 9>&2
	# another server, or no Ceph: the tests say so themselves
	[ -z "${KEEL_TEST_S3_ENDPOINT:-}" ] || exit 0
	for prog in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph-authtool ceph curl flock setsid; do
		command -v "$prog" >/dev/null || exit 0
	done
	mkdir -p "$S3_STATE/leases"
	exec 8>"$S3_STATE.lock"
	flock 8
	s3_start_locked
	s3_proc_start "$2" >"$S3_STATE/leases/$2"
	s3_start_reaper
	flock -u 8
	exec 8>&-
	log "gateway $KEEL_S3_ENDPOINT up; held for process $2"
	exit 0
fi
