#!/bin/sh
# Build and run enrollbridge on its embedded defaults: SQLite under ./var/demo,
# config/demo/ with a demo tenant. Installs what is missing first.
set -eu
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)

sh contrib/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs" >&2
mkdir -p var/demo/state
chmod 700 var/demo/state

cfg=config/demo/enrollbridge.json
./build/enrollbridge check-config -c "$cfg"
url=$(sed -n 's/.*"public_url": *"\([^"]*\)".*/\1/p' "$cfg")
cat <<EOT

enrollbridge demo
  listening on:   $url   (config: $cfg)
  discovery URL:  $url/.well-known/com.apple.remotemanagement?user-identifier=alice@contoso.example&model-family=iPhone
  try it:         curl -i '$url/t/demo/.well-known/com.apple.remotemanagement?user-identifier=alice@contoso.example&model-family=iPhone'
  check it:       ./build/enrollbridge discover alice@contoso.example --base $url
  stop:           Ctrl-C

EOT
exec ./build/enrollbridge serve -c "$cfg"
