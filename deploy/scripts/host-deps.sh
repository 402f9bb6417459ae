#!/usr/bin/env bash
# Installs what the deploy scripts need on the host: the `deploy` set of scripts/install-deps.sh
# (podman, buildah, runc, mmdebstrap, podman-compose, catatonit, the CNI dnsname plugin,
# promtool, and Node.js/npm unless a Node.js with its own npm is already installed).
set -euo pipefail
source "$(dirname "$0")/env.sh"

"$WEFT_ROOT/scripts/install-deps.sh" deploy || deploy_die "scripts/install-deps.sh deploy failed"
