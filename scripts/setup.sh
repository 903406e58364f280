#!/usr/bin/env bash
# Installs every Debian package sdxld needs (scripts/packages.txt), then configures and builds
# it into build/. Non-interactive and idempotent: run it as often as you like.
#
#   scripts/setup.sh            install packages (as root, or through sudo) and build
#   SDXL_SKIP_APT=1 scripts/setup.sh   build only
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

if [[ "${SDXL_SKIP_APT:-0}" != 1 ]]; then
  mapfile -t packages < <(grep -v '^#' scripts/packages.txt | grep -v '^$')
  sudo=""
  if [[ "$(id -u)" != 0 ]]; then sudo="sudo"; fi
  echo "setup: installing ${#packages[@]} Debian packages"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${packages[@]}" >/dev/null
fi

echo "setup: building into build/"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release ${SDXL_CMAKE_ARGS:-} >/dev/null
cmake --build build -j "$(nproc)"
echo "setup: done (binaries in build/)"
