"""Checks what the browser showed (decoded.json, written by explore.test.mjs)
against the model run here through the Python package: each decoded z, and
the clicked test image and its reconstruction, pixel for pixel (|diff| <= 1).
Usage: check_decoded.py DECODED_JSON MODEL DATA_DIR
  (PYTHONPATH=python, LIBVAE_LIBRARY=BUILD/libvae.so)"""
import gzip
import json
import os
import struct
import sys

import numpy as np

import libvae as lv

path, model_path, data = sys.argv[1:4]
shown = json.load(open(path))
model = lv.Model.load(model_path)
dims = tuple(model.input_dims)
chw = dims if len(dims) == 3 else (1,) + dims
failed = 0


def ok(msg):
    print("ok: " + msg)


def fail(msg):
    global failed
    failed += 1
    print("FAIL: " + msg)


def to_byte(v):
    """The server's rounding: 0 unless > 0, 255 from 1 on, else v * 255 + 0.5 truncated."""
    v = np.asarray(v, np.float32).reshape(-1)
    out = np.zeros(v.shape, np.int64)
    mid = (v > 0) & (v < 1)
    out[v >= 1] = 255
    out[mid] = (v[mid] * np.float32(255) + np.float32(0.5)).astype(np.int64)
    return out


def compare(what, browser, want):
    got = np.asarray(browser, np.int64)
    if got.shape != want.shape:
        return fail("%s: %d values from the browser, want %d" % (what, got.size, want.size))
    diff = np.abs(got - want)
    if diff.max() > 1:
        k = int(diff.argmax())
        return fail("%s: %d of %d values differ by more than 1 (worst at %d: browser %d, model %d)"
                    % (what, int((diff > 1).sum()), diff.size, k, got[k], want[k]))
    ok("%s: %d values match (%d off by 1)" % (what, diff.size, int((diff == 1).sum())))


def test_bytes(i):
    """Test image i's bytes (CHW) and file: MNIST-style idx (plain or .gz) or
    CIFAR-10's test_batch.bin in the data folder."""
    p = os.path.join(data, "test_batch.bin")
    if os.path.exists(p):
        with open(p, "rb") as f:
            f.seek(i * 3073 + 1)
            return np.frombuffer(f.read(3072), np.uint8).astype(np.int64), p
    return idx_bytes("t10k-images-idx3-ubyte", i)


def idx_bytes(stem, i):
    for name, opener in ((stem, open), (stem + ".gz", gzip.open)):
        p = os.path.join(data, name)
        if os.path.exists(p):
            with opener(p, "rb") as f:
                head = f.read(4)
                nd = head[3]
                shape = struct.unpack(">%dI" % nd, f.read(4 * nd))
                size = int(np.prod(shape[1:]))
                f.read(i * size)
                return np.frombuffer(f.read(size), np.uint8).astype(np.int64), p
    raise SystemExit("FAIL: no %s in %s" % (stem, data))


if (shown["channels"], shown["height"], shown["width"]) != chw or shown["latent"] != model.latent_size:
    fail("the page's model is %s latent %s, this one %s latent %d"
         % ((shown["channels"], shown["height"], shown["width"]), shown["latent"], chw, model.latent_size))

if len(shown["decoded"]) < 2:
    fail("decoded.json holds %d decoded images, want 2" % len(shown["decoded"]))
for n, d in enumerate(shown["decoded"]):
    z = np.array([d["z"]], np.float32)
    compare("decoded image %d (z = %s)" % (n + 1, ", ".join("%g" % v for v in d["z"])),
            d["pixels"], to_byte(model.decode(z)))

point = shown.get("point")
if point is not None:
    i = point["i"]
    raw, file = test_bytes(i)
    compare("test image %d (from %s)" % (i, os.path.basename(file)), point["original"], raw)
    if file.endswith("test_batch.bin"):
        x = lv.Dataset.load_cifar10(data, train=False).get(i, 1).reshape((1,) + chw)
    else:
        x = lv.Dataset.load_idx(file).get(i, 1).reshape((1,) + chw)
    compare("reconstruction of test image %d" % i, point["reconstruction"], to_byte(model.reconstruct(x)))

if failed:
    print("check_decoded: %d failed" % failed)
    sys.exit(1)
