#!/bin/sh
# Installs the Debian packages zinc needs that are missing, and nothing else.
#   .ci/deps.sh build   compiler, CMake and the -dev libraries (make run)
#   .ci/deps.sh test    build + everything the test suite drives (make test)
#   .ci/deps.sh bench   test + load generators and the reference registry (make bench)
set -eu

BUILD="gcc make cmake pkg-config libc6-dev libh2o-evloop-dev libcurl4-openssl-dev libssl-dev libjansson-dev libargon2-dev
libcrypt-dev zlib1g-dev libprotobuf-c-dev protobuf-c-compiler libunwind-dev libdw-dev libelf-dev curl ca-certificates"
TEST="libcmocka-dev python3 python3-pytest python3-requests golang-go graphviz skopeo openssl
docker.io mmdebstrap uidmap apache2-utils wrk nginx-light docker-registry podman clang libclang-rt-14-dev
ceph-mon ceph-osd radosgw ceph-common"
# ceph-*/radosgw: test/s3/rgw.py runs a single-node RGW (S3) for the S3 driver tests; no ceph-mgr
# (it drags in Python modules the tests never use), installed without recommends like the rest.
# test/e2e/test_bench_harness.py runs the whole harness on tiny sizes, so the test set already
# holds everything `make bench` drives.
BENCH=""

case "${1:-build}" in
build) want="$BUILD" ;;
test) want="$BUILD $TEST" ;;
bench) want="$BUILD $TEST $BENCH" ;;
*) echo "usage: $0 build|test|bench" >&2; exit 2 ;;
esac

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive

# Go 1.23 (bookworm-backports) lets the trace tests check a current go tool trace too.
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
if [ "${1:-build}" != build ] && ! installed golang-1.23-go; then
    # Backports from the machine's own Debian mirror (.ci/apt-backports.sh copies the URIs
    # and Signed-By of its bookworm entry), added only if no backports entry exists yet.
    src=/etc/apt/sources.list.d/bookworm-backports.sources
    ok=1
    if [ ! -e "$src" ]; then
        if stanza=$("$(dirname "$0")/apt-backports.sh"); then
            [ -z "$stanza" ] || printf '%s\n' "$stanza" | $SUDO tee "$src" >/dev/null
        else
            ok=0
            echo "warning: no bookworm apt entry to take backports from; the Go 1.23 trace checks will be skipped" >&2
        fi
    fi
    if [ "$ok" = 1 ]; then
        echo "installing: golang-1.23-go (bookworm-backports)"
        $SUDO apt-get update -q >/dev/null
        $SUDO apt-get install -y -q --no-install-recommends -t bookworm-backports golang-1.23-go >/dev/null ||
            echo "warning: golang-1.23-go unavailable; the Go 1.23 trace checks will be skipped" >&2
    fi
fi

missing=""
for p in $want; do
    if ! installed "$p"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

echo "installing:$missing"
$SUDO apt-get update -q >/dev/null
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing >/dev/null
