#!/usr/bin/env bash
# Installs the Debian packages Weft needs to build, test and benchmark, idempotently:
# one `apt-get update`, then `apt-get install -y` of only what is missing.
# Usage: scripts/install-deps.sh [build|test|bench|deploy]...   (default: build test)
set -euo pipefail

build_pkgs=(build-essential cmake pkg-config ninja-build
    libboost-context-dev liburing-dev node-llhttp
    libspdlog-dev libfmt-dev libtomlplusplus-dev libcli11-dev nlohmann-json3-dev
    libgtest-dev libgmock-dev libbenchmark-dev binutils libdw-dev libssl-dev zlib1g-dev)
# The cooperative-blocking test builds a plugin with libpq, libcurl and hiredis and runs it
# against a real PostgreSQL and Redis.
# ccache: scripts/test.sh compiles through it (see there).
test_pkgs=(ccache curl wrk python3 clang libclang-rt-14-dev prometheus procps iproute2 libcap2-bin
    postgresql libpq-dev redis-server libhiredis-dev libcurl4-openssl-dev util-linux
    nginx-light openssl python3-websockets chromium golang-go)
# The debug page's browser test drives Debian's chromium with npm's playwright-core, and
# `go tool pprof` (golang-go) reads the profiles; tests/js/package-lock.json pins the npm side.
# gevent with psycopg2 and psycogreen: the database-bound side-by-side benchmark; h2load
# (nghttp2-client) for HTTPS and Go's gorilla/websocket for the WebSocket benchmark.
bench_pkgs=(nginx-light h2o python3-gevent python3-psycopg2 python3-psycogreen golang-go
    nghttp2-client golang-github-gorilla-websocket-dev)
# catatonit: a pod's pause process (podman play kube); dnsname: compose services by name.
deploy_pkgs=(podman buildah runc mmdebstrap uidmap slirp4netns fuse-overlayfs podman-compose
    catatonit golang-github-containernetworking-plugin-dnsname prometheus)
# Node.js for the manifest validation: Debian's, unless a Node.js with its own npm is already
# here (Debian's npm package conflicts with such builds).
# The browser and WebSocket tests need it too (test set).
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    deploy_pkgs+=(nodejs npm)
    test_pkgs+=(nodejs npm)
fi

want=()
sets=("$@")
[ ${#sets[@]} -eq 0 ] && sets=(build test)
for s in "${sets[@]}"; do
    case "$s" in
        build) want+=("${build_pkgs[@]}") ;;
        test) want+=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
        bench) want+=("${bench_pkgs[@]}") ;;
        deploy) want+=("${deploy_pkgs[@]}") ;;
        *) echo "install-deps: unknown set '$s' (allowed: build test bench deploy)" >&2; exit 2 ;;
    esac
done

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "install-deps: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The test set's npm packages (playwright-core for the browser test, ws for WebSocket tests),
# exactly as tests/js/package-lock.json pins them; again only when something is missing.
# playwright-core downloads no browser here: the test points it at Debian's chromium.
for s in "${sets[@]}"; do
    [ "$s" = test ] || continue
    js="$(dirname "$0")/../tests/js"
    # The image's build stage runs this script before the sources are copied in.
    [ -f "$js/package-lock.json" ] || { echo "install-deps: no tests/js here; npm step skipped" >&2; continue; }
    if ! (cd "$js" && npm ls --all >/dev/null 2>&1); then
        echo "install-deps: npm ci in $js" >&2
        (cd "$js" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
    fi
done
