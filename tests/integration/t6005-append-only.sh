#!/usr/bin/env bash
# Append-only repositories (ransomware protection without object storage):
# a client reaches the repository only through "keel serve --append-only",
# as an ssh forced command would make it. It can back up and restore, but
# every way to delete or replace data fails with exit 16, and nothing of
# what it stored is lost. The same repository served normally (to the
# trusted admin machine) can forget and prune.
. "$(dirname "$0")/../lib.sh"
require_keel
require_treecmp

DIR=$TEST_DIR/store
# stand-ins for ssh: the host is ignored and the server side runs here; the
# append-only one ignores what the client asks for, like a forced command
cat >"$TEST_DIR/ssh-admin" <<EOS
#!/bin/sh
while [ \$# -gt 1 ]; do shift; done
exec sh -c "\$1"
EOS
cat >"$TEST_DIR/ssh-forced" <<EOS
#!/bin/sh
exec "$KEEL" serve --stdio --append-only "$DIR"
EOS
chmod +x "$TEST_DIR/ssh-admin" "$TEST_DIR/ssh-forced"
export KEEL_REMOTE_COMMAND=$KEEL
admin()
{
	KEEL_SSH_COMMAND=$TEST_DIR/ssh-admin keel -r "ssh://backup-host$DIR" "$@"
}
client()
{
	KEEL_SSH_COMMAND=$TEST_DIR/ssh-forced keel -r "ssh://backup-host$DIR" "$@"
}

SRC=$TEST_DIR/src
make_awkward_tree "$SRC"
expect_success admin init --kdf-ops 1 --kdf-mem 8 >/dev/null
# the client works: backups, incremental backups, restores, check
expect_success client backup --no-progress "$SRC" >/dev/null
echo more >"$SRC/new-file"
expect_success client backup --no-progress "$SRC" >/dev/null
expect_success client check --read-data >/dev/null
expect_success client restore latest --target "$TEST_DIR/r1" >/dev/null
expect_success treecmp --ignore-atime --ignore-sockets "$SRC" "$(restored_root "$TEST_DIR/r1" "$SRC")"
[ -z "$(ls "$DIR/locks")" ] || fail "the client's locks were left behind"

listing()
{
	(cd "$DIR" && find . -path ./locks -prune -o -type f -print0 | sort -z | xargs -0 -r sha256sum)
}
before=$(listing)
# every way to destroy data is refused
first=$(KEEL_REPOSITORY="ssh://backup-host$DIR" KEEL_SSH_COMMAND=$TEST_DIR/ssh-forced snapshot_ids | sed -n 1p)
rm -f "$SRC/new-file"
expect_exit 16 client prune
expect_exit 16 client repair index
expect_exit 16 client repair snapshots --forget
expect_success client prune --dry-run >/dev/null
old_keys=$(client key list --json | json_get id)
printf 'second\n' >"$TEST_DIR/pw2"
expect_success client key add --new-password-file "$TEST_DIR/pw2" >/dev/null
key=$(client key list --json | json_get id | grep -v -F "$old_keys")
expect_exit 16 client key remove "${key:0:8}"
if client forget --help >/dev/null 2>&1; then
	expect_exit 16 client forget "$first"
fi
# nothing that was there is gone or changed (new objects may have been added)
after=$(listing)
missing=$(comm -23 <(printf "%s\n" "$before" | sort) <(printf "%s\n" "$after" | sort))
[ -z "$missing" ] || fail "objects vanished or changed under an append-only client: $missing"
# a config cannot be replaced: a second init is refused
expect_failure client init --kdf-ops 1 --kdf-mem 8

# the admin, with full access, can delete
n=$(KEEL_REPOSITORY="ssh://backup-host$DIR" KEEL_SSH_COMMAND=$TEST_DIR/ssh-admin snapshot_count)
rm -f "$DIR/snapshots/$first"
expect_success admin prune >/dev/null
expect_success admin check --read-data >/dev/null
[ "$(KEEL_REPOSITORY="ssh://backup-host$DIR" KEEL_SSH_COMMAND=$TEST_DIR/ssh-admin snapshot_count)" = $((n - 1)) ] ||
	fail "admin prune lost a snapshot"
expect_success client restore latest --target "$TEST_DIR/r2" >/dev/null

# when ssh fails, the error says which location and what to look at
rc=0
KEEL_SSH_COMMAND=false keel -r "ssh://backup-host$DIR" snapshots 2>"$TEST_DIR/ssh.err" || rc=$?
[ "$rc" = 1 ] || fail "snapshots without ssh: exit $rc, not 1"
grep -q "no answer from 'keel serve' at 'ssh://backup-host$DIR'" "$TEST_DIR/ssh.err" ||
	fail "no useful message when ssh fails: $(cat "$TEST_DIR/ssh.err")"
