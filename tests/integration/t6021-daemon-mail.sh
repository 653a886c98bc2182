#!/usr/bin/env bash
# Mail alerts (docs/DAEMON.md): [notify] mail goes through a sendmail
# program (here msmtp, a real SMTP client, relaying to Python's smtpd on
# loopback, started here). A job whose source is missing fails: exactly
# one mail to the configured address; the source back, exactly one
# recovery mail. Refused: a sendmail that is not an absolute path.
. "$(dirname "$0")/../lib.sh"
require_keel
has_python || skip_or_die "python3 is needed for the SMTP receiver"
command -v msmtp >/dev/null || skip_or_die "msmtp is missing (scripts/install-deps.sh)"
export KEEL_NO_CACHE=1

keel_init >/dev/null
SRC=$TEST_DIR/src
STATE=$TEST_DIR/state
CONF=$TEST_DIR/keel.conf
MAILS=$TEST_DIR/mails
mkdir -p "$STATE" "$MAILS"

python3 "$KEEL_SOURCE_ROOT/tests/smtp-receiver.py" "$MAILS" "$TEST_DIR/smtp-port" &
BG_PIDS+=($!)
poll()
{
	local i
	for ((i = 0; i < 600; i++)); do
		"$@" && return 0
		sleep 0.05
	done
	fail "timed out waiting for: $*"
}
poll test -s "$TEST_DIR/smtp-port"

cat >"$TEST_DIR/msmtprc" <<EOC
account default
host 127.0.0.1
port $(cat "$TEST_DIR/smtp-port")
from keel@localhost
auth off
tls off
EOC
chmod 600 "$TEST_DIR/msmtprc"
# msmtp takes its configuration from -C; the daemon runs "PROGRAM -t"
printf '#!/bin/sh\nexec msmtp -C "%s" "$@"\n' "$TEST_DIR/msmtprc" >"$TEST_DIR/sendmail"
chmod +x "$TEST_DIR/sendmail"

write_conf()
{
	cat >"$CONF" <<EOC
[repository "main"]
location = $KEEL_REPOSITORY
password-file = $KEEL_PASSWORD_FILE
[job "files"]
repository = main
paths = $SRC
schedule = every 2s
rpo-target = 1h
[notify]
mail = ops@example.com
sendmail = $1
EOC
}

write_conf sendmail
expect_error 2 'not an absolute path' keel daemon --check-config --config "$CONF"
write_conf "$TEST_DIR/sendmail"
expect_success keel daemon --check-config --config "$CONF" >/dev/null

mails() { find "$MAILS" -name '*.eml' | wc -l; }
has_mails() { [ "$(mails)" -ge "$1" ]; }
# the source is missing: the first run fails
"$KEEL" daemon --config "$CONF" --state-dir "$STATE" 2>"$TEST_DIR/daemon.err" &
DAEMON=$!
BG_PIDS+=("$DAEMON")
poll has_mails 1
sleep 6 # three more failing runs: no more mail
[ "$(mails)" = 1 ] || fail "$(mails) mails for one problem"
grep -qx 'ops@example.com' "$MAILS/1.rcpt" || fail "mailed to $(cat "$MAILS/1.rcpt")"
grep -q '^Subject: keel: job files: ' "$MAILS/1.eml" || fail "no subject: $(cat "$MAILS/1.eml")"
grep -q '"job": *"files"' "$MAILS/1.eml" || fail "no JSON body: $(cat "$MAILS/1.eml")"

# the source back: one recovery
mkdir -p "$SRC"
echo hello >"$SRC/a"
poll has_mails 2
sleep 4
[ "$(mails)" = 2 ] || fail "$(mails) mails after the recovery"
grep -qi 'recover' "$MAILS/2.eml" || fail "the second mail is no recovery: $(cat "$MAILS/2.eml")"
kill -TERM "$DAEMON"
wait "$DAEMON" || fail "the daemon exited $? on SIGTERM: $(cat "$TEST_DIR/daemon.err")"
