#!/usr/bin/python3
"""The HTTP test of vae-explore (run by test_explore.sh): checks a running
server's answers against the library's own values, through the Python
package, then throws thousands of malformed requests at it.

Usage: explore_client.py URL MODEL [--data DIR] [--limit N] [--pid PID]
                         [--fuzz N] [--quick]

URL is the address the server printed, MODEL the file it serves, DIR the
--data it was given (MNIST idx files or a CIFAR-10 folder; none: a server
without data), N its --limit.  The expected values (latent points,
decodes, reconstructions, prior samples) come from a child process that
loads the library (LIBVAE_LIBRARY) with VAE_ASAN_PRELOAD preloaded, as the
sanitizers need; this process itself loads only numpy and talks HTTP.
--fuzz N: about N malformed requests (0: none).  --quick: fewer decodes
and no concurrency checks (the other servers of the test).  Prints "ok: "
per check, "FAIL: " per failure, and exits 1 on any failure.
"""
import argparse
import collections
import http.client
import json
import math
import os
import random
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from urllib.parse import urlsplit

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
failures = []


def ok(msg):
    print("ok: " + msg, flush=True)


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg, flush=True)


def note(msg):
    print("note: " + msg, flush=True)


def to_byte(a):
    """The spec's pixel value: 0 unless v > 0, 255 if v >= 1, else int(v*255 + 0.5)."""
    a = np.asarray(a, np.float64)
    b = np.where(a >= 1, 255.0, np.floor(a * 255 + 0.5))
    return np.where(a > 0, b, 0.0).astype(np.uint8)


def near_boundary(a):
    """Where v*255 + 0.5 is within float32 rounding of an integer: a last-bit
    difference in v may move the byte by one there."""
    t = np.asarray(a, np.float64) * 255 + 0.5
    return np.abs(t - np.round(t)) < 1e-4


# ---------------------------------------------------------------- PNG reading

def png_decode(data):
    """-> uint8 array (height, width, channels) of an 8-bit grey or RGB PNG;
    raises ValueError for anything else or a damaged file."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("no PNG signature")
    pos, idat, ihdr, ended = 8, [], None, False
    while pos < len(data):
        if pos + 12 > len(data):
            raise ValueError("truncated chunk")
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        if len(body) != n or pos + 12 + n > len(data):
            raise ValueError("truncated chunk")
        (crc,) = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        if zlib.crc32(kind + body) != crc:
            raise ValueError("bad CRC in %r" % kind)
        pos += 12 + n
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            ended = True
            break
    if not ended or pos != len(data):
        raise ValueError("no IEND at the end")
    if ihdr is None:
        raise ValueError("no IHDR")
    w, h, depth, ctype, comp, filt, interlace = ihdr
    if depth != 8 or ctype not in (0, 2) or comp or filt or interlace:
        raise ValueError("not an 8-bit grey or RGB PNG without interlace: %r" % (ihdr,))
    bpp = 1 if ctype == 0 else 3
    raw = zlib.decompress(b"".join(idat))
    stride = w * bpp
    if len(raw) != h * (stride + 1):
        raise ValueError("image data of %d bytes for %dx%dx%d" % (len(raw), w, h, bpp))
    out = np.zeros((h, stride), np.uint8)
    prev = np.zeros(stride, np.int64)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1).astype(np.int64)
        if f == 0:
            cur = line
        elif f == 2:
            cur = (line + prev) & 255
        elif f == 1:
            cur = line.copy()
            for x in range(bpp, stride):
                cur[x] = (cur[x] + cur[x - bpp]) & 255
        elif f in (3, 4):
            cur, ln, pv = [0] * stride, line.tolist(), prev.tolist()
            for x in range(stride):
                a = cur[x - bpp] if x >= bpp else 0
                b = pv[x]
                if f == 3:
                    cur[x] = (ln[x] + ((a + b) >> 1)) & 255
                else:
                    c = pv[x - bpp] if x >= bpp else 0
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pr = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                    cur[x] = (ln[x] + pr) & 255
            cur = np.array(cur, np.int64)
        else:
            raise ValueError("filter type %d" % f)
        out[y] = cur
        prev = cur
    return out.reshape(h, w, bpp)


def chw_to_hwc(a):
    return np.ascontiguousarray(np.asarray(a).transpose(1, 2, 0))


def compare_png(body, expected_float, what):
    """The PNG's pixels against to_byte(expected_float (C, H, W)): -> (ok,
    boundary differences allowed, message)."""
    try:
        img = png_decode(body)
    except (ValueError, zlib.error) as e:
        return False, 0, "%s: not a valid PNG (%s; %d bytes)" % (what, e, len(body))
    exp = chw_to_hwc(to_byte(expected_float))
    if img.shape != exp.shape:
        return False, 0, "%s: PNG of %s, expected %s (height, width, channels)" % (what, img.shape, exp.shape)
    diff = img.astype(int) - exp.astype(int)
    bad = diff != 0
    if not bad.any():
        return True, 0, ""
    allowed = (np.abs(diff) == 1) & near_boundary(chw_to_hwc(expected_float))
    if (bad & ~allowed).any():
        k = np.argwhere(bad & ~allowed)[0]
        return False, 0, "%s: %d pixel values differ, e.g. at %s: %d, expected %d (%.6f)" % (
            what, int((bad & ~allowed).sum()), tuple(k), img[tuple(k)], exp[tuple(k)],
            chw_to_hwc(expected_float)[tuple(k)])
    return True, int(bad.sum()), ""


def zstr(z):
    """A latent point as the page sends it: each float32 as the shortest
    decimal that reads back to it."""
    return ",".join(repr(float(np.float32(v))) for v in z)


# ------------------------------------------------------- expected values

def expect_main(spec_path, out_path):
    """The child process: the library's values for the spec, into an npz."""
    sys.path.insert(0, os.path.join(HERE, "..", "python"))
    import libvae as lv
    spec = json.load(open(spec_path))
    m = lv.Model.load(spec["model"])
    dims = tuple(m.input_dims)
    chw = dims if len(dims) == 3 else (1,) + dims if len(dims) == 2 else (1, 1) + dims
    res = {"latent": np.array(m.latent_size), "chw": np.array(chw),
           "flow": np.array(any(line.startswith("flow") for line in m.summary().splitlines()))}
    names = None
    if spec["data"]:
        d = spec["data"]
        if os.path.exists(os.path.join(d, "test_batch.bin")):
            ds = lv.Dataset.load_cifar10(d, train=False)
            meta = os.path.join(d, "batches.meta.txt")
            if os.path.exists(meta):
                names = [s.strip() for s in open(meta) if s.strip()]
        else:
            def find(stem):
                for s in (stem, stem + ".gz"):
                    if os.path.exists(os.path.join(d, s)):
                        return os.path.join(d, s)
                return None
            ds = lv.Dataset.load_idx(find("t10k-images-idx3-ubyte"), find("t10k-labels-idx1-ubyte"))
        n = min(len(ds), spec["limit"])
        x = ds.get(0, n).reshape((n,) + chw)
        res["x"] = x
        res["z"] = np.concatenate([m.encode_latent(x[k:k + 64]) for k in range(0, n, 64)])
        res["labels"] = ds.labels[:n] if ds.has_labels else np.zeros(0, np.int32)
        res["has_labels"] = np.array(ds.has_labels)
        res["recon"] = np.array([m.reconstruct(x[i:i + 1])[0] for i in spec["recon"]]).reshape(
            (len(spec["recon"]),) + chw)
    res["names"] = np.array(json.dumps(names))
    zs = np.array(spec["z"], np.float32).reshape(-1, m.latent_size)
    res["dec"] = np.array([m.decode(z[None])[0] for z in zs]).reshape((len(zs),) + chw)
    for k, (seed, n) in enumerate(spec["samples"]):
        res["s%d" % k] = m.sample(n, seed).reshape((n,) + chw)
    np.savez(out_path, **res)
    m.close()


def expected_values(args, zs, recon_idx, samples):
    with tempfile.TemporaryDirectory() as tmp:
        spec = os.path.join(tmp, "spec.json")
        json.dump({"model": args.model, "data": args.data, "limit": args.limit,
                   "z": [[float(v) for v in z] for z in zs], "recon": recon_idx,
                   "samples": samples}, open(spec, "w"))
        env = dict(os.environ)
        pre = os.environ.get("VAE_ASAN_PRELOAD")
        if pre:
            env["LD_PRELOAD"] = pre
            env["ASAN_OPTIONS"] = "detect_leaks=0"
        out = os.path.join(tmp, "out.npz")
        subprocess.run([sys.executable, os.path.abspath(__file__), "--expect", spec, out],
                       env=env, check=True)
        with np.load(out) as f:
            return {k: f[k] for k in f.files}


# ------------------------------------------------------- plain HTTP client

class Client:
    """Well-formed requests over one keep-alive connection (http.client)."""

    def __init__(self, host, port, timeout=30):
        self.host, self.port, self.timeout = host, port, timeout
        self.conn, self.connects = None, 0

    def get(self, path, method="GET"):
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                self.connects += 1
            try:
                self.conn.request(method, path)
                r = self.conn.getresponse()
                body = r.read()
                if r.will_close:
                    self.close()
                return r.status, {k.lower(): v for k, v in r.getheaders()}, body
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # a keep-alive connection the server closed between requests
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


# ------------------------------------------------------- raw socket client

CLOSED, TIMEOUT = "closed", "timeout"


class Raw:
    """A socket-level HTTP/1.1 client: sends bytes as they are, reads one
    response at a time (skipping 1xx), reports a close or a silence."""

    def __init__(self, port, timeout=3.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.settimeout(timeout)
        self.buf = b""

    def send(self, data, pause=0.0):
        try:
            if pause:
                for i in range(len(data)):
                    self.sock.sendall(data[i:i + 1])
                    time.sleep(pause)
            else:
                self.sock.sendall(data)
            return True
        except OSError:
            return False

    def _more(self):
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return TIMEOUT
        except OSError:
            return CLOSED
        if not chunk:
            return CLOSED
        self.buf += chunk
        return None

    def response(self, head=False):
        """-> (status, headers, body) or CLOSED / TIMEOUT before a whole head;
        raises ValueError for a response that is not HTTP."""
        while True:
            while b"\r\n\r\n" not in self.buf:
                why = self._more()
                if why:
                    if self.buf:
                        raise ValueError("%s mid-way through a response head: %r" % (why, self.buf[:200]))
                    return why
                if len(self.buf) > 1 << 20:
                    raise ValueError("a response head over 1 MiB")
            head_bytes, self.buf = self.buf.split(b"\r\n\r\n", 1)
            lines = head_bytes.decode("latin-1").split("\r\n")
            parts = lines[0].split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
                raise ValueError("not an HTTP/1.x status line: %r" % lines[0])
            status = int(parts[1])
            headers = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            if 100 <= status < 200:
                continue
            if head or status in (204, 304):
                return status, headers, b""
            if "content-length" in headers:
                n = int(headers["content-length"])
                while len(self.buf) < n:
                    why = self._more()
                    if why:
                        raise ValueError("%s mid-way through a body (%d of %d bytes)" % (why, len(self.buf), n))
                body, self.buf = self.buf[:n], self.buf[n:]
                return status, headers, body
            if headers.get("transfer-encoding", "").lower() == "chunked":
                body = b""
                while True:
                    while b"\r\n" not in self.buf:
                        if self._more():
                            raise ValueError("cut in a chunked body")
                    size_line, self.buf = self.buf.split(b"\r\n", 1)
                    size = int(size_line.split(b";")[0], 16)
                    while len(self.buf) < size + 2:
                        if self._more():
                            raise ValueError("cut in a chunked body")
                    body, self.buf = body + self.buf[:size], self.buf[size + 2:]
                    if size == 0:
                        return status, headers, body
            while self._more() is None:  # the body runs to the close
                pass
            body, self.buf = self.buf, b""
            return status, headers, body

    def closed_by_peer(self, wait):
        """True if the server has closed the connection (within wait s)."""
        self.sock.settimeout(wait)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
        except socket.timeout:
            return False
        except OSError:
            return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def request_bytes(method, target, headers=(), body=b"", version="HTTP/1.1"):
    h = "".join("%s: %s\r\n" % kv for kv in (("Host", "127.0.0.1"),) + tuple(headers))
    return ("%s %s %s\r\n%s\r\n" % (method, target, version, h)).encode("latin-1") + body


# ------------------------------------------------------------ the checks

class Server:
    def __init__(self, url, pid):
        u = urlsplit(url)
        self.host, self.port, self.pid = u.hostname, u.port, pid
        self.client = Client(self.host, self.port)

    def get(self, path, method="GET"):
        return self.client.get(path, method)

    def alive(self):
        if not self.pid:
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        try:  # a zombie has exited
            with open("/proc/%d/stat" % self.pid) as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False


def get_json(srv, path):
    status, headers, body = srv.get(path)
    if status != 200:
        fail("%s: status %d (%r)" % (path, status, body[:200]))
        return None
    if not headers.get("content-type", "").startswith("application/json"):
        fail("%s: Content-Type %r, not application/json" % (path, headers.get("content-type")))
    try:
        return json.loads(body)
    except ValueError as e:
        fail("%s: not JSON (%s): %r" % (path, e, body[:200]))
        return None


def close_to(a, b, rtol, atol):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return a.shape == b.shape and bool(np.all(np.abs(a - b) <= rtol * np.abs(b) + atol))


def check_info(srv, args, exp):
    info = get_json(srv, "/api/info")
    if info is None:
        return None
    L, chw = int(exp["latent"]), tuple(int(v) for v in exp["chw"])
    errors = []
    want_keys = {"model", "latent", "channels", "height", "width", "points", "labelled", "label_names",
                 "origin", "axes", "spread", "extent", "flow"}
    if set(info) != want_keys:
        errors.append("keys %s, expected %s" % (sorted(info), sorted(want_keys)))
        if not want_keys <= set(info):
            fail("/api/info: " + "; ".join(errors))
            return None
    if info["model"] != os.path.basename(args.model):
        errors.append("model %r, expected %r" % (info["model"], os.path.basename(args.model)))
    if info["latent"] != L:
        errors.append("latent %r, the model's is %d" % (info["latent"], L))
    if (info["channels"], info["height"], info["width"]) != chw:
        errors.append("shape %r, the model's is %r" % ((info["channels"], info["height"], info["width"]), chw))
    if info["flow"] is not bool(exp["flow"]):
        errors.append("flow %r, the model %s one" % (info["flow"], "has" if exp["flow"] else "has no"))
    n = len(exp["z"]) if "z" in exp else 0
    if info["points"] != n:
        errors.append("points %r, expected %d" % (info["points"], n))
    names = json.loads(str(exp["names"]))
    if args.data:
        labelled = bool(exp["has_labels"])
        if info["labelled"] is not labelled:
            errors.append("labelled %r" % info["labelled"])
        want = names if names is not None else [str(k) for k in range(10)]
        if labelled and info["label_names"] != want:
            errors.append("label_names %r, expected %r" % (info["label_names"], want))
    else:
        if info["labelled"] is not False or info["label_names"] is not None:
            errors.append("without data: labelled %r, label_names %r (false, null expected)"
                          % (info["labelled"], info["label_names"]))
    k = min(8, L)
    origin = np.array(info["origin"], np.float64)
    axes = np.array(info["axes"], np.float64)
    spread = np.array(info["spread"], np.float64)
    extent = np.array(info["extent"], np.float64)
    if origin.shape != (L,) or axes.shape != (k, L) or spread.shape != (k,) or extent.shape != (4,):
        errors.append("origin/axes/spread/extent shaped %s %s %s %s, expected (%d,) (%d, %d) (%d,) (4,)"
                      % (origin.shape, axes.shape, spread.shape, extent.shape, L, k, L, k))
        fail("/api/info: " + "; ".join(errors))
        return None
    gram = axes @ axes.T
    if not np.allclose(gram, np.eye(k), atol=1e-4):
        errors.append("axes not orthonormal: max |A A^T - I| = %.3g" % np.abs(gram - np.eye(k)).max())
    if L == 2 or not args.data:
        if not (np.all(origin == 0) and np.allclose(axes, np.eye(L)[:k], atol=1e-7)):
            errors.append("origin %r, axes %r: expected 0 and the latent's own axes" % (info["origin"], info["axes"]))
    if not args.data:
        if not np.all(spread == 1) or list(extent) != [-3, 3, -3, 3]:
            errors.append("without data: spread %r, extent %r (ones, [-3, 3, -3, 3] expected)"
                          % (info["spread"], info["extent"]))
    else:
        z = exp["z"].astype(np.float64)
        scale = np.abs(z).max() + 1e-12
        mean = z.mean(0)
        if L > 2 and not close_to(origin, mean, 1e-4, 1e-5 * scale):
            errors.append("origin %r is not the mean of the test points %r" % (origin.tolist(), mean.tolist()))
        p = (z - origin) @ axes.T
        sd0, sd1 = p.std(0), p.std(0, ddof=1) if len(p) > 1 else p.std(0)
        if not (close_to(spread, sd0, 1e-3, 1e-6 * scale) or close_to(spread, sd1, 1e-3, 1e-6 * scale)):
            errors.append("spread %r, the points' standard deviations along the axes are %r"
                          % (spread.tolist(), sd0.tolist()))
        if L > 2:
            ev = np.sort(np.linalg.eigvalsh(np.cov((z - mean).T, bias=True)))[::-1][:k]
            if not (close_to(sd0 ** 2, ev, 1e-3, 1e-4 * ev[0]) and np.all(np.diff(spread) <= 1e-9 * spread[0])):
                errors.append("axes are not the principal directions: variances along them %r, the "
                              "covariance's largest eigenvalues %r" % ((sd0 ** 2).tolist(), ev.tolist()))
        for j, (lo, hi) in enumerate(((extent[0], extent[1]), (extent[2], extent[3]))):
            a, b = p[:, j].min(), p[:, j].max()
            r = b - a
            if not (a - 0.06 * r - 1e-6 <= lo <= a - 0.04 * r + 1e-6 and b + 0.04 * r - 1e-6 <= hi <= b + 0.06 * r + 1e-6):
                errors.append("extent %r: the points' range along axis %d is [%g, %g] (5%% margins expected)"
                              % (extent.tolist(), j, a, b))
    if errors:
        fail("/api/info: " + "; ".join(errors))
    else:
        ok("/api/info: latent %d, %dx%dx%d, %d points, flow %s, %d orthonormal axes%s" % (
            L, *chw, info["points"], info["flow"], k,
            ", principal directions, spread and extent of the points" if args.data and L > 2 else
            ", origin 0 and the latent's own axes" if L == 2 or not args.data else ""))
    return info


def check_scatter(srv, args, exp, info):
    s = get_json(srv, "/api/scatter")
    if s is None or info is None:
        return
    if not args.data:
        if s != {"x": [], "y": [], "label": []}:
            fail("/api/scatter without data: %r, expected three empty lists" % (s,))
        else:
            ok("/api/scatter without data: empty")
        return
    z = exp["z"].astype(np.float64)
    n = len(z)
    if set(s) != {"x", "y", "label"} or len(s["x"]) != n or len(s["y"]) != n:
        fail("/api/scatter: keys %s, %s points, expected %d" % (sorted(s), len(s.get("x", [])), n))
        return
    labels = exp["labels"].tolist() if bool(exp["has_labels"]) else None
    if labels is None and s["label"] is not None or labels is not None and s["label"] != labels:
        fail("/api/scatter: labels differ from the data's")
    if int(exp["latent"]) == 2:
        want = z
    else:
        want = (z - np.array(info["origin"])) @ np.array(info["axes"])[:2].T
    got = np.array([s["x"], s["y"]], np.float64).T
    scale = np.abs(want).max()
    err = np.abs(got - want) / (np.abs(want) + 1e-3 * scale)
    if not close_to(got, want, 1e-4, 1e-5 * scale):
        i = int(np.argmax(err.max(1)))
        fail("/api/scatter: point %d is (%r, %r), expected (%r, %r)" % (i, got[i, 0], got[i, 1], want[i, 0], want[i, 1]))
    else:
        ok("/api/scatter: %d points = %s of the test images, labels" % (
            n, "encode_latent" if int(exp["latent"]) == 2 else "(encode_latent - origin) . axes[0..1]"))


def check_png_answer(srv, path, expected, what, boundary):
    status, headers, body = srv.get(path)
    if status != 200:
        fail("%s: status %d (%r)" % (path, status, body[:200]))
        return None
    if headers.get("content-type") != "image/png":
        fail("%s: Content-Type %r" % (path, headers.get("content-type")))
    good, nb, msg = compare_png(body, expected, what)
    if not good:
        fail(path + ": " + msg)
        return None
    boundary[0] += nb
    return body


def grid_geometry(n, h, w):
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    return cols, rows, rows * h + 2 * (rows + 1), cols * w + 2 * (cols + 1)


def check_samples(srv, exp, samples):
    chw = tuple(int(v) for v in exp["chw"])
    c, h, w = chw
    bodies, same_as_library, compared = {}, 0, 0
    for k, (seed, n) in enumerate(samples):
        path = "/api/samples?seed=%d&n=%d" % (seed, n)
        status, headers, body = srv.get(path)
        if status != 200:
            fail("%s: status %d (%r)" % (path, status, body[:200]))
            continue
        try:
            img = png_decode(body)
        except (ValueError, zlib.error) as e:
            fail("%s: not a valid PNG: %s" % (path, e))
            continue
        cols, rows, gh, gw = grid_geometry(n, h, w)
        if img.shape != (gh, gw, c):
            fail("%s: PNG of %s, expected %s for %d images in %d columns" % (path, img.shape, (gh, gw, c), n, cols))
            continue
        cell = np.zeros((gh, gw), bool)  # every cell of the grid
        filled = np.zeros((gh, gw), bool)  # the first n
        grid = np.zeros((gh, gw, c), np.float64)
        for j in range(rows * cols):
            r, q = divmod(j, cols)
            y, x = 2 + r * (h + 2), 2 + q * (w + 2)
            cell[y:y + h, x:x + w] = True
            if j < n:
                filled[y:y + h, x:x + w] = True
                grid[y:y + h, x:x + w] = chw_to_hwc(exp["s%d" % k][j])
        if not np.all(img[~cell] == 128):
            fail("%s: the gaps and border are not grey 128" % path)
        want = chw_to_hwc(to_byte(grid.transpose(2, 0, 1)))
        d = np.abs(img.astype(int) - want.astype(int))
        compared += 1
        if np.all((d == 0) | ((d == 1) & near_boundary(grid)) | ~filled[:, :, None]):
            same_as_library += 1
        bodies[(seed, n)] = body
        again = srv.get(path)
        if again[2] != body:
            fail("%s: a second request gives other bytes" % path)
    if len(bodies) == len(samples):
        ok("/api/samples: PNG sizes of %s grids, grey gaps, the same seed gives the same bytes"
           % ", ".join(str(n) for _, n in samples))
    if same_as_library == compared:
        ok("/api/samples: the images are vae_model_sample_prior(seed)'s (%d grids)" % compared)
    else:
        note("/api/samples: %d of %d grids are not vae_model_sample_prior(seed)'s draws (not required)"
             % (compared - same_as_library, compared))
    d = srv.get("/api/samples")
    s016 = bodies.get((0, 16))
    if s016 is not None and (d[0] != 200 or d[2] != s016):
        fail("/api/samples without parameters is not seed=0&n=16")
    a, b = srv.get("/api/samples?seed=1&n=4"), srv.get("/api/samples?seed=2&n=4")
    if a[0] != 200 or b[0] != 200 or a[2] == b[2]:
        fail("/api/samples: seeds 1 and 2 give the same picture (or fail: %d, %d)" % (a[0], b[0]))
    else:
        ok("/api/samples: defaults seed 0, n 16; other seeds, other samples")
    return bodies


def check_values(srv, args, exp, zs, recon_idx, samples, rng):
    boundary = [0]
    L = int(exp["latent"])
    ndec = len(zs)
    good = 0
    decoded = {}
    for j in range(ndec):
        body = check_png_answer(srv, "/api/decode?z=" + zstr(zs[j]), exp["dec"][j], "decode", boundary)
        if body is not None:
            good += 1
            decoded[j] = body
    if good == ndec:
        ok("/api/decode: %d random points, pixels = to_byte(decode(z))" % ndec)
    # as JavaScript writes numbers: exponents, no leading zero, integers
    forms = ["1e-7", "-2.5e-7", "3", "-1", "0.25", "1.5e%2B0", "-0.125", "2"]
    zf = [forms[k % len(forms)] for k in range(L)]
    status, headers, body = srv.get("/api/decode?z=" + ",".join(zf))
    if status != 200:
        fail("/api/decode?z=%s (numbers as JavaScript may write them): status %d (%r)" % (",".join(zf), status, body[:100]))
    else:
        ok("/api/decode: exponents and other decimal forms (%s) accepted" % ",".join(zf[:4]))
    # HEAD, and the page
    status, headers, body = srv.get("/api/decode?z=" + zstr(zs[0]), "HEAD")
    if status != 200 or body or headers.get("content-type") != "image/png":
        fail("HEAD /api/decode: status %d, %d bytes, %r" % (status, len(body), headers.get("content-type")))
    status, headers, body = srv.get("/")
    if status != 200 or not headers.get("content-type", "").startswith("text/html") or not body:
        fail("GET /: status %d, %r, %d bytes" % (status, headers.get("content-type"), len(body)))
    else:
        ok("HEAD /api/decode; GET / is an HTML page (%d bytes)" % len(body))
    recon_bodies = {}
    if args.data:
        n = len(exp["z"])
        good = 0
        for i in recon_idx:
            if check_png_answer(srv, "/api/image?i=%d" % i, exp["x"][i], "image %d" % i, boundary) is not None:
                good += 1
        if good == len(recon_idx):
            ok("/api/image: %d test images (of %d) equal the data" % (good, n))
        good = 0
        for j, i in enumerate(recon_idx):
            body = check_png_answer(srv, "/api/reconstruct?i=%d" % i, exp["recon"][j], "reconstruct %d" % i, boundary)
            if body is not None:
                good += 1
                recon_bodies[i] = body
        if good == len(recon_idx):
            ok("/api/reconstruct: %d test images, pixels = to_byte(reconstruct(x))" % good)
    sample_bodies = check_samples(srv, exp, samples)
    if boundary[0]:
        note("%d pixel values one off where the value is within float rounding of a rounding boundary"
             % boundary[0])
    return decoded, recon_bodies, sample_bodies


def check_concurrency(srv, exp, zc, recon_bodies, sample_bodies, threads=8, per=100):
    """threads x per decodes at distinct points over keep-alive connections,
    with reconstructions and samples in two more threads."""
    errors, boundary, connects = [], [0], []
    lock = threading.Lock()
    start = threading.Barrier(threads + 2)

    def decoder(t):
        c = Client(srv.host, srv.port)
        start.wait()
        for k in range(per):
            j = t * per + k
            try:
                status, headers, body = c.get("/api/decode?z=" + zstr(zc[j]))
            except OSError as e:
                with lock:
                    errors.append("decode %d: %s" % (j, e))
                continue
            good, nb, msg = compare_png(body, exp["dec"][len(exp["dec"]) - len(zc) + j], "decode") \
                if status == 200 else (False, 0, "status %d" % status)
            with lock:
                boundary[0] += nb
                if not good:
                    errors.append("thread %d, z #%d: %s" % (t, k, msg))
        connects.append(c.connects)
        c.close()

    def mixer(t):
        c = Client(srv.host, srv.port)
        r = random.Random(t)
        keys = list(recon_bodies) + list(sample_bodies)
        start.wait()
        for k in range(per // 2):
            key = r.choice(keys) if keys else None
            if key is None:
                break
            if isinstance(key, tuple):
                path, want = "/api/samples?seed=%d&n=%d" % key, sample_bodies[key]
            else:
                path, want = "/api/reconstruct?i=%d" % key, recon_bodies[key]
            try:
                status, headers, body = c.get(path)
            except OSError as e:
                status, body = str(e), b""
            if status != 200 or body != want:
                with lock:
                    errors.append("%s: status %s, %s" % (path, status, "other bytes than before" if status == 200 else body[:80]))
        c.close()

    ts = [threading.Thread(target=decoder, args=(t,)) for t in range(threads)]
    ts += [threading.Thread(target=mixer, args=(t,)) for t in range(2)]
    t0 = time.time()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    dt = time.time() - t0
    if errors:
        fail("concurrent decodes: %d wrong answers, e.g. %s" % (len(errors), "; ".join(errors[:3])))
    else:
        ok("concurrency: %d threads x %d decodes at distinct points (%d connections), each the decode of its "
           "own z, with reconstructions and samples from 2 more threads, byte-identical (%.1f s)"
           % (threads, per, sum(connects), dt))
    if sum(connects) > threads * 2:
        note("keep-alive: %d connections for %d threads" % (sum(connects), threads))


# ----------------------------------------------------------------- fuzzing

class Tally:
    def __init__(self):
        self.sent = 0
        self.status = collections.Counter()
        self.closed = 0
        self.silent = 0
        self.lock = threading.Lock()

    def add(self, r):
        with self.lock:
            self.sent += 1
            if r == CLOSED:
                self.closed += 1
            elif r == TIMEOUT:
                self.silent += 1
            elif isinstance(r, tuple):
                self.status[r[0]] += 1


def text_message(r, head):
    status, headers, body = r
    if not headers.get("content-type", "").startswith("text/plain"):
        return "Content-Type %r, not text/plain" % headers.get("content-type")
    if head:
        return "" if not body else "a body to HEAD"
    line = body.rstrip(b"\r\n")
    if not line or b"\n" in line:
        return "not a one-line message: %r" % body[:100]
    return ""


def bad_requests(rng, info, n):
    """~n well-formed requests with bad parameters, paths or methods:
    (bytes, allowed statuses, what, HEAD?, needs a text message?)."""
    L, pts = info["latent"], info["points"]
    good_num = lambda: repr(round(rng.uniform(-3, 3), rng.randrange(1, 7)))
    bad_num = ["nan", "NaN", "-nan", "inf", "-inf", "Infinity", "INF", "1e39", "-1e39", "3.5e38", "1e309",
               "1e99999", "0x1p3", "0x10", "0X1P-2", "", " 1", "1 ", "%201", "1%20", "%091", "+1e",
               "abc", "1.2.3", "--1", "1e", "e1", ".", "-", "1e+", "1e-", "%zz", "%", "%0", "%ff", "%fe%ff",
               "%00", "1%00", "%c3%a9", "1" * 400, "9" * 5000 + ".5", "-" + "8" * 1000, "1_000", "1,5e",
               "0b101", "1/2", "(1)", "[1]", "true", "null", "1d", "1f", "1.0f", "\u0661".encode().hex(),
               "%ef%bc%91", "1e1e1", "..1", "1..", "--", "nan(0x1)", "0x", "%2B%2B1"]
    reqs = []

    def add(target, allowed=(400,), what="", method="GET", headers=(), body=b"", text=True):
        reqs.append((request_bytes(method, target, headers, body), tuple(allowed), what or target[:80],
                     method == "HEAD", text))

    def zlist():
        return [good_num() for _ in range(L)]

    # z: wrong counts, bad numbers at random places, bad separators
    while len(reqs) < n * 0.45:
        k = rng.randrange(12)
        z = zlist()
        if k == 0:
            z = z[:-1] if rng.random() < 0.5 else z + [good_num()]
        elif k == 1:
            z = [] if rng.random() < 0.5 else z[:rng.randrange(0, L)]
        elif k in (2, 3, 4, 5):
            for _ in range(rng.randrange(1, 3)):
                z[rng.randrange(L)] = rng.choice(bad_num)
        elif k == 6:
            s = ",".join(z)
            s = rng.choice([s + ",", "," + s, s.replace(",", ",,", 1) if L > 1 else s + ",,", s.replace(",", ";"),
                            s.replace(",", "%2C%2C", 1) if L > 1 else "%2C" + s,
                            s.replace(",", "%20,") if L > 1 else s + "%20"])
            add("/api/decode?z=" + s, what="z=" + s[:60])
            continue
        elif k == 7:
            s = "".join(rng.choice("0123456789.,-+eExXnNaAiIfF%") for _ in range(rng.randrange(1, 40)))
            if not any(ch in s for ch in "xXnNaAiIfF%"):
                s += "x"
            add("/api/decode?z=" + s, what="z=" + s[:60])
            continue
        elif k == 8:
            s = ",".join(["0"] * rng.choice([L - 1, L + 1, 3 * L, 1000]))
            add("/api/decode?z=" + s, what="z of %d numbers" % (s.count(",") + 1))
            continue
        elif k == 9:
            add(rng.choice(["/api/decode", "/api/decode?", "/api/decode?z", "/api/decode?z=",
                            "/api/decode?Z=" + ",".join(z), "/api/decode?z%3D" + ",".join(z),
                            "/api/decode?z=" + ",".join(z) + "&z=" + ",".join(z),
                            "/api/decode?z=" + ",".join(z) + "&" + rng.choice(["i=1", "foo=1", "foo", "=1", "seed=1", "n=2"]),
                            "/api/decode?" + rng.choice(["i=1", "foo=1", "foo", "=1", "seed=1"]) + "&z=" + ",".join(z)]))
            continue
        elif k == 10:
            add("/api/decode?z=" + ",".join(z), method="HEAD", allowed=(200,), what="HEAD decode (good)", text=False)
            z[rng.randrange(L)] = rng.choice(bad_num)
            add("/api/decode?z=" + ",".join(z), method="HEAD", what="HEAD z=" + ",".join(z)[:60])
            continue
        else:
            s = ",".join("0" for _ in range(L)) + "%00" + rng.choice(["", ",1", "junk"])
            add("/api/decode?z=" + s, what="z with a NUL: " + s)
            continue
        add("/api/decode?z=" + ",".join(z), what="z=" + ",".join(z)[:60])
    big = ",".join(["0"] * 10000)
    add("/api/decode?z=" + big, allowed=(400, 414, 431), what="z of 10,000 numbers", text=False)
    # i, n, seed
    bad_i = ["-1", str(pts), str(pts + 1), str(2 ** 31), str(2 ** 32), str(2 ** 63), str(2 ** 64 - 1), str(2 ** 64),
             "9" * 30, "abc", "1.5", "1e2", "", "0x1", "%201", "1%20", "1%00", "1,2", "NaN", "inf", "-0x1",
             "1" * 5000, "%", "%zz", "0.0", "1e0"]
    bad_n = ["0", "65", "-1", "100", "abc", "", "1.5", str(2 ** 64), str(2 ** 32 + 16), "1e1", "%00", "%204",
             "16%20", "0x10", "-0", "9" * 40]
    bad_seed = ["-1", str(2 ** 64), str(2 ** 64 + 1), "9" * 30, "abc", "1.5", "", "1e3", "0x10", "%201",
                "1%00", "-0x1", "18446744073709551615" + "0"]
    while len(reqs) < n * 0.75:
        k = rng.randrange(8)
        i = rng.randrange(max(pts, 1))
        if k in (0, 1):
            ep = rng.choice(["image", "reconstruct"])
            v = rng.choice(bad_i)
            add("/api/%s?i=%s" % (ep, v))
        elif k == 2:
            ep = rng.choice(["image", "reconstruct"])
            add(rng.choice(["/api/%s" % ep, "/api/%s?" % ep, "/api/%s?i" % ep, "/api/%s?i=%d&i=%d" % (ep, i, i),
                            "/api/%s?i=%d&x=1" % (ep, i), "/api/%s?I=%d" % (ep, i), "/api/%s?z=0,0" % ep,
                            "/api/%s?i=%d&seed=1" % (ep, i)]))
        elif k == 3:
            add("/api/samples?n=" + rng.choice(bad_n) + rng.choice(["", "&seed=1"]))
        elif k == 4:
            add("/api/samples?seed=" + rng.choice(bad_seed) + rng.choice(["", "&n=4"]))
        elif k == 5:
            add(rng.choice(["/api/samples?seed=1&seed=1", "/api/samples?n=4&n=4", "/api/samples?seed=1&n=4&x=2",
                            "/api/samples?N=4", "/api/samples?seed", "/api/samples?n", "/api/samples?z=0",
                            "/api/samples?seed=1&n=4&seed=2", "/api/samples?seed,n=5", "/api/samples?n,seed=5",
                            "/api/samples?seed,=5", "/api/samples?,n=5", "/api/samples?ee=5"]))
        elif k == 6:
            add(rng.choice(["/api/info?x=1", "/api/info?z=0,0", "/api/scatter?i=0", "/api/scatter?foo",
                            "/api/info?info", "/api/scatter?=1"]))
        else:
            add("/api/%s?i=%d" % (rng.choice(["image", "reconstruct"]), i), method="HEAD", allowed=(200,) if pts else (400,),
                what="HEAD image (good)", text=False)
    # paths, traversal
    paths = ["/api", "/api/", "/api/decode/", "/API/info", "/api/info/", "/index.html", "/favicon.ico",
             "/api/decodez", "/api/info.json", "/api//info", "/.env", "/etc/passwd", "/proc/self/environ",
             "/../../etc/passwd", "/api/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2fetc%2fpasswd",
             "//etc/passwd", "/api/image/../../../../etc/passwd", "/%00", "/api/info%00",
             "/..", "/../", "/%2e%2e%2f", "/api/decode%3Fz=0,0", "/" + "a/" * 50, "/%ff", "/\\..\\..\\etc\\passwd",
             "/..;/etc/passwd", "/api/samples/../../../../etc/passwd", "/cgi-bin/test", "/api/%2e%2e/%2e%2e/etc/passwd"]
    for p in paths:
        add(p, allowed=(404, 400), what="path " + p)
    # a percent-encoded path may be decoded before it is looked up: the
    # endpoint's answer or a 4xx
    add("/api%2finfo", allowed=(200, 404, 400), what="path /api%2finfo", text=False)
    add("/api/%69nfo", allowed=(200, 404, 400), what="path /api/%69nfo", text=False)
    while len(reqs) < n * 0.85:
        p = "/" + "/".join(rng.choice(["api", "..", ".", "%2e%2e", "etc", "passwd", "decode", "info", "x",
                                       "%2f", "", "image", "samples"]) for _ in range(rng.randrange(1, 6)))
        if p in ("/api/info", "/api/scatter", "/", "/api/samples") or p.rstrip("/") == "":
            continue
        add(p, allowed=(404, 400), what="path " + p)
    # methods
    bodyh = (("Content-Length", "5"),)
    chunk = (("Transfer-Encoding", "chunked"),)
    while len(reqs) < n:
        m = rng.choice(["POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "FOO", "get", "Get", "PROPFIND",
                        "MKCOL", "LINK", "X" * 30])
        target = rng.choice(["/", "/api/info", "/api/decode?z=" + ",".join(["0"] * L), "/nope", "/api/samples"])
        kind = rng.randrange(4)
        if kind == 0:
            add(target, allowed=(405,), method=m, what="%s %s" % (m, target))
        elif kind == 1:
            add(target, allowed=(405, 413), method=m, headers=bodyh, body=b"hello", what="%s %s with a body" % (m, target))
        elif kind == 2:
            add(target, allowed=(405, 413), method=m, headers=chunk, body=b"5\r\nhello\r\n0\r\n\r\n",
                what="%s %s with a chunked body" % (m, target))
        else:
            mm = rng.choice(["GET", "HEAD"])
            h = rng.choice([bodyh, chunk, bodyh + (("Expect", "100-continue"),)])
            add(target, allowed=(413,), method=mm, headers=h,
                body=b"hello" if h[0][0] == "Content-Length" else b"5\r\nhello\r\n0\r\n\r\n",
                what="%s %s with a body" % (mm, target))
    return reqs


def garbage_requests(rng, info):
    """Requests that are not HTTP/1.1 or are oversized: (bytes, what,
    half-close after sending?).  garbage_answer_ok says what may answer."""
    L = info["latent"]
    good = request_bytes("GET", "/api/decode?z=" + ",".join(["0"] * L))
    g = [
        (b"GET /\r\n", "HTTP/0.9", True),
        (b"GET /api/info\r\n\r\n", "HTTP/0.9 with a blank line", False),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "the HTTP/2 preface", False),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x64\x00\x04"
         b"\x00\x01\x00\x00\x00\x02\x00\x00\x00\x00", "the HTTP/2 preface and SETTINGS", False),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(rng.randrange(256) for _ in range(300)),
         "a TLS ClientHello", False),
        (b"\r\n\r\n\r\n", "blank lines", False),
        (b"GET\r\n\r\n", "a method alone", False),
        (b"GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 without Host", False),
        (b"GET / HTTP/1.1\r\nHost\r\n\r\n", "a header without a colon", False),
        (b"GET / HTTP/1.1\r\n Host: x\r\n\r\n", "a folded first header", False),
        (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", "Content-Length -1", False),
        (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", "two Content-Lengths", False),
        (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n", "a huge Content-Length", False),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", "a bad chunk size", False),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n", "a huge chunk size", False),
        (b"GET /api/decode?z=0 0 HTTP/1.1\r\nHost: x\r\n\r\n", "a space in the target", False),
        (b"GET /api/info HTTP/1.1 HTTP/1.1\r\nHost: x\r\n\r\n", "two versions", False),
        (b"GET /api/\x00info HTTP/1.1\r\nHost: x\r\n\r\n", "a NUL in the target", False),
        (b"GET /api/info HTTP/1.1\r\nHost: x\x00y\r\n\r\n", "a NUL in a header", False),
        (b"GET /api/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n", "bytes over 127 in the target", False),
        (b"GET /api/info\x7f HTTP/1.1\r\nHost: x\r\n\r\n", "DEL in the target", False),
        (b"GET api/info HTTP/1.1\r\nHost: x\r\n\r\n", "a target without /", False),
        (b"GET * HTTP/1.1\r\nHost: x\r\n\r\n", "the target *", False),
        (b"CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: x\r\n\r\n", "CONNECT", False),
        (b"GET http://127.0.0.1/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", "an absolute target", False),
        (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"\r\n" * 3, "extra blank lines", False),
        (b"\x00" * 1000, "NUL bytes", True),
    ]
    for v in ("HTTP/1.2", "HTTP/2.0", "HTTP/9.9", "HTTP/1", "HTTP/", "HTTPS/1.1", "http/1.1", "HTTP/1.1x", "HTTP/01.1",
              "HTTP/1.10", "HTTP/-1.1", "ICY"):
        g.append((("GET /api/info %s\r\nHost: x\r\n\r\n" % v).encode(), "version " + v, False))
    for _ in range(40):
        b = bytes(rng.randrange(256) for _ in range(rng.choice([1, 10, 100, 1000, 5000])))
        g.append((b + rng.choice([b"", b"\r\n\r\n"]), "%d random bytes" % len(b), rng.random() < 0.7))
    for _ in range(30):
        b = bytearray(good)
        for _ in range(rng.randrange(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        g.append((bytes(b), "a request with flipped bytes", False))
    for _ in range(20):  # cut off mid-way, then half-closed or dropped
        g.append((good[:rng.randrange(1, len(good) - 1)], "a request cut off", rng.random() < 0.7))
    for size in (20 << 10, 64 << 10, 300 << 10, 1 << 20):  # oversized
        g.append((("GET /api/decode?z=" + "0," * (size // 2) + "0 HTTP/1.1\r\nHost: x\r\n\r\n").encode(),
                  "a request line of %d KiB" % (size >> 10), False))
        g.append((("GET /%s HTTP/1.1\r\nHost: x\r\n\r\n" % ("a" * size)).encode(), "a path of %d KiB" % (size >> 10), False))
        g.append((b"GET /api/info HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * size + b"\r\n\r\n",
                  "a header of %d KiB" % (size >> 10), False))
    for count in (1000, 10000, 50000):
        g.append((b"GET /api/info HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: v\r\n" % k for k in range(count)) + b"\r\n",
                  "%d headers" % count, False))
    g.append((b"GET /api/info HTTP/1.1\r\nHost: x\r\n" + b"Cookie: a=b\r\n" * 5000 + b"\r\n", "5,000 cookies", False))
    return g


def garbage_answer_ok(what, status):
    """4xx for garbage; also 505 for a version other than HTTP/1.x, and 200
    where the bytes may still make a valid request (HTTP/1.2 is HTTP/1.1 to
    a server, a flipped byte may land in a header's value, a missing Host
    may be forgiven)."""
    if 400 <= status < 500:
        return True
    if what.startswith("version") or what.startswith("the HTTP/2") or what == "a request with flipped bytes":
        if status in (200, 505):
            return True
    return status in (200, 404) and what in (
        "HTTP/1.1 without Host", "extra blank lines", "a request with flipped bytes", "a target without /",
        "bytes over 127 in the target", "an absolute target", "a folded first header", "the target *",
        "HTTP/0.9 with a blank line", "DEL in the target", "a NUL in a header")


def fuzz(srv, info, exp, zcheck_index, count, seed=20240601):
    rng = random.Random(seed)
    tally = Tally()
    L = info["latent"]
    zcheck = exp["dec"][zcheck_index]
    check_path = "/api/decode?z=" + ",".join(["0"] * L)  # zcheck is z = 0
    t_start = time.time()

    def valid_still(when):
        try:
            c = Raw(srv.port, timeout=30)
            c.send(request_bytes("GET", check_path))
            r = c.response()
            c.close()
        except (OSError, ValueError) as e:
            r = str(e)
        good = isinstance(r, tuple) and r[0] == 200 and compare_png(r[2], zcheck, "decode")[0]
        if not good:
            fail("after %s, a valid decode is not answered correctly: %s" % (
                when, r if not isinstance(r, tuple) else (r[0], r[2][:80])))
        return good

    # idle connections (and one that stops mid-request), to see closed after 10 s
    idle = []
    for k in range(4):
        c = Raw(srv.port)
        if k >= 2:
            c.send(b"GET /api/info HTTP/1.1\r\nHost: x\r\n")
        idle.append(c)
    idle_since = time.time()

    # slow clients: a valid request a byte every 10 ms, answered correctly
    slow_errors = []

    def slow(k):
        try:
            c = Raw(srv.port, timeout=30)
            c.send(request_bytes("GET", check_path), pause=0.01)
            r = c.response()
            c.close()
            if not (isinstance(r, tuple) and r[0] == 200 and compare_png(r[2], zcheck, "decode")[0]):
                slow_errors.append(r if not isinstance(r, tuple) else r[:2])
        except (OSError, ValueError) as e:
            slow_errors.append(str(e))

    slow_threads = [threading.Thread(target=slow, args=(k,)) for k in range(3)]
    for t in slow_threads:
        t.start()

    reqs = bad_requests(rng, info, count)
    rng.shuffle(reqs)
    wrong = []
    conn = None
    for b0 in range(0, len(reqs), 200):
        for data, allowed, what, head, text in reqs[b0:b0 + 200]:
            r = None
            for attempt in (0, 1):
                if conn is None:
                    conn = Raw(srv.port, timeout=10)
                conn.send(data)
                try:
                    r = conn.response(head=head)
                except ValueError as e:
                    r = "bad response: %s" % e
                if r == CLOSED and attempt == 0:
                    # the server may close a kept-alive connection: a new one
                    conn.close()
                    conn = None
                    continue
                break
            tally.add(r)
            if not isinstance(r, tuple):
                if not (r == CLOSED and 414 in allowed):
                    wrong.append("%s: %s" % (what, r))
                if conn is not None:
                    conn.close()
                    conn = None
                continue
            status, headers, body = r
            problem = ""
            if status not in allowed:
                problem = "status %d, expected %s" % (status, "/".join(map(str, allowed)))
            elif status >= 400 and text:
                problem = text_message(r, head)
            if status == 200 and 200 not in allowed or body.startswith(b"\x89PNG") and 200 not in allowed:
                problem = problem or "a PNG"
            if b"root:" in body:
                problem = "a file's content"
            if problem:
                wrong.append("%s -> %s (%s)" % (what, problem, "a PNG" if body.startswith(b"\x89PNG") else
                                                repr(body[:60])))
            if headers.get("connection", "").lower() == "close" or data.endswith(b"hello\r\n0\r\n\r\n") or \
                    data.endswith(b"\r\n\r\nhello"):
                # (after a body: a new connection, so that no answer to the
                # body's bytes is taken for the next request's)
                conn.close()
                conn = None
        valid_still("%d malformed requests" % tally.sent)
    if conn is not None:
        conn.close()
    n_bad = tally.sent
    if wrong:
        distinct = collections.OrderedDict()
        for w in wrong:
            distinct[w] = distinct.get(w, 0) + 1
        fail("%d of %d well-formed requests with bad parameters, paths or methods answered wrongly (%d distinct):"
             % (len(wrong), n_bad, len(distinct)))
        for w, k in list(distinct.items())[:40]:
            print("   %s%s" % (w, " (x%d)" % k if k > 1 else ""))
    else:
        ok("%d well-formed bad requests (z, i, n, seed, parameters, paths, traversal, methods, bodies): "
           "each the expected 4xx with a one-line text/plain message" % n_bad)

    # garbage, oversized, cut off: 4 at a time on new connections
    garbage = garbage_requests(rng, info)
    gwrong = []
    gtally = Tally()

    def one(item):
        data, what, halfclose = item
        try:
            c = Raw(srv.port, timeout=0.5 if what in ("a request cut off", "HTTP/0.9") or
                    "random" in what and not data.endswith(b"\r\n\r\n") else 2.0)
        except OSError as e:
            gwrong.append("%s: cannot connect: %s" % (what, e))
            return
        c.send(data)
        if halfclose:
            try:
                c.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        try:
            r = c.response()
        except ValueError as e:
            r = "bad response: %s" % e
        c.close()
        gtally.add(r)
        tally.add(r)
        if isinstance(r, tuple):
            st = r[0]
            if not garbage_answer_ok(what, st) or b"root:" in r[2]:
                gwrong.append("%s -> status %d (%r)" % (what, st, r[2][:60]))
        elif r not in (CLOSED, TIMEOUT):
            gwrong.append("%s -> %s" % (what, r))

    for b0 in range(0, len(garbage), 40):
        batch = garbage[b0:b0 + 40]
        ts = [threading.Thread(target=lambda part: [one(x) for x in part], args=(batch[k::4],)) for k in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        valid_still("%d garbage requests" % (b0 + len(batch)))
    if gwrong:
        fail("garbage answered wrongly: " + "; ".join(gwrong[:10]))
    else:
        ok("%d garbage, oversized and cut-off requests (HTTP/0.9, HTTP/2, TLS, random bytes, 20 KiB-1 MiB lines "
           "and headers, header floods): 4xx or closed (%s; %d closed, %d silent for 2 s)" % (
               len(garbage), ", ".join("%d: %d" % kv for kv in sorted(gtally.status.items())),
               gtally.closed, gtally.silent))

    # more than 64 connections at once: held idle, then all asking
    held = []
    try:
        for _ in range(80):
            held.append(Raw(srv.port, timeout=20))
    except OSError as e:
        fail("opening 80 connections: %s" % e)
    time.sleep(1.0)
    for c in held:
        c.send(request_bytes("GET", check_path, (("Connection", "close"),)))
    answered = 0
    for c in held:
        try:
            r = c.response()
        except ValueError as e:
            r = str(e)
        tally.add(r)
        if isinstance(r, tuple) and r[0] == 200 and compare_png(r[2], zcheck, "decode")[0]:
            answered += 1
        c.close()
    if answered != len(held):
        fail("80 connections at once, then a decode on each: %d answered correctly" % answered)
    else:
        ok("80 connections opened at once and held, then a decode on each: all answered")
    held = [Raw(srv.port, timeout=5) for _ in range(80)]
    time.sleep(1.0)
    for c in held:
        c.close()
    t0 = time.time()
    if valid_still("80 idle connections closed"):
        ok("80 idle connections held, then dropped: a decode is answered %.2f s later" % (time.time() - t0))

    for t in slow_threads:
        t.join()
    if slow_errors:
        fail("slow clients (a byte every 10 ms): %s" % slow_errors[:3])
    else:
        ok("3 slow clients (a byte every 10 ms, all through the fuzzing) answered correctly")

    # the idle connections: closed by the server after 10 s (with 4 s of slack)
    closed = [c.closed_by_peer(max(0.1, idle_since + 14 - time.time())) for c in idle]
    for c in idle:
        c.close()
    if not all(closed):
        fail("idle connections (2 silent, 2 mid-request) still open %.0f s later: %s"
             % (time.time() - idle_since, closed))
    else:
        ok("idle connections (2 silent, 2 mid-request) closed by the server within %.0f s" % (time.time() - idle_since))

    valid_still("the fuzzing")
    alive = srv.alive()
    (ok if alive else fail)("the server process is %s after the fuzzing" % ("alive" if alive else "gone"))
    print("fuzz: %d requests sent in %.1f s; answers by status: %s; %d connections closed without an answer, "
          "%d silent for 2 s; server alive: %s" % (
              tally.sent, time.time() - t_start, ", ".join("%d: %d" % kv for kv in sorted(tally.status.items())),
              tally.closed, tally.silent, "yes" if alive else "NO"), flush=True)


# -------------------------------------------------------------------- main

def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--expect":
        expect_main(sys.argv[2], sys.argv[3])
        return 0
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("model")
    p.add_argument("--data")
    p.add_argument("--limit", type=int, default=10000)
    p.add_argument("--pid", type=int, default=0)
    p.add_argument("--fuzz", type=int, default=0)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    t0 = time.time()
    srv = Server(args.url, args.pid)
    rng = np.random.default_rng(7)
    # the latent size first, for the points to ask about
    status, _, body = srv.get("/api/info")
    if status != 200:
        fail("/api/info: status %d" % status)
        return 1
    L = json.loads(body)["latent"]
    points = json.loads(body)["points"]
    ndec = 10 if args.quick else 50
    nconc = 0 if args.quick else 800
    zs = rng.normal(0, 1.5, (ndec, L)).astype(np.float32)
    zc = rng.normal(0, 1.5, (nconc, L)).astype(np.float32)
    z0 = np.zeros((1, L), np.float32)
    recon_idx = sorted(set([0, 1, max(points - 1, 0)] + rng.integers(0, max(points, 1), 8).tolist())) if points else []
    samples = [(0, 16), (7, 25), (2 ** 64 - 1, 1), (1, 2), (123, 64)] if not args.quick else [(0, 16), (7, 5)]
    exp = expected_values(args, np.concatenate([zs, z0, zc]), recon_idx, samples)
    ok("expected values from the library (%.1f s)" % (time.time() - t0))
    info = check_info(srv, args, exp)
    check_scatter(srv, args, exp, info)
    exp_dec = exp["dec"]
    exp["dec"] = exp_dec[:ndec]
    decoded, recon_bodies, sample_bodies = check_values(srv, args, exp, zs, recon_idx, samples, rng)
    exp["dec"] = exp_dec
    if nconc:
        check_concurrency(srv, exp, zc, recon_bodies, {k: v for k, v in sample_bodies.items() if k[1] <= 16})
    if args.fuzz and info is not None:
        fuzz(srv, info, exp, ndec, args.fuzz)
    if not srv.alive():
        fail("the server process has gone")
    print("explore_client: %s, %.1f s" % ("%d failed" % len(failures) if failures else "all passed",
                                           time.time() - t0), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
