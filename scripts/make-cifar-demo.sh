#!/usr/bin/env bash
# Writes a stand-in for CIFAR-10's binary version into DIR where the real one
# cannot be downloaded: data_batch_1.bin .. data_batch_5.bin and
# test_batch.bin in the official format, holding Fashion-MNIST items padded
# to 32x32 and coloured by label.  Deterministic: the same arguments give the
# same files.
#
# Usage: scripts/make-cifar-demo.sh DIR [--train N] [--test N] [--seed S]
#                                   [--source fashion|mnist]
#   --train N         train images, split over the five files (default 50000)
#   --test N          test images in test_batch.bin (default 10000)
#   --source fashion  Fashion-MNIST from the Debian package dataset-fashion-mnist
#                     (installed through scripts/deps.sh if missing); the default
#   --source mnist    MNIST digits from data/mnist (scripts/fetch-mnist.sh)
# Also writes batches.meta.txt (the source's class names) and README.txt.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
usage() { sed -n '8,15s/^# \{0,1\}//p' "$0" >&2; exit 2; }
number() { [[ $2 =~ ^[0-9]+$ ]] || { echo "error: $1 must be a number, not '$2'" >&2; exit 2; }; }

dir='' train=50000 test=10000 seed=1 source=fashion
while [ $# -gt 0 ]; do
  case "$1" in
    --train) [ $# -ge 2 ] || usage; number "$1" "$2"; train=$2; shift 2 ;;
    --test) [ $# -ge 2 ] || usage; number "$1" "$2"; test=$2; shift 2 ;;
    --seed) [ $# -ge 2 ] || usage; number "$1" "$2"; seed=$2; shift 2 ;;
    --source) [ $# -ge 2 ] || usage; source=$2; shift 2 ;;
    -h|--help) usage ;;
    -*) echo "error: unknown option $1" >&2; usage ;;
    *) [ -z "$dir" ] || usage; dir=$1; shift ;;
  esac
done
[ -n "$dir" ] || usage

case "$source" in
  fashion)
    data=/usr/share/datasets/fashion-mnist
    [ -s "$data/train-images-idx3-ubyte.gz" ] || bash "$here/deps.sh" dataset-fashion-mnist
    [ -s "$data/train-images-idx3-ubyte.gz" ] ||
      { echo "error: $data is missing (package dataset-fashion-mnist)" >&2; exit 1; }
    ;;
  mnist)
    data=$here/../data/mnist
    [ -s "$data/train-images-idx3-ubyte" ] || [ -s "$data/train-images-idx3-ubyte.gz" ] ||
      bash "$here/fetch-mnist.sh" "$data"
    ;;
  *) echo "error: --source must be fashion or mnist, not '$source'" >&2; exit 2 ;;
esac

# Debian's interpreter, not whatever python3 comes first on PATH: only its
# standard library is needed.
python=/usr/bin/python3
[ -x "$python" ] || python=python3
exec "$python" "$here/make_cifar_demo.py" "$dir" --source "$data" --kind "$source" \
  --train "$train" --test "$test" --seed "$seed"
