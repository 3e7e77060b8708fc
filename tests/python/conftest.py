"""Makes python/ importable (the package is tested from the source tree, not
an installed copy) and needs LIBVAE_LIBRARY (ctest sets it)."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "python"))
sys.path.insert(0, os.path.join(ROOT, "python", "tools"))
if not os.environ.get("LIBVAE_LIBRARY"):
    for cand in ("build-py/libvae.so", "build/libvae.so"):
        if os.path.exists(os.path.join(ROOT, cand)):
            os.environ["LIBVAE_LIBRARY"] = os.path.join(ROOT, cand)
            break
