# shellcheck shell=bash
#
# tests/lib-maria.sh: throwaway MariaDB 10.11 servers for the `keel db`
# tests, sourced after tests/lib.sh. Each server lives in
# $TEST_DIR/maria/NAME (data directory NAME/data, Unix socket
# NAME/sock/mysqld.sock, log NAME/log), listens on no TCP port, reads no
# option file of the system's (--no-defaults), writes its binary log as
# NAME/data/bin.NNNNNN (ROW format, server id 1), and is stopped when the
# test exits. Run as root, the servers run as the mysql user. The root
# account has no password (mariadb-install-db's "normal" authentication),
# so keel and the helpers below connect as root over the socket.
#
#   maria_require               skip unless mariadbd and its tools are installed
#   maria_init NAME [OPT...]    mariadb-install-db; OPTs go to every mariadbd
#                               start of NAME (--skip-log-bin: no binary log)
#   maria_register NAME [OPT...] a socket directory for a restored data directory
#   maria_start NAME [DATADIR]  start it (or a restored DATADIR under NAME's
#                               socket), waiting until it accepts connections
#   maria_stop NAME             clean shutdown (SIGTERM, wait for the pid)
#   maria_socket NAME           its socket's path
#   maria_uri NAME [USER]       the mariadb:// URI for keel (user root)
#   maria_sql NAME SQL          run SQL as root, print rows tab-separated
#   as_mysql CMD...             run CMD as the servers' user

MARIA_SBIN=${MARIA_SBIN:-/usr/sbin}
MARIA_NAMES=()
declare -A MARIA_PID=() # NAME: the pid of its running server
declare -A MARIA_OPTS=() # NAME: mariadbd options from maria_init

as_mysql()
{
	if [ "$(id -u)" = 0 ]; then
		runuser -u mysql -- "$@"
	else
		"$@"
	fi
}

maria_require()
{
	local t
	[ -x "$MARIA_SBIN/mariadbd" ] || skip_or_die "MariaDB's server is not installed ($MARIA_SBIN/mariadbd)"
	for t in mariadb-install-db mariadb mariadb-admin; do
		command -v "$t" >/dev/null || skip_or_die "$t is not installed (mariadb-server)"
	done
	if [ "$(id -u)" = 0 ]; then
		id mysql >/dev/null 2>&1 || skip_or_die "no mysql user"
		# the servers' user must reach its directories below TEST_DIR
		chmod 711 "$TEST_DIR"
	fi
	mkdir -p "$TEST_DIR/maria"
	[ "$(id -u)" != 0 ] || chown mysql: "$TEST_DIR/maria"
}

maria_socket()
{
	echo "$TEST_DIR/maria/$1/sock/mysqld.sock"
}

maria_uri()
{
	echo "mariadb://${2:-root}@localhost/?socket=$(maria_socket "$1")"
}

# maria_register NAME [OPT...]: a socket directory for server NAME (a restored data directory)
maria_register()
{
	local name=$1
	shift
	MARIA_NAMES+=("$name")
	MARIA_OPTS[$name]="$*"
	as_mysql mkdir -p "$TEST_DIR/maria/$name/sock"
}

maria_init()
{
	local dir=$TEST_DIR/maria/$1
	maria_register "$@"
	as_mysql mkdir -p "$dir/data"
	# once more after a failure: its bootstrap server has failed on a loaded machine
	maria_install "$dir" || { rm -rf "${dir:?}/data"/* && maria_install "$dir"; } ||
		fail "mariadb-install-db failed: $(grep -i error "$dir/install.log" | tail -5)"
}

maria_install()
{
	as_mysql mariadb-install-db --no-defaults --datadir="$1/data" \
		--auth-root-authentication-method=normal --skip-test-db \
		--innodb-buffer-pool-size=32M >"$1/install.log" 2>&1
}

maria_start()
{
	local name=$1 dir=$TEST_DIR/maria/$1 i
	local data=${2:-$dir/data}
	local -a opts
	read -r -a opts <<<"${MARIA_OPTS[$name]:-}"
	case " ${opts[*]} " in
	*" --skip-log-bin "*) ;;
	*) opts=("--log-bin=$data/bin" --server-id=1 --binlog-format=ROW "${opts[@]}") ;;
	esac
	[ "$(id -u)" != 0 ] || opts+=(--user=mysql)
	rm -f "$dir/sock/mysqld.sock"
	"$MARIA_SBIN/mariadbd" --no-defaults --datadir="$data" --socket="$dir/sock/mysqld.sock" \
		--pid-file="$dir/sock/mysqld.pid" --skip-networking --innodb-buffer-pool-size=32M \
		--innodb-log-file-size=16M --skip-name-resolve --log-error="$dir/log" \
		"${opts[@]}" >/dev/null 2>&1 &
	MARIA_PID[$name]=$!
	for i in $(seq 1 300); do
		if mariadb-admin --no-defaults -S "$dir/sock/mysqld.sock" -u root ping >/dev/null 2>&1; then
			return 0
		fi
		kill -0 "${MARIA_PID[$name]}" 2>/dev/null || break
		sleep 0.1
	done
	MARIA_PID[$name]=
	fail "cannot start MariaDB '$name': $(tail -5 "$dir/log" 2>/dev/null)"
}

maria_stop()
{
	local name=$1 pid=${MARIA_PID[$1]:-}
	[ -n "$pid" ] || return 0
	kill "-${2:-TERM}" "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	MARIA_PID[$name]=
}

maria_sql()
{
	mariadb --no-defaults -S "$(maria_socket "$1")" -u root -N -B -e "$2"
}

# maria_batch SERVER N [VALUE]: N more rows in shop.orders, one transaction
# each: (id, 'item-ID'[, VALUE]), the ids counting on from MARIA_ROWS
MARIA_ROWS=0
maria_batch()
{
	local i sql=""
	for ((i = 0; i < $2; i++)); do
		MARIA_ROWS=$((MARIA_ROWS + 1))
		sql+="INSERT INTO shop.orders VALUES ($MARIA_ROWS, 'item-$MARIA_ROWS'${3:+, $3});"
	done
	maria_sql "$1" "$sql"
}

maria_cleanup()
{
	local n
	for n in "${MARIA_NAMES[@]}"; do
		maria_stop "$n" KILL
	done
}
# stop the servers before lib.sh's cleanup removes their directories
trap 'rc=$?; maria_cleanup; set +e; (exit $rc); cleanup' EXIT
