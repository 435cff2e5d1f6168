"""Whole networks compiled and simulated end to end (issue 11's figures).

For each network x ACG: `covenant compile`'s pipeline (map every step with CP-SAT, latency, the
given time limit per distinct layer; plan memory; lower; simulate end to end against the network
reference) and, separately, the NumPy reference of the whole network. Prints `name: value` lines:
steps, total simulated cycles, energy (uJ), off-chip bytes, peak activation bytes, compile seconds
(mapping included), end-to-end simulation seconds, the reference's seconds and their ratio, and
whether every step equals the reference.

Networks: ResNet-18, ResNet-50, MobileNetV2 as shipped YAML; with `--onnx`, the ONNX models of
`../shared/models` (imported) instead where they exist.

    python bench/network.py [--acg genesys --acg tpu_like] [--workload resnet18 ...] [--time-limit S]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the project first: bench/mapper.py would shadow the package

from mapper.importers.model import load_model  # noqa: E402
from mapper.network.compile import CompileOptions, compile_network  # noqa: E402
from mapper.network.reference import run_reference, seeded_tensors  # noqa: E402
from mapper.spec.acg import load_acg  # noqa: E402

ONNX = {"resnet18": "resnet18.onnx", "mobilenet_v2": "mobilenetv2.onnx", "alexnet": "alexnet.onnx"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--acg", action="append", help="ACGs (default genesys and tpu_like)")
    parser.add_argument("--workload", action="append", help="networks (default resnet18, resnet50, mobilenet_v2)")
    parser.add_argument("--time-limit", type=float, default=10.0, help="seconds per distinct layer (default 10)")
    parser.add_argument("--onnx", action="store_true", help="import the shared ONNX models where they exist")
    args = parser.parse_args()
    for acg_name in args.acg or ["genesys", "tpu_like"]:
        acg = load_acg(acg_name)
        for name in args.workload or ["resnet18", "resnet50", "mobilenet_v2"]:
            source = name
            onnx = ROOT.parent / "shared" / "models" / ONNX.get(name, "-")
            if args.onnx and onnx.exists():
                source = str(onnx)
            report(f"{name}@{acg.name}" + (" (onnx)" if source != name else ""), load_model(source), acg,
                   args.time_limit)


def report(label: str, wl, acg, time_limit: float) -> None:
    result = compile_network(wl, acg, CompileOptions(time_limit=time_limit))
    tot = result.totals()
    tensors = seeded_tensors(result.network, 0)
    start = time.perf_counter()
    run_reference(result.network, tensors)
    reference = time.perf_counter() - start
    sim = result.simulation_seconds
    print(f"{label}.steps: {tot.layers} ({tot.mapped} mapped)")
    print(f"{label}.valid_end_to_end: {result.valid}" + (f" ({result.error})" if result.error else ""))
    print(f"{label}.simulated_cycles: {tot.simulated_cycles}")
    print(f"{label}.predicted_cycles: {tot.predicted_cycles}")
    print(f"{label}.energy_uj: {tot.energy_pj / 1e6 if tot.energy_pj else None}")
    print(f"{label}.dram_bytes: {tot.dram_bytes}")
    print(f"{label}.peak_activation_bytes: {tot.peak_activation_bytes}")
    print(f"{label}.compile_seconds: {tot.compile_seconds:.1f}")
    print(f"{label}.simulation_seconds: {sim:.1f}" if sim is not None else f"{label}.simulation_seconds: -")
    print(f"{label}.reference_seconds: {reference:.1f}")
    if sim:
        print(f"{label}.simulation_over_reference: {sim / reference:.2f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
