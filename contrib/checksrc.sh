#!/bin/sh
# Source guardrails (after curl's checksrc), run by contrib/test.sh and by
# ctest (checksrc/tree):
#
#   banned   no call of an unbounded or non-reentrant libc function in src/
#            and providers/ (outside comments and literals), one reason line
#            per hit
#   symbols  every global symbol the build defines (the core library and
#            main.o, by nm) starts with eb_, but those in
#            contrib/checksrc.allow (ASan's __odr_asan.NAME counts as NAME)
#   headers  every file of src/ and providers/ opens with its header
#            comment, and src/main.c's header names every subcommand of its
#            commands[] table
#   format   clang-format --dry-run -Werror on every tracked .c and .h
#
# usage: checksrc.sh [-C SOURCE_DIR] [-b BUILD_DIR] [CHECK ...]
# With no CHECK, all four (symbols needs BUILD_DIR, default SOURCE_DIR/build,
# built). Exit 0 when clean, 1 with every finding on stderr, 2 usage.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
src=$top
bld=
while getopts C:b: o; do
	case $o in
	C) src=$(cd "$OPTARG" && pwd) ;;
	b) bld=$OPTARG ;;
	*)
		echo "usage: checksrc.sh [-C SOURCE_DIR] [-b BUILD_DIR] [CHECK ...]" >&2
		exit 2
		;;
	esac
done
shift $((OPTIND - 1))
[ -n "$bld" ] || bld=$src/build
[ $# -gt 0 ] || set -- banned symbols headers format
bad=0

# The C files of dirs under src (tracked ones in a git checkout).
c_files() {
	if [ "$(git -C "$src" rev-parse --show-toplevel 2>/dev/null)" = "$src" ]; then
		(cd "$src" && git ls-files -- "$@")
	else
		for d in "$@"; do
			case $d in
			*/*) (cd "$src" && [ ! -d "${d%%/*}" ] ||
			    find "${d%%/*}" -type f -name "${d##*/}") ;;
			*) (cd "$src" && find . -type f -name "$d" | sed 's|^\./||') ;;
			esac
		done | sort
	fi
}

# Blank comments and string/character literals, keeping line numbers.
strip_c() {
	awk '{
		line = $0; out = ""; n = length(line); i = 1
		while (i <= n) {
			c = substr(line, i, 1); d = substr(line, i, 2)
			if (inc) {
				if (d == "*/") { inc = 0; i += 2 } else i++
				out = out " "
				continue
			}
			if (d == "/*") { inc = 1; i += 2; out = out " "; continue }
			if (d == "//") break
			if (c == "\"" || c == "\047") {
				q = c; out = out q; i++
				while (i <= n && substr(line, i, 1) != q)
					i += substr(line, i, 1) == "\\" ? 2 : 1
				out = out q; i++
				continue
			}
			out = out c; i++
		}
		print out
	}' "$1"
}

# name<TAB>reason
banned_list() {
	cat <<'EOF'
strcpy	no bound: snprintf, or memcpy with a checked length, or eb_buf
strcat	no bound: snprintf at the end, or eb_buf
strncpy	may leave the result without its NUL: snprintf or memcpy
strncat	its bound is the room left, easy to get wrong: snprintf or eb_buf
sprintf	no bound: snprintf or eb_buf_printf
vsprintf	no bound: vsnprintf or eb_buf_vprintf
gets	no bound at all: fgets or getline
atoi	no error report, undefined on overflow: strtol with checks
atol	no error report, undefined on overflow: strtol with checks
atoll	no error report, undefined on overflow: strtoll with checks
atof	no error report: strtod with checks
strtok	hidden state, not thread-safe: strtok_r or strsep
tmpnam	racy temporary name: mkstemp
tempnam	racy temporary name: mkstemp
mktemp	racy temporary name: mkstemp
asctime	static buffer, not thread-safe: strftime with gmtime_r
ctime	static buffer, not thread-safe: strftime with localtime_r
gmtime	static buffer, not thread-safe: gmtime_r
localtime	static buffer, not thread-safe: localtime_r
rand	predictable: eb_rand (core/rand.h)
srand	predictable: eb_rand (core/rand.h)
alloca	unbounded stack use: eb_malloc
EOF
}

check_banned() {
	names=$(banned_list | cut -f1 | paste -sd'|' -)
	for f in $(c_files 'src/*.c' 'src/*.h' 'providers/*.c' 'providers/*.h'); do
		strip_c "$src/$f" |
		    grep -nE "(^|[^A-Za-z0-9_.>])($names)[[:space:]]*\(" |
		    while IFS= read -r hit; do
			n=${hit%%:*}
			for w in $(banned_list | cut -f1); do
				if printf '%s\n' "${hit#*:}" |
				    grep -qE "(^|[^A-Za-z0-9_.>])${w}[[:space:]]*\("; then
					why=$(banned_list | awk -F'\t' -v w="$w" '$1 == w {print $2}')
					echo "$f:$n: banned $w(): $why"
				fi
			done
		done
	done >"$tmp/banned"
	if [ -s "$tmp/banned" ]; then
		cat "$tmp/banned" >&2
		bad=1
	fi
}

check_symbols() {
	allow=$top/contrib/checksrc.allow
	objs=
	for o in "$bld/libebcore.a" "$bld/CMakeFiles/enrollbridge.dir/src/main.c.o"; do
		if [ ! -f "$o" ]; then
			echo "checksrc: $o: not built (build first, or -b BUILD_DIR)" >&2
			bad=1
			return
		fi
		objs="$objs $o"
	done
	# shellcheck disable=SC2086
	nm -g --defined-only $objs |
	    awk 'NF == 3 && $2 ~ /^[A-Z]$/ {print $3}' |
	    sed 's/^__odr_asan\.//' | sort -u |
	    grep -v '^eb_' >"$tmp/syms" || true
	grep -v '^#' "$allow" | grep . | sort -u >"$tmp/allow" || true
	comm -23 "$tmp/syms" "$tmp/allow" | while IFS= read -r s; do
		echo "symbol $s: exported without the eb_ prefix (make it static, or prefix it)"
	done >"$tmp/badsyms"
	if [ -s "$tmp/badsyms" ]; then
		cat "$tmp/badsyms" >&2
		bad=1
	fi
}

check_headers() {
	for f in $(c_files 'src/*.c' 'src/*.h' 'providers/*.c' 'providers/*.h'); do
		[ "$(head -c 2 "$src/$f")" = "/*" ] ||
		    echo "$f:1: no header comment (what the file is for)"
	done >"$tmp/headers"
	if [ -f "$src/src/main.c" ]; then
		awk '/^\/\*/ {h = 1} h {print} /\*\// {exit}' "$src/src/main.c" >"$tmp/mainhdr"
		sed -n '/^} commands\[\] = {/,/^};/p' "$src/src/main.c" |
		    sed -n 's/^[[:space:]]*{"\([a-z-]*\)",.*/\1/p' |
		    while IFS= read -r c; do
			grep -qw -- "$c" "$tmp/mainhdr" ||
			    echo "src/main.c:1: the header does not name the subcommand $c"
		    done >>"$tmp/headers"
	fi
	if [ -s "$tmp/headers" ]; then
		cat "$tmp/headers" >&2
		bad=1
	fi
}

check_format() {
	if ! command -v clang-format >/dev/null 2>&1; then
		echo "checksrc: clang-format not found (contrib/install-deps.sh)" >&2
		bad=1
		return
	fi
	# shellcheck disable=SC2046
	if ! (cd "$src" && c_files '*.c' '*.h' | xargs -r clang-format --dry-run -Werror); then
		echo "checksrc: not formatted: run clang-format -i on the files above" >&2
		bad=1
	fi
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for c in "$@"; do
	case $c in
	banned | symbols | headers | format) "check_$c" ;;
	*)
		echo "checksrc: unknown check $c" >&2
		exit 2
		;;
	esac
done
exit $bad
