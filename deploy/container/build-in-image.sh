#!/usr/bin/env bash
# The image's build stage: configure and build Weft (Release, no benchmarks), with ON build and
# run the unit tests too, install into /opt/weft, and keep only what the runtime stage needs
# (no headers, no CMake files).
# Usage (from the source root, inside the build stage): build-in-image.sh BUILD_DIR JOBS [ON|OFF]
# With OFF the tests are neither built nor run.
set -euo pipefail
build=${1:?build dir}
jobs=${2:-2}
tests=${3:-ON}
case "$tests" in ON | OFF) ;; *) echo "build-in-image: tests must be ON or OFF, not '$tests'" >&2; exit 2 ;; esac

launcher=()
if command -v ccache >/dev/null; then
    launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
    ccache --zero-stats >/dev/null
fi
# The deploy tests drive podman from the host: never registered here. The option exists only
# when the tests are configured (CMake warns about a variable nobody reads otherwise).
deploy_tests=()
[ "$tests" = OFF ] || deploy_tests=(-DWEFT_DEPLOY_TESTS=OFF)
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" "${deploy_tests[@]}" \
    -DWEFT_BUILD_TESTS="$tests" -DWEFT_BUILD_BENCH=OFF -DWEFT_BUILD_FUZZ=OFF >/dev/null
cmake --build "$build" --parallel "$jobs"
[ ${#launcher[@]} -eq 0 ] || ccache --show-stats | grep -E 'Cacheable calls|Hits|Misses' || true

if [ "$tests" = OFF ]; then
    echo "build-in-image: unit tests not built (WEFT_UNIT_TESTS=OFF)"
else
    # The io_uring variants of the tests skip, saying so, where the build's seccomp profile
    # refuses io_uring (the default profiles of podman and Docker do). Unit tests are the ones
    # that need no outside servers; until any carries the label, run all but the deploy tests
    # (which drive podman from the host and are not even configured here), the slow ones
    # (the README's scripts/run.sh, which builds the whole tree again; the host suite runs it)
    # and the browser test (its npm packages are installed on the host, not in this stage).
    select=(-L unit)
    if ctest --test-dir "$build" -N -L unit | grep -q '^Total Tests: 0$'; then
        select=(-LE 'deploy|slow|browser')
    fi
    # A test that fails twice fails the image; one that fails once is shown, retried, and left to
    # the main test suite, which runs the same tests on the host.
    ctest --test-dir "$build" "${select[@]}" --output-on-failure -j "$jobs" \
        --timeout 300 --no-tests=error --repeat until-pass:2
fi

rm -rf /opt/weft
cmake --install "$build" --prefix /opt/weft >/dev/null
rm -rf /opt/weft/include /opt/weft/lib/cmake /opt/weft/lib/pkgconfig /opt/weft/share
find /opt/weft -name '*.a' -delete
rm -rf "$build"
test -x /opt/weft/bin/weft || { echo "build-in-image: no bin/weft was installed" >&2; exit 1; }
