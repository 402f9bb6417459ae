#!/usr/bin/env bash
# HTTP benchmark, run on purpose (never in CI): builds Release, then bench.py starts Weft's demo,
# nginx and h2o on 127.0.0.1, runs wrk against each (interleaved, 3 repetitions: -t1 -c50,
# -t1 -c256, 16-deep pipelining at 256 connections), holds 10,000 idle keep-alive connections
# per server, prints a table, and ends every process it started.
# Usage: bench/http/run.sh [--duration S] [--reps N] [--idle N]
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/install-deps.sh build test bench  # wrk comes with the test set, nginx and h2o with bench
build=${WEFT_BENCH_BUILD:-build-bench-http}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DWEFT_BUILD_TESTS=OFF \
    -DWEFT_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j "${WEFT_BENCH_JOBS:-2}" --target weft_http_demo
exec python3 bench/http/bench.py --weft "$build/examples/weft_http_demo" "$@"
