#!/usr/bin/env bash
# Installs the Debian 12 (bookworm) packages that keel's build, tests,
# sanitizer and fuzz builds need. Idempotent: it asks dpkg first and runs
# apt-get only when something is missing (with sudo when not root).
set -euo pipefail

packages=(
	# build
	meson ninja-build pkg-config gcc libc6-dev
	libzstd-dev libsodium-dev libssl-dev
	# the job daemon's state files and status --json (src/daemon, keel status)
	libjansson-dev
	# the job daemon's HTTP listener (/metrics)
	libmicrohttpd-dev
	# unit tests
	libcmocka-dev
	# sanitizer and fuzz builds (clang-14, its runtimes, llvm-symbolizer)
	clang-14 libclang-rt-14-dev llvm-14
	# format check
	clang-format-14
	# integration tests: xattrs, ACLs, setpriv/unshare/mount/fallocate,
	# nm, JSON checks
	attr acl util-linux mount coreutils findutils binutils python3
	# I/O errors injected into single system calls (t1021)
	strace
	# S3 backend (libcurl) and its tests: a Ceph RADOS Gateway, curl as a second client
	libcurl4-openssl-dev ceph-mon ceph-osd radosgw ceph-common curl
	# TLS in front of the test gateway (a self-signed CA): t2008
	socat openssl
)

# One dpkg-query for all; packages it does not know are not printed.
installed=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${packages[@]}" 2>/dev/null || true)
missing=()
for p in "${packages[@]}"; do
	grep -qxF "$p installed" <<<"$installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
	exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
sudo=()
if [ "$(id -u)" != 0 ]; then
	command -v sudo >/dev/null || { echo "install-deps: not root and no sudo" >&2; exit 1; }
	sudo=(sudo)
fi
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
	apt-get install -y -q --no-install-recommends "${missing[@]}"
