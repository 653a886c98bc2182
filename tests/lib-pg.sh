# shellcheck shell=bash
#
# tests/lib-pg.sh: throwaway PostgreSQL 15 servers for the `keel db`
# tests, sourced after tests/lib.sh. Each server lives in
# $TEST_DIR/pg/NAME (data directory NAME/data, Unix socket directory
# NAME/sock, log NAME/log), listens on no TCP port, and is stopped when
# the test exits. Run as root, the servers run as the postgres user
# (initdb refuses root), and keel connects as the database user postgres.
#
#   pg_require               skip unless PostgreSQL 15's server is installed
#   pg_init NAME [SETTING...] initdb, with settings for replication clients
#                             (and any given, "key = value") in postgresql.conf
#   pg_register NAME         a socket directory and port for server NAME
#   pg_start NAME [DATADIR]  start it (or a restored DATADIR under NAME's
#                             socket and port), waiting until it accepts
#   pg_stop NAME             fast shutdown
#   pg_conninfo NAME         the libpq connection string for keel
#   pg_sql NAME SQL          run SQL through psql, print rows unaligned
#   as_pg CMD...             run CMD as the servers' user

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_NAMES=()
declare -A PG_DATA=() # NAME: the data directory of its running server

as_pg()
{
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

pg_require()
{
	[ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/pg_ctl" ] && [ -x "$PG_BIN/psql" ] ||
		skip_or_die "PostgreSQL 15 is not installed ($PG_BIN)"
	if [ "$(id -u)" = 0 ]; then
		id postgres >/dev/null 2>&1 || skip_or_die "no postgres user"
		# the servers' user must reach its directories below TEST_DIR
		chmod 711 "$TEST_DIR"
	fi
	mkdir -p "$TEST_DIR/pg"
	[ "$(id -u)" != 0 ] || chown postgres: "$TEST_DIR/pg"
}

# pg_port NAME: a port number of its own (only the socket's name uses it)
pg_port()
{
	local i
	for i in "${!PG_NAMES[@]}"; do
		[ "${PG_NAMES[$i]}" != "$1" ] || { echo $((54320 + i)); return; }
	done
	echo 54399
}

# pg_register NAME: a socket directory and a port for server NAME
pg_register()
{
	PG_NAMES+=("$1")
	as_pg mkdir -p "$TEST_DIR/pg/$1/sock"
}

pg_init()
{
	local name=$1 dir=$TEST_DIR/pg/$1 s
	shift
	pg_register "$name"
	as_pg "$PG_BIN/initdb" -D "$dir/data" -U postgres -A trust --no-sync >"$dir/initdb.log" 2>&1 ||
		fail "initdb failed: $(tail -5 "$dir/initdb.log")"
	{
		echo "listen_addresses = ''"
		echo "unix_socket_directories = '$dir/sock'"
		echo "wal_level = replica"
		echo "max_wal_senders = 4"
		echo "max_replication_slots = 4"
		echo "shared_buffers = 16MB"
		echo "fsync = off"
		echo "full_page_writes = on"
		for s in "$@"; do
			echo "$s"
		done
	} | as_pg tee -a "$dir/data/postgresql.conf" >/dev/null
}

pg_start()
{
	local name=$1 dir=$TEST_DIR/pg/$1
	local data=${2:-$dir/data}
	as_pg "$PG_BIN/pg_ctl" -D "$data" -w -t 30 -l "$dir/log" \
		-o "-p $(pg_port "$name") -k $dir/sock" start >/dev/null 2>&1 ||
		fail "cannot start PostgreSQL '$name': $(tail -5 "$dir/log")"
	PG_DATA[$name]=$data
}

pg_stop()
{
	local name=$1
	[ -n "${PG_DATA[$name]:-}" ] || return 0
	as_pg "$PG_BIN/pg_ctl" -D "${PG_DATA[$name]}" -m "${2:-fast}" -w stop >/dev/null 2>&1 || true
	PG_DATA[$name]=
}

pg_conninfo()
{
	echo "host=$TEST_DIR/pg/$1/sock port=$(pg_port "$1") user=postgres"
}

pg_sql()
{
	as_pg "$PG_BIN/psql" -X -A -t -q -v ON_ERROR_STOP=1 -h "$TEST_DIR/pg/$1/sock" \
		-p "$(pg_port "$1")" -U postgres -d postgres -c "$2"
}

# lsn_num X/Y: an LSN as a number, for comparisons
lsn_num()
{
	echo $(((16#${1%/*} << 32) + 16#${1#*/}))
}

# pg_wait_stored PID SECONDS [LSN]: waits until the repository holds the WAL
# up to LSN (default: the origin's flush position, its last commit) by what
# `keel db list` says, while the stream PID (its stderr in
# $TEST_DIR/stream.err) runs; fails when it ends or after SECONDS
pg_wait_stored()
{
	local pid=$1 secs=$2 want got i
	want=$(lsn_num "${3:-$(pg_sql origin "SELECT pg_current_wal_flush_lsn()")}")
	for ((i = 0; i < secs * 10; i++)); do
		keel db list --json >"$TEST_DIR/list.json" 2>/dev/null || true
		got=$(json_get wal_stop_lsn <"$TEST_DIR/list.json" | tail -n 1 || true)
		if [ -n "$got" ] && [ "$(lsn_num "$got")" -ge "$want" ]; then
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || fail "the stream ended: $(cat "$TEST_DIR/stream.err")"
		sleep 0.1
	done
	fail "the stream did not store the WAL up to ${3:-the last commit} in $secs s:" \
		"$(cat "$TEST_DIR/stream.err")"
}

pg_cleanup()
{
	local n
	for n in "${PG_NAMES[@]}"; do
		pg_stop "$n" immediate
	done
}
# stop the servers before lib.sh's cleanup removes their directories
trap 'rc=$?; pg_cleanup; set +e; (exit $rc); cleanup' EXIT
