"""Experiments: the YAML format (`experiments/NAME.yaml`) and its expansion into cases.

An experiment crosses ACG variants x layers x strategies x objectives x repetitions. Every case has a
content key (a hash of what its result depends on: the ACG's meaning, the layer's computation, the
strategy and its budget, the objective, the seed); the result database is keyed by it, so re-running
an experiment skips what is done, and identical layers (ResNet's repeated blocks) are solved once.

    name: dse_example
    acgs:
      - genesys                                  # a shipped name or a path
      - spec: genesys                            # a swept variant
        overrides: {nodes.IBUF.capacity: 32KiB}  # dotted paths into the ACG document
        sweep:                                   # the cartesian product of the axes
          array: {paths: [nodes.PE_ARRAY.capabilities.mvmul.dims.k,
                          nodes.PE_ARRAY.capabilities.mvmul.dims.n], values: [16, 32]}
    workloads: [covenant14, {spec: resnet50, layers: [conv1]}]
    strategies: [cpsat, {name: random, same_time_as: cpsat}, {name: anneal, options: {steps: 5000}}, expert]
    objectives: [latency]

Override paths walk mappings by key and lists by the `name` of their items
(`capabilities.mvmul` is the capability named mvmul), edges by `FROM->TO` (`edges.DRAM->IBUF`).
docs/formats/experiment.md documents every field.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mapper.importers.model import load_model
from mapper.mapping.cost import OBJECTIVES
from mapper.mapping.mapping import acg_digest
from mapper.mapping.mapping_yaml import parse_mapping_text
from mapper.network.flow import layer_key
from mapper.spec.acg import ACG, ACG_FOLDER, parse_acg
from mapper.spec.loader import Field, SpecError, find_spec, load_yaml, read_spec
from mapper.spec.workload import Layer, Workload
from solver import OptionError
from solver.options import non_default
from solver.registry import get, names, resolve

EXPERIMENT_FOLDER = "experiments"
EXPERT = "expert"  # not a search: the mapping files of `expert_mappings` (solver.registry names the searches)
PLOTS = ("utilization", "roofline", "predicted_vs_simulated", "pareto")
NETWORK_PLOTS = ("latency_breakdown", "energy")  # the plots of `level: networks` (mapper.app.report_networks)
LEVELS = ("layers", "networks")
FUSE = ("auto", "none")
RESULT_FORMAT = 1  # bump when a result's meaning changes: old rows are then recomputed


@dataclass(frozen=True)
class Variant:
    """One ACG of the experiment: a spec with overrides applied."""

    label: str
    acg: ACG
    settings: tuple[tuple[str, Any], ...] = ()  # (sweep axis, value): the variant's coordinates


@dataclass(frozen=True)
class Strategy:
    label: str  # the name reports use (unique in an experiment)
    name: str  # a strategy of solver.registry, or expert
    time_limit: float
    same_time_as: str | None = None  # the label of a strategy whose solve time this one gets, per layer
    options: tuple[tuple[str, Any], ...] = ()  # the given options (validated against the strategy's)


@dataclass(frozen=True)
class Report:
    baseline: str | None = None  # strategy label the others are compared with, in % of its performance
    metric: str = "cycles"  # cycles | energy
    plots: tuple[str, ...] = PLOTS
    prices_usd: tuple[tuple[str, float], ...] = ()  # (ACG variant label, price): cost efficiency per dollar


@dataclass(frozen=True)
class Experiment:
    name: str
    description: str
    source: str
    variants: tuple[Variant, ...]
    layers: tuple[tuple[str, Layer], ...]  # (workload name, layer)
    strategies: tuple[Strategy, ...]
    objectives: tuple[str, ...]
    repetitions: int = 1
    seed: int = 0
    validate: bool = True
    expert_dir: Path | None = None
    report: Report = Report()
    experts: tuple[tuple[str, str, str | None], ...] = ()  # (ACG name, layer name, file text or None)
    level: str = "layers"  # 'networks': whole networks end to end (mapper.app.experiment_networks)
    networks: tuple[Workload, ...] = ()  # the workloads of a `level: networks` experiment
    fuse: str = "auto"  # layer fusion of network compiles (covenant compile --fuse)


@dataclass(frozen=True)
class Case:
    """One result to compute (or to find in the database)."""

    variant: Variant
    workload: str
    layer: Layer
    strategy: Strategy
    objective: str
    repetition: int
    seed: int
    validate: bool
    time_limit: float  # resolved (for same_time_as, after the other strategy's case ran)
    expert_file: str | None = None
    expert_text: str | None = None

    @property
    def key(self) -> str:
        """A content hash of everything the result depends on (not of names or file layout)."""
        what = (RESULT_FORMAT, acg_digest(self.variant.acg), layer_key(self.layer), self.strategy.name,
                self.objective, round(self.time_limit, 3) if self.strategy.name != EXPERT else None,
                self.seed, self.validate, self.expert_text if self.strategy.name == EXPERT else None)
        options = self.strategy_options()
        if options:  # results of strategies run with default options keep the keys they had before options
            what += (options,)
        return hashlib.sha256(repr(what).encode()).hexdigest()[:24]

    def strategy_options(self) -> tuple[tuple[str, Any], ...]:
        """The resolved options that differ from the strategy's defaults (the seed is in the key anyway)."""
        if self.strategy.name == EXPERT:
            return ()
        resolved = resolve(self.strategy.name, dict(self.strategy.options), self.seed)
        return tuple((k, v) for k, v in non_default(resolved) if k != "seed")

    @property
    def title(self) -> str:
        return f"{self.layer.name} on {self.variant.label} ({self.strategy.label}, {self.objective})"

    def coordinates(self) -> dict[str, Any]:
        """The row fields that come from the experiment, not from the result."""
        return {"acg": self.variant.label, "settings": dict(self.variant.settings), "workload": self.workload,
                "layer": self.layer.name, "count": self.layer.count, "strategy": self.strategy.label,
                "objective": self.objective, "repetition": self.repetition}


# --------------------------------------------------------------------------------------------------
# Loading

def load_experiment(name_or_path: str | Path) -> Experiment:
    """Load `experiments/NAME.yaml` (by name or path); raise `SpecError` naming file, line and field."""
    return parse_experiment(load_yaml(find_spec(name_or_path, EXPERIMENT_FOLDER)))


def parse_experiment(root: Field) -> Experiment:
    top = root.keys(required=("name", "acgs", "workloads"),
                    optional=("description", "strategies", "objectives", "time_limit", "repetitions", "seed",
                              "validate", "expert_mappings", "report", "level", "fuse"))
    level = top["level"].choice(LEVELS) if "level" in top else "layers"
    if "fuse" in top and level != "networks":
        raise top["fuse"].error("'fuse' applies to whole networks: give 'level: networks'")
    name = top["name"].ident()  # it names the output folder: no '/', no leading '.'
    time_limit = top["time_limit"].number(strict=True) if "time_limit" in top else 10.0
    variants = tuple(v for item in _nonempty(top["acgs"]) for v in _parse_variants(item))
    labels = [v.label for v in variants]
    if len(set(labels)) < len(labels):
        dup = next(x for x in labels if labels.count(x) > 1)
        raise top["acgs"].error(f"ACG variant '{dup}' appears twice (give one a 'label')")
    networks: tuple[Workload, ...] = ()
    if level == "networks":
        networks, layers = tuple(_parse_network(item) for item in _nonempty(top["workloads"])), ()
    else:
        layers = tuple(pair for item in _nonempty(top["workloads"]) for pair in _parse_workload(item))
    strategies = _parse_strategies(top.get("strategies"), time_limit)
    if level == "networks":
        for s, item in zip(strategies, top["strategies"].items() if "strategies" in top else (), strict=False):
            if s.name == EXPERT or s.same_time_as:
                raise item.error("whole networks are compiled by a search strategy: no 'expert', no 'same_time_as'")
    objectives = tuple(f.choice(OBJECTIVES) for f in _nonempty(top["objectives"])) if "objectives" in top \
        else ("latency",)
    base = Path(root.source).parent
    expert_dir = None
    if "expert_mappings" in top:
        expert_dir = base / top["expert_mappings"].str()
        if not expert_dir.is_dir():
            raise top["expert_mappings"].error(f"no such folder: {expert_dir}")
    elif any(s.name == EXPERT for s in strategies):
        raise root.error("strategy 'expert' needs 'expert_mappings: FOLDER' (holding ACG/LAYER.yaml files)")
    report = _parse_report(top.get("report"), strategies, level, labels)
    experts = ()
    if expert_dir is not None and any(s.name == EXPERT for s in strategies):
        # read once: every phase of a run then sees the same texts (they are part of the case keys)
        files = {(v.acg.name, layer.name): expert_dir / v.acg.name / f"{layer.name}.yaml"
                 for v in variants for _, layer in layers}
        experts = tuple((a, n, read_spec(p) if p.is_file() else None) for (a, n), p in files.items())
    return Experiment(
        name=name, description=top["description"].str() if "description" in top else "", source=root.source,
        variants=variants, layers=layers, strategies=strategies, objectives=objectives,
        repetitions=top["repetitions"].int(minimum=1) if "repetitions" in top else 1,
        seed=top["seed"].int(minimum=0) if "seed" in top else 0,
        validate=top["validate"].bool() if "validate" in top else True,
        expert_dir=expert_dir, report=report, experts=experts, level=level, networks=networks,
        fuse=top["fuse"].choice(FUSE) if "fuse" in top else "auto")


def _nonempty(f: Field) -> list[Field]:
    items = f.items()
    if not items:
        raise f.error("expected at least one entry")
    return items


def _load_spec(spec: Field, load):
    """`load(name)`, with an unknown name reported at the experiment's line (errors inside the spec
    file keep their own file and line)."""
    try:
        return load(spec.str())
    except SpecError as exc:
        raise spec.error(exc.message if exc.source == spec.value else str(exc)) from None


def _parse_variants(item: Field) -> list[Variant]:
    if isinstance(item.value, str):
        spec, fields = item, {}
    else:
        fields = item.keys(required=("spec",), optional=("label", "overrides", "sweep"))
        spec = fields["spec"]
    doc = _load_spec(spec, lambda name: load_yaml(find_spec(name, ACG_FOLDER)))
    fixed = [(p, f) for p, f in fields["overrides"].mapping().items()] if "overrides" in fields else []
    axes = []
    for axis, f in (fields["sweep"].mapping().items() if "sweep" in fields else ()):
        af = f.keys(required=("paths", "values"))
        paths = [p.str() for p in _nonempty(af["paths"])]
        axes.append((axis, paths, _nonempty(af["values"])))
    label = fields["label"].str() if "label" in fields else doc.value.get("name", spec.value)
    out = []
    for combo in itertools.product(*(values for _, _, values in axes)):
        settings = tuple((axis, v.value) for (axis, _, _), v in zip(axes, combo, strict=True))
        overrides = fixed + [(p, v) for (_, paths, _), v in zip(axes, combo, strict=True) for p in paths]
        shown = ",".join(f"{a}={v}".replace(" ", "") for a, v in settings)  # a name has no spaces
        name = label + (f"[{shown}]" if settings else "")
        out.append(Variant(name, _apply_overrides(doc, overrides, name), settings))
    return out


def _apply_overrides(doc: Field, overrides: list[tuple[str, Field]], name: str) -> ACG:
    """The ACG of `doc` with each dotted path set to its value (the spec's own validation then runs)."""
    value = copy.deepcopy(doc.value)
    if overrides:
        value["name"] = name  # a changed ACG gets its own name: mappings for it must not pass for the original
    for path, f in overrides:
        node, parts = value, path.split(".")
        for depth, part in enumerate(parts):
            where = ".".join(parts[:depth]) or "top"
            if isinstance(node, dict):
                if part not in node:
                    raise f.error(f"override path '{path}': no '{part}' at '{where}' "
                                  f"(it has {', '.join(map(str, node)) or 'nothing'})")
                key = part
            elif isinstance(node, list):
                key = next((i for i, x in enumerate(node) if isinstance(x, dict) and part in _item_names(x)), None)
                if key is None:
                    raise f.error(f"override path '{path}': no item named '{part}' in '{where}'")
            else:
                raise f.error(f"override path '{path}': '{where}' is a value, not a mapping")
            if depth == len(parts) - 1:
                node[key] = copy.deepcopy(f.value)
            else:
                node = node[key]
    try:
        return parse_acg(Field(doc.source, (), value, doc.line))
    except SpecError as exc:
        if not overrides:
            raise
        raise overrides[-1][1].error(f"the overrides make an invalid ACG ({name}): {exc}") from None


def _item_names(item: dict) -> tuple[str, ...]:
    """What an override path may call a list item: its `name`, or an edge's `FROM->TO`."""
    return (str(item.get("name")), f"{item.get('from')}->{item.get('to')}")


def _parse_workload(item: Field) -> list[tuple[str, Layer]]:
    if isinstance(item.value, str):
        spec, names = item, None
    else:
        fields = item.keys(required=("spec",), optional=("layers",))
        spec, names = fields["spec"], fields.get("layers")
    wl = _load_spec(spec, load_model)  # a workload YAML, a shipped name or an ONNX model
    if names is None:
        return [(wl.name, layer) for layer in wl.layers]
    out = []
    for f in _nonempty(names):
        try:
            out.append((wl.name, wl.layer(f.str())))
        except KeyError as exc:
            raise f.error(exc.args[0]) from None
    return out


def _parse_network(item: Field) -> Workload:
    """A workload of a `level: networks` experiment: a whole network (name, path or ONNX model)."""
    if not isinstance(item.value, str):
        raise item.expected("a workload name or path (a whole network: no layer subsets at 'level: networks')")
    return _load_spec(item, load_model)


def _parse_strategies(f: Field | None, time_limit: float) -> tuple[Strategy, ...]:
    if f is None:
        return (Strategy("cpsat", "cpsat", time_limit),)
    out: list[Strategy] = []
    known = (*names(), EXPERT)
    for item in _nonempty(f):
        if isinstance(item.value, str):
            out.append(Strategy(item.value, item.choice(known), time_limit))
            continue
        fields = item.keys(required=("name",), optional=("label", "time_limit", "same_time_as", "options"))
        name = fields["name"].choice(known)
        options = _parse_options(fields["options"], name) if "options" in fields else ()
        label = fields["label"].str() if "label" in fields else name
        limit = fields["time_limit"].number(strict=True) if "time_limit" in fields else time_limit
        same = fields["same_time_as"].str() if "same_time_as" in fields else None
        if same is not None:
            if "time_limit" in fields:
                raise fields["same_time_as"].error("give either 'time_limit' or 'same_time_as', not both")
            earlier = {s.label: s for s in out}
            if same not in earlier or earlier[same].same_time_as or earlier[same].name == EXPERT:
                raise fields["same_time_as"].expected(
                    f"the label of an earlier search strategy with its own time limit ({', '.join(earlier) or 'none'})")
        out.append(Strategy(label, name, limit, same, options))
    labels = [s.label for s in out]
    if len(set(labels)) < len(labels):
        raise f.error(f"strategy label '{next(x for x in labels if labels.count(x) > 1)}' appears twice "
                      "(give one a 'label')")
    return tuple(out)


def _parse_options(f: Field, name: str) -> tuple[tuple[str, Any], ...]:
    """A strategy's `options: {key: value}`, each checked against the strategy's typed options."""
    if name == EXPERT:
        raise f.error("strategy 'expert' takes no options")
    out = []
    for key, value in f.mapping().items():
        try:
            resolve(name, {key: value.value})
        except OptionError as exc:
            raise value.error(str(exc)) from None
        out.append((key, value.value))
    if not out:
        raise f.error(f"expected at least one option of {name} ({get(name).summary})")
    return tuple(out)


def _parse_report(f: Field | None, strategies: tuple[Strategy, ...], level: str, variants: list[str]) -> Report:
    choices = NETWORK_PLOTS if level == "networks" else PLOTS
    if f is None:
        return Report(plots=choices)
    fields = f.keys(optional=("baseline", "metric", "plots", "prices_usd"))
    prices = ()
    if "prices_usd" in fields:
        if level != "networks":
            raise fields["prices_usd"].error("prices apply to whole networks' cost efficiency: give 'level: networks'")
        for label, value in fields["prices_usd"].mapping().items():
            if label not in variants:
                raise value.error(f"'{label}' is not an ACG of the experiment ({', '.join(variants)})")
        prices = tuple((label, value.number(strict=True)) for label, value in fields["prices_usd"].mapping().items())
    baseline = None
    if "baseline" in fields:
        baseline = fields["baseline"].choice([s.label for s in strategies])
    metric = fields["metric"].choice(("cycles", "energy")) if "metric" in fields else "cycles"
    plots = tuple(p.choice(choices) for p in fields["plots"].items()) if "plots" in fields else choices
    return Report(baseline, metric, plots, prices)


# --------------------------------------------------------------------------------------------------
# Cases

def expert_path(exp: Experiment, variant: Variant, layer: Layer) -> Path:
    assert exp.expert_dir is not None
    return exp.expert_dir / variant.acg.name / f"{layer.name}.yaml"


def cases(exp: Experiment, time_of: dict[tuple, float] | None = None) -> list[Case]:
    """Every case of the experiment, in a stable order.

    Cases of a `same_time_as` strategy need the other strategy's solve time per layer: `time_of` maps
    (variant label, layer name, objective, repetition, strategy label) to it; those cases are left out
    until their time is known.
    """
    out = []
    texts = {(a, n): text for a, n, text in exp.experts}
    for variant in exp.variants:
        for workload, layer in exp.layers:
            for strategy in exp.strategies:
                for objective in exp.objectives:
                    for rep in range(exp.repetitions):
                        limit = strategy.time_limit
                        if strategy.same_time_as:
                            ref = (variant.label, layer.name, objective, rep, strategy.same_time_as)
                            if time_of is None or ref not in time_of:
                                continue
                            limit = max(time_of[ref], 0.05)  # a floor: a 0 s budget evaluates nothing
                        expert_file = expert_text = None
                        if strategy.name == EXPERT:
                            expert_file = str(expert_path(exp, variant, layer))
                            expert_text = texts.get((variant.acg.name, layer.name))
                        out.append(Case(variant, workload, layer, strategy, objective, rep, exp.seed + rep,
                                        exp.validate, limit, expert_file, expert_text))
    return out


def parse_expert(case: Case):
    """The expert mapping of a case (a `SpecError` when it is missing or does not fit the case)."""
    if case.expert_text is None:
        raise SpecError(case.expert_file or "?", None, "", "no expert mapping for this layer and ACG")
    mapping = parse_mapping_text(case.expert_text, case.expert_file or "?", case.variant.acg)
    if layer_key(mapping.layer) != layer_key(case.layer):
        raise SpecError(case.expert_file or "?", None, "layer", f"the mapping is for a different computation "
                        f"than layer {case.layer.name}")
    return mapping
