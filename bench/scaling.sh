# bench/scaling.sh: sourced by bench/run.sh (--full or --scaling).
# keel's and restic's initial backup time and peak memory as the number
# of files and the amount of data grow; memory per stored chunk.
# One run per point (these are growth curves, not head-to-head medians);
# the order of the two tools alternates from point to point.

SCALE_FILES=${KEEL_BENCH_SCALE_FILES:-"10000 100000 1000000"}
SCALE_MIB=${KEEL_BENCH_SCALE_MIB:-"1024 4096 16384"}
SCALE_TOOLS=()
for t in keel restic; do
	[[ " $TOOLS " == *" $t "* ]] && SCALE_TOOLS+=("$t")
done
fact scale_files "$SCALE_FILES"
fact scale_mib "$SCALE_MIB"
: >"$SCALE_RESULTS"

scale_point() { # scale_point NAME KIND N
	local name=$1 kind=$2 n=$3 dir=$WORK/scale/$1 need avail bytes files i=0
	case $kind in
	files) need=$(( n * 9 / 1000 + 100 )) ;;      # MiB: ~4.5 KiB per file on disk, twice
	data) need=$(( n * 2 + n / 4 + 100 )) ;;      # data, one repository, slack
	esac
	avail=$(df -Pm "$WORK" | awk 'NR == 2 { print $4 }')
	if [ "$avail" -lt "$need" ]; then
		for t in "${SCALE_TOOLS[@]}"; do
			printf '%s\t%s\t%s\tn/a\t\t\t\t\t\t\t%s\t\tnot enough disk: need %s MiB, have %s\t\t\t\n' \
				scale "$t" "$name" "$(load1)" "$need" "$avail" >>"$SCALE_RESULTS"
		done
		say "   $name: skipped, not enough disk ($avail MiB free, need $need)"
		return
	fi
	rm -rf "$WORK/scale"
	mkdir -p "$WORK/scale"
	say "== scaling: $name (generating)"
	case $kind in
	files) "$KEELGEN" files "$SEED" "$n" "$dir" >/dev/null ;;
	data) mkdir -p "$dir" && "$KEELGEN" unique "$SEED" "$n" "$dir/unique.bin" >/dev/null ;;
	esac
	bytes=$(file_bytes "$dir")
	files=$(find "$dir" -type f | wc -l)
	local -a order=("${SCALE_TOOLS[@]}")
	[ $(( SCALE_I % 2 )) = 1 ] && [ ${#order[@]} = 2 ] && order=("${order[1]}" "${order[0]}")
	SCALE_I=$(( SCALE_I + 1 ))
	for t in "${order[@]}"; do
		local repo=$WORK/scale-repo tmp=$WORK/tmp/scale-row chunks='' src=''
		rm -rf "$repo" "$CACHE"
		mkdir -p "$CACHE"
		tool_env
		if [ "$t" = keel ] && [ "$KEEL_STATUS" != ok ]; then
			printf '%s\t%s\t%s\tn/a\t\t\t\t\t\t%s\t%s\t\t%s\t%s\t%s\t\n' scale keel "$name" "$bytes" "$(load1)" \
				"$KEEL_STATUS" "$files" "" >>"$SCALE_RESULTS"
			continue
		fi
		mapfile -t c < <(cmd_init "$t" "$repo")
		"${c[@]}" >"$LOGS/scale-$t-init.log" 2>&1 || true
		warm_tree "$dir"
		mapfile -t c < <(cmd_backup "$t" "$repo" "$name" "$dir")
		: >"$tmp"
		if RESULTS=$tmp measure scale "$t" "$name" "$bytes" "$repo" "${c[@]}"; then
			chunks=$(chunks_of "$t" "$repo")
			if [ -n "$chunks" ]; then
				src=counted
			else
				# estimate: one chunk per started MiB of each file
				chunks=$(find "$dir" -type f -printf '%s\n' |
					awk '{ n += int(($1 + 1048575) / 1048576) } END { printf "%.0f\n", n }')
				src=estimated
			fi
		fi
		sed "s/\$/\t$files\t$chunks\t$src/" "$tmp" >>"$SCALE_RESULTS"
		rm -rf "$repo" "$CACHE"
	done
	rm -rf "$WORK/scale"
}

SCALE_I=0
for n in $SCALE_FILES; do
	scale_point "files_$n" files "$n"
done
for m in $SCALE_MIB; do
	scale_point "data_${m}MiB" data "$m"
done
