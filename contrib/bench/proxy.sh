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
# For calibration, the same load also goes through a plain nginx reverse
# proxy (proxy_pass with kept-alive upstream connections, no
# authentication): the cost of one more HTTP hop on this machine, a floor
# no authenticating proxy beats. It is an nginx instance of its own (own
# prefix, config, pid file and port), separate from the nginx that is the
# upstream with UPSTREAM=nginx, so that its CPU time is only proxying.
#
# Each round runs every target once, back to back (the order rotated from
# round to round), for DURATION seconds after a warm-up of each. Reported:
#  - per target, the median requests/s and p99 over the ROUNDS rounds, and
#    the CPU time per request of the bridge (its process) and of the nginx
#    calibration proxy (master and workers): user + system time from
#    /proc/<pid>/stat between the start and the end of each wrk run,
#    divided by the requests wrk completed (medians over the rounds);
#  - per round, paired figures from that round's back-to-back runs: the
#    proxy's overhead 1 - proxy/direct, the nginx proxy's 1 - nginxproxy/
#    direct, the ratio proxy/Apache and the CPU ratio bridge/nginx; of each
#    the median over the rounds and its min..max range. Drift of the
#    machine's load between rounds largely cancels out of a paired value,
#    not out of a ratio of medians taken from different rounds;
#  - the verdicts: the proxy's overhead against direct (target < 15%) and
#    the ratio proxy/Apache (target >= 2), both judged on the median of the
#    per-round paired values. The ratio of the medians (as reported before)
#    is printed too, labelled as such, for continuity; it is not judged.
# On a busy machine the CPU per request is steadier than requests/s (it
# measures work done, not who got the cores); the min..max range of the
# paired values shows how much one round's figure differs from another's.
#
# Environment:
#   DURATION=10 ROUNDS=5 WARMUP=2   seconds per run, rounds, warm-up seconds
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
#   PIN=1                           the upstream on the last core alone
#                                   (taskset), wrk and every proxy on the
#                                   others, as with an MDM on a host of its
#                                   own: a proxy's CPU time then stops
#                                   coming out of the upstream's share;
#                                   0 (default): all share every core
#   BASELINE=REV                    also bench the bridge built from git
#                                   revision REV (e.g. the commit before a
#                                   change) as one more target, set up the
#                                   same way on its own port, database and
#                                   token; reported: per-round paired
#                                   ratios of the two bridges' req/s and
#                                   CPU per request (a regression check)
#   BASELINE_BIN=path               the same with a binary built already
#   PERF_OUT=file                   record a call-graph profile of the bridge
#                                   (perf record --call-graph dwarf) during
#                                   its first timed round into file
# Exit status: 0 (informational), 1 on setup failure or non-2xx responses,
# or (BENCH_STRICT=1) a missed target (judged on the paired medians).
set -eu

cd "$(dirname "$0")/../.."
top=$(pwd)
# shellcheck source-path=SCRIPTDIR/../..
. contrib/bench/lib.sh

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-5}
WARMUP=${WARMUP:-2}
THREADS=${THREADS:-2}
CONNS=${CONNS:-64}
APACHE=${APACHE:-1}
BENCH_STRICT=${BENCH_STRICT:-0}
BENCH_NO_BUILD=${BENCH_NO_BUILD:-0}
BUILD_DIR=${BUILD_DIR:-build}
PIN=${PIN:-0}
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

# the baseline bridge (BASELINE=REV or BASELINE_BIN=path), built in the temp
# dir from the revision's own tree
BASE_BIN=${BASELINE_BIN:-}
base_label=""
if [ -n "${BASELINE:-}" ] && [ -z "$BASE_BIN" ]; then
	base_rev=$(git rev-parse --short "$BASELINE^{commit}" 2>/dev/null) ||
		die "BASELINE=$BASELINE is not a git revision here"
	say "building the baseline bridge from $base_rev (RelWithDebInfo, in $tmp/base-src)"
	mkdir -p "$tmp/base-src"
	git archive "$base_rev" | tar -x -C "$tmp/base-src" || die "git archive $base_rev failed"
	{ cmake -S "$tmp/base-src" -B "$tmp/base-build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null &&
		cmake --build "$tmp/base-build" -j"$jobs" --target enrollbridge >"$tmp/base-build.log" 2>&1; } ||
		{ tail -n 30 "$tmp/base-build.log" >&2; die "the baseline build failed"; }
	BASE_BIN=$tmp/base-build/enrollbridge
	base_label="revision $base_rev"
elif [ -n "$BASE_BIN" ]; then
	[ -x "$BASE_BIN" ] || die "BASELINE_BIN=$BASE_BIN is not an executable"
	base_label="$BASE_BIN"
fi

eb_pid=""
ngx_pid=""
ngxp_pid=""
apache_pid=""
mdm_pid=""
base_pid=""

# Stop process $1 and then whichever of its children outlived it.
# shellcheck disable=SC2317 # called by the EXIT trap
stop_tree() {
	[ -n "$1" ] || return 0
	st_kids=$(children "$1")
	stop_pid "$1"
	for k in $st_kids; do stop_pid "$k"; done
}

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	stop_pid "$eb_pid"
	stop_pid "$base_pid"
	stop_tree "$apache_pid"
	stop_tree "$ngxp_pid"
	stop_tree "$ngx_pid"
	stop_pid "$mdm_pid"
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- the upstream and the calibration proxy: private nginx instances ----------
# Each has its own prefix dir, nginx.conf, pid file and port in the temp dir;
# the system nginx is never touched.
user_line=""
[ "$(id -u)" = 0 ] && user_line="user root;"

# Write $1/nginx.conf: the common settings and the server blocks on stdin.
ngx_conf() {
	nc_servers=$(cat)
	mkdir -p "$1/logs" "$1/tmp"
	cat >"$1/nginx.conf" <<EOF
$user_line
worker_processes auto;
daemon off;
pid $1/nginx.pid;
error_log $1/logs/error.log warn;
events {
    worker_connections 4096;
    use epoll;
}
http {
    access_log off;
    server_tokens off;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    client_body_temp_path $1/tmp/body;
    proxy_temp_path $1/tmp/proxy;
    fastcgi_temp_path $1/tmp/fastcgi;
    uwsgi_temp_path $1/tmp/uwsgi;
    scgi_temp_path $1/tmp/scgi;
$nc_servers
}
EOF
}

# Check and start the nginx of prefix $1, on the cores of $2 ($pin_up or
# $pin_front); its master's pid -> ngx_started.
ngx_start() {
	"$NGINX" -t -q -p "$1" -c "$1/nginx.conf" >"$1/logs/test.log" 2>&1 ||
		{ cat "$1/logs/test.log" >&2; die "nginx -t rejected $1/nginx.conf"; }
	# shellcheck disable=SC2086 # $2: a command prefix, or nothing
	$2 "$NGINX" -p "$1" -c "$1/nginx.conf" >"$1/logs/out.log" 2>&1 &
	ngx_started=$!
}

# PIN=1: the upstream gets the last core to itself, as an MDM on a host of
# its own would; wrk and every proxy share the others. Then a proxy's CPU
# time no longer comes out of the upstream's share.
pin_up=""
pin_front=""
if [ "$PIN" = 1 ]; then
	ncpu=$(nproc)
	[ "$ncpu" -ge 2 ] || die "PIN=1 needs at least 2 cores"
	command -v taskset >/dev/null 2>&1 || die "PIN=1 needs taskset (util-linux)"
	pin_up_cpus=$((ncpu - 1))
	pin_front_cpus="0-$((ncpu - 2))"
	pin_up="taskset -c $pin_up_cpus"
	pin_front="taskset -c $pin_front_cpus"
fi

UPSTREAM=${UPSTREAM:-nginx}
case $UPSTREAM in
nginx)
	# the upstream: nginx answering every check-in with 200
	up_port=$(free_port)
	up_label="nginx return 200"
	nd="$tmp/nginx"
	ngx_conf "$nd" <<EOF
    server {
        listen 127.0.0.1:$up_port;
        location / {
            default_type application/xml;
            return 200 '<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict/></plist>';
        }
    }
EOF
	ngx_start "$nd" "$pin_up"
	ngx_pid=$ngx_started
	wait_up "$ngx_pid" "http://127.0.0.1:$up_port/checkin" "$nd/logs/error.log"
	;;
fake-mdm)
	up_port=$(free_port)
	up_label="the demo's fake MDM (node)"
	# shellcheck disable=SC2086 # a command prefix, or nothing
	$pin_up node contrib/demo/fake-mdm.mjs --port "$up_port" >/dev/null 2>"$tmp/mdm.log" &
	mdm_pid=$!
	i=0 # up when it answers at all (a GET gets its 404)
	while [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$up_port/")" = 000 ]; do
		{ kill -0 "$mdm_pid" 2>/dev/null && [ $i -lt 150 ]; } ||
			{ cat "$tmp/mdm.log" >&2; die "the fake MDM did not start"; }
		sleep 0.1
		i=$((i + 1))
	done
	;;
*) die "UPSTREAM must be nginx or fake-mdm" ;;
esac
up_url="http://127.0.0.1:$up_port"

# calibration: a plain reverse proxy (no authentication at all) in front of
# the same upstream, with kept-alive upstream connections; an instance of its
# own, so that the CPU time of its processes is the proxying alone
ngxp_port=$(free_port)
npd="$tmp/nginxproxy"
ngx_conf "$npd" <<EOF
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
        location = /bench-ready {
            return 200;
        }
    }
EOF
ngx_start "$npd" "$pin_front"
ngxp_pid=$ngx_started
ngxp_url="http://127.0.0.1:$ngxp_port"
wait_up "$ngxp_pid" "$ngxp_url/bench-ready" "$npd/logs/error.log"

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
if [ "$PIN" = 1 ]; then # every thread it has, and those it makes later
	taskset -a -p -c "$pin_front_cpus" "$eb_pid" >/dev/null ||
		die "cannot pin the bridge (taskset)"
fi
eb_url="http://127.0.0.1:$eb_port"
EB_TOKEN=$(cat "$ed/token")
EB_CHECKIN="$top/contrib/bench/checkin.plist"
export EB_TOKEN EB_CHECKIN

# the baseline: the same setup (own port, directory, sign-in and token)
base_url=""
BASE_TOKEN=""
if [ -n "$BASE_BIN" ]; then
	base_port=$(free_port)
	bd="$tmp/ebbase"
	mkdir -p "$bd"
	node contrib/bench/proxy_setup.mjs --bin "$BASE_BIN" --dir "$bd" --port "$base_port" \
		--upstream "$up_url/" >"$bd/setup.log" 2>&1 || {
		cat "$bd/setup.log" "$bd/eb.log" >&2 2>/dev/null || true
		[ -f "$bd/eb.pid" ] && base_pid=$(cat "$bd/eb.pid")
		die "baseline setup (sign-in at the test IdP) failed"
	}
	base_pid=$(cat "$bd/eb.pid")
	if [ "$PIN" = 1 ]; then
		taskset -a -p -c "$pin_front_cpus" "$base_pid" >/dev/null ||
			die "cannot pin the baseline bridge (taskset)"
	fi
	base_url="http://127.0.0.1:$base_port"
	BASE_TOKEN=$(cat "$bd/token")
fi

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
		# shellcheck disable=SC2086 # a command prefix, or nothing
		$pin_front "$APACHE2" -f "$ad/httpd.conf" -DFOREGROUND >"$ad/logs/out.log" 2>&1 &
		apache_pid=$!
		i=0
		while ! curl -sS -o /dev/null "http://127.0.0.1:$ap_port/" 2>/dev/null; do
			{ kill -0 "$apache_pid" 2>/dev/null && [ $i -lt 150 ]; } ||
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

# pids whose CPU time is charged to target $1: the bridge's process for the
# proxy, the calibration nginx's master and workers for nginxproxy; none
# (not measured) for the others
cpu_pids() {
	case $1 in
	proxy) echo "$eb_pid" ;;
	baseline) echo "$base_pid" ;;
	nginxproxy)
		# shellcheck disable=SC2046 # one pid a word
		echo "$ngxp_pid" $(children "$ngxp_pid")
		;;
	esac
}

# $1: label, $2: URL, $3: seconds, $4: output file -> "rps p99_ms cpu_us_per_req"
# (the CPU column: that of cpu_pids, 0 for a target whose CPU is not measured)
run_wrk() {
	w_pids=$(cpu_pids "$1")
	# shellcheck disable=SC2086 # one pid a word
	w_c0=$(cpu_ticks $w_pids)
	perf_pid=""
	if [ "$1" = proxy ] && [ -n "${PERF_OUT:-}" ] && [ "$3" = "$DURATION" ] && [ ! -e "$PERF_OUT" ]; then
		perf record -q -F 999 --call-graph dwarf -o "$PERF_OUT" -p "$eb_pid" >/dev/null 2>&1 &
		perf_pid=$!
	fi
	# shellcheck disable=SC2086 # a command prefix, or nothing
	w_token=$EB_TOKEN
	[ "$1" = baseline ] && w_token=$BASE_TOKEN
	# shellcheck disable=SC2086 # a command prefix, or nothing
	EB_TOKEN=$w_token $pin_front wrk -t"$THREADS" -c"$CONNS" -d"$3"s --latency -s contrib/bench/checkin.lua "$2" >"$4" 2>&1 ||
		{ cat "$4" >&2; die "wrk failed against $1"; }
	# shellcheck disable=SC2086
	w_c1=$(cpu_ticks $w_pids)
	if [ -n "$perf_pid" ]; then
		kill -INT "$perf_pid" 2>/dev/null || true
		wait "$perf_pid" 2>/dev/null || true
	fi
	parse_wrk <"$4" >"$4.parsed" || { cat "$4" >&2; die "cannot parse wrk output ($1)"; }
	read -r w_rps w_p99 w_bad w_errs w_n <"$4.parsed"
	[ "$w_bad" -eq 0 ] || { cat "$4" >&2; die "$1 answered $w_bad non-2xx responses of $w_n"; }
	[ "$w_errs" -eq 0 ] || say "WARNING: $1: $w_errs socket errors"
	awk -v r="$w_rps" -v p="$w_p99" -v c=$((w_c1 - w_c0)) -v n="$w_n" -v hz="$CLK_TCK" \
		'BEGIN { printf "%s %s %.2f\n", r, p, (n > 0 ? c * 1e6 / hz / n : 0) }'
}

# The paired figures of round $1, from its back-to-back runs (line $1 of
# each target's results) -> "overhead nginx_overhead apache_ratio cpu_ratio":
# 1 - proxy/direct, 1 - nginxproxy/direct, proxy/apache (0 without Apache),
# bridge CPU/nginx CPU per request (0 when nginx's is 0)
paired_round() {
	pr_apache="0 0 0"
	[ -n "$apache_url" ] && pr_apache=$(sed -n "${1}p" "$tmp/apache.res")
	echo "$(sed -n "${1}p" "$tmp/direct.res") $(sed -n "${1}p" "$tmp/nginxproxy.res")" \
		"$(sed -n "${1}p" "$tmp/proxy.res") $pr_apache" | awk '{
		d = $1; n = $4; nc = $6; p = $7; pc = $9; a = $10
		printf "%.4f %.4f %.4f %.4f\n", (d > 0 ? 1 - p / d : 1), (d > 0 ? 1 - n / d : 1),
			(a > 0 ? p / a : 0), (nc > 0 ? pc / nc : 0)
	}'
}

# paired_round's output on stdin -> one line of text
paired_text() {
	awk -v apache="$apache_url" '{
		printf "proxy overhead %.1f%%  nginx proxy overhead %.1f%%", $1 * 100, $2 * 100
		if (apache != "") printf "  enrollbridge/apache %.2f", $3
		printf "  CPU bridge/nginx %.2f\n", $4
	}'
}

# The numbers on stdin, one a line -> "median min max count"
spread() {
	sort -n | awk '{ v[NR] = $1 }
	END {
		if (NR == 0) { print "0 0 0 0"; exit }
		m = (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)
		printf "%.4f %.4f %.4f %d\n", m, v[1], v[NR], NR
	}'
}

targets="direct nginxproxy proxy"
[ -n "$apache_url" ] && targets="$targets apache"
[ -n "$base_url" ] && targets="$targets baseline"
url_of() {
	case $1 in
	direct) echo "$up_url/checkin" ;;
	nginxproxy) echo "$ngxp_url$PROXY_PATH" ;;
	proxy) echo "$eb_url$PROXY_PATH" ;;
	apache) echo "$apache_url$PROXY_PATH" ;;
	baseline) echo "$base_url$PROXY_PATH" ;;
	esac
}

# round $1 against the baseline -> "rps_ratio cpu_ratio": bridge/baseline
# req/s and CPU per request, from that round's back-to-back runs
baseline_round() {
	echo "$(sed -n "${1}p" "$tmp/proxy.res") $(sed -n "${1}p" "$tmp/baseline.res")" | awk '{
		printf "%.4f %.4f\n", ($4 > 0 ? $1 / $4 : 0), ($6 > 0 ? $3 / $6 : 0) }'
}

if [ "$PIN" = 1 ]; then
	share="the upstream alone on core $pin_up_cpus; wrk and the proxies on $pin_front_cpus (PIN=1)"
else
	share="wrk, the servers and the upstream share them"
fi
say "machine: $(nproc) cores ($(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1)); $share"
say "wrk -t$THREADS -c$CONNS -d${DURATION}s, $ROUNDS rounds after ${WARMUP}s warm-up each: $targets (back to back in each round, order rotated)"
for s in $targets; do
	run_wrk "$s" "$(url_of "$s")" "$WARMUP" "$tmp/warm-$s.txt" >/dev/null
	: >"$tmp/$s.res"
done
: >"$tmp/paired.res"
r=1
while [ "$r" -le "$ROUNDS" ]; do
	# rotate the order so that drift hits every target alike
	order=$(echo "$targets" | awk -v r="$r" '{ n = NF; for (i = 0; i < n; i++) printf "%s ", $(((i + r - 1) % n) + 1) }')
	for s in $order; do
		res=$(run_wrk "$s" "$(url_of "$s")" "$DURATION" "$tmp/r$r-$s.txt")
		echo "$res" >>"$tmp/$s.res"
		say "round $r $(printf '%-10s' "$s"): $(echo "$res" | awk -v s="$s" '{
			printf "%.0f req/s  p99 %.2f ms", $1, $2
			if (s == "proxy" || s == "baseline") printf "  bridge CPU %.1f us/req", $3
			if (s == "nginxproxy") printf "  nginx CPU %.1f us/req", $3
		}')"
	done
	paired_round "$r" >>"$tmp/paired.res"
	say "round $r paired    : $(sed -n "${r}p" "$tmp/paired.res" | paired_text)"
	if [ -n "$base_url" ]; then
		baseline_round "$r" >>"$tmp/base-paired.res"
		say "round $r baseline  : $(sed -n "${r}p" "$tmp/base-paired.res" | awk '{
			printf "bridge/baseline req/s %.3f  CPU %.3f\n", $1, $2 }')"
	fi
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
nginx_cpu=$(awk '{ print $3 }' "$tmp/nginxproxy.res" | median)
pct() { awk -v v="$1" 'BEGIN { printf "%.1f%%", v * 100 }'; }
max_ov_pct=$(awk -v t="$MAX_OVERHEAD" 'BEGIN { printf "%d%%", t * 100 }')

# the verdicts: medians of the per-round paired values
read -r ov_med ov_min ov_max n_rounds <<EOF
$(awk '{ print $1 }' "$tmp/paired.res" | spread)
EOF
ov_ok=$(awk -v t="$MAX_OVERHEAD" '$1 + 0 < t + 0 { k++ } END { print k + 0 }' "$tmp/paired.res")
ov_verdict=$(awk -v o="$ov_med" -v t="$MAX_OVERHEAD" 'BEGIN { print (o + 0 < t + 0 ? "PASS" : "FAIL") }')
read -r ng_med ng_min ng_max _ <<EOF
$(awk '{ print $2 }' "$tmp/paired.res" | spread)
EOF
read -r cpu_med cpu_min cpu_max _ <<EOF
$(awk '{ print $4 }' "$tmp/paired.res" | spread)
EOF
# as reported before: ratios of the medians (of runs from different rounds)
# shellcheck disable=SC2154 # set by the eval above
overhead_mm=$(awk -v p="$proxy_rps" -v d="$direct_rps" 'BEGIN { printf "%.4f", (d > 0 ? 1 - p / d : 1) }')
# shellcheck disable=SC2154
ng_mm=$(awk -v p="$nginxproxy_rps" -v d="$direct_rps" 'BEGIN { printf "%.4f", (d > 0 ? 1 - p / d : 0) }')
cpu_mm=$(awk -v b="$proxy_cpu" -v n="$nginx_cpu" 'BEGIN { printf "%.2f", (n > 0 ? b / n : 0) }')
ap_line=""
ap_mm_line=""
ap_verdict=PASS
if [ -n "$apache_url" ]; then
	read -r ap_med ap_min ap_max _ <<EOF
$(awk '{ print $3 }' "$tmp/paired.res" | spread)
EOF
	ap_ok=$(awk -v t="$MIN_APACHE_RATIO" '$3 + 0 >= t + 0 { k++ } END { print k + 0 }' "$tmp/paired.res")
	ap_verdict=$(awk -v r="$ap_med" -v t="$MIN_APACHE_RATIO" 'BEGIN { print (r + 0 >= t + 0 ? "PASS" : "FAIL") }')
	ap_line=$(awk -v m="$ap_med" -v lo="$ap_min" -v hi="$ap_max" -v t="$MIN_APACHE_RATIO" \
		-v v="$ap_verdict" -v k="$ap_ok" -v n="$n_rounds" 'BEGIN {
		printf "ratio enrollbridge/apache: %.2f (target >= %s): %s  [median of %d per-round paired ratios, range %.2f..%.2f; %d of %d rounds >= %s]",
			m, t, v, n, lo, hi, k, n, t }')
	# shellcheck disable=SC2154
	ap_mm_line=$(awk -v p="$proxy_rps" -v a="$apache_rps" 'BEGIN {
		printf "ratio enrollbridge/apache, ratio of medians: %.2f (median proxy / median apache, as reported before; not judged)", (a > 0 ? p / a : 0) }')
fi

echo
if [ "$PIN" = 1 ]; then
	cores_label="$(nproc) cores: the upstream alone on core $pin_up_cpus, wrk and the proxies on $pin_front_cpus"
else
	cores_label="$(nproc) shared cores"
fi
echo "== MDM proxy benchmark: medians of $ROUNDS x ${DURATION}s, wrk -t$THREADS -c$CONNS on $cores_label =="
echo "   (authenticated TokenUpdate check-ins, PUT $(wc -c <"$EB_CHECKIN") bytes; upstream: $up_label)"
for s in $targets; do
	eval "v_rps=\$${s}_rps v_p99=\$${s}_p99"
	case $s in
	direct) label="direct to upstream" ;;
	nginxproxy) label="nginx proxy, no auth" ;;
	proxy) label="enrollbridge proxy" ;;
	apache) label="apache + mod_oauth2" ;;
	baseline) label="enrollbridge baseline" ;;
	esac
	# shellcheck disable=SC2154
	printf 'checkin  %-22s %9.0f req/s  p99 %7.2f ms' "$label" "$v_rps" "$v_p99"
	[ "$s" = proxy ] && printf '  bridge CPU %.1f us/req' "$proxy_cpu"
	[ "$s" = baseline ] && printf '  bridge CPU %.1f us/req' "$(awk '{ print $3 }' "$tmp/baseline.res" | median)"
	[ "$s" = nginxproxy ] && printf '  nginx CPU %.1f us/req' "$nginx_cpu"
	printf '\n'
done
echo "paired per round (all targets back to back, order rotated; overhead = 1 - x/direct):"
r=1
while [ "$r" -le "$n_rounds" ]; do
	echo "  round $r: $(sed -n "${r}p" "$tmp/paired.res" | paired_text)"
	r=$((r + 1))
done
echo "proxy overhead vs direct: $(pct "$ov_med") (target < $max_ov_pct): $ov_verdict  [median of $n_rounds per-round paired overheads, range $(pct "$ov_min")..$(pct "$ov_max"); $ov_ok of $n_rounds rounds < $max_ov_pct]"
echo "proxy overhead vs direct, ratio of medians: $(pct "$overhead_mm") (1 - median proxy / median direct, as reported before; not judged)"
echo "calibration: a plain nginx reverse proxy without any authentication costs $(pct "$ng_med") against direct on this machine  [median of per-round paired values, range $(pct "$ng_min")..$(pct "$ng_max"); ratio of medians $(pct "$ng_mm")]"
[ -n "$ap_line" ] && echo "$ap_line"
[ -n "$ap_mm_line" ] && echo "$ap_mm_line"
echo "CPU per request, bridge/nginx proxy: $(awk -v m="$cpu_med" -v lo="$cpu_min" -v hi="$cpu_max" -v b="$proxy_cpu" -v n="$nginx_cpu" -v mm="$cpu_mm" 'BEGIN {
	printf "%.2f  [median of per-round ratios, range %.2f..%.2f; ratio of medians %.1f / %.1f us/req = %.2f]", m, lo, hi, b, n, mm }') (steadier than req/s on a busy machine)"
[ -n "$apache_note" ] && echo "note: $apache_note"
if [ -n "$base_url" ]; then
	read -r br_med br_min br_max _ <<EOF
$(awk '{ print $1 }' "$tmp/base-paired.res" | spread)
EOF
	read -r bc_med bc_min bc_max _ <<EOF
$(awk '{ print $2 }' "$tmp/base-paired.res" | spread)
EOF
	echo "against the baseline ($base_label): req/s bridge/baseline $(awk -v m="$br_med" -v lo="$br_min" -v hi="$br_max" 'BEGIN {
		printf "%.3f [range %.3f..%.3f]", m, lo, hi }'), CPU per request bridge/baseline $(awk -v m="$bc_med" -v lo="$bc_min" -v hi="$bc_max" 'BEGIN {
		printf "%.3f [range %.3f..%.3f]", m, lo, hi }')  [medians of per-round paired ratios; req/s > 1 and CPU < 1 is better]"
fi

if [ "$BENCH_STRICT" = 1 ] && { [ "$ov_verdict" = FAIL ] || [ "$ap_verdict" = FAIL ]; }; then
	exit 1
fi
exit 0
