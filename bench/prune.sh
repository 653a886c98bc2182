# bench/prune.sh: sourced by bench/run.sh (issue #6). forget with a
# retention policy, then prune, on a repository holding a year of
# snapshots of a small tree that changes a little between them.
#
# The history is built once per tool (not timed): the same tree, changed
# by keelgen between snapshots, is backed up by keel and by restic in turn
# with the same --time, so both repositories hold the same snapshots. Each
# run then times `forget POLICY --prune` on a fresh copy of each
# repository and of its cache. borg is left out: `borg create --timestamp`
# and `borg prune` + `borg compact` would do, but building its history
# costs another second per snapshot.

PRUNE_SNAPS=${KEEL_BENCH_PRUNE_SNAPSHOTS:-$([ "$MODE" = quick ] && echo 50 || echo 300)}
case $PRUNE_SNAPS in '' | *[!0-9]* | 0 | 1) die "KEEL_BENCH_PRUNE_SNAPSHOTS wants a number above 1" ;; esac
PRUNE_POLICY="--keep-daily 7 --keep-weekly 5 --keep-monthly 12"
PRUNE_DIR=$WORK/prune
PRUNE_T0=1735689600 # 2025-01-01 00:00:00 UTC: a fixed year, so the policy keeps the same snapshots every time
PRUNE_STEP=$(( 365 * 86400 / PRUNE_SNAPS ))
PRUNE_TOOLS=()
for t in keel restic; do
	[[ " $TOOLS " == *" $t "* ]] && PRUNE_TOOLS+=("$t")
done
[[ " $TOOLS " == *" borg "* ]] && for run in $(seq 1 "$RUNS"); do
	record_na "$run" borg forget_prune "not measured (building its history would take a second per snapshot more)"
done

# the tree: a source directory (~1,000 files), the start of the image and of the dump
prune_tree() {
	local tree=$PRUNE_DIR/tree
	mkdir -p "$tree"
	cp -a "$DATA/src/lib" "$tree/lib"
	head -c 8388608 "$DATA/disk.img" >"$tree/disk.img"
	head -c 4194304 "$DATA/dump.sql" >"$tree/dump.sql"
}

# snapshot count of a repository, for the table (not timed)
prune_count() {
	case $1 in
	keel) "$KEEL" -r "$2" --no-progress --json snapshots 2>/dev/null | jq 'length' 2>/dev/null ;;
	restic) restic -r "$2" -q --json snapshots 2>/dev/null | jq 'length' 2>/dev/null ;;
	esac
}

cmd_forget_prune() { # cmd_forget_prune TOOL REPO (the policy is split into words on purpose)
	# shellcheck disable=SC2086
	case $1 in
	keel) printf '%s\n' "$KEEL" -r "$2" --no-progress forget $PRUNE_POLICY --prune ;;
	restic) printf '%s\n' restic -r "$2" -q forget $PRUNE_POLICY --prune ;;
	esac
}

prune_scenario() {
	local t i ts m rc old_tz=${TZ-} had_tz=${TZ+x} t0 run order tree=$PRUNE_DIR/tree
	declare -A pdead=()
	# snapshot times are local time for keel: make them UTC for both tools
	export TZ=UTC
	rm -rf "$PRUNE_DIR"
	mkdir -p "$PRUNE_DIR/repos" "$PRUNE_DIR/cache0"
	CACHE=$PRUNE_DIR/cache0 tool_env
	prune_tree
	for t in "${PRUNE_TOOLS[@]}"; do
		if [ "$t" = keel ] && [ "$KEEL_STATUS" != ok ]; then
			pdead[$t]=$KEEL_STATUS
			continue
		fi
		mapfile -t c < <(cmd_init "$t" "$PRUNE_DIR/repos/$t")
		"${c[@]}" >"$LOGS/prune-$t-init.log" 2>&1 ||
			pdead[$t]="init failed: $(tail -n2 "$LOGS/prune-$t-init.log" | oneline)"
	done
	say "== forget+prune: building $PRUNE_SNAPS snapshots over 2025 for ${PRUNE_TOOLS[*]} (not timed, load $(load1))"
	t0=$(now)
	for i in $(seq 1 "$PRUNE_SNAPS"); do
		if [ "$i" -gt 1 ]; then
			rm -rf "$PRUNE_DIR/undo"
			(cd "$tree" && find lib -type f | LC_ALL=C sort) |
				"$KEELGEN" mutate $(( SEED + 1000 + i )) "$tree" "$PRUNE_DIR/undo" >/dev/null
			"$KEELGEN" mutate-image $(( SEED + 1000 + i )) "$tree/disk.img" "$PRUNE_DIR/undo" >/dev/null
			"$KEELGEN" mutate-sql $(( SEED + 1000 + i )) "$tree/dump.sql" "$PRUNE_DIR/undo" >/dev/null
		fi
		ts=$(date -u -d "@$(( PRUNE_T0 + (i - 1) * PRUNE_STEP ))" '+%Y-%m-%d %H:%M:%S')
		for t in "${PRUNE_TOOLS[@]}"; do
			[ -z "${pdead[$t]:-}" ] || continue
			case $t in
			keel) m=("$KEEL" -r "$PRUNE_DIR/repos/keel" --no-progress backup --time "$ts" "$tree") ;;
			restic) m=(restic -r "$PRUNE_DIR/repos/restic" -q --compression auto backup --time "$ts" "$tree") ;;
			esac
			rc=0
			"${m[@]}" >"$LOGS/prune-$t-history.log" 2>&1 || rc=$?
			[ "$rc" = 0 ] ||
				pdead[$t]="backup $i of the history failed (exit $rc): $(tail -n2 "$LOGS/prune-$t-history.log" | oneline)"
		done
	done
	rm -rf "$PRUNE_DIR/undo"
	fact prune_snapshots "$PRUNE_SNAPS"
	fact prune_policy "$PRUNE_POLICY"
	fact prune_tree "$(find "$tree" -type f | wc -l) files, $(file_bytes "$tree") bytes at the end; lib/ of the tree, 8 MiB of the image and 4 MiB of the dump, keelgen mutate, mutate-image and mutate-sql between snapshots"
	fact prune_build_s "$(fsub "$(now)" "$t0")"
	for t in "${PRUNE_TOOLS[@]}"; do
		[ -z "${pdead[$t]:-}" ] || continue
		fact "prune_before_${t}_snapshots" "$(prune_count "$t" "$PRUNE_DIR/repos/$t")"
		fact "prune_before_${t}_bytes" "$(bytes_of "$PRUNE_DIR/repos/$t")"
	done
	say "   history built in $(fsub "$(now)" "$t0") s"

	for run in $(seq 1 "$RUNS"); do
		order=()
		for i in "${!PRUNE_TOOLS[@]}"; do
			order+=("${PRUNE_TOOLS[$(( (i + run - 1) % ${#PRUNE_TOOLS[@]} ))]}")
		done
		say "== forget+prune run $run of $RUNS (order: ${order[*]}, load $(load1))"
		for t in "${order[@]}"; do
			if [ -n "${pdead[$t]:-}" ]; then
				record_na "$run" "$t" forget_prune "${pdead[$t]}"
				continue
			fi
			# a copy of the repository and of the cache as the history left them
			rm -rf "$PRUNE_DIR/run" "$PRUNE_DIR/cache"
			mkdir -p "$PRUNE_DIR/run"
			cp -a "$PRUNE_DIR/repos/$t" "$PRUNE_DIR/run/$t"
			cp -a "$PRUNE_DIR/cache0" "$PRUNE_DIR/cache"
			CACHE=$PRUNE_DIR/cache tool_env
			warm_tree "$PRUNE_DIR/run/$t"
			mapfile -t c < <(cmd_forget_prune "$t" "$PRUNE_DIR/run/$t")
			measure "$run" "$t" forget_prune 0 "$PRUNE_DIR/run/$t" "${c[@]}" || continue
			[ "$run" = 1 ] || continue
			# untimed: what is left, and is it whole?
			fact "prune_after_${t}_snapshots" "$(prune_count "$t" "$PRUNE_DIR/run/$t")"
			mapfile -t c < <(cmd_check "$t" "$PRUNE_DIR/run/$t")
			if "${c[@]}" >"$LOGS/prune-$t-check.log" 2>&1; then
				printf '%s\t%s\tverify_prune\tok\n' "$run" "$t" >>"$RESULTS"
			else
				printf '%s\t%s\tverify_prune\tfail\t\t\t\t\t\t\t\t\t%s\n' "$run" "$t" \
					"check --read-data after prune failed: $(tail -n3 "$LOGS/prune-$t-check.log" | oneline)" >>"$RESULTS"
				say "  $t: CHECK FAILED after forget+prune (see $LOGS/prune-$t-check.log)"
			fi
		done
	done
	rm -rf "$PRUNE_DIR"
	if [ -n "$had_tz" ]; then export TZ=$old_tz; else unset TZ; fi
	CACHE=$WORK/cache
}
[ ${#PRUNE_TOOLS[@]} -eq 0 ] || prune_scenario
