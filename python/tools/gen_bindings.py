"""Prints the binding table of libvae/_bindings.py from include/vae.h.

Usage: python3 python/tools/gen_bindings.py include/vae.h > python/libvae/_bindings_table.txt
(then paste it into TABLE); tests/python/test_drift.py checks the result.
"""
import sys

from vae_header import parse

funcs, _ = parse(sys.argv[1])
for name, (ret, args) in funcs.items():
    print('    "%s": (%s, [%s]),' % (name, ret, ", ".join(args)))
