#!/bin/sh
# Memory held by idle keep-alive connections.
#
# Starts build/enrollbridge (optimised build) on a free loopback port with
# room for the connections (limits.max_connections and per_ip_connections
# 6000, head_timeout and connection_timeout 300 s so that none is closed
# while it is measured), then opens 1,000 connections from 127.0.0.1, each
# sending one GET /healthz and keeping the connection open once answered,
# and reads the server's RSS (VmRSS, /proc/PID/status); then 4,000 more
# (5,000 in all) and reads it again. A fresh server per round; prints the
# median growth over ROUNDS rounds for 1,000 and 5,000 connections, the
# cost per connection, and PASS/FAIL against the goal for 1,000 (<= 30 MB).
#
# Environment:
#   ROUNDS=3           rounds (a fresh server each; the median is reported)
#   GOAL_MB=30         goal for 1,000 idle connections, MB of RSS
#   BENCH_STRICT=1     exit 1 when the goal is missed
#   BENCH_NO_BUILD=1   use build/enrollbridge as it is (no cmake)
# Exit status: 0 (informational), 1 on setup failure or (BENCH_STRICT=1) a
# missed goal. Loopback only; everything stops by itself.
set -eu

cd "$(dirname "$0")/../.."
top=$(pwd)
. contrib/bench/lib.sh

ROUNDS=${ROUNDS:-3}
GOAL_MB=${GOAL_MB:-30}
BENCH_STRICT=${BENCH_STRICT:-0}
BENCH_NO_BUILD=${BENCH_NO_BUILD:-0}

for c in curl python3 cmake; do
	command -v "$c" >/dev/null 2>&1 || die "$c not found"
done
if [ "$BENCH_NO_BUILD" = 1 ]; then
	[ -x build/enrollbridge ] || die "build/enrollbridge missing (BENCH_NO_BUILD=1)"
else
	case $(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' build/CMakeCache.txt 2>/dev/null) in
	RelWithDebInfo | Release) ;;
	*) cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null ;;
	esac
	cmake --build build -j2 --target enrollbridge >/dev/null 2>&1 ||
		die "build failed"
fi
EB="$top/build/enrollbridge"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/eb-bench.XXXXXX")
eb_pid=""
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	stop_pid "$eb_pid"
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The client: opens the connections, one request each, keeps them; prints
# "base rss1000 rss5000" in KiB. Bounded: 120 s at most.
cat >"$tmp/idle.py" <<'EOF'
import resource, selectors, socket, sys, time

pid, port = int(sys.argv[1]), int(sys.argv[2])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
deadline = time.monotonic() + 120

def rss():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])

def settle():
    # the server's RSS once it stops moving (at most 3 s)
    last = rss()
    for _ in range(30):
        time.sleep(0.1)
        now = rss()
        if now == last:
            break
        last = now
    return last

conns = []
def grow(total):
    sel = selectors.DefaultSelector()
    pending = {}
    while len(conns) + len(pending) < total:
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        s.setblocking(False)
        pending[s] = b""
        sel.register(s, selectors.EVENT_READ)
    while pending:
        if time.monotonic() > deadline:
            sys.exit("timed out waiting for answers")
        for key, _ in sel.select(1):
            s = key.fileobj
            d = s.recv(4096)
            if not d:
                sys.exit("the server closed an idle connection")
            pending[s] += d
            if pending[s].endswith(b"\r\n\r\nok\n"):
                sel.unregister(s)
                del pending[s]
                conns.append(s)
    sel.close()

base = settle()
grow(1000)
r1 = settle()
grow(5000)
r5 = settle()
print(base, r1, r5)
for s in conns:
    s.close()
EOF

run_round() {
	port=$(free_port)
	d="$tmp/r$1"
	mkdir -p "$d/tenants" "$d/state"
	chmod 700 "$d/state"
	cat >"$d/enrollbridge.json" <<EOF
{
  "listen": "127.0.0.1:$port",
  "public_url": "http://127.0.0.1:$port",
  "database": "$d/eb.db",
  "state_dir": "$d/state",
  "tenants_dir": "tenants",
  "log": { "format": "json", "level": "warn", "access": false },
  "limits": { "max_connections": 6000, "per_ip_connections": 6000,
              "head_timeout": 300, "connection_timeout": 300 }
}
EOF
	cat >"$d/tenants/contoso.json" <<'EOF'
{
  "id": "contoso",
  "domains": ["contoso.example"],
  "enrollment": { "default": "byod" },
  "auth_method": "apple-as-web",
  "idp": {
    "type": "oidc",
    "issuer": "http://127.0.0.1:9",
    "client_id": "client-contoso",
    "client_secret": "bench-secret-value"
  },
  "managed_apple_id": {
    "claim": "email",
    "domain_map": { "contoso.example": "appleid.contoso.example" }
  }
}
EOF
	"$EB" serve -c "$d/enrollbridge.json" >"$d/log" 2>&1 &
	eb_pid=$!
	wait_up "$eb_pid" "http://127.0.0.1:$port/healthz" "$d/log"
	python3 "$tmp/idle.py" "$eb_pid" "$port" >"$d/figures" ||
		die "client failed (log: $(tail -n 5 "$d/log"))"
	stop_pid "$eb_pid"
	eb_pid=""
}

: >"$tmp/figures"
round=1 # (lib.sh's helpers use $i)
while [ "$round" -le "$ROUNDS" ]; do
	run_round "$round"
	read -r base r1 r5 <"$tmp/r$round/figures"
	say "round $round: RSS $base KiB idle, $r1 KiB with 1000, $r5 KiB with 5000"
	echo "$base $r1 $r5" >>"$tmp/figures"
	round=$((round + 1))
done

g1=$(awk '{ print ($2 - $1) / 1024 }' "$tmp/figures" | median)
g5=$(awk '{ print ($3 - $1) / 1024 }' "$tmp/figures" | median)
per=$(awk '{ print ($3 - $1) / 5000 }' "$tmp/figures" | median)
printf 'idle keep-alive connections, RSS growth (median of %s rounds):\n' "$ROUNDS"
printf '  1000 connections: +%.1f MiB\n' "$g1"
printf '  5000 connections: +%.1f MiB (%.1f KiB each)\n' "$g5" "$per"
# the goal is in MB (10^6 bytes), the figures in MiB
if awk -v g="$g1" -v goal="$GOAL_MB" 'BEGIN { exit !(g * 1048576 <= goal * 1000000) }'; then
	printf '  goal <= %s MB for 1000: PASS\n' "$GOAL_MB"
else
	printf '  goal <= %s MB for 1000: FAIL\n' "$GOAL_MB"
	[ "$BENCH_STRICT" = 1 ] && exit 1
fi
exit 0
