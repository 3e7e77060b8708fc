#!/usr/bin/env bash
# Installs Debian's dataset-fashion-mnist if missing; its idx files are in
# /usr/share/datasets/fashion-mnist, vae-fashion-mnist's default --data.
set -euo pipefail
bash "$(dirname "$0")/deps.sh" dataset-fashion-mnist
ls /usr/share/datasets/fashion-mnist/*-ubyte.gz
