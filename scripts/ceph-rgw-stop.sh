#!/usr/bin/env bash
# Stops the daemons that scripts/ceph-rgw-start.sh DATADIR started, by
# the pids it saved: radosgw first, then the OSD, then the monitor. Data is
# kept (rm -rf DATADIR wipes it). Idempotent; never touches other processes.
#
#     scripts/ceph-rgw-stop.sh DATADIR
set -uo pipefail

[ $# -eq 1 ] || {
	echo "usage: ceph-rgw-stop.sh DATADIR" >&2
	exit 2
}
DATA=$1

# stop NAME: SIGTERM, up to 10 s of grace, then SIGKILL
stop()
{
	local pidfile=$DATA/$1.pid pid i
	[ -f "$pidfile" ] || return 0
	pid=$(cat "$pidfile")
	case $pid in '' | *[!0-9]*)
		rm -f "$pidfile"
		return 0
		;;
	esac
	# a pid that now belongs to another program is not ours to stop
	if kill -0 "$pid" 2>/dev/null && grep -qa -e ceph- -e radosgw "/proc/$pid/cmdline"; then
		kill -TERM "$pid" 2>/dev/null
		for i in $(seq 1 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			kill -KILL "$pid" 2>/dev/null
			sleep 0.1
		fi
	fi
	rm -f "$pidfile"
}

for name in rgw osd mon; do
	stop "$name"
done
exit 0
