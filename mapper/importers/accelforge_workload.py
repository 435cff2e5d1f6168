"""AccelForge workload import: an Einsum workload, as AccelForge's own loader evaluates it, becomes a
covenant workload (a DAG of `expr:` layers in the same Einsum notation).

AccelForge (Accelergy project, MIT licence) writes a workload as Einsums over named ranks: each
Einsum lists its tensor accesses (`projection`: rank -> rank variable), which one is the output, and
the bits of each value. Its files are Jinja templates with Python expressions, so covenant never
reads them itself: `bench/accelforge_worker.py spec` runs AccelForge's loader in AccelForge's own
interpreter and prints every Einsum evaluated (rank variable bounds, projections, bits, roles). This
module turns that JSON document into a workload (docs/design/importers.md, "AccelForge import"):

- an Einsum with two inputs becomes `OUT[...] += A[...] * B[...]` (its rank variables not on the
  output are the reduction; with none, an element-wise `OUT[...] = A[...] * B[...]`, as Llama's
  gate), one with one input `OUT[...] = IN[...]` (AccelForge counts one
  operation per point of such an Einsum; its softmax stand-in is one of these, imported as what it
  computes there, with a note);
- a *copy* Einsum (AccelForge's `is_copy_operation`: computes nothing and, unfused, costs nothing)
  is left out and its readers read its input instead, with a note;
- a tensor's axes follow its projection's rank order; dims are the rank variables and their bounds;
- bits per value -> dtype (8: int8, 16: int16, 32: int32; others to the next wider one, noted); a
  multiply-accumulate's output keeps its tensor's own width, as AccelForge counts its traffic;
- an input no Einsum writes is a weight (`weights:`) when AccelForge marks it persistent (weights,
  KV caches), else a network input; a tensor an Einsum writes feeds its readers (`inputs:`).

    >>> doc = {"einsums": [
    ...     {"name": "Matmul1", "is_copy_operation": False, "rank_variable_bounds": {"m": 4, "n0": 8, "n1": 2},
    ...      "tensors": [{"name": "T0", "projection": {"M": "m", "N0": "n0"}, "bits_per_value": 8,
    ...                   "output": False, "persistent": False},
    ...                  {"name": "W0", "projection": {"N0": "n0", "N1": "n1"}, "bits_per_value": 8,
    ...                   "output": False, "persistent": True},
    ...                  {"name": "T1", "projection": {"M": "m", "N1": "n1"}, "bits_per_value": 8,
    ...                   "output": True, "persistent": False}]}]}
    >>> workload, notes = einsums_to_workload(doc, "mm")
    >>> workload["layers"][0]["expr"], workload["layers"][0]["weights"]
    ('T1[m,n1] += T0[m,n0] * W0[n0,n1]', ['W0'])
"""

from __future__ import annotations

import re

from mapper.spec.loader import SpecError

DTYPE_OF_BITS = {8: "int8", 16: "int16", 32: "int32"}
_AFFINE = re.compile(r"^[a-z_][a-z0-9_]*(\s*[+-]\s*([0-9]+\s*\*\s*)?[a-z_][a-z0-9_]*)*$")


def dtype_of(bits: int | float, notes: list[str], what: str) -> str:
    """The covenant dtype of `bits`-bit values (the next wider one when none has exactly that width)."""
    for width, name in DTYPE_OF_BITS.items():
        if bits <= width:
            if bits != width:
                notes.append(f"{what}: {bits:g}-bit values imported as {name}")
            return name
    raise SpecError("accelforge", None, what, f"{bits:g}-bit values: wider than covenant's widest integer (32)")


def access(tensor: dict, source: str) -> str:
    """`NAME[i,j,...]` from a tensor access's projection (rank -> rank-variable expression)."""
    indices = []
    for rank, index in tensor["projection"].items():
        text = str(index).strip().lower()
        if not _AFFINE.match(text):
            raise SpecError(source, None, f"{tensor['name']}.{rank}",
                            f"projection '{index}' is not an affine index covenant reads")
        indices.append(text.replace(" ", ""))
    return f"{tensor['name']}[{','.join(indices)}]"


def _layer(einsum: dict, alias: dict[str, str], source: str, notes: list[str]) -> dict:
    """The `expr:` layer of one Einsum (inputs renamed through the copies left out, `alias`)."""
    name = einsum["name"]
    outs = [t for t in einsum["tensors"] if t["output"]]
    ins = [dict(t, name=alias.get(t["name"], t["name"])) for t in einsum["tensors"] if not t["output"]]
    if len(outs) != 1 or not 1 <= len(ins) <= 2:
        raise SpecError(source, None, f"einsums.{name}", f"expected one output and one or two inputs, got "
                                                         f"{len(outs)} and {len(ins)}")
    out = outs[0]
    reduced = set(einsum["rank_variable_bounds"]) - {str(v).strip().lower() for v in out["projection"].values()}
    if len(ins) == 2:
        update = "+=" if reduced else "="  # no rank variable left to reduce: an element-wise product
        expr = f"{access(out, source)} {update} {access(ins[0], source)} * {access(ins[1], source)}"
    else:
        expr = f"{access(out, source)} = {access(ins[0], source)}"
        notes.append(f"{name}: one operation per element in AccelForge (a stand-in if its name says "
                     f"more, e.g. softmax); imported as {expr}")
    dtypes = {t["name"]: dtype_of(t["bits_per_value"], notes, f"{name}.{t['name']}") for t in [*ins, out]}
    dims = {d: int(b) for d, b in einsum["rank_variable_bounds"].items()}
    return {"name": name, "expr": expr, "dims": dims, "dtypes": dtypes}


def einsums_to_workload(doc: dict, name: str, source: str = "accelforge") -> tuple[dict, list[str]]:
    """The covenant workload document of the evaluated Einsums in `doc` (the worker's `spec`
    document), and the notes on what was left out or approximated."""
    notes: list[str] = []
    alias: dict[str, str] = {}  # a copy's output -> the tensor it copies
    writer: dict[str, str] = {}  # tensor -> the layer that writes it
    persistent = {t["name"] for e in doc["einsums"] for t in e["tensors"] if t.get("persistent")}
    layers = []
    for einsum in doc["einsums"]:
        if einsum.get("is_copy_operation"):
            (src,) = [t["name"] for t in einsum["tensors"] if not t["output"]]
            (dst,) = [t["name"] for t in einsum["tensors"] if t["output"]]
            alias[dst] = alias.get(src, src)
            notes.append(f"{einsum['name']}: a copy ({dst} = {src}), free in AccelForge unfused; left out, "
                         f"its readers read {alias[dst]}")
            continue
        layer = _layer(einsum, alias, source, notes)
        inputs = [alias.get(t["name"], t["name"]) for t in einsum["tensors"] if not t["output"]]
        fed = {t: writer[t] for t in inputs if t in writer}
        weights = [t for t in inputs if t not in writer and t in persistent]
        if fed:
            layer["inputs"] = fed
        if weights:
            layer["weights"] = weights
        layers.append(layer)
        writer[next(t["name"] for t in einsum["tensors"] if t["output"])] = einsum["name"]
    if not layers:
        raise SpecError(source, None, "einsums", "no Einsum that computes anything")
    return {"name": name, "layers": layers}, notes
