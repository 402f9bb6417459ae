#!/usr/bin/env bash
# Builds Weft's image from the Dockerfile at the repository root with podman, from the local base
# images only (--pull=never; deploy/scripts/make-base-images.sh makes them), tagged $WEFT_IMAGE
# (default localhost/weft:latest), the plain way otherwise: podman's default seccomp profile and
# the Dockerfile's defaults. Extra arguments go to `podman build` (--build-arg WEFT_UNIT_TESTS=ON
# to run the unit tests in the build stage, --security-opt seccomp=PROFILE).
set -euo pipefail
source "$(dirname "$0")/env.sh"

for base in "$WEFT_BASE_BUILD" "$WEFT_BASE_RUNTIME"; do
    podman image exists "$base" || deploy_die "no $base image: run deploy/scripts/make-base-images.sh"
done
# --format docker: the OCI format has no HEALTHCHECK. The ulimit matches containers.conf for the
# RUN steps.
exec podman build --pull=never --format docker \
    --ulimit nofile=20000:20000 \
    --build-arg "WEFT_BUILD_JOBS=${WEFT_BUILD_JOBS:-2}" \
    --tag "$WEFT_IMAGE" "$@" "$WEFT_ROOT"
