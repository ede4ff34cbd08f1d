#!/bin/sh
# A throwaway PostgreSQL cluster for the tests: initdb in a fresh mktemp
# folder, listening on 127.0.0.1 and a Unix socket in that folder only, on a
# free port, with fsync off (the tests kill bridge replicas, never
# PostgreSQL) and room for 300 connections. PostgreSQL refuses to run as
# root: as root the cluster runs as the `postgres` user (runuser), otherwise
# as the caller, so a developer without root can use it too.
#
#   eval "$(contrib/pg-test.sh start)"   start one; prints the shell lines
#                                        that export EB_TEST_PG (a libpq
#                                        key=value DSN) and EB_PG_DIR
#   contrib/pg-test.sh env [DIR]         print those lines again
#   contrib/pg-test.sh stop [DIR]        stop it (pg_ctl, else its PID) and
#                                        remove the folder
#   contrib/pg-test.sh pause [DIR]       stop the server, keep the cluster
#   contrib/pg-test.sh resume [DIR]      start it again, same port and options
#                                        (outage tests)
#
# DIR defaults to $EB_PG_DIR. Diagnostics go to stderr; a failure to start
# exits non-zero after printing the server log.
#
# For benchmarks: EB_PG_DURABLE=1 starts the cluster with PostgreSQL's (and
# Debian's) defaults instead, fsync=on, synchronous_commit=on and
# full_page_writes=on; EB_PG_OPTS adds server options ("-c name=value ...",
# after the others, so they win).
set -eu

pgbin() {
	if [ -n "${EB_PG_BIN:-}" ]; then
		echo "$EB_PG_BIN"
		return
	fi
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	if [ -z "$d" ]; then
		d=$(dirname "$(command -v pg_ctl 2>/dev/null || echo /nonexistent/x)")
	fi
	[ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] || {
		echo "pg-test: no initdb/pg_ctl found (install postgresql)" >&2
		return 1
	}
	echo "$d"
}

# Run a command as the cluster's owner: `postgres` when we are root.
as_pg() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# A TCP port nobody listens on now (a race remains; start retries).
free_port() {
	if command -v python3 >/dev/null 2>&1; then
		python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null && return
	fi
	echo $((20000 + ($(od -An -N2 -tu2 /dev/urandom) % 30000)))
}

print_env() {
	dir=$1
	[ -f "$dir/dsn" ] || {
		echo "pg-test: no cluster in $dir" >&2
		return 1
	}
	printf "EB_TEST_PG='%s'; EB_PG_DIR='%s'; export EB_TEST_PG EB_PG_DIR\n" \
	    "$(cat "$dir/dsn")" "$dir"
}

start() {
	bin=$(pgbin)
	dir=$(mktemp -d "${TMPDIR:-/tmp}/eb-pg.XXXXXX")
	if [ "$(id -u)" = 0 ]; then
		id postgres >/dev/null 2>&1 || {
			echo "pg-test: running as root needs the postgres user" >&2
			rm -rf "$dir"
			return 1
		}
		chown postgres: "$dir"
		runuser -u postgres -- test -w "$dir" || {
			echo "pg-test: the postgres user cannot reach $dir;" \
			    "set TMPDIR to a folder it can" >&2
			rm -rf "$dir"
			return 1
		}
	fi
	if ! as_pg "$bin/initdb" -D "$dir/data" -A trust -U eb -E UTF8 \
	    --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1; then
		echo "pg-test: initdb failed:" >&2
		cat "$dir/initdb.log" >&2
		rm -rf "$dir"
		return 1
	fi
	extra=""
	if [ -f "$("$bin/pg_config" --pkglibdir 2>/dev/null)/pg_stat_statements.so" ]; then
		extra="-c shared_preload_libraries=pg_stat_statements"
	fi
	durability="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
	if [ "${EB_PG_DURABLE:-0}" = 1 ]; then
		durability="-c fsync=on -c synchronous_commit=on -c full_page_writes=on"
	fi
	tries=0
	while :; do
		port=$(free_port)
		opts="-k $dir -p $port -c listen_addresses=127.0.0.1 \
		    $durability -c max_connections=300 $extra ${EB_PG_OPTS:-}"
		if as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/data/server.log" \
		    -w -t 30 -o "$opts" start >"$dir/pg_ctl.log" 2>&1; then
			printf '%s\n' "$opts" >"$dir/opts"
			break
		fi
		tries=$((tries + 1))
		if [ "$tries" -ge 3 ]; then
			echo "pg-test: PostgreSQL did not start:" >&2
			cat "$dir/pg_ctl.log" "$dir/data/server.log" >&2 || true
			stop "$dir"
			return 1
		fi
	done
	echo "host=$dir port=$port user=eb dbname=postgres" >"$dir/dsn"
	echo "pg-test: PostgreSQL on 127.0.0.1:$port and $dir" >&2
	print_env "$dir"
}

stop() {
	dir=${1:-${EB_PG_DIR:-}}
	[ -n "$dir" ] && [ -d "$dir" ] || return 0
	case $dir in
	*/eb-pg.*) ;;
	*)
		echo "pg-test: refusing to remove $dir" >&2
		return 1
		;;
	esac
	if [ -f "$dir/data/postmaster.pid" ]; then
		bin=$(pgbin) || bin=""
		if [ -z "$bin" ] || ! as_pg "$bin/pg_ctl" -D "$dir/data" \
		    -m immediate -w -t 10 stop >/dev/null 2>&1; then
			pid=$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null || true)
			case $pid in
			'' | *[!0-9]*) ;;
			*) kill -9 "$pid" 2>/dev/null || true ;;
			esac
		fi
	fi
	rm -rf "$dir"
}

# Stop the server (fast: sessions are cut) but keep the cluster.
pause() {
	dir=${1:-${EB_PG_DIR:-}}
	[ -f "$dir/opts" ] || {
		echo "pg-test: no cluster in $dir" >&2
		return 1
	}
	as_pg "$(pgbin)/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null
}

# Start a paused server again with the options it was started with.
resume() {
	dir=${1:-${EB_PG_DIR:-}}
	[ -f "$dir/opts" ] || {
		echo "pg-test: no cluster in $dir" >&2
		return 1
	}
	as_pg "$(pgbin)/pg_ctl" -D "$dir/data" -l "$dir/data/server.log" \
	    -w -t 30 -o "$(cat "$dir/opts")" start >"$dir/pg_ctl.log" 2>&1 || {
		cat "$dir/pg_ctl.log" >&2
		return 1
	}
}

case ${1:-} in
start) start ;;
pause) pause "${2:-}" ;;
resume) resume "${2:-}" ;;
stop) stop "${2:-}" ;;
env) print_env "${2:-${EB_PG_DIR:-}}" ;;
*)
	echo "usage: $0 start|stop [DIR]|env [DIR]" >&2
	exit 2
	;;
esac
