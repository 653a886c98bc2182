#!/usr/bin/env bash
# Installs the Debian 12 (bookworm) packages that keel needs. Idempotent: it
# asks dpkg first and runs apt-get only when something is missing (with sudo
# when not root).
#
#     scripts/install-deps.sh               what the build and every test need
#     scripts/install-deps.sh --build-only  what building keel needs (scripts/build.sh,
#                                           scripts/demo.sh)
#     scripts/install-deps.sh --list-build  print the build packages, one a line
#
# debian/control's Build-Depends are the build packages but gcc and libc6-dev
# (build-essential); scripts/test.sh's deb stage checks that they agree.
set -euo pipefail

build_packages=(
	meson ninja-build pkg-config gcc libc6-dev
	libzstd-dev libsodium-dev libssl-dev
	# S3 backend
	libcurl4-openssl-dev
	# keel db: the PostgreSQL replication protocol
	libpq-dev
	# keel db: SQLite databases (src/db/sqlite-*.c)
	libsqlite3-dev
	# keel db: MariaDB servers (src/db/maria-*.c), MariaDB Connector/C
	libmariadb-dev
	# mariabackup's stream checksums (src/db/xbstream.c)
	zlib1g-dev
	# the job daemon's state files and status --json (src/daemon, keel status)
	libjansson-dev
	# the job daemon's HTTP listener (/metrics)
	libmicrohttpd-dev
	# keel image serve: its nbdkit plugin (src/nbdkit); NBD and qcow2 sources of image backup
	nbdkit-plugin-dev libnbd-dev
	# keel mount (src/mount)
	libfuse3-dev
	# unit tests (built with the rest of the tree)
	libcmocka-dev
)
test_packages=(
	# sanitizer and fuzz builds (clang-14, its runtimes, llvm-symbolizer)
	clang-14 libclang-rt-14-dev llvm-14
	# format check
	clang-format-14
	# integration tests: xattrs, ACLs, setpriv/unshare/mount/fallocate,
	# nm, JSON checks
	attr acl util-linux mount coreutils findutils binutils python3
	# I/O errors injected into single system calls (t1021)
	strace
	# S3 tests: a Ceph RADOS Gateway, curl as a second client
	ceph-mon ceph-osd radosgw ceph-common curl
	# TLS in front of the test gateway (a self-signed CA): t2008
	socat openssl
	# generated manual pages and completions checked (t0002)
	man-db zsh fish
	# the Debian package and its lint (scripts/test.sh deb)
	dpkg-dev debhelper fakeroot lintian
	# keel db tests: a PostgreSQL 15 server and its client (tests/lib-pg.sh)
	postgresql-15 postgresql-client-15
	# keel db SQLite tests: the sqlite3 CLI beside python3's module (tests/lib-sqlite.sh)
	sqlite3
	# keel db MariaDB tests: a MariaDB 10.11 server, its clients and mariabackup (tests/lib-maria.sh)
	mariadb-server mariadb-client mariadb-backup
	# disk images made by mkfs.ext4 -d, changed via debugfs, checked by e2fsck: t8001
	e2fsprogs
	# the daemon's mail alerts through a real SMTP client: t6021
	msmtp
	# the daemon's status page, rendered in a headless browser (t6010)
	chromium
	# keel image serve runs nbdkit; NBD clients and qcow2 images in t8003..t8009
	nbdkit libnbd-bin qemu-utils
	# keel mount: fusermount3 (t8010-t8012)
	fuse3
	# image identification, --freeze, --lvm-snapshot, bare-metal restore: sfdisk,
	# mkfs.xfs/vfat/btrfs, LVM on a loop device (t8020-t8023; t8027 in a VM)
	fdisk xfsprogs dosfstools btrfs-progs lvm2 util-linux
	# a VM booted from keel image serve: its kernel, an initramfs of busybox,
	# a SYSLINUX boot disk written with mtools (t8024); the same kernel and
	# busybox run t8022 in a VM with the root over 9p (t8027)
	qemu-system-x86 linux-image-amd64 busybox-static syslinux mtools cpio kmod
)

case ${1:-} in
--build-only) packages=("${build_packages[@]}") ;;
--list-build)
	printf '%s\n' "${build_packages[@]}"
	exit 0
	;;
"") packages=("${build_packages[@]}" "${test_packages[@]}") ;;
*)
	echo "install-deps: unknown argument '$1' (--build-only, --list-build)" >&2
	exit 2
	;;
esac

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
