#!/usr/bin/env bash
# The exported symbols of the shared library must be exactly the functions
# the header marks VAE_API, each listed in the version script and in
# docs/symbols.txt with its version node.
set -euo pipefail
lib=$1 header=$2 map=$3 list=$4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
grep -oE 'VAE_API [^(]*\bvae_[a-z0-9_]+\(' "$header" | grep -oE 'vae_[a-z0-9_]+\($' | tr -d '(' | sort > "$tmp/header"
grep -oE '^ +vae_[a-z0-9_]+;' "$map" | tr -d ' ;' | sort > "$tmp/map"
grep -v '^#' "$list" | awk '{print $1}' | sort > "$tmp/list"
nm -D --defined-only "$lib" | awk '$2 == "T" {print $3}' | sed 's/@.*//' | sort > "$tmp/exported"
status=0
for other in map list exported; do
  if ! diff -u "$tmp/header" "$tmp/$other" > "$tmp/diff"; then
    echo "symbols in the header and in $other differ:"; cat "$tmp/diff"; status=1
  fi
done
if nm -D --defined-only "$lib" | awk '$2 == "T" && $3 !~ /^vae_/' | grep -q .; then
  echo "exported symbols without the vae_ prefix:"; nm -D --defined-only "$lib" | awk '$2 == "T" && $3 !~ /^vae_/'; status=1
fi
# each symbol carries the version node docs/symbols.txt gives it
grep -v '^#' "$list" | awk '{print $1 "@@" $2}' | sort > "$tmp/list_nodes"
nm -D --defined-only "$lib" | awk '$2 == "T" {print $3}' | sort > "$tmp/exported_nodes"
if ! diff -u "$tmp/list_nodes" "$tmp/exported_nodes" > "$tmp/diff"; then
  echo "version nodes in $list and in the library differ:"; cat "$tmp/diff"; status=1
fi
count=$(wc -l < "$tmp/header")
if [ "$status" = 0 ]; then echo "1 passed, 0 failed: $count symbols checked"; else echo "0 passed, 1 failed"; fi
exit $status
