#!/usr/bin/env bash
# Starts a single-host Ceph RADOS Gateway on 127.0.0.1 for keel's S3 tests:
#
#     eval "$(scripts/ceph-rgw-start.sh DATADIR [PORT])"
#
# One monitor (msgr2 on 127.0.0.1:PORT+1), one BlueStore OSD on a sparse
# file and radosgw (beast) on 127.0.0.1:PORT (default 7480), all from
# Debian 12's packages:
#
#     apt-get install --no-install-recommends ceph-mon ceph-osd radosgw ceph-common
#
# Everything lives below DATADIR; nothing listens beyond loopback. Inside
# the cluster there is no authentication (cephx off); S3 requests are still
# signed with the printed key pair. On success the last lines on stdout are
# shell exports:
#
#     export AWS_ACCESS_KEY_ID=...  AWS_SECRET_ACCESS_KEY=...
#     export AWS_DEFAULT_REGION=us-east-1  KEEL_S3_ENDPOINT=http://127.0.0.1:PORT
#
# Idempotent: with the daemons up it only prints the exports; after
# scripts/ceph-rgw-stop.sh it restarts them on the kept data. Progress and
# errors go to stderr, daemon logs to DATADIR/log/.
#
# Environment: KEEL_CEPH_BLOCK_GB (sparse OSD file size, default 8),
# KEEL_S3_ACCESS_KEY / KEEL_S3_SECRET_KEY (the key pair to create).
#
# Virtual-hosted requests (http://BUCKET.localhost:PORT/key) work
# too: the gateway's domain is "localhost".
#
# Two settings matter and are easy to get wrong: without cephx every
# messenger mode must be "crc" or radosgw never reaches the monitor, and
# BlueStore's block file must not be called "block" inside the OSD's data
# directory (mkfs makes a symlink of that name and then fails with ELOOP).
set -euo pipefail

usage()
{
	echo "usage: ceph-rgw-start.sh DATADIR [PORT]" >&2
	exit 2
}

[ $# -ge 1 ] && [ $# -le 2 ] || usage
DATA=$1
PORT=${2:-7480}
case $PORT in '' | *[!0-9]*) usage ;; esac
MON_PORT=$((PORT + 1))
BLOCK_GB=${KEEL_CEPH_BLOCK_GB:-8}
ACCESS_KEY=${KEEL_S3_ACCESS_KEY:-keel-test-access-key}
SECRET_KEY=${KEEL_S3_SECRET_KEY:-keel-test-secret-key}
START=$(date +%s%N)

say()
{
	printf 'ceph-rgw-start: %s\n' "$*" >&2
}

die()
{
	say "$*"
	exit 1
}

for prog in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph-authtool ceph curl; do
	command -v "$prog" >/dev/null 2>&1 ||
		die "'$prog' is missing: apt-get install --no-install-recommends ceph-mon ceph-osd radosgw ceph-common curl"
done

mkdir -p "$DATA"
DATA=$(cd "$DATA" && pwd)
CONF=$DATA/ceph.conf
CEPH=(-c "$CONF")

# running NAME: true when DATADIR/NAME.pid names a live process
running()
{
	local pid
	[ -f "$DATA/$1.pid" ] || return 1
	pid=$(cat "$DATA/$1.pid")
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
		grep -qa -e ceph- -e radosgw "/proc/$pid/cmdline" 2>/dev/null
}

# close_fds: closes every descriptor above 2, so that a daemon keeps no
# pipe of its caller open (a test runner waits for those to close)
close_fds()
{
	local fd n
	for fd in /proc/self/fd/*; do
		n=${fd##*/}
		[ "$n" -gt 2 ] 2>/dev/null && eval "exec $n>&-"
	done
	return 0
}

# spawn NAME CMD...: starts a daemon in the foreground mode in its own
# session, every descriptor redirected, and records its pid
spawn()
{
	local name=$1
	shift
	(
		close_fds
		exec setsid "$@" </dev/null >"$DATA/log/$name.out" 2>&1
	) &
	echo $! >"$DATA/$name.pid"
}

print_env()
{
	printf 'export AWS_ACCESS_KEY_ID=%s\n' "$ACCESS_KEY"
	printf 'export AWS_SECRET_ACCESS_KEY=%s\n' "$SECRET_KEY"
	printf 'export AWS_DEFAULT_REGION=us-east-1\n'
	printf 'export KEEL_S3_ENDPOINT=http://127.0.0.1:%s\n' "$PORT"
}

answers()
{
	curl -s -o /dev/null -m 2 "http://127.0.0.1:$PORT/"
}

if running mon && running osd && running rgw && answers; then
	print_env
	exit 0
fi

write_conf()
{
	local fsid=$1
	cat >"$CONF" <<EOF
[global]
fsid = $fsid
mon_host = v2:127.0.0.1:$MON_PORT
public_addr = 127.0.0.1
ms_bind_msgr1 = false
ms_bind_msgr2 = true
ms_cluster_mode = crc
ms_service_mode = crc
ms_client_mode = crc
ms_mon_cluster_mode = crc
ms_mon_service_mode = crc
ms_mon_client_mode = crc
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
run_dir = $DATA/run
admin_socket = $DATA/run/\$name.asok
log_file = $DATA/log/\$name.log
pid_file = $DATA/run/\$name.pid
keyring = $DATA/keyring
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
mon_max_pg_per_osd = 1000
mon_allow_pool_delete = true

[mon]
mon_data = $DATA/mon/\$cluster-\$id

[osd]
osd_data = $DATA/osd/\$cluster-\$id
osd_objectstore = bluestore
bluestore_block_path = $DATA/osd/\$cluster-\$id.img
bluestore_block_size = $((BLOCK_GB << 30))
bluestore_block_create = true
bluestore_fsck_on_mount = false
osd_memory_target = 805306368
osd_max_object_name_len = 460
osd_max_object_namespace_len = 64

[client.rgw.keel]
rgw_frontends = beast endpoint=127.0.0.1:$PORT tcp_nodelay=1
rgw_data = $DATA/rgw
rgw_thread_pool_size = 64
rgw_enable_usage_log = false
# virtual-hosted addressing: BUCKET.localhost (curl resolves *.localhost to loopback itself)
rgw_dns_name = localhost
EOF
}

# A first start makes the monitor's store and the OSD; later starts reuse them.
if [ ! -f "$CONF" ]; then
	fsid=$(cat /proc/sys/kernel/random/uuid)
	mkdir -p "$DATA/run" "$DATA/log" "$DATA/mon" "$DATA/osd" "$DATA/rgw"
	write_conf "$fsid"
	ceph-authtool --create-keyring "$DATA/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
	monmaptool --create --fsid "$fsid" --addv keel "[v2:127.0.0.1:$MON_PORT]" \
		"$DATA/monmap" >/dev/null
	ceph-mon "${CEPH[@]}" --mkfs -i keel --monmap "$DATA/monmap" --keyring "$DATA/keyring" \
		>"$DATA/log/mon-mkfs.out" 2>&1 || die "ceph-mon --mkfs failed; see $DATA/log"
fi

running mon || spawn mon ceph-mon "${CEPH[@]}" -i keel -f
timeout 60 ceph "${CEPH[@]}" mon stat >/dev/null 2>&1 || die "the monitor does not answer; see $DATA/log"

if [ ! -f "$DATA/osd/ceph-0/fsid" ]; then
	uuid=$(cat /proc/sys/kernel/random/uuid)
	id=$(timeout 60 ceph "${CEPH[@]}" osd new "$uuid")
	[ "$id" = 0 ] || die "expected OSD id 0, got '$id'"
	mkdir -p "$DATA/osd/ceph-0"
	ceph-osd "${CEPH[@]}" -i 0 --mkfs --osd-uuid "$uuid" >"$DATA/log/osd-mkfs.out" 2>&1 ||
		die "ceph-osd --mkfs failed; see $DATA/log/osd-mkfs.out"
fi

running osd || spawn osd ceph-osd "${CEPH[@]}" -i 0 -f
for _ in $(seq 1 300); do
	running osd || die "ceph-osd exited; see $DATA/log"
	if timeout 10 ceph "${CEPH[@]}" osd stat -f json 2>/dev/null | grep -q '"num_up_osds":1'; then
		break
	fi
	sleep 0.2
done

running rgw || spawn rgw radosgw "${CEPH[@]}" -n client.rgw.keel -f
for _ in $(seq 1 900); do
	running rgw || die "radosgw exited; see $DATA/log"
	answers && break
	sleep 0.1
done
answers || die "radosgw does not answer on 127.0.0.1:$PORT; see $DATA/log"

if ! radosgw-admin "${CEPH[@]}" -n client.admin user info --uid=keel-test >/dev/null 2>&1; then
	radosgw-admin "${CEPH[@]}" -n client.admin user create --uid=keel-test \
		--display-name="keel tests" --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" \
		>/dev/null || die "radosgw-admin user create failed"
fi

say "up on 127.0.0.1:$PORT in $((($(date +%s%N) - START) / 1000000)) ms" \
	"(mon $(cat "$DATA/mon.pid"), osd $(cat "$DATA/osd.pid"), rgw $(cat "$DATA/rgw.pid"))"
print_env
