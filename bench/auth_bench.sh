#!/bin/sh
# bench/auth_bench.sh - what Basic auth costs on the hot path: manifest GET requests per
# second with wrk against zinc without authentication, then against the same storage with
# an htpasswd file holding a bcrypt (cost 10) hash and every request carrying the header,
# as docker, podman and skopeo do. Thanks to the credential cache the second figure should
# stay close to the first (issue: at least 80%).
#
#   bench/auth_bench.sh [path/to/zinc]
#   env: DURATION (10s), CONNECTIONS (32), THREADS (2), WORKERS (zinc http.workers, 0 = CPUs)
#
# Needs curl, wrk, htpasswd (apache2-utils) or python3's crypt, sha256sum. Loopback only.
set -eu

ZINC=${1:-build/server/zinc}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
WORKERS=${WORKERS:-0}
REPO=bench/auth
USER_NAME=bench
PASS=bench-Pw-1

[ -x "$ZINC" ] || { echo "no zinc binary at $ZINC" >&2; exit 2; }
for tool in curl wrk sha256sum python3; do
    command -v $tool >/dev/null || { echo "$tool is needed" >&2; exit 2; }
done

DIR=$(mktemp -d /tmp/zinc-auth-bench.XXXXXX)
PID=
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT

if command -v htpasswd >/dev/null; then
    htpasswd -nbB -C 10 "$USER_NAME" "$PASS" >"$DIR/htpasswd"
else
    python3 -W ignore -c 'import crypt, sys; print(sys.argv[1] + ":" + crypt.crypt(sys.argv[2], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 10)))' \
        "$USER_NAME" "$PASS" >"$DIR/htpasswd"
fi

# config.json: $1 = "auth" or "open"
write_config() {
    auth=
    [ "$1" = auth ] && auth=",\"auth\": {\"htpasswd\": {\"path\": \"$DIR/htpasswd\"}}"
    cat >"$DIR/config.json" <<EOF
{"distSpecVersion": "1.1.1",
 "storage": {"rootDirectory": "$DIR/root"},
 "http": {"address": "127.0.0.1", "port": "$PORT", "workers": $WORKERS $auth},
 "log": {"level": "error"}}
EOF
}

start() {
    write_config "$1"
    "$ZINC" serve "$DIR/config.json" >>"$DIR/zinc.log" 2>&1 &
    PID=$!
    i=0
    until curl -fs "$URL/readyz" >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -lt 200 ] || { echo "zinc did not start:" >&2; cat "$DIR/zinc.log" >&2; exit 1; }
        sleep 0.05
    done
}

stop() {
    kill "$PID"
    wait "$PID" 2>/dev/null || true
    PID=
}

# A config blob and a manifest naming it, pushed with the OCI API (POST, then PUT).
push_image() {
    printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$DIR/config.blob"
    size=$(wc -c <"$DIR/config.blob")
    digest=sha256:$(sha256sum "$DIR/config.blob" | cut -d' ' -f1)
    loc=$(curl -fsS -X POST -D - -o /dev/null "$URL/v2/$REPO/blobs/uploads/" | tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
    case "$loc" in http*) ;; *) loc=$URL$loc ;; esac
    case "$loc" in *\?*) sep='&' ;; *) sep='?' ;; esac
    curl -fsS -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$DIR/config.blob" \
        "$loc${sep}digest=$digest" >/dev/null
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[]}' \
        "$digest" "$size" >"$DIR/manifest.json"
    curl -fsS -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
        --data-binary "@$DIR/manifest.json" "$URL/v2/$REPO/manifests/latest" >/dev/null
}

# Requests/s of manifest GETs; extra args are wrk -H headers.
measure() {
    # one request first: it must succeed, and with auth it pays the single bcrypt
    curl -fsS -o /dev/null "$@" "$URL/v2/$REPO/manifests/latest"
    wrk -t "$THREADS" -c "$CONNECTIONS" -d "$DURATION" -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        "$@" "$URL/v2/$REPO/manifests/latest" >"$DIR/wrk.out"
    if grep -q 'Non-2xx' "$DIR/wrk.out"; then
        echo "wrk saw errors:" >&2
        cat "$DIR/wrk.out" >&2
        exit 1
    fi
    awk '/^Requests\/sec:/ {print $2}' "$DIR/wrk.out"
}

start open
push_image
open_rps=$(measure)
stop

start auth
cred=$(printf '%s:%s' "$USER_NAME" "$PASS" | base64 | tr -d '\n')
status=$(curl -s -o /dev/null -w '%{http_code}' "$URL/v2/$REPO/manifests/latest")
[ "$status" = 401 ] || { echo "auth run: anonymous GET answered $status, expected 401" >&2; exit 1; }
auth_rps=$(measure -H "Authorization: Basic $cred")
stop

echo "manifest GET, $CONNECTIONS connections, $DURATION:"
echo "  without auth:              $open_rps req/s"
echo "  with bcrypt htpasswd auth: $auth_rps req/s"
awk -v a="$auth_rps" -v o="$open_rps" 'BEGIN { printf "  ratio: %.1f%%\n", 100 * a / o }'
