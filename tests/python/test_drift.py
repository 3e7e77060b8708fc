"""The package against include/vae.h: every exported function bound with the
prototype's types, every enum constant with the header's value."""
import ctypes
import os
import re

import pytest

from vae_header import C_TO_TABLE, parse  # python/tools (conftest.py puts it on sys.path)

import libvae
from libvae import _bindings as B
from libvae.enums import C_ENUMS

HEADER = os.path.join(os.path.dirname(__file__), "..", "..", "include", "vae.h")
# Exported functions the package may leave unbound, with the reason.  (None now.)
OMITTED = {}

FUNCS, ENUMS = parse(HEADER)


def test_header_parsed():
    assert len(FUNCS) > 100 and "vae_status" in ENUMS


@pytest.mark.parametrize("name", sorted(FUNCS))
def test_function_bound_with_prototype_types(name):
    if name in OMITTED:
        return
    assert name in B.TABLE, "%s is exported by vae.h but has no binding in _bindings.TABLE" % name
    ret, args = FUNCS[name]
    unknown = [t for t in [ret] + args if not hasattr(B, t) and t != "None"]
    assert not unknown, "%s: C types without a ctypes mapping: %s" % (name, unknown)
    want = (None if ret == "None" else getattr(B, ret), [getattr(B, a) for a in args])
    assert B.TABLE[name] == want, "%s: binding %s, header says %s" % (name, B.TABLE[name], (ret, args))


def test_no_binding_without_prototype():
    assert not set(B.TABLE) - set(FUNCS), "bound but not in vae.h"


def test_enums_match_header():
    assert set(ENUMS) == set(C_ENUMS), "enum types added or removed in vae.h"
    for ctype, values in ENUMS.items():
        cls_name, prefix = C_ENUMS[ctype]
        cls = getattr(libvae, cls_name)
        expect = {re.sub("^(%s)" % prefix, "", k): v for k, v in values.items()
                  if k != "VAE_ROLE_COUNT_"}
        assert {m.name: m.value for m in cls} == expect, ctype


def test_type_map_is_ctypes():
    for c, t in C_TO_TABLE.items():
        assert t == "None" or hasattr(B, t), c
    assert B.I is ctypes.c_int and B.U64 is ctypes.c_uint64 and B.SZ is ctypes.c_size_t
