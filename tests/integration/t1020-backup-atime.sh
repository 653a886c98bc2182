#!/usr/bin/env bash
# A backup leaves the atimes of what it reads as they were (O_NOATIME on
# files and on the directories it lists), and a backup of a tree that was
# only read since the last one stores nothing: reading sets atimes and
# nothing else, so the nodes keep their parent's atime (issue 13 item 14).
# Symlinks are left out of the atime checks: readlink(2) sets a symlink's
# atime and has no O_NOATIME.
#
# The tree is on a tmpfs mounted with strictatime over /mnt in a private
# mount namespace: a snapshot holds the directories above its source, and
# /tmp's times move whenever another test makes or removes its directory.
if [ -z "${T1020_PRIVATE:-}" ] && [ "$(id -u)" = 0 ] && command -v unshare >/dev/null &&
	T1020_PRIVATE=1 unshare --mount --propagation private true 2>/dev/null; then
	T1020_PRIVATE=1 exec unshare --mount --propagation private bash "$0" "$@"
fi
. "$(dirname "$0")/../lib.sh"
require_keel
[ -n "${T1020_PRIVATE:-}" ] ||
	skip_or_die "needs root and unshare(1) for a private tmpfs whose parents do not change"
mount -t tmpfs -o strictatime,mode=0755 keel-t1020 /mnt ||
	skip_or_die "cannot mount a tmpfs in a private mount namespace"

SRC=/mnt/src
mkdir -p "$SRC/a/b" "$SRC/c/empty"
printf 'one\n' >"$SRC/one.txt"
head -c 300000 /dev/urandom >"$SRC/a/data.bin"
printf 'deep\n' >"$SRC/a/b/deep.txt"
printf 'x\n' >"$SRC/c/x.txt"
: >"$SRC/c/empty.txt"
ln -s one.txt "$SRC/link"

# Listed once: listing a directory (find, ls) sets its atime, stat does not.
mapfile -t ENTRIES < <(find "$SRC" ! -type l | sort)

# Older than a day and than the mtimes: with relatime (the usual mount
# option), the next read of each entry sets its atime.
age_atimes()
{
	touch -a -d '3 days ago' "${ENTRIES[@]}"
}
atimes()
{
	stat -c '%x %n' "${ENTRIES[@]}"
}

# Does this file system update atimes at all (noatime, lazytime...)?
probe=/mnt/probe
printf 'probe\n' >"$probe"
touch -a -d '3 days ago' "$probe"
old=$(stat -c %X "$probe")
cat "$probe" >/dev/null
[ "$(stat -c %X "$probe")" != "$old" ] ||
	skip_or_die "a tmpfs here does not update atimes on read"

keel_init >/dev/null
age_atimes
before=$(atimes)
expect_success keel backup --json "$SRC" >"$TEST_DIR/b1.json"
after=$(atimes)
if [ "$before" != "$after" ]; then
	diff <(printf '%s\n' "$before") <(printf '%s\n' "$after") >&2 || true
	fail "the first backup changed atimes of what it read"
fi

# A reader: every file and directory read, so every atime moves.
find "$SRC" -type f -exec cat {} + >/dev/null
ls -laR "$SRC" >/dev/null
read_atimes=$(atimes)
[ "$read_atimes" != "$after" ] || fail "the reader set no atime: the test proves nothing"

expect_success keel backup --json "$SRC" >"$TEST_DIR/b2.json"
[ "$(atimes)" = "$read_atimes" ] || fail "the second backup changed atimes of what it read"
stored=$(json_get data_stored <"$TEST_DIR/b2.json")
[ "$stored" = 0 ] || fail "a backup of a tree only read since stored $stored bytes, expected 0"
[ "$(json_get blobs_new <"$TEST_DIR/b2.json")" = 0 ] || fail "the second backup added blobs"
trees=$(keel snapshots --json | json_get tree | sort -u | wc -l)
[ "$trees" = 1 ] || fail "the two snapshots have $trees different root trees, expected 1"

# An atime set on purpose sets the ctime too: that one is recorded.
touch -a -d '2001-02-03 04:05:06' "$SRC/one.txt"
expect_success keel backup "$SRC" >/dev/null
mkdir "$TEST_DIR/restore"
expect_success keel restore latest --target "$TEST_DIR/restore" >/dev/null
R=$(restored_root "$TEST_DIR/restore" "$SRC")
[ "$(stat -c %X "$R/one.txt")" = "$(date -d '2001-02-03 04:05:06' +%s)" ] ||
	fail "an atime set with touch -a was not recorded"
expect_success keel check >/dev/null

# Not root: O_NOATIME is refused (EPERM) on files of other owners; those
# are still read, and the user's own files after them keep their atimes.
if command -v setpriv >/dev/null; then
	mkdir -p /mnt/other/dir
	printf 'root\n' >/mnt/other/a-root.txt
	printf 'mine\n' >/mnt/other/b-mine.txt
	printf 'mine too\n' >/mnt/other/dir/c-mine.txt
	chown -R 65534:65534 /mnt/other/b-mine.txt /mnt/other/dir
	cp "$KEEL_PASSWORD_FILE" /mnt/password
	chown 65534:65534 /mnt/password
	chmod 0777 /mnt
	ENTRIES=(/mnt/other/b-mine.txt /mnt/other/dir /mnt/other/dir/c-mine.txt)
	age_atimes
	before=$(atimes)
	nobody()
	{
		KEEL_PASSWORD_FILE=/mnt/password KEEL_REPOSITORY=/mnt/repo2 \
			setpriv --reuid=65534 --regid=65534 --clear-groups -- "$KEEL" "$@"
	}
	expect_success nobody init --kdf-ops 1 --kdf-mem 8 >/dev/null
	expect_success nobody backup /mnt/other >/dev/null
	[ "$(atimes)" = "$before" ] ||
		fail "after a file it may not open with O_NOATIME, the backup set atimes"
	nobody ls latest | grep -q a-root.txt || fail "a file of another owner was left out"
fi
