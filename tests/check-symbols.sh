#!/usr/bin/env bash
# Every global symbol that libkeel.a defines starts with kl_ (STYLE.md 2.2):
# an unprefixed global in our library can interpose on a shared library's.
#
#     tests/check-symbols.sh path/to/libkeel.a
set -uo pipefail
export LC_ALL=C
lib=${1:?usage: check-symbols.sh LIBKEEL.A}
nm=${NM:-nm}
[ -f "$lib" ] || { echo "check-symbols: no such file: $lib" >&2; exit 1; }

# nm -g --defined-only: "ADDR TYPE NAME"; archive member headers end in ':'.
if ! syms=$("$nm" -g --defined-only "$lib"); then
	echo "check-symbols: $nm failed on $lib" >&2
	exit 1
fi
bad=$(printf '%s\n' "$syms" | awk '
	NF == 3 && $0 !~ /:$/ {
		name = $3
		if (name ~ /^kl_/) next
		# instrumentation the compiler adds for sanitizers and coverage
		if (name ~ /^__odr_asan_gen_kl_/ || name ~ /^__(asan|ubsan|sancov|llvm|profc|profd)_/) next
		print name
	}' | sort -u)
count=$(printf '%s\n' "$syms" | awk 'NF == 3 && $3 ~ /^kl_/' | wc -l)
if [ -n "$bad" ]; then
	echo "check-symbols: global symbols in $(basename "$lib") without the kl_ prefix:" >&2
	printf '  %s\n' $bad >&2
	echo "check-symbols: make them static or rename them kl_<subsystem>_<verb>" >&2
	exit 1
fi
echo "check-symbols: $count global symbols, all kl_"
