#!/usr/bin/env bash
# keel help [COMMAND], "did you mean" for mistyped commands and options,
# and keel generate: manual pages with every command and option that
# --help names, bash/zsh/fish completions that complete them.
. "$(dirname "$0")/../lib.sh"
require_keel
export KEEL_REPOSITORY=$TEST_DIR/no-such-repo
cd "$TEST_DIR" || exit 1

# The commands, from the main help's list (whatever commands exist).
mapfile -t commands < <(keel --help | sed -n '/^Commands:/,/^$/s/^  \([a-z][a-z0-9-]*\) .*/\1/p')
[ "${#commands[@]}" -ge 15 ] || fail "keel --help lists ${#commands[@]} commands"
for c in help generate backup; do
	[[ " ${commands[*]} " == *" $c "* ]] || fail "keel --help does not list '$c'"
done

# ---- keel help -------------------------------------------------------------
keel --help >main.txt
expect_success keel help >help.txt
cmp main.txt help.txt || fail "'keel help' differs from 'keel --help'"
for c in "${commands[@]}"; do
	keel "$c" --help >want.txt
	expect_success keel help "$c" >got.txt
	cmp want.txt got.txt || fail "'keel help $c' differs from 'keel $c --help'"
done

# ---- did you mean ----------------------------------------------------------
# expect_stderr CODE TEXT CMD...: CMD exits CODE, and its stderr is TEXT exactly
expect_stderr()
{
	local code=$1 want=$2
	shift 2
	expect_exit "$code" "$@" >out.txt 2>err.txt </dev/null
	[ "$(cat err.txt)" = "$want" ] || fail "keel ${*:2}: stderr is
$(cat err.txt)
expected
$want"
	[ ! -s out.txt ] || fail "keel ${*:2} wrote to stdout"
}
expect_stderr 2 "keel: unknown command 'bakup'; did you mean 'backup'?" keel bakup /etc
expect_stderr 2 "keel: unknown command 'snapshot'; did you mean 'snapshots'?" keel snapshot
expect_stderr 2 "keel: unknown command 'prnue'; did you mean 'prune'?" keel prnue
expect_stderr 2 "keel: unknown command 're'; did you mean 'restore' or 'repair'?" keel re
expect_stderr 2 "keel: unknown command 'xyzzy'; see 'keel --help'" keel xyzzy
expect_stderr 2 "keel: unknown command 'bakup'; did you mean 'backup'?" keel help bakup
expect_stderr 2 "keel: backup: unknown option '--exlcude'; did you mean '--exclude'?
Run 'keel backup --help' for usage." keel backup --exlcude '*.tmp' /etc
expect_stderr 2 "keel: restore: unknown option '--verfy'; did you mean '--verify'?
Run 'keel restore --help' for usage." keel restore --verfy latest --target x
# under --json the same errors are JSON objects (docs/EXIT-CODES.md)
expect_stderr 2 '{"message_type":"error","code":2,"message":"unknown command '"'bakup'; did you mean 'backup'?"'"}' \
	keel --json bakup
expect_stderr 2 '{"message_type":"error","code":2,"command":"backup","message":"unknown option '"'--exlcude'; did you mean '--exclude'?"'"}' \
	keel --json backup --exlcude x /etc
# a global option, after the command and before it
expect_stderr 2 "keel: ls: unknown option '--josn'; did you mean '--json'?
Run 'keel ls --help' for usage." keel ls --josn latest
expect_stderr 2 "keel: unknown option '--josn=1'; did you mean '--json'?
Run 'keel --help' for usage." keel --josn=1 snapshots
expect_stderr 2 "keel: check: unknown option '--frobnicate'
Run 'keel check --help' for usage." keel check --frobnicate

# ---- keel generate ---------------------------------------------------------
expect_exit 2 keel generate 2>/dev/null
expect_success keel generate --man man --bash-completion keel.bash \
	--zsh-completion _keel --fish-completion keel.fish
# '-' is standard output, the same text
keel generate --bash-completion - >stdout.bash
cmp keel.bash stdout.bash || fail "generate --bash-completion - differs from the file"

# The options of a --help text: the long names on its option lines, read
# here independently of keel's own reading of them.
options_of()
{
	grep -E '^ {1,8}-' | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u
}

# Manual pages: one per command, every option of its --help in it.
[ -f man/keel.1 ] || fail "no keel.1"
[ "$(find man -name '*.1' | wc -l)" = $((${#commands[@]} + 1)) ] ||
	fail "man/ has $(ls man) for ${#commands[@]} commands"
roff_opt() { printf '%s' "${1//-/\\-}"; }
for c in "" "${commands[@]}"; do
	page=man/keel${c:+-$c}.1
	[ -f "$page" ] || fail "no $page"
	grep -q "^\.TH \"KEEL${c:+\\\\-${c^^}}\" 1 " "$page" || fail "$page: no .TH line"
	grep -qF "keel${c:+\\-$c} \\- " "$page" || fail "$page: no NAME line"
	n=0
	while read -r o; do
		grep -qF -- "$(roff_opt "$o")" "$page" || fail "$page lacks $o"
		n=$((n + 1))
	done < <(if [ -n "$c" ]; then keel "$c" --help; else keel --help; fi | options_of)
	case $c in
	"" | backup | restore | forget | check) [ "$n" -ge 5 ] || fail "$page: only $n options" ;;
	esac
done
for c in "${commands[@]}"; do
	grep -qF "\\fB$c\\fR" man/keel.1 || fail "keel.1 does not list '$c'"
	grep -qF ".BR keel\\-$c (1)" man/keel.1 || fail "keel.1 does not refer to keel-$c(1)"
done
# man(1) renders them without a warning (what lintian runs)
if command -v man >/dev/null; then
	for page in man/*.1; do
		LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z \
			"$page" >/dev/null 2>warn.txt
		[ ! -s warn.txt ] || fail "man warns about $page: $(cat warn.txt)"
	done
	MANWIDTH=80 man -l man/keel-backup.1 2>/dev/null | col -b >backup.txt
	grep -q '^ *-e, --exclude PATTERN$' backup.txt || fail "keel-backup(1) renders no --exclude"
	grep -q '^SYNOPSIS' backup.txt || fail "keel-backup(1) has no SYNOPSIS"
fi

# Every option the --help texts name is one the command accepts.
for c in "${commands[@]}"; do
	while read -r o; do
		keel "$c" "$o" --help </dev/null >/dev/null 2>err.txt || true
		! grep -q "unknown option" err.txt || fail "keel $c does not accept its own $o"
	done < <(keel "$c" --help | options_of)
done
rm -rf ./--help # a --man value above

# ---- bash ------------------------------------------------------------------
bash -n keel.bash || fail "keel.bash is not valid bash"
# complete WORDS...: what _keel offers for the last word
cat >comp.sh <<'EOF'
. ./keel.bash
COMP_WORDS=("$@")
COMP_CWORD=$(($# - 1))
COMPREPLY=()
_keel
printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' '
EOF
bash_completes()
{
	local want=$1 got
	shift
	got=$(bash comp.sh "$@")
	[ "$got" = "$want" ] || fail "bash: '$*' completes to '$got', expected '$want'"
}
bash_completes "backup " keel ba
bash_completes "repair restore " keel -r /x re
bash_completes "snapshots " keel --repo /x snap
# every --excl... option backup's --help names, however many there are
excl=$(keel backup --help | grep -o -- '--excl[a-z-]*' | sort -u | tr '\n' ' ')
[ -n "$excl" ] || fail "keel backup --help names no --exclude option"
bash_completes "$excl" keel backup --excl
bash_completes "--target " keel -q restore --targ
bash_completes "--json " keel restore --js
bash_completes "add list passwd remove " keel key ""
bash_completes "compliance governance " keel init --object-lock-mode ""
bash_completes "repair restore " keel help re
bash_completes "--keep-within --keep-within-daily --keep-within-hourly --keep-within-monthly --keep-within-weekly --keep-within-yearly " \
	keel forget --keep-wi
bash_completes "--man " keel generate --ma
mkdir -p dir.d
bash_completes "dir.d " keel restore latest --target dir.

# ---- fish and zsh (when installed: scripts/install-deps.sh installs them) --
# whatever they keep between runs stays here
export HOME=$TEST_DIR/home XDG_CONFIG_HOME=$TEST_DIR/home/.config XDG_DATA_HOME=$TEST_DIR/home/.data
mkdir -p "$HOME"
need_shell()
{
	command -v "$1" >/dev/null && return 0
	[ "${KEEL_TEST_REQUIRE_ALL:-0}" != 1 ] || fail "$1 is not installed"
	log "NOTE: $1 is not installed: its completion is not checked"
	return 1
}
if need_shell fish; then
	fish --no-execute keel.fish || fail "keel.fish is not valid fish"
	fish_completes()
	{
		local want=$1 got
		got=$(fish --no-config -c "source keel.fish; complete -C '$2'" | cut -f1 | sort | tr '\n' ' ')
		[ "$got" = "$want" ] || fail "fish: '$2' completes to '$got', expected '$want'"
	}
	fish_completes "backup " "keel bac"
	fish_completes "$excl" "keel backup --excl"
	fish_completes "add list passwd remove " "keel key "
	fish_completes "compliance governance " "keel init --object-lock-mode "
	fish_completes "--json " "keel restore --js"
fi
if need_shell zsh; then
	zsh -n _keel || fail "_keel is not valid zsh"
	# compinit finds it by its #compdef line; completing in a terminal (zpty)
	cat >ztest.zsh <<'EOF'
setopt extendedglob
zmodload zsh/zpty
zpty -b z zsh -f -i
zpty -w z "PS1=''; fpath=(${1:q} \$fpath); autoload -Uz compinit; compinit -u -D; print -r -- \${_comps[keel]}-READY"
zpty -r -m z out '*_keel-READY*' || exit 1
shift
for w in "$@"; do
	# the words and a tab; then what the line became, marked, and the line cleared
	zpty -w -n z "$w"$'\t'
	zpty -w z $'\C-e'" #DONE"$'\C-u'
	zpty -r -m z out '*\#DONE*' || exit 1
	print -r -- "${out//$'\e'\[[0-9;?]#[a-zA-Z]/}" | tr -d '\r\b' | grep -o 'keel [^#]*#DONE' | tail -n 1
done
zpty -d z
EOF
	timeout 30 zsh -f ztest.zsh "$TEST_DIR" "keel ba" "keel backup --exclude-f" "keel key pa" \
		"keel init --object-lock-mode g" >zsh.txt 2>&1 || fail "zsh completion test failed: $(cat zsh.txt)"
	for want in "keel backup " "keel backup --exclude-file" "keel key passwd " \
		"keel init --object-lock-mode governance "; do
		grep -qF -- "$want" zsh.txt || fail "zsh did not complete to '$want': $(cat zsh.txt)"
	done
fi
log "ok"
