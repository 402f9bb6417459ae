#!/usr/bin/env bash
# Builds the HTTP request-path fuzzer (clang, libFuzzer, ASan+UBSan) in build-fuzz and runs it
# for SECONDS (default 60) from the seed corpus in tests/http/fuzz_corpus, in FUZZ_JOBS (2)
# processes at once (libFuzzer's -jobs: each runs every seed first, then fuzzing, and picks up
# what the others add to the shared corpus; the run waits for all of them). New inputs go to a
# scratch directory (printed at the end); a crash, a hang past 10 s or an input that takes
# more than 2 GiB in any process fails the run and leaves its reproducer in build-fuzz/.
# Usage: [FUZZ_JOBS=N] scripts/fuzz-http.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
case "$secs" in ''|*[!0-9]*) secs=0 ;; esac
if [ "$secs" -lt 1 ]; then echo "usage: $0 [SECONDS] (a positive number, not '${1:-}')" >&2; exit 2; fi
jobs=${FUZZ_JOBS:-2}
case "$jobs" in ''|*[!0-9]*) jobs=0 ;; esac
if [ "$jobs" -lt 1 ]; then echo "$0: FUZZ_JOBS must be a positive number, not '${FUZZ_JOBS}'" >&2; exit 2; fi

cxx=${FUZZ_CXX:-clang++}
cc=${FUZZ_CC:-clang}
command -v "$cxx" >/dev/null || { echo "$0: $cxx not found (install clang)" >&2; exit 2; }
flags=""
# libstdc++ 12's <source_location> needs clang >= 15; older clang gets a small stand-in.
major=$("$cxx" -dumpversion | cut -d. -f1)
if [ "$major" -lt 15 ]; then flags="-isystem $PWD/tests/http/fuzz/compat"; fi

cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_CXX_FLAGS="$flags" \
    -DWEFT_BUILD_FUZZ=ON -DWEFT_SANITIZE="address;undefined" -DWEFT_BUILD_BENCH=OFF >/dev/null
cmake --build build-fuzz -j "$jobs" --target http_session_fuzz

work=$(mktemp -d /tmp/weft-http-fuzz.XXXXXX)
cd build-fuzz
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    tests/http/http_session_fuzz -jobs="$jobs" -workers="$jobs" -max_total_time="$secs" \
    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -dict=../tests/http/fuzz/http.dict \
    "$work" ../tests/http/fuzz_corpus
echo "fuzz-http: no crash in ${secs}s x $jobs processes; new inputs in $work"
