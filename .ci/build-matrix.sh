#!/bin/sh
# Builds zinc (and its unit tests) in every CMake build type and with Debian's packaging
# flags, each with -Werror, and fails if any compiler or linker warning shows up. Not part
# of make test (it compiles the tree eight times); run it after touching flags or a
# compiler upgrade:  .ci/build-matrix.sh [build root, default /tmp/zinc-matrix]
set -eu
cd "$(dirname "$0")/.."
root="${1:-/tmp/zinc-matrix}"
jobs="${JOBS:-$(nproc)}"
mkdir -p "$root"

# Debian's flags for a package built with every hardening feature.
deb() { DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get "$1"; }
fortify3() { echo "$1" | sed 's/-D_FORTIFY_SOURCE=2/-U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=3/'; }

failed=""
# build <name> <cmake args...>; CFLAGS/CPPFLAGS/LDFLAGS come from the environment
build() {
    name=$1
    shift
    dir="$root/$name"
    log="$dir.log"
    rm -rf "$dir"
    start=$(date +%s)
    if cmake -S . -B "$dir" -DZN_WERROR=ON "$@" >"$log" 2>&1 &&
        cmake --build "$dir" -j"$jobs" >>"$log" 2>&1 && ! grep -qi 'warning' "$log"; then
        echo "ok    $name ($(($(date +%s) - start)) s)"
    else
        echo "FAIL  $name (see $log)"
        grep -i -m 20 'warning\|error' "$log" || true
        failed="$failed $name"
    fi
}

for t in Debug Release RelWithDebInfo MinSizeRel; do
    CFLAGS="" CPPFLAGS="" LDFLAGS="" build "$t" -DCMAKE_BUILD_TYPE="$t"
done
CFLAGS="" CPPFLAGS="" LDFLAGS="" build asan -DCMAKE_BUILD_TYPE=Debug -DZN_SANITIZE=ON

# dpkg-buildflags puts CPPFLAGS apart; CMake only reads CFLAGS, so both go there.
cflags="$(deb CPPFLAGS) $(deb CFLAGS)"
ldflags="$(deb LDFLAGS)"
CFLAGS="$cflags" LDFLAGS="$ldflags" build deb-O2 -DCMAKE_BUILD_TYPE=None
CFLAGS="$(fortify3 "$cflags")" LDFLAGS="$ldflags" build deb-O2-fortify3 -DCMAKE_BUILD_TYPE=None
CFLAGS="$(fortify3 "$cflags") -O3" LDFLAGS="$ldflags" build deb-O3-fortify3 -DCMAKE_BUILD_TYPE=None

[ -z "$failed" ] || { echo "failed:$failed"; exit 1; }
