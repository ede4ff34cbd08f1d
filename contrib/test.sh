#!/bin/sh
# The whole test suite from a fresh Debian 12 machine: install what is
# missing, build twice (optimised, and with ASan+UBSan), run the unit tests,
# the fuzz-corpus replays and the integration tests (real binary, real test
# IdP) under the sanitizers, and the fast tests again on the optimised build.
# A throwaway PostgreSQL (contrib/pg-test.sh) serves both legs through
# EB_TEST_PG; under CI=true a PostgreSQL that does not start fails the run
# (the PostgreSQL tests must never be skipped there), elsewhere they skip.
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
jobs=$(nproc 2>/dev/null || echo 2)

sh contrib/install-deps.sh
if [ -f tests/idp/package-lock.json ]; then
	echo "== test IdP: npm ci" >&2
	(cd tests/idp && npm ci --no-audit --no-fund --loglevel=error >&2)
fi
if [ -f tests/docs/package-lock.json ]; then
	echo "== documentation checks: npm ci" >&2
	(cd tests/docs && npm ci --no-audit --no-fund --loglevel=error >&2)
fi
if [ -f tests/browser/package-lock.json ]; then
	echo "== browser test driver: npm ci" >&2
	(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error >&2)
fi

echo "== source checks (banned functions, headers, format)" >&2
sh contrib/checksrc.sh banned headers format
echo "== build (optimised)" >&2
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs" >&2
echo "== exported symbols (eb_ prefix)" >&2
sh contrib/checksrc.sh -b build symbols
echo "== build (ASan+UBSan)" >&2
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DEB_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs" >&2

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

echo "== throwaway PostgreSQL" >&2
pg_t0=$(date +%s%N)
if pg_env=$(sh contrib/pg-test.sh start); then
	eval "$pg_env"
	trap 'sh "$top/contrib/pg-test.sh" stop "$EB_PG_DIR"' EXIT
	trap 'exit 130' INT TERM
	echo "== PostgreSQL up in $((($(date +%s%N) - pg_t0) / 1000000)) ms" >&2
elif [ "${CI:-}" = true ]; then
	echo "test.sh: PostgreSQL did not start; CI needs the PostgreSQL tests" >&2
	exit 1
else
	echo "test.sh: PostgreSQL did not start; its tests will skip" >&2
fi

echo "== unit and fuzz-replay tests (optimised build)" >&2
(cd build && ctest --output-on-failure -j"$jobs" -E '^integration/')
echo "== all tests (sanitizer build)" >&2
cd "$top/build-asan"
ctest --output-on-failure -j"$jobs" --timeout 900
