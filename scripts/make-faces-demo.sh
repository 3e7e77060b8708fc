#!/usr/bin/env bash
# Writes N (default 2000) colour PNG images into DIR to stand in for a folder
# of face photos (CelebA) where none can be downloaded: Fashion-MNIST items,
# tinted and enlarged on coloured gradients, 80x96 like CelebA's portrait
# crops.  Deterministic: the same arguments give the same files.
#
# Usage: scripts/make-faces-demo.sh DIR [N] [--seed S] [--source fashion|mnist]
#                                   [--size WxH] [--with-broken]
#   --source fashion  Fashion-MNIST from the Debian package dataset-fashion-mnist
#                     (installed through scripts/deps.sh if missing); the default
#   --source mnist    MNIST digits from data/mnist (scripts/fetch-mnist.sh)
#   --with-broken     also a truncated PNG and a .jpg that is text, which a
#                     loader should report and skip
# Earlier output in DIR (NNNNNN.png, broken_*, README.txt) is replaced.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
usage() { sed -n '7,14s/^# \{0,1\}//p' "$0" >&2; exit 2; }

dir= count=2000 seed=1 source=fashion width=80 height=96 broken=()
positional=0
while [ $# -gt 0 ]; do
  case "$1" in
    --seed) [ $# -ge 2 ] || usage; seed=$2; shift 2 ;;
    --source) [ $# -ge 2 ] || usage; source=$2; shift 2 ;;
    --size) [ $# -ge 2 ] || usage
            [[ $2 =~ ^([0-9]+)x([0-9]+)$ ]] || usage
            width=${BASH_REMATCH[1]} height=${BASH_REMATCH[2]}; shift 2 ;;
    --with-broken) broken=(--with-broken); shift ;;
    -h|--help) usage ;;
    -*) echo "error: unknown option $1" >&2; usage ;;
    *) case $positional in
         0) dir=$1 ;;
         1) [[ $1 =~ ^[0-9]+$ ]] || { echo "error: N must be a number, not '$1'" >&2; exit 2; }
            count=$1 ;;
         *) usage ;;
       esac
       positional=$((positional + 1)); shift ;;
  esac
done
[ -n "$dir" ] || usage

case "$source" in
  fashion)
    images=/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
    [ -s "$images" ] || bash "$here/deps.sh" dataset-fashion-mnist
    [ -s "$images" ] ||
      { echo "error: $images is missing (package dataset-fashion-mnist)" >&2; exit 1; }
    ;;
  mnist)
    mnist=$here/../data/mnist
    [ -s "$mnist/train-images-idx3-ubyte" ] || [ -s "$mnist/train-images-idx3-ubyte.gz" ] ||
      bash "$here/fetch-mnist.sh" "$mnist"
    images=$mnist/train-images-idx3-ubyte
    [ -s "$images" ] || images=$images.gz
    ;;
  *) echo "error: --source must be fashion or mnist, not '$source'" >&2; exit 2 ;;
esac

# Debian's interpreter, not whatever python3 comes first on PATH: only its
# standard library is needed.
python=/usr/bin/python3
[ -x "$python" ] || python=python3
exec "$python" "$here/make_faces_demo.py" "$dir" "$count" --images "$images" --seed "$seed" \
  --width "$width" --height "$height" "${broken[@]}"
