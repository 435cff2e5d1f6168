"""Synthetic networks for scheduling tests and benchmarks: a plain DAG becomes a Workload.

`dag_workload` turns any DAG (nodes in a topological order) into a network in the RandWire style: a
stem convolution feeds the nodes without predecessors; each node aggregates its inputs, then runs a
convolution with a relu epilogue; the sinks are concatenated into a final 1x1 convolution. The
aggregation (`merge`) is 'sum', one element-wise layer summing all inputs (a raw expression
`Z = X0 + X1 + ...`, as a RandWire node sums its inputs in one operation), 'adds', a chain of binary
`add` layers (what a SIMD unit runs), 'concat', one concatenation along the channels, or 'auto': a
value can be a part of one concatenation only (it is written into that buffer), so concatenate where
the parts are free and chain adds otherwise. `darts_normal_cell` is the DARTS (V2) normal cell with the
operations simplified to one depthwise + one pointwise convolution.

    >>> import networkx as nx
    >>> wl = dag_workload("chain", nx.path_graph(3, create_using=nx.DiGraph), channels=4, hw=4)
    >>> [layer.name for layer in wl.layers]
    ['stem', 'n0', 'n1', 'n2', 'head']
"""

from __future__ import annotations

import networkx as nx
import yaml

from mapper.spec.loader import load_yaml_text
from mapper.spec.workload import Workload, parse_workload


def dag_workload(name: str, dag: nx.DiGraph, channels: int | dict = 8, hw: int = 8, merge: str = "auto",
                 kernel: int = 1) -> Workload:
    """A network over `dag` (see the module doc); `channels` per node (an int, or a dict node -> int;
    a sum needs one count for its inputs), `merge` 'auto', 'concat', 'sum' or 'adds'."""
    nodes = list(nx.topological_sort(dag)) if not all(isinstance(n, int) for n in dag) else sorted(dag)
    width = channels if isinstance(channels, dict) else {n: channels for n in nodes}
    stem = max(width.values())
    layers = [_conv("stem", 3, stem, hw, 3, None)]
    in_concat: set[str] = set()
    sinks = [n for n in nodes if dag.out_degree(n) == 0]
    for n in nodes:
        preds = sorted(dag.predecessors(n), key=nodes.index)
        sources = [f"n{p}" for p in preds] or ["stem"]
        cin = sum(width[p] for p in preds) if preds else stem
        if len(sources) == 1:
            source = sources[0]
        elif merge == "concat" or (merge == "auto" and not in_concat & set(sources) and n not in sinks):
            if in_concat & set(sources):
                raise ValueError(f"node {n}: a part of two concatenations; use merge='auto'")
            source = {"concat": sources, "axis": 1}
            in_concat |= set(sources)
        elif merge == "sum":
            cin = width[preds[0]]
            terms = " + ".join(f"X{i}[n,c,h,w]" for i in range(len(sources)))
            layers.append({"name": f"n{n}.sum", "expr": f"Z[n,c,h,w] = {terms}",
                           "dims": {"n": 1, "c": cin, "h": hw, "w": hw}, "inputs": sources})
            source = f"n{n}.sum"
        else:
            cin = width[preds[0]]
            source = sources[0]
            for i, other in enumerate(sources[1:]):
                layers.append({"name": f"n{n}.sum{i}", "op": "add",
                               "params": {"shape": [1, cin, hw, hw]}, "inputs": [source, other]})
                source = f"n{n}.sum{i}"
        layers.append(_conv(f"n{n}", cin, width[n], hw, kernel, source))
    parts = [f"n{n}" for n in sinks]
    head_in = parts[0] if len(parts) == 1 else {"concat": parts, "axis": 1}
    if in_concat & set(parts):
        raise ValueError("a sink is a part of another concatenation")
    layers.append(_conv("head", sum(width[n] for n in sinks), stem, hw, 1, head_in))
    return _workload(name, layers)


def darts_normal_cell(channels: int = 16, hw: int = 16, cells: int = 1) -> Workload:
    """DARTS V2's normal cell (`cells` of them stacked): two preprocessing 1x1 convolutions, four nodes
    that each sum two operations of earlier nodes, the four nodes concatenated into the output. A
    separable or dilated convolution is one depthwise 3x3 (dilation 2) and one pointwise convolution."""
    genotype = [(("sep", 0), ("sep", 1)), (("sep", 0), ("sep", 1)), (("sep", 1), ("skip", 0)),
                (("skip", 0), ("dil", 2))]
    c, layers = channels, [_conv("stem", 3, channels, hw, 3, None)]
    prev2 = prev = "stem"
    prev_c = channels
    for cell in range(cells):
        pre = [f"c{cell}.pre0", f"c{cell}.pre1"]
        layers.append(_conv(pre[0], prev_c if cell == 0 or prev2 != "stem" else channels, c, hw, 1, prev2))
        layers.append(_conv(pre[1], prev_c, c, hw, 1, prev))
        states = pre[:]
        for i, ops in enumerate(genotype):
            outs = []
            for j, (op, k) in enumerate(ops):
                if op == "skip":
                    outs.append(states[k])
                    continue
                base = f"c{cell}.n{i}.{op}{j}"
                layers.append({"name": f"{base}.dw", "op": "depthwise_conv2d", "inputs": [states[k]],
                               "params": {"C": c, "H": hw, "W": hw, "R": 3, "pad": 2 if op == "dil" else 1,
                                          "dilation": 2 if op == "dil" else 1, "activation": "relu"}})
                layers.append(_conv(f"{base}.pw", c, c, hw, 1, f"{base}.dw"))
                outs.append(f"{base}.pw")
            name = f"c{cell}.n{i}"
            layers.append({"name": name, "op": "add", "params": {"shape": [1, c, hw, hw]}, "inputs": outs})
            states.append(name)
        prev2, prev, prev_c = prev, f"c{cell}.out", 4 * c
        layers.append(_conv(prev, 4 * c, 4 * c, hw, 1, {"concat": states[2:], "axis": 1}))
    return _workload(f"darts_normal_x{cells}", layers)


def _conv(name: str, cin: int, cout: int, hw: int, kernel: int, source) -> dict:
    layer = {"name": name, "op": "conv2d", "params": {"C": cin, "K": cout, "H": hw, "W": hw, "R": kernel,
                                                        "pad": kernel // 2, "activation": "relu"}}
    if source is not None:
        layer["inputs"] = [source]
    return layer


def _workload(name: str, layers: list[dict]) -> Workload:
    text = yaml.safe_dump({"name": name, "layers": layers}, sort_keys=False)
    return parse_workload(load_yaml_text(text, f"<{name}>"))
