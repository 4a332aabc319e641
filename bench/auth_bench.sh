#!/bin/sh
# bench/auth_bench.sh - what Basic auth costs on the hot path: manifest GET requests per
# second (wrk) against zinc without authentication, and against zinc with an htpasswd file
# holding a bcrypt (cost 10) hash and every request carrying the header, as docker, podman
# and skopeo do. Thanks to the credential cache the second figure should stay close to the
# first (issue 4: at least 80%).
#
# Both servers stay up side by side (an idle zinc costs nothing) and the wrk runs
# alternate between them, so a busy neighbour on a shared machine hurts both figures
# alike; the best round of each is reported.
#
#   bench/auth_bench.sh [path/to/zinc]
#   env: DURATION (10s), CONNECTIONS (32), THREADS (2), WORKERS (zinc http.workers, 0 = CPUs),
#        ROUNDS (3)
#
# Needs curl, wrk, sha256sum, python3, and htpasswd (apache2-utils) or python3's crypt.
# Loopback only.
set -eu

ZINC=${1:-build/server/zinc}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
WORKERS=${WORKERS:-0}
ROUNDS=${ROUNDS:-3}
REPO=bench/auth
USER_NAME=bench
PASS=bench-Pw-1

[ -x "$ZINC" ] || { echo "no zinc binary at $ZINC" >&2; exit 2; }
for tool in curl wrk sha256sum python3; do
    command -v $tool >/dev/null || { echo "$tool is needed" >&2; exit 2; }
done

DIR=$(mktemp -d /tmp/zinc-auth-bench.XXXXXX)
PIDS=
cleanup() {
    for p in $PIDS; do
        kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

if command -v htpasswd >/dev/null; then
    htpasswd -nbB -C 10 "$USER_NAME" "$PASS" >"$DIR/htpasswd"
else
    python3 -W ignore -c 'import crypt, sys; print(sys.argv[1] + ":" + crypt.crypt(sys.argv[2], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 10)))' \
        "$USER_NAME" "$PASS" >"$DIR/htpasswd"
fi
CRED="Authorization: Basic $(printf '%s:%s' "$USER_NAME" "$PASS" | base64 | tr -d '\n')"

# start NAME PORT [auth]: a server with its own root, config and log under $DIR/NAME
start() {
    auth=
    [ "${3:-}" = auth ] && auth=", \"auth\": {\"htpasswd\": {\"path\": \"$DIR/htpasswd\"}}"
    mkdir -p "$DIR/$1"
    cat >"$DIR/$1/config.json" <<EOF
{"distSpecVersion": "1.1.1",
 "storage": {"rootDirectory": "$DIR/$1/root"},
 "http": {"address": "127.0.0.1", "port": "$2", "workers": $WORKERS$auth},
 "log": {"level": "error"}}
EOF
    "$ZINC" serve "$DIR/$1/config.json" >>"$DIR/$1/zinc.log" 2>&1 &
    PIDS="$PIDS $!"
    i=0
    until curl -fs "http://127.0.0.1:$2/readyz" >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -lt 200 ] || { echo "zinc did not start:" >&2; cat "$DIR/$1/zinc.log" >&2; exit 1; }
        sleep 0.05
    done
}

# push_image URL [curl args]: a config blob and a manifest naming it (POST, then PUT)
push_image() {
    url=$1
    shift
    printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$DIR/config.blob"
    size=$(wc -c <"$DIR/config.blob")
    digest=sha256:$(sha256sum "$DIR/config.blob" | cut -d' ' -f1)
    loc=$(curl -fsS "$@" -X POST -D - -o /dev/null "$url/v2/$REPO/blobs/uploads/" | tr -d '\r' |
        sed -n 's/^[Ll]ocation: //p')
    case "$loc" in http*) ;; *) loc=$url$loc ;; esac
    case "$loc" in *\?*) sep='&' ;; *) sep='?' ;; esac
    curl -fsS "$@" -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$DIR/config.blob" \
        "$loc${sep}digest=$digest" >/dev/null
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[]}' \
        "$digest" "$size" >"$DIR/manifest.json"
    curl -fsS "$@" -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
        --data-binary "@$DIR/manifest.json" "$url/v2/$REPO/manifests/latest" >/dev/null
}

# measure URL [wrk -H args]: requests/s of manifest GETs; any non-2xx answer is an error
measure() {
    url=$1
    shift
    wrk -t "$THREADS" -c "$CONNECTIONS" -d "$DURATION" -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        "$@" "$url/v2/$REPO/manifests/latest" >"$DIR/wrk.out"
    if grep -q 'Non-2xx' "$DIR/wrk.out"; then
        echo "wrk saw errors:" >&2
        cat "$DIR/wrk.out" >&2
        exit 1
    fi
    awk '/^Requests\/sec:/ {print $2}' "$DIR/wrk.out"
}

max() {
    awk -v x="$1" -v y="$2" 'BEGIN { print (x > y ? x : y) }'
}

OPEN_PORT=$(free_port)
start open "$OPEN_PORT"
AUTH_PORT=$(free_port)
start auth "$AUTH_PORT" auth
OPEN=http://127.0.0.1:$OPEN_PORT
AUTH=http://127.0.0.1:$AUTH_PORT
push_image "$OPEN"
# the credential is verified once here (one bcrypt); from then on it is served from the cache
push_image "$AUTH" -H "$CRED"
status=$(curl -s -o /dev/null -w '%{http_code}' "$AUTH/v2/$REPO/manifests/latest")
[ "$status" = 401 ] || { echo "auth server: anonymous GET answered $status, expected 401" >&2; exit 1; }

best_open=0
best_auth=0
for round in $(seq "$ROUNDS"); do
    o=$(measure "$OPEN")
    a=$(measure "$AUTH" -H "$CRED")
    echo "round $round: without auth $o req/s, with auth $a req/s"
    best_open=$(max "$o" "$best_open")
    best_auth=$(max "$a" "$best_auth")
done

echo "manifest GET, $CONNECTIONS connections, $DURATION x $ROUNDS rounds, best round of each:"
echo "  without auth:              $best_open req/s"
echo "  with bcrypt htpasswd auth: $best_auth req/s"
awk -v a="$best_auth" -v o="$best_open" 'BEGIN { printf "  ratio: %.1f%%\n", 100 * a / o }'
