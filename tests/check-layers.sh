#!/usr/bin/env bash
# The layering of docs/ARCHITECTURE.md, held: every dependency between the
# folders of src/ must be an edge of the table there. Two kinds of edges
# are read:
#   includes  #include "keel/X.h" (owned by the layer the table gives) and
#             #include "DIR/…" (another folder's internal header), in
#             src/*/*.[ch] and include/keel/*.h
#   symbols   a kl_ function or variable an object file uses and another
#             folder's object file defines (nm), so a call made through a
#             declaration written by hand is seen as well
# Private headers (the table's "private" lines) may be included only by
# the files listed for them.
#
#     tests/check-layers.sh SOURCE-ROOT BUILD-ROOT
#
# Prints every edge outside the table with the file and the header or
# symbol that makes it, and exits 1; 0 when the code keeps the table.
set -uo pipefail
export LC_ALL=C
src=${1:?usage: check-layers.sh SOURCE-ROOT BUILD-ROOT}
build=${2:?usage: check-layers.sh SOURCE-ROOT BUILD-ROOT}
doc=$src/docs/ARCHITECTURE.md
nm=${NM:-nm}
die()
{
	echo "check-layers: $*" >&2
	exit 1
}
[ -f "$doc" ] || die "no $doc"
[ -f "$build/libkeel.a" ] || die "no $build/libkeel.a (build first)"

# The table: the fenced block after the line "<!-- layers -->":
#   layer LAYER: ALLOWED...        edges LAYER may have
#   header H.h LAYER               include/keel/H.h belongs to LAYER
#   private H.h FILE...            only these files (globs) include H.h
table=$(awk '/<!-- layers -->/ { on = 1; next } on && /^```/ { n++; if (n == 2) exit; next } on && n == 1' "$doc")
[ -n "$table" ] || die "no layer table in $doc (a fenced block after <!-- layers -->)"

declare -A allowed=() owner=() private=()
while read -r kind name rest; do
	case $kind in
	layer) allowed[${name%:}]=" $rest " ;;
	header) owner[$name]=$rest ;;
	private) private[$name]=$rest ;;
	'' | '#'*) ;;
	*) die "bad line in the layer table: $kind $name $rest" ;;
	esac
done <<<"$table"

bad=0
violation()
{
	echo "  $*" >&2
	bad=$((bad + 1))
}

# edge FROM TO WHERE WHAT: checks one dependency
edge()
{
	local from=$1 to=$2
	[ "$from" = "$to" ] && return
	if [ -z "${allowed[$from]+x}" ]; then
		violation "$3: folder '$from' is not in the layer table"
	elif [ -z "${allowed[$to]+x}" ]; then
		violation "$3: $4 belongs to '$to', which is not in the layer table"
	elif [[ ${allowed[$from]} != *" $to "* ]]; then
		violation "$3: $from -> $to ($4)"
	fi
}

# path_matches FILE GLOBS...: FILE (relative to src/) is one of the globs
path_matches()
{
	local f=$1 g
	shift
	for g in "$@"; do
		# shellcheck disable=SC2053
		[[ $f == $g ]] && return 0
	done
	return 1
}

echo "check-layers: includes"
cd "$src" || die "cannot enter $src"
for f in src/*/*.[ch] include/keel/*.h; do
	case $f in
	include/keel/*)
		h=${f#include/keel/}
		layer=${owner[$h]:-}
		[ -n "$layer" ] || {
			violation "$f: header not in the layer table (add a 'header' line)"
			continue
		}
		;;
	*)
		layer=${f#src/}
		layer=${layer%%/*}
		;;
	esac
	while read -r inc; do
		case $inc in
		keel/*)
			h=${inc#keel/}
			to=${owner[$h]:-}
			if [ -z "$to" ]; then
				violation "$f: includes $inc, which is not in the layer table"
				continue
			fi
			if [ -n "${private[$h]+x}" ]; then
				# shellcheck disable=SC2086
				path_matches "${f#src/}" ${private[$h]} ||
					violation "$f: includes private header $inc (allowed in: ${private[$h]})"
			fi
			edge "$layer" "$to" "$f" "$inc"
			;;
		*/*) edge "$layer" "${inc%%/*}" "$f" "$inc" ;;
		esac
	done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f")
done

echo "check-layers: symbols"
# objects: libkeel.a.p/src_DIR_FILE.c.o, and the CLI's src/cli/keel.p/*.o
declare -A layer_of=()
objs=()
for o in "$build"/libkeel.a.p/src_*.o; do
	b=${o##*/src_}
	layer_of[$o]=${b%%_*}
	objs+=("$o")
done
for o in "$build"/src/cli/keel.p/*.o; do
	[ -e "$o" ] || continue
	layer_of[$o]=cli
	objs+=("$o")
done
[ "${#objs[@]}" -gt 0 ] || die "no object files under $build"

# nm -A prefixes every line with "OBJECT:"; one nm call per kind of list
declare -A def_layer=()
while read -r o sym; do
	def_layer[$sym]=${layer_of[$o]}
done < <("$nm" -A -g --defined-only "${objs[@]}" |
	awk 'NF == 3 && $3 ~ /^kl_/ { sub(/:[^:]*$/, "", $1); print $1, $3 }')
while read -r o sym; do
	to=${def_layer[$sym]:-}
	[ -n "$to" ] || continue
	edge "${layer_of[$o]}" "$to" "${o#"$build"/}" "$sym"
done < <("$nm" -A -u "${objs[@]}" |
	awk '$NF ~ /^kl_/ { f = $1; sub(/:.*$/, "", f); print f, $NF }' | sort -u)

if [ "$bad" -gt 0 ]; then
	echo "check-layers: $bad dependencies outside docs/ARCHITECTURE.md's table" >&2
	echo "check-layers: remove them, or change the design and the table together" >&2
	exit 1
fi
echo "check-layers: every include and symbol keeps the table"
