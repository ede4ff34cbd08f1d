# Shell helpers shared by the benchmarks in this folder (sourced, not run).
# POSIX sh; the caller has cd'ed to the repository root.
# shellcheck shell=sh

say() { printf '%s\n' "bench: $*" >&2; }
die() { printf '%s\n' "bench: FAIL: $*" >&2; exit 1; }

# Stop process $1: TERM, up to 5 s, then KILL. An empty $1 is a no-op.
stop_pid() {
	[ -n "$1" ] || return 0
	kill "$1" 2>/dev/null || return 0
	i=0
	while kill -0 "$1" 2>/dev/null && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	kill -9 "$1" 2>/dev/null || true
}

# A free TCP port on 127.0.0.1.
free_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# Wait (15 s at most) until URL $2 answers 2xx while process $1 lives; on
# failure show the tail of log file $3 and die.
wait_up() {
	i=0
	while [ $i -lt 150 ]; do
		kill -0 "$1" 2>/dev/null || { tail -n 20 "$3" >&2 || true; die "server exited during start-up"; }
		curl -fsS -o /dev/null "$2" 2>/dev/null && return 0
		sleep 0.1
		i=$((i + 1))
	done
	tail -n 20 "$3" >&2 || true
	die "no answer on $2 after 15s"
}

# wrk --latency output on stdin -> "rps p99_ms non2xx socket_errors requests".
parse_wrk() {
	awk '
	function ms(v) {
		if (v ~ /us$/) { sub(/us$/, "", v); return v / 1000 }
		if (v ~ /ms$/) { sub(/ms$/, "", v); return v + 0 }
		if (v ~ /m$/)  { sub(/m$/, "", v);  return v * 60000 }
		if (v ~ /s$/)  { sub(/s$/, "", v);  return v * 1000 }
		return v + 0
	}
	/^Requests\/sec:/ { rps = $2 }
	/ requests in / { nreq = $1 }
	$1 == "99%" { p99 = ms($2) }
	/Non-2xx or 3xx responses:/ { bad = $NF }
	/Socket errors:/ {
		gsub(/,/, "")
		errs = $4 + $6 + $8 + $10
	}
	END {
		if (rps == "" || p99 == "" || nreq == "") exit 1
		printf "%s %.3f %d %d %d\n", rps, p99, bad + 0, errs + 0, nreq
	}'
}

# The median of the numbers on stdin, one a line.
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# CPU time (user + system, clock ticks) used so far by the processes $*,
# all their threads included, from /proc/<pid>/stat
cpu_ticks() {
	for p in "$@"; do
		# the fields after the ")" of the command name: utime is the 12th
		sed 's/.*) //' "/proc/$p/stat" 2>/dev/null || true
	done | awk '{ t += $12 + $13 } END { print t + 0 }'
}
# shellcheck disable=SC2034 # used by the scripts that source this
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)

# pids of the children of $1 (nginx's and Apache's workers)
children() {
	[ -n "$1" ] || return 0
	if command -v pgrep >/dev/null 2>&1; then
		pgrep -P "$1" || true
		return 0
	fi
	for f in /proc/[0-9]*/stat; do
		pp=$(sed 's/.*) //' "$f" 2>/dev/null | awk '{ print $2 }')
		[ "$pp" = "$1" ] && { d=${f%/stat}; echo "${d#/proc/}"; }
	done
	return 0
}
