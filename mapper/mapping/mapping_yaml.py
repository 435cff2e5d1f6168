"""The Mapping file format (`covenant-mapping/1`, docs/formats/mapping.md): a Mapping to a YAML document
and back. Loading checks the ACG digest, the binding and the legality (`mapper.mapping.mapping.check_legal`),
and names every violation at the line of its field.

    >>> from mapper.spec.acg import load_acg
    >>> from mapper.mapping.mapping import greedy_mapping
    >>> from mapper.spec.workload import make_layer
    >>> acg = load_acg("tiny")
    >>> layer = make_layer("g", "C[m,n] += A[m,k] * B[k,n]", {"m": 8, "n": 8, "k": 8},
    ...                    {"A": "int8", "B": "int8", "C": "int32"})
    >>> m = greedy_mapping(layer, bind(layer, acg)[0], acg)
    >>> parse_mapping_text(mapping_to_yaml(m), "m.yaml") == m
    True
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import yaml

from mapper.mapping.binding import Binding, bind
from mapper.mapping.mapping import FORMAT, Mapping, acg_digest, check_legal
from mapper.spec.acg import ACG, load_acg
from mapper.spec.capability import dtype_field, parse_expr_field
from mapper.spec.files import write_text
from mapper.spec.loader import Field, SpecError, load_yaml, load_yaml_text
from mapper.spec.workload import Layer, OnChip, make_layer, parse_epilogue


def mapping_to_dict(m: Mapping) -> dict:
    layer = m.layer
    doc = {
        "format": FORMAT,
        "acg": {"name": m.acg, "digest": m.acg_digest},
        "layer": {
            "name": layer.name, "workload": m.workload, "expr": str(layer.expr), "dims": dict(layer.dims),
            "dtypes": layer.dtypes,
            "shapes": {t.name: list(t.shape) for t in layer.inputs},
        },
        "binding": {
            "capability": m.binding.capability,
            "tensors": dict(m.binding.tensors),
            "dims": {d: e for d, e in m.binding.dims if e is not None},
        },
        "placement": {t: list(p) for t, p in m.placement},
        "double_buffer": {t: [s for t2, s in m.double_buffer if t2 == t]
                          for t in dict.fromkeys(t for t, _ in m.double_buffer)},
        "loops": [[[d, f] for d, f in lv] for lv in m.loops],
        "spatial": dict(m.spatial),
    }
    if layer.epilogue:
        doc["layer"]["epilogue"] = layer.epilogue.to_yaml()
    if layer.onchip:  # a step of a fused group: what stays on chip while it runs
        doc["layer"]["onchip"] = {"homes": dict(layer.onchip.homes), "reserved": dict(layer.onchip.reserved)}
    if m.predicted:
        doc["predicted"] = dict(m.predicted)
    return doc


def mapping_to_yaml(m: Mapping) -> str:
    header = (f"# covenant mapping of layer {m.layer.name} on {m.acg}: loops per level, outermost first "
              "(level 0 runs over off-chip tiles)\n")
    return header + yaml.safe_dump(mapping_to_dict(m), sort_keys=False, default_flow_style=None, width=110)


def write_mapping(m: Mapping, path: str | Path) -> None:
    """Write atomically: a temporary file in the same folder, renamed into place."""
    write_text(path, mapping_to_yaml(m))


def load_mapping(path: str | Path, acg: ACG | None = None) -> Mapping:
    return parse_mapping(load_yaml(path), acg)


def parse_mapping_text(text: str, source: str, acg: ACG | None = None) -> Mapping:
    return parse_mapping(load_yaml_text(text, source), acg)


def parse_mapping(root: Field, acg: ACG | None = None) -> Mapping:
    """Read a mapping document; with `acg`, also check that the mapping is for that ACG."""
    f = root.keys(required=("format", "acg", "layer", "binding", "placement", "loops", "spatial"),
                  optional=("double_buffer", "predicted"))
    if f["format"].value != FORMAT:
        raise f["format"].expected(f"'{FORMAT}'")
    acg, digest = _parse_acg(f["acg"], acg)
    lf = f["layer"].keys(required=("name", "expr", "dims", "dtypes"),
                          optional=("workload", "shapes", "onchip", "epilogue"))
    layer = _parse_layer(lf, acg)
    binding = _parse_binding(f["binding"], layer, acg)
    placement = tuple((t, tuple(s.str() for s in f["placement"].child(t).items())) for t in layer.tensors)
    loops = _parse_loops(f["loops"])
    spatial = tuple((d, v.int(minimum=1)) for d, v in f["spatial"].mapping().items())
    double = []
    if "double_buffer" in f:
        for t, v in f["double_buffer"].mapping().items():
            double.extend((t, s.str()) for s in v.items())
    predicted = ()
    if "predicted" in f:
        figures = f["predicted"].mapping().items()
        predicted = tuple((k, v.number(minimum=-math.inf, maximum=math.inf)) for k, v in figures)
    workload = lf["workload"].ident() if "workload" in lf and lf["workload"].value not in ("", None) else ""
    m = Mapping(acg.name, digest, layer, binding, placement, loops, spatial, tuple(double), predicted, workload)
    problems = check_legal(m, acg)
    if problems:
        raise illegal_mapping_error(root.source, f, problems)
    return m


def _parse_acg(field: Field, acg: ACG | None) -> tuple[ACG, str]:
    """The ACG the mapping is for (loaded by name without `acg`) and its digest, checked against `acg`."""
    acg_f = field.keys(required=("name", "digest"))
    acg_name, digest = acg_f["name"].str(), acg_f["digest"].str()
    if acg is None:
        acg = load_acg(acg_name)
    if acg.name != acg_name or acg_digest(acg) != digest:
        raise field.error(f"the mapping is for ACG '{acg_name}' ({digest}); '{acg.name}' is {acg_digest(acg)}")
    return acg, digest


def _parse_layer(lf: dict[str, Field], acg: ACG) -> Layer:
    """The layer: its expression, dims, dtypes, input shapes and what stays on chip while it runs."""
    expr = parse_expr_field(lf["expr"])
    dims = {d: v.int(minimum=1) for d, v in lf["dims"].mapping().items()}
    if set(dims) != set(expr.dims):
        raise lf["dims"].error(f"expected extents for exactly the dims {', '.join(expr.dims)}")
    dtypes = {t: dtype_field(v) for t, v in lf["dtypes"].mapping().items()}
    if set(dtypes) != set(expr.tensors):
        raise lf["dtypes"].error(f"expected dtypes for exactly the tensors {', '.join(expr.tensors)}")
    shapes = {}
    if "shapes" in lf:
        for t, v in lf["shapes"].mapping().items():
            if t not in expr.inputs:
                raise v.error(f"'{t}' is not an input tensor of the expression")
            shapes[t] = tuple(x.int(minimum=1) for x in v.items())
    layer = make_layer(lf["name"].ident(), expr, {d: dims[d] for d in expr.dims}, dtypes, shapes,
                       onchip=_parse_onchip(lf["onchip"], expr.tensors, acg) if "onchip" in lf else OnChip())
    return replace(layer, epilogue=parse_epilogue(lf["epilogue"], layer)) if "epilogue" in lf else layer


def _parse_binding(field: Field, layer: Layer, acg: ACG) -> Binding:
    """The binding named by the document, which must be one of the layer's bindings on the ACG."""
    bf = field.keys(required=("capability", "tensors", "dims"))
    cap_name = bf["capability"].str()
    tensors = {t: v.str() for t, v in bf["tensors"].mapping().items()}
    bdims = {d: v.str() for d, v in bf["dims"].mapping().items()}
    match = [b for b in bind(layer, acg) if b.capability == cap_name and dict(b.tensors) == tensors
             and {d: e for d, e in b.dims if e is not None} == bdims]
    if not match:
        raise field.error(f"not a valid binding of layer {layer.name} on {acg.name}")
    return match[0]


def _parse_loops(field: Field) -> tuple[tuple[tuple[str, int], ...], ...]:
    """The loops per level, outermost first: [dim, factor] pairs."""
    loops = []
    for lv in field.items():
        level = []
        for item in lv.items():
            pair = item.items()
            if len(pair) != 2:
                raise item.expected("a pair [dim, factor]")
            level.append((pair[0].str(), pair[1].int(minimum=1)))
        loops.append(tuple(level))
    return tuple(loops)


def _parse_onchip(f: Field, tensors, acg: ACG) -> OnChip:
    parts = f.keys(optional=("homes", "reserved"))
    homes, reserved = [], []
    for t, v in (parts["homes"].mapping().items() if "homes" in parts else []):
        if t not in tensors:
            raise v.error(f"'{t}' is not a tensor of the layer")
        if v.str() not in acg.storages:
            raise v.error(f"{acg.name} has no storage '{v.value}'")
        homes.append((t, v.value))
    for name, v in (parts["reserved"].mapping().items() if "reserved" in parts else []):
        if name not in acg.storages:
            raise v.error(f"{acg.name} has no storage '{name}'")
        reserved.append((name, v.int(minimum=0)))
    return OnChip(tuple(homes), tuple(reserved))


# Which field of a mapping document a legality problem points at (the first needle found decides).
_PROBLEM_FIELDS = (("fused group", "layer"), (": needs ", "loops"), ("is for ACG", "acg"), ("binding", "binding"),
                   ("double-buffer", "double_buffer"), ("double buffering", "double_buffer"),
                   ("placement", "placement"), ("partial sums", "placement"),
                   ("spatial factor", "spatial"), ("the instruction needs", "spatial"))


def illegal_mapping_error(source: str, fields: dict[str, Field], problems: list[str]) -> SpecError:
    """One line naming every violation, each at the line of the field it concerns (tile sizes, hence
    capacities, are the `loops`' doing unless the problem names another field)."""
    located = []
    for problem in problems:
        key = next((k for needle, k in _PROBLEM_FIELDS if needle in problem), "loops")
        field = fields.get(key) or fields["loops"]
        located.append((field.line, key, problem))
    line, key, first = located[0]
    rest = "".join(f"; line {ln} ({k}): {p}" for ln, k, p in located[1:])
    count = f" [{len(problems)} violations]" if len(problems) > 1 else ""
    return SpecError(source, line, key, f"illegal mapping: {first}{rest}{count}")
