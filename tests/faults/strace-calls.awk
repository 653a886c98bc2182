# strace-calls.awk: turns `strace -f -y -qq -o LOG` output into one line per
# system call made: "TID NAME INJECTED PATH", INJECTED being 1 when strace
# injected a fault into it. PATH is what the call acts on: the file of its
# first descriptor argument, or for openat/unlinkat/renameat2 the directory
# descriptor's path joined with the name after it. A call that strace
# splits ("<unfinished ...>" then "<... NAME resumed>") is counted at its
# start, which is where strace counts it for `when=`; its injection mark is
# on the resumed line, reported as a second line "TID NAME 1 PATH".
# Used by tests/faults/sweep.sh.
function path_of(call, args,    p, m, name)
{
	if (match(args, /^-?[0-9]+<[^>]*>/)) {
		m = substr(args, RSTART, RLENGTH)
		sub(/^-?[0-9]+</, "", m)
		sub(/>$/, "", m)
		p = m
		args = substr(args, RSTART + RLENGTH)
		if (call ~ /at2?$/ && match(args, /^, "[^"]*"/)) {
			name = substr(args, 4, RLENGTH - 4)
			if (substr(name, 1, 1) == "/")
				p = name
			else
				p = p "/" name
		}
		return p
	}
	if (match(args, /^AT_FDCWD, "[^"]*"/))
		return substr(args, 12, RLENGTH - 12)
	if (match(args, /^"[^"]*"/))
		return substr(args, 2, RLENGTH - 2)
	return "-"
}

{
	tid = $1
	rest = $0
	sub(/^[0-9]+ +/, "", rest)
	inj = index($0, "(INJECTED)") ? 1 : 0
	if (rest ~ /^<\.\.\. [a-z0-9_]+ resumed>/) {
		if (inj)
			print tid, pending_name[tid], 1, pending_path[tid]
		next
	}
	if (!match(rest, /^[a-z0-9_]+\(/))
		next
	name = substr(rest, 1, RLENGTH - 1)
	args = substr(rest, RLENGTH + 1)
	if (args ~ /^AT_FDCWD</)
		sub(/^AT_FDCWD<[^>]*>/, "AT_FDCWD", args)
	p = path_of(name, args)
	if (rest ~ /<unfinished \.\.\.>$/) {
		pending_name[tid] = name
		pending_path[tid] = p
		inj = 0
	}
	print tid, name, inj, p
}
