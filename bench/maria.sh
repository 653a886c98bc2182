#!/usr/bin/env bash
# bench/maria.sh: keel db next to mariabackup --stream=xbstream | zstd
# (issue 19's Benchmark) on a sysbench database in a throwaway MariaDB:
#
#     bench/maria.sh [--size MB] [--duration S] [--clients N] [--s3]
#                    [--keel PATH] [--no-install]
#
#   (a) first base backup: wall time and what the repository holds
#       afterwards: keel db backup vs mariabackup --backup
#       --stream=xbstream | zstd -3 into one file;
#   (b) after --duration seconds of sysbench oltp_read_write load, a
#       second base backup of each: its time and what it added (keel's is
#       deduplicated against the first; mariabackup's is a whole new file);
#       the binary log keel's stream stored during the load;
#   (c) restore: keel db restore --latest (files written and prepared, the
#       binary log replayed) vs zstd -d | mbstream -x and mariabackup
#       --prepare of the second backup; then, for each, mariadbd started on
#       it until it answers; the rows of every table compared with the
#       origin's;
#   (d) during the load, the lag from commit to durable in keel: a probe
#       commits a row every 100 ms and notes, right after the commit, the
#       server's binary log position (Binlog_snapshot_file/position) and
#       the time; keel --json db stream prints a "stored" line with the
#       position and time as each log record is durable in the repository
#       (docs/DATABASES.md). Lag = the first stored line at or past the
#       probe's position minus the probe's commit time: p50, p99, max. The
#       position is read after the commit, so it may include other
#       clients' later commits: the lag is if anything overstated.
#       --s3 repeats it with a repository on the project's Ceph RADOS
#       Gateway (scripts/ceph-rgw-start.sh) on loopback.
#
# --size defaults to 1200 (MB of sysbench tables on disk: 4 tables),
# --duration to 600 s, --clients to 2. Each figure is one run; the lag
# figures are percentiles over every probe. The machine's load is printed
# with each step. It measures and reports; it never fails because a figure
# is slow. Output: the table on stdout and in bench/out/maria-STAMP.txt;
# logs and the throwaway server in bench/work/maria (removed at the start
# of the next run).
set -euo pipefail
BENCH=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$BENCH")
. "$BENCH/lib.sh"

SIZE=1200 DURATION=600 CLIENTS=2 S3='' KEEL='' INSTALL=1
while [ $# -gt 0 ]; do
	case $1 in
	--size) SIZE=$2; shift ;;
	--duration) DURATION=$2; shift ;;
	--clients) CLIENTS=$2; shift ;;
	--s3) S3=1 ;;
	--keel) KEEL=$2; shift ;;
	--no-install) INSTALL= ;;
	-h | --help) sed -n '2,38p' "$0"; exit 0 ;;
	*) die "unknown option $1" ;;
	esac
	shift
done

SBIN=/usr/sbin
bench_install mariadb-server mariadb-client mariadb-backup sysbench zstd python3 jq
for p in mariabackup mbstream mariadb mariadb-admin mariadb-install-db sysbench zstd python3 jq; do
	command -v "$p" >/dev/null || die "$p is missing (apt-get install mariadb-server mariadb-backup sysbench zstd python3 jq)"
done
[ -x "$SBIN/mariadbd" ] || die "MariaDB's server is missing (apt-get install mariadb-server)"
release_keel

WORK=$BENCH/work/maria
OUT=$BENCH/out
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
REPORT=$OUT/maria-$STAMP.txt
LOGS=$WORK/logs
MW=$WORK/m
SOCK=$MW/sock/mysqld.sock
SOCK2=$MW/sock2/mysqld.sock

# ---- the throwaway server (as tests/lib-maria.sh does it, written for bench) ----
# Run as root, the servers run as the mysql user, which must reach $MW;
# keel, mariabackup and sysbench run as the caller over the socket.
as_mysql() {
	if [ "$(id -u)" = 0 ]; then runuser -u mysql -- "$@"; else "$@"; fi
}
declare -A SPID=() # socket -> pid of the mariadbd serving it
# a previous run's servers, then its files
for f in "$MW"/sock*/mysqld.pid; do
	[ -f "$f" ] || continue
	kill -KILL "$(cat "$f")" 2>/dev/null || true
done
[ ! -d "$WORK/ceph" ] || "$ROOT/scripts/ceph-rgw-stop.sh" "$WORK/ceph" >/dev/null 2>&1 || true
rm -rf "$WORK"
mkdir -p "$WORK" "$OUT" "$LOGS" "$MW"
if [ "$(id -u)" = 0 ]; then
	id mysql >/dev/null 2>&1 || die "no mysql user"
	chmod 711 "$WORK"
	chown mysql: "$MW"
	as_mysql test -x "$MW" || die "the mysql user cannot reach $MW (a parent directory's mode)"
fi
as_mysql mkdir -p "$MW/data" "$MW/sock" "$MW/sock2"
DATA=$MW/data
URI="mariadb://root@localhost/?socket=$SOCK"
unset KEEL_PASSWORD_FILE KEEL_PASSWORD_COMMAND KEEL_REPOSITORY KEEL_CONFIG KEEL_MARIADB_PASSWORD_FILE

# maria_up DATADIR SOCKET LOG: mariadbd with a binary log, until it answers
maria_up() {
	local i pid opts=()
	[ "$(id -u)" != 0 ] || opts+=(--user=mysql)
	rm -f "$2"
	"$SBIN/mariadbd" --no-defaults --datadir="$1" --socket="$2" --pid-file="${2%.sock}.pid" \
		--skip-networking --skip-name-resolve --log-error="$3" \
		--log-bin="$1/bin" --server-id=1 --binlog-format=ROW \
		--innodb-buffer-pool-size=256M --innodb-log-file-size=256M --max-connections=64 \
		"${opts[@]}" >/dev/null 2>&1 &
	pid=$!
	for ((i = 0; i < 36000; i++)); do
		if mariadb-admin --no-defaults -S "$2" -u root ping >/dev/null 2>&1; then
			SPID[$2]=$pid
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	return 1
}
maria_down() { # SOCKET
	local pid=${SPID[$1]:-}
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	SPID[$1]=
}
sqls() { # SOCKET SQL: rows tab-separated
	mariadb --no-defaults -S "$1" -u root -N -B -e "$2"
}
sql() { sqls "$SOCK" "$1"; }
STREAM_PID=
cleanup() {
	[ -z "$STREAM_PID" ] || kill "$STREAM_PID" 2>/dev/null || true
	local s
	for s in "${!SPID[@]}"; do
		maria_down "$s"
	done
	[ -z "$S3" ] || "$ROOT/scripts/ceph-rgw-stop.sh" "$WORK/ceph" >/dev/null 2>&1 || true
}
trap cleanup EXIT

say "bench/maria: $SIZE MB of rows, load $DURATION s with $CLIENTS clients, keel $KEEL, load $(load1)"
as_mysql mariadb-install-db --no-defaults --datadir="$DATA" --auth-root-authentication-method=normal \
	--skip-test-db >"$LOGS/install-db.log" 2>&1 || die "mariadb-install-db failed: $(tail -3 "$LOGS/install-db.log")"
maria_up "$DATA" "$SOCK" "$MW/log" || die "cannot start MariaDB: $(tail -5 "$MW/log")"

# sysbench's rows take about 290 bytes each in InnoDB (with the k index)
TABLES=4
TABLE_SIZE=$((SIZE * 1000000 / 290 / TABLES))
SB=(--db-driver=mysql --mysql-socket="$SOCK" --mysql-user=root --mysql-db=sbtest
	"--tables=$TABLES" "--table-size=$TABLE_SIZE")
sql "CREATE DATABASE sbtest"
t0=$(now)
sysbench oltp_read_write "${SB[@]}" --threads=1 prepare >"$LOGS/sysbench-prepare.log" 2>&1 ||
	die "sysbench prepare failed: $(tail -3 "$LOGS/sysbench-prepare.log")"
INIT_S=$(fsub "$(now)" "$t0")
DB_BYTES=$(bytes_of "$DATA/sbtest")
say "sysbench prepare, $TABLES tables of $TABLE_SIZE rows: $INIT_S s, $DB_BYTES bytes in $DATA/sbtest"
sql "CREATE TABLE sbtest.probe (id int AUTO_INCREMENT PRIMARY KEY, t timestamp(6))"

KREPO=$WORK/keel-repo
"$KEEL" -r "$KREPO" --no-progress init --kdf-ops 1 --kdf-mem 8 >"$LOGS/keel-init.log" 2>&1 || die "keel init failed"
MB=$WORK/mariabackup
mkdir -p "$MB"

declare -A R=() # figure name -> value
# timed NAME CMD...: wall seconds into R[NAME], output into LOGS/NAME.log
timed() {
	local name=$1 t rc=0
	shift
	sync
	say "  $name (load $(load1))"
	t=$(now)
	"$@" >"$LOGS/$name.log" 2>&1 || rc=$?
	R[$name]=$(fsub "$(now)" "$t")
	[ "$rc" = 0 ] || { say "  $name FAILED (exit $rc): $(tail -3 "$LOGS/$name.log" | oneline)"; R[$name]=FAILED; }
	return 0
}
# mb_backup OUTFILE: mariabackup's stream, compressed as keel's chunks are (zstd -3)
mb_backup() {
	set -o pipefail
	mariabackup --no-defaults --backup --stream=xbstream --socket="$SOCK" --user=root \
		--target-dir="$MB/tmp" 2>"$1.log" | zstd -q -3 -T1 >"$1"
}

# ---- (a) the first base backup ---------------------------------------------
say "(a) first base backup"
timed keel_b1 "$KEEL" -r "$KREPO" --no-progress db backup "$URI" --name bench
R[keel_b1_bytes]=$(bytes_of "$KREPO")
mkdir -p "$MB/tmp"
timed mb_b1 mb_backup "$MB/b1.xb.zst"
R[mb_b1_bytes]=$(bytes_of "$MB/b1.xb.zst")

# ---- (d) commit-to-durable lag under load, with (b)'s load ------------------
# lag_run LABEL REPO: keel --json db stream into REPO while sysbench runs;
# R[LABEL_p50/p99/max/n/unconfirmed] and the binary log the stream stored
lag_run() {
	local label=$1 repo=$2 np i before bl0
	"$KEEL" -r "$repo" --no-progress --json db stream "$URI" --name bench \
		>"$LOGS/$label-stream.out" 2>"$LOGS/$label-stream.err" &
	STREAM_PID=$!
	# until it has caught up: it starts with the whole binary log file of the
	# base backup's position (the load of sysbench prepare)
	local want t0 got=
	want=$(sql "SHOW MASTER STATUS" | awk '{ print $1 ":" $2 }')
	t0=$(now)
	for ((i = 0; i < 6000; i++)); do
		got=$(sed -n 's/.*"message_type":"stored","position":"\([^"]*\)".*/\1/p' "$LOGS/$label-stream.out" | tail -n1)
		[ -z "$got" ] || ! covers "$got" "$want" || break
		kill -0 "$STREAM_PID" 2>/dev/null || {
			say "  keel db stream ended: $(tail -3 "$LOGS/$label-stream.err" | oneline)"
			STREAM_PID=
			R[${label}_p50]=FAILED
			return 1
		}
		sleep 0.1
	done
	R[${label}_catchup]=$(fsub "$(now)" "$t0")
	say "  $label: the stream stored the binary log up to $got (the server at $want) in ${R[${label}_catchup]} s"
	before=$(repo_bytes "$repo")
	bl0=$(binlog_bytes)
	np=$((DURATION * 10))
	say "  $label: keel db stream + sysbench --time=$DURATION --threads=$CLIENTS + probe (load $(load1))"
	# one session: commit (autocommit), then the position and the time, then 100 ms
	{
		for ((i = 0; i < np; i++)); do
			echo "INSERT INTO sbtest.probe (t) VALUES (NOW(6));"
			echo "SELECT 'P', UNIX_TIMESTAMP(SYSDATE(6)), MAX(IF(variable_name = 'BINLOG_SNAPSHOT_FILE', variable_value, NULL)), MAX(IF(variable_name = 'BINLOG_SNAPSHOT_POSITION', variable_value, NULL)) FROM information_schema.global_status WHERE variable_name IN ('BINLOG_SNAPSHOT_FILE', 'BINLOG_SNAPSHOT_POSITION');"
			echo "DO SLEEP(0.1);"
		done
	} | mariadb --no-defaults -S "$SOCK" -u root -N -B >"$LOGS/$label-probes" 2>"$LOGS/$label-probes.err" &
	local probe=$!
	sysbench oltp_read_write "${SB[@]}" --threads="$CLIENTS" --time="$DURATION" --report-interval=0 \
		run >"$LOGS/$label-sysbench.log" 2>&1 || say "  sysbench failed: $(tail -3 "$LOGS/$label-sysbench.log" | oneline)"
	R[${label}_tps]=$(awk '/transactions:/ { gsub(/\(/, "", $3); printf "%.0f", $3; exit }' "$LOGS/$label-sysbench.log")
	wait "$probe" || say "  the probe failed: $(tail -2 "$LOGS/$label-probes.err" | oneline)"
	# what the probe committed last must be stored too: give the stream 10 s
	sleep 10
	kill -TERM "$STREAM_PID"
	local rc=0
	wait "$STREAM_PID" || rc=$?
	STREAM_PID=
	[ "$rc" = 0 ] || say "  keel db stream exited $rc: $(tail -3 "$LOGS/$label-stream.err" | oneline)"
	R[${label}_log_bytes]=$(($(repo_bytes "$repo") - before))
	R[${label}_binlog_bytes]=$(($(binlog_bytes) - bl0))
	# probes and stored lines in time order: each stored line confirms the
	# pending probes at or below its position
	python3 - "$LOGS/$label-probes" "$LOGS/$label-stream.out" >"$LOGS/$label-lag" <<'PY'
import json, sys
from datetime import datetime, timezone
def key(f, p): return (f, int(p))
ev = []
for l in open(sys.argv[1]):
    w = l.split("\t")
    if len(w) == 4 and w[0] == "P":
        ev.append((float(w[1]), 0, key(w[2], w[3])))
for l in open(sys.argv[2]):
    try:
        d = json.loads(l)
    except ValueError:
        continue
    if d.get("message_type") != "stored":
        continue
    f, p = d["position"].rsplit(":", 1)
    # RFC 3339 with nanoseconds: the seconds by datetime, the fraction as is
    s, frac = d["time"].rstrip("Z").split(".")
    t = datetime.strptime(s, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
    ev.append((t + float("0." + frac), 1, key(f, p)))
ev.sort(key=lambda e: (e[0], e[1]))
pend = []
for t, kind, pos in ev:
    if kind == 0:
        pend.append((t, pos))
        continue
    while pend and pend[0][1] <= pos:
        print("%.3f" % (t - pend.pop(0)[0]))
print("unconfirmed", len(pend))
PY
	R[${label}_unconfirmed]=$(awk '$1 == "unconfirmed" { print $2 }' "$LOGS/$label-lag")
	grep -v unconfirmed "$LOGS/$label-lag" | sort -n >"$LOGS/$label-lag.sorted" || true
	R[${label}_n]=$(wc -l <"$LOGS/$label-lag.sorted")
	R[${label}_p50]=$(pct 50 "$LOGS/$label-lag.sorted")
	R[${label}_p99]=$(pct 99 "$LOGS/$label-lag.sorted")
	R[${label}_max]=$(tail -n1 "$LOGS/$label-lag.sorted")
	R[${label}_records]=$(grep -c '"stored"' "$LOGS/$label-stream.out" || true)
	say "  $label lag: p50 ${R[${label}_p50]} s, p99 ${R[${label}_p99]} s, max ${R[${label}_max]} s" \
		"over ${R[${label}_n]} commits (${R[${label}_unconfirmed]} unconfirmed), sysbench ${R[${label}_tps]} tps"
}
# covers A B: binary log position A (FILE:OFFSET) is at or past B
covers() {
	local fa=${1%:*} oa=${1##*:} fb=${2%:*} ob=${2##*:}
	[[ $fa > $fb ]] || { [ "$fa" = "$fb" ] && [ "$oa" -ge "$ob" ]; }
}
# pct P FILE: the P-th percentile (nearest rank) of sorted numbers
pct() { awk -v p="$1" '{ v[NR] = $1 } END { if (NR == 0) { print "n/a"; exit }
	i = int(NR * p / 100 + 0.999999); if (i < 1) i = 1; print v[i] }' "$2"; }
repo_bytes() { case $1 in s3:*) s3_bytes "$1" ;; *) bytes_of "$1" ;; esac; }
binlog_bytes() { sql "SHOW BINARY LOGS" | awk '{ s += $2 } END { printf "%.0f\n", s }'; }

say "(b, d) sysbench load with keel db stream (local repository)"
lag_run local "$KREPO" || true
R[db_bytes_after]=$(bytes_of "$DATA/sbtest")

# ---- (b) the second base backup ---------------------------------------------
say "(b) second base backup"
before=$(bytes_of "$KREPO")
timed keel_b2 "$KEEL" -r "$KREPO" --no-progress db backup "$URI" --name bench
R[keel_b2_bytes]=$(($(bytes_of "$KREPO") - before))
timed mb_b2 mb_backup "$MB/b2.xb.zst"
R[mb_b2_bytes]=$(bytes_of "$MB/b2.xb.zst")

# ---- (c) restore ------------------------------------------------------------
# rows: every sbtest table's count, "TABLE=N ..."
rows() {
	local s=$1 t out=''
	for t in $(sqls "$s" "SELECT table_name FROM information_schema.tables WHERE table_schema = 'sbtest' ORDER BY 1"); do
		out+="$t=$(sqls "$s" "SELECT count(*) FROM sbtest.$t") "
	done
	echo "${out% }"
}
say "(c) restore of the newest backup"
R[origin_rows]=$(rows "$SOCK")
maria_down "$SOCK" # one server at a time, as a restore on a spare host would run
RK=$MW/restore-keel RM=$MW/restore-mb
timed keel_restore "$KEEL" -r "$KREPO" --no-progress db restore bench --target "$RK" --latest
mb_restore() {
	set -o pipefail
	mkdir -p "$RM" && zstd -q -d -c "$MB/b2.xb.zst" | mbstream -x -C "$RM" &&
		mariabackup --no-defaults --prepare --target-dir="$RM"
}
timed mb_restore mb_restore
for t in keel:"$RK" mb:"$RM"; do
	[ "$(id -u)" != 0 ] || [ ! -d "${t#*:}" ] || chown -R mysql: "${t#*:}"
	timed "${t%%:*}_start" maria_up "${t#*:}" "$SOCK2" "$MW/${t%%:*}-restored.log"
	if [ "${R[${t%%:*}_start]}" = FAILED ]; then
		say "  $(tail -3 "$MW/${t%%:*}-restored.log" | oneline)"
		R[${t%%:*}_rows]=FAILED
	else
		R[${t%%:*}_rows]=$(rows "$SOCK2" 2>&1 | oneline)
		maria_down "$SOCK2"
	fi
	R[${t%%:*}_match]=$([ "${R[${t%%:*}_rows]}" = "${R[origin_rows]}" ] && echo same || echo DIFFERENT)
done

# ---- (d) on S3 ----------------------------------------------------------------
# the local figures are in hand: a failure here is reported, not fatal
s3_run() {
	maria_up "$DATA" "$SOCK" "$MW/log" || { say "  cannot start MariaDB again: $(tail -3 "$MW/log" | oneline)"; return 1; }
	say "(d) keel db stream to S3 (Ceph RADOS Gateway on loopback)"
	local port=$((20000 + RANDOM % 30000)) ex
	ex=$("$ROOT/scripts/ceph-rgw-start.sh" "$WORK/ceph" "$port" 2>"$LOGS/ceph.log" | grep '^export ') ||
		{ say "  cannot start Ceph: $(tail -3 "$LOGS/ceph.log" | oneline)"; return 1; }
	eval "$ex"
	unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY
	SREPO=s3:$KEEL_S3_ENDPOINT/keel-bench-maria/repo
	"$KEEL" -r "$SREPO" --no-progress init --kdf-ops 1 --kdf-mem 8 >"$LOGS/keel-s3-init.log" 2>&1 ||
		{ say "  keel init on S3 failed: $(tail -3 "$LOGS/keel-s3-init.log" | oneline)"; return 1; }
	timed keel_s3_b1 "$KEEL" -r "$SREPO" --no-progress db backup "$URI" --name bench
	R[keel_s3_b1_bytes]=$(s3_bytes "$SREPO")
	lag_run s3 "$SREPO"
}
[ -z "$S3" ] || s3_run || R[s3_p50]=FAILED

# ---- the report -----------------------------------------------------------------
mib() { case $1 in '' | FAILED | n/a) echo "${1:-n/a}" ;; *) awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }' ;; esac; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "-" }'; }
row() { # LABEL KEEL MARIABACKUP
	printf '%-46s %12s %14s %10s\n' "$1" "$2" "$3" "$(ratio "$2" "$3")"
}
{
	echo "bench/maria.sh $STAMP, commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
	echo "machine: $(nproc) cores, load at the end $(cut -d' ' -f1-3 /proc/loadavg); $("$SBIN/mariadbd" --version | awk '{ print $2, $3 }'), $(mariabackup --version 2>&1 | grep -o 'based on MariaDB server [^ ]*' | head -1 || true), $(sysbench --version), zstd $(zstd -V | grep -o 'v[0-9.]*' | head -1)"
	echo "sysbench prepare, $TABLES tables x $TABLE_SIZE rows: sbtest $(mib "$DB_BYTES") MiB on disk ($INIT_S s); after the load $(mib "${R[db_bytes_after]}") MiB"
	echo "load: sysbench oltp_read_write --time=$DURATION --threads=$CLIENTS: ${R[local_tps]:-?} tps (local stream)${S3:+, ${R[s3_tps]:-?} tps (S3 stream)}; binary log written $(mib "${R[local_binlog_bytes]}") MiB"
	echo "one run per figure; sizes in MiB, times in s; ratio is keel / mariabackup (lower is better for keel)"
	echo
	printf '%-46s %12s %14s %10s\n' "" keel "mariabackup+zstd" ratio
	row "(a) first base backup, s" "${R[keel_b1]}" "${R[mb_b1]}"
	row "(a) repository after it, MiB" "$(mib "${R[keel_b1_bytes]}")" "$(mib "${R[mb_b1_bytes]}")"
	row "(b) binary log stored during the load, MiB" "$(mib "${R[local_log_bytes]}")" "-"
	echo "    (the server wrote $(mib "${R[local_binlog_bytes]}") MiB of binary log meanwhile; keel compresses and encrypts it)"
	row "(b) second base backup, s" "${R[keel_b2]}" "${R[mb_b2]}"
	row "(b) added by it, MiB" "$(mib "${R[keel_b2_bytes]}")" "$(mib "${R[mb_b2_bytes]}")"
	row "(c) restore: written and prepared, s" "${R[keel_restore]}" "${R[mb_restore]}"
	row "(c) then mariadbd start until it answers, s" "${R[keel_start]}" "${R[mb_start]}"
	row "(c) restore to a started server, s" "$(fadd "${R[keel_restore]}" "${R[keel_start]}" 2>/dev/null)" \
		"$(fadd "${R[mb_restore]}" "${R[mb_start]}" 2>/dev/null)"
	echo "(c) rows: origin ${R[origin_rows]}"
	echo "    keel's restore: ${R[keel_match]}; mariabackup's: ${R[mb_match]}"
	[ "${R[keel_match]}" = same ] || echo "    keel's rows: ${R[keel_rows]}"
	[ "${R[mb_match]}" = same ] || echo "    mariabackup's rows: ${R[mb_rows]}"
	echo
	echo "(d) commit to durable in keel (keel --json db stream's stored lines), s:"
	for l in local ${S3:+s3}; do
		printf '  %-6s p50 %s  p99 %s  max %s  over %s commits (%s never confirmed), %s records, sysbench %s tps\n' "$l" \
			"${R[${l}_p50]}" "${R[${l}_p99]}" "${R[${l}_max]}" "${R[${l}_n]}" "${R[${l}_unconfirmed]}" \
			"${R[${l}_records]}" "${R[${l}_tps]}"
		echo "         (before the load: ${R[${l}_catchup]} s to store the binary log from the base backup's file on)"
	done
	[ -z "$S3" ] || echo "  S3 base backup: ${R[keel_s3_b1]} s, $(mib "${R[keel_s3_b1_bytes]}") MiB in the bucket"
	echo "  mariabackup cannot stream: its RPO is the time since the last backup"
} | tee "$REPORT"
say "written $REPORT; logs in $LOGS"
