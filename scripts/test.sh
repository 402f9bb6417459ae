#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite, stage by stage:
#   release  Release build; every test but the container ones (each core/http test runs once
#            per I/O backend)
#   asan     ASan+UBSan build; every test that runs in-process or starts the weft binary
#   tsan     TSan build; the cross-thread tests (label "tsan")
#   fuzz     the HTTP request-path fuzzer (clang, libFuzzer, ASan+UBSan) for WEFT_FUZZ_SECONDS (60)
#   deploy   the container image, seccomp, Kubernetes, Prometheus and Grafana checks (label
#            "deploy", podman)
# WEFT_TEST_STAGES picks a subset, e.g. WEFT_TEST_STAGES="release asan".
set -euo pipefail
cd "$(dirname "$0")/.."
stages=${WEFT_TEST_STAGES:-"release asan tsan fuzz deploy"}
sets="build test"
case " $stages " in *" deploy "*) sets="$sets deploy" ;; esac
# shellcheck disable=SC2086
scripts/install-deps.sh $sets
jobs=$(nproc)
start=$(date +%s)

stage() { echo; echo "=== $* (at $(( $(date +%s) - start )) s) ==="; }

for s in $stages; do
    case "$s" in
    release)
        stage "Release build and tests"
        cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
        cmake --build build -j "$jobs"
        ctest --test-dir build --output-on-failure -j "$jobs" -LE deploy
        ;;
    asan)
        stage "ASan+UBSan build and tests"
        cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
            -DWEFT_SANITIZE="address;undefined" -DWEFT_BUILD_BENCH=OFF >/dev/null
        cmake --build build-asan -j "$jobs"
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
            ctest --test-dir build-asan --output-on-failure -j "$jobs" -LE "deploy|no-asan"
        ;;
    tsan)
        stage "TSan build and cross-thread tests"
        cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
            -DWEFT_SANITIZE=thread -DWEFT_BUILD_BENCH=OFF >/dev/null
        cmake --build build-tsan -j "$jobs"
        TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
            ctest --test-dir build-tsan --output-on-failure -j "$jobs" -L tsan
        ;;
    fuzz)
        stage "HTTP fuzzer"
        FUZZ_JOBS="$jobs" scripts/fuzz-http.sh "${WEFT_FUZZ_SECONDS:-60}"
        ;;
    deploy)
        stage "Deploy: image, seccomp, manifests, rules, dashboard"
        cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
        cmake --build build -j "$jobs"
        ctest --test-dir build --output-on-failure -L deploy
        ;;
    *) echo "unknown stage '$s' (allowed: release asan tsan fuzz deploy)" >&2; exit 2 ;;
    esac
done
stage "all stages passed"
