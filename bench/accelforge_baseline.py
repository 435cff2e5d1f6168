"""AccelForge's own figures on its own examples (issue 27, the baseline covenant will be compared
with): for each example architecture and workload (GPT-3 6.7B and Llama 3 8B one decoder layer,
prefill of 2,048 tokens and decode of one token after 2,047 cached ones, and the chain of three
128 x 128 matmuls), whether AccelForge's loader evaluates the pair (`accelforge_worker.py spec`) and
what its mapper finds unfused, every tensor kept in the outermost memory as its mapper tutorial does
(`accelforge_worker.py map`): latency, energy, and the wall and CPU seconds of the mapper call.

    python bench/accelforge_baseline.py [--arch tpu_v4i ...] [--workload gpt3_prefill ...]
        [--metric latency+energy] [--jobs 2] [--timeout S] [--budget S] [--cache DIR]
        [--af-python /work/af-venv/bin/python] [--json FILE]
    python bench/accelforge_baseline.py --report --cache DIR [--einsums]   # the table of earlier runs
    python bench/accelforge_baseline.py --report --cache DIR --reference regression_reference.json

`--reference` sets the figures beside those of AccelForge's own regression test
(`tests/regression_reference.json` in its repository: the unfused runs of its examples, minimising
energy-delay product), with the ratios ours / theirs.

Each pair runs the worker in a subprocess with the Python of an environment holding AccelForge
(`sh bench/setup_accelforge.sh` makes /work/af-venv). With `--cache DIR` each pair's documents are
kept in DIR/ARCH@WORKLOAD.json and reused. `--timeout` stops one mapper run (its whole process
group), `--budget` stops starting new ones once that many mapper seconds are spent; the pairs left
are listed as not run. Imports only the standard library.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).with_name("accelforge_worker.py")
EXAMPLES = ROOT / "tests" / "data" / "accelforge" / "examples"
ARCHES = ("simple", "tpu_v4i", "simba", "eyeriss", "nvdla")
PREFILL = {"BATCH_SIZE": 1, "DECODE": False, "N_NEW_TOKENS": 2048}
DECODE = {"BATCH_SIZE": 1, "DECODE": True, "N_NEW_TOKENS": 1, "N_CACHED_TOKENS": 2047}
WORKLOADS = {  # name -> (file under examples/workloads, Jinja variables); AccelForge's own regression cases
    "three_matmuls": ("basic/three_matmuls_annotated.yaml", {}),
    "gpt3_prefill": ("transformers/gpt/gpt3_6.7B.yaml", PREFILL),
    "gpt3_decode": ("transformers/gpt/gpt3_6.7B.yaml", DECODE),
    "llama3_prefill": ("transformers/llama/llama3_8B.yaml", PREFILL),
    "llama3_decode": ("transformers/llama/llama3_8B.yaml", DECODE),
}


def worker_command(args, command: str, arch: str, workload: str) -> list[str]:
    path, variables = WORKLOADS[workload]
    cmd = [args.af_python, str(WORKER), command, str(EXAMPLES / "arches" / f"{arch}.yaml"),
           str(EXAMPLES / "workloads" / path)]
    for key, value in variables.items():
        cmd += ["--set", f"{key}={json.dumps(value)}"]
    if command == "map":
        cmd += ["--metric", args.metric, "--jobs", str(args.jobs)]
    return cmd


def run_worker(cmd: list[str], timeout: float | None) -> tuple[dict | None, str, float]:
    """(document or None, the error's last line, wall seconds); a run past `timeout` is stopped with
    its whole process group (AccelForge's worker processes too)."""
    start = time.perf_counter()
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True, cwd=ROOT)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return None, f"stopped after {timeout:.0f} s", time.perf_counter() - start
    seconds = time.perf_counter() - start
    if process.returncode != 0:
        lines = [line for line in err.strip().splitlines() if line.strip()]
        return None, (lines[-1] if lines else f"exit status {process.returncode}")[:300], seconds
    return json.loads(out), "", seconds


def summary_of_spec(document: dict) -> dict:
    einsums = document.get("einsums", [])
    return {"loads": True, "einsums": len(einsums),
            "macs": sum(e["n_computes"] for e in einsums if not e["is_copy_operation"]),
            "computes": sorted({p["compute"] for e in einsums for p in e["paths"] if p["enabled"] is True})}


def run_pair(args, arch: str, workload: str) -> dict:
    """One pair: the loader's evaluation, then the mapper (within the timeout)."""
    result = {"arch": arch, "workload": workload, "metric": args.metric, "jobs": args.jobs}
    spec, error, _ = run_worker(worker_command(args, "spec", arch, workload), 600)
    if spec is None:
        return {**result, "loads": False, "error": error}
    result.update(summary_of_spec(spec))
    mapped, error, wall = run_worker(worker_command(args, "map", arch, workload), args.timeout)
    if mapped is None:
        return {**result, "mapped": False, "error": error, "process_seconds": wall}
    keep = ("latency_s", "energy_j", "edp", "seconds", "cpu_seconds", "n_mappings", "accelforge")
    einsums = [{k: e[k] for k in ("name", "compute", "latency_s", "latency_in_compute_steps", "energy_j", "mapping")}
               for e in mapped["einsums"]]
    return {**result, "mapped": True, "process_seconds": wall, **{k: mapped[k] for k in keep},
            "einsum_results": einsums}


def cached(args, arch: str, workload: str) -> dict | None:
    if not args.cache:
        return None
    path = Path(args.cache) / f"{arch}@{workload}.json"
    if path.is_file():
        data = json.loads(path.read_text())
        if data.get("metric") == args.metric and (data.get("mapped") or "stopped" not in data.get("error", "")):
            return data
    return None


def run_all(args) -> list[dict]:
    results, spent = [], 0.0
    for workload in args.workload:
        for arch in args.arch:
            data = cached(args, arch, workload)
            if data is None and spent >= args.budget:
                results.append({"arch": arch, "workload": workload, "metric": args.metric,
                                "not_run": f"mapper budget of {args.budget:.0f} s spent"})
                continue
            if data is None:
                data = run_pair(args, arch, workload)
                data["measured"] = time.strftime("%Y-%m-%d")
                if args.cache:
                    Path(args.cache).mkdir(parents=True, exist_ok=True)
                    (Path(args.cache) / f"{arch}@{workload}.json").write_text(json.dumps(data, indent=1))
            spent += data.get("seconds", data.get("process_seconds", 0.0))
            results.append(data)
            print(row(data), flush=True)
    return results


def number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def row(data: dict) -> str:
    if "not_run" in data:
        cells = ["not run", "", "", "", "", data["not_run"]]
    elif not data.get("loads"):
        cells = ["no", "", "", "", "", data.get("error", "")]
    elif not data.get("mapped"):
        cells = [f"yes ({data['einsums']} Einsums)", "", "", number(data.get("process_seconds")), "",
                 data.get("error", "")]
    else:
        cells = [f"yes ({data['einsums']} Einsums)", number(data["latency_s"]), number(data["energy_j"]),
                 f"{data['seconds']:.1f}", f"{data['cpu_seconds']:.1f}", ""]
    return "| " + " | ".join([data["arch"], data["workload"], *cells]) + " |"


def einsum_rows(data: dict) -> list[str]:
    """One Markdown row per Einsum of a mapped pair: its compute unit, latency, compute steps, energy."""
    return [f"| {data['arch']} | {data['workload']} | {e['name']} | {e['compute']} | {number(e['latency_s'])} | "
            f"{number(e['latency_in_compute_steps'], 4)} | {number(e['energy_j'])} |"
            for e in data.get("einsum_results", [])]


EINSUM_HEADER = ("| arch | workload | Einsum | compute | latency (s) | compute steps | energy (J) |\n"
                 "|---|---|---|---|---:|---:|---:|")
HEADER = ("| arch | workload | loads | latency (s) | energy (J) | mapper wall (s) | mapper CPU (s) | note |\n"
          "|---|---|---|---:|---:|---:|---:|---|")


def report(args) -> list[dict]:
    results = []
    for workload in args.workload:
        for arch in args.arch:
            path = Path(args.cache) / f"{arch}@{workload}.json"
            if path.is_file():
                results.append(json.loads(path.read_text()))
            else:
                results.append({"arch": arch, "workload": workload, "not_run": "no figures in the cache"})
    return results


def reference_key(arch: str, workload: str) -> str:
    """The key of a pair in AccelForge's tests/regression_reference.json (its tests/test_regression.py, `_key`)."""
    path, variables = WORKLOADS[workload]
    jinja = ",".join(f"{k}={v}" for k, v in sorted(variables.items()))
    return f"{arch}|{Path(path).stem}|{jinja}|unfused"


def reference_rows(results: list[dict], reference_file: str) -> list[str]:
    """Each mapped pair AccelForge's regression reference also holds: both latencies and energies."""
    reference = json.loads(Path(reference_file).read_text())
    rows = ["| arch | workload | latency (s) | reference (s) | ratio | energy (J) | reference (J) | ratio |",
            "|---|---|---:|---:|---:|---:|---:|---:|"]
    for data in results:
        ref = reference.get(reference_key(data["arch"], data["workload"]))
        if ref is None or not data.get("mapped"):
            continue
        rows.append(f"| {data['arch']} | {data['workload']} | {data['latency_s']:.7g} | {ref['latency']:.7g} | "
                    f"{data['latency_s'] / ref['latency']:.4f} | {data['energy_j']:.7g} | {ref['energy']:.7g} | "
                    f"{data['energy_j'] / ref['energy']:.4f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", action="append", choices=ARCHES, help="architectures (default: all five)")
    parser.add_argument("--workload", action="append", choices=sorted(WORKLOADS), help="workloads (default: all)")
    parser.add_argument("--metric", default="latency+energy", choices=("latency", "energy", "edp", "latency+energy"),
                        help="the mapper's objective (default latency+energy: latency, ties by energy)")
    parser.add_argument("--jobs", type=int, default=2, help="AccelForge's parallel processes (default 2)")
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds one mapper run may take")
    parser.add_argument("--budget", type=float, default=2400.0, help="mapper seconds after which no run starts")
    parser.add_argument("--cache", metavar="DIR", help="keep and reuse each pair's figures in DIR")
    parser.add_argument("--af-python", default="/work/af-venv/bin/python",
                        help="a Python whose environment holds accelforge (default /work/af-venv/bin/python)")
    parser.add_argument("--json", metavar="FILE", help="also write every figure into FILE")
    parser.add_argument("--report", action="store_true", help="print the table of the runs in --cache only")
    parser.add_argument("--einsums", action="store_true", help="with --report: one row per Einsum of each pair")
    parser.add_argument("--reference", metavar="JSON",
                        help="with --report: AccelForge's tests/regression_reference.json, set beside the figures")
    args = parser.parse_args()
    args.arch = args.arch or list(ARCHES)
    args.workload = args.workload or list(WORKLOADS)
    if args.report and not args.cache:
        parser.error("--report needs --cache")
    if args.einsums and args.report:
        print(EINSUM_HEADER)
        for data in report(args):
            print("\n".join(einsum_rows(data)))
        return
    print(HEADER, flush=True)
    results = report(args) if args.report else run_all(args)
    if args.report:
        for data in results:
            print(row(data))
    if args.report and args.reference:
        print("\n" + "\n".join(reference_rows(results, args.reference)))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    print(f"\n{sys.argv[0]}: {sum(1 for r in results if r.get('mapped'))} of {len(results)} pairs mapped; "
          f"mapper seconds {sum(r.get('seconds', 0.0) for r in results):.0f}")


if __name__ == "__main__":
    main()
