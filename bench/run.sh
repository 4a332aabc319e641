#!/bin/sh
# bench/run.sh - `make bench`: zinc vs CNCF Distribution, plus this machine's ceilings.
#
# Builds bench/hload.c (HEAD load generator; Debian's wrk cannot do HEAD), checks the
# tools, then runs bench/bench.py, which prints one markdown table and inserts it into
# bench/RESULTS.md. Everything listens on 127.0.0.1 and lives in a temp dir removed at
# the end. Environment:
#   ZINC_BIN        zinc binary (default build/server/zinc, a RelWithDebInfo build)
#   BENCH_TINY=1    tiny sizes and 1 s load runs (what `make test` runs); not recorded
#   BENCH_SKIP      comma list of parts to leave out: dist, nginx, skopeo
#   BENCH_RESULTS   file to record the run in ("" = don't record)
#   BENCH_JSON      also write the raw numbers to this file
#   BENCH_KEEP_TMP=1 keep the temp dir (server logs, data)
#   BENCH_PROFILE=DIR  save zinc CPU profiles (its /v2/_zot/pprof/profile) per metric in DIR;
#                   a profiled run is not recorded
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
build=${BENCH_BUILD_DIR:-$repo/build}
ZINC_BIN=$(realpath -m "${ZINC_BIN:-$build/server/zinc}")
BENCH_HLOAD=$(realpath -m "${BENCH_HLOAD:-$build/bench/hload}")
export ZINC_BIN BENCH_HLOAD

if [ ! -x "$ZINC_BIN" ]; then
    echo "bench: no zinc binary at $ZINC_BIN (run 'make build' or set ZINC_BIN)" >&2
    exit 2
fi

need="wrk curl openssl cc"
case ",${BENCH_SKIP:-}," in *,dist,*) ;; *) need="$need docker-registry" ;; esac
case ",${BENCH_SKIP:-}," in *,nginx,*) ;; *) need="$need nginx" ;; esac
case ",${BENCH_SKIP:-}," in *,skopeo,*) ;; *) need="$need skopeo" ;; esac
for tool in $need; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "bench: $tool not found (make bench installs wrk nginx-light docker-registry skopeo)" >&2
        exit 2
    fi
done

if [ ! -x "$BENCH_HLOAD" ] || [ "$here/hload.c" -nt "$BENCH_HLOAD" ]; then
    mkdir -p "$(dirname "$BENCH_HLOAD")"
    # -Werror only under make test (ctest passes ZINC_WERROR=1), as for zinc itself
    werror=""
    [ "${ZINC_WERROR:-0}" = 1 ] && werror=-Werror
    cc -O2 -g -Wall -Wextra $werror -D_GNU_SOURCE -pthread -o "$BENCH_HLOAD.tmp" "$here/hload.c"
    mv "$BENCH_HLOAD.tmp" "$BENCH_HLOAD"
fi

exec /usr/bin/python3 "$here/bench.py" "$@"
