#!/usr/bin/env bash
# init, a second init, version, --help of every command, usage errors,
# a missing repository, -r and local: locations, key file permissions
# (on S3: no anonymous access to the key object).
. "$(dirname "$0")/../lib.sh"
require_keel

# Before init: the repository does not exist (10).
expect_exit 10 keel snapshots
keel_init
if [ "${KEEL_TEST_BACKEND:-local}" = s3 ]; then
	# a bucket has no directories: the config and one key object
	s3_size "$KEEL_REPOSITORY/config" >/dev/null
	[ "$(repo_files keys | wc -l)" = 1 ] || fail "init made no key object: $(repo_files keys)"
	# Key objects are secrets too, but their access is the bucket's policy,
	# not a mode: anonymous requests must get nothing.
	k=$(repo_files keys | head -n1)
	code=$(curl -s -o /dev/null -w '%{http_code}' "$(s3_url "$k")")
	[ "$code" = 403 ] || fail "an anonymous GET of the key object got $code"
else
	[ -f "$KEEL_REPOSITORY/config" ] || fail "init made no config"
	for d in keys snapshots index data; do
		[ -d "$KEEL_REPOSITORY/$d" ] || fail "init made no $d/"
	done
	# Key files are secrets: nobody but the owner may read them (0600).
	for k in "$KEEL_REPOSITORY"/keys/*; do
		m=$(stat -c %a "$k")
		[ "$m" = 600 ] || [ "$m" = 400 ] || fail "key file $(basename "$k") has mode $m"
	done
fi
expect_success keel snapshots >/dev/null
expect_success keel check >/dev/null

# A second init fails with its own code (1, "it exists already") and
# changes nothing.
before=$(repo_listing)
rc=0
keel init --kdf-ops 1 --kdf-mem 8 >"$TEST_DIR/out" 2>"$TEST_DIR/err" || rc=$?
[ "$rc" = 1 ] || fail "second init exited $rc, expected 1 (docs/EXIT-CODES.md)"
[ -s "$TEST_DIR/err" ] || fail "second init said nothing on stderr"
[ "$(repo_listing)" = "$before" ] || fail "second init changed the repository"

# version
out=$(expect_success keel version)
printf '%s\n' "$out" | grep -q '0\.[0-9]' || fail "keel version printed: $out"
out=$(expect_success keel --version)
[ -n "$out" ] || fail "keel --version printed nothing"

# --help of every command: stdout, exit 0, nothing on stderr
for c in init backup snapshots ls restore diff dump check key version \
	"key list" "key add" "key remove" "key passwd"; do
	read -ra words <<<"$c"
	rc=0
	keel "${words[@]}" --help >"$TEST_DIR/out" 2>"$TEST_DIR/err" || rc=$?
	[ "$rc" = 0 ] || fail "keel $c --help exited $rc"
	[ -s "$TEST_DIR/out" ] || fail "keel $c --help wrote nothing to stdout"
	[ ! -s "$TEST_DIR/err" ] || fail "keel $c --help wrote to stderr"
done
expect_success keel --help >/dev/null

# Usage errors exit 2 with a message on stderr.
for args in "--no-such-option" "no-such-command" "init --no-such-option" \
	"backup --no-such-option" "restore latest" "ls" "dump latest" \
	"check --read-data-subset 200%" "key frobnicate" "init --kdf-mem nonsense"; do
	read -ra words <<<"$args"
	rc=0
	keel "${words[@]}" >"$TEST_DIR/out" 2>"$TEST_DIR/err" || rc=$?
	[ "$rc" = 2 ] || fail "keel $args exited $rc, expected 2"
	[ -s "$TEST_DIR/err" ] || fail "keel $args gave no message on stderr"
done
expect_exit 2 keel

# Global options before or after the command; -r and local: locations.
R2=$TEST_DIR/second
expect_success keel -r "$R2" init --kdf-ops 1 --kdf-mem 8 >/dev/null
expect_success keel snapshots -r "$R2" >/dev/null
expect_success keel --repo "local:$R2" snapshots >/dev/null
expect_success env -u KEEL_REPOSITORY "$KEEL" -r "$R2" snapshots >/dev/null
expect_exit 10 keel -r "$TEST_DIR/nothing-here" snapshots
expect_exit 10 keel -r "local:$TEST_DIR/nothing-here" check
if [ "${KEEL_TEST_BACKEND:-local}" = s3 ]; then
	# nothing below another prefix of the bucket, and no such bucket at all
	expect_exit 10 keel -r "${KEEL_REPOSITORY%/*}/nothing-here" snapshots
	expect_exit 10 keel -r "s3:$KEEL_S3_ENDPOINT/$S3_BUCKET-none/repo" check
fi

# A repository whose config is lost (issue 13, 5): commands say so and exit
# 13 (damaged), not 10 ("no repository"), and point to restoring it; init
# refuses the location (1) instead of adding a key that cannot open the
# old data, and changes nothing.
if [ "${KEEL_TEST_BACKEND:-local}" = local ]; then
	R3=$TEST_DIR/lost-config
	expect_success keel -r "$R3" init --kdf-ops 1 --kdf-mem 8 >/dev/null
	mkdir -p "$TEST_DIR/src3"
	echo data >"$TEST_DIR/src3/f"
	expect_success keel -r "$R3" backup "$TEST_DIR/src3" >/dev/null
	cp "$R3/config" "$TEST_DIR/config.saved"
	rm "$R3/config"
	expect_error 13 "config is missing" keel -r "$R3" snapshots
	expect_error 13 "restore the file 'config'" keel -r "$R3" repair index
	before=$(cd "$R3" && find . | sort)
	expect_error 1 "keys/ is not empty" keel -r "$R3" init --kdf-ops 1 --kdf-mem 8
	[ "$(cd "$R3" && find . | sort)" = "$before" ] || fail "init over a lost config changed it"
	# only snapshots, index files or packs left: still refused
	mv "$R3/keys" "$TEST_DIR/keys.saved"
	expect_error 1 "snapshots/ is not empty" keel -r "$R3" init --kdf-ops 1 --kdf-mem 8
	mv "$TEST_DIR/keys.saved" "$R3/keys"
	# the documented way back: the config from a copy
	cp "$TEST_DIR/config.saved" "$R3/config"
	expect_success keel -r "$R3" check >/dev/null

	# A copy that kept no empty directory (git, some rsync or cp): no
	# locks/, no empty data/xx; keel makes them again when it writes.
	rm -rf "$R3/locks"
	find "$R3/data" -type d -empty -delete
	expect_success keel -r "$R3" backup "$TEST_DIR/src3" >/dev/null
	echo more >"$TEST_DIR/src3/g"
	expect_success keel -r "$R3" backup "$TEST_DIR/src3" >/dev/null
	expect_success keel -r "$R3" check --read-data >/dev/null
fi

# No repository given at all: an error, not a crash or a prompt.
rc=0
env -u KEEL_REPOSITORY "$KEEL" snapshots </dev/null >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || [ "$rc" = 10 ] || fail "snapshots without a repository exited $rc"
