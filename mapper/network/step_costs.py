"""What the fusion search asks of the layer solver, asked as rarely as the answers allow: a step's
optimum (`StepCosts.cost`), a lower bound of it that solves nothing (`StepCosts.floor`), and the cost
of a step's slices run at once on several cores (`StepCosts.parallel`).

Every distinct computation is solved once per kind of solve (`flow.map_layers` by `flow.layer_key`):

- *in full* (`StepCosts.solve`, cache `solved`): the compile's records, made in the final mapping
  for the steps of the chosen groups and those left alone (with `--fuse none`, each step at once);
- *for the search* (`StepCosts.probe`, cache `probed`): with CP-SAT, without its tie-break solve
  where the first proves the objective (`solver.cpsat.solve`, `tie_break`): the same objective as a
  solve in full (the tie-break cannot change a proven one; an unproven one still gets it), which is
  all the search compares, at about 60 % of the time. Other strategies: the full solve itself.

**Reservations that do not bind.** A step of a fused group keeps values on chip in two ways
(`OnChip`): its own tensors homed in a storage, which changes its bindings and storage paths, and
bytes *reserved* for the group's other values, which only lowers the capacity its tiles may use.
So the mappings legal with reservations R are a subset of those legal without them, each costing
the same (the cost model does not read reservations). Hence, for the layer without reservations
(its *relaxation*, same homes):

- its optimum is a lower bound of the step's (`floor`);
- if it has no mapping (proven infeasible, not stopped by a limit), the step has none;
- if its optimal mapping still fits with R (`resource_problems` with the step's layer), that mapping
  is the step's optimum: the same objective a solve of the step would prove.

A search step with reservations is therefore answered by its relaxation's solve (made once for every
set of reservations of those homes: the search tries many) unless the reservations bind; only then is
it solved itself. Only proven objectives are reused (status 'optimal'; where the search's solves are
the full ones, a proven tie-break too, so that the figures are those a solve of the step would give).

**Floors.** `floor` is, from what is known without a new solve: the step's cost if solved, else the
larger of its relaxation's proven optimum (if solved) and `solver.bounds.objective_floor` (compute
floor and the traffic out of where its tensors start, per binding). On several cores a step that
keeps nothing on chip may be split over them (`cores.best_split`), which no one-core bound covers:
its floor is 0 until it is solved.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from mapper.mapping.mapping import Mapping, resource_problems
from mapper.network.cores import Split, best_split, objective_value, shared_view
from mapper.network.flow import LayerResult, Options, layer_key, map_layers
from mapper.program.windows import Slice
from mapper.spec.acg import ACG
from mapper.spec.workload import Layer, OnChip
from solver.bounds import objective_floor


@dataclass(frozen=True)
class StepCosts:
    """The layer solver as the fusion search and the final mapping use it, with its caches (layer_key
    -> record and mapping): `solved`, full solves on one core (the final mapping's); `probed`, the
    search's solves (`probe_options`; `solved` itself when those are the options); `split_solved`,
    per core count, slices on `shared_view`; `values`, the steps' costs; `floors`, the analytic
    floors (by the key of the layer without reservations, which they do not read); `reused`, the
    keys a relaxation answered (not solved)."""

    acg: ACG
    options: Options  # per layer: strategy, objective, limit, seed (not validated: the network is)
    cores: int = 0  # the most cores a step may run on (0: as many as the ACG has)
    solved: dict = field(default_factory=dict)
    probed: dict = field(default_factory=dict)
    split_solved: dict = field(default_factory=dict)
    values: dict = field(default_factory=dict)
    floors: dict = field(default_factory=dict)
    reused: set = field(default_factory=set)

    @property
    def objective(self) -> str:
        return self.options.objective

    @property
    def probe_options(self) -> Options:
        """The search's solves: CP-SAT without its tie-break solve where the objective is proven
        (`solver.cpsat.solve`), as the search compares objectives only (unless the user set
        `tie_break`); the same objective as a full solve, at about 60 % of its time."""
        if self.options.strategy != "cpsat" or "tie_break" in dict(self.options.strategy_options):
            return self.options
        return replace(self.options, strategy_options=(*self.options.strategy_options, ("tie_break", False)))

    @property
    def probes(self) -> dict:
        return self.solved if self.probe_options == self.options else self.probed

    def cost(self, layer: Layer) -> float | None:
        """The step's objective at its optimum (None: no mapping), on the best number of cores for a
        step that keeps nothing on chip: from its full solve if made, else from the search's."""
        key = layer_key(layer)
        if key not in self.values:
            record, _ = self.solved[key] if key in self.solved else self.probe(layer)
            value = objective_value(record, self.objective) if record.mapped else None
            if value is not None and not layer.onchip and self.acg.cores > 1:
                split = best_split(layer, self.acg, self.options, self.split_solved, self.cores)
                if split is not None:
                    value = min(value, objective_value(split.record(layer.name), self.objective))
            self.values[key] = value
        return self.values[key]

    def solve(self, layer: Layer) -> tuple[LayerResult, Mapping | None]:
        """The step on one core, solved in full (as the final mapping takes it)."""
        return map_layers([layer], self.acg, self.options, done=self.solved)[0]

    def probe(self, layer: Layer) -> tuple[LayerResult, Mapping | None]:
        """The step on one core as the search solves it: its relaxation's result where the
        reservations do not bind (see the module doc), else its own solve."""
        key, probes = layer_key(layer), self.probes
        if layer.onchip.reserved and key not in probes:
            record, mapping = self.probe(replace(layer, onchip=OnChip(layer.onchip.homes)))
            if _proven(record, tie=probes is self.solved) and _fits(mapping, layer, self.acg):
                probes[key] = _answered_by(record, mapping, layer)
                self.reused.add(key)
            elif not record.mapped and record.status == "infeasible" and not record.limit:
                self.values[key] = None  # no mapping without the reservations (proven): none with them
                return replace(record, name=layer.name), None
        return map_layers([layer], self.acg, self.probe_options, done=probes)[0]

    def floor(self, layer: Layer) -> float:
        """A lower bound of `cost(layer)` that solves nothing (math.inf: it has no mapping)."""
        key = layer_key(layer)
        if key in self.values:
            value = self.values[key]
            return math.inf if value is None else value
        if not layer.onchip and self.acg.cores > 1:
            return 0.0  # it may split over cores
        # The analytic floor reads bindings and paths, which reservations do not change: one per relaxation.
        relaxed = layer_key(replace(layer, onchip=OnChip(layer.onchip.homes))) if layer.onchip.reserved else key
        if relaxed not in self.floors:
            bound = objective_floor(layer, self.acg, self.objective)
            self.floors[relaxed] = math.inf if bound is None else float(bound)
        record, _ = (self.probes.get(relaxed) or self.solved.get(relaxed, (None, None))) if relaxed != key else \
            (None, None)
        if record is not None and record.mapped and record.status == "optimal":
            return max(self.floors[relaxed], objective_value(record, self.objective))
        return self.floors[relaxed]

    def parallel(self, parts: list[Slice]) -> float | None:
        """The objective of a step's slices run at once, one per core (None: more cores than allowed,
        or a slice with no mapping), each solved on the view one core has while they all run."""
        split = self.parallel_split(parts)
        return None if split is None else objective_value(split.record(parts[0].layer.name), self.objective)

    def parallel_split(self, parts: list[Slice]) -> Split | None:
        count = len(parts)
        if self.cores and count > self.cores:
            return None
        results = map_layers([p.layer for p in parts], shared_view(self.acg, count), self.options,
                             done=self.split_solved.setdefault(count, {}))
        return Split(parts[0].dim, tuple(parts), tuple(results)) if all(r.mapped for r, _ in results) else None

    def records(self) -> list[LayerResult]:
        """The records of the solves made so far (full, the search's, slices; not those a relaxation
        answered): the caches only grow."""
        probes = [] if self.probes is self.solved else list(self.probed.items())
        return [r for k, (r, _) in (*self.solved.items(), *probes) if k not in self.reused] + \
            [r for done in self.split_solved.values() for r, _ in done.values()]


def _proven(record: LayerResult, tie: bool) -> bool:
    """Whether the record's mapping is proven optimal (`tie`: its tie-breaker too, where sought)."""
    return record.mapped and record.status == "optimal" and (not tie or record.tie_break in (None, "optimal"))


def _fits(mapping: Mapping, layer: Layer, acg: ACG) -> bool:
    """Whether the relaxation's mapping is legal with the step's reservations: its binding is valid
    for the step (the same computation and homes), so only its resources are checked again."""
    return not resource_problems(replace(mapping, layer=replace(mapping.layer, onchip=layer.onchip)), acg)


def _answered_by(record: LayerResult, mapping: Mapping, layer: Layer) -> tuple[LayerResult, Mapping]:
    """The relaxation's result as the step's: its mapping with the step's reservations."""
    mapping = replace(mapping, layer=replace(mapping.layer, name=layer.name, onchip=layer.onchip))
    return replace(record, name=layer.name, mapping=mapping, solve_seconds=0.0), mapping
