#!/usr/bin/env bash
# Validates deploy/k8s/ offline with the npm kubernetes-models package (pinned by
# tests/deploy/k8s/package-lock.json, installed in the build tree, never in the sources).
source "$(dirname "$0")/lib.sh"
need_tools node npm

src=$WEFT_ROOT/tests/deploy/k8s
mods=$WEFT_DEPLOY_WORK/k8s-validate
mkdir -p "$mods"
if ! cmp -s "$src/package-lock.json" "$mods/package-lock.json" || [ ! -d "$mods/node_modules" ]; then
    cp "$src/package.json" "$src/package-lock.json" "$mods/"
    (cd "$mods" && timeout 300 npm ci --no-audit --no-fund --loglevel=error) || fail "npm ci failed in $mods"
fi
cp "$src/validate.mjs" "$mods/"
node "$mods/validate.mjs" "$WEFT_ROOT/deploy/k8s" "$WEFT_ROOT/deploy/container/weft.toml"
