#!/usr/bin/env bash
# HTTP benchmark, run on purpose (never in CI): builds the weft server (Release) and the floor
# (bench/floor/floor.c, with the system cc), then bench.py starts weft (embedded default
# configuration, watchdog on), the floor, nginx and h2o on 127.0.0.1, runs wrk against each
# (interleaved, 3 repetitions: 16-deep pipelining at 256 connections, -t1 -c50), holds 10,000
# idle keep-alive connections per server, prints req/s, p99 and server CPU per request with
# each server's ratio to the floor, and ends every process it started.
# Usage: bench/http/run.sh [--duration S] [--reps N] [--idle N] [--shapes pipelined,c50,c256]
#                          [--servers weft,floor,nginx,h2o]        (bench.py --help: all options)
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/install-deps.sh build test bench  # wrk comes with the test set, nginx and h2o with bench
build=${WEFT_BENCH_BUILD:-build-bench-http}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DWEFT_BUILD_TESTS=OFF \
    -DWEFT_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j "${WEFT_BENCH_JOBS:-2}" --target weft weft_demo
mkdir -p "$build/bench/floor"
cc -O2 -std=c11 -Wall -Wextra -o "$build/bench/floor/floor" bench/floor/floor.c -luring -lpthread
exec python3 bench/http/bench.py --weft "$build/bin/weft" --floor "$build/bench/floor/floor" "$@"
