#!/bin/sh
# Discovery throughput: enrollbridge against nginx serving the same bytes.
#
# Starts build/enrollbridge (optimised build, access log OFF) and nginx (a
# private instance: own prefix, config and pid file in a temp dir; the system
# nginx is never touched), both on free loopback ports, both answering
#   GET /.well-known/com.apple.remotemanagement?user-identifier=...&model-family=iPhone
# with the same JSON body, Content-Type application/json and
# Cache-Control: no-store. Loads each with wrk, alternating, for ROUNDS rounds
# and prints the median requests/s and median p99 latency of each and the
# ratio enrollbridge/nginx (target >= 0.80). Optionally one more run of
# enrollbridge with the access log on (written to a file), as a third figure.
#
# Environment:
#   DURATION=10        seconds per wrk run
#   ROUNDS=3           alternating rounds (the median is reported)
#   WARMUP=2           seconds of warm-up per server before the rounds
#   THREADS=2 CONNS=64 wrk -t / -c
#   ACCESS_LOG_RUN=1   also run enrollbridge once with the access log on (0: skip)
#   BENCH_STRICT=1     exit 1 when the ratio is below the target
#   BENCH_NO_BUILD=1   use build/enrollbridge as it is (no cmake)
#   TARGET=0.80        ratio target
# Exit status: 0 (informational), 1 on setup failure, non-2xx responses, or
# (BENCH_STRICT=1) a ratio below the target.
set -eu

cd "$(dirname "$0")/../.."
top=$(pwd)
. contrib/bench/lib.sh

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-2}
THREADS=${THREADS:-2}
CONNS=${CONNS:-64}
ACCESS_LOG_RUN=${ACCESS_LOG_RUN:-1}
BENCH_STRICT=${BENCH_STRICT:-0}
BENCH_NO_BUILD=${BENCH_NO_BUILD:-0}
TARGET=${TARGET:-0.80}
QUERY="user-identifier=alice@contoso.example&model-family=iPhone"
DPATH="/.well-known/com.apple.remotemanagement"


# ---- dependencies and build -------------------------------------------------
sh contrib/install-deps.sh
for c in wrk nginx curl python3 cmake; do
	command -v "$c" >/dev/null 2>&1 || [ -x "/usr/sbin/$c" ] ||
		die "$c not found (contrib/install-deps.sh should install it)"
done
NGINX=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)
jobs=$(nproc 2>/dev/null || echo 2)

build_type() {
	sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' build/CMakeCache.txt 2>/dev/null
}
if [ "$BENCH_NO_BUILD" = 1 ]; then
	[ -x build/enrollbridge ] || die "build/enrollbridge missing (BENCH_NO_BUILD=1)"
else
	case $(build_type) in
	RelWithDebInfo | Release) optimised=1 ;;
	*) optimised=0 ;;
	esac
	if [ ! -x build/enrollbridge ] || [ "$optimised" = 0 ]; then
		say "building the optimised binary (RelWithDebInfo) in build/"
		cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
		cmake --build build -j"$jobs" --target enrollbridge >&2 || die "build failed"
	else
		# bring an existing optimised build up to date; if somebody's
		# work in progress does not compile, bench what is there
		cmake --build build -j"$jobs" --target enrollbridge >/dev/null 2>&1 ||
			say "WARNING: incremental build failed; benchmarking the existing build/enrollbridge"
	fi
fi
EB="$top/build/enrollbridge"

# ---- scratch space and cleanup ------------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/eb-bench.XXXXXX")
eb_pid=""
eb2_pid=""
ngx_pid=""
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	stop_pid "$eb_pid"
	stop_pid "$eb2_pid"
	stop_pid "$ngx_pid"
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM


# ---- enrollbridge -----------------------------------------------------------
# $1: name (directory), $2: port, $3: access log true|false
write_eb_config() {
	d="$tmp/$1"
	mkdir -p "$d/tenants" "$d/state"
	chmod 700 "$d/state"
	cat >"$d/enrollbridge.json" <<EOF
{
  "listen": "127.0.0.1:$2",
  "public_url": "http://127.0.0.1:$2",
  "database": "$d/eb.db",
  "state_dir": "$d/state",
  "tenants_dir": "tenants",
  "log": { "format": "json", "level": "warn", "access": $3 }
}
EOF
	cat >"$d/tenants/contoso.json" <<'EOF'
{
  "id": "contoso",
  "domains": ["contoso.example"],
  "enrollment": { "default": "byod", "by_model_family": { "Mac": "adde" } },
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
	"$EB" check-config -c "$d/enrollbridge.json" >/dev/null 2>"$d/check.log" || {
		cat "$d/check.log" >&2
		die "check-config rejected the benchmark configuration"
	}
}

# $1: pid, $2: base URL, $3: log file

eb_port=$(free_port)
write_eb_config eb "$eb_port" false
"$EB" serve -c "$tmp/eb/enrollbridge.json" >"$tmp/eb/out.log" 2>&1 &
eb_pid=$!
eb_url="http://127.0.0.1:$eb_port"
wait_up "$eb_pid" "$eb_url/healthz" "$tmp/eb/out.log"

# ---- the body and headers to copy -------------------------------------------
curl -sS -D "$tmp/eb.hdr.raw" -o "$tmp/disco.json" "$eb_url$DPATH?$QUERY" ||
	die "discovery request to enrollbridge failed"
tr -d '\r' <"$tmp/eb.hdr.raw" >"$tmp/eb.hdr"
status=$(sed -n '1s/^HTTP\/[0-9.]* \([0-9]*\).*/\1/p' "$tmp/eb.hdr")
[ "$status" = 200 ] || { cat "$tmp/eb.hdr" "$tmp/disco.json" >&2; die "enrollbridge discovery: status $status, want 200"; }
grep -qi '^content-type: application/json$' "$tmp/eb.hdr" ||
	{ cat "$tmp/eb.hdr" >&2; die "enrollbridge discovery: Content-Type is not exactly application/json"; }
grep -qi '^cache-control: no-store$' "$tmp/eb.hdr" ||
	{ cat "$tmp/eb.hdr" >&2; die "enrollbridge discovery: no Cache-Control: no-store"; }
grep -q '"Servers"' "$tmp/disco.json" || die "enrollbridge discovery: unexpected body: $(cat "$tmp/disco.json")"
body_len=$(wc -c <"$tmp/disco.json")

# ---- nginx ----------------------------------------------------------------------
ngx_port=$(free_port)
while [ "$ngx_port" = "$eb_port" ]; do ngx_port=$(free_port); done
nd="$tmp/nginx"
mkdir -p "$nd/logs" "$nd/tmp" "$nd/www"
cp "$tmp/disco.json" "$nd/www/disco.json"
# The body is given inline (`return 200 '...'`): served from memory like
# enrollbridge's prebuilt body. A body nginx cannot quote ($ is a variable)
# is served from the file instead, with open_file_cache.
if grep -q '[$]' "$nd/www/disco.json"; then
	answer="alias $nd/www/disco.json;"
else
	answer="return 200 '$(sed -e 's/\\/\\\\/g' -e "s/'/\\\\'/g" "$nd/www/disco.json")';"
fi
user_line=""
[ "$(id -u)" = 0 ] && user_line="user root;"
cat >"$nd/nginx.conf" <<EOF
$user_line
worker_processes auto;
daemon off;
pid $nd/nginx.pid;
error_log $nd/logs/error.log warn;
events {
    worker_connections 4096;
    use epoll;
}
http {
    access_log off;
    server_tokens off;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    open_file_cache max=16 inactive=60s;
    open_file_cache_valid 60s;
    client_body_temp_path $nd/tmp/body;
    proxy_temp_path $nd/tmp/proxy;
    fastcgi_temp_path $nd/tmp/fastcgi;
    uwsgi_temp_path $nd/tmp/uwsgi;
    scgi_temp_path $nd/tmp/scgi;
    server {
        listen 127.0.0.1:$ngx_port;
        location = $DPATH {
            default_type application/json;
            add_header Cache-Control no-store always;
            $answer
        }
        location = /healthz {
            return 200 'ok';
        }
    }
}
EOF
"$NGINX" -t -q -p "$nd" -c "$nd/nginx.conf" >"$nd/logs/test.log" 2>&1 || {
	cat "$nd/logs/test.log" >&2
	die "nginx -t rejected $nd/nginx.conf"
}
"$NGINX" -p "$nd" -c "$nd/nginx.conf" >"$nd/logs/out.log" 2>&1 &
ngx_pid=$!
ngx_url="http://127.0.0.1:$ngx_port"
wait_up "$ngx_pid" "$ngx_url/healthz" "$nd/logs/error.log"

curl -sS -D "$tmp/ngx.hdr.raw" -o "$tmp/ngx.json" "$ngx_url$DPATH?$QUERY" ||
	die "discovery request to nginx failed"
tr -d '\r' <"$tmp/ngx.hdr.raw" >"$tmp/ngx.hdr"
cmp -s "$tmp/disco.json" "$tmp/ngx.json" || die "nginx does not serve the same bytes as enrollbridge"
grep -qi '^content-type: application/json$' "$tmp/ngx.hdr" ||
	die "nginx: Content-Type is not exactly application/json"

# ---- load ------------------------------------------------------------------------
# wrk's output -> "rps p99_ms non2xx socket_errors"

# $1: label, $2: base URL, $3: seconds, $4: output file (raw wrk output),
# $5...: server pids whose CPU time is charged to the run.
# Prints "requests/s p99_ms server_cpu_us_per_request".
run_wrk() {
	w_c0=$(shift 4; cpu_ticks "$@")
	wrk -t"$THREADS" -c"$CONNS" -d"$3"s --latency "$2$DPATH?$QUERY" >"$4" 2>&1 ||
		{ cat "$4" >&2; die "wrk failed against $1"; }
	w_c1=$(shift 4; cpu_ticks "$@")
	parse_wrk <"$4" >"$4.parsed" || { cat "$4" >&2; die "cannot parse wrk output ($1)"; }
	read -r w_rps w_p99 w_bad w_errs w_n <"$4.parsed"
	if [ "$w_bad" -ne 0 ]; then
		cat "$4" >&2
		die "$1 answered $w_bad non-2xx responses during the run"
	fi
	[ "$w_errs" -eq 0 ] || say "WARNING: $1: $w_errs socket errors ($(grep 'Socket errors' "$4"))"
	awk -v r="$w_rps" -v p="$w_p99" -v c=$((w_c1 - w_c0)) -v n="$w_n" -v hz="$CLK_TCK" \
		'BEGIN { printf "%s %s %.2f\n", r, p, (n > 0 ? c * 1e6 / hz / n : 0) }'
}


say "machine: $(nproc) cores ($(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1)); wrk shares them with the server"
say "enrollbridge $eb_url (access log OFF), nginx $ngx_url (worker_processes auto, access_log off); body $body_len bytes"
say "wrk -t$THREADS -c$CONNS -d${DURATION}s --latency, $ROUNDS alternating rounds after ${WARMUP}s warm-up each"

# shellcheck disable=SC2046 # one pid a word
set -- $(children "$ngx_pid")
ngx_pids="$ngx_pid $*"
run_wrk enrollbridge "$eb_url" "$WARMUP" "$tmp/warm-eb.txt" "$eb_pid" >/dev/null
# shellcheck disable=SC2086
run_wrk nginx "$ngx_url" "$WARMUP" "$tmp/warm-ngx.txt" $ngx_pids >/dev/null

: >"$tmp/eb.res"
: >"$tmp/ngx.res"
r=1
while [ $r -le "$ROUNDS" ]; do
	# alternate which server goes first, so drift hits both alike
	if [ $((r % 2)) = 1 ]; then order="eb ngx"; else order="ngx eb"; fi
	for s in $order; do
		if [ "$s" = eb ]; then
			res=$(run_wrk enrollbridge "$eb_url" "$DURATION" "$tmp/r$r-eb.txt" "$eb_pid")
			echo "$res" >>"$tmp/eb.res"
			say "round $r enrollbridge: $(echo "$res" | awk '{ printf "%.0f req/s  p99 %.2f ms  cpu %.1f us/req", $1, $2, $3 }')"
		else
			# shellcheck disable=SC2086
			res=$(run_wrk nginx "$ngx_url" "$DURATION" "$tmp/r$r-ngx.txt" $ngx_pids)
			echo "$res" >>"$tmp/ngx.res"
			say "round $r nginx:        $(echo "$res" | awk '{ printf "%.0f req/s  p99 %.2f ms  cpu %.1f us/req", $1, $2, $3 }')"
		fi
	done
	r=$((r + 1))
done

eb_rps=$(awk '{ print $1 }' "$tmp/eb.res" | median)
eb_p99=$(awk '{ print $2 }' "$tmp/eb.res" | median)
ngx_rps=$(awk '{ print $1 }' "$tmp/ngx.res" | median)
ngx_p99=$(awk '{ print $2 }' "$tmp/ngx.res" | median)
eb_cpu=$(awk '{ print $3 }' "$tmp/eb.res" | median)
ngx_cpu=$(awk '{ print $3 }' "$tmp/ngx.res" | median)

# ---- optional: once more with the access log on ----------------------------------
acc_line=""
if [ "$ACCESS_LOG_RUN" = 1 ]; then
	stop_pid "$eb_pid"
	eb_pid=""
	eb2_port=$(free_port)
	write_eb_config eb-access "$eb2_port" true
	"$EB" serve -c "$tmp/eb-access/enrollbridge.json" >"$tmp/eb-access/access.log" 2>&1 &
	eb2_pid=$!
	eb2_url="http://127.0.0.1:$eb2_port"
	wait_up "$eb2_pid" "$eb2_url/healthz" "$tmp/eb-access/access.log"
	run_wrk "enrollbridge (access log)" "$eb2_url" "$WARMUP" "$tmp/warm-eb2.txt" "$eb2_pid" >/dev/null
	res=$(run_wrk "enrollbridge (access log)" "$eb2_url" "$DURATION" "$tmp/r-eb2.txt" "$eb2_pid")
	lines=$(wc -l <"$tmp/eb-access/access.log")
	acc_line=$(echo "$res" | awk -v l="$lines" '{ printf "discovery  %-24s %9.0f req/s  p99 %7.2f ms  cpu %6.1f us/req  (1 run, access log to a file: %d lines)", "enrollbridge+accesslog", $1, $2, $3, l }')
	stop_pid "$eb2_pid"
	eb2_pid=""
fi

# ---- report ------------------------------------------------------------------------
ratio=$(awk -v a="$eb_rps" -v b="$ngx_rps" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
cpu_ratio=$(awk -v a="$eb_cpu" -v b="$ngx_cpu" 'BEGIN { printf "%.2f", (a > 0 ? b / a : 0) }')
verdict=$(awk -v r="$ratio" -v t="$TARGET" 'BEGIN { print (r + 0 >= t + 0 ? "PASS" : "FAIL") }')

cat <<EOF

== discovery benchmark: medians of $ROUNDS x ${DURATION}s, wrk -t$THREADS -c$CONNS on $(nproc) shared cores ==
   (enrollbridge access log OFF; figures are relative, compare the ratio)
$(printf 'discovery  %-24s %9.0f req/s  p99 %7.2f ms  cpu %6.1f us/req\n' enrollbridge "$eb_rps" "$eb_p99" "$eb_cpu")
$(printf 'discovery  %-24s %9.0f req/s  p99 %7.2f ms  cpu %6.1f us/req\n' nginx "$ngx_rps" "$ngx_p99" "$ngx_cpu")
${acc_line:+$acc_line
}server CPU per request, nginx/enrollbridge: $cpu_ratio (informational; steadier than req/s on a busy machine)
ratio enrollbridge/nginx: $ratio (target >= $TARGET): $verdict
EOF

if [ "$verdict" = FAIL ] && [ "$BENCH_STRICT" = 1 ]; then
	exit 1
fi
exit 0
