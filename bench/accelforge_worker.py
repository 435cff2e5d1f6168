"""Run AccelForge's own loader and mapper on one architecture (and workload) and print one JSON
document (issue 27: covenant side by side with AccelForge). Imports only AccelForge and the standard
library; run it with the Python of the environment `bench/setup_accelforge.sh` makes (/work/af-venv).

    python bench/accelforge_worker.py spec ARCH.yaml [WORKLOAD.yaml] [--set KEY=VALUE ...]
        [--keep-all-in-outermost]
    python bench/accelforge_worker.py map ARCH.yaml WORKLOAD.yaml [--set KEY=VALUE ...]
        [--metric latency|energy|edp|latency+energy] [--fused] [--jobs N] [--max-fused-loops N]

`--set` gives a Jinja variable of the YAML files (its value read as JSON when it parses, so
`--set DECODE=false --set N_NEW_TOKENS=2048`, else kept as text). Numbers that are infinite print as
the strings "inf"/"-inf" (the document stays strict JSON); sets of tensor names print as sorted lists.

`spec` prints {"accelforge", "arch_file", "workload_file", "jinja", "keep_all_in_outermost",
"arch": [node...], "arch_error", "einsums": [einsum...]}: `arch` is the architecture tree evaluated
without an Einsum (workload-dependent expressions see no tensors; `arch_error` says why when even
that fails). A node: {"kind": Memory|Toll|Compute|Container|Network|Hierarchical|Fork|Array,
"name", "spatial": [{"name", "fanout", "reuse", "may_reuse", "min_usage", "loop_bounds",
"usage_scale", "power_gateable"}], "actions": [{"name", "energy", "energy_scale", "throughput",
"throughput_scale", "bits_per_action", "values_per_action"}], "size", "enabled", "area",
"total_area", "leak_power", "total_leak_power", "n_parallel_instances", "total_latency", "tensors":
{"keep", "may_keep", "back", ...}, ...} (branches hold "nodes"). An Einsum: {"name",
"is_copy_operation", "n_instances", "n_computes", "rank_sizes", "rank_variable_bounds",
"iteration_space_shape", "tensors": [{"name", "projection", "bits_per_value", "output", "persistent",
"role": input|output|intermediate, "n_values"}], "renames": {name: [tensors]}, "paths": [path...]}
and a path (one per Compute, AccelForge's flattened architecture for this Einsum, every expression
evaluated for it, energies and throughputs from `calculate_component_costs`): {"compute",
"enabled", "nodes": [node...], "storage_choices": [{node: [tensors]}...],
"n_storage_choices"}; `storage_choices` are AccelForge's own enumeration of which tensors each
memory keeps (`make_storage_choices_all_levels`), at most 64 listed.

`map` prints {"accelforge", "arch_file", "workload_file", "jinja", "metric", "fused", "jobs",
"max_fused_loops", "seconds", "cpu_seconds", "n_mappings", "latency_s", "energy_j", "edp",
"dynamic_energy_j", "leak_energy_j", "mapping": text, "einsums": [{"name", "compute",
"compute_throughput", "latency_s", "latency_in_compute_steps", "energy_j", "edp",
"latency_per_component": {name: s}, "energy_per_component_action": {"name.action": J},
"actions": {"name.tensor.action": n}, "mapping": text}]}. `seconds` is the wall time of
`Spec.map_workload_to_arch` (pmapping generation, joining and AccelForge's detailed re-evaluation of
the chosen mapping), `cpu_seconds` the CPU time of this process and of its worker processes over that
call. `latency_in_compute_steps` is `latency_s` times the compute unit's `compute` throughput (its
actions per second per instance): cycles when that unit does one action per cycle (tpu_v4i's MAC at
1.05 GHz), not when its throughput folds in a width (tpu_v4i's ScalarUnit: 128 x 1.05e9).
AccelForge itself reports seconds only. Unfused (the default) keeps every tensor in the outermost
memory, as AccelForge's mapper tutorial does; `--fused` leaves the architecture's own keep rules
(FFM fuses what bypasses that memory).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import logging
import math
import os
import sys
import tempfile
import time
import warnings

import accelforge as af
from accelforge.frontend import arch as A
from accelforge.frontend.mapping import mapping as M
from accelforge.mapper.FFM._make_pmappings.make_pmapping_templates.make_storages import (
    make_storage_choices_all_levels,
)
from accelforge.mapper.FFM._make_pmappings.make_pmappings import get_rank_variable_bounds
from accelforge.util._setexpressions import InvertibleSet

NODE_FIELDS = ("component_class", "size", "enabled", "area", "total_area", "area_scale", "leak_power",
               "total_leak_power", "leak_power_scale", "energy_scale", "throughput_scale", "actions_scale",
               "n_parallel_instances", "total_latency", "bits_per_value", "bits_per_action",
               "values_per_action", "skip_initial_output_write", "direction", "topology")
ACTION_FIELDS = ("name", "energy", "energy_scale", "throughput", "throughput_scale", "bits_per_action",
                 "values_per_action")
SPATIAL_FIELDS = ("name", "fanout", "reuse", "may_reuse", "min_usage", "loop_bounds", "usage_scale",
                  "power_gateable")
TENSOR_FIELDS = ("keep", "may_keep", "back", "no_refetch_from_above", "no_resend_to_below", "tile_shape",
                 "tensor_order_options", "force_memory_hierarchy_order")
MAX_CHOICES = 64
METRICS = {"latency": af.Metrics.LATENCY, "energy": af.Metrics.ENERGY,
           "edp": af.Metrics.ENERGY_DELAY_PRODUCT, "latency+energy": af.Metrics.LATENCY | af.Metrics.ENERGY}


def plain(value):
    """`value` as JSON: sets of names as sorted lists, infinities as strings, models as dicts."""
    if isinstance(value, InvertibleSet):
        return sorted(str(v) for v in value.instance)
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float) or type(value).__module__.startswith(("numpy", "sympy", "symengine")):
        try:
            number = float(value)
        except (TypeError, ValueError):
            return str(value)
        if math.isinf(number) or math.isnan(number):
            return str(number)
        return number
    if isinstance(value, dict):
        return {",".join(sorted(map(str, k))) if isinstance(k, (frozenset, set, tuple)) else str(k): plain(v)
                for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [plain(v) for v in value]
        return sorted(items, key=str) if isinstance(value, (set, frozenset)) else items
    if hasattr(value, "shallow_model_dump"):
        return {k: plain(v) for k, v in value.shallow_model_dump().items()}
    return str(value)


def fields(obj, names) -> dict:
    return {name: plain(getattr(obj, name)) for name in names if hasattr(obj, name)}


def node_json(node) -> dict:
    """One architecture node (a branch with its children) as evaluated so far."""
    result = {"kind": type(node).__name__}
    if hasattr(node, "name"):
        result["name"] = node.name
    if isinstance(node, A.Spatialable):
        result["spatial"] = [fields(s, SPATIAL_FIELDS) for s in node.spatial]
    if isinstance(node, A.Component):
        result["actions"] = [fields(a, ACTION_FIELDS) for a in node.actions]
        result.update(fields(node, NODE_FIELDS))
    if isinstance(node, A.TensorHolder):
        result["tensors"] = fields(node.tensors, TENSOR_FIELDS)
    if isinstance(node, A.Branch):
        result["nodes"] = [node_json(child) for child in node.nodes]
    return result


def parse_sets(pairs: list[str]) -> dict:
    """--set KEY=VALUE pairs: VALUE as JSON when it parses (numbers, true/false), else as text."""
    result = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set {pair!r}: expected KEY=VALUE")
        try:
            result[key] = json.loads(text)
        except json.JSONDecodeError:
            result[key] = {"True": True, "False": False}.get(text, text)
    return result


def load(args) -> af.Spec:
    files = [args.arch] + ([args.workload] if args.workload else [])
    return af.Spec.from_yaml(*files, jinja_parse_data=args.set)


def keep_all_in_outermost(spec: af.Spec) -> None:
    """AccelForge's mapper tutorial's unfused setting: the first Memory keeps every tensor."""
    for node in spec.arch.nodes:
        if isinstance(node, A.Memory):
            node.tensors.keep = "All"
            return


def tensor_roles(spec: af.Spec, einsum) -> list[dict]:
    workload = spec.workload
    result = []
    for access in einsum.tensor_accesses:
        name = access.name
        produced = bool(workload.einsums_with_tensor_as_output(name))
        consumed = bool(workload.einsums_with_tensor_as_input(name))
        role = "intermediate" if produced and consumed else "output" if produced else "input"
        result.append({"name": str(name), "projection": plain(access.projection),
                       "bits_per_value": plain(access.bits_per_value), "output": access.output,
                       "persistent": access.persistent, "role": role,
                       "n_values": int(workload.get_tensor_size(name))})
    return result


def storage_choices(spec_one: af.Spec, einsum, flattened) -> tuple[list[dict], int]:
    """AccelForge's own enumeration of the tensors each memory of `flattened` keeps for `einsum`."""
    holders = [n for n in list(flattened)[:-1] if isinstance(n, A.TensorHolder)]
    symbols = {r.name: r.source for r in einsum.renames}
    persistent = {t.name for t in einsum.tensor_accesses if t.persistent}
    found, count = [], 0
    for choice, _symbols in make_storage_choices_all_levels(
            nodes=holders, symbol_table=symbols, persistent_tensors=persistent, seen_tensors=set(),
            is_copy_op=einsum.is_copy_operation, einsum_name=einsum.name,
            prioritize_reuse_of_unfused_tensors=spec_one.mapper.prioritize_reuse_of_unfused_tensors):
        count += 1
        if len(found) < MAX_CHOICES:
            found.append({name: sorted(str(t) for h in nodes for t in h.tensors)
                          for name, nodes in sorted(choice.items(), key=lambda kv: [h.name for h in holders]
                                                    .index(kv[0]))})
    return found, count


def einsum_paths(spec: af.Spec, name: str) -> list[dict]:
    """Every flattened architecture of Einsum `name`, evaluated the way AccelForge's mapper does."""
    one = (spec._spec_eval_expressions(einsum_name=name, eval_arch=True, eval_non_arch=False)
           .calculate_component_costs(einsum_name=name, area=False))  # as the mapper does
    try:  # area is not needed to map, and some examples give no area for their DRAM
        one = one.calculate_component_costs(einsum_name=name, energy=False, throughput=False, leak=False)
    except Exception:  # noqa: BLE001, S110 - the nodes then show area null
        pass
    einsum = one.workload.einsums[name]
    paths = []
    for flattened in one._get_flattened_architecture(einsum_name=name):
        nodes = list(flattened)
        for node in nodes:  # the totals calculate_component_costs wrote on the spec's own nodes
            source = one.arch.find(node.name)
            for attr in ("total_area", "total_leak_power", "area", "leak_power"):
                if getattr(node, attr, None) is None and getattr(source, attr, None) is not None:
                    setattr(node, attr, getattr(source, attr))
            for action in getattr(node, "actions", []):
                action.energy = source.actions[action.name].energy
                action.throughput = source.actions[action.name].throughput
        choices, count = storage_choices(one, einsum, flattened)
        paths.append({"compute": nodes[-1].name, "enabled": plain(nodes[-1].enabled),
                      "nodes": [node_json(n) for n in nodes], "storage_choices": choices,
                      "n_storage_choices": count})
    return paths


def einsum_json(spec: af.Spec, einsum, bounds: dict) -> dict:
    return {"name": einsum.name, "is_copy_operation": einsum.is_copy_operation,
            "n_instances": einsum.n_instances, "n_computes": int(spec.workload.n_computes(einsum.name)),
            "rank_sizes": plain(dict(einsum.rank_sizes)), "rank_variable_bounds": plain(bounds),
            "iteration_space_shape": plain(list(einsum.iteration_space_shape)),
            "tensors": tensor_roles(spec, einsum),
            "renames": {str(r.name): plain(r.source) for r in einsum.renames},
            "paths": einsum_paths(spec, einsum.name)}


def spec_command(args) -> dict:
    spec = load(args)
    if args.keep_all_in_outermost:
        keep_all_in_outermost(spec)
    result = {"arch_file": args.arch, "workload_file": args.workload, "jinja": args.set,
              "keep_all_in_outermost": args.keep_all_in_outermost, "arch_error": None}
    try:
        bare = af.Spec(arch=spec.arch.model_copy(deep=True), variables=spec.variables, config=spec.config)
        result["arch"] = [node_json(n) for n in bare.calculate_component_costs().arch.nodes]
    except Exception as error:  # noqa: BLE001 - reported, not hidden: the raw tree follows
        result["arch_error"] = f"{type(error).__name__}: {str(error).strip().splitlines()[0]}"
        result["arch"] = [node_json(n) for n in spec.arch.nodes]
    if not args.workload:
        result["einsums"] = []
        return result
    spec = spec._spec_eval_expressions(eval_arch=False, eval_non_arch=True)
    workload = spec.workload
    result["workload"] = {"rank_sizes": plain(dict(workload.rank_sizes)), "n_instances": workload.n_instances,
                          "bits_per_value": plain(dict(workload.bits_per_value)),
                          "persistent_tensors": plain(workload.persistent_tensors),
                          "n_computes": int(workload.n_computes())}
    result["einsums"] = [einsum_json(spec, e, get_rank_variable_bounds(spec.workload, e.name))
                         for e in spec.workload.einsums]
    return result


def proc_cpu_seconds() -> float:
    """CPU seconds (user + system, with reaped children) of this process and its live descendants."""
    ticks = os.sysconf("SC_CLK_TCK")
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                    rest = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry)] = (int(rest[1]), sum(int(x) for x in rest[11:15]))
    family, total, grew = {os.getpid()}, 0, True
    while grew:
        new = {pid for pid, (ppid, _) in stats.items() if ppid in family and pid not in family}
        family |= new
        grew = bool(new)
    for pid in family:
        total += stats.get(pid, (0, 0))[1]
    return total / ticks


def mapping_lines(node, depth: int = 0) -> list[str]:
    """A mapping as an indented loop nest (reservations left out)."""
    pad = "  " * depth
    if isinstance(node, M.MappingNodeWithChildren):
        lines = [pad + type(node).__name__] if not isinstance(node, M.Mapping) else []
        inner = depth + (0 if isinstance(node, M.Mapping) else 1)
        for child in node.nodes:
            lines += mapping_lines(child, inner)
        return lines
    if isinstance(node, M.Reservation):
        return []
    text = node.compact_str()
    if isinstance(node, M.Spatial):
        text += f" across {node.component}"
    return [pad + text]


def einsum_mappings(node, found: dict | None = None) -> dict[str, str]:
    """Each Einsum's own branch of a mapping (a Nested node holding one Compute), as text."""
    found = {} if found is None else found
    if isinstance(node, M.MappingNodeWithChildren):
        computes = node.get_nodes_of_type(M.Compute)
        if isinstance(node, M.Nested) and not isinstance(node, M.Mapping) and len(computes) == 1:
            found.setdefault(computes[0].einsum, "\n".join(mapping_lines(node)))
        else:
            for child in node.nodes:
                einsum_mappings(child, found)
    return found


def best_row(mappings, metric: str) -> int:
    """The row AccelForge's Pareto set holds that is best by `metric` (latency+energy: latency, then
    energy)."""
    data = mappings.data
    if metric == "energy":
        keys = ["Total<SEP>energy"]
    elif metric == "edp":
        keys = ["Total<SEP>energy_delay_product"]
    else:
        keys = ["Total<SEP>latency"] + (["Total<SEP>energy"] if metric == "latency+energy" else [])
    keys = [k for k in keys if k in data.columns] or ["Total<SEP>energy"]
    order = data.reset_index(drop=True).sort_values(by=keys, kind="stable")
    return int(order.index[0])


def compute_clocks(mappings) -> dict[tuple[str, str], float]:
    """(Einsum, compute unit) -> that unit's `compute` throughput in this Einsum's evaluated arch."""
    result = {}
    for (einsum, compute), flattened in mappings.flattened_arches.items():
        node = list(flattened)[-1]
        source = mappings.evaluated_specs[einsum].arch.find(node.name)
        result[einsum, compute] = plain(source.actions["compute"].throughput)
    return result


def einsum_results(one, spec: af.Spec) -> list[dict]:
    latency = one.latency(per_einsum=True, per_component=True)
    energy = one.energy(per_einsum=True, per_component=True, per_action=True)
    actions = one.actions(per_einsum=True, per_component=True, per_tensor=True)
    mapping = one.mapping()
    computes = {c.einsum: c.component for c in mapping.get_nodes_of_type(M.Compute)}
    texts = einsum_mappings(mapping)
    clocks = compute_clocks(one)
    result = []
    for einsum in one.einsum_names:
        lat = {c: plain(v) for (e, c), v in latency.items() if e == einsum}
        seconds = max((float(v) for v in lat.values()), default=0.0)
        joules = sum(float(v) for k, v in energy.items() if k[0] == einsum)
        clock = clocks.get((einsum, computes.get(einsum)))
        steps = seconds * clock if isinstance(clock, (int, float)) else None
        result.append({
            "name": einsum, "compute": computes.get(einsum), "compute_throughput": clock,
            "latency_s": seconds, "latency_in_compute_steps": steps,
            "energy_j": joules, "edp": joules * seconds, "latency_per_component": lat,
            "energy_per_component_action": {f"{k[1]}.{k[2]}": plain(v) for k, v in energy.items()
                                            if k[0] == einsum},
            "actions": {f"{k[1]}.{k[2]}.{k[3]}": plain(v) for k, v in actions.items() if k[0] == einsum},
            "mapping": texts.get(einsum)})
    return result


def run_mapper(spec: af.Spec, args) -> tuple:
    """`Spec.map_workload_to_arch` in a scratch folder (it writes mapping.svg into the current one),
    its own prints sent to stderr; returns the mappings, wall and CPU seconds."""
    here = os.getcwd()
    with tempfile.TemporaryDirectory() as scratch, contextlib.redirect_stdout(sys.stderr):
        os.chdir(scratch)
        try:
            start, cpu = time.perf_counter(), proc_cpu_seconds()
            mappings = spec.map_workload_to_arch(print_progress=False)
            seconds, cpu = time.perf_counter() - start, proc_cpu_seconds() - cpu
        finally:
            os.chdir(here)
    return mappings, seconds, cpu


def map_command(args) -> dict:
    af.set_n_parallel_jobs(args.jobs)
    spec = load(args)
    if not args.fused:
        keep_all_in_outermost(spec)
    spec.mapper.metrics = METRICS[args.metric]
    spec.mapper.max_fused_loops = args.max_fused_loops
    mappings, seconds, cpu = run_mapper(spec, args)
    one = mappings[best_row(mappings, args.metric)]
    einsums = einsum_results(one, spec)
    row = one.data.iloc[0]
    latency = sum(e["latency_s"] for e in einsums)
    energy = sum(e["energy_j"] for e in einsums)
    return {"arch_file": args.arch, "workload_file": args.workload, "jinja": args.set,
            "metric": args.metric, "fused": args.fused, "jobs": args.jobs,
            "max_fused_loops": plain(args.max_fused_loops), "seconds": seconds, "cpu_seconds": cpu,
            "n_mappings": len(mappings), "latency_s": latency, "energy_j": energy, "edp": latency * energy,
            "total_latency_column_s": plain(row.get("Total<SEP>latency")),
            "dynamic_energy_j": plain(row.get("Total<SEP>dynamic_energy")),
            "leak_energy_j": plain(row.get("Total<SEP>leak_energy")),
            "mapping": "\n".join(mapping_lines(one.mapping())), "einsums": einsums}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    spec = commands.add_parser("spec", help="the architecture (and workload) as AccelForge evaluates them")
    spec.add_argument("arch")
    spec.add_argument("workload", nargs="?")
    spec.add_argument("--keep-all-in-outermost", action="store_true",
                      help="apply the unfused setting of `map` (the first Memory keeps every tensor)")
    mapper = commands.add_parser("map", help="AccelForge's mapper, live")
    mapper.add_argument("arch")
    mapper.add_argument("workload")
    mapper.add_argument("--metric", choices=sorted(METRICS), default="latency")
    mapper.add_argument("--fused", action="store_true", help="FFM with the architecture's own keep rules")
    mapper.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="AccelForge's parallel processes (default: the cores)")
    mapper.add_argument("--max-fused-loops", type=float, default=1,
                        help="FFM's max_fused_loops (the tutorial's 1; inf for no limit)")
    for sub in (spec, mapper):
        sub.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                         help="a Jinja variable of the YAML files (repeatable)")
    args = parser.parse_args()
    args.set = parse_sets(args.set)
    if getattr(args, "max_fused_loops", None) is not None and args.max_fused_loops.is_integer():
        args.max_fused_loops = int(args.max_fused_loops)
    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    result = spec_command(args) if args.command == "spec" else map_command(args)
    json.dump({"accelforge": importlib.metadata.version("accelforge"), **result}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
