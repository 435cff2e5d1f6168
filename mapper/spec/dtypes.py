"""The element types a spec may name, and their NumPy equivalents."""

from __future__ import annotations

import numpy as np

from mapper.spec.notation import TRANSCENDENTAL, Const, walk

DTYPES: dict[str, np.dtype] = {
    name: np.dtype(name)
    for name in ("int8", "uint8", "int16", "int32", "int64", "float16", "float32", "float64")
}


def dtype_bytes(name: str) -> int:
    return DTYPES[name].itemsize


def is_float(name: str) -> bool:
    return DTYPES[name].kind == "f"


def expr_dtype_problem(expr, out_dtype: str) -> str | None:
    """Why `expr` cannot compute in `out_dtype` (every computation happens in the output dtype), or None."""
    if is_float(out_dtype):
        return "shr() needs an integer output dtype" if "shr" in expr.functions else None
    fns = sorted(expr.functions & TRANSCENDENTAL)
    if fns:
        return f"{fns[0]}() needs a floating-point output dtype, got {out_dtype}"
    if "/" in expr.functions:
        return f"'/' needs a floating-point output dtype, got {out_dtype}"
    if any(isinstance(node, Const) and isinstance(node.value, float) for node in walk(expr.rhs)):
        return f"a fractional constant cannot be computed in {out_dtype}"
    return None
