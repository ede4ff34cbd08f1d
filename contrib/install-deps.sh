#!/bin/sh
# Install the Debian 12 packages enrollbridge needs, by group:
#
#   runtime   what the daemon needs to run (shared libraries, CA certificates);
#             the Debian package's Depends say the same
#   build     compiler, CMake and the -dev packages (libsystemd-dev
#             included), and the Debian packaging tools for
#             `dpkg-buildpackage -b` (debhelper, dpkg-dev)
#   test      what contrib/test.sh needs besides: the sanitizer and fuzz
#             toolchain, cmocka, PostgreSQL, the test IdP's Node.js, the
#             benchmark and browser tools, systemd-analyze, promtool, nginx and caddy
#             (the reverse-proxy examples are run)
#             (prometheus: /metrics and the alert rules are checked with it)
#   demo      Node.js for contrib/demo.sh's test IdP and fake MDM, and curl
#             for the commands it suggests
#
#   sh contrib/install-deps.sh [GROUP...]     (no group: all of them)
#
# Idempotent, safe to run again; must run as root (or with sudo available).
# Prints nothing when all is already there.
set -eu

RUNTIME="
libmicrohttpd12 libcurl4 libssl3 libcjose0 libjansson4 libplist3
libsqlite3-0 libpq5 libsystemd0 ca-certificates
"
BUILD="
build-essential cmake pkg-config
libmicrohttpd-dev libgnutls28-dev libcurl4-openssl-dev libssl-dev libcjose-dev
libjansson-dev libplist-dev libsqlite3-dev libpq-dev libsystemd-dev
help2man groff-base man-db
"
TEST="
clang libclang-rt-14-dev clang-format libcmocka-dev liboauth2-dev
openssl sqlite3 libplist-utils postgresql curl python3
wrk nginx-light chromium
fonts-ipafont-gothic
systemd
prometheus
caddy
"
# the Debian package (debian/, `dpkg-buildpackage -b -us -uc`)
PACKAGE="
debhelper dpkg-dev fakeroot
"

[ $# -gt 0 ] || set -- runtime build test demo
PKGS=""
node=no
for g in "$@"; do
	case $g in
	runtime) PKGS="$PKGS $RUNTIME" ;;
	build) PKGS="$PKGS $BUILD $PACKAGE" ;;
	test) PKGS="$PKGS $TEST" node=yes ;;
	demo) PKGS="$PKGS curl" node=yes ;;
	*)
		echo "install-deps: unknown group '$g' (runtime, build, test, demo)" >&2
		exit 2
		;;
	esac
done

missing=""
for p in $PKGS; do
	case " $missing " in *" $p "*) continue ;; esac
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done
# Node.js (for the test IdP) may come from elsewhere than Debian; only when
# there is none do we take Debian's.
if [ $node = yes ] && { ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; }; then
	missing="$missing nodejs npm"
fi
[ -z "$missing" ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null 2>&1 || { echo "install-deps: need root to install:$missing" >&2; exit 1; }
	SUDO=sudo
fi
echo "install-deps: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# A package list older than a day (or none) is refreshed first.
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -n 1)" ]; then
	$SUDO apt-get update -q >&2
fi
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing >&2
