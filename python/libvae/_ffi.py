"""Finds and loads libvae, binds every function of _bindings.TABLE.

Lookup order: the LIBVAE_LIBRARY environment variable (a path to the
shared library); the lib/ directory of the prefix this package is installed
in (<prefix>/lib/libvae.so.1, also lib/<multiarch>/, and sys.prefix's);
then the dynamic loader (ctypes.util.find_library("vae"), "libvae.so.1").
A library older than 0.4.0 is refused.
"""
import ctypes
import ctypes.util
import os
import sys
import sysconfig
from pathlib import Path

from . import _bindings as B
from .errors import error_for

MIN_VERSION = 400  # 0.4.0 (the vae_comm_* functions)
SONAME = "libvae.so.1"


def _candidates():
    env = os.environ.get("LIBVAE_LIBRARY")
    if env:
        return [env]  # an explicit choice is not second-guessed
    site = Path(__file__).resolve().parent.parent
    prefixes = [site.parents[i] for i in (1, 2) if len(site.parents) > i] + [Path(sys.prefix)]
    arch = sysconfig.get_config_var("MULTIARCH") or ""
    out = []
    for p in prefixes:
        for d in ("lib", "lib/" + arch if arch else None, "lib64"):
            if d and str(p / d / SONAME) not in out:
                out.append(str(p / d / SONAME))
    found = ctypes.util.find_library("vae")
    return out + ([found] if found else []) + [SONAME]


def _load():
    tried = []
    for cand in _candidates():
        if os.sep in cand and not os.path.exists(cand):
            tried.append("%s (no such file)" % cand)
            continue
        try:
            return ctypes.CDLL(cand), cand
        except OSError as e:
            tried.append("%s (%s)" % (cand, e))
    raise ImportError("libvae: cannot load the shared library; tried:\n  " + "\n  ".join(tried) +
                      "\nSet LIBVAE_LIBRARY to the path of libvae.so.1.")


lib, path = _load()

called = set()  # names of the functions called so far (the tests' coverage check)


def _record(result, func, args):
    called.add(func.__name__)
    return result


def _check(result, func, args):
    called.add(func.__name__)
    if result != 0:
        raise error_for(result, lib.vae_last_error().decode("utf-8", "replace"))
    return result


def _bind():
    funcs = {}
    for name, (restype, argtypes) in B.TABLE.items():
        f = getattr(lib, name)  # AttributeError names a function the library lacks
        f.restype = ctypes.c_int if restype == B.STATUS else restype
        f.argtypes = [ctypes.c_int if a == B.STATUS else a for a in argtypes]
        f.errcheck = _check if restype == B.STATUS else _record
        funcs[name[4:]] = f
    return funcs


lib.vae_last_error.restype = ctypes.c_char_p
lib.vae_last_error.argtypes = []
lib.vae_version_number.restype = ctypes.c_int
lib.vae_version_number.argtypes = []
if lib.vae_version_number() < MIN_VERSION:
    raise ImportError("libvae: %s is version %d, older than 0.4.0 (%d) that this package needs"
                      % (path, lib.vae_version_number(), MIN_VERSION))
try:
    fn = type("Functions", (), _bind())  # fn.model_encode(...) is vae_model_encode
except AttributeError as e:
    raise ImportError("libvae: %s lacks a function this package binds: %s" % (path, e)) from None
