#!/usr/bin/env bash
# Installs what the deploy scripts need on the host: the `deploy` set of scripts/install-deps.sh
# (podman, buildah, runc, mmdebstrap, podman-compose, node/npm, ...), promtool, and the few
# packages that set still lacks (below).
set -euo pipefail
source "$(dirname "$0")/env.sh"

# Recommends of podman that `--no-install-recommends` leaves out, needed here; they belong in the
# deploy set of scripts/install-deps.sh:
#   catatonit: the pause process of a pod (`podman play kube` fails without it);
#   the CNI dnsname plugin: compose services find each other by name (Prometheus scrapes `weft`).
extra_pkgs=(catatonit golang-github-containernetworking-plugin-dnsname)

apt_install_missing() {
    local p missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -gt 0 ] || return 0
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    deploy_log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

if "$WEFT_ROOT/scripts/install-deps.sh" deploy; then
    :
elif command -v npm >/dev/null && command -v node >/dev/null; then
    # A Node.js that bundles its own npm (NodeSource's build) conflicts with Debian's npm package,
    # so the set fails as a whole. npm is already here: install the rest of the set.
    mapfile -t pkgs < <(sed -n '/^deploy_pkgs=(/,/)/p' "$WEFT_ROOT/scripts/install-deps.sh" |
        sed -e 's/^deploy_pkgs=(//' -e 's/)//' | tr -s ' \t' '\n' | grep -v -x -e '' -e npm -e nodejs)
    [ ${#pkgs[@]} -gt 0 ] || deploy_die "cannot read the deploy set from scripts/install-deps.sh"
    deploy_log "npm is bundled with this machine's nodejs; installing the rest of the set"
    apt_install_missing "${pkgs[@]}"
else
    deploy_die "scripts/install-deps.sh deploy failed"
fi
apt_install_missing "${extra_pkgs[@]}"
# promtool comes with Debian's prometheus package (the `test` set).
command -v promtool >/dev/null || "$WEFT_ROOT/scripts/install-deps.sh" test
