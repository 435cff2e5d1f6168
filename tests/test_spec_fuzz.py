"""Random and mutated YAML: loading either succeeds or raises the project's SpecError, never anything else."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mapper.spec.acg import parse_acg
from mapper.spec.loader import PROJECT_ROOT, SpecError, load_yaml_text
from mapper.spec.workload import parse_workload

PARSERS = {"acg": parse_acg, "workload": parse_workload}

SEEDS = {
    "acg": [PROJECT_ROOT / "acg_specs" / f"{n}.yaml" for n in ("tiny", "genesys", "hvx_like")],
    "workload": [PROJECT_ROOT / "tests" / "data" / "fuzz_workload.yaml"],
}

# Values a mutation may put anywhere: wrong types, bad sizes, bad names, nested junk.
junk = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True)
    | st.sampled_from(["12 KiBB", "-1", "int7", "C[m,n] +=", "m + ", "DRAM", "IBUF", "conv1", "relu",
                       "O[n] += A[n,k]", "1e999", "", "0", "[]", "max=", "cdiv(m)"])
    | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=6,
)


def _paths(doc, prefix=()):
    """Every (container, key) position inside a loaded document."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield prefix + (key,)
            yield from _paths(value, prefix + (key,))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield prefix + (i,)
            yield from _paths(value, prefix + (i,))


def _mutate(doc, data) -> object:
    doc = copy.deepcopy(doc)
    for _ in range(data.draw(st.integers(1, 3))):
        paths = list(_paths(doc))
        if not paths:
            break
        path = data.draw(st.sampled_from(paths))
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        action = data.draw(st.sampled_from(["replace", "delete", "rename"]))
        if action == "replace":
            parent[path[-1]] = data.draw(junk)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[data.draw(st.text(max_size=8))] = parent.pop(path[-1])
    return doc


def _load(kind: str, text: str) -> None:
    try:
        PARSERS[kind](load_yaml_text(text, "fuzz.yaml"))
    except SpecError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(sorted(PARSERS)), data=st.data())
def test_mutated_specs_raise_only_spec_errors(kind: str, data) -> None:
    seed = data.draw(st.sampled_from(SEEDS[kind]))
    doc = yaml.safe_load(Path(seed).read_text())
    text = yaml.safe_dump(_mutate(doc, data), sort_keys=False)
    _load(kind, text)


@settings(max_examples=150, deadline=None)
@given(kind=st.sampled_from(sorted(PARSERS)),
       text=st.text(alphabet=st.sampled_from(list("abcIBUF:{}[]-,\n #&*!|>'\"%@`0123456789.=+")), max_size=80))
def test_random_text_raises_only_spec_errors(kind: str, text: str) -> None:
    _load(kind, text)


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(sorted(PARSERS)), doc=st.dictionaries(
    st.sampled_from(["name", "nodes", "edges", "layers", "clock_ghz", "x"]), junk, max_size=4))
def test_random_documents_raise_only_spec_errors(kind: str, doc) -> None:
    _load(kind, yaml.safe_dump(doc))


def _bomb(indent: str) -> str:
    """A 'billion laughs' flow list: 9 levels of 9 aliases each (9**9 leaves once expanded), its last
    item the bomb."""
    levels = ["&a [x, x, x, x, x, x, x, x, x]"] + [
        f"&{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]" for i in range(8)]
    return "[" + f",\n{indent}".join(levels) + "]"


@pytest.mark.parametrize("parse, text, field", [
    (parse_workload, "name: bomb\nlayers:\n  - name: r\n    op: relu\n    params:\n      shape: {}\n",
     "bomb.yaml:6: layers[0].params.shape"),
    (parse_workload, "name: bomb\nlayers: {}\n", "bomb.yaml:2: layers[0]: expected a mapping"),
    (parse_acg, "name: bomb\nnodes:\n  DRAM: {{kind: storage, offchip: true, capacity: {}}}\nedges: []\n",
     "bomb.yaml:3: nodes.DRAM.capacity"),
])
def test_alias_bomb_is_rejected_without_expanding(parse, text: str, field: str) -> None:
    """Aliases share objects: the loader never expands them, and validation rejects the document at
    the field holding the bomb (a walk over the expansion would never finish)."""
    with pytest.raises(SpecError) as info:
        parse(load_yaml_text(text.format(_bomb("    ")), "bomb.yaml"))
    assert str(info.value).startswith(field), str(info.value)
