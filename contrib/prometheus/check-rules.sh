#!/bin/sh
# The alert rules (alerts.yml) as promtool sees them: their syntax
# (check rules) and their unit tests (test rules alerts.test.yml). promtool
# comes with Debian's prometheus package (contrib/install-deps.sh). Without
# it: skipped (77) for a developer, a failure under CI.
set -eu
cd "$(dirname "$0")"
if ! command -v promtool >/dev/null 2>&1; then
	if [ -n "${CI:-}" ]; then
		echo "check-rules: promtool missing; CI needs it (apt-get install prometheus)" >&2
		exit 1
	fi
	echo "check-rules: promtool missing (apt-get install prometheus): skipped" >&2
	exit 77
fi
promtool check rules alerts.yml
promtool test rules alerts.test.yml
