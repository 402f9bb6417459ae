#!/usr/bin/env bash
# Builds the HTTP request-path fuzzer (clang, libFuzzer, ASan+UBSan) in build-fuzz and runs it
# for SECONDS (default 60) from the seed corpus in tests/http/fuzz_corpus. New inputs go to a
# scratch directory (printed at the end); a crash leaves its reproducer in build-fuzz/.
# Usage: scripts/fuzz-http.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
case "$secs" in ''|*[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;; esac

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
cmake --build build-fuzz -j "${FUZZ_JOBS:-2}" --target http_session_fuzz

work=$(mktemp -d /tmp/weft-http-fuzz.XXXXXX)
cd build-fuzz
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    tests/http/http_session_fuzz -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -dict=../tests/http/fuzz/http.dict \
    "$work" ../tests/http/fuzz_corpus
echo "fuzz-http: no crash in ${secs}s; new inputs in $work"
