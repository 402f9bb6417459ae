#!/usr/bin/env bash
# The deploy tests' setup: installs the host packages (podman, buildah, runc, mmdebstrap, ...),
# makes the local Debian base images if they are missing, and checks that podman runs a container
# with the project's containers.conf (runc, cgroupfs, the open-file limit).
source "$(dirname "$0")/lib.sh"

"$WEFT_ROOT/deploy/scripts/host-deps.sh"
need_tools podman buildah runc mmdebstrap podman-compose promtool node npm curl
"$WEFT_ROOT/deploy/scripts/make-base-images.sh"

runtime=$(podman info --format '{{.Host.OCIRuntime.Name}} {{.Host.CgroupManager}}')
[ "$runtime" = "runc cgroupfs" ] || fail "podman uses '$runtime', expected 'runc cgroupfs' from $CONTAINERS_CONF"
for tag in "$WEFT_BASE_BUILD" "$WEFT_BASE_RUNTIME"; do
    out=$(podman run --rm --pull=never --network=none "$tag" \
        bash -c '. /etc/os-release; echo "$VERSION_CODENAME $(ulimit -Hn)"') ||
        fail "$tag does not run"
    [ "$out" = "bookworm 20000" ] || fail "$tag: expected 'bookworm 20000' (codename, nofile), got '$out'"
    ok "$tag runs ($out)"
done
