#!/usr/bin/env bash
# Installs what is missing, builds Release, and runs the main program with its embedded default.
# Extra arguments go to the program.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh build
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DWEFT_BUILD_TESTS=OFF >/dev/null
cmake --build build --target weft_echo
exec build/examples/weft_echo "$@"
