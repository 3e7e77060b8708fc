"""What bench/torch_{dense,conv,iaf}_vae.py share: the options, thread and
denormal set-up and the printed lines that bench/*_vs_torch.sh parse, kept
in one place so the three reference runs are set up and read alike."""
import argparse
import ctypes
import gzip
import os
import struct

import numpy as np
import torch


def arg_parser(doc, epochs, batch, lr):
    """The options every script has; each adds its own (--data among them)."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=epochs)
    ap.add_argument("--threads", type=int, default=0,
                    help="torch.set_num_threads(N); 0 = leave torch's default")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--batch", type=int, default=batch)
    ap.add_argument("--lr", type=float, default=lr)
    return ap


def start(args):
    """Flush denormals, set torch's threads and seed; True if flushing is on."""
    # before set_num_threads / the first parallel region, so that the OpenMP
    # worker threads (created later) inherit FTZ/DAZ from this thread
    flushed = torch.set_flush_denormal(args.flush_denormal)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    return bool(args.flush_denormal and flushed)


def openblas_info():
    try:
        lib = ctypes.CDLL("libopenblas.so.0")  # the copy torch already loaded
        lib.openblas_get_corename.restype = ctypes.c_char_p
        return "%s, openblas threads %d" % (
            lib.openblas_get_corename().decode(), lib.openblas_get_num_threads())
    except (OSError, AttributeError):
        return "n/a"


def print_header(flushed, mkldnn=False, tail=""):
    """The '# torch ...' line: the settings that decide the speed."""
    parts = ["torch " + torch.__version__, "torch threads %d" % torch.get_num_threads()]
    if mkldnn:
        parts.append("mkldnn %d" % int(torch.backends.mkldnn.is_available()))
    parts += [openblas_info(), "flush_denormal %d" % int(flushed),
              " ".join("%s=%s" % (v, os.environ.get(v, "(unset)")) for v in
                       ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"))]
    print("# " + ", ".join(parts) + tail, flush=True)


def print_epoch(ep, secs, images, train_loss, test_loss=None):
    line = "epoch %d seconds %.3f images_per_sec %.1f train_loss %.4f" % (
        ep, secs, images / secs, train_loss)
    if test_loss is not None:
        line += " test_loss %.4f" % test_loss
    print(line, flush=True)


def load_idx_images(path):
    """MNIST idx images (or their .gz) as a float tensor (N, rows, cols) / 255."""
    if not os.path.exists(path) and os.path.exists(path + ".gz"):
        path += ".gz"
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        magic, n, rows, cols = struct.unpack(">IIII", f.read(16))
        if magic != 2051:
            raise ValueError(f"{path}: bad magic {magic}")
        data = np.frombuffer(f.read(n * rows * cols), dtype=np.uint8)
    x = data.reshape(n, rows, cols).astype(np.float32) / np.float32(255.0)
    return torch.from_numpy(x)
