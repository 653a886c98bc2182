#!/usr/bin/env bash
# TLS to S3: certificate verification is on by default; a server signed by
# a CA the system does not know is refused with a clear message unless
# KEEL_S3_CA_FILE names that CA; a certificate for another name is refused
# even with the right CA. A real TLS front (socat with openssl) sits before
# the test gateway, with a CA and certificates made for this test.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-s3.sh"
require_keel
require_treecmp
s3_setup
command -v socat >/dev/null && command -v openssl >/dev/null || skip_or_die "socat or openssl missing"

cd "$TEST_DIR"
# a CA, a certificate for 127.0.0.1, and one for another name
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=keel test CA" \
	-keyout ca.key -out ca.pem 2>/dev/null
make_cert()
{
	local name=$1 san=$2
	openssl req -newkey rsa:2048 -nodes -subj "/CN=$name" -keyout "$name.key" \
		-out "$name.csr" 2>/dev/null
	printf 'subjectAltName=%s\n' "$san" >"$name.ext"
	openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
		-extfile "$name.ext" -out "$name.crt" 2>/dev/null
	cat "$name.crt" "$name.key" >"$name.pem"
}
make_cert good "IP:127.0.0.1"
make_cert wrong "DNS:not-this-host.example"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=other CA" \
	-keyout other.key -out other.pem 2>/dev/null

upstream=${KEEL_S3_ENDPOINT#http://}
# tls_front CERT: a TLS listener forwarding to the gateway, on a port the
# kernel picks (socat says which once it listens); sets TLS_PORT and TLS_PID
tls_front()
{
	local log=$TEST_DIR/socat-$1.log i
	# made before socat starts: the loop below may read it first, and a
	# missing file fails the pipeline (pipefail) and so the test
	: >"$log"
	socat -d -d "OPENSSL-LISTEN:0,bind=127.0.0.1,reuseaddr,fork,cert=$1,verify=0" \
		"TCP:$upstream" 2>"$log" &
	TLS_PID=$!
	BG_PIDS+=("$TLS_PID")
	TLS_PORT=
	for ((i = 0; i < 600; i++)); do
		TLS_PORT=$(sed -n 's/.* listening on AF=2 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$log" |
			head -n 1)
		[ -n "$TLS_PORT" ] && break
		kill -0 "$TLS_PID" 2>/dev/null || fail "socat did not start: $(cat "$log")"
		sleep 0.05
	done
	[ -n "$TLS_PORT" ] || fail "socat did not say its port: $(cat "$log")"
	(exec 3<>"/dev/tcp/127.0.0.1/$TLS_PORT") 2>/dev/null ||
		fail "socat said port $TLS_PORT, but nothing listens there"
}

SRC=$TEST_DIR/src
mkdir -p "$SRC"
head -c 3000000 /dev/urandom >"$SRC/f"
echo small >"$SRC/g"

tls_front good.pem
s3_new_repo tls
# a bucket the gateway knows; the repository goes through TLS
export KEEL_REPOSITORY=s3:https://127.0.0.1:$TLS_PORT/$S3_BUCKET/tls
unset KEEL_S3_CA_FILE AWS_CA_BUNDLE

# default: the system's CAs do not know ours: refused, and said why
rc=0
keel init --kdf-ops 1 --kdf-mem 8 >/dev/null 2>"$TEST_DIR/err" || rc=$?
[ "$rc" != 0 ] && [ "$rc" != 2 ] || fail "an unknown CA was accepted (exit $rc)"
grep -qi "certificate" "$TEST_DIR/err" || fail "the refusal does not mention the certificate: $(cat "$TEST_DIR/err")"
# the wrong CA file: refused
rc=0
KEEL_S3_CA_FILE=$TEST_DIR/other.pem keel init --kdf-ops 1 --kdf-mem 8 >/dev/null 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "a certificate from another CA was accepted"

# our CA: everything works over TLS
export KEEL_S3_CA_FILE=$TEST_DIR/ca.pem
expect_success keel init --kdf-ops 1 --kdf-mem 8 >/dev/null
expect_success keel backup --no-progress "$SRC" >/dev/null
expect_success keel check --read-data >/dev/null
expect_success keel restore latest --target "$TEST_DIR/r" >/dev/null
expect_success treecmp --ignore-atime "$SRC" "$(restored_root "$TEST_DIR/r" "$SRC")"
# AWS_CA_BUNDLE is honoured too
(unset KEEL_S3_CA_FILE; AWS_CA_BUNDLE=$TEST_DIR/ca.pem keel snapshots >/dev/null) ||
	fail "AWS_CA_BUNDLE was not used"

# a certificate for another name, from the right CA: refused
kill "$TLS_PID" 2>/dev/null || true
tls_front wrong.pem
export KEEL_REPOSITORY=s3:https://127.0.0.1:$TLS_PORT/$S3_BUCKET/tls
rc=0
keel snapshots >/dev/null 2>"$TEST_DIR/err2" || rc=$?
[ "$rc" != 0 ] || fail "a certificate for another host name was accepted"
