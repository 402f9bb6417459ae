#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite, stage by stage:
#   release  Release build; every test but the container ones (each core/http test runs once
#            per I/O backend)
#   asan     ASan+UBSan build; every test that runs in-process or starts the weft binary
#   tsan     TSan build; the cross-thread tests (label "tsan")
#   fuzz     the HTTP request-path fuzzer (clang, libFuzzer, ASan+UBSan) for WEFT_FUZZ_SECONDS
#            (30) in one process per CPU (two here: a minute of fuzzing)
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
# ccache (the test set installs it) for the Release stage: one of its tests runs the README's
# run command in a copy of this tree, and that Release build of the server then comes from what
# the stage compiled instead of compiling it all a second time (base_dir makes the copy's paths
# the same). The other stages' builds would only miss (about 5 % slower). A developer's own
# CCACHE_DIR is kept; a clean clone starts empty.
with_ccache=(env)
if command -v ccache >/dev/null 2>&1; then
    with_ccache+=(CMAKE_C_COMPILER_LAUNCHER=ccache CMAKE_CXX_COMPILER_LAUNCHER=ccache
        CCACHE_BASEDIR="$(pwd -P)" CCACHE_NOHASHDIR=1 CCACHE_DIR="${CCACHE_DIR:-$PWD/build-ccache}")
fi
# The whole suite, whatever an earlier configure of these build folders chose.
all=(-DWEFT_BUILD_TESTS=ON "-DWEFT_MODULES=core;http;monitor;config;server")
# Sanitizer builds: -O1 with line tables compiles much faster than -O2 -g, and still gives
# sanitizer reports with file:line.
san_flags=("-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1" "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -g1")
start=$(date +%s)

stage() { echo; echo "=== $* (at $(( $(date +%s) - start )) s) ==="; }

for s in $stages; do
    case "$s" in
    release)
        stage "Release build and tests"
        "${with_ccache[@]}" cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "${all[@]}" >/dev/null
        "${with_ccache[@]}" cmake --build build -j "$jobs"
        "${with_ccache[@]}" ctest --test-dir build --output-on-failure -j "$jobs" -LE deploy
        ;;
    asan)
        stage "ASan+UBSan build and tests"
        cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${all[@]}" "${san_flags[@]}" \
            -DWEFT_SANITIZE="address;undefined" -DWEFT_BUILD_BENCH=OFF >/dev/null
        cmake --build build-asan -j "$jobs"
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
            ctest --test-dir build-asan --output-on-failure -j "$jobs" -LE "deploy|no-asan"
        ;;
    tsan)
        stage "TSan build and cross-thread tests"
        # Only the modules whose tests carry the label, and only those test programs.
        cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${san_flags[@]}" \
            -DWEFT_BUILD_TESTS=ON "-DWEFT_MODULES=core;http;monitor" \
            -DWEFT_SANITIZE=thread -DWEFT_BUILD_BENCH=OFF >/dev/null
        mapfile -t tsan_targets < <(ctest --test-dir build-tsan -N -L tsan 2>/dev/null |
            sed -n 's/.*Test *#[0-9]*: \([a-z_]*\)\(\.[a-z_]*\)\{0,1\}$/\1/p' | sort -u)
        cmake --build build-tsan -j "$jobs" --target "${tsan_targets[@]}"
        TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
            ctest --test-dir build-tsan --output-on-failure -j "$jobs" -L tsan
        ;;
    fuzz)
        stage "HTTP fuzzer"
        FUZZ_JOBS="$jobs" scripts/fuzz-http.sh "${WEFT_FUZZ_SECONDS:-30}"
        ;;
    deploy)
        stage "Deploy: image, seccomp, manifests, rules, dashboard"
        "${with_ccache[@]}" cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "${all[@]}" >/dev/null
        "${with_ccache[@]}" cmake --build build -j "$jobs"
        ctest --test-dir build --output-on-failure -L deploy
        ;;
    *) echo "unknown stage '$s' (allowed: release asan tsan fuzz deploy)" >&2; exit 2 ;;
    esac
done
stage "all stages passed"
