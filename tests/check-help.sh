#!/usr/bin/env bash
# Every `keel <cmd> --help` writes its usage to stdout (nothing to stderr),
# exits 0 and keeps within 80 columns; an unknown option gives a message on
# stderr and exit 2 (STYLE.md 2.8, casync's meson-check-help.sh).
#
#     tests/check-help.sh [KEEL]     (default: $KEEL_BIN)
set -uo pipefail
export LC_ALL=C
KEEL=${1:-${KEEL_BIN:-}}
[ -x "$KEEL" ] || { echo "check-help: no keel binary (argument or KEEL_BIN)" >&2; exit 1; }

# The commands of docs/CLI-SPEC.md, nested verbs included.
commands=(init backup snapshots ls restore diff dump find stats tag check key "key list" "key add"
	"key remove" "key passwd" version forget prune unlock repair serve help generate mirror db image "image backup"
	"image restore" "image serve")

tmp=$(mktemp -d "${TMPDIR:-/tmp}/keel-check-help.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# No repository or password may be needed for --help.
export KEEL_REPOSITORY=$tmp/no-such-repo KEEL_PASSWORD_FILE=$tmp/no-such-file
unset KEEL_PASSWORD KEEL_PASSWORD_COMMAND

failures=0
bad()
{
	echo "check-help: FAIL: $*" >&2
	failures=$((failures + 1))
}

# check_help DESCRIPTION ARGS...: ARGS must print help as required
check_help()
{
	local what=$1 rc=0 width
	shift
	"$KEEL" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null || rc=$?
	[ "$rc" = 0 ] || bad "'keel $what' exited $rc"
	[ -s "$tmp/out" ] || bad "'keel $what' wrote nothing to stdout"
	[ ! -s "$tmp/err" ] || bad "'keel $what' wrote to stderr: $(head -c 200 "$tmp/err")"
	width=$(expand -t 8 "$tmp/out" | awk '{ if (length($0) > w) w = length($0) } END { print w + 0 }')
	[ "$width" -le 80 ] || bad "'keel $what' has lines of $width columns:
$(expand -t 8 "$tmp/out" | awk 'length($0) > 80')"
}

check_help "--help" --help
for c in "${commands[@]}"; do
	read -ra words <<<"$c"
	check_help "$c --help" "${words[@]}" --help
	grep -qw -- "${words[${#words[@]}-1]}" "$tmp/out" || bad "'keel $c --help' does not name '$c'"
done
# The main help lists every top-level command.
"$KEEL" --help >"$tmp/main" 2>/dev/null
for c in init backup snapshots ls restore diff dump check key version help generate; do
	grep -qE "^ +$c( |$)" "$tmp/main" || bad "'keel --help' does not list '$c'"
done

# check_usage_error ARGS...: must exit 2 with a message on stderr
check_usage_error()
{
	local rc=0
	"$KEEL" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null || rc=$?
	[ "$rc" = 2 ] || bad "'keel $*' exited $rc, expected 2"
	[ -s "$tmp/err" ] || bad "'keel $*' gave no message on stderr"
}

check_usage_error --no-such-option
check_usage_error no-such-command
for c in "${commands[@]}"; do
	read -ra words <<<"$c"
	check_usage_error "${words[@]}" --no-such-option
done

if [ "$failures" -gt 0 ]; then
	echo "check-help: $failures problem(s)" >&2
	exit 1
fi
echo "check-help: ${#commands[@]} commands ok"
