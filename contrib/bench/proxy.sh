#!/bin/sh
# MDM proxy throughput: authenticated check-ins per second through
# enrollbridge's proxy (* /t/{T}/mdm/{rest}) against the same load sent
# straight to the upstream, and against Apache httpd + mod_oauth2 validating
# the same JWT (through our JWKS at /t/{T}/jwks.json) in front of the same
# upstream, in one run.
#
# The upstream is a private nginx (own prefix, config and pid file in a temp
# dir; the system one is never touched) answering every PUT with 200 and a
# small plist, like a fast MDM. The token is a real device token: a private
# test OpenID Provider (tests/idp) runs the apple-as-web sign-in once
# (contrib/bench/proxy_setup.mjs), and one Authenticate check-in binds it to
# the enrollment of the load's check-ins. The load is wrk with
# contrib/bench/checkin.lua: PUT application/x-apple-aspen-mdm-checkin,
# a TokenUpdate plist, Authorization: Bearer <token>; every request through
# the proxy is thus fully checked (signature, claims, the store's token and
# grant rows, the enrollment binding) and forwarded over a kept-alive
# upstream connection.
#
# The load replays one device's token, as one device's command session
# does: the bridge's verified-signature cache and its per-thread token
# cache (both bounded to what cannot have changed) answer after the first
# request. A fleet whose every request comes from another device costs the
# bridge an ES256 verification and a store lookup more per request: run
# with ENROLLBRIDGE_NO_TOKEN_CACHE=1 to measure that (Apache's mod_oauth2
# keeps its own cache of verified tokens either way).
#
# Reported: median requests/s and p99 of each over ROUNDS alternating
# rounds, the proxy's overhead against direct (1 - proxy/direct; target
# < 15%) and the ratio proxy/Apache (target >= 2). For calibration, the
# same load also goes through a plain nginx reverse proxy (proxy_pass with
# kept-alive upstream connections, no authentication): the cost of one
# more HTTP hop on this machine, a floor no authenticating proxy beats.
#
# Environment:
#   DURATION=10 ROUNDS=3 WARMUP=2   seconds per run, rounds, warm-up seconds
#   THREADS=2 CONNS=64              wrk -t / -c
#   APACHE=1                        also bench Apache + mod_oauth2 (installs
#                                   apache2 libapache2-mod-oauth2 with apt-get
#                                   when missing); 0: skip
#   BENCH_STRICT=1                  exit 1 when a target is missed
#   BUILD_DIR=build                 the optimised build to use (RelWithDebInfo)
#   BENCH_NO_BUILD=1                use $BUILD_DIR/enrollbridge as it is
#   EB_THREADS=N                    the bridge's HTTP worker threads
#                                   (limits.threads; default: one per core)
#   ENROLLBRIDGE_UPSTREAM_CURL=1    the bridge forwards through libcurl
#                                   instead of its own HTTP/1.1 client
#   UPSTREAM=nginx                  the MDM every target forwards to: nginx
#                                   answering 200 from memory (default), or
#                                   fake-mdm: the demo's MDM
#                                   (contrib/demo/fake-mdm.mjs, node: reads
#                                   each check-in, finds its MessageType and
#                                   identifiers, answers 200), an upstream
#                                   that does some work per check-in
#   PERF_OUT=file                   record a call-graph profile of the bridge
#                                   (perf record --call-graph dwarf) during
#                                   its first timed round into file
# Exit status: 0 (informational), 1 on setup failure or non-2xx responses,
# or (BENCH_STRICT=1) a missed target.
set -eu

cd "$(dirname "$0")/../.."
top=$(pwd)
. contrib/bench/lib.sh

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-2}
THREADS=${THREADS:-2}
CONNS=${CONNS:-64}
APACHE=${APACHE:-1}
BENCH_STRICT=${BENCH_STRICT:-0}
BENCH_NO_BUILD=${BENCH_NO_BUILD:-0}
BUILD_DIR=${BUILD_DIR:-build}
MAX_OVERHEAD=0.15
MIN_APACHE_RATIO=2


# ---- dependencies and build -------------------------------------------------
sh contrib/install-deps.sh
for c in wrk nginx curl python3 cmake node; do
	command -v "$c" >/dev/null 2>&1 || [ -x "/usr/sbin/$c" ] ||
		die "$c not found (contrib/install-deps.sh should install it)"
done
[ -d tests/idp/node_modules ] || (cd tests/idp && npm ci --silent) ||
	die "cannot install the test IdP (tests/idp: npm ci)"
NGINX=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)
jobs=$(nproc 2>/dev/null || echo 2)

if [ "$BENCH_NO_BUILD" = 1 ]; then
	[ -x "$BUILD_DIR/enrollbridge" ] || die "$BUILD_DIR/enrollbridge missing (BENCH_NO_BUILD=1)"
else
	case $(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD_DIR/CMakeCache.txt" 2>/dev/null) in
	RelWithDebInfo | Release) ;;
	*) say "configuring the optimised build (RelWithDebInfo) in $BUILD_DIR/"
	   cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null ;;
	esac
	cmake --build "$BUILD_DIR" -j"$jobs" --target enrollbridge >&2 || die "build failed"
fi
EB=$(cd "$BUILD_DIR" && pwd)/enrollbridge

# ---- scratch space and cleanup ------------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/eb-bench-proxy.XXXXXX")
eb_pid=""
ngx_pid=""
apache_pid=""
mdm_pid=""
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	stop_pid "$eb_pid"
	stop_pid "$apache_pid"
	stop_pid "$ngx_pid"
	stop_pid "$mdm_pid"
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM


# $1: pid, $2: URL answering 200 once up, $3: log file

# ---- the upstream: nginx answering every check-in with 200 --------------------
ngx_port=$(free_port)
ngxp_port=$(free_port)
UPSTREAM=${UPSTREAM:-nginx}
case $UPSTREAM in
nginx) up_port=$ngx_port up_label="nginx return 200" ;;
fake-mdm)
	up_port=$(free_port)
	up_label="the demo's fake MDM (node)"
	node contrib/demo/fake-mdm.mjs --port "$up_port" >/dev/null 2>"$tmp/mdm.log" &
	mdm_pid=$!
	i=0 # up when it answers at all (a GET gets its 404)
	while [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$up_port/")" = 000 ]; do
		kill -0 "$mdm_pid" 2>/dev/null && [ $i -lt 150 ] ||
			{ cat "$tmp/mdm.log" >&2; die "the fake MDM did not start"; }
		sleep 0.1
		i=$((i + 1))
	done
	;;
*) die "UPSTREAM must be nginx or fake-mdm" ;;
esac
nd="$tmp/nginx"
mkdir -p "$nd/logs" "$nd/tmp"
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
    client_body_temp_path $nd/tmp/body;
    proxy_temp_path $nd/tmp/proxy;
    fastcgi_temp_path $nd/tmp/fastcgi;
    uwsgi_temp_path $nd/tmp/uwsgi;
    scgi_temp_path $nd/tmp/scgi;
    server {
        listen 127.0.0.1:$ngx_port;
        location / {
            default_type application/xml;
            return 200 '<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict/></plist>';
        }
    }
    # calibration: a plain reverse proxy (no authentication at all) in
    # front of the same upstream, with kept-alive upstream connections
    upstream mdm {
        server 127.0.0.1:$up_port;
        keepalive 128;
    }
    server {
        listen 127.0.0.1:$ngxp_port;
        location /t/contoso/mdm/ {
            proxy_pass http://mdm/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
"$NGINX" -t -q -p "$nd" -c "$nd/nginx.conf" >"$nd/logs/test.log" 2>&1 ||
	{ cat "$nd/logs/test.log" >&2; die "nginx -t rejected $nd/nginx.conf"; }
"$NGINX" -p "$nd" -c "$nd/nginx.conf" >"$nd/logs/out.log" 2>&1 &
ngx_pid=$!
ngx_url="http://127.0.0.1:$ngx_port"
wait_up "$ngx_pid" "$ngx_url/checkin" "$nd/logs/error.log"
ngxp_url="http://127.0.0.1:$ngxp_port"
up_url="http://127.0.0.1:$up_port"

# ---- enrollbridge, a device token, the binding check-in ------------------------
eb_port=$(free_port)
ed="$tmp/eb"
mkdir -p "$ed"
node contrib/bench/proxy_setup.mjs --bin "$EB" --dir "$ed" --port "$eb_port" \
	--upstream "$up_url/" >"$ed/setup.log" 2>&1 || {
	cat "$ed/setup.log" "$ed/eb.log" >&2 2>/dev/null || true
	[ -f "$ed/eb.pid" ] && eb_pid=$(cat "$ed/eb.pid")
	die "setup (sign-in at the test IdP) failed"
}
eb_pid=$(cat "$ed/eb.pid")
eb_url="http://127.0.0.1:$eb_port"
EB_TOKEN=$(cat "$ed/token")
EB_CHECKIN="$top/contrib/bench/checkin.plist"
export EB_TOKEN EB_CHECKIN

# one check-in of the load, by hand: 200 through the proxy, 401 without token
check_put() { # $1: URL, $2: "auth" or "none" -> prints the status
	if [ "$2" = auth ]; then
		curl -sS -o "$tmp/put.out" -w '%{http_code}' -X PUT \
			-H 'Content-Type: application/x-apple-aspen-mdm-checkin' \
			-H "Authorization: Bearer $EB_TOKEN" --data-binary @"$EB_CHECKIN" "$1"
	else
		curl -sS -o "$tmp/put.out" -w '%{http_code}' -X PUT \
			-H 'Content-Type: application/x-apple-aspen-mdm-checkin' \
			--data-binary @"$EB_CHECKIN" "$1"
	fi
}
PROXY_PATH=/t/contoso/mdm/checkin
[ "$(check_put "$eb_url$PROXY_PATH" auth)" = 200 ] || { cat "$tmp/put.out" >&2; die "check-in through the proxy did not get 200"; }
[ "$(check_put "$eb_url$PROXY_PATH" none)" = 401 ] || die "check-in through the proxy without a token did not get 401"
[ "$(check_put "$up_url/checkin" auth)" = 200 ] || die "check-in straight to the upstream did not get 200"
[ "$(check_put "$ngxp_url$PROXY_PATH" auth)" = 200 ] || die "check-in through the nginx proxy did not get 200"

# ---- Apache httpd + mod_oauth2 (optional) ------------------------------------------
apache_url=""
apache_note=""
if [ "$APACHE" = 1 ]; then
	if [ ! -f /usr/lib/apache2/modules/mod_oauth2.so ] && [ "$(id -u)" = 0 ]; then
		say "installing apache2 libapache2-mod-oauth2 (apt-get)"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
			apache2 libapache2-mod-oauth2 >"$tmp/apt.log" 2>&1 ||
			say "WARNING: apt-get install failed (see below); Apache is skipped"
	fi
	APACHE2=$(command -v apache2 2>/dev/null || echo /usr/sbin/apache2)
	mods=/usr/lib/apache2/modules
	if [ -x "$APACHE2" ] && [ -f "$mods/mod_oauth2.so" ]; then
		ap_port=$(free_port)
		ad="$tmp/apache"
		mkdir -p "$ad/run" "$ad/logs"
		ap_user=""
		[ "$(id -u)" = 0 ] && ap_user="User www-data
Group www-data"
		cat >"$ad/httpd.conf" <<EOF
ServerRoot $ad
ServerName 127.0.0.1
Listen 127.0.0.1:$ap_port
$ap_user
PidFile $ad/run/httpd.pid
DefaultRuntimeDir $ad/run
ErrorLog $ad/logs/error.log
LogLevel warn
LoadModule mpm_event_module $mods/mod_mpm_event.so
LoadModule authn_core_module $mods/mod_authn_core.so
LoadModule authz_core_module $mods/mod_authz_core.so
LoadModule authz_user_module $mods/mod_authz_user.so
LoadModule proxy_module $mods/mod_proxy.so
LoadModule proxy_http_module $mods/mod_proxy_http.so
LoadModule oauth2_module $mods/mod_oauth2.so
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 65
StartServers 2
ServerLimit 4
ThreadsPerChild 64
MaxRequestWorkers 256
<Location "/t/contoso/mdm/">
    AuthType oauth2
    OAuth2TokenVerify jwks_uri $eb_url/t/contoso/jwks.json
    Require valid-user
    ProxyPass "$up_url/" keepalive=On
</Location>
EOF
		"$APACHE2" -t -f "$ad/httpd.conf" >"$ad/logs/test.log" 2>&1 || {
			cat "$ad/logs/test.log" >&2
			die "apache2 -t rejected $ad/httpd.conf"
		}
		"$APACHE2" -f "$ad/httpd.conf" -DFOREGROUND >"$ad/logs/out.log" 2>&1 &
		apache_pid=$!
		i=0
		while ! curl -sS -o /dev/null "http://127.0.0.1:$ap_port/" 2>/dev/null; do
			kill -0 "$apache_pid" 2>/dev/null && [ $i -lt 150 ] ||
				{ cat "$ad/logs/error.log" "$ad/logs/out.log" >&2; die "apache did not start"; }
			sleep 0.1
			i=$((i + 1))
		done
		apache_url="http://127.0.0.1:$ap_port"
		[ "$(check_put "$apache_url$PROXY_PATH" auth)" = 200 ] ||
			{ cat "$tmp/put.out" "$ad/logs/error.log" >&2; die "check-in through Apache did not get 200"; }
		[ "$(check_put "$apache_url$PROXY_PATH" none)" = 401 ] ||
			die "check-in through Apache without a token did not get 401"
	else
		apache_note="Apache + mod_oauth2 not available here (apache2 and libapache2-mod-oauth2 from Debian are needed); skipped"
		[ -f "$tmp/apt.log" ] && tail -n 5 "$tmp/apt.log" >&2
	fi
else
	apache_note="Apache skipped (APACHE=0)"
fi

# ---- load ------------------------------------------------------------------------
# wrk's output -> "rps p99_ms non2xx socket_errors requests"

# CPU seconds (user + system) a process has used so far, from /proc
cpu_of() {
	[ -n "$1" ] && [ -r "/proc/$1/stat" ] || { echo 0; return 0; }
	awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.3f\n", ($12 + $13) / hz }' "/proc/$1/stat"
}

# $1: label, $2: URL, $3: seconds, $4: output file -> "rps p99_ms cpu_us_per_req"
# (the CPU column is the bridge's own, measured for the proxy target only)
run_wrk() {
	c0=0
	[ "$1" = proxy ] && c0=$(cpu_of "$eb_pid")
	perf_pid=""
	if [ "$1" = proxy ] && [ -n "${PERF_OUT:-}" ] && [ "$3" = "$DURATION" ] && [ ! -e "$PERF_OUT" ]; then
		perf record -q -F 999 --call-graph dwarf -o "$PERF_OUT" -p "$eb_pid" >/dev/null 2>&1 &
		perf_pid=$!
	fi
	wrk -t"$THREADS" -c"$CONNS" -d"$3"s --latency -s contrib/bench/checkin.lua "$2" >"$4" 2>&1 ||
		{ cat "$4" >&2; die "wrk failed against $1"; }
	if [ -n "$perf_pid" ]; then
		kill -INT "$perf_pid" 2>/dev/null || true
		wait "$perf_pid" 2>/dev/null || true
	fi
	parse_wrk <"$4" >"$4.parsed" || { cat "$4" >&2; die "cannot parse wrk output ($1)"; }
	read -r w_rps w_p99 w_bad w_errs w_n <"$4.parsed"
	[ "$w_bad" -eq 0 ] || { cat "$4" >&2; die "$1 answered $w_bad non-2xx responses of $w_n"; }
	[ "$w_errs" -eq 0 ] || say "WARNING: $1: $w_errs socket errors"
	w_cpu=0
	if [ "$1" = proxy ]; then
		w_cpu=$(awk -v a="$c0" -v b="$(cpu_of "$eb_pid")" -v n="$w_n" 'BEGIN { printf "%.1f", (n > 0 ? (b - a) * 1e6 / n : 0) }')
	fi
	echo "$w_rps $w_p99 $w_cpu"
}


targets="direct nginxproxy proxy"
[ -n "$apache_url" ] && targets="$targets apache"
url_of() {
	case $1 in
	direct) echo "$up_url/checkin" ;;
	nginxproxy) echo "$ngxp_url$PROXY_PATH" ;;
	proxy) echo "$eb_url$PROXY_PATH" ;;
	apache) echo "$apache_url$PROXY_PATH" ;;
	esac
}

say "machine: $(nproc) cores ($(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1)); wrk, the servers and the upstream share them"
say "wrk -t$THREADS -c$CONNS -d${DURATION}s, $ROUNDS rounds after ${WARMUP}s warm-up each: $targets"
for s in $targets; do
	run_wrk "$s" "$(url_of "$s")" "$WARMUP" "$tmp/warm-$s.txt" >/dev/null
	: >"$tmp/$s.res"
done
r=1
while [ "$r" -le "$ROUNDS" ]; do
	# rotate the order so that drift hits every target alike
	order=$(echo "$targets" | awk -v r="$r" '{ n = NF; for (i = 0; i < n; i++) printf "%s ", $(((i + r - 1) % n) + 1) }')
	for s in $order; do
		res=$(run_wrk "$s" "$(url_of "$s")" "$DURATION" "$tmp/r$r-$s.txt")
		echo "$res" >>"$tmp/$s.res"
		say "round $r $(printf '%-7s' "$s"): $(echo "$res" | awk '{ printf "%.0f req/s  p99 %.2f ms", $1, $2; if ($3 > 0) printf "  bridge CPU %.1f us/req", $3 }')"
	done
	r=$((r + 1))
done

# the bridge must not have logged a failure meanwhile
if grep -q '"level":"\(warn\|error\)"' "$ed/eb.log" 2>/dev/null; then
	say "WARNING: the bridge logged warnings during the run:"
	grep '"level":"\(warn\|error\)"' "$ed/eb.log" | tail -n 5 >&2
fi

# ---- report ------------------------------------------------------------------------
for s in $targets; do
	eval "${s}_rps=\$(awk '{ print \$1 }' \"\$tmp/\$s.res\" | median)"
	eval "${s}_p99=\$(awk '{ print \$2 }' \"\$tmp/\$s.res\" | median)"
done
proxy_cpu=$(awk '{ print $3 }' "$tmp/proxy.res" | median)
# shellcheck disable=SC2154 # set by the eval above
overhead=$(awk -v p="$proxy_rps" -v d="$direct_rps" 'BEGIN { printf "%.3f", (d > 0 ? 1 - p / d : 1) }')
ov_verdict=$(awk -v o="$overhead" -v t="$MAX_OVERHEAD" 'BEGIN { print (o + 0 < t + 0 ? "PASS" : "FAIL") }')
ap_line=""
ap_verdict=PASS
if [ -n "$apache_url" ]; then
	# shellcheck disable=SC2154
	ap_ratio=$(awk -v p="$proxy_rps" -v a="$apache_rps" 'BEGIN { printf "%.2f", (a > 0 ? p / a : 0) }')
	ap_verdict=$(awk -v r="$ap_ratio" -v t="$MIN_APACHE_RATIO" 'BEGIN { print (r + 0 >= t + 0 ? "PASS" : "FAIL") }')
	ap_line="ratio enrollbridge/apache: $ap_ratio (target >= $MIN_APACHE_RATIO): $ap_verdict"
fi

echo
echo "== MDM proxy benchmark: medians of $ROUNDS x ${DURATION}s, wrk -t$THREADS -c$CONNS on $(nproc) shared cores =="
echo "   (authenticated TokenUpdate check-ins, PUT $(wc -c <"$EB_CHECKIN") bytes; upstream: $up_label)"
for s in $targets; do
	eval "v_rps=\$${s}_rps v_p99=\$${s}_p99"
	case $s in
	direct) label="direct to upstream" ;;
	nginxproxy) label="nginx proxy, no auth" ;;
	proxy) label="enrollbridge proxy" ;;
	apache) label="apache + mod_oauth2" ;;
	esac
	# shellcheck disable=SC2154
	printf 'checkin  %-22s %9.0f req/s  p99 %7.2f ms' "$label" "$v_rps" "$v_p99"
	[ "$s" = proxy ] && printf '  bridge CPU %.1f us/req' "$proxy_cpu"
	printf '\n'
done
echo "proxy overhead vs direct: $(awk -v o="$overhead" 'BEGIN { printf "%.1f%%", o * 100 }') (target < $(awk -v t="$MAX_OVERHEAD" 'BEGIN { printf "%d%%", t * 100 }')): $ov_verdict"
# shellcheck disable=SC2154
echo "calibration: a plain nginx reverse proxy without any authentication costs $(awk -v p="$nginxproxy_rps" -v d="$direct_rps" 'BEGIN { printf "%.1f%%", (d > 0 ? (1 - p / d) * 100 : 0) }') against direct on this machine"
[ -n "$ap_line" ] && echo "$ap_line"
[ -n "$apache_note" ] && echo "note: $apache_note"

if [ "$BENCH_STRICT" = 1 ] && { [ "$ov_verdict" = FAIL ] || [ "$ap_verdict" = FAIL ]; }; then
	exit 1
fi
exit 0
