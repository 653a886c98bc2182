#!/usr/bin/env bash
# keel db stream mariadb:// refusals: binary logging off (the message says
# how to turn it on: exit 23, with --name or the default one), --start
# where it does not apply (2), no server (22).
. "$(dirname "$0")/../lib.sh"
. "$KEEL_SOURCE_ROOT/tests/lib-maria.sh"
require_keel
maria_require

keel_init
maria_init nolog --skip-log-bin
maria_start nolog
expect_error 23 'binary logging is off on the server: start mariadbd with --log-bin' \
	keel db stream "$(maria_uri nolog)" --name shop
expect_error 23 'binary logging is off' keel db stream "$(maria_uri nolog)"
expect_error 2 'is for MariaDB streams' keel db stream sqlite:///nonexistent.db --start bin.000001:4
maria_stop nolog
expect_error 22 'cannot connect to the MariaDB server' keel db stream "$(maria_uri nolog)" --name shop
[ "$(snapshot_count)" = 0 ] || fail "a refused stream stored something"
