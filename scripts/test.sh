#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite:
#   1. Release build, every test (each core/http test once per I/O backend);
#   2. ASan+UBSan build, every test;
#   3. TSan build, the cross-thread tests (label "tsan").
# Set WEFT_TEST_STAGES to a subset ("release asan tsan") to run fewer.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh build test
jobs=$(nproc)
stages=${WEFT_TEST_STAGES:-"release asan tsan"}
start=$(date +%s)

stage() { echo; echo "=== $* ($(( $(date +%s) - start ))s) ==="; }

for s in $stages; do
    case "$s" in
    release)
        stage "Release build and tests"
        cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
        cmake --build build -j "$jobs"
        ctest --test-dir build --output-on-failure -j "$jobs"
        ;;
    asan)
        stage "ASan+UBSan build and tests"
        cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
            -DWEFT_SANITIZE="address;undefined" -DWEFT_BUILD_BENCH=OFF >/dev/null
        cmake --build build-asan -j "$jobs"
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
            ctest --test-dir build-asan --output-on-failure -j "$jobs" -LE no-asan
        ;;
    tsan)
        stage "TSan build and cross-thread tests"
        cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
            -DWEFT_SANITIZE=thread -DWEFT_BUILD_BENCH=OFF >/dev/null
        cmake --build build-tsan -j "$jobs"
        TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
            ctest --test-dir build-tsan --output-on-failure -j "$jobs" -L tsan
        ;;
    *) echo "unknown stage '$s' (allowed: release asan tsan)" >&2; exit 2 ;;
    esac
done
stage "all stages passed"
