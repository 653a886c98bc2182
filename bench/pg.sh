#!/usr/bin/env bash
# bench/pg.sh: keel db next to pg_basebackup | zstd and pgBackRest (issue
# 15's Benchmark) on a pgbench database in a throwaway PostgreSQL 15:
#
#     bench/pg.sh [--scale N] [--duration S] [--clients N] [--s3]
#                 [--s3-duration S] [--keel PATH] [--no-install]
#
#   (a) base backup: wall time and what the repository holds afterwards:
#       keel db backup, pg_basebackup -Ft -X none -c fast | zstd -3,
#       pgbackrest backup --type=full (compress-type=zst, level 3);
#   (b) after --duration seconds of pgbench load, a second base backup of
#       each: its time and what it added (pgBackRest: an incr relative to
#       the first full, then a full);
#       the WAL each stored during the load (keel's stream, pgBackRest's
#       archive_command);
#   (c) restore of the newest backup: keel db restore --latest vs
#       pgbackrest restore, until the data directory is written, then
#       until pg_ctl start has finished recovery;
#   (d) during the load, the lag from commit to durable in keel: a probe
#       commits a row every 100 ms and notes its WAL position; a sampler
#       reads, every 20 ms, the flush position keel confirmed to the
#       server (pg_stat_get_wal_senders), which keel sends only after the
#       WAL is stored in the repository. Lag = first sample at or past the
#       probe's position minus the probe's commit time: p50, p99, max.
#       --s3 repeats it with a repository on the project's Ceph RADOS
#       Gateway (scripts/ceph-rgw-start.sh) on loopback, under a load of
#       --s3-duration seconds (default: --duration).
#
# --scale defaults to 100 (pgbench -i -s 100, about 1.5 GB), --duration to
# 3600 s (the issue's hour), --clients to 2. Each figure is one run (a
# base backup of a large database is not repeated); the lag figures are
# percentiles over every probe. The machine's load is printed with each
# step. It measures and reports; it never fails because a figure is slow.
# Output: the table on stdout and in bench/out/pg-STAMP.txt; logs and the
# throwaway server in bench/work/pg (removed at the start of the next run).
set -euo pipefail
BENCH=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$BENCH")
. "$BENCH/lib.sh"

SCALE=100 DURATION=3600 S3_DURATION='' CLIENTS=2 S3='' KEEL='' INSTALL=1
while [ $# -gt 0 ]; do
	case $1 in
	--scale) SCALE=$2; shift ;;
	--duration) DURATION=$2; shift ;;
	--clients) CLIENTS=$2; shift ;;
	--s3) S3=1 ;;
	--s3-duration) S3_DURATION=$2; shift ;;
	--keel) KEEL=$2; shift ;;
	--no-install) INSTALL= ;;
	-h | --help) sed -n '2,35p' "$0"; exit 0 ;;
	*) die "unknown option $1" ;;
	esac
	shift
done

PG_BIN=/usr/lib/postgresql/15/bin
bench_install postgresql-15 pgbackrest zstd time jq
for p in pgbackrest zstd jq; do command -v "$p" >/dev/null || die "$p is missing (apt-get install $p)"; done
[ -x "$PG_BIN/pgbench" ] || die "PostgreSQL 15 is missing (apt-get install postgresql-15)"
release_keel

WORK=$BENCH/work/pg
OUT=$BENCH/out
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
REPORT=$OUT/pg-$STAMP.txt
LOGS=$WORK/logs
PORT=55432
PORT2=55433
PGW=$WORK/pg

# ---- the throwaway server (as tests/lib-pg.sh does it, written for bench) ----
# Run as root, the server and pgBackRest run as the postgres user (initdb
# refuses root), which must reach $WORK/pg; keel runs as the caller.
as_pg() {
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
# a previous run's servers, then its files
for d in "$PGW/data" "$PGW/restore-keel" "$PGW/restore-pgbr"; do
	[ ! -f "$d/postmaster.pid" ] || as_pg "$PG_BIN/pg_ctl" -D "$d" -m immediate stop >/dev/null 2>&1 || true
done
[ ! -d "$WORK/ceph" ] || "$ROOT/scripts/ceph-rgw-stop.sh" "$WORK/ceph" >/dev/null 2>&1 || true
rm -rf "$WORK"
mkdir -p "$WORK" "$OUT" "$LOGS" "$PGW"
if [ "$(id -u)" = 0 ]; then
	id postgres >/dev/null 2>&1 || die "no postgres user"
	chmod 711 "$WORK"
	chown postgres: "$PGW"
	as_pg test -x "$PGW" || die "the postgres user cannot reach $PGW (a parent directory's mode)"
fi
DATA=$PGW/data
SOCK=$PGW/sock
CONN="host=$SOCK port=$PORT user=postgres"
PGBR_CONF=$PGW/pgbackrest.conf
export KEEL_PASSWORD=keel-bench-password
unset KEEL_PASSWORD_FILE KEEL_PASSWORD_COMMAND KEEL_REPOSITORY KEEL_CONFIG

psql_() { as_pg "$PG_BIN/psql" -X -A -t -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -U postgres -d postgres "$@"; }
sql() { psql_ -c "$1"; }
pg_up() { # DATADIR PORT LOG [OPTIONS]
	as_pg "$PG_BIN/pg_ctl" -D "$1" -w -t 3600 -l "$3" -o "-p $2 -k $SOCK ${4:-}" start >/dev/null
}
pg_down() { as_pg "$PG_BIN/pg_ctl" -D "$1" -m "${2:-fast}" -w stop >/dev/null 2>&1 || true; }
STREAM_PID=
cleanup() {
	[ -z "$STREAM_PID" ] || kill "$STREAM_PID" 2>/dev/null || true
	for d in "$PGW/restore-keel" "$PGW/restore-pgbr" "$DATA"; do
		[ ! -f "$d/postmaster.pid" ] || pg_down "$d" immediate
	done
	[ -z "$S3" ] || "$ROOT/scripts/ceph-rgw-stop.sh" "$WORK/ceph" >/dev/null 2>&1 || true
}
trap cleanup EXIT

say "bench/pg: scale $SCALE, load $DURATION s with $CLIENTS clients, keel $KEEL, load $(load1)"
as_pg mkdir -p "$SOCK" "$PGW/pgbr/repo" "$PGW/pgbr/log" "$PGW/pgbr/lock" "$PGW/pgbr/spool"
as_pg "$PG_BIN/initdb" -D "$DATA" -U postgres -A trust >"$LOGS/initdb.log" 2>&1 || die "initdb failed"
cat <<EOF | as_pg tee "$PGBR_CONF" >/dev/null
[global]
repo1-path=$PGW/pgbr/repo
repo1-retention-full=100
log-path=$PGW/pgbr/log
lock-path=$PGW/pgbr/lock
spool-path=$PGW/pgbr/spool
compress-type=zst
compress-level=3
start-fast=y
log-level-console=warn
log-level-file=info

[bench]
pg1-path=$DATA
pg1-socket-path=$SOCK
pg1-port=$PORT
pg1-user=postgres
EOF
cat <<EOF | as_pg tee -a "$DATA/postgresql.conf" >/dev/null
listen_addresses = ''
wal_level = replica
max_wal_senders = 6
max_replication_slots = 6
shared_buffers = 128MB
max_wal_size = 2GB
archive_mode = on
archive_command = 'pgbackrest --config=$PGBR_CONF --stanza=bench archive-push %p'
EOF
pg_up "$DATA" "$PORT" "$PGW/log" || die "cannot start PostgreSQL: $(tail -5 "$PGW/log")"
as_pg pgbackrest --config="$PGBR_CONF" --stanza=bench stanza-create >"$LOGS/pgbr-stanza.log" 2>&1 ||
	die "pgbackrest stanza-create failed: $(tail -3 "$LOGS/pgbr-stanza.log")"

t0=$(now)
as_pg "$PG_BIN/pgbench" -h "$SOCK" -p "$PORT" -U postgres -i -s "$SCALE" -q postgres >"$LOGS/pgbench-init.log" 2>&1 ||
	die "pgbench -i failed: $(tail -3 "$LOGS/pgbench-init.log")"
sql "CHECKPOINT"
INIT_S=$(fsub "$(now)" "$t0")
DB_BYTES=$(bytes_of "$DATA")
say "pgbench -i -s $SCALE: $INIT_S s, data directory $DB_BYTES bytes"

KREPO=$WORK/keel-repo
"$KEEL" -r "$KREPO" --no-progress init --kdf-ops 1 --kdf-mem 8 >"$LOGS/keel-init.log" 2>&1 || die "keel init failed"
PGBB=$WORK/pg_basebackup
mkdir -p "$PGBB"
pgbr_bytes() { bytes_of "$PGW/pgbr/repo/backup"; }
pgbr_wal_bytes() { bytes_of "$PGW/pgbr/repo/archive"; }

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
pgbb() { # OUTFILE: the base backup as one tar on stdout, compressed
	as_pg "$PG_BIN/pg_basebackup" -h "$SOCK" -p "$PORT" -U postgres -D - -Ft -X none -c fast | zstd -q -3 -T1 >"$1"
}
pgbr_backup() { as_pg pgbackrest --config="$PGBR_CONF" --stanza=bench backup --type="$1"; }

# ---- (a) the first base backup ---------------------------------------------
# The stream starts where the newest base backup starts, and the checkpoints
# of the other tools' backups recycle that WAL: the slot, made now with its
# WAL reserved, keeps it (what a user gets by starting the stream first).
sql "SELECT pg_create_physical_replication_slot('keel_bench', true)" >/dev/null
say "(a) first base backup"
timed keel_b1 "$KEEL" -r "$KREPO" --no-progress db backup "$CONN" --name bench
R[keel_b1_bytes]=$(bytes_of "$KREPO")
timed pgbb_b1 pgbb "$PGBB/b1.tar.zst"
R[pgbb_b1_bytes]=$(bytes_of "$PGBB/b1.tar.zst")
timed pgbr_b1 pgbr_backup full
R[pgbr_b1_bytes]=$(pgbr_bytes)

# ---- (d) commit-to-durable lag under load, with (b)'s load ------------------
# lag_run LABEL REPO SLOT: keel db stream into REPO while pgbench runs;
# R[LABEL_p50/p99/max/n/unconfirmed] and the WAL the stream stored
lag_run() {
	local label=$1 repo=$2 slot=$3 dur=$4 np ns i before
	sql "SET client_min_messages = warning; CREATE TABLE IF NOT EXISTS probe (t timestamptz)"
	before=$(repo_bytes "$repo")
	"$KEEL" -r "$repo" --no-progress db stream "$CONN" --name bench --slot "$slot" \
		>"$LOGS/$label-stream.out" 2>"$LOGS/$label-stream.err" &
	STREAM_PID=$!
	for ((i = 0; i < 300; i++)); do
		[ "$(sql "SELECT count(*) FROM pg_stat_get_wal_senders() WHERE flush_lsn IS NOT NULL")" = 1 ] && break
		kill -0 "$STREAM_PID" 2>/dev/null || die "keel db stream ended: $(tail -3 "$LOGS/$label-stream.err")"
		sleep 0.2
	done
	np=$((dur * 10)) ns=$(((dur + 15) * 50))
	say "  $label: keel db stream + pgbench -T $dur -c $CLIENTS + probe (load $(load1))"
	# notices carry the figures: psql prints them on stderr
	psql_ -c "DO \$\$ DECLARE l pg_lsn; BEGIN FOR i IN 1..$ns LOOP
		SELECT flush_lsn INTO l FROM pg_stat_get_wal_senders() WHERE flush_lsn IS NOT NULL LIMIT 1;
		RAISE NOTICE 'S % %', extract(epoch FROM clock_timestamp()), pg_wal_lsn_diff(l, '0/0');
		COMMIT; PERFORM pg_sleep(0.02); END LOOP; END \$\$" 2>"$LOGS/$label-samples" &
	local sampler=$!
	psql_ -c "DO \$\$ BEGIN FOR i IN 1..$np LOOP
		INSERT INTO probe VALUES (clock_timestamp()); COMMIT;
		RAISE NOTICE 'P % %', extract(epoch FROM clock_timestamp()),
			pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0');
		PERFORM pg_sleep(0.1); END LOOP; END \$\$" 2>"$LOGS/$label-probes" &
	local probe=$!
	# the stream's CPU per MiB of WAL in each half of the load: a record
	# that costs more as the repository grows shows as a second half dearer
	# than the first, whatever the machine's load does to the lag
	mark "$LOGS/$label-mark0"
	(sleep $((dur / 2)); mark "$LOGS/$label-mark1") &
	local marker=$!
	as_pg "$PG_BIN/pgbench" -h "$SOCK" -p "$PORT" -U postgres -T "$dur" -c "$CLIENTS" -j 1 \
		postgres >"$LOGS/$label-pgbench.log" 2>&1 || say "  pgbench failed: $(tail -3 "$LOGS/$label-pgbench.log" | oneline)"
	R[${label}_tps]=$(awk '/^tps/ { printf "%.0f", $3; exit }' "$LOGS/$label-pgbench.log")
	wait "$probe" || say "  the probe failed: $(tail -2 "$LOGS/$label-probes" | oneline)"
	wait "$sampler" || say "  the sampler failed: $(tail -2 "$LOGS/$label-samples" | oneline)"
	wait "$marker" || true
	mark "$LOGS/$label-mark2"
	R[${label}_cpu1]=$(cpu_per_mib "$LOGS/$label-mark0" "$LOGS/$label-mark1")
	R[${label}_cpu2]=$(cpu_per_mib "$LOGS/$label-mark1" "$LOGS/$label-mark2")
	kill -TERM "$STREAM_PID"
	local rc=0
	wait "$STREAM_PID" || rc=$?
	STREAM_PID=
	[ "$rc" = 0 ] || say "  keel db stream exited $rc: $(tail -3 "$LOGS/$label-stream.err" | oneline)"
	R[${label}_wal_bytes]=$(($(repo_bytes "$repo") - before))
	sql "SELECT pg_drop_replication_slot('$slot')" >/dev/null || true
	# samples and probes in time order; each sample confirms the pending probes
	# at or below its position
	sed -n 's/^NOTICE: *\([SP]\) \([0-9.]*\) \([0-9]*\)$/\2 \1 \3/p' \
		"$LOGS/$label-samples" "$LOGS/$label-probes" | sort -n -k1,1 |
		awk '$2 == "P" { pt[n] = $1; pl[n] = $3; n++; next }
			{ while (h < n && pl[h] <= $3) { printf "%.3f\n", $1 - pt[h]; h++ } }
			END { print "unconfirmed", n - h }' >"$LOGS/$label-lag"
	R[${label}_unconfirmed]=$(awk '$1 == "unconfirmed" { print $2 }' "$LOGS/$label-lag")
	grep -v unconfirmed "$LOGS/$label-lag" | sort -n >"$LOGS/$label-lag.sorted"
	R[${label}_n]=$(wc -l <"$LOGS/$label-lag.sorted")
	R[${label}_p50]=$(pct 50 "$LOGS/$label-lag.sorted")
	R[${label}_p99]=$(pct 99 "$LOGS/$label-lag.sorted")
	R[${label}_max]=$(tail -n1 "$LOGS/$label-lag.sorted")
	# the first and the last fifth of the probes, in commit order
	local n5=$((R[${label}_n] / 5))
	grep -v unconfirmed "$LOGS/$label-lag" | head -n "$n5" | sort -n >"$LOGS/$label-lag.first"
	grep -v unconfirmed "$LOGS/$label-lag" | tail -n "$n5" | sort -n >"$LOGS/$label-lag.last"
	R[${label}_first]="p50 $(pct 50 "$LOGS/$label-lag.first") p99 $(pct 99 "$LOGS/$label-lag.first")"
	R[${label}_last]="p50 $(pct 50 "$LOGS/$label-lag.last") p99 $(pct 99 "$LOGS/$label-lag.last")"
	say "  $label lag: p50 ${R[${label}_p50]} s, p99 ${R[${label}_p99]} s, max ${R[${label}_max]} s" \
		"over ${R[${label}_n]} commits (${R[${label}_unconfirmed]} unconfirmed), pgbench ${R[${label}_tps]} tps"
}
# mark FILE: the stream's CPU ticks (user + system), the server's WAL
# position in bytes and the load, now
mark() {
	echo "$(awk '{ print $14 + $15 }' "/proc/$STREAM_PID/stat" 2>/dev/null || echo 0)" \
		"$(sql "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')")" "$(load1)" >"$1"
}
# cpu_per_mib FROM TO: the stream's CPU seconds per 100 MiB of WAL between two marks
cpu_per_mib() {
	awk -v hz="$(getconf CLK_TCK)" 'NR == 1 { c = $1; w = $2 } NR == 2 {
		if ($2 > w) printf "%.2f s (load %s)", ($1 - c) / hz / (($2 - w) / 104857600), $3; else print "n/a" }' "$1" "$2"
}
# pct P FILE: the P-th percentile (nearest rank) of sorted numbers
pct() { awk -v p="$1" '{ v[NR] = $1 } END { if (NR == 0) { print "n/a"; exit }
	i = int(NR * p / 100 + 0.999999); if (i < 1) i = 1; print v[i] }' "$2"; }
repo_bytes() { case $1 in s3:*) s3_bytes "$1" ;; *) bytes_of "$1" ;; esac; }

say "(b, d) pgbench load with keel db stream (local repository)"
pgbr_wal0=$(pgbr_wal_bytes)
lag_run local "$KREPO" keel_bench "$DURATION"
sql "SELECT pg_switch_wal()" >/dev/null
sleep 2
R[pgbr_load_wal_bytes]=$(($(pgbr_wal_bytes) - pgbr_wal0))
R[db_bytes_after]=$(bytes_of "$DATA")

# ---- (b) the second base backup ---------------------------------------------
say "(b) second base backup"
before=$(bytes_of "$KREPO")
timed keel_b2 "$KEEL" -r "$KREPO" --no-progress db backup "$CONN" --name bench
R[keel_b2_bytes]=$(($(bytes_of "$KREPO") - before))
timed pgbb_b2 pgbb "$PGBB/b2.tar.zst"
R[pgbb_b2_bytes]=$(bytes_of "$PGBB/b2.tar.zst")
# pgBackRest's incr first: it is relative to the first full, as keel's
# second backup is deduplicated against the first
before=$(pgbr_bytes)
timed pgbr_b2i pgbr_backup incr
R[pgbr_b2i_bytes]=$(($(pgbr_bytes) - before))
before=$(pgbr_bytes)
timed pgbr_b2 pgbr_backup full
R[pgbr_b2_bytes]=$(($(pgbr_bytes) - before))

# ---- (b) retention: only the newest base backup and the WAL it needs ---------
# keel forget + prune, and pgBackRest's expire with one full kept: what
# each repository holds afterwards (after the restore below, which reads
# the newest backup either way)
retention() {
	"$KEEL" -r "$KREPO" --no-progress forget --path db:bench --keep-last 1 --prune &&
		as_pg pgbackrest --config="$PGBR_CONF" --stanza=bench expire --repo1-retention-full=1
}

# ---- (c) restore ------------------------------------------------------------
say "(c) restore of the newest backup"
RK=$PGW/restore-keel RP=$PGW/restore-pgbr
timed keel_restore "$KEEL" -r "$KREPO" --no-progress db restore bench --target "$RK" --latest
as_pg mkdir -m 700 "$RP"
timed pgbr_restore as_pg pgbackrest --config="$PGBR_CONF" --stanza=bench --pg1-path="$RP" restore
# until recovery has finished; not archiving, so nothing reaches the stanza
# and holds the rows the origin had at the end of the load
R[origin_rows]=$(sql "SELECT count(*) FROM pgbench_history")
for t in keel:"$RK" pgbr:"$RP"; do
	timed "${t%%:*}_start" pg_up "${t#*:}" "$PORT2" "$PGW/${t%%:*}-restored.log" "-c archive_mode=off"
	R[${t%%:*}_rows]=$(as_pg "$PG_BIN/psql" -X -A -t -q -h "$SOCK" -p "$PORT2" -U postgres -d postgres \
		-c "SELECT count(*) FROM pgbench_history" 2>&1 | oneline)
	pg_down "${t#*:}"
done

say "(b) retention: keep the newest base backup and its WAL"
R[keel_before_ret]=$(bytes_of "$KREPO")
R[pgbr_before_ret]=$(($(pgbr_bytes) + $(pgbr_wal_bytes)))
timed retention retention
R[keel_after_ret]=$(bytes_of "$KREPO")
R[pgbr_after_ret]=$(($(pgbr_bytes) + $(pgbr_wal_bytes)))

# ---- (d) on S3 ----------------------------------------------------------------
if [ -n "$S3" ]; then
	say "(d) keel db stream to S3 (Ceph RADOS Gateway on loopback)"
	port=$((20000 + RANDOM % 30000))
	eval "$("$ROOT/scripts/ceph-rgw-start.sh" "$WORK/ceph" "$port" 2>"$LOGS/ceph.log" | grep '^export ')" ||
		die "cannot start Ceph: $(tail -3 "$LOGS/ceph.log")"
	unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY
	SREPO=s3:$KEEL_S3_ENDPOINT/keel-bench-pg/repo
	"$KEEL" -r "$SREPO" --no-progress init --kdf-ops 1 --kdf-mem 8 >"$LOGS/keel-s3-init.log" 2>&1 ||
		die "keel init on S3 failed: $(tail -3 "$LOGS/keel-s3-init.log")"
	sql "SELECT pg_create_physical_replication_slot('keel_bench_s3', true)" >/dev/null
	timed keel_s3_b1 "$KEEL" -r "$SREPO" --no-progress db backup "$CONN" --name bench
	R[keel_s3_b1_bytes]=$(s3_bytes "$SREPO")
	lag_run s3 "$SREPO" keel_bench_s3 "${S3_DURATION:-$DURATION}"
fi

# ---- the report -----------------------------------------------------------------
mib() { case $1 in '' | FAILED | n/a) echo "${1:-n/a}" ;; *) awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }' ;; esac; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "-" }'; }
row() { # LABEL KEEL PGBB PGBR
	printf '%-44s %12s %12s %12s %10s %10s\n' "$1" "$2" "$3" "$4" "$(ratio "$2" "$3")" "$(ratio "$2" "$4")"
}
{
	echo "bench/pg.sh $STAMP, commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
	echo "machine: $(nproc) cores, load at the end $(cut -d' ' -f1-3 /proc/loadavg); PostgreSQL $("$PG_BIN/postgres" -V | awk '{ print $3 }'), $(pgbackrest version), zstd $(zstd -V | grep -o 'v[0-9.]*' | head -1)"
	echo "pgbench -i -s $SCALE: data directory $(mib "$DB_BYTES") MiB ($INIT_S s); after the load $(mib "${R[db_bytes_after]}") MiB"
	echo "load: pgbench -T $DURATION -c $CLIENTS -j 1: ${R[local_tps]:-?} tps (local stream)${S3:+; -T ${S3_DURATION:-$DURATION}: ${R[s3_tps]:-?} tps (S3 stream)}"
	echo "one run per figure; sizes in MiB, times in s; ratios are keel / other (lower is better for keel)"
	echo
	printf '%-44s %12s %12s %12s %10s %10s\n' "" keel pg_bb+zstd pgBackRest "vs pg_bb" "vs pgBR"
	row "(a) first base backup, s" "${R[keel_b1]}" "${R[pgbb_b1]}" "${R[pgbr_b1]}"
	row "(a) repository after it, MiB" "$(mib "${R[keel_b1_bytes]}")" "$(mib "${R[pgbb_b1_bytes]}")" "$(mib "${R[pgbr_b1_bytes]}")"
	row "(b) WAL stored during the load, MiB" "$(mib "${R[local_wal_bytes]}")" "-" "$(mib "${R[pgbr_load_wal_bytes]}")"
	row "(b) second base backup (pgBR full), s" "${R[keel_b2]}" "${R[pgbb_b2]}" "${R[pgbr_b2]}"
	row "(b) added by it, MiB" "$(mib "${R[keel_b2_bytes]}")" "$(mib "${R[pgbb_b2_bytes]}")" "$(mib "${R[pgbr_b2_bytes]}")"
	row "(b) pgBackRest incr instead, s" "${R[keel_b2]}" "-" "${R[pgbr_b2i]}"
	row "(b) added by it, MiB" "$(mib "${R[keel_b2_bytes]}")" "-" "$(mib "${R[pgbr_b2i_bytes]}")"
	row "(b) repository before retention, MiB" "$(mib "${R[keel_before_ret]}")" "-" "$(mib "${R[pgbr_before_ret]}")"
	row "(b) after it (newest base + its WAL), MiB" "$(mib "${R[keel_after_ret]}")" "-" "$(mib "${R[pgbr_after_ret]}")"
	row "(c) restore: data directory written, s" "${R[keel_restore]}" "-" "${R[pgbr_restore]}"
	row "(c) then pg_ctl start until recovered, s" "${R[keel_start]}" "-" "${R[pgbr_start]}"
	echo "(c) rows of pgbench_history: origin ${R[origin_rows]}, keel's restore ${R[keel_rows]}, pgBackRest's ${R[pgbr_rows]}"
	echo
	echo "(d) commit to durable in keel (the flush position keel confirmed), s:"
	for l in local ${S3:+s3}; do
		printf '  %-6s p50 %s  p99 %s  max %s  over %s commits (%s never confirmed), pgbench %s tps\n' "$l" \
			"${R[${l}_p50]}" "${R[${l}_p99]}" "${R[${l}_max]}" "${R[${l}_n]}" "${R[${l}_unconfirmed]}" "${R[${l}_tps]}"
		printf '         first fifth of the load %s, last fifth %s\n' "${R[${l}_first]}" "${R[${l}_last]}"
		printf '         stream CPU per 100 MiB of WAL: first half %s, second half %s\n' "${R[${l}_cpu1]}" "${R[${l}_cpu2]}"
	done
	[ -z "$S3" ] || echo "  S3 base backup: ${R[keel_s3_b1]} s, $(mib "${R[keel_s3_b1_bytes]}") MiB in the bucket"
	echo "  pgBackRest cannot stream: its RPO is a whole 16 MiB segment or archive_timeout"
} | tee "$REPORT"
say "written $REPORT; logs in $LOGS"
