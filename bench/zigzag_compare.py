"""covenant side by side with ZigZag (issue 15): the same hardware, the same model, both tools.

For each ZigZag example accelerator (its hardware and mapping files, imported into an ACG with
`covenant import zigzag`) and each ZigZag example model (ResNet-18, MobileNetV2, AlexNet ONNX):
ZigZag's own API (`get_hardware_performance_zigzag`, LOMA, minimising latency) runs in a subprocess
with the Python of an environment that holds zigzag-dse (bench/zigzag_worker.py), then covenant
maps the same MAC layers (`mapper.network.flow.map_layers`, CP-SAT, latency) and validates each on the
simulator. Each layer stores int8 through the arrays' epilogue (`Layer.epilogue`), as ZigZag's
layers store 8-bit outputs (`--int32-outputs`: the int32 sums, as before the epilogue existed).
Printed per layer: ZigZag's latency and covenant's simulated one (predicted with --no-validate),
their ratio, both energies; per pair: the totals, the ratios covenant / ZigZag and the wall times
(ZigZag's API call; covenant's solving, and its simulation separately). Then
covenant's program of the whole network (`compile_network`: every layer, fused where it pays,
simulated end to end) against ZigZag's total over its MAC layers: the like-for-like comparison of
output precision (a fused MAC step keeps int32 on chip, its requantisation writes int8).

    python bench/zigzag_compare.py [--acg edge_tpu_like ...] [--model resnet18 ...] [--layers N]
        [--time-limit S] [--no-validate] [--zigzag-python PYTHON] [--zigzag-cache DIR]
        [--zigzag-output-bits N] [--int32-outputs] [--frugal PCT] [--no-network | --network-only] [--json FILE]

Only MAC layers are compared: ZigZag's ONNX front end evaluates Conv and Gemm layers alone.
Setting up ZigZag: `pip install covenant[compare]` into this environment, or a separate one
(`python3 -m venv /work/zz-venv && /work/zz-venv/bin/pip install zigzag-dse six`) given with
`--zigzag-python /work/zz-venv/bin/python`.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the project first: bench/mapper.py would shadow the package

from mapper.importers.model import load_model  # noqa: E402
from mapper.importers.onnx_graph import layer_name  # noqa: E402
from mapper.importers.zigzag import import_zigzag  # noqa: E402
from mapper.mapping.cost import evaluate  # noqa: E402
from mapper.network.compile import CompileOptions, compile_network  # noqa: E402
from mapper.network.flow import (  # noqa: E402
    Options,
    layer_key,  # noqa: E402
    map_layers,
)
from mapper.program.lower import lower  # noqa: E402
from mapper.spec.workload import Epilogue  # noqa: E402
from sim.machine import simulate  # noqa: E402
from solver import cpsat  # noqa: E402

# ZigZag accelerator -> its mapping file (eyeriss_like has none: ZigZag's default.yaml)
ACCELERATORS = {"tpu_like": "tpu_like", "eyeriss_like": "default", "edge_tpu_like": "edge_tpu_like",
                "tesla_npu_like": "tesla_npu_like", "ascend_like": "ascend_like",
                "meta_prototype": "meta_prototype_like"}
MODELS = {"resnet18": "resnet18.onnx", "mobilenetv2": "mobilenetv2.onnx", "alexnet": "alexnet.onnx"}
# The per-layer comparison's requantisation (its shift changes no figure; the simulator checks it).
EPILOGUE = Epilogue("int8", shift=8)
WORKER = Path(__file__).with_name("zigzag_worker.py")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--acg", action="append", choices=sorted(ACCELERATORS),
                        help="ZigZag accelerators (repeatable; default tpu_like, edge_tpu_like, eyeriss_like)")
    parser.add_argument("--model", action="append", choices=sorted(MODELS), help="models (default resnet18)")
    parser.add_argument("--layers", type=int, default=None, metavar="N", help="only the first N MAC layers")
    parser.add_argument("--time-limit", type=float, default=10.0, help="covenant: seconds per distinct layer")
    parser.add_argument("--no-validate", action="store_true", help="covenant: predicted cycles, no simulation")
    parser.add_argument("--zigzag-python", default=sys.executable,
                        help="a Python whose environment holds zigzag-dse (default: this one, as with the "
                             "[compare] extra installed; e.g. /work/zz-venv/bin/python)")
    parser.add_argument("--zigzag-cache", metavar="DIR",
                        help="keep ZigZag's figures per pair in DIR/MODEL@ACC.json and reuse them (ZigZag's side "
                             "does not change with covenant's code; with --layers, not used)")
    parser.add_argument("--zigzag-output-bits", type=int, metavar="N",
                        help="also run ZigZag with N-bit final outputs (32: covenant's int32 accumulators, the "
                             "like-for-like comparison) and print the ratios against it too")
    parser.add_argument("--int32-outputs", action="store_true",
                        help="covenant's MAC layers write their int32 sums (no epilogue); by default each "
                             "stores int8 through the arrays' epilogue, as ZigZag's layers store 8-bit outputs")
    parser.add_argument("--frugal", type=_frugal, metavar="PCT|zigzag",
                        help="also the least-energy mapping of each layer at most PCT %% slower than its fastest "
                             "(CP-SAT, energy under a latency cap; a point of its latency-energy front), validated; "
                             "'zigzag': at most as slow as ZigZag's layer (or the fastest, if that is slower)")
    parser.add_argument("--no-network", action="store_true",
                        help="skip covenant's whole-network compilation (fused, simulated end to end)")
    parser.add_argument("--network-only", action="store_true",
                        help="only covenant's whole-network compilation against ZigZag's layers")
    parser.add_argument("--json", metavar="FILE", help="also write every figure into FILE")
    parser.add_argument("--report", metavar="JSON", nargs="+",
                        help="print the figures of earlier runs (their --json files) instead of running; with "
                             "--zigzag-output-bits, joined with ZigZag's N-bit figures from --zigzag-cache")
    args = parser.parse_args()
    if args.report:
        results = [r for name in args.report for r in json.loads(Path(name).read_text())]
        for result in results:
            cached = Path(args.zigzag_cache or ".") / f"{result['pair']}.o{args.zigzag_output_bits}.json"
            if args.zigzag_output_bits and cached.is_file():
                widen(result, json.loads(cached.read_text()))
            print(f"== {result['pair']}")
            if result["rows"]:
                print_pair(result)
            if "network" in result:
                print_network(result)
        print_summary(results)
        return
    inputs = zigzag_inputs(args.zigzag_python)
    results = []
    for acc in args.acg or ["tpu_like", "edge_tpu_like", "eyeriss_like"]:
        for model in args.model or ["resnet18"]:
            results.append(compare(acc, model, inputs, args))
            if args.json:
                Path(args.json).write_text(json.dumps(results, indent=1))
    print_summary(results)


def zigzag_inputs(python: str) -> Path:
    """ZigZag's `inputs` folder (hardware, mapping, workload) in the environment of `python`."""
    code = "import os, zigzag; print(os.path.join(os.path.dirname(zigzag.__file__), 'inputs'))"
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True, check=False)
    if proc.returncode:
        sys.exit(f"zigzag_compare: no zigzag-dse in {python}: {proc.stderr.strip().splitlines()[-1:]}")
    return Path(proc.stdout.strip())


def run_zigzag(python: str, hw: Path, mapping: Path, model: Path, layers: int | None, bits: int | None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [python, str(WORKER), str(hw), str(mapping), str(model)]
        if layers:
            cmd += ["--layers", str(layers), "--scratch", tmp]
        if bits:
            cmd += ["--output-bits", str(bits)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(f"ZigZag failed on {hw.name} / {model.name}: {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout)


def compare(acc: str, model: str, inputs: Path, args) -> dict:
    hw, mapping = inputs / "hardware" / f"{acc}.yaml", inputs / "mapping" / f"{ACCELERATORS[acc]}.yaml"
    onnx = inputs / "workload" / MODELS[model]
    label = f"{model}@{acc}"
    zz = zigzag_figures(args, (hw, mapping, onnx), label, None)
    wide = zigzag_figures(args, (hw, mapping, onnx), label, args.zigzag_output_bits) \
        if args.zigzag_output_bits else None
    _, acg = import_zigzag(hw, mapping)
    layers = [lyr for lyr in load_model(onnx).layers if lyr.macs > 0][:args.layers or None]
    if not args.int32_outputs:  # like ZigZag's layers: complete sums stored at 8 bits
        layers = [replace(lyr, epilogue=EPILOGUE) for lyr in layers]
    start, cpu = time.perf_counter(), time.process_time()
    pairs = []
    if not args.network_only:
        print(f"== {label}: covenant ({len(layers)} MAC layers) ...", flush=True)
        pairs = map_layers(layers, acg, Options(time_limit=args.time_limit, validate=not args.no_validate))
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    with_zigzag = paired([rec for rec, _ in pairs], zz["layers"])
    frugal = frugal_rows(pairs, with_zigzag, acg, args) if args.frugal is not None else {}
    rows = []
    for rec, z in with_zigzag:
        cycles = rec.simulated_cycles if rec.simulated_cycles is not None else rec.predicted_cycles
        rows.append({"layer": rec.name, "zigzag_layer": z["name"], "macs": rec.macs, "zigzag_macs": z["macs"],
                     "zigzag_cycles": z["latency"],
                     "covenant_cycles": cycles, "covenant_predicted": rec.predicted_cycles,
                     "roofline": rec.roofline_cycles, "zigzag_ideal": z["ideal_cycles"], "valid": rec.valid,
                     "zigzag_energy_pj": z["energy_pj"], "covenant_energy_pj": rec.energy_pj,
                     "solve_seconds": rec.solve_seconds, "error": rec.error, **frugal.get(rec.name, {})})
    solve = sum(rec.solve_seconds for rec, _ in pairs)
    result = {"pair": label, "zigzag_version": zz["zigzag"], "rows": rows, "zigzag_seconds": zz["seconds"],
              "covenant_solve_seconds": solve, "covenant_wall_seconds": wall,
              "zigzag_cpu_seconds": zz["cpu_seconds"], "covenant_cpu_seconds": cpu,
              "zigzag_layers": len(zz["layers"]), "covenant_layers": len(layers), "zigzag_output_bits": None,
              "covenant_outputs": "int32" if args.int32_outputs else "int8", "frugal_pct": args.frugal}
    if wide is not None:
        widen(result, wide)
    if pairs:
        print_pair(result)
    if not args.no_network and not args.layers:
        print(f"== {label}: covenant, the whole network ...", flush=True)
        result["network"] = compare_network(acg, onnx, args)
        result["zigzag_total_cycles"], result["zigzag_total_energy_pj"] = zz["latency"], zz["energy_pj"]
        print_network(result)
    return result


def _frugal(text: str) -> float | str:
    if text == "zigzag":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a percentage or 'zigzag', not {text!r}") from None


def frugal_rows(pairs: list, with_zigzag: list, acg, args) -> dict[str, dict]:
    """Per layer name: the least-energy mapping at most --frugal % slower than the layer's fastest,
    or (--frugal zigzag) at most as slow as ZigZag's layer, or 4 % above the layer's physical bound
    where ZigZag is below it (when the fastest is not slower; a simulation above that target is
    solved once more with the cap lowered by the excess). Its
    figures predicted, and simulated unless --no-validate; identical layers solved once."""
    zz_cycles = {rec.name: z["latency"] for rec, z in with_zigzag}
    out, done = {}, {}
    for rec, mapping in pairs:
        if mapping is None:
            continue
        fastest = evaluate(mapping, acg).latency
        target = None
        if args.frugal == "zigzag":  # ZigZag's cycles; where they are below the layer's physical bound, 4 % above it
            zz, bound = Fraction(str(zz_cycles.get(rec.name, 0))), Fraction(str(rec.roofline_cycles))
            target = zz if zz >= bound else bound * Fraction(104, 100)
        key = (layer_key(mapping.layer), target)
        if key not in done:
            cap = max(fastest, target) if target is not None else fastest * (1 + Fraction(str(args.frugal)) / 100)
            row = _frugal_row(mapping.layer, acg, cap, args)
            if target is not None and row["frugal_cycles"] > target and cap > fastest:
                cap = max(fastest, cap - (Fraction(str(row["frugal_cycles"])) - target))
                row = _frugal_row(mapping.layer, acg, cap, args) | {"frugal_retried": True}
            done[key] = row
        out[rec.name] = done[key]
    return out


def _frugal_row(layer, acg, cap: Fraction, args) -> dict:
    sol = cpsat.solve(layer, acg, "energy", args.time_limit, latency_cap=cap)
    c = evaluate(sol.mapping, acg)
    row = {"frugal_predicted": float(c.latency), "frugal_cycles": float(c.latency),
           "frugal_energy_pj": float(c.energy), "frugal_status": sol.status, "frugal_valid": None,
           "frugal_solve_seconds": sol.seconds, "frugal_cap": float(cap)}
    if not args.no_validate:
        result = simulate(lower(sol.mapping), acg)  # simulated figures, as the fastest mappings' are
        row.update(frugal_cycles=float(result.cycles), frugal_energy_pj=float(result.energy_pj),
                   frugal_predicted_energy_pj=float(c.energy), frugal_valid=bool(result.matches_reference))
    return row


def compare_network(acg, onnx: Path, args) -> dict:
    """covenant's program for the whole network (every layer: the MAC layers, their requantisation,
    the residual adds, pooling; fused where it pays), simulated end to end unless --no-validate."""
    start, cpu = time.perf_counter(), time.process_time()
    result = compile_network(load_model(onnx), acg, CompileOptions(time_limit=args.time_limit,
                                                                   validate=not args.no_validate))
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    t = result.totals()

    def cycles(r):
        return r.simulated_cycles if r.simulated_cycles is not None else r.predicted_cycles
    simulated = result.valid is not None and t.simulated_cycles is not None
    return {"cycles": t.simulated_cycles if simulated else t.predicted_cycles, "simulated": simulated,
            "predicted_cycles": t.predicted_cycles, "valid": result.valid, "error": result.error,
            "mac_cycles": math.fsum(cycles(r) for r in result.records if r.macs > 0 and cycles(r) is not None),
            "layers": len(result.records), "mac_layers": sum(r.macs > 0 for r in result.records),
            "unmapped": list(t.unmapped),
            "groups": t.fusion.groups if t.fusion else None, "energy_pj": t.energy_pj, "dram_bytes": t.dram_bytes,
            "compile_seconds": result.compile_seconds, "wall_seconds": wall, "cpu_seconds": cpu}


def network_status(n: dict) -> str:
    if n["valid"]:
        return "bit-exact"
    return "incomplete" if n.get("unmapped") else "NOT bit-exact" if n["simulated"] else "predicted"


def print_network(result: dict) -> None:
    n, p = result["network"], result["pair"]
    zz, zz_e = result["zigzag_total_cycles"], result["zigzag_total_energy_pj"]
    how = ("simulated end to end, bit-exact" if n["valid"] else f"simulated end to end: NOT bit-exact ({n['error']})") \
        if n["simulated"] else "predicted"
    if n.get("unmapped"):
        how = (f"INCOMPLETE: {len(n['unmapped'])} steps have no mapping on this ACG ({', '.join(n['unmapped'][:4])}"
               f"{', ...' if len(n['unmapped']) > 4 else ''}), the rest predicted")
    print(f"{p}.network: covenant's program of all {n['layers']} steps ({n['mac_layers']} with MACs, "
          f"{n['groups']} fused groups), {how}: {n['cycles']:,.0f} cycles (its MAC steps {n['mac_cycles']:,.0f}); "
          f"ZigZag's {result['zigzag_layers']} MAC layers {zz:,.0f}: ratio {_ratio(n['cycles'], zz)} "
          f"(MAC steps {_ratio(n['mac_cycles'], zz)})")
    print(f"{p}.network_energy_uj: covenant {n['energy_pj'] / 1e6:,.1f}, ZigZag {zz_e / 1e6:,.1f}, ratio "
          f"{_ratio(n['energy_pj'], zz_e)}; DRAM {n['dram_bytes'] / 2**20:.2f} MiB")
    print(f"{p}.network_seconds: covenant compile {n['compile_seconds']:.1f} (speed-up "
          f"{_ratio(result['zigzag_seconds'], n['compile_seconds'])}x; CPU {n['cpu_seconds']:.1f} vs ZigZag's "
          f"{result['zigzag_cpu_seconds']:.1f}), with simulation {n['wall_seconds']:.1f}", flush=True)


def widen(result: dict, wide: dict) -> None:
    """Add to every row of `result` ZigZag's figures for the same layer (by its ONNX node name) from
    `wide`, a run of ZigZag with other output precision."""
    layers = {z["name"]: z for z in wide["layers"]}
    for row in result["rows"]:
        z = layers[row["zigzag_layer"]]
        row |= {"zigzag_wide_cycles": z["latency"], "zigzag_wide_energy_pj": z["energy_pj"]}
    result["zigzag_output_bits"] = wide["output_bits"]


def zigzag_figures(args, files: tuple[Path, Path, Path], label: str, bits: int | None) -> dict:
    """ZigZag's figures for one pair (hardware, mapping and model files), its layers' final outputs at
    `bits` bits (None: ZigZag's default, 8), from the cache when it holds them."""
    what = f"ZigZag ({bits}-bit outputs)" if bits else "ZigZag"
    name = f"{label}.o{bits}.json" if bits else f"{label}.json"
    cached = Path(args.zigzag_cache) / name if args.zigzag_cache and not args.layers else None
    if cached is not None and cached.is_file():
        print(f"== {label}: {what}: the figures in {cached}", flush=True)
        return json.loads(cached.read_text())
    print(f"== {label}: {what} ...", flush=True)
    zz = run_zigzag(args.zigzag_python, *files, args.layers, bits)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(json.dumps(zz))
    return zz


def paired(records: list, zz_layers: list[dict]) -> list[tuple]:
    """covenant's records, in order, each with ZigZag's layer of the same ONNX node (ZigZag's node
    names, e.g. `/layer2/layer2.0/downsample/downsample.0/Conv`, named as covenant's importer names
    them); layers left unmatched pair in order (the tools may order a block's branches differently)."""
    by_name = {layer_name(z["name"], z["type"], i): z for i, z in enumerate(zz_layers)}
    match = {rec.name: by_name.pop(rec.name) for rec in records if rec.name in by_name}
    left = iter(z for z in zz_layers if z in by_name.values())
    out = []
    for rec in records:
        z = match.get(rec.name) or next(left, None)
        if z is not None:
            out.append((rec, z))
    return out


def _frugal_label(result: dict) -> str:
    pct = result.get("frugal_pct")
    return "at most ZigZag's cycles" if pct == "zigzag" else f"at most {pct} % slower than the fastest"


def _ratio(a, b) -> str:
    return f"{a / b:.3f}" if a is not None and b else "-"


def totals(result: dict) -> dict:
    rows = [r for r in result["rows"] if r["covenant_cycles"] is not None]
    out = {k: sum(r[k] for r in rows) for k in ("zigzag_cycles", "covenant_cycles", "zigzag_energy_pj")}
    out["covenant_energy_pj"] = sum(r["covenant_energy_pj"] or 0 for r in rows)
    out["compared"], out["valid"] = len(rows), sum(r["valid"] is True for r in rows)
    out["worse"] = [r["layer"] for r in rows if r["covenant_cycles"] > r["zigzag_cycles"]]
    if rows and all("frugal_cycles" in r for r in rows):
        out["frugal_cycles"] = sum(r["frugal_cycles"] for r in rows)
        out["frugal_energy_pj"] = sum(r["frugal_energy_pj"] for r in rows)
        out["frugal_slower"] = [r["layer"] for r in rows if r["frugal_cycles"] > r["zigzag_cycles"]]
        out["frugal_hungrier"] = [r["layer"] for r in rows if r["frugal_energy_pj"] > r["zigzag_energy_pj"]]
        out["frugal_valid"] = sum(r["frugal_valid"] is True for r in rows)
    if result.get("zigzag_output_bits"):
        out["wide_cycles"] = sum(r["zigzag_wide_cycles"] for r in rows)
        out["wide_energy_pj"] = sum(r["zigzag_wide_energy_pj"] for r in rows)
        out["wide_worse"] = [r["layer"] for r in rows if r["covenant_cycles"] > r["zigzag_wide_cycles"]]
    return out


def print_pair(result: dict) -> None:
    head = f"{'layer':34} {'MACs':>12} {'ZigZag cyc':>12} {'covenant':>12} {'ratio':>6} {'roofline':>11} " \
           f"{'ZZ ideal':>11} {'ZZ uJ':>9} {'cov uJ':>9} {'E ratio':>7} valid"
    bits = result.get("zigzag_output_bits")
    print(head + (f" {'ZZ ' + str(bits) + '-bit':>12} {'ratio':>6}" if bits else ""))
    for r in result["rows"]:
        mismatch = " (MACs differ: ZigZag " + f"{r['zigzag_macs']:,})" if r["macs"] != r["zigzag_macs"] else ""
        if bits:
            wide = r["zigzag_wide_cycles"]
            mismatch = f" {wide:>12,.0f} {_ratio(r['covenant_cycles'], wide):>6}" + mismatch
        print(f"{r['layer'][:34]:34} {r['macs']:>12,} {r['zigzag_cycles']:>12,.0f} "
              f"{(r['covenant_cycles'] or 0):>12,.0f} {_ratio(r['covenant_cycles'], r['zigzag_cycles']):>6} "
              f"{(r['roofline'] or 0):>11,.0f} {r['zigzag_ideal']:>11,.0f} {r['zigzag_energy_pj'] / 1e6:>9.2f} "
              f"{(r['covenant_energy_pj'] or 0) / 1e6:>9.2f} "
              f"{_ratio(r['covenant_energy_pj'], r['zigzag_energy_pj']):>7} {r['valid']}{mismatch}"
              + (f"  [{r['error']}]" if r["error"] else ""))
    t, p = totals(result), result["pair"]
    print(f"{p}.layers: {t['compared']} compared ({result['zigzag_layers']} by ZigZag), {t['valid']} validated")
    print(f"{p}.latency_cycles: ZigZag {t['zigzag_cycles']:,.0f}, covenant {t['covenant_cycles']:,.0f}, "
          f"ratio {_ratio(t['covenant_cycles'], t['zigzag_cycles'])}")
    print(f"{p}.energy_uj: ZigZag {t['zigzag_energy_pj'] / 1e6:,.1f}, covenant {t['covenant_energy_pj'] / 1e6:,.1f}, "
          f"ratio {_ratio(t['covenant_energy_pj'], t['zigzag_energy_pj'])}")
    print(f"{p}.seconds: ZigZag {result['zigzag_seconds']:.1f}, covenant solving "
          f"{result['covenant_solve_seconds']:.1f} "
          f"(speed-up {_ratio(result['zigzag_seconds'], result['covenant_solve_seconds'])}x), covenant with "
          f"simulation {result['covenant_wall_seconds']:.1f}; CPU: ZigZag {result['zigzag_cpu_seconds']:.1f}, "
          f"covenant with simulation {result['covenant_cpu_seconds']:.1f} (all threads)")
    print(f"{p}.layers_slower_than_zigzag: {', '.join(t['worse']) or 'none'}", flush=True)
    if "frugal_cycles" in t:
        print(f"{p}.frugal: the least energy {_frugal_label(result)}: "
              f"latency ratio {_ratio(t['frugal_cycles'], t['zigzag_cycles'])}, energy ratio "
              f"{_ratio(t['frugal_energy_pj'], t['zigzag_energy_pj'])}, {t['frugal_valid']} validated; "
              f"slower than ZigZag: {', '.join(t['frugal_slower']) or 'none'}; hungrier: "
              f"{', '.join(t['frugal_hungrier']) or 'none'}", flush=True)
    if "wide_cycles" in t:
        bits = result["zigzag_output_bits"]
        print(f"{p}.latency_cycles_vs_zigzag_{bits}bit_outputs: ZigZag {t['wide_cycles']:,.0f}, ratio "
              f"{_ratio(t['covenant_cycles'], t['wide_cycles'])}; energy ratio "
              f"{_ratio(t['covenant_energy_pj'], t['wide_energy_pj'])}; layers slower: "
              f"{', '.join(t['wide_worse']) or 'none'}", flush=True)


def print_summary(results: list[dict]) -> None:
    print("== summary (covenant / ZigZag)")
    for result in results:
        t = totals(result)
        if "network" in result:
            n = result["network"]
            print(f"{result['pair']:28} network {_ratio(n['cycles'], result['zigzag_total_cycles']):>6} "
                  f"(MAC steps {_ratio(n['mac_cycles'], result['zigzag_total_cycles'])})  energy "
                  f"{_ratio(n['energy_pj'], result['zigzag_total_energy_pj']):>6}  compile speed-up "
                  f"{_ratio(result['zigzag_seconds'], n['compile_seconds']):>6}x  "
                  f"{network_status(n)}")
        if not result["rows"]:
            continue
        print(f"{result['pair']:28} latency {_ratio(t['covenant_cycles'], t['zigzag_cycles']):>6}  energy "
              f"{_ratio(t['covenant_energy_pj'], t['zigzag_energy_pj']):>6}  solve speed-up "
              f"{_ratio(result['zigzag_seconds'], result['covenant_solve_seconds']):>6}x  valid "
              f"{t['valid']}/{t['compared']}  slower layers: {len(t['worse'])}"
              + (f"  | vs {result['zigzag_output_bits']}-bit outputs: latency "
                 f"{_ratio(t['covenant_cycles'], t['wide_cycles'])}  energy "
                 f"{_ratio(t['covenant_energy_pj'], t['wide_energy_pj'])}  slower layers: {len(t['wide_worse'])}"
                 if "wide_cycles" in t else "")
              + (f"  | frugal ({_frugal_label(result)}): latency {_ratio(t['frugal_cycles'], t['zigzag_cycles'])}"
                 f"  energy {_ratio(t['frugal_energy_pj'], t['zigzag_energy_pj'])}  slower {len(t['frugal_slower'])}"
                 f"  hungrier {len(t['frugal_hungrier'])}" if "frugal_cycles" in t else ""))


if __name__ == "__main__":
    main()
