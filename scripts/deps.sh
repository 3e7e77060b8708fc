#!/usr/bin/env bash
# Installs the Debian packages libvae needs, if any are missing.
# Usage: scripts/deps.sh [extra-package ...]
set -euo pipefail
packages=(gcc make cmake pkg-config libopenblas-dev libblis-openmp-dev check zlib1g-dev
          libpng-dev libplplot-dev plplot-driver-cairo libstb-dev python3 "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "Installing missing packages: ${missing[*]}"
if [ "$(id -u)" = 0 ]; then sudo=(); elif command -v sudo >/dev/null; then sudo=(sudo -n); else
  echo "error: need root (or sudo) to install: ${missing[*]}" >&2; exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q < /dev/null
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" < /dev/null
