#!/usr/bin/env bash
# keel's test command: builds keel three ways and runs every suite.
#
#     scripts/test.sh [--no-deps] [STAGE...]
#
# Stages (all by default, in this order):
#   gcc     gcc, -Dwerror=true -Dbuildtype=debugoptimized, into build-test/;
#           meson test: unit, integration, help, symbols, layers, fuzz-corpus;
#           then the release build (build-release/) must compile too
#   asan    clang-14 with ASan+UBSan (-fno-sanitize-recover=all, leak
#           detection), into build-asan/; the same suites
#   fuzz    clang-14 -Dfuzz=true into build-fuzz/; each libFuzzer target
#           runs KEEL_FUZZ_SECONDS (20) with its corpus, two at a time
#   deb     the Debian package: dpkg-buildpackage -b -us -uc (nocheck: the
#           gcc stage ran the tests) in a copy of the tree under $TMPDIR,
#           lintian (errors fail), and the files the .deb must hold; nothing
#           is installed. KEEL_DEB_KEEP=1 keeps the copy and its .deb
#   format  clang-format --dry-run -Werror over src/ include/ tests/ fuzz/;
#           a warning unless KEEL_FORMAT_STRICT=1
#
# While the gcc stage's tests run, the later stages' trees (release, asan,
# fuzz) build beside them at nice 10, filling the time the tests spend
# waiting (on the S3 gateway, on timeouts); the S3 gateway
# (tests/lib-s3.sh) starts at the beginning and lives until the end. Each
# stage prints its time, and the summary lists them. KEEL_TEST_JOBS=N
# runs N tests at a time (default: one more than there are cores, as
# several tests mostly wait);
# docs/TESTING.md lists the other knobs and the long forms of the tests.
#
# KEEL_TEST_REQUIRE_ALL=1 (CI sets it) turns every skipped test (exit 77)
# into a failure. The last line printed is "N passed, N failed"; the exit
# status is non-zero when anything failed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

deps=1
stages=()
for a in "$@"; do
	case $a in
	--no-deps) deps=0 ;;
	gcc | asan | fuzz | deb | format) stages+=("$a") ;;
	-h | --help)
		sed -n '2,/^$/s/^# \{0,1\}//p' "$0"
		exit 0
		;;
	*)
		echo "test.sh: unknown argument '$a' (stages: gcc asan fuzz deb format)" >&2
		exit 2
		;;
	esac
done
[ "${#stages[@]}" -gt 0 ] || stages=(gcc deb asan fuzz format)

REQUIRE_ALL=${KEEL_TEST_REQUIRE_ALL:-0}
# one test more than cores: t2004 and the S3 tests spend much of their time
# waiting (on timeouts, on the gateway)
JOBS=${KEEL_TEST_JOBS:-$(($(nproc 2>/dev/null || echo 1) + 1))}
FUZZ_SECONDS=${KEEL_FUZZ_SECONDS:-20}
SAN_ENV=(
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
)

PASSED=0
FAILED=0
SKIPPED=0
FAILURES=()
WARNINGS=()
TIMINGS=()

say()
{
	printf '==> %s\n' "$*"
}

failed()
{
	FAILED=$((FAILED + 1))
	FAILURES+=("$1")
}

if [ "$deps" = 1 ]; then
	if ! scripts/install-deps.sh; then
		echo "test.sh: installing dependencies failed"
		echo "0 passed, 1 failed"
		exit 1
	fi
fi

# setup_build DIR CC MESON-ARGS...: configures DIR with compiler CC; a
# directory configured with another compiler or other arguments is wiped.
# Always reconfigures, so that new fuzz targets and corpora are seen.
setup_build()
{
	local dir=$1 cc=$2
	shift 2
	local want="CC=$cc $*"
	if [ -f "$dir/build.ninja" ] && [ "$(cat "$dir/.keel-test-config" 2>/dev/null)" = "$want" ]; then
		CC=$cc meson setup --reconfigure "$dir" "$@" >"$dir/.keel-setup.log" 2>&1
	else
		rm -rf "$dir"
		mkdir -p "$dir"
		CC=$cc meson setup "$dir" "$@" >"$dir.setup.log" 2>&1 &&
			mv "$dir.setup.log" "$dir/.keel-setup.log"
	fi || {
		cat "$dir/.keel-setup.log" "$dir.setup.log" 2>/dev/null | tail -n 40
		rm -f "$dir.setup.log"
		return 1
	}
	printf '%s' "$want" >"$dir/.keel-test-config"
}

# build DIR [TARGETS...]: ninja, printing the errors on failure
build()
{
	local dir=$1
	shift
	if ! ninja -C "$dir" "$@" >"$dir/.keel-build.log" 2>&1; then
		grep -E -A12 'FAILED:|error:' "$dir/.keel-build.log" | head -n 80
		return 1
	fi
}

# count_tests DIR LABEL: adds meson's results (meson-logs/testlog.json) to
# the totals; a skip is a failure under KEEL_TEST_REQUIRE_ALL=1
count_tests()
{
	local dir=$1 label=$2 log=$1/meson-logs/testlog.json name result
	if [ ! -s "$log" ]; then
		failed "$label: meson test produced no results"
		return
	fi
	while IFS=$'\t' read -r name result; do
		case $result in
		OK | EXPECTEDFAIL) PASSED=$((PASSED + 1)) ;;
		SKIP)
			if [ "$REQUIRE_ALL" = 1 ]; then
				failed "$label: $name skipped (KEEL_TEST_REQUIRE_ALL=1)"
			else
				SKIPPED=$((SKIPPED + 1))
				WARNINGS+=("$label: $name skipped")
			fi
			;;
		*) failed "$label: $name $result" ;;
		esac
	done < <(testlog_results "$log")
}

# testlog_results LOG: "NAME<TAB>RESULT" per test
testlog_results()
{
	if command -v python3 >/dev/null 2>&1; then
		python3 -c '
import json, sys
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    if line.strip():
        t = json.loads(line)
        print("%s\t%s" % (t.get("name", "?"), t.get("result", "?")))' "$1"
	else
		sed -n 's/.*"name": "\([^"]*\)".*"result": "\([A-Z]*\)".*/\1\t\2/p' "$1"
	fi
}

# run_suites DIR LABEL [ENV...] [-- MESON-TEST-ARGS]: meson test in DIR
run_suites()
{
	local dir=$1 label=$2
	shift 2
	local -a envs=() margs=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		envs+=("$1")
		shift
	done
	[ $# -gt 0 ] && shift
	margs=("$@")
	margs+=(--num-processes "$JOBS")
	rm -f "$dir/meson-logs/testlog.json"
	env "${envs[@]}" meson test -C "$dir" --no-rebuild --print-errorlogs "${margs[@]}"
	count_tests "$dir" "$label"
	say "$label: the slowest tests"
	scripts/test-times.sh -n 8 "$dir" | tail -n +2
}

# the trees of the later stages: setup_TREE configures it
setup_release()
{
	setup_build build-release gcc -Dwerror=true -Dbuildtype=release -Dtestable=false
}

setup_asan()
{
	setup_build build-asan clang-14 -Dwerror=true -Dbuildtype=debugoptimized \
		-Db_sanitize=address,undefined -Db_lundef=false \
		-Dc_args=-fno-sanitize-recover=all -Dc_link_args=-fno-sanitize-recover=all
}

setup_fuzz()
{
	setup_build build-fuzz clang-14 -Dfuzz=true -Dwerror=true -Dbuildtype=debugoptimized \
		-Db_lundef=false
}

# fuzz_known: the fuzz/fuzz-*.c targets that fuzz/meson.build lists
fuzz_known()
{
	local src name
	for src in fuzz/fuzz-*.c; do
		name=$(basename "$src" .c)
		[ "$name" != fuzz-main ] && grep -q "'$name'" fuzz/meson.build && echo "$name"
	done
	return 0
}

# prebuild TREE...: configures and builds the trees in the background at
# nice 10 while the gcc stage's tests run (their waits leave the CPU
# idle); each stage then configures and builds its tree again in the
# foreground, a no-op when the background did it, which reports errors
PREBUILD_PID=
prebuild()
{
	(
		local -a fz
		renice -n 10 "$BASHPID" >/dev/null 2>&1
		mapfile -t fz < <(fuzz_known | sed 's|^|fuzz/|')
		for t in "$@"; do
			case $t in
			release) setup_release && build build-release ;;
			asan) setup_asan && build build-asan ;;
			fuzz) setup_fuzz && build build-fuzz "${fz[@]}" ;;
			esac
		done
	) >/dev/null 2>&1 </dev/null &
	PREBUILD_PID=$!
}

# wait_prebuild: before a stage touches a tree the background may build
wait_prebuild()
{
	[ -n "$PREBUILD_PID" ] || return 0
	wait "$PREBUILD_PID" 2>/dev/null
	PREBUILD_PID=
}

# wanted STAGE: STAGE is among those to run
wanted()
{
	local s
	for s in "${stages[@]}"; do [ "$s" = "$1" ] && return 0; done
	return 1
}

stage_gcc()
{
	local dir=build-test
	setup_build "$dir" gcc -Dwerror=true -Dbuildtype=debugoptimized || {
		failed "gcc: meson setup"
		return
	}
	build "$dir" || {
		failed "gcc: build"
		return
	}
	local -a later=(release)
	wanted asan && later+=(asan)
	wanted fuzz && later+=(fuzz)
	[ "${KEEL_TEST_PREBUILD:-1}" = 0 ] || prebuild "${later[@]}"
	run_suites "$dir" gcc KEEL_TEST_REQUIRE_ALL="$REQUIRE_ALL"
	wait_prebuild
	# the release build users get (scripts/build.sh and demo.sh build all of
	# it, tests included) has checks of its own (_FORTIFY_SOURCE's
	# warn_unused_result): it must build too
	setup_release || {
		failed "gcc: meson setup of the release build"
		return
	}
	if build build-release; then
		PASSED=$((PASSED + 1))
	else
		failed "gcc: release build"
	fi
}

stage_asan()
{
	local dir=build-asan
	wait_prebuild
	setup_asan || {
		failed "asan: meson setup"
		return
	}
	build "$dir" || {
		failed "asan: build"
		return
	}
	asan_tests "$dir"
	# the sweeps and the soak run thinner here, where each keel is 2-3x slower:
	# the gcc stage samples three times as many positions; t2002 pages
	# through 150 snapshots (its small pages are the paging code under
	# ASan; the gcc stage has the 1,010 that need a second page of the
	# server's); and one in KEEL_ASAN_S3_SHARE of the S3 variants runs
	run_suites "$dir" asan KEEL_TEST_REQUIRE_ALL="$REQUIRE_ALL" "${SAN_ENV[@]}" \
		KEEL_SWEEP_STRIDE="${KEEL_SWEEP_STRIDE:-9}" KEEL_SOAK_SECONDS="${KEEL_SOAK_SECONDS:-15}" \
		KEEL_TEST_S3_SNAPSHOTS="${KEEL_TEST_S3_SNAPSHOTS:-150}" -- \
		--timeout-multiplier 3 "${ASAN_TESTS[@]}"
}

# asan_tests DIR: ASAN_TESTS, the names of the tests the asan stage runs:
# all but the S3 variants of the integration tests (suite integration-s3,
# which only point the same tests at the S3 gateway), of which one in
# KEEL_ASAN_S3_SHARE (default 3; 1 runs all) runs, which one by the day of
# the year (KEEL_ASAN_S3_OFFSET): each runs under ASan every third day and
# under gcc every time; the S3 tests proper (t2*) always run
ASAN_TESTS=()
asan_tests()
{
	local share=${KEEL_ASAN_S3_SHARE:-3} off line i=0
	local -a s3=()
	off=${KEEL_ASAN_S3_OFFSET:-$((10#$(date -u +%j)))}
	ASAN_TESTS=()
	while IFS= read -r line; do
		case $line in
		*"integration-s3 / "*)
			[ $(((i + off) % share)) = 0 ] && s3+=("${line##* / }")
			i=$((i + 1))
			;;
		*" / "*) ASAN_TESTS+=("${line##* / }") ;;
		esac
	done < <(meson test -C "$1" --no-rebuild --list 2>/dev/null)
	# nothing listed: meson runs every test
	[ "${#ASAN_TESTS[@]}" -gt 0 ] || return 0
	ASAN_TESTS+=("${s3[@]}")
	say "asan: ${#s3[@]} of $i S3 variants (KEEL_ASAN_S3_SHARE=$share, KEEL_ASAN_S3_OFFSET=$off): ${s3[*]}"
}

stage_fuzz()
{
	local dir=build-fuzz name src result
	local -a targets=() known=()
	for src in fuzz/fuzz-*.c; do
		name=$(basename "$src" .c)
		[ "$name" = fuzz-main ] || targets+=("$name")
	done
	if [ "${#targets[@]}" -eq 0 ]; then
		say "fuzz: no targets in fuzz/ yet"
		return
	fi
	wait_prebuild
	setup_fuzz || {
		failed "fuzz: meson setup"
		return
	}
	# only targets that fuzz/meson.build knows are built
	for name in "${targets[@]}"; do
		if grep -q "'$name'" fuzz/meson.build; then
			known+=("$name")
		else
			WARNINGS+=("fuzz: $name is not listed in fuzz/meson.build")
		fi
	done
	build "$dir" "${known[@]/#/fuzz/}" || {
		failed "fuzz: build"
		return
	}
	env "${SAN_ENV[@]}" fuzz/run-fuzz.sh "$dir" "$FUZZ_SECONDS" "${known[@]}" |
		tee "$dir/.keel-fuzz.log" | grep -v '^fuzz-result '
	for name in "${known[@]}"; do
		result=$(awk -v t="$name" '$1 == "fuzz-result" && $2 == t { print $3 }' "$dir/.keel-fuzz.log")
		if [ "$result" = ok ]; then
			PASSED=$((PASSED + 1))
		else
			failed "fuzz: $name (log: $dir/fuzz-runs/$name.log)"
		fi
	done
}

# deb_check WORK: what the package built in WORK must be, else a failure
# message on stdout
deb_check()
{
	local work=$1 deb want c f
	deb=$(find "$work" -maxdepth 1 -name 'keel_*.deb' | head -n 1)
	[ -n "$deb" ] || {
		echo "no keel_*.deb was built"
		return
	}
	# Build-Depends are install-deps.sh's build packages but build-essential's
	want=$(scripts/install-deps.sh --list-build | grep -vxE 'gcc|libc6-dev' | sort)
	c=$(awk '/^Build-Depends:/ { sub(/^Build-Depends:/, ""); f = 1 } /^[^ ]/ && !/^ / && f == 2 { f = 0 }
		f { f = 2; print }' debian/control | tr ',' '\n' | sed 's/[(<].*//; s/[[:space:]]//g' |
		grep -vxE 'debhelper-compat|' | sort)
	[ "$want" = "$c" ] || echo "debian/control's Build-Depends are not install-deps.sh's build list:" \
		"$(diff <(echo "$want") <(echo "$c") | grep '^[<>]' | tr '\n' ' ')"
	dpkg-deb -c "$deb" | awk '{ print $6 }' | sed 's|^\./|/|' >"$work/files"
	dpkg-deb -x "$deb" "$work/root"
	want=(/usr/bin/keel /usr/share/man/man1/keel.1.gz /usr/share/doc/keel/copyright
		/usr/share/bash-completion/completions/keel /usr/share/zsh/vendor-completions/_keel
		/usr/share/fish/vendor_completions.d/keel.fish
		/lib/systemd/system/keel-backup@.service /lib/systemd/system/keel-backup@.timer)
	# a manual page for every command the packaged keel has
	for c in $("$work/root/usr/bin/keel" --help | sed -n '/^Commands:/,/^$/s/^  \([a-z][a-z0-9-]*\) .*/\1/p'); do
		want+=("/usr/share/man/man1/keel-$c.1.gz")
	done
	[ "${#want[@]}" -gt 20 ] || echo "the packaged keel lists too few commands"
	for f in "${want[@]}"; do
		grep -qxF "$f" "$work/files" || echo "the .deb lacks $f"
	done
	grep -q '^ExecStart=/usr/bin/keel backup ' "$work/root/lib/systemd/system/keel-backup@.service" ||
		echo "keel-backup@.service does not run /usr/bin/keel backup"
	# the units as systemd reads them, for an instance (the binary is not installed here)
	if command -v systemd-analyze >/dev/null; then
		mkdir "$work/units"
		for f in service timer; do
			cp "$work/root/lib/systemd/system/keel-backup@.$f" "$work/units/keel-backup@check.$f"
		done
		(cd "$work/units" && SYSTEMD_UNIT_PATH=$work/units: systemd-analyze verify --man=no \
			keel-backup@check.timer keel-backup@check.service 2>&1) |
			grep -v 'Command /usr/bin/keel is not executable' | sed 's/^/systemd-analyze: /'
	fi
}

stage_deb()
{
	local work log problems c
	for c in dpkg-buildpackage dh lintian; do
		command -v "$c" >/dev/null || {
			failed "deb: no $c (scripts/install-deps.sh installs it)"
			return
		}
	done
	work=$(mktemp -d "${TMPDIR:-/tmp}/keel-deb.XXXXXX")
	mkdir "$work/keel"
	# the working tree as it is, tracked and new files, without build directories
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		git ls-files -z --cached --others --exclude-standard |
			while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
			tar -c --null -T - | tar -x -C "$work/keel"
	else
		tar -c --exclude='./build*' --exclude=./obj-* . | tar -x -C "$work/keel"
	fi
	log=$work/build.log
	if ! (cd "$work/keel" && DEB_BUILD_OPTIONS="nocheck noautodbgsym parallel=$(nproc)" DEB_BUILD_PROFILES=nocheck \
		dpkg-buildpackage -b -us -uc) >"$log" 2>&1; then
		tail -n 40 "$log"
		failed "deb: dpkg-buildpackage failed (log: $log)"
		return
	fi
	if lintian --fail-on error "$work"/keel_*.changes >"$work/lintian.log" 2>&1; then
		PASSED=$((PASSED + 1))
		grep -E '^[WI]: ' "$work/lintian.log" | sed 's/^/  lintian: /'
	else
		cat "$work/lintian.log"
		failed "deb: lintian reports errors (log: $work/lintian.log)"
	fi
	problems=$(deb_check "$work")
	if [ -z "$problems" ]; then
		PASSED=$((PASSED + 1))
		say "deb: $(basename "$work"/keel_*.deb) holds $(wc -l <"$work/files") entries as expected"
	else
		echo "$problems"
		failed "deb: the package is not as expected ($work)"
		return
	fi
	if [ "${KEEL_DEB_KEEP:-0}" = 1 ]; then
		say "deb: kept $work"
	else
		rm -rf "$work"
	fi
}

stage_format()
{
	local cf f
	local -a files=() bad=()
	cf=$(command -v clang-format-14 || command -v clang-format || true)
	if [ -z "$cf" ]; then
		failed "format: no clang-format"
		return
	fi
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		while IFS= read -r f; do
			[ -f "$f" ] && files+=("$f")
		done < <(git ls-files --cached --others --exclude-standard -- \
			'src/*.[ch]' 'include/*.[ch]' 'tests/*.[ch]' 'fuzz/*.[ch]' | sort -u)
	else
		while IFS= read -r f; do files+=("$f"); done < <(find src include tests fuzz -name '*.[ch]' | sort)
	fi
	for f in "${files[@]}"; do
		"$cf" --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
	done
	if [ "${#bad[@]}" -eq 0 ]; then
		say "format: ${#files[@]} files clean"
		PASSED=$((PASSED + 1))
		return
	fi
	say "format: ${#bad[@]} of ${#files[@]} files are not clang-formatted:"
	printf '  %s\n' "${bad[@]}"
	echo "  (see: $cf --dry-run -Werror FILE; fix: $cf -i FILE)"
	if [ "${KEEL_FORMAT_STRICT:-0}" = 1 ]; then
		failed "format: ${#bad[@]} files not formatted"
	else
		WARNINGS+=("format: ${#bad[@]} files not formatted (a warning; KEEL_FORMAT_STRICT=1 fails)")
	fi
}

# the S3 gateway, started now (while the gcc stage builds) and held until
# this script ends; the tests start it themselves if this fails
if wanted gcc || wanted asan; then
	bash tests/lib-s3.sh --start $$ >/dev/null 2>&1 </dev/null &
fi

# cpu_ticks: "BUSY TOTAL" clock ticks of all CPUs since boot (/proc/stat)
cpu_ticks()
{
	awk '$1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t; exit }' \
		/proc/stat 2>/dev/null || echo "0 0"
}

# busy_pct BEFORE AFTER: how busy the CPUs were between two cpu_ticks; the
# summary shows it per stage, to tell a stage that waits (more tests at a
# time would help) from one the CPUs limit
busy_pct()
{
	local -a a=($1) b=($2)
	[ $((b[1] - a[1])) -gt 0 ] && echo "$((100 * (b[0] - a[0]) / (b[1] - a[1])))%" || echo "?"
}

total_start=$SECONDS
for s in "${stages[@]}"; do
	say "stage $s"
	start=$SECONDS
	ticks=$(cpu_ticks)
	before_p=$PASSED
	before_f=$FAILED
	"stage_$s"
	TIMINGS+=("$(printf '%-7s %4ds  %d passed, %d failed  (cpu busy %s, load %s)' "$s" $((SECONDS - start)) \
		$((PASSED - before_p)) $((FAILED - before_f)) "$(busy_pct "$ticks" "$(cpu_ticks)")" \
		"$(cut -d' ' -f2 /proc/loadavg 2>/dev/null)")")
done

echo
say "summary ($((SECONDS - total_start))s)"
printf '  %s\n' "${TIMINGS[@]}"
if [ "${#WARNINGS[@]}" -gt 0 ]; then
	echo "warnings:"
	printf '  %s\n' "${WARNINGS[@]}"
fi
if [ "${#FAILURES[@]}" -gt 0 ]; then
	echo "failures:"
	printf '  %s\n' "${FAILURES[@]}"
fi
[ "$SKIPPED" = 0 ] || echo "$SKIPPED skipped"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
