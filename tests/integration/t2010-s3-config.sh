#!/usr/bin/env bash
# Credentials and settings from keel's configuration file (docs/S3.md):
# with no AWS_* variable at all, the most specific section for the
# location gives the key pair and the region; a wrong secret there ends in
# exit 20 with a message naming the section and the file (never the
# secret); the environment beats the file; a file holding secrets that
# others may read, a missing $KEEL_CONFIG and a malformed file are refused
# with exit 2.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-s3.sh"
require_keel
s3_setup
s3_new_repo repo

SRC=$TEST_DIR/src
mkdir -p "$SRC"
printf 'hello\n' >"$SRC/file"
keel_init >/dev/null

export KEEL_S3_RETRIES=2 KEEL_S3_RETRY_DELAY_MS=10
AK=$AWS_ACCESS_KEY_ID SK=$AWS_SECRET_ACCESS_KEY REGION=$AWS_DEFAULT_REGION
CONF=$XDG_CONFIG_HOME/keel/config
mkdir -p "$(dirname "$CONF")"

NEVER_SHOWN=("$SK" not-the-secret)

# no_aws CMD...: CMD without any AWS_* variable
no_aws()
{
	env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_DEFAULT_REGION -u AWS_REGION \
		-u AWS_SESSION_TOKEN -u AWS_PROFILE "$@"
}

# write_conf SECRET: the endpoint's section has a key the server does not
# know; this bucket's section has the right key pair with SECRET
write_conf()
{
	cat >"$CONF" <<EOC
# keel's configuration (t2010)
[s3]
region = $REGION
connections = 3

[s3 "s3:$KEEL_S3_ENDPOINT"]
access_key_id = nobody
secret_access_key = nothing

[s3 "$KEEL_S3_ENDPOINT/$S3_BUCKET/"]
access_key_id = $AK
secret_access_key = $1

[s3 "$KEEL_S3_ENDPOINT/Bad_Bucket"]
addressing = virtual-host
EOC
	chmod 600 "$CONF"
}

[ ! -e "$HOME/.aws" ] || fail "a shared credentials file is there"
expect_error 2 "no credentials.*$CONF" no_aws "$KEEL" snapshots

write_conf "$SK"
expect_success no_aws "$KEEL" backup "$SRC" >/dev/null
expect_success no_aws "$KEEL" snapshots --json >"$TEST_DIR/snaps"
[ "$(json_get id <"$TEST_DIR/snaps" | wc -l)" = 1 ] || fail "the snapshot is not listed"

# another bucket at the endpoint: the endpoint's section, whose key is unknown
expect_error 20 "InvalidAccessKeyId.*access key 'nobody'.*line 6.*$CONF" \
	no_aws "$KEEL" -r "s3:$KEEL_S3_ENDPOINT/keel-t2010-other-$$/repo" snapshots
# a setting from the section of one location
expect_error 2 "bucket 'Bad_Bucket' cannot be a host name" \
	no_aws "$KEEL" -r "s3:$KEEL_S3_ENDPOINT/Bad_Bucket/repo" snapshots

# a wrong secret in the file: exit 20, naming the key, the section and the file
write_conf not-the-secret
expect_error 20 "SignatureDoesNotMatch.*access key '$AK' (from section \[s3 \"$KEEL_S3_ENDPOINT/$S3_BUCKET/\"\] (line 10) of $CONF)" \
	no_aws "$KEEL" snapshots
expect_error 20 'SignatureDoesNotMatch' no_aws "$KEEL" backup "$SRC"
# the environment comes first
expect_success "$KEEL" snapshots >/dev/null

# secrets readable by others: refused, like ssh
write_conf "$SK"
chmod 644 "$CONF"
expect_error 2 "holds secret keys but others may read it (mode 0644): chmod 600" \
	no_aws "$KEEL" snapshots
# ... even when the environment has the credentials: the file leaks either way
expect_error 2 "chmod 600" "$KEEL" snapshots
chmod 600 "$CONF"

# KEEL_CONFIG names the file; missing it is an error
cp "$CONF" "$TEST_DIR/other-config"
rm "$CONF"
expect_success no_aws env KEEL_CONFIG="$TEST_DIR/other-config" "$KEEL" snapshots >/dev/null
expect_error 2 "cannot read the configuration file '$TEST_DIR/missing'" \
	no_aws env KEEL_CONFIG="$TEST_DIR/missing" "$KEEL" snapshots

# a malformed file names its line
printf '[s3]\nregion = %s\nsecret_access_key %s\n' "$REGION" "$SK" >"$TEST_DIR/other-config"
expect_error 2 "other-config: line 3: expected 'name = value'" \
	env KEEL_CONFIG="$TEST_DIR/other-config" "$KEEL" snapshots

# local repositories never read it
expect_success env KEEL_CONFIG="$TEST_DIR/other-config" "$KEEL" -r "$TEST_DIR/local" \
	init --kdf-ops 1 --kdf-mem 8 >/dev/null
