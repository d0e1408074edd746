#!/bin/sh
# install-deps.sh - installs the Debian packages weft needs to build, test and run, when they
# are missing. Used by both README commands and by .ci/run. Needs root (or sudo) only when
# something is actually missing; does nothing otherwise.
set -eu

packages="build-essential cmake pkg-config libzmq3-dev libczmq-dev libmsgpack-dev liblmdb-dev
lmdb-utils libjansson-dev libncurses-dev libmicrohttpd-dev clang libclang-rt-dev tmux valgrind"

missing=""
for p in $packages; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
if [ -z "$missing" ]; then
    echo "install-deps: all packages present"
    exit 0
fi
echo "install-deps: installing:$missing"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        sudo="sudo"
    else
        echo "install-deps: missing packages and not root; run as root:" >&2
        echo "  apt-get install -y$missing" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq || echo "install-deps: apt-get update failed; trying the cached lists" >&2
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing
