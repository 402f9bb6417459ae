#!/usr/bin/env bash
# Makes the Debian base images the Dockerfile starts FROM, from Debian's archive, because no image
# registry is reachable: mmdebstrap builds a bookworm rootfs and a slim variant, `podman import`
# tags them docker.io/library/debian:bookworm and :bookworm-slim, so the FROM lines stay standard.
# Idempotent: an existing tag is kept (pass --force to remake both). About a minute.
set -euo pipefail
source "$(dirname "$0")/env.sh"

force=0
[ "${1:-}" = "--force" ] && force=1

# The slim variant leaves out documentation, manual pages and translations, and keeps excluding
# them when packages are installed later (the settings stay in /etc/dpkg/dpkg.cfg.d/).
slim_opts=(
    --dpkgopt='path-exclude=/usr/share/doc/*'
    --dpkgopt='path-include=/usr/share/doc/*/copyright'
    --dpkgopt='path-exclude=/usr/share/man/*'
    --dpkgopt='path-exclude=/usr/share/info/*'
    --dpkgopt='path-exclude=/usr/share/locale/*'
    --dpkgopt='path-include=/usr/share/locale/locale.alias'
    --dpkgopt='path-exclude=/usr/share/lintian/*'
    --dpkgopt='path-exclude=/usr/share/groff/*'
)

make_one() (  # make_one TAG [mmdebstrap options...], in a subshell of its own
    tag=$1
    shift
    if [ $force -eq 0 ] && podman image exists "$tag"; then
        deploy_log "$tag exists; keeping it"
        return
    fi
    dir=$(mktemp -d)
    # shellcheck disable=SC2064  # expand now: the trap must remove this call's folder
    trap "rm -rf '$dir'" EXIT
    deploy_log "making $tag with mmdebstrap"
    # No mirror given: mmdebstrap uses Debian's default mirror and, for a stable release, adds
    # the updates and security suites too, so `apt-get` in the image sees current packages.
    mmdebstrap --quiet --variant=minbase --format=tar "$@" bookworm "$dir/rootfs.tar"
    podman import --quiet \
        --change 'CMD ["bash"]' \
        --change 'ENV LANG=C.UTF-8' \
        --message "Debian bookworm ($*) from mmdebstrap" \
        "$dir/rootfs.tar" "$tag" >/dev/null
    deploy_log "tagged $tag ($(podman image inspect --format '{{.Size}}' "$tag") bytes)"
)

command -v mmdebstrap >/dev/null && command -v podman >/dev/null ||
    deploy_die "mmdebstrap and podman are missing: run deploy/scripts/host-deps.sh"
# Both at once: mmdebstrap mostly waits for downloads and dpkg, so this halves the time.
make_one "$WEFT_BASE_BUILD" &
full=$!
make_one "$WEFT_BASE_RUNTIME" "${slim_opts[@]}" &
slim=$!
status=0
wait $full || status=1
wait $slim || status=1
[ $status -eq 0 ] || deploy_die "making the base images failed (see above)"
