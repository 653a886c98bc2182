#!/usr/bin/env bash
# keel mount (docs/MOUNT.md): the awkward tree (every kind of entry and
# name, hard links, symlinks, sparse files) plus a big file, backed up and
# mounted; the mounted snapshot equals a restore of it in every file and
# every recorded attribute (treecmp), and each file's bytes equal keel
# dump's; random reads across blob boundaries; restic's layout:
# snapshots/TIME, ids, hosts, tags, latest links; a snapshot taken while
# mounted shows up; --host, --tag and --path filter; fusermount3 -u ends
# keel with exit 0.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-mount.sh"
require_keel
require_treecmp
require_fuse
command -v python3 >/dev/null || skip_or_die "python3 missing"

SRC=$TEST_DIR/src
MNT=$TEST_DIR/mnt
keel_init
make_awkward_tree "$SRC"
log "awkward tree made; skipped: ${AWKWARD_SKIPPED[*]:-nothing}"
mb=40
asan_build && mb=12
head -c $((mb << 20)) /dev/urandom >"$SRC/big"

expect_success keel backup --time '2026-03-04T05:06:07Z' --host alpha --tag one,two "$SRC" >/dev/null
expect_success keel backup --time '2026-03-04T05:06:07Z' --host beta "$SRC" >/dev/null
id1=$(snapshot_ids --host alpha)
id2=$(snapshot_ids --host beta)
expect_exit 0 keel restore "$id1" --target "$TEST_DIR/restore" >/dev/null
ROOT=$(restored_root "$TEST_DIR/restore" "$SRC")

mount_start "$MNT"

# ---- the layout --------------------------------------------------------------
[ "$(ls "$MNT" | tr '\n' ' ')" = "hosts ids snapshots tags " ] || fail "root: $(ls "$MNT")"
# two snapshots of the same second: restic's suffix
[ "$(ls "$MNT/snapshots" | tr '\n' ' ')" = "2026-03-04T05:06:07Z 2026-03-04T05:06:07Z-1 latest " ] ||
	fail "snapshots/: $(ls "$MNT/snapshots")"
[ "$(ls "$MNT/ids" | sort | tr '\n' ' ')" = "$(printf '%s\n' "${id1:0:8}" "${id2:0:8}" | sort | tr '\n' ' ')" ] ||
	fail "ids/: $(ls "$MNT/ids")"
[ "$(ls "$MNT/hosts" | tr '\n' ' ')" = "alpha beta " ] || fail "hosts/: $(ls "$MNT/hosts")"
[ "$(ls "$MNT/tags" | tr '\n' ' ')" = "one two " ] || fail "tags/: $(ls "$MNT/tags")"
# which of the two gets the suffix: the order of their ids (as restic orders them)
a=$(readlink "$MNT/hosts/alpha/latest")
b=$(readlink "$MNT/hosts/beta/latest")
[ "$(printf '%s\n' "$a" "$b" | sort | tr '\n' ' ')" = "2026-03-04T05:06:07Z 2026-03-04T05:06:07Z-1 " ] ||
	fail "hosts/*/latest: '$a' and '$b'"
[ "$(ls "$MNT/hosts/beta" | tr '\n' ' ')" = "$b latest " ] || fail "hosts/beta: $(ls "$MNT/hosts/beta")"
[ "$(ls "$MNT/tags/one" | tr '\n' ' ')" = "$a latest " ] || fail "tags/one: $(ls "$MNT/tags/one")"
[ "$(readlink "$MNT/snapshots/latest")" = 2026-03-04T05:06:07Z-1 ] || fail "snapshots/latest"
[ "$(readlink "$MNT/tags/two/latest")" = "$a" ] || fail "tags/two/latest"
[ -d "$MNT/snapshots/latest$SRC" ] || fail "snapshots/latest does not lead to the snapshot"
[ -d "$MNT/ids/${id1:0:8}$SRC" ] || fail "ids/${id1:0:8} is not the snapshot"
[ ! -e "$MNT/snapshots/1999-01-01T00:00:00Z" ] || fail "a snapshot that does not exist"
[ ! -e "$MNT/hosts/gamma" ] || fail "a host that does not exist"
# read-only
! touch "$MNT/snapshots/latest$SRC/big" 2>/dev/null || fail "a file of the mount could be written"
! mkdir "$MNT/snapshots/new" 2>/dev/null || fail "a directory could be made in the mount"

# ---- every file and attribute: as restored ----------------------------------------
FUSE_ROOT=$MNT/ids/${id1:0:8}$SRC
expect_success treecmp "$ROOT" "$FUSE_ROOT"
# the second snapshot: the same but for the symlinks' atimes (the first backup read them)
expect_success treecmp --ignore-atime "$ROOT" "$MNT/hosts/beta/latest$SRC"

# each regular file's bytes: as keel dump writes them (one dump of the
# snapshot's directory as a tar archive, unpacked)
mkdir "$TEST_DIR/dumped"
keel dump "$id1" "$SRC" >"$TEST_DIR/dump.tar" 2>/dev/null || fail "keel dump of the snapshot failed"
# GNU tar cannot make the deep chain's last symlink (its path is too long): its files are skipped
tar -xf "$TEST_DIR/dump.tar" -C "$TEST_DIR/dumped" 2>/dev/null || true
DUMPED=$TEST_DIR/dumped$SRC
[ -d "$DUMPED" ] || fail "keel dump's archive does not hold $SRC"
n=0
while IFS= read -r -d '' f; do
	rel=${f#"$FUSE_ROOT"}
	[ "${#rel}" -lt 1000 ] || continue # the deep chain: treecmp compared it
	# from stdin: sha256sum escapes a name with a newline or a backslash
	[ -f "$DUMPED$rel" ] || fail "'$rel' is not in keel dump's archive"
	[ "$(sha256sum <"$f")" = "$(sha256sum <"$DUMPED$rel")" ] || fail "'$rel' differs from keel dump's"
	n=$((n + 1))
done < <(find "$FUSE_ROOT" -type f -print0)
[ "$n" -ge 20 ] || fail "only $n files compared with keel dump"
log "$n files equal keel dump's"

# random reads, many across blob boundaries, and one past the end
python3 - "$SRC/big" "$FUSE_ROOT/big" <<'PY' || fail "random reads differ"
import os, random, sys
a, b = (os.open(p, os.O_RDONLY) for p in sys.argv[1:3])
size = os.fstat(a).st_size
rnd = random.Random(8010)
for _ in range(300):
    off = rnd.randrange(0, size)
    n = rnd.choice([1, 4096, 65536, 1 << 20, 3 << 20])
    if os.pread(a, n, off) != os.pread(b, n, off):
        sys.exit("differs at %d (+%d)" % (off, n))
if os.pread(b, 100, size + 10) != b"":
    sys.exit("read past the end returned data")
PY

# sparse files: their holes are holes for SEEK_HOLE
python3 - "$FUSE_ROOT/sparse/two-islands" <<'PY' || fail "SEEK_DATA/SEEK_HOLE on a sparse file"
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
size = os.fstat(fd).st_size
d = os.lseek(fd, 0, os.SEEK_DATA)
h = os.lseek(fd, d, os.SEEK_HOLE)
if not (0 < d < h < size):
    sys.exit("data at %d, hole at %d, size %d" % (d, h, size))
PY

# ---- a snapshot taken while mounted shows up --------------------------------------
expect_success keel backup --time '2026-05-06T07:08:09Z' --host gamma --tag three "$SRC/files" >/dev/null
found=0
for i in $(seq 1 100); do
	if ls "$MNT/snapshots" | grep -qx 2026-05-06T07:08:09Z; then
		found=1
		break
	fi
	sleep 0.2
done
[ "$found" = 1 ] || fail "a new snapshot did not show up in snapshots/"
[ "$(readlink "$MNT/snapshots/latest")" = 2026-05-06T07:08:09Z ] || fail "latest is not the new one"
ls "$MNT/hosts" | grep -qx gamma || fail "the new host is not in hosts/"
ls "$MNT/tags" | grep -qx three || fail "the new tag is not in tags/"
expect_success treecmp "$SRC/files" "$MNT/tags/three/latest$SRC/files"

# ---- fusermount3 -u ends keel mount with exit 0 --------------------------------
expect_success fusermount3 -u "$MNT"
mount_stop_wait

# ---- --host: only that host's snapshots ----------------------------------------
mount_start "$MNT" --host beta
[ "$(ls "$MNT/snapshots" | tr "\n" " ")" = "2026-03-04T05:06:07Z latest " ] &&
	[ "$(ls "$MNT/hosts")" = beta ] || fail "--host beta shows $(ls "$MNT/snapshots" "$MNT/hosts")"
[ -z "$(ls "$MNT/tags")" ] || fail "--host beta shows tags of other hosts"
expect_success fusermount3 -u "$MNT"
mount_stop_wait

# ---- --tag and --path: the same filters as the other commands ----------------
mount_start "$MNT" --tag three
[ "$(ls "$MNT/snapshots" | tr "\n" " ")" = "2026-05-06T07:08:09Z latest " ] ||
	fail "--tag three shows $(ls "$MNT/snapshots")"
expect_success fusermount3 -u "$MNT"
mount_stop_wait
mount_start "$MNT" --path "$SRC"
[ "$(ls "$MNT/hosts" | tr "\n" " ")" = "alpha beta " ] || fail "--path $SRC shows hosts $(ls "$MNT/hosts")"
expect_success fusermount3 -u "$MNT"
mount_stop_wait
