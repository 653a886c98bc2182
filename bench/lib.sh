# bench/lib.sh: helpers for bench/run.sh (sourced, not run).
# Tool adapters, the timing wrapper, page-cache warming and small maths.

say() { printf '%s\n' "$*" >&2; }
die() { say "bench: $*"; exit 1; }
now() { date +%s.%N; }
load1() { cut -d' ' -f1 /proc/loadavg; }
# fsub A B: A - B for decimal strings
fsub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
fadd() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a + b }'; }
# one line, no tabs, at most 300 characters: safe inside the TSV and JSON
oneline() { tr '\t\r\n' '   ' | sed 's/  */ /g; s/^ //; s/ $//' | cut -c1-300; }
bytes_of() { du -sb "$1" 2>/dev/null | cut -f1; }
# apparent size of the regular files under a directory (what a restore writes)
file_bytes() { find "$1" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%.0f\n", s }'; }

# Page cache: these VMs reclaim pages idle for about a minute, so every
# timed command is preceded by reading its inputs. tar to a pipe, not to
# /dev/null: GNU tar skips reading file data when it writes to /dev/null.
warm_tree() { tar cf - -C "$1" . 2>/dev/null | cat >/dev/null || true; }

# Restore targets. ext4 looks through recently freed inodes before it
# reuses them (find_inode_bit, recently_deleted), so a restore that starts
# right after the previous tool's tree was deleted creates every inode
# slowly; on these VMs that cost one tool, or tar's ceiling, up to 3x,
# depending only on who came after a deletion. So when we are root and have
# mkfs.ext4 and loop devices, every timed restore writes to a new ext4 file
# system (default options, with journal, as a user's disk would have) on a
# sparse file; otherwise to a fresh directory, and the results say so.
# KEEL_BENCH_FRESH_FS=0 turns it off.
FRESH_FS_OK=
fresh_fs_ok() {
	if [ -z "$FRESH_FS_OK" ]; then
		FRESH_FS_OK=no
		if [ "${KEEL_BENCH_FRESH_FS:-1}" != 0 ] && [ "$(id -u)" = 0 ] &&
			command -v mkfs.ext4 >/dev/null && command -v losetup >/dev/null; then
			local img=$WORK/fresh-probe.img m=$WORK/fresh-probe
			mkdir -p "$m"
			if truncate -s 64M "$img" && mkfs.ext4 -q -F "$img" 2>/dev/null &&
				mount -o loop "$img" "$m" 2>/dev/null; then
				umount "$m" && FRESH_FS_OK=yes
			fi
			rm -rf "$img" "$m"
		fi
	fi
	[ "$FRESH_FS_OK" = yes ]
}
# fresh_target DIR BYTES: DIR is an empty directory on a new file system with
# room for BYTES of restored data
fresh_target() {
	release_target "$1"
	mkdir -p "$1"
	fresh_fs_ok || return 0
	# twice the data, for metadata and the journal, and at least 1 GiB
	local size=$(( ${2:-0} * 2 + (1 << 30) ))
	truncate -s "$size" "$1.img" && mkfs.ext4 -q -F "$1.img" && mount -o loop "$1.img" "$1" ||
		die "cannot make a file system for the restore target $1"
}
release_target() {
	if mountpoint -q "$1" 2>/dev/null; then
		umount "$1" || die "cannot unmount $1"
	fi
	rm -rf "$1" "$1.img"
}
restore_fs_note() {
	if fresh_fs_ok; then
		echo "restores write to a new ext4 file system (loop device) each time"
	else
		echo "restores write to a new directory on $(df --output=fstype "$WORK" | tail -1) (no fresh file system: not root, or no loop devices)"
	fi
}

# ---- the three tools ---------------------------------------------------------
# Each tool gets its own cache directory under $CACHE (made fresh per run);
# passwords come from the environment, as the tools document.
export KEEL_PASSWORD=keel-bench-password
export RESTIC_PASSWORD=keel-bench-password
export BORG_PASSPHRASE=keel-bench-password
export BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
export BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes
export BORG_DISPLAY_PASSPHRASE=no

tool_env() {
	export RESTIC_CACHE_DIR=$CACHE/restic
	export BORG_BASE_DIR=$CACHE/borg
	export XDG_CACHE_HOME=$CACHE/xdg
	mkdir -p "$RESTIC_CACHE_DIR" "$BORG_BASE_DIR" "$XDG_CACHE_HOME"
}

# cmd_init TOOL REPO: prints the command, one argument per line
# (read back into an array by the caller; paths here have no newlines)
cmd_init() {
	case $1 in
	keel) printf '%s\n' "$KEEL" -r "$2" --no-progress init $KEEL_INIT_ARGS ;;
	restic) printf '%s\n' restic -r "$2" -q init --repository-version 2 ;;
	borg) printf '%s\n' borg init -e repokey "$2" ;;
	esac
}
# cmd_backup TOOL REPO NAME PATH
cmd_backup() {
	case $1 in
	keel) printf '%s\n' "$KEEL" -r "$2" --no-progress backup "$4" ;;
	restic) printf '%s\n' restic -r "$2" -q --compression auto backup "$4" ;;
	borg) printf '%s\n' borg create --compression zstd,3 "$2::$3" "$4" ;;
	esac
}
# cmd_restore TOOL REPO NAME TARGET (borg extracts into its working directory)
cmd_restore() {
	case $1 in
	keel) printf '%s\n' "$KEEL" -r "$2" --no-progress restore latest --target "$4" ;;
	restic) printf '%s\n' restic -r "$2" -q restore latest --target "$4" ;;
	borg) printf '%s\n' env -C "$4" borg extract "$2::$3" ;;
	esac
}
# cmd_restore_file TOOL REPO NAME TARGET PATH: one file of the latest
# snapshot (PATH as backed up, absolute); restores of large files
cmd_restore_file() {
	case $1 in
	keel) printf '%s\n' "$KEEL" -r "$2" --no-progress restore latest --target "$4" --include "$5" ;;
	restic) printf '%s\n' restic -r "$2" -q restore latest --target "$4" --include "$5" ;;
	borg) printf '%s\n' env -C "$4" borg extract "$2::$3" "${5#/}" ;;
	esac
}
cmd_check() {
	case $1 in
	keel) printf '%s\n' "$KEEL" -r "$2" --no-progress check --read-data ;;
	restic) printf '%s\n' restic -r "$2" -q check --read-data ;;
	borg) printf '%s\n' borg check --verify-data "$2" ;;
	esac
}
# listing snapshots: what opening the repository costs (key derivation,
# index, lock), measured on the finished repository
cmd_list() {
	case $1 in
	keel) printf '%s\n' "$KEEL" -r "$2" --no-progress snapshots ;;
	restic) printf '%s\n' restic -r "$2" -q snapshots ;;
	borg) printf '%s\n' borg list "$2" ;;
	esac
}

# Exit codes that still mean success. borg exits 1 for warnings (e.g. a
# file changed while it was read); everything else must exit 0.
tool_ok() {
	[ "$2" = 0 ] && return 0
	[ "$1" = borg ] && [ "$2" = 1 ] && return 0
	return 1
}

# chunks_of TOOL REPO: stored data chunks (blobs), or nothing if unknown
chunks_of() {
	case $1 in
	restic)
		restic -r "$2" -q --json stats --mode raw-data 2>/dev/null |
			jq -r '.total_blob_count // empty' 2>/dev/null ;;
	borg)
		borg info --json "$2" 2>/dev/null |
			jq -r '.cache.stats.total_unique_chunks // empty' 2>/dev/null ;;
	keel)
		# the stats format is not settled yet: take the first count of
		# chunks or blobs that `check --json` (stored blobs, data and
		# tree) or `snapshots --json` gives
		{ "$KEEL" -r "$2" --json check 2>/dev/null
		  "$KEEL" -r "$2" --json snapshots 2>/dev/null; } |
			jq -r '[.. | objects | to_entries[] |
				select(.key | test("^(total_)?(data_)?(chunk|blob)s?(_count)?$|^(chunks|blobs)_stored$"))
				| .value | numbers] | first // empty' 2>/dev/null | head -1 ;;
	esac
}

# s3_bytes s3:http://HOST:PORT/BUCKET[/PREFIX]: total size of the objects
# below it (ListObjectsV2 with SigV4, following continuation tokens), the
# S3 side of bytes_of; the key pair comes from the environment
s3_bytes() {
	local u=${1#s3:} ep bucket prefix token='' page q total=0 n
	ep=${u%%://*}://$(printf '%s' "${u#*://}" | cut -d/ -f1)
	bucket=$(printf '%s' "${u#*://}" | cut -d/ -f2)
	prefix=$(printf '%s' "${u#*://}" | cut -d/ -f3-)
	while :; do
		# query parameters in canonical (sorted) order
		q="list-type=2${prefix:+&prefix=$(jq -rn --arg p "${prefix%/}/" '$p | @uri')}"
		[ -z "$token" ] || q="continuation-token=$(jq -rn --arg t "$token" '$t | @uri')&$q"
		page=$(curl -s -m 60 --aws-sigv4 "aws:amz:${AWS_DEFAULT_REGION:-us-east-1}:s3" \
			--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
			-H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$ep/$bucket?$q") || return 1
		case $page in *'<ListBucketResult'*) ;; *) return 1 ;; esac
		n=$(printf '%s' "$page" | grep -o '<Size>[0-9]*</Size>' | tr -dc '0-9\n' |
			awk '{ s += $1 } END { printf "%.0f", s }')
		total=$(awk -v a="$total" -v b="$n" 'BEGIN { printf "%.0f", a + b }')
		case $page in *'<IsTruncated>true</IsTruncated>'*) ;; *) break ;; esac
		token=$(printf '%s' "$page" | grep -o '<NextContinuationToken>[^<]*</NextContinuationToken>' |
			sed -e 's/^<NextContinuationToken>//' -e 's/<\/NextContinuationToken>$//')
		[ -n "$token" ] || return 1
	done
	echo "$total"
}

# ---- timing ---------------------------------------------------------------------
# measure RUN TOOL SCENARIO WORK_BYTES REPO CMD...
# Runs CMD under GNU time after a sync, so dirty pages from the previous
# step are not written back inside the timed window. Appends one row to
# $RESULTS and sets MEASURE_RC. Output of CMD goes to a log file.
measure() {
	local run=$1 tool=$2 scen=$3 bytes=$4 repo=$5
	shift 5
	local tf=$WORK/tmp/time.out log=$LOGS/run$run-$tool-$scen.log
	local rc=0 load wall user sys rss status err='' repo_bytes=''
	sync
	load=$(load1)
	/usr/bin/time -f '%e %U %S %M' -o "$tf" "$@" >"$log" 2>&1 || rc=$?
	read -r wall user sys rss <<<"$(tail -n1 "$tf")"
	if tool_ok "$tool" "$rc"; then
		status=ok
	else
		status=fail
		err="exit $rc: $(grep -v '^$' "$log" | tail -n3 | oneline)"
	fi
	case $repo in
	'') ;;
	s3:*) repo_bytes=$(s3_bytes "$repo") ;;
	*) repo_bytes=$(bytes_of "$repo") ;;
	esac
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
		"$run" "$tool" "$scen" "$status" "$wall" "$user" "$sys" "$rss" \
		"${repo_bytes:-0}" "$bytes" "$load" "$rc" "$err" >>"$RESULTS"
	printf '  %-7s %-10s %-4s wall %7ss cpu %7ss rss %7s KiB load %s%s\n' "$tool" "$scen" "$status" \
		"$wall" "$(fadd "$user" "$sys")" "$rss" "$load" "${err:+  ($err)}" >&2
	MEASURE_RC=$rc
	[ "$status" = ok ]
}

# record_na RUN TOOL SCENARIO WHY: a row for a figure that could not be taken
record_na() {
	printf '%s\t%s\t%s\tn/a\t\t\t\t\t\t\t%s\t\t%s\n' "$1" "$2" "$3" "$(load1)" \
		"$(printf '%s' "$4" | oneline)" >>"$RESULTS"
}

# time_s CMD...: wall seconds of CMD (stdout discarded), for the ceilings
time_s() {
	local t0 t1
	t0=$(now)
	"$@" >/dev/null
	t1=$(now)
	fsub "$t1" "$t0"
}

# bench_install PKG...: Debian packages a bench needs, installed when run
# as root and INSTALL is set (--no-install clears it)
bench_install() {
	[ -n "${INSTALL:-}" ] && [ "$(id -u)" = 0 ] || return 0
	local p
	for p in "$@"; do
		dpkg -s "$p" >/dev/null 2>&1 || apt-get install -y -q "$p" >/dev/null
	done
}
# release_keel: KEEL, or a release build of keel made in build-release
release_keel() {
	if [ -z "${KEEL:-}" ]; then
		(cd "$ROOT" && { [ -d build-release ] ||
			meson setup build-release -Dbuildtype=release -Dtestable=false >/dev/null; } &&
			ninja -C build-release src/cli/keel >/dev/null) || die "cannot build keel"
		KEEL=$ROOT/build-release/src/cli/keel
	fi
}
