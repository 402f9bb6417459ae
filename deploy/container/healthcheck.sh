#!/bin/bash
# The image's health check: GET an admin endpoint (default /healthz on port 9090) and succeed on a
# 200. Uses bash's /dev/tcp, so the runtime image needs no HTTP client.
# Usage: weft-healthcheck [PATH [PORT [HOST]]]   (PORT defaults to $HEALTHCHECK_PORT, then 9090;
# not a WEFT_* variable: weft reads those as its configuration)
set -u
path=${1:-/healthz}
port=${2:-${HEALTHCHECK_PORT:-9090}}
host=${3:-127.0.0.1}

check() {
    exec 3<>"/dev/tcp/$host/$port" || return 1
    printf 'GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$path" "$host" >&3
    local status
    IFS=' ' read -r _ status _ <&3 || return 1
    [ "$status" = 200 ] || { echo "weft-healthcheck: $path answered $status" >&2; return 1; }
}
# Bounded: a server that accepts but never answers is unhealthy too.
export -f check
export path port host
exec timeout 3 bash -c check
