"""Parses include/vae.h with pycparser: the exported prototypes and the enums.

Used by gen_bindings.py (which prints libvae/_bindings.py's table) and by
tests/python/test_drift.py (which checks the table against the header).
The header is reduced to plain C first: comments, preprocessor lines, the
__cplusplus block and VAE_API are removed, and the <stdint.h>/<stddef.h>
types are declared by hand.
"""
import re

from pycparser import c_ast, c_parser

_PRELUDE = """typedef unsigned long size_t; typedef long int64_t; typedef unsigned long uint64_t;
typedef int int32_t; typedef unsigned char uint8_t;
"""
# C spelling (after removing const) -> the table's type name (see _bindings.py)
C_TO_TABLE = {
    "void": "None", "int": "I", "vae_status": "STATUS", "int64_t": "I64",
    "uint64_t": "U64", "size_t": "SZ", "float": "F", "double": "D", "int32_t": "I32",
    "char *": "S", "int *": "IP", "int64_t *": "I64P", "float *": "FP", "double *": "DP",
    "size_t *": "SZP", "uint8_t *": "U8P", "int32_t *": "I32P",
    "void *": "VP", "vae_progress_fn": "PROGRESS", "vae_log_fn": "LOG_FN",
    "vae_comm_sum_fn": "COMM_SUM", "vae_comm_broadcast_fn": "COMM_BCAST",
    "vae_comm_reduce_scatter_fn": "COMM_REDUCE_SCATTER", "vae_comm_allgather_fn": "COMM_ALLGATHER",
}
HANDLES = ("vae_tensor", "vae_graph", "vae_model", "vae_optimizer", "vae_dataset", "vae_comm")


def _plain_c(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    text = re.sub(r"#ifdef __cplusplus.*?#endif", " ", text, flags=re.S)
    text = "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#"))
    return _PRELUDE + text.replace("VAE_API", "")


def _spell(node, enums):
    """A declarator type as 'base' or 'base *' (const dropped)."""
    stars = 0
    while isinstance(node, c_ast.PtrDecl):
        stars, node = stars + 1, node.type
    if isinstance(node, c_ast.FuncDecl):
        raise ValueError("function pointer parameter without a typedef")
    base = " ".join(node.type.names)
    if base in enums and base != "vae_status":
        base = "int"  # an enum is an int at the ABI
    if base in HANDLES:
        return "H" if stars == 1 else "HP"
    return base + " *" * stars if stars else base


def parse(path):
    """-> (functions {name: (ret, [args])} in table spelling, enums {type: {NAME: value}})."""
    ast = c_parser.CParser().parse(_plain_c(open(path).read()), filename=path)
    enums = {}
    for ext in ast.ext:
        if isinstance(ext, c_ast.Typedef) and isinstance(ext.type.type, c_ast.Enum):
            values, nxt = {}, 0
            for e in ext.type.type.values.enumerators:
                nxt = int(e.value.value, 0) if e.value is not None else nxt
                values[e.name] = nxt
                nxt += 1
            enums[ext.name] = values
    funcs = {}
    for ext in ast.ext:
        if isinstance(ext, c_ast.Decl) and isinstance(ext.type, c_ast.FuncDecl):
            fd = ext.type
            args = [] if fd.args is None else [p for p in fd.args.params]
            if len(args) == 1 and _spell(args[0].type, enums) == "void":
                args = []
            ret = _spell(fd.type, enums)
            funcs[ext.name] = (C_TO_TABLE.get(ret, ret),
                               [C_TO_TABLE.get(s, s) for s in (_spell(a.type, enums) for a in args)])
    return funcs, enums
