#!/usr/bin/python3
"""Writes a folder in CIFAR-10's binary format (data_batch_1.bin ..
data_batch_5.bin, test_batch.bin) that stands in for CIFAR-10 when it cannot
be downloaded.

Each image is a Fashion-MNIST (or MNIST) item padded from 28x28 to 32x32
(2 pixels on every side) and coloured: the item in a bright tint whose hue
follows its label (with a little variation per image), shaded by its own
intensity, over a darker background of a colour of its own.  Labels are the
source's (0-9).  Records are 1 label byte and 3072 pixel bytes (1024 red,
1024 green, 1024 blue, rows top to bottom), as in the official files.  The
first --train images of the source's training set fill the five train
files, as evenly as possible; the first --test images of its test set fill
test_batch.bin.  Everything follows from --seed: the same arguments give the
same files, byte for byte.

Only the Python standard library is used.  Usually run through
scripts/make-cifar-demo.sh.
"""
import argparse
import colorsys
import gzip
import os
import random
import struct
import sys

SIDE, PAD = 28, 2
OUT = SIDE + 2 * PAD  # 32
PIXELS = 3 * OUT * OUT  # 3072

CLASS_NAMES = {
    "fashion": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                "Sneaker", "Bag", "Ankle boot"],
    "mnist": ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"],
}


def find_idx(source, stem):
    """source/stem or source/stem.gz, whichever exists."""
    for name in (stem, stem + ".gz"):
        path = os.path.join(source, name)
        if os.path.isfile(path):
            return path
    sys.exit(f"error: {os.path.join(source, stem)}[.gz] is missing")


def read_idx(path, ndim):
    """(dims, payload) of an unsigned-byte idx file (plain or .gz) of ndim dimensions."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 + 4 * ndim or data[:4] != bytes([0, 0, 8, ndim]):
        sys.exit(f"error: {path} is not an idx file of {ndim}-dimensional unsigned bytes")
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    size = 1
    for d in dims:
        size *= d
    payload = data[4 + 4 * ndim:]
    if len(payload) != size:
        sys.exit(f"error: {path} holds {len(payload)} bytes of data, its header says {size}")
    return dims, payload


def read_split(source, prefix):
    """(count, images, labels) of one split: images as bytes of count 28x28 items."""
    dims, images = read_idx(find_idx(source, f"{prefix}-images-idx3-ubyte"), 3)
    (n_labels,), labels = read_idx(find_idx(source, f"{prefix}-labels-idx1-ubyte"), 1)
    if dims[1:] != (SIDE, SIDE):
        sys.exit(f"error: {source}: {prefix} images are {dims[1]}x{dims[2]}, not 28x28")
    if n_labels != dims[0]:
        sys.exit(f"error: {source}: {dims[0]} {prefix} images but {n_labels} labels")
    if labels and max(labels) > 9:
        sys.exit(f"error: {source}: {prefix} labels go up to {max(labels)}, not 9")
    return dims[0], images, labels


def padded(item):
    """A 28x28 item as 32x32 bytes, the border zero."""
    side_pad = bytes(PAD)
    rows = [side_pad + item[r * SIDE:(r + 1) * SIDE] + side_pad for r in range(SIDE)]
    return bytes(PAD * OUT) + b"".join(rows) + bytes(PAD * OUT)


def colours(rng, label):
    """Foreground and background RGB (0..255 floats) for one image."""
    hue = (label / 10.0 + 0.08 * (rng.random() - 0.5)) % 1.0
    fg = colorsys.hsv_to_rgb(hue, 0.55 + 0.4 * rng.random(), 0.8 + 0.2 * rng.random())
    bg = colorsys.hsv_to_rgb(rng.random(), 0.2 + 0.4 * rng.random(), 0.1 + 0.35 * rng.random())
    return [255.0 * c for c in fg], [255.0 * c for c in bg]


def record(rng, item, label):
    """One CIFAR-10 record: the label byte, then the red, green and blue planes."""
    plane = padded(item)
    fg, bg = colours(rng, label)
    out = [bytes([label])]
    for f, b in zip(fg, bg):
        # intensity v blends the background into the tint, shaded by v itself
        table = bytes(min(255, max(0, int(b + (f * (0.5 + 0.5 * v / 255.0) - b) * v / 255.0
                                          + 0.5))) for v in range(256))
        out.append(plane.translate(table))
    return b"".join(out)


def write_file(path, data):
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.replace(path + ".tmp", path)


def write_batch(path, rng, images, labels, first, n):
    item = SIDE * SIDE
    write_file(path, b"".join(record(rng, images[k * item:(k + 1) * item], labels[k])
                              for k in range(first, first + n)))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dir", help="folder to write (created if missing)")
    p.add_argument("--source", required=True,
                   help="folder with train-/t10k-images-idx3-ubyte and -labels-idx1-ubyte "
                   "(plain or .gz)")
    p.add_argument("--kind", choices=sorted(CLASS_NAMES), default="fashion",
                   help="what the source is, for the class names (default fashion)")
    p.add_argument("--train", type=int, default=50000,
                   help="train images over the five files (default 50000, at least 5)")
    p.add_argument("--test", type=int, default=10000,
                   help="test images (default 10000, at least 1)")
    p.add_argument("--seed", type=int, default=1, help="random seed for the colours (default 1)")
    args = p.parse_args()
    if args.train < 5 or args.test < 1:
        sys.exit("error: need --train >= 5 (one image per file at least) and --test >= 1")

    n_train, train_images, train_labels = read_split(args.source, "train")
    n_test, test_images, test_labels = read_split(args.source, "t10k")
    if args.train > n_train or args.test > n_test:
        sys.exit(f"error: {args.source} has {n_train} train and {n_test} test images; "
                 f"asked for {args.train} and {args.test}")

    os.makedirs(args.dir, exist_ok=True)
    rng = random.Random(args.seed)
    first = 0
    for i in range(5):
        n = args.train // 5 + (1 if i < args.train % 5 else 0)
        write_batch(os.path.join(args.dir, f"data_batch_{i + 1}.bin"), rng, train_images,
                    train_labels, first, n)
        first += n
    rng = random.Random(args.seed + 1000003)
    write_batch(os.path.join(args.dir, "test_batch.bin"), rng, test_images, test_labels, 0,
                args.test)
    write_file(os.path.join(args.dir, "batches.meta.txt"),
               "".join(name + "\n" for name in CLASS_NAMES[args.kind]).encode())
    write_file(os.path.join(args.dir, "README.txt"),
               (f"A stand-in for CIFAR-10's binary version: {args.train} train images in "
                f"data_batch_1.bin .. data_batch_5.bin and {args.test} test images in "
                f"test_batch.bin, 32x32 RGB, colourised {args.kind} items made by "
                f"scripts/make-cifar-demo.sh from {args.source}, seed {args.seed}.  "
                f"batches.meta.txt names the {args.kind} classes.\n").encode())
    print(f"wrote {args.train} train and {args.test} test images (32x32 RGB, CIFAR-10 "
          f"binary format) into {args.dir}")


if __name__ == "__main__":
    main()
