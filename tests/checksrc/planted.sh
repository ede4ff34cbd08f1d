#!/bin/sh
# contrib/checksrc.sh must fail on what it exists to catch: a copy of one
# source file passes, the same copy with a strcpy planted fails with the
# reason line; a build whose library exports a name without eb_ fails the
# symbol check. usage: planted.sh SOURCE_DIR C_COMPILER
set -eu
top=$1
cc=${2:-cc}
chk=$top/contrib/checksrc.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() {
	echo "planted: $*" >&2
	exit 1
}

mkdir -p "$tmp/t/src/core"
cp "$top/src/core/str.c" "$tmp/t/src/core/str.c"
sh "$chk" -C "$tmp/t" banned headers || fail "the clean copy is refused"

cat >>"$tmp/t/src/core/str.c" <<'C'

/* strcpy(a, b) in a comment is fine, "strcpy(a, b)" in a string too */
void
planted(char *dst)
{
	strcpy(dst, "x");
}
C
if sh "$chk" -C "$tmp/t" banned 2>"$tmp/out"; then
	fail "a planted strcpy passed"
fi
grep -q '^src/core/str\.c:[0-9]*: banned strcpy(): ' "$tmp/out" ||
    fail "no reason line for the planted strcpy: $(cat "$tmp/out")"
[ "$(wc -l <"$tmp/out")" -eq 1 ] ||
    fail "comment or string counted: $(cat "$tmp/out")"

# symbols: a library exporting eb_ok and notours
mkdir -p "$tmp/b/CMakeFiles/enrollbridge.dir/src"
printf 'int eb_ok(void) { return 0; }\nint notours(void) { return 1; }\n' >"$tmp/lib.c"
printf 'int main(void) { return 0; }\n' >"$tmp/main.c"
"$cc" -c -o "$tmp/lib.o" "$tmp/lib.c"
"$cc" -c -o "$tmp/b/CMakeFiles/enrollbridge.dir/src/main.c.o" "$tmp/main.c"
ar rc "$tmp/b/libebcore.a" "$tmp/lib.o"
if sh "$chk" -b "$tmp/b" symbols 2>"$tmp/out"; then
	fail "an exported notours passed"
fi
grep -q '^symbol notours: ' "$tmp/out" || fail "notours not named: $(cat "$tmp/out")"
! grep -q 'eb_ok\|main' "$tmp/out" || fail "a good symbol refused: $(cat "$tmp/out")"
echo "planted: ok"
