#!/usr/bin/env bash
# The embedded default, end to end: build keel, create a local repository,
# back up a directory twice (the second run is incremental), list the
# snapshots, restore the latest one and verify it byte for byte.
#   usage: scripts/demo.sh [DIRECTORY]   (default: /usr/share/doc)
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh
keel=$(pwd)/build-release/src/cli/keel
src=$(realpath "${1:-/usr/share/doc}")
work=$(mktemp -d /tmp/keel-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT

export KEEL_REPOSITORY=$work/repo
export KEEL_PASSWORD_FILE=$work/password
(umask 077 && head -c 24 /dev/urandom | base64 >"$KEEL_PASSWORD_FILE")

echo "== keel init"
"$keel" init
echo "== keel backup $src"
"$keel" backup --tag demo "$src"
echo "== keel backup $src (again: incremental, nothing changed)"
"$keel" backup --tag demo "$src"
echo "== keel snapshots"
"$keel" snapshots
echo "== keel restore latest --target $work/restore --verify"
"$keel" restore latest --target "$work/restore" --verify
echo "== comparing the restored tree with the source"
diff -r --no-dereference "$src" "$work/restore$src" && echo "restored tree is identical to $src"
echo "== keel check --read-data"
"$keel" check --read-data
