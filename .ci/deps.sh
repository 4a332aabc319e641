#!/bin/sh
# Installs the Debian packages zinc needs that are missing, and nothing else.
#   .ci/deps.sh build   compiler, CMake and the -dev libraries (make run)
#   .ci/deps.sh test    build + everything the test suite drives (make test)
#   .ci/deps.sh bench   test + load generators and the reference registry (make bench)
set -eu

BUILD="gcc make cmake pkg-config libc6-dev libh2o-evloop-dev libssl-dev libjansson-dev libargon2-dev
libcrypt-dev zlib1g-dev libprotobuf-c-dev protobuf-c-compiler libunwind-dev libdw-dev libelf-dev curl ca-certificates"
TEST="libcmocka-dev python3 python3-pytest python3-requests golang-go graphviz skopeo openssl
docker.io mmdebstrap uidmap apache2-utils wrk nginx-light docker-registry"
# test/e2e/test_bench_harness.py runs the whole harness on tiny sizes, so the test set already
# holds everything `make bench` drives.
BENCH=""

case "${1:-build}" in
build) want="$BUILD" ;;
test) want="$BUILD $TEST" ;;
bench) want="$BUILD $TEST $BENCH" ;;
*) echo "usage: $0 build|test|bench" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing >/dev/null
