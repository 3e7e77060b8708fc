#!/usr/bin/python3
"""Writes a folder of colour PNG images that stands in for a folder of face
photos (CelebA's aligned crops) when none can be downloaded.

Each image is a Fashion-MNIST (or MNIST) item, enlarged with bilinear
interpolation, tinted with a colour that varies smoothly across it and shaded
by its own intensity, on a background whose colour runs smoothly from one
corner to the other.  The images are taller than wide (80x96 by default, as
CelebA's 178x218), so a loader's centre crop matters.  Everything follows
from --seed: the same arguments give the same files, byte for byte.

Only the Python standard library is used (zlib and struct write the PNGs).
Usually run through scripts/make-faces-demo.sh.
"""
import argparse
import colorsys
import gzip
import math
import os
import random
import re
import struct
import sys
import zlib


def read_idx_images(path):
    """The images of an idx3 file (plain or .gz) as (count, rows, cols, bytes)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic, n, rows, cols = struct.unpack(">IIII", data[:16])
    if magic != 0x803 or len(data) < 16 + n * rows * cols:
        sys.exit(f"error: {path} is not an idx3 image file")
    return n, rows, cols, data[16:16 + n * rows * cols]


def png_bytes(width, height, rows):
    """An 8-bit RGB PNG from `rows`, each bytes of width*3 values."""
    def chunk(kind, payload):
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))
    raw = b"".join(b"\x00" + r for r in rows)  # filter type 0 on every row
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6))
            + chunk(b"IEND", b""))


def write_file(path, data):
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.replace(path + ".tmp", path)


def random_colour(rng, sat_lo, sat_hi, val_lo, val_hi):
    """An RGB triple (0..255 floats) of random hue in the given ranges."""
    r, g, b = colorsys.hsv_to_rgb(rng.random(), sat_lo + (sat_hi - sat_lo) * rng.random(),
                                  val_lo + (val_hi - val_lo) * rng.random())
    return (255.0 * r, 255.0 * g, 255.0 * b)


def linear_field(rng, width, height, c0, c1):
    """Per channel, (a, bx, by): value a + bx*x + by*y runs from c0 to c1
    across the image in a random direction."""
    angle = 2.0 * math.pi * rng.random()
    dx, dy = math.cos(angle), math.sin(angle)
    half = 0.5 * (abs(dx) * width + abs(dy) * height)  # projection of a corner
    field = []
    for a, b in zip(c0, c1):
        slope = (b - a) / (2.0 * half)
        centre = 0.5 * (a + b)
        field.append((centre - slope * (dx * 0.5 * width + dy * 0.5 * height),
                      slope * dx, slope * dy))
    return field


def enlarge(item, side, size):
    """Bilinear enlargement of a side x side byte image to size x size floats."""
    taps = []
    for i in range(size):
        s = min(max((i + 0.5) * side / size - 0.5, 0.0), side - 1.0)
        i0 = min(int(s), side - 2)
        taps.append((i0, s - i0))
    # Rows first (side rows of `size` values), then columns.
    wide = []
    for r in range(side):
        row = item[r * side:(r + 1) * side]
        wide.append([row[j] + (row[j + 1] - row[j]) * t for j, t in taps])
    out = []
    for i, t in taps:
        a, b = wide[i], wide[i + 1]
        out.append([u + (v - u) * t for u, v in zip(a, b)])
    return out


def make_image(rng, items, width, height):
    n, side, _, data = items
    k = int(rng.random() * n)
    item = data[k * side * side:(k + 1) * side * side]

    bg = linear_field(rng, width, height, random_colour(rng, 0.15, 0.6, 0.25, 0.95),
                      random_colour(rng, 0.15, 0.6, 0.25, 0.95))
    tint = linear_field(rng, width, height, random_colour(rng, 0.3, 0.8, 0.6, 1.0),
                        random_colour(rng, 0.3, 0.8, 0.6, 1.0))
    size = int(min(width, height) * (0.7 + 0.25 * rng.random()))
    left = (width - size) // 2 + int((rng.random() - 0.5) * 0.12 * width)
    top = (height - size) // 2 + int((rng.random() - 0.5) * 0.12 * height)
    big = enlarge(item, side, size)

    xs = range(width)
    rows = []
    for y in range(height):
        chans = []
        for (a, bx, by), (ta, tbx, tby) in zip(bg, tint):
            base, tbase = a + by * y, ta + tby * y
            line = [base + bx * x for x in xs]
            iy = y - top
            if 0 <= iy < size:
                src = big[iy]
                for x in range(max(left, 0), min(left + size, width)):
                    v = src[x - left] * (1.0 / 255.0)
                    if v > 0.004:
                        alpha = min(1.0, 3.0 * v)
                        fg = (tbase + tbx * x) * (0.45 + 0.55 * v)
                        line[x] += (fg - line[x]) * alpha
            chans.append(bytes(min(255, max(0, int(c + 0.5))) for c in line))
        row = bytearray(3 * width)
        row[0::3], row[1::3], row[2::3] = chans
        rows.append(bytes(row))
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dir", help="folder to write (created if missing)")
    p.add_argument("count", nargs="?", type=int, default=2000, help="images (default 2000)")
    p.add_argument("--images", required=True, help="idx3 image file (plain or .gz)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--width", type=int, default=80, help="image width (default 80)")
    p.add_argument("--height", type=int, default=96, help="image height (default 96)")
    p.add_argument("--with-broken", action="store_true",
                   help="add a truncated PNG and a .jpg that is text")
    args = p.parse_args()
    if args.count < 1 or args.width < 8 or args.height < 8:
        sys.exit("error: need count >= 1 and images of at least 8x8")

    items = read_idx_images(args.images)
    os.makedirs(args.dir, exist_ok=True)
    # Files of an earlier run that this one would not overwrite go first.
    ours = re.compile(r"^(\d{6}\.png|broken_.*|README\.txt)$")
    for name in os.listdir(args.dir):
        if ours.match(name):
            os.remove(os.path.join(args.dir, name))

    rng = random.Random(args.seed)
    first = None
    for i in range(args.count):
        png = png_bytes(args.width, args.height, make_image(rng, items, args.width, args.height))
        write_file(os.path.join(args.dir, f"{i + 1:06d}.png"), png)
        first = first or png
    if args.with_broken:
        # Cut inside the image data: the signature and header still parse.
        write_file(os.path.join(args.dir, "broken_truncated.png"), first[:len(first) // 2])
        write_file(os.path.join(args.dir, "broken_text.jpg"),
                   b"This is a text file, not a JPEG.\n")
    write_file(os.path.join(args.dir, "README.txt"),
               (f"{args.count} stand-in 'face' images ({args.width}x{args.height} RGB PNG) "
                f"made by scripts/make-faces-demo.sh from {args.images}, "
                f"seed {args.seed}" + (", with 2 broken files" if args.with_broken else "")
                + ".\n").encode())
    print(f"wrote {args.count} images of {args.width}x{args.height} into {args.dir}"
          + (" (and 2 broken files)" if args.with_broken else ""))


if __name__ == "__main__":
    main()
