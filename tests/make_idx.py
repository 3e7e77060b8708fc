"""Writes small MNIST-format idx files (images and labels, optionally gzip)
for the example tests: digit-like blobs whose position depends on the label,
so a VAE has something to learn.  Usage: make_idx.py DIR N_TRAIN N_TEST [--gz]"""
import gzip
import random
import struct
import sys

def images_and_labels(n, seed):
    rng = random.Random(seed)
    pixels, labels = bytearray(), bytearray()
    for _ in range(n):
        label = rng.randrange(10)
        cx, cy = 6 + 2 * (label % 5) + rng.random(), 9 + 8 * (label // 5) + rng.random()
        for y in range(28):
            for x in range(28):
                d2 = (x - cx) ** 2 + (y - cy) ** 2
                pixels.append(255 if d2 < 12 else (128 if d2 < 20 else 0))
        labels.append(label)
    return pixels, labels

def write(path, magic_dims, payload, gz):
    header = struct.pack(">BBBB", 0, 0, 8, len(magic_dims)) + b"".join(struct.pack(">I", d) for d in magic_dims)
    opener = gzip.open if gz else open
    with opener(path + (".gz" if gz else ""), "wb") as f:
        f.write(header + bytes(payload))

out, n_train, n_test = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
gz = "--gz" in sys.argv
for prefix, n, seed in (("train", n_train, 1), ("t10k", n_test, 2)):
    pixels, labels = images_and_labels(n, seed)
    write("%s/%s-images-idx3-ubyte" % (out, prefix), (n, 28, 28), pixels, gz)
    write("%s/%s-labels-idx1-ubyte" % (out, prefix), (n,), labels, gz)
