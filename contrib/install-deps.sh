#!/bin/sh
# Install every Debian 12 package that building, running and testing
# enrollbridge needs. One list, idempotent, safe to run again; must run as
# root (or with sudo available). Prints nothing when all is already there.
set -eu

PKGS="
build-essential cmake pkg-config clang libclang-rt-14-dev clang-format
libmicrohttpd-dev libcurl4-openssl-dev libssl-dev openssl
libcjose-dev libjansson-dev libplist-dev libplist-utils libsqlite3-dev sqlite3
libpq-dev postgresql
liboauth2-dev libcmocka-dev
curl ca-certificates python3
wrk nginx-light chromium
help2man groff-base man-db
"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done
# Node.js (for the test IdP) may come from elsewhere than Debian; only when
# there is none do we take Debian's.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
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
