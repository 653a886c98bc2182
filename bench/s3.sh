# bench/s3.sh: sourced by bench/run.sh (issue #5). Backup and restore
# of the data set to a real S3 server on loopback: the project's Ceph
# RADOS Gateway (scripts/ceph-rgw-start.sh, as tests/lib-s3.sh uses it),
# started here with its own data directory and stopped at the end (also
# when run.sh stops early: see s3_stop in run.sh's EXIT trap).
#
# Tools: keel to s3:http://127.0.0.1:PORT/BUCKET/repo, keel to a local
# directory ("keel-local", the same commands as the main scenarios) and
# restic's S3 backend (s3:http://127.0.0.1:PORT/BUCKET). borg has no S3
# backend. The gateway runs on the same two cores: its CPU time is not in
# the tools' CPU column but slows their wall time.

S3_TOOLS=()
for t in keel restic; do
	[[ " $TOOLS " == *" $t "* ]] || continue
	S3_TOOLS+=("$t")
	[ "$t" = keel ] && S3_TOOLS+=(keel-local)
done
S3_DATADIR=$WORK/ceph
S3_SCEN="s3_backup s3_restore"

s3_na_all() { # s3_na_all WHY: n/a rows for every tool and run
	local run t s
	for run in $(seq 1 "$RUNS"); do
		for t in "${S3_TOOLS[@]}" $([[ " $TOOLS " == *" borg "* ]] && echo borg); do
			for s in $S3_SCEN; do record_na "$run" "$t" "$s" "$1"; done
		done
	done
}

# s3_free_port: a port P with P and P+1 (the monitor's) free on 127.0.0.1
s3_free_port() {
	local p i
	for i in $(seq 1 50); do
		p=$(( 20000 + RANDOM % 30000 ))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null &&
			! (exec 3<>"/dev/tcp/127.0.0.1/$(( p + 1 ))") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

s3_scenario() {
	local prog port t0 run order i t target got missing='' stamp
	for prog in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph-authtool ceph curl; do
		command -v "$prog" >/dev/null || missing="$missing $prog"
	done
	if [ -n "$missing" ]; then
		s3_na_all "Ceph is not installed (no$missing; scripts/install-deps.sh installs it)"
		return
	fi
	# loopback only: a proxy from the environment must not see the requests
	unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy
	export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
	unset AWS_SESSION_TOKEN AWS_PROFILE AWS_REGION
	"$ROOT/scripts/ceph-rgw-stop.sh" "$S3_DATADIR" >/dev/null 2>&1 || true
	rm -rf "$S3_DATADIR"
	# every run keeps its buckets: room for RUNS copies of two repositories (sparse file)
	export KEEL_CEPH_BLOCK_GB=$(( SRC_BYTES * RUNS * 2 / 1073741824 + 8 ))
	port=$(s3_free_port) || { s3_na_all "no free port for the gateway"; return; }
	say "== S3: starting a Ceph RADOS Gateway on 127.0.0.1:$port (load $(load1))"
	t0=$(now)
	S3_STARTED=1
	if ! "$ROOT/scripts/ceph-rgw-start.sh" "$S3_DATADIR" "$port" >"$WORK/tmp/s3.env" 2>"$LOGS/s3-start.log"; then
		s3_na_all "the gateway did not start: $(tail -n2 "$LOGS/s3-start.log" | oneline)"
		return
	fi
	# shellcheck disable=SC1091
	. "$WORK/tmp/s3.env"
	export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION
	fact s3_start_s "$(fsub "$(now)" "$t0")"
	fact s3_server "Ceph RADOS Gateway $(radosgw --version 2>/dev/null | awk '{ print $3 }') on 127.0.0.1 (one BlueStore OSD on a sparse file in $(df -PT "$WORK" | awk 'NR == 2 { print $2 }'))"
	say "   up after $(fsub "$(now)" "$t0") s"
	# bucket names are lower case
	stamp=$(printf '%s' "$STAMP" | tr '[:upper:]' '[:lower:]')
	if [[ " $TOOLS " == *" borg "* ]]; then
		for run in $(seq 1 "$RUNS"); do
			for t in $S3_SCEN; do record_na "$run" borg "$t" "no S3 backend"; done
		done
	fi

	for run in $(seq 1 "$RUNS"); do
		order=()
		for i in "${!S3_TOOLS[@]}"; do
			order+=("${S3_TOOLS[$(( (i + run - 1) % ${#S3_TOOLS[@]} ))]}")
		done
		say "== S3 run $run of $RUNS (order: ${order[*]}, load $(load1))"
		rm -rf "$CACHE" "$WORK/repos" "$WORK/restore"
		mkdir -p "$CACHE" "$WORK/repos"
		tool_env
		declare -A S3REPO=() s3dead=()
		for t in "${order[@]}"; do
			case $t in
			keel) S3REPO[$t]=s3:$KEEL_S3_ENDPOINT/keel-bench-$stamp-$run/repo ;;
			restic) S3REPO[$t]=s3:$KEEL_S3_ENDPOINT/restic-bench-$stamp-$run ;;
			keel-local) S3REPO[$t]=$WORK/repos/keel-local ;;
			esac
			if [ "${t%-local}" = keel ] && [ "$KEEL_STATUS" != ok ]; then
				s3dead[$t]=$KEEL_STATUS
				continue
			fi
			mapfile -t c < <(cmd_init "${t%-local}" "${S3REPO[$t]}")
			"${c[@]}" >"$LOGS/s3-run$run-$t-init.log" 2>&1 ||
				s3dead[$t]="init failed: $(tail -n2 "$LOGS/s3-run$run-$t-init.log" | oneline)"
		done
		for t in "${order[@]}"; do
			if [ -n "${s3dead[$t]:-}" ]; then
				record_na "$run" "$t" s3_backup "${s3dead[$t]}"
				continue
			fi
			warm_tree "$DATA"
			mapfile -t c < <(cmd_backup "${t%-local}" "${S3REPO[$t]}" bench-s3 "$DATA")
			measure "$run" "$t" s3_backup "$SRC_BYTES" "${S3REPO[$t]}" "${c[@]}" ||
				s3dead[$t]="the backup failed in this run"
		done
		for t in "${order[@]}"; do
			if [ -n "${s3dead[$t]:-}" ]; then
				record_na "$run" "$t" s3_restore "${s3dead[$t]}"
				continue
			fi
			target=$WORK/restore/$t
			rm -rf "$target"
			mkdir -p "$target"
			[ "$t" = keel-local ] && warm_tree "${S3REPO[$t]}"
			mapfile -t c < <(cmd_restore "${t%-local}" "${S3REPO[$t]}" bench-s3 "$target")
			if measure "$run" "$t" s3_restore "$SRC_BYTES" "${S3REPO[$t]}" "${c[@]}" && [ "$run" = 1 ]; then
				got=$(find "$target" -name disk.img -type f | head -n1)
				if [ -n "$got" ] && diff -r -q "$DATA" "$(dirname "$got")" >"$LOGS/verify-s3-$t.log" 2>&1; then
					printf '%s\t%s\tverify_s3\tok\n' "$run" "$t" >>"$RESULTS"
				else
					printf '%s\t%s\tverify_s3\tfail\t\t\t\t\t\t\t\t\t%s\n' "$run" "$t" \
						"restored tree differs: $(head -n3 "$LOGS/verify-s3-$t.log" 2>/dev/null | oneline)" >>"$RESULTS"
					say "  $t: S3 RESTORE DIFFERS from the data (see $LOGS/verify-s3-$t.log)"
				fi
			fi
			rm -rf "$target"
		done
		rm -rf "$WORK/repos" "$WORK/restore" "$CACHE"
	done
	s3_stop
}
if [ ${#S3_TOOLS[@]} -gt 0 ]; then
	s3_scenario
elif [[ " $TOOLS " == *" borg "* ]]; then
	for run in $(seq 1 "$RUNS"); do
		for t in $S3_SCEN; do record_na "$run" borg "$t" "no S3 backend"; done
	done
fi
