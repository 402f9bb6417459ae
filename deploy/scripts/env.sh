# Sourced by the deploy scripts and tests: where the repository is, which podman settings to use,
# and the names of the images and containers they make. Every name can be overridden from the
# environment.
# shellcheck shell=bash disable=SC2034  # the names are for the scripts that source this

WEFT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# Podman reads only this file (plus its built-in defaults), never the machine's /etc copy.
export CONTAINERS_CONF=${CONTAINERS_CONF:-$WEFT_ROOT/deploy/container/containers.conf}

WEFT_IMAGE=${WEFT_IMAGE:-localhost/weft:latest}
WEFT_BASE_BUILD=docker.io/library/debian:bookworm
WEFT_BASE_RUNTIME=docker.io/library/debian:bookworm-slim
WEFT_SECCOMP_IO_URING=$WEFT_ROOT/deploy/seccomp/weft-io-uring.json
WEFT_SECCOMP_BLOCK_IO_URING=$WEFT_ROOT/deploy/seccomp/block-io-uring.json

deploy_log() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; }
deploy_die() { deploy_log "$*"; exit 1; }
