"""Bad specs: each error names the file, the line and the field, and says what was expected."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mapper.spec.acg import load_acg
from mapper.spec.loader import SpecError
from mapper.spec.workload import load_workload

ACG = textwrap.dedent("""\
    name: small
    clock_ghz: 1.0
    nodes:
      DRAM: {kind: storage, capacity: 1MiB, offchip: true}
      IBUF: {kind: storage, capacity: 256B}
      WBUF: {kind: storage, capacity: 256B}
      OBUF: {kind: storage, capacity: 512B}
      ARRAY:
        kind: compute
        capabilities:
          - name: mvmul
            expr: "C[m,n] += A[m,k] * B[k,n]"
            dims: {k: 4, n: 4}
            operands: {A: IBUF, B: WBUF, C: OBUF}
            dtypes: {A: int8, B: int8, C: int32}
            cycles: "m + 8"
    edges:
      - {from: DRAM, to: IBUF, bytes_per_cycle: 4}
      - {from: DRAM, to: WBUF, bytes_per_cycle: 4}
      - {from: OBUF, to: DRAM, bytes_per_cycle: 4}
    """)

WORKLOAD = textwrap.dedent("""\
    name: net
    layers:
      - {name: conv1, op: conv2d, params: {C: 3, K: 8, H: 16, W: 16, R: 3, pad: 1}}
      - {name: pool, op: max_pool2d, params: {C: 8, H: 16, W: 16, R: 2}, inputs: [conv1]}
      - name: custom
        expr: "O[n,k] += I[n,c] * W[c,k]"
        dims: {n: 2, k: 4, c: 8}
        dtypes: {I: int8, W: int8, O: int32}
    """)


def line_of(text: str, needle: str) -> int:
    """1-based line of the first line containing `needle`."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def fail(tmp_path: Path, loader, text: str) -> str:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        loader(path)
    message = str(info.value)
    assert "\n" not in message, "errors are one line"
    assert message.startswith(str(path)), message
    return message


def test_base_specs_are_valid(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(ACG)
    (tmp_path / "w.yaml").write_text(WORKLOAD)
    assert load_acg(tmp_path / "a.yaml").capability("mvmul").fixed == {"k": 4, "n": 4}
    assert [lyr.name for lyr in load_workload(tmp_path / "w.yaml").layers] == ["conv1", "pool", "custom"]


def test_a_load_and_its_write_back_may_form_a_cycle(tmp_path: Path) -> None:
    """Data going down a level and back up (IBUF -> RF -> IBUF) is a load and its write-back."""
    text = ACG.replace("  WBUF:", "  RF: {kind: storage, capacity: 64B}\n  WBUF:").replace(
        "  - {from: OBUF, to: DRAM, bytes_per_cycle: 4}\n",
        "  - {from: OBUF, to: DRAM, bytes_per_cycle: 4}\n  - {from: IBUF, to: RF, bytes_per_cycle: 4}\n"
        "  - {from: RF, to: IBUF, bytes_per_cycle: 4}\n")
    (tmp_path / "a.yaml").write_text(text)
    assert ("RF", "IBUF") in load_acg(tmp_path / "a.yaml").graph.edges


# (mutation of the ACG text, the text of the line the error must point at, field path, words of the message)
ACG_CASES = [
    ("cycle between siblings", ("  - {from: OBUF, to: DRAM, bytes_per_cycle: 4}\n",
                                "  - {from: OBUF, to: DRAM, bytes_per_cycle: 4}\n  - {from: IBUF, to: WBUF, "
                                "bytes_per_cycle: 4}\n  - {from: WBUF, to: IBUF, bytes_per_cycle: 4}\n"),
     "from: IBUF, to: WBUF", "edges[3]", "the edges IBUF -> WBUF -> IBUF form a cycle on chip through storages at "
     "the same level (level 1)"),
    ("unknown edge node", ("to: WBUF", "to: WBUFF"), "to: WBUFF", "edges[1].to", "unknown node 'WBUFF'"),
    ("operand is compute", ("B: WBUF, C", "B: ARRAY, C"), "operands:",
     "nodes.ARRAY.capabilities[0].operands.B", "'ARRAY' is a compute node"),
    ("operand is no node", ("B: WBUF, C", "B: XBUF, C"), "operands:",
     "nodes.ARRAY.capabilities[0].operands.B", "'XBUF' is not a node"),
    ("unreachable operand", ("  - {from: DRAM, to: WBUF, bytes_per_cycle: 4}\n", ""), "operands:",
     "nodes.ARRAY.capabilities[0].operands.B", "cannot be reached from off-chip memory"),
    ("output cannot write back", ("  - {from: OBUF, to: DRAM, bytes_per_cycle: 4}\n", ""), "operands:",
     "nodes.ARRAY.capabilities[0].operands.C", "cannot write back to off-chip"),
    ("malformed size", ("capacity: 256B}\n  WBUF", "capacity: 12 KiBB}\n  WBUF"), "IBUF:",
     "nodes.IBUF.capacity", "expected a size"),
    ("negative size", ("capacity: 512B", "capacity: -512"), "OBUF:", "nodes.OBUF.capacity", "expected a size"),
    ("unknown dtype", ("B: int8, C", "B: int7, C"), "dtypes:", "capabilities[0].dtypes.B", "expected a dtype"),
    ("dim not in expr", ("{k: 4, n: 4}", "{k: 4, z: 4}"), "dims:", "capabilities[0].dims.z",
     "'z' is not a dim"),
    ("bad fixed extent", ("{k: 4, n: 4}", "{k: 0, n: 4}"), "dims:", "capabilities[0].dims.k", "integer >= 1"),
    ("cycle formula name", ('"m + 8"', '"m + width"'), "cycles:", "capabilities[0].cycles", "width"),
    ("cycle formula syntax", ('"m + 8"', '"m + "'), "cycles:", "capabilities[0].cycles", "got the end at column 5"),
    ("expr syntax", ('A[m,k] * B', 'A[m,k * B'), "expr:", "capabilities[0].expr", "column"),
    ("missing capacity", ("IBUF: {kind: storage, capacity: 256B}", "IBUF: {kind: storage}"), "IBUF:",
     "nodes.IBUF", "missing required field 'capacity'"),
    ("misspelt field", ("capacity: 256B}\n  WBUF", "capcity: 256B}\n  WBUF"), "IBUF:", "nodes.IBUF.capcity",
     "did you mean 'capacity'"),
    ("edge from compute", ("from: OBUF, to: DRAM", "from: ARRAY, to: DRAM"), "from: ARRAY", "edges[2].from",
     "is a compute node"),
    ("no off-chip memory", ("offchip: true", "offchip: false"), "nodes:", "nodes", "offchip: true"),
    ("bad bandwidth", ("to: IBUF, bytes_per_cycle: 4", "to: IBUF, bytes_per_cycle: 0"), "to: IBUF",
     "edges[0].bytes_per_cycle", "a number > 0"),
    ("unknown kind", ("OBUF: {kind: storage", "OBUF: {kind: memory"), "OBUF:", "nodes.OBUF.kind",
     "one of storage, compute"),
    ("operands miss a tensor", ("{A: IBUF, B: WBUF, C: OBUF}", "{A: IBUF, B: WBUF}"), "operands:",
     "capabilities[0].operands", "missing entry for tensor(s) C"),
    ("duplicate key", ("  WBUF: {kind: storage, capacity: 256B}\n",
                       "  WBUF: {kind: storage, capacity: 256B}\n  WBUF: {kind: storage, capacity: 1KiB}\n"),
     "WBUF: {kind: storage, capacity: 1KiB}", "", "duplicate key 'WBUF'"),
    ("yaml syntax", ("nodes:\n", "nodes: [\n"), "DRAM:", "", "YAML syntax error"),
    ("negative latency", ("to: IBUF, bytes_per_cycle: 4", "to: IBUF, bytes_per_cycle: 4, latency: -1"), "to: IBUF",
     "edges[0].latency", "integer >= 0"),
    ("fractional latency", ("to: IBUF, bytes_per_cycle: 4", "to: IBUF, bytes_per_cycle: 4, latency: 1.5"),
     "to: IBUF", "edges[0].latency", "integer"),
    ("interval name", ('cycles: "m + 8"', 'cycles: "m + 8"\n        interval: "m + width"'), "interval:",
     "capabilities[0].interval", "width"),
    ("interval below one", ('cycles: "m + 8"', 'cycles: "m + 8"\n        interval: "m - 8"'), "interval:",
     "capabilities[0].interval", "expected at least 1"),
    ("negative power", ("clock_ghz: 1.0", "clock_ghz: 1.0\npower: -3"), "power:", "power", ">= 0"),
    ("banks removed", ("IBUF: {kind: storage, capacity: 256B}", "IBUF: {kind: storage, capacity: 256B, banks: 4}"),
     "IBUF:", "nodes.IBUF.banks", "'banks' is no longer part of the ACG format"),
]


@pytest.mark.parametrize("name, mutation, line_text, field, words", ACG_CASES, ids=[c[0] for c in ACG_CASES])
def test_bad_acg(tmp_path: Path, name, mutation, line_text, field, words) -> None:
    old, new = mutation
    assert old in ACG
    text = ACG.replace(old, new, 1)
    message = fail(tmp_path, load_acg, text)
    if name != "yaml syntax":  # a syntax error's line is where the parser noticed it
        assert f":{line_of(text, line_text)}:" in message, message
    else:
        assert ":" in message.split(str(tmp_path))[1]
    assert field in message and words in message, message


WORKLOAD_CASES = [
    ("dim missing from dims", ("{n: 2, k: 4, c: 8}", "{n: 2, k: 4}"), "dims:", "layers[2].dims",
     "c used in the expression but missing from dims"),
    ("dim bound zero", ("{n: 2, k: 4, c: 8}", "{n: 2, k: 0, c: 8}"), "dims:", "layers[2].dims.k", "integer >= 1"),
    ("dim bound fractional", ("{n: 2, k: 4, c: 8}", "{n: 2, k: 4.5, c: 8}"), "dims:", "layers[2].dims.k",
     "integer >= 1"),
    ("duplicate layer", ("name: pool,", "name: conv1,"), "name: conv1, op: max_pool2d", "layers[1].name",
     "duplicate layer name 'conv1'"),
    ("unknown op", ("op: max_pool2d", "op: maxpool2d"), "op: maxpool2d", "layers[1].op", "did you mean 'max_pool2d'"),
    ("bad stride", ("R: 2}", "R: 2, stride: 0}"), "name: pool", "layers[1].params.stride", "positive integer"),
    ("unknown param", ("R: 2}", "R: 2, strides: 2}"), "name: pool", "layers[1].params.strides",
     "did you mean 'stride'"),
    ("missing param", ("{C: 3, K: 8,", "{C: 3,"), "name: conv1", "layers[0].params", "missing required parameter 'K'"),
    ("input element mismatch", ("{C: 8, H: 16, W: 16, R: 2}", "{C: 8, H: 32, W: 16, R: 2}"), "name: pool",
     "layers[1].inputs[0]", "produces 2048 elements"),
    ("unknown input", ("inputs: [conv1]", "inputs: [conv2]"), "name: pool", "layers[1].inputs[0]",
     "unknown layer 'conv2'"),
    ("unknown dtype in layer", ("W: int8, O: int32", "W: int8, O: int33"), "dtypes:", "layers[2].dtypes.O",
     "expected a dtype"),
    ("transcendental on ints", ('"O[n,k] += I[n,c] * W[c,k]"', '"O[n,k] += sigmoid(I[n,c]) * W[c,k]"'), "dtypes:",
     "layers[2].dtypes", "needs a floating-point output dtype"),
    ("op and expr", ("- name: custom\n", "- name: custom\n    op: gemm\n"), "- name: custom", "layers[2]",
     "exactly one of 'op'"),
    ("expr references undeclared dim", ('"O[n,k] += I[n,c] * W[c,k]"', '"O[n,k] += I[n,c] * W[c,j]"'), "dims:",
     "layers[2].dims", "j used in the expression but missing"),
    ("too many inputs", ("inputs: [conv1]", "inputs: [conv1, conv1]"), "name: pool", "layers[1].inputs",
     "at most 1 input"),
    ("kernel larger than input", ("R: 2}", "R: 40}"), "name: pool", "layers[1].params",
     "output size is"),
]


@pytest.mark.parametrize("name, mutation, line_text, field, words", WORKLOAD_CASES,
                         ids=[c[0] for c in WORKLOAD_CASES])
def test_bad_workload(tmp_path: Path, name, mutation, line_text, field, words) -> None:
    old, new = mutation
    assert old in WORKLOAD
    text = WORKLOAD.replace(old, new, 1)
    message = fail(tmp_path, load_workload, text)
    assert f":{line_of(text, line_text)}:" in message, message
    assert field in message and words in message, message


@pytest.mark.parametrize("text, words", [
    ("- just\n- a list\n", "expected a YAML mapping at the top level"),
    ("", "expected a YAML mapping at the top level"),
    ("name: x\nlayers: {}\n", "expected a list"),
    ("name: x\nlayers: []\n", "expected at least one layer"),
    ("name: [a\n", "YAML syntax error"),
])
def test_bad_documents(tmp_path: Path, text: str, words: str) -> None:
    assert words in fail(tmp_path, load_workload, text)


def test_cycle_in_inputs(tmp_path: Path) -> None:
    text = textwrap.dedent("""\
        name: cyc
        layers:
          - {name: a, op: relu, params: {shape: [4]}, inputs: [c]}
          - {name: b, op: relu, params: {shape: [4]}, inputs: [a]}
          - {name: c, op: relu, params: {shape: [4]}, inputs: [b]}
        """)
    message = fail(tmp_path, load_workload, text)
    assert ":3: layers[0].inputs: the inputs form a cycle: a -> b -> c -> a" in message, message


def test_missing_file_and_unknown_name() -> None:
    with pytest.raises(SpecError, match="no such file"):
        load_acg("/nonexistent/x.yaml")
    with pytest.raises(SpecError, match="shipped: .*genesys"):
        load_acg("no_such_accelerator")
