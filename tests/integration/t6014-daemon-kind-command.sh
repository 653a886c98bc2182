#!/usr/bin/env bash
# Job kinds (docs/DAEMON.md, "Job kinds"): a configuration error of a kind
# names the file, the line and the key (the daemon, --check-config and
# status alike); a command job (tar of a directory, every 2s) stores the
# command's output as one file whose content is the command's; an image
# job backs up a small image file; keel status reports each one's RPO from
# its own snapshots, small while the daemon runs and growing once it stops.
. "$(dirname "$0")/../lib.sh"
require_keel
has_python || skip_or_die "python3 is needed to read keel status --json"
export KEEL_NO_CACHE=1

keel_init >/dev/null
SRC=$TEST_DIR/src
STATE=$TEST_DIR/state
CONF=$TEST_DIR/keel.conf
IMG=$TEST_DIR/disk.img
mkdir -p "$SRC" "$STATE"
head -c 300000 /dev/urandom >"$SRC/a"
echo hello >"$SRC/b"
head -c 1000000 /dev/urandom >"$IMG"
truncate -s 4M "$IMG"

repo()
{
	cat <<EOC
[repository "main"]
location = $KEEL_REPOSITORY
password-file = $KEEL_PASSWORD_FILE
EOC
}

# ---- configuration errors name the file, line and key ----
bad()
{
	local pattern=$1
	{
		repo
		cat
	} >"$CONF"
	expect_error 2 "$CONF: $pattern" keel daemon --check-config --config "$CONF"
	expect_error 2 "$CONF: $pattern" keel status --config "$CONF" --state-dir "$STATE"
}
bad 'line 6: kind: .tape. is not a kind of job' <<EOC
[job "x"]
repository = main
kind = tape
schedule = every 2s
EOC
bad 'line 4: \[job "x"\]: command is missing (kind = command)' <<EOC
[job "x"]
repository = main
kind = command
schedule = every 2s
EOC
bad 'line 9: paths: not a setting of a job of kind command' <<EOC
[job "x"]
repository = main
kind = command
command = true
schedule = every 2s
paths = /etc
EOC
bad 'line 7: source: .disk.img. is not an absolute path' <<EOC
[job "x"]
repository = main
kind = image
source = disk.img
schedule = every 2s
EOC
bad 'line 4: \[job "x"\]: destination is missing (kind = mirror)' <<EOC
[job "x"]
repository = main
kind = mirror
schedule = every 2s
EOC
bad 'line 7: conninfo: holds a password' <<EOC
[job "x"]
repository = main
kind = db
conninfo = host=/tmp password=hunter2
name = shop
schedule = every 2s
EOC
NEVER_SHOWN=(hunter2)
expect_error 2 "line 7: conninfo: holds a password" keel daemon --check-config --config "$CONF"
NEVER_SHOWN=()

# ---- a command job and an image job ----
{
	repo
	cat <<EOC
[job "dump"]
repository = main
kind = command
command = tar -C $SRC -cf - .
stdin-filename = src.tar
host = testhost
schedule = every 2s
rpo-target = 1h
keep-last = 3
[job "disk"]
repository = main
kind = image
source = $IMG
schedule = every 2s
rpo-target = 1h
EOC
} >"$CONF"
expect_success keel daemon --check-config --config "$CONF"

count() { grep -c "$1" "$TEST_DIR/daemon.err" || true; }
at_least() { [ "$(count "$1")" -ge "$2" ]; }

"$KEEL" daemon --config "$CONF" --state-dir "$STATE" 2>"$TEST_DIR/daemon.err" &
DAEMON=$!
BG_PIDS+=("$DAEMON")
poll at_least "job 'dump': snapshot .* saved" 3
poll at_least "job 'disk': snapshot .* saved" 1

# the command's output is the snapshot's one file, /src.tar
id=$(keel snapshots --json --host testhost --path /src.tar | json_get id | tail -n 1)
[ -n "$id" ] || fail "no snapshot of /src.tar: $(keel snapshots)"
keel dump "$id" /src.tar >"$TEST_DIR/src.tar" || fail "keel dump failed"
mkdir "$TEST_DIR/untar"
tar -C "$TEST_DIR/untar" -xf "$TEST_DIR/src.tar" || fail "the dump is no tar"
cmp "$SRC/a" "$TEST_DIR/untar/a" && cmp "$SRC/b" "$TEST_DIR/untar/b" ||
	fail "the command's output differs"

# the status while it runs: both kinds have a small RPO
rpo_of()
{
	python3 -c '
import json, sys
for j in json.load(open(sys.argv[1]))["jobs"]:
    if j["job"] == sys.argv[2]:
        print("none" if j["rpo_seconds"] is None else j["rpo_seconds"], j["kind"], j["rpo_ok"])
' "$TEST_DIR/status.json" "$1"
}
keel status --json --config "$CONF" --state-dir "$STATE" >"$TEST_DIR/status.json" ||
	fail "keel status failed: $(cat "$TEST_DIR/status.json")"
read -r rpo kind ok <<<"$(rpo_of dump)"
[ "$kind" = command ] && [ "$ok" = True ] || fail "dump: $(cat "$TEST_DIR/status.json")"
python3 -c "import sys; sys.exit(0 if float('$rpo') < 15 else 1)" || fail "dump's RPO is $rpo"
read -r rpo kind ok <<<"$(rpo_of disk)"
[ "$kind" = image ] && [ "$ok" = True ] || fail "disk: $(cat "$TEST_DIR/status.json")"
python3 -c "import sys; sys.exit(0 if float('$rpo') < 15 else 1)" || fail "disk's RPO is $rpo"

# the image restores as it was
img_id=$(keel snapshots --json --path "$IMG" | json_get id | tail -n 1)
[ -n "$img_id" ] || fail "no snapshot of $IMG"
expect_success keel image restore "$img_id" "$TEST_DIR/restored.img"
cmp "$IMG" "$TEST_DIR/restored.img" || fail "the restored image differs"

# retention by the job's keep rules applies to its own snapshots
n=$(count "job 'dump': snapshot .* saved")
poll at_least "job 'dump': snapshot .* saved" $((n + 2))
kill -TERM "$DAEMON"
wait "$DAEMON" || fail "the daemon exited $? on SIGTERM: $(cat "$TEST_DIR/daemon.err")"
c=$(snapshot_count --host testhost --path /src.tar)
[ "$c" -le 4 ] || fail "keep-last = 3 left $c snapshots of the command job"

# stopped: the RPO grows
keel status --json --config "$CONF" --state-dir "$STATE" >"$TEST_DIR/status.json" || true
read -r rpo1 kind ok <<<"$(rpo_of dump)"
sleep 3
keel status --json --config "$CONF" --state-dir "$STATE" >"$TEST_DIR/status.json" || true
read -r rpo2 kind ok <<<"$(rpo_of dump)"
python3 -c "import sys; sys.exit(0 if float('$rpo2') >= float('$rpo1') + 2.5 else 1)" ||
	fail "the RPO did not grow: $rpo1 then $rpo2"
