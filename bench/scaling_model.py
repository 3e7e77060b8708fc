"""The scaling model of docs/DISTRIBUTED.md: predicted efficiency of
data-parallel training on N machines from what one machine measures.

Per step of a global batch B on N machines, each machine computes B/N rows
at its measured speed and then all-reduces the gradient (ring all-reduce:
every machine sends and receives 2(N-1)/N of its bytes, in 2(N-1) messages):
    compute   = B / (N * ips)            ips: one machine's images/s
    allreduce = 2 (N-1)/N * bytes / bw + 2 (N-1) * latency
    efficiency = compute / (compute + allreduce)
and with the all-reduce overlapped with the backward pass (buckets, as
PyTorch DDP does; the backward is about 2/3 of the step), only the part
that does not fit behind the backward counts:
    efficiency = compute / (compute + max(0, allreduce - 2/3 compute))
The smallest batch that keeps the efficiency >= 80% without overlap is
    B >= 4 * N * ips * allreduce.
Usage: scaling_model.py NAME:FLOATS:IPS:BATCH ...   (prints a table)"""
import sys

NETWORKS = {"10 Gb/s": (1.25e9 * 0.9, 30e-6), "100 Gb/s": (12.5e9 * 0.9, 5e-6)}  # (bytes/s, latency s)
MACHINES = (2, 8, 64)


def allreduce(n, nbytes, bw, lat):
    return 2 * (n - 1) / n * nbytes / bw + 2 * (n - 1) * lat


def main(args):
    print("%-4s %-9s %4s  %9s %9s %7s %7s %10s" % ("net", "network", "N", "compute", "allreduce",
                                                  "eff", "overlap", "B for 80%"))
    for spec in args:
        name, floats, ips, batch = spec.split(":")
        nbytes, ips, batch = 4 * int(floats), float(ips), int(batch)
        for net, (bw, lat) in NETWORKS.items():
            for n in MACHINES:
                c = batch / (n * ips)
                a = allreduce(n, nbytes, bw, lat)
                eff = c / (c + a)
                ov = c / (c + max(0.0, a - 2 * c / 3))
                need = 4 * n * ips * a
                print("%-4s %-9s %4d  %7.2fms %7.2fms %6.0f%% %6.0f%% %10.0f" %
                      (name, net, n, c * 1e3, a * 1e3, 100 * eff, 100 * ov, need))


if __name__ == "__main__":
    main(sys.argv[1:] or ["R1:652824:30000:128"])
