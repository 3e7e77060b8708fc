#!/usr/bin/python3
"""How fast vae-explore answers the page: the time of /api/decode requests,
from the request's first byte to the PNG's last, measured by a client on the
same machine.

Usage: /usr/bin/python3 bench/explore_latency.py URL [--n 1000] [--seed 1]
                                                 [--clients 4]

URL is the address vae-explore printed (http://127.0.0.1:PORT/).  The points
are a fixed-seed spread over the plane /api/info shows (its extent, the
sliders at 0), each asked once per run, as a mouse moving over the plane
asks.  Three runs, after a warm-up:
  keepalive       one connection kept open, a request at a time (the browser)
  new_connection  a new TCP connection per request
  N_clients       N processes at once, each with its own kept-alive
                  connection, N/n requests each (--clients, default 4)
Prints a table of p50, p95, p99 and max in milliseconds and requests per
second, then "result <key> <value>" lines (as bench/sgemm_peak does).  The
client is Python: on a loaded 2-core machine it competes with the server for
the cores, so the numbers are an upper bound on the server's own time.
Only the standard library is used.
"""
import argparse
import json
import multiprocessing
import os
import random
import socket
import sys
import time
from urllib.parse import urlsplit


class Conn:
    """A minimal HTTP/1.1 keep-alive client: GET, read the head and
    Content-Length bytes of body."""

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.sock = socket.create_connection((host, port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def get(self, path, close=False):
        """-> (status, content type, body)."""
        req = "GET %s HTTP/1.1\r\nHost: %s:%d\r\n%s\r\n" % (
            path, self.host, self.port, "Connection: close\r\n" if close else "")
        self.sock.sendall(req.encode())
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed before the answer")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
        n = int(headers.get("content-length", "0"))
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed in the body")
            self.buf += chunk
        body, self.buf = self.buf[:n], self.buf[n:]
        return status, headers.get("content-type", ""), body

    def close(self):
        self.sock.close()


def points(info, n, seed):
    """n decode paths at a fixed-seed spread over the plane's extent."""
    rng = random.Random(seed)
    u0, u1, v0, v1 = info["extent"]
    origin, axes = info["origin"], info["axes"]
    out = []
    for _ in range(n):
        u, v = rng.uniform(u0, u1), rng.uniform(v0, v1)
        z = [o + u * a + v * b for o, a, b in zip(origin, axes[0], axes[1])]
        out.append("/api/decode?z=" + ",".join("%.6g" % c for c in z))
    return out


def check(status, ctype, body):
    if status != 200 or ctype != "image/png" or not body.startswith(b"\x89PNG"):
        raise RuntimeError("not a PNG: status %d, %s, %r" % (status, ctype, body[:80]))


def run_keepalive(host, port, paths):
    c = Conn(host, port)
    times = []
    for p in paths:
        t = time.perf_counter()
        check(*c.get(p))
        times.append(time.perf_counter() - t)
    c.close()
    return times


def run_new_connection(host, port, paths):
    times = []
    for p in paths:
        t = time.perf_counter()
        c = Conn(host, port)
        check(*c.get(p, close=True))
        c.close()
        times.append(time.perf_counter() - t)
    return times


def worker(args):
    """One of the concurrent clients: -> (times, its start, its end) on the
    wall clock, which all processes share."""
    host, port, paths, start_at = args
    c = Conn(host, port)
    check(*c.get(paths[0]))
    while time.time() < start_at:
        time.sleep(0.001)
    t0 = time.time()
    times = []
    for p in paths:
        t = time.perf_counter()
        check(*c.get(p))
        times.append(time.perf_counter() - t)
    t1 = time.time()
    c.close()
    return times, t0, t1


def percentile(sorted_values, q):
    """The nearest-rank percentile."""
    k = max(0, min(len(sorted_values) - 1, int(-(-q * len(sorted_values) // 100)) - 1))
    return sorted_values[k]


def summary(name, times, wall):
    s = sorted(times)
    row = {"p50_ms": percentile(s, 50) * 1e3, "p95_ms": percentile(s, 95) * 1e3,
           "p99_ms": percentile(s, 99) * 1e3, "max_ms": s[-1] * 1e3, "req_per_s": len(s) / wall}
    print("%-16s %8d %8.2f %8.2f %8.2f %8.2f %10.0f" % (name, len(s), row["p50_ms"], row["p95_ms"],
                                                      row["p99_ms"], row["max_ms"], row["req_per_s"]),
          flush=True)
    return row


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("url")
    p.add_argument("--n", type=int, default=1000, help="decodes per run (default 1000)")
    p.add_argument("--seed", type=int, default=1, help="seed of the points (default 1)")
    p.add_argument("--clients", type=int, default=4, help="processes of the concurrent run (default 4)")
    args = p.parse_args()
    u = urlsplit(args.url)
    host, port = u.hostname or "127.0.0.1", u.port or 80
    c = Conn(host, port)
    status, ctype, body = c.get("/api/info")
    if status != 200:
        sys.exit("%s/api/info: status %d" % (args.url, status))
    info = json.loads(body)
    paths = points(info, args.n, args.seed)
    for path in points(info, 50, args.seed + 1):  # warm-up
        check(*c.get(path))
    c.close()
    print("# vae-explore %s: %s, latent %d, %dx%dx%d, %d test points; %d decodes per run over the extent "
          "[%.3g, %.3g] x [%.3g, %.3g]; client on %d cores" % (
              args.url, info["model"], info["latent"], info["channels"], info["height"], info["width"],
              info["points"], args.n, *info["extent"], os.cpu_count()), flush=True)
    print("%-16s %8s %8s %8s %8s %8s %10s" % ("run", "requests", "p50_ms", "p95_ms", "p99_ms", "max_ms",
                                              "req_per_s"))
    results = {}
    t = time.perf_counter()
    times = run_keepalive(host, port, paths)
    results["keepalive"] = summary("keepalive", times, time.perf_counter() - t)
    t = time.perf_counter()
    times = run_new_connection(host, port, paths)
    results["new_connection"] = summary("new_connection", times, time.perf_counter() - t)
    k = args.clients
    parts = [paths[i::k] for i in range(k)]
    with multiprocessing.get_context("fork").Pool(k) as pool:
        start_at = time.time() + 1.0  # all connected, then all at once
        out = pool.map(worker, [(host, port, part, start_at) for part in parts])
    wall = max(o[2] for o in out) - min(o[1] for o in out)
    name = "%d_clients" % k
    results[name] = summary(name, [x for o in out for x in o[0]], wall)
    for run, row in results.items():
        for key, value in row.items():
            print("result explore_%s_%s %.*f" % (run, key, 0 if key == "req_per_s" else 3, value))


if __name__ == "__main__":
    main()
