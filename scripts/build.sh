#!/usr/bin/env bash
# Builds keel (release) into build-release/ after installing what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh --build-only
if [ ! -f build-release/build.ninja ]; then
	meson setup build-release -Dbuildtype=release -Dtestable=false >/dev/null
fi
ninja -C build-release >/dev/null
echo "built $(pwd)/build-release/src/cli/keel"
