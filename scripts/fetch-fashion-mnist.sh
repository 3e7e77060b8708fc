#!/usr/bin/env bash
# Installs Debian's dataset-fashion-mnist if missing; its idx files are in
# /usr/share/datasets/fashion-mnist, vae-fashion-mnist's default --data.
# Installed as vae-fetch-fashion-mnist; in a source tree
# scripts/fetch-fashion-mnist.sh.  Needs root (or sudo) to install.
# Usage: vae-fetch-fashion-mnist
set -euo pipefail
case "${1:-}" in -h|--help) sed -n '2,6s/^# \{0,1\}//p' "$0"; exit 0 ;; esac
[ $# -eq 0 ] || { echo "usage: $(basename "$0")   (takes no arguments)" >&2; exit 2; }
package=dataset-fashion-mnist data=/usr/share/datasets/fashion-mnist
# Self-contained (no scripts/deps.sh), so that the installed copy works too.
if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
  command -v apt-get >/dev/null ||
    { echo "error: no apt-get: get Fashion-MNIST's four idx files and pass --data DIR" >&2; exit 1; }
  if [ "$(id -u)" = 0 ]; then sudo=(); elif command -v sudo >/dev/null; then sudo=(sudo -n); else
    echo "error: need root (or sudo) to install $package" >&2; exit 1
  fi
  echo "Installing $package"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -q < /dev/null
  "${sudo[@]}" apt-get install -y -q --no-install-recommends "$package" < /dev/null
fi
ls "$data"/*-ubyte.gz
