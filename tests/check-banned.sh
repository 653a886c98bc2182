#!/usr/bin/env bash
# Functions we never use (git's banned.h list): unbounded copies,
# non-reentrant time conversion, number parsing without error checking.
# A grep, not a header, so system headers stay untouched.
set -u
cd "$(dirname "$0")/.."
pat='\b(strcpy|strcat|strncpy|sprintf|vsprintf|strtok|gmtime|localtime|ctime|asctime|mktemp|atoi|atol)[[:space:]]*\('
hits=$(grep -rnE "$pat" src include fuzz tests/unit tests/tools 2>/dev/null | grep -vE '^\S+:[0-9]+:\s*(\*|/\*)')
if [ -n "$hits" ]; then
	echo "banned functions used:"
	echo "$hits"
	echo "1..1"
	echo "not ok 1 - banned functions"
	exit 1
fi
echo "1..1"
echo "ok 1 - no banned functions"
