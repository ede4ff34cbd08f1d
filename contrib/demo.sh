#!/bin/sh
# Build and run enrollbridge on its embedded defaults: SQLite under ./var/demo,
# config/demo/ with a demo tenant, and the local test OpenID Provider on
# 127.0.0.1:9090 (accounts in tests/idp/README.md, password "secret"), so
# that a whole enrollment works out of the box, and a fake MDM on
# 127.0.0.1:9091 (contrib/demo/fake-mdm.mjs) behind the bridge's MDM proxy,
# so that `enrollbridge device-sim enroll` completes one end to end.
# Installs what is missing.
set -eu
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)

sh contrib/install-deps.sh runtime build demo
(cd tests/idp && npm ci --no-audit --no-fund --loglevel=error >&2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs" --target enrollbridge >&2
mkdir -p var/demo/state
chmod 700 var/demo/state

cfg=config/demo/enrollbridge.json
./build/enrollbridge check-config -c "$cfg"
url=$(sed -n 's/.*"public_url": *"\([^"]*\)".*/\1/p' "$cfg")

# The demo IdP: a real OpenID Provider, for this machine only.
node tests/idp/server.mjs --port 9090 --auto-consent \
	--client-id enrollbridge-demo --client-secret demo-client-secret \
	--redirect-uri "$url/t/demo/oidc/callback" >var/demo/idp.log 2>&1 &
idp=$!
# The demo MDM: answers check-ins and command polls, logs what it receives.
node contrib/demo/fake-mdm.mjs --port 9091 >var/demo/mdm.log 2>&1 &
mdm=$!
trap 'kill $idp $mdm 2>/dev/null' EXIT INT TERM

cat <<EOT

enrollbridge demo
  listening on:   $url   (config: $cfg)
  discovery URL:  $url/.well-known/com.apple.remotemanagement?user-identifier=alice@contoso.com&model-family=iPhone
  try it:         curl -i '$url/t/demo/.well-known/com.apple.remotemanagement?user-identifier=alice@contoso.com&model-family=iPhone'
  check it:       ./build/enrollbridge discover alice@contoso.com --base $url
  enroll a device: ./build/enrollbridge device-sim enroll alice@contoso.com --base $url --login alice@contoso.com --password secret
  demo IdP:       http://127.0.0.1:9090 (alice@contoso.com / secret)   log: var/demo/idp.log
  fake MDM:       http://127.0.0.1:9091   log: var/demo/mdm.log
  stop:           Ctrl-C

EOT
./build/enrollbridge serve -c "$cfg"
