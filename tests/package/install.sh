#!/bin/sh
# The installed service, as a deployer gets it, without root privileges:
#
#   install.sh destdir   cmake --install of EB_BINARY_DIR into a throwaway root
#   install.sh deb       dpkg-buildpackage -b of a copy of the tree, then
#                        dpkg-deb -x of the package into a throwaway root
#
# Then: the payload's files and modes (daemon, unit, sysusers.d, tmpfiles.d,
# the example configuration 0640 in directories 0750), the paths the unit
# names exist in the payload, `check-config` of the installed example, the
# installed daemon started on that example (rewritten to a loopback port
# and a temporary state directory) answering /readyz and discovery, its
# sd_notify messages (READY, RELOADING with MONOTONIC_USEC, STOPPING,
# WATCHDOG) on a socket of ours, a SIGHUP reload and a SIGTERM stop by PID;
# `systemd-analyze verify` and `security --offline` on the unit. A tool
# that is missing skips the test (exit 77), or fails it under CI=true.
set -eu

mode=${1:-}
src=${EB_SOURCE_DIR:?EB_SOURCE_DIR unset}
bld=${EB_BINARY_DIR:?EB_BINARY_DIR unset}
# the highest acceptable `systemd-analyze security` exposure: 2.0 as shown,
# which --threshold takes in tenths; the unit scores 1.2 today
max_exposure=20

fail() {
	echo "FAIL: $*" >&2
	exit 1
}
need() {
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 && continue
		[ "${CI:-}" = true ] && fail "$t is missing (contrib/install-deps.sh)"
		echo "SKIP: $t is missing (contrib/install-deps.sh installs it)" >&2
		exit 77
	done
}
ok() { echo "ok: $*"; }

need python3 curl systemd-analyze
work=$(mktemp -d "${TMPDIR:-/tmp}/eb-package.XXXXXX")
pid=""
npid=""
cleanup() {
	[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	[ -n "$npid" ] && kill -TERM "$npid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
root=$work/root
mkdir "$root"

case $mode in
destdir)
	DESTDIR=$root cmake --install "$bld" >"$work/install.log" 2>&1 ||
		{ cat "$work/install.log" >&2; fail "cmake --install"; }
	ok "cmake --install into $root"
	;;
deb)
	need dpkg-buildpackage dpkg-deb dh
	tree=$work/build/enrollbridge
	mkdir -p "$tree"
	for f in CMakeLists.txt README.md LICENSE src providers contrib debian docs; do
		[ -e "$src/$f" ] && cp -R "$src/$f" "$tree/"
	done
	echo "building the package (dpkg-buildpackage -b -us -uc)" >&2
	(cd "$tree" && dpkg-buildpackage -b -us -uc -j2) >"$work/deb.log" 2>&1 ||
		{ tail -n 60 "$work/deb.log" >&2; fail "dpkg-buildpackage"; }
	deb=$(ls "$work"/build/enrollbridge_*.deb)
	ok "built $(basename "$deb")"
	# the payload belongs to root, whoever built it
	dpkg-deb -c "$deb" >"$work/contents"
	if awk '$2 != "root/root" { bad = 1; print } END { exit !bad }' \
	    "$work/contents" >&2; then
		fail "payload entries not owned by root/root"
	fi
	ok "every payload entry is root/root"
	dpkg-deb -e "$deb" "$work/control"
	for f in /etc/enrollbridge/enrollbridge.json \
	    /etc/enrollbridge/tenants/example.json \
	    /etc/enrollbridge/secrets/example-client-secret; do
		grep -qx "$f" "$work/control/conffiles" ||
			fail "$f is not a conffile"
	done
	[ -z "$(sort "$work/control/conffiles" | uniq -d)" ] ||
		fail "conffiles listed twice"
	ok "the example configuration files are conffiles"
	grep -q 'systemd-sysusers enrollbridge.conf' "$work/control/postinst" &&
		grep -q 'systemd-tmpfiles --create enrollbridge.conf' \
			"$work/control/postinst" ||
		fail "postinst does not apply the sysusers.d and tmpfiles.d entries"
	grep -q 'rm -rf /var/lib/enrollbridge' "$work/control/postrm" ||
		fail "postrm does not remove the state on purge"
	ok "postinst and postrm"
	dpkg-deb -x "$deb" "$root"
	ok "dpkg-deb -x into $root"
	;;
*)
	echo "usage: install.sh destdir|deb" >&2
	exit 2
	;;
esac

# -- the payload -------------------------------------------------------
mode_of() { stat -c %a "$1"; }
expect_mode() {
	[ -e "$1" ] || fail "missing from the payload: ${1#"$root"}"
	[ "$(mode_of "$1")" = "$2" ] ||
		fail "${1#"$root"}: mode $(mode_of "$1"), expected $2"
}
unit=$(find "$root" -path '*/systemd/system/enrollbridge.service' | head -n 1)
[ -n "$unit" ] || fail "no systemd unit in the payload"
bin=$(sed -n 's/^ExecStart=\([^ ]*\) serve -c \(.*\)$/\1/p' "$unit")
conf=$(sed -n 's/^ExecStart=\([^ ]*\) serve -c \(.*\)$/\2/p' "$unit")
[ -n "$bin" ] && [ -n "$conf" ] || fail "the unit's ExecStart is not 'BIN serve -c FILE'"
etc=$(dirname "$conf")
lib=$(dirname "$(dirname "$(dirname "$unit")")")
case $bin in */sbin/enrollbridge) ;; *) fail "the daemon is not in sbin: $bin" ;; esac
expect_mode "$root$bin" 755
expect_mode "$unit" 644
# the Debian package keeps the unit in /lib, the rest in /usr/lib
tmpfiles=$(ls "$lib/tmpfiles.d/enrollbridge.conf" \
	"$root/usr/lib/tmpfiles.d/enrollbridge.conf" 2>/dev/null | head -n 1)
sysusers=$(ls "$lib/sysusers.d/enrollbridge.conf" \
	"$root/usr/lib/sysusers.d/enrollbridge.conf" 2>/dev/null | head -n 1)
[ -n "$tmpfiles" ] || fail "no tmpfiles.d/enrollbridge.conf in the payload"
[ -n "$sysusers" ] || fail "no sysusers.d/enrollbridge.conf in the payload"
expect_mode "$sysusers" 644
expect_mode "$tmpfiles" 644
expect_mode "$root$etc" 750
expect_mode "$root$etc/tenants" 750
expect_mode "$root$etc/secrets" 750
expect_mode "$root$etc/enrollbridge.json" 640
expect_mode "$root$etc/tenants/example.json" 640
expect_mode "$root$etc/secrets/example-client-secret" 640
expect_mode "$root$etc/README" 644
[ -n "$(find "$root" -path '*/doc/enrollbridge/README.md')" ] ||
	fail "README.md is not installed"
if [ -n "$(find "$root" -perm /022 ! -type l ! -type d -print -quit)" ] ||
    [ -n "$(find "$root" -perm /6000 -print -quit)" ]; then
	find "$root" \( -perm /022 ! -type l ! -type d \) -o -perm /6000 >&2
	fail "group/world-writable or setuid/setgid files in the payload"
fi
ok "payload files and modes"

grep -Eq '^u enrollbridge ' "$sysusers" || fail "sysusers.d: no enrollbridge user"
grep -Eq '^d /var/lib/enrollbridge 0700 enrollbridge enrollbridge' "$tmpfiles" ||
	fail "tmpfiles.d: /var/lib/enrollbridge is not 0700 enrollbridge"
grep -Eq "^d $etc 0750 root enrollbridge" "$tmpfiles" ||
	fail "tmpfiles.d: $etc is not 0750 root:enrollbridge"
for key in NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes \
    PrivateTmp=yes PrivateDevices=yes ReadWritePaths=/var/lib/enrollbridge \
    SystemCallFilter=@system-service MemoryDenyWriteExecute=yes \
    Type=notify NotifyAccess=main User=enrollbridge UMask=0077 \
    'ExecReload=/bin/kill -HUP $MAINPID' CapabilityBoundingSet=; do
	grep -qxF "$key" "$unit" || fail "the unit lacks $key"
done
grep -q '^WatchdogSec=' "$unit" || fail "the unit has no WatchdogSec"
grep -qx 'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6' "$unit" ||
	fail "the unit does not restrict address families"
ok "sysusers.d, tmpfiles.d and the unit's hardening"

# The entries applied to the throwaway root, as postinst does on a host
# (chown needs root: elsewhere only the syntax was checked above).
if [ "$(id -u)" -eq 0 ]; then
	mkdir -p "$root/etc"
	systemd-sysusers --root="$root" "$sysusers" >"$work/sysusers.log" 2>&1 ||
		{ cat "$work/sysusers.log" >&2; fail "systemd-sysusers"; }
	ids=$(awk -F: '$1 == "enrollbridge" { print $3 ":" $4 }' "$root/etc/passwd")
	[ -n "$ids" ] || fail "systemd-sysusers made no enrollbridge user"
	systemd-tmpfiles --root="$root" --create "$tmpfiles" \
		>"$work/tmpfiles.log" 2>&1 ||
		{ cat "$work/tmpfiles.log" >&2; fail "systemd-tmpfiles --create"; }
	[ "$(stat -c '%u:%g %a' "$root/var/lib/enrollbridge")" = "$ids 700" ] ||
		fail "/var/lib/enrollbridge: $(stat -c '%u:%g %a' "$root/var/lib/enrollbridge"), expected $ids 700"
	for f in "$etc" "$etc/tenants" "$etc/enrollbridge.json" \
	    "$etc/tenants/example.json" "$etc/secrets/example-client-secret"; do
		[ "$(stat -c '%u:%g' "$root$f")" = "0:${ids#*:}" ] ||
			fail "$f: owner $(stat -c '%u:%g' "$root$f"), expected root:enrollbridge"
	done
	ok "systemd-sysusers and systemd-tmpfiles: enrollbridge $ids, /var/lib/enrollbridge 0700, the configuration root:enrollbridge"
else
	ok "not root: systemd-sysusers and systemd-tmpfiles not applied"
fi

# -- the unit, as systemd reads it -------------------------------------
# verify checks that ExecStart exists: point it at the payload's daemon
sed "s|^ExecStart=$bin |ExecStart=$root$bin |" "$unit" \
	>"$work/enrollbridge.service"
(cd "$work" && systemd-analyze verify "$work/enrollbridge.service") \
	>"$work/verify.log" 2>&1 || {
	cat "$work/verify.log" >&2
	fail "systemd-analyze verify"
}
[ -s "$work/verify.log" ] && { cat "$work/verify.log" >&2; fail "systemd-analyze verify warns"; }
ok "systemd-analyze verify"
(cd "$work" && systemd-analyze security --offline=yes \
	--threshold=$max_exposure --no-pager \
	"$work/enrollbridge.service") >"$work/security.log" 2>&1 || {
	tail -n 20 "$work/security.log" >&2
	fail "systemd-analyze security: exposure above 2.0"
}
ok "$(grep 'Overall exposure' "$work/security.log" | sed 's/^→ //')"

# -- the installed binary on the installed example ---------------------
"$root$bin" check-config -c "$root$conf" >"$work/check.log" 2>&1 ||
	{ cat "$work/check.log" >&2; fail "check-config on the installed example"; }
ok "check-config: $(cat "$work/check.log")"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
aport=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
state=$work/state
mkdir -m 0700 "$state"
python3 - "$root$conf" "$port" "$state" "$aport" <<'PY'
import json, sys
path, port, state, aport = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
with open(path, encoding="utf-8") as f:
    cfg = json.load(f)
cfg["listen"] = "127.0.0.1:" + port
assert "admin_listen" in cfg, "the installed example has no admin_listen"
cfg["admin_listen"] = "127.0.0.1:" + aport
cfg["public_url"] = "http://127.0.0.1:" + port
cfg["database"] = state + "/enrollbridge.db"
cfg["state_dir"] = state + "/state"
with open(path, "w", encoding="utf-8") as f:
    json.dump(cfg, f, indent=2)
PY

# our own notification socket; a 2 s watchdog asks for a ping a second
sock=$work/notify.sock
python3 "$src/tests/package/notify.py" "$sock" "$work/notify.log" &
npid=$!
i=0
while [ ! -S "$sock" ]; do
	i=$((i + 1))
	[ $i -le 100 ] || fail "the notification socket did not appear"
	sleep 0.05
done
NOTIFY_SOCKET=$sock WATCHDOG_USEC=2000000 \
	"$root$bin" serve -c "$root$conf" >"$work/serve.log" 2>&1 &
pid=$!
base=http://127.0.0.1:$port
admin=http://127.0.0.1:$aport
i=0
until curl -fsS -o /dev/null "$admin/readyz" 2>/dev/null; do
	i=$((i + 1))
	kill -0 "$pid" 2>/dev/null || { cat "$work/serve.log" >&2; fail "the daemon exited"; }
	[ $i -le 300 ] || { cat "$work/serve.log" >&2; fail "/readyz did not answer in 30 s"; }
	sleep 0.1
done
ok "/readyz answers 200 on the admin listener"
code=$(curl -s -o /dev/null -w '%{http_code}' "$base/metrics")
[ "$code" = 404 ] || fail "/metrics on the public listener answered $code, not 404"
curl -fsS "$admin/metrics" | grep -q '^enrollbridge_' ||
	fail "/metrics on the admin listener has no enrollbridge_ series"
ok "/metrics only on the admin listener"
disc=$(curl -fsS "$base/.well-known/com.apple.remotemanagement?user-identifier=someone@example.com&model-family=iPhone") ||
	fail "discovery did not answer 200"
echo "$disc" | python3 -c '
import json, sys
d = json.load(sys.stdin)
urls = [s.get("BaseURL", "") for s in d.get("Servers", [])]
assert urls and urls[0].startswith(sys.argv[1]), d
' "$base" || fail "discovery answered: $disc"
ok "discovery answers with the tenant's BaseURL"

kill -HUP "$pid"
i=0
until grep -q 'configuration reloaded' "$work/serve.log"; do
	i=$((i + 1))
	[ $i -le 100 ] || { cat "$work/serve.log" >&2; fail "no reload after SIGHUP"; }
	sleep 0.1
done
sleep 1.5 # at least one watchdog ping
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=""
[ $rc -eq 0 ] || { cat "$work/serve.log" >&2; fail "the daemon exited $rc after SIGTERM"; }
grep -q 'stopped' "$work/serve.log" || fail "no 'stopped' line in the log"
ok "SIGHUP reloads, SIGTERM stops (exit 0)"

# -- what it told the service manager ----------------------------------
sleep 0.2
kill -TERM "$npid"
wait "$npid" || true
npid=""
if [ "${EB_SYSTEMD:-0}" = 1 ] || [ "$mode" = deb ]; then
	python3 - "$work/notify.log" <<'PY' || { cat "$work/notify.log" >&2; fail "sd_notify messages"; }
import sys
msgs = [m.strip().split("\n") for m in open(sys.argv[1]).read().split("\n--\n") if m.strip()]
kinds = []
for m in msgs:
    if "READY=1" in m: kinds.append("ready")
    if "RELOADING=1" in m:
        kinds.append("reloading")
        assert any(f.startswith("MONOTONIC_USEC=") and f[15:].isdigit() for f in m), m
    if "STOPPING=1" in m: kinds.append("stopping")
seq = [k for k in kinds]
assert seq == ["ready", "reloading", "ready", "stopping"], seq
assert any("WATCHDOG=1" in m for m in msgs), "no WATCHDOG=1"
assert any(f.startswith("STATUS=serving 1 tenant") for m in msgs for f in m), "no STATUS"
PY
	ok "sd_notify: READY, RELOADING (MONOTONIC_USEC), READY, STOPPING, WATCHDOG, STATUS"
else
	[ ! -s "$work/notify.log" ] || fail "built without libsystemd, yet it notified"
	ok "built without libsystemd: no notifications, as expected"
fi
echo "PASS: package/$mode"
