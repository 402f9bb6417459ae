#!/usr/bin/env bash
# Installs what is missing, builds Release, and runs the weft server on its embedded default
# configuration (demo plugin on 127.0.0.1:8080, admin on 127.0.0.1:9090).
# Extra arguments go to the program.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh build
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build --target weft weft_demo
exec build/bin/weft "$@"
