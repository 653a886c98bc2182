#!/usr/bin/env bash
# The syscall-fault sweep of issue 13: backup (first and incremental),
# prune and restore run under `strace -f -e inject=SYSCALL:error=ERRNO:when=N`
# (Debian's strace), which makes the Nth call of SYSCALL fail with EIO or
# ENOSPC. strace counts calls per syscall and per thread ("tracee"), so
# when=N fails the Nth call of every thread that makes N of them: one run
# may see a fault in several threads. After every faulty run:
#   - the exit code is one docs/EXIT-CODES.md gives the fault where it hit
#     (expected() below; 20 for EIO and 21 for ENOSPC on the repository or
#     the restore target), and stderr carries the real errno's text;
#   - no lock is left behind silently: locks/ is empty unless the command
#     said that its lock is left (exit 4, or its own code and the warning);
#   - check --read-data passes;
#   - a plain rerun succeeds, and the latest snapshot (or the rerun restore)
#     is the source tree exactly (tests/tools/treecmp).
# Positions come from one traced run without faults: the calls of each
# syscall that do not belong to the dynamic loader. By default (CI, meson
# test faults-sweep) a sample of them, chosen by KEEL_FAULTS_SEED; with
# KEEL_FAULTS_LONG=1 every position of every syscall, and every finding is
# listed instead of stopping at the first. KEEL_FAULTS_ONLY=CMD:SYSCALL:ERRNO:N
# reruns one position (as printed by a finding) to reproduce it, and
# KEEL_FAULTS_COMMANDS="prune restore" sweeps only those.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then export TMPDIR=/dev/shm; fi
. "$(dirname "$0")/../lib.sh"
require_keel
require_treecmp
command -v strace >/dev/null || skip_or_die "no strace (scripts/install-deps.sh installs it)"
under_strace
strace -f -qq -o /dev/null true 2>/dev/null || skip_or_die "strace cannot trace here (ptrace not allowed)"

AWK_CALLS=$KEEL_SOURCE_ROOT/tests/faults/strace-calls.awk
LONG=${KEEL_FAULTS_LONG:-0}
SEED=${KEEL_FAULTS_SEED:-13}
SYSCALLS=(write pwrite64 fsync fdatasync rename renameat2 unlink unlinkat openat read pread64)

# ---- the states the sweeps start from (as t4007-fault-sweep) ---------------

SRC=$TEST_DIR/src
mkdir -p "$SRC/sub"
head -c 300000 /dev/urandom >"$SRC/big.bin"
head -c 70000 /dev/urandom >"$SRC/sub/mid.bin"
printf 'one\n' >"$SRC/sub/one.txt"
ln -s sub/one.txt "$SRC/link"

STATES=$TEST_DIR/states
mkdir -p "$STATES"
save_state() { cp -a "$KEEL_REPOSITORY" "$STATES/$1"; }

keel_init >/dev/null
save_state empty
expect_success keel backup --no-progress "$SRC" >/dev/null
save_state one
rm "$SRC/sub/mid.bin"
head -c 50000 /dev/urandom >"$SRC/new.bin"
printf 'two\n' >>"$SRC/sub/one.txt"
expect_success keel backup --no-progress "$SRC" >/dev/null
save_state two
expect_success keel forget --keep-last 1 >/dev/null
save_state forgotten

TGT=$TEST_DIR/target
ERR=$TEST_DIR/fault-err
TRACE=$TEST_DIR/trace

# the commands swept: NAME STATE ARGS...
cmd_args()
{
	case $1 in
	backup-first) echo empty backup --no-progress "$SRC" ;;
	backup-incr) echo one backup --no-progress "$SRC" ;;
	prune) echo forgotten prune --max-unused 0 ;;
	restore) echo two restore latest --target "$TGT" ;;
	esac
}
# KEEL_FAULTS_COMMANDS (by hand): some of them only
read -r -a COMMANDS <<<"${KEEL_FAULTS_COMMANDS:-backup-first backup-incr prune restore}"

# class PATH: where a call acted
class()
{
	case $1 in
	"$KEEL_REPOSITORY"/locks/*) echo lock ;;
	"$KEEL_REPOSITORY"/locks) echo lockdir ;;
	"$KEEL_REPOSITORY" | "$KEEL_REPOSITORY"/*) echo repo ;;
	"$SRC" | "$SRC"/*) echo src ;;
	"$TGT" | "$TGT"/*) echo target ;;
	"$TEST_DIR") echo target ;; # restore creates the target in it
	"$KEEL_PASSWORD_FILE") echo password ;;
	"$ERR") echo stderr ;;
	/dev/null) echo stdout ;;
	/lib/* | /usr/lib/* | /lib64/* | /etc/ld.so.*) echo loader ;;
	*) echo system ;;
	esac
}

# expected CMD CLASS ERRNO SYSCALL PATH: the exit codes allowed after a
# fault of ERRNO in SYSCALL on PATH, of CLASS, during CMD
expected()
{
	local io=20
	[ "$3" = ENOSPC ] && io=21
	case $1:$2:$4:${5#"$KEEL_REPOSITORY"/} in
	# reading the parent snapshot and its trees only saves work: without
	# them backup reads every file afresh (src/ops/backup.c; as t4007)
	backup*:repo:openat:snapshots* | backup*:repo:openat:data/* | \
		backup*:repo:*read*:snapshots/* | backup*:repo:*read*:data/*)
		echo 0 $io
		return
		;;
	esac
	case $1:$2 in
	# a source file or directory that cannot be read is left out and
	# listed (exit 3); the sources themselves failing gives the real error
	backup*:src) echo 3 $io ;;
	# a lock object: the work is done but the own lock could not be
	# deleted (exit 4 and a warning), or taking or checking it failed
	# (the error)
	# deleting the command's own lock: when it fails, keel sweeps locks/
	# for it once more (src/repo/lock.c remove_objects), and strace fails
	# only the Nth call, so the retry may succeed: exit 0 with locks/ empty
	# (held below)
	*:lock) echo 0 4 $io ;;
	# the locks directory: the same, and the fsync after deleting the own
	# lock may fail with the deletion done: keel lists locks/ again, sees
	# its lock gone and exits 0 (src/repo/lock.c remove_objects); should a
	# crash bring the lock back, it names a process that is gone, so it is
	# stale and holds nothing back
	*:lockdir) echo 0 4 $io ;;
	# keel's output goes to /dev/null here: a failed write of it is
	# "cannot write output" (20), reported once at exit
	*:stdout) echo 0 $io ;;
	# a warning that cannot be written changes nothing else
	*:stderr) echo 0 ;;
	# the C library's own files (/etc/passwd and /etc/group for names,
	# /sys/devices/system/cpu/online for the number of workers, locale
	# files): a lookup that fails falls back (numeric ids, one worker, C
	# messages), which is harmless; or its error is reported
	*:system) echo 0 1 $io ;;
	*) echo $io ;;
	esac
}

errno_text()
{
	case $1 in
	EIO) echo 'Input/output error' ;;
	ENOSPC) echo 'No space left on device' ;;
	esac
}

# discover CMD: every SYSCALL POSITION (per thread) whose call is not the
# loader's, from one run without faults, into $TEST_DIR/positions-CMD
discover()
{
	local cmd=$1 state
	local -a args
	read -r state _ <<<"$(cmd_args "$cmd")"
	read -r -a args <<<"$(cmd_args "$cmd" | cut -d' ' -f2-)"
	rm -rf "$KEEL_REPOSITORY" "$TGT"
	cp -a "$STATES/$state" "$KEEL_REPOSITORY"
	strace -f -y -qq -e trace="$(
		IFS=,
		echo "${SYSCALLS[*]}"
	)" -o "$TRACE" "$KEEL" "${args[@]}" >/dev/null 2>"$ERR" || fail "$cmd fails without faults: $(cat "$ERR")"
	awk -f "$AWK_CALLS" "$TRACE" | awk '
		{ n[$1 " " $2]++ }
		$4 !~ /^(\/lib|\/usr\/lib|\/lib64|\/etc\/ld\.so)/ { print $2, n[$1 " " $2] }' |
		sort -u -k1,1 -k2,2n >"$TEST_DIR/positions-$cmd"
}

# sample: the runs, "SYSCALL N ERRNO", from "SYSCALL N" lines on stdin:
# every position with both errors in the long mode; else, to stay near a
# minute, two positions of each syscall, the first with one error and one
# chosen by SEED with the other (which error comes first changes with SEED)
sample()
{
	if [ "$LONG" = 1 ]; then
		awk '{ print $0, "EIO"; print $0, "ENOSPC" }'
		return
	fi
	awk -v seed="$SEED" '
		{ p[$1] = p[$1] " " $2 }
		END {
			srand(seed)
			for (s in p) {
				k = split(substr(p[s], 2), a, " ")
				e1 = rand() < 0.5 ? "EIO" : "ENOSPC"
				e2 = e1 == "EIO" ? "ENOSPC" : "EIO"
				print s, a[1], e1
				if (k > 1) print s, a[2 + int(rand() * (k - 1))], e2
			}
		}' | sort -k1,1 -k2,2n
}

RUNS=0 BAD=0
bad()
{
	[ "$LONG" = 1 ] || fail "$*"
	log "BAD: $*"
	BAD=$((BAD + 1))
}

# run_at CMD SYSCALL ERRNO N: one faulty run and what must follow it
run_at()
{
	local cmd=$1 sc=$2 errno=$3 n=$4 state rc=0 allowed="" cl line what
	local -a args
	read -r state _ <<<"$(cmd_args "$cmd")"
	read -r -a args <<<"$(cmd_args "$cmd" | cut -d' ' -f2-)"
	what="$cmd:$sc:$errno:$n"
	rm -rf "$KEEL_REPOSITORY" "$TGT" "$TEST_DIR/restored"
	cp -a "$STATES/$state" "$KEEL_REPOSITORY"
	strace -f -y -qq -e trace="$sc" -e inject="$sc:error=$errno:when=$n" -o "$TRACE" \
		"$KEEL" "${args[@]}" >/dev/null 2>"$ERR" || rc=$?
	RUNS=$((RUNS + 1))
	local -a hits
	mapfile -t hits < <(awk -f "$AWK_CALLS" "$TRACE" | awk '$3 == 1 && $4 != "-" { print $4 }')
	if [ "${#hits[@]}" = 0 ]; then
		[ "$rc" = 0 ] || bad "$what: no fault injected, exit $rc: $(cat "$ERR")"
		return 0
	fi
	for line in "${hits[@]}"; do
		cl=$(class "$line")
		# the loader's failures are not keel's (the process does not start)
		[ "$cl" = loader ] && return 0
		allowed+=" $(expected "$cmd" "$cl" "$errno" "$sc" "$line")"
	done
	allowed+=" "
	if [[ $allowed != *" $rc "* ]]; then
		bad "$what (at ${hits[*]}): exit $rc, expected one of$allowed: $(cat "$ERR")"
		return 0
	fi
	if [ "$rc" != 0 ] && [ "$rc" != 3 ] && ! grep -qF "$(errno_text "$errno")" "$ERR" &&
		[[ " ${hits[*]} " != *" $ERR "* ]]; then
		bad "$what (at ${hits[*]}): exit $rc without the errno's text: $(cat "$ERR")"
		return 0
	fi
	if [ -n "$(ls -A "$KEEL_REPOSITORY/locks" 2>/dev/null)" ] && ! grep -q 'lock is left' "$ERR"; then
		bad "$what (at ${hits[*]}): exit $rc, a lock is left behind without a word: $(cat "$ERR")"
		return 0
	fi
	if ! keel check --read-data >"$TEST_DIR/check-out" 2>&1; then
		bad "$what (at ${hits[*]}): exit $rc, then check fails: $(cat "$TEST_DIR/check-out")"
		return 0
	fi
	if ! keel "${args[@]}" >/dev/null 2>"$ERR"; then
		bad "$what (at ${hits[*]}): exit $rc, then a plain rerun fails: $(cat "$ERR")"
		return 0
	fi
	if [ "$cmd" != restore ]; then
		if ! keel restore latest --target "$TEST_DIR/restored" >/dev/null 2>"$ERR"; then
			bad "$what: restore after the rerun fails: $(cat "$ERR")"
			return 0
		fi
		treecmp --ignore-atime "$SRC" "$(restored_root "$TEST_DIR/restored" "$SRC")" ||
			bad "$what: the latest snapshot differs from the source after the rerun"
	else
		# a file the failed run could not write whole was set aside as
		# NAME.keel-damaged (the salvage of that run, never under its own
		# name); the rerun restores NAME whole and leaves the salvage to the
		# user, so each one must name a file that is now back
		local root d
		root=$(restored_root "$TGT" "$SRC")
		while IFS= read -r -d '' d; do
			[ -f "${d%.keel-damaged}" ] ||
				bad "$what: $d was set aside but the rerun did not restore its file"
			# removing it must not count as a difference of its directory
			touch -m -r "${d%/*}" "$TEST_DIR/mtime-ref"
			rm -f "$d"
			touch -m -r "$TEST_DIR/mtime-ref" "${d%/*}"
		done < <(find "$root" -name '*.keel-damaged' -print0)
		treecmp --ignore-atime "$SRC" "$root" ||
			bad "$what: the rerun restore differs from the source"
	fi
}

if [ -n "${KEEL_FAULTS_ONLY:-}" ]; then
	IFS=: read -r c s e n <<<"$KEEL_FAULTS_ONLY"
	run_at "$c" "$s" "$e" "$n"
	[ "$BAD" = 0 ] || fail "$BAD findings (above)"
	exit 0
fi

for cmd in "${COMMANDS[@]}"; do
	discover "$cmd"
	sample <"$TEST_DIR/positions-$cmd" >"$TEST_DIR/run-$cmd"
	log "$cmd: $(wc -l <"$TEST_DIR/positions-$cmd") positions, running $(wc -l <"$TEST_DIR/run-$cmd")"
	while read -r sc n errno; do
		run_at "$cmd" "$sc" "$errno" "$n"
	done <"$TEST_DIR/run-$cmd"
done
log "$RUNS faulty runs (seed $SEED, long mode ${LONG})"
[ "$BAD" = 0 ] || fail "$BAD findings (above)"
