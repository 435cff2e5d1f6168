"""Memory-aware scheduling (issue 12's figures): the activation peak of the file's order, the greedy
order, the optimal order (SERENITY's DP) and the optimal order of the rewritten graph.

Graphs:
- RandWire (Xie et al. 2019), small regime: N=32 nodes from networkx's `watts_strogatz_graph` (K=4,
  P=0.75), `erdos_renyi_graph` (P=0.2) and `barabasi_albert_graph` (M=5), made DAGs by node order,
  each node a 3x3 convolution (16 channels, 16x16) with relu, multi-input nodes summing their inputs as
  RandWire does (one element-wise sum of all inputs), the sinks concatenated into a 1x1 head;
- the DARTS (V2) normal cell, one and two stacked;
- SwiftNet-like cells: random irregular DAGs (12 nodes, edge probability 0.35) whose multi-input
  nodes concatenate (sum where a part already belongs to a concatenation), into 1x1 convolutions;
- the shipped networks (tiny_net, mini_inception, resnet18, resnet50, mobilenet_v2, bert_base).

The file order of a synthetic graph is its node order (what a framework emitting the graph would
run, and what TFLite runs: the model's order). Prints one line per graph, then the geometric means of
file/optimal and file/rewritten next to SERENITY's (1.68x with DP, 1.86x with rewriting, on its
irregular networks).

    python bench/schedule.py [--time-limit S] [--seeds N] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the project first: bench/mapper.py would shadow the package

import networkx as nx  # noqa: E402

from mapper.importers.synthetic import dag_workload, darts_normal_cell  # noqa: E402
from mapper.network.rewrite import rewrite_for_memory  # noqa: E402
from mapper.network.schedule import file_schedule, greedy_schedule, memory_graph, optimal_schedule  # noqa: E402
from mapper.spec.workload import load_workload  # noqa: E402

SHIPPED = ["tiny_net", "mini_inception", "resnet18", "resnet50", "mobilenet_v2", "bert_base"]


def as_dag(graph: nx.Graph) -> nx.DiGraph:
    dag = nx.DiGraph()
    dag.add_nodes_from(graph.nodes)
    dag.add_edges_from((min(u, v), max(u, v)) for u, v in graph.edges)
    return dag


def graphs(seeds: int):
    for seed in range(seeds):
        for name, g in (("ws", nx.watts_strogatz_graph(32, 4, 0.75, seed=seed)),
                        ("er", nx.erdos_renyi_graph(32, 0.2, seed=seed)),
                        ("ba", nx.barabasi_albert_graph(32, 5, seed=seed))):
            yield "irregular", dag_workload(f"randwire_{name}_s{seed}", as_dag(g), channels=16, hw=16, merge="sum",
                                            kernel=3)
    yield "irregular", darts_normal_cell(channels=16, hw=16, cells=1)
    yield "irregular", darts_normal_cell(channels=16, hw=16, cells=2)
    for seed in range(seeds):
        dag = as_dag(nx.gnp_random_graph(12, 0.35, seed=100 + seed))
        yield "irregular", dag_workload(f"swiftnet_like_s{seed}", dag, channels=16, hw=16, merge="auto")
    for name in SHIPPED:
        yield "shipped", load_workload(name)


def kib(n: int) -> str:
    return f"{n / 1024:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=float, default=20.0,
                        help="seconds for the optimal search, and again for choosing rewrites (default 20)")
    parser.add_argument("--seeds", type=int, default=3, help="random graphs per generator (default 3)")
    parser.add_argument("--only", action="append", help="only graphs whose name contains this")
    args = parser.parse_args()
    print(f"{'graph':24} {'units':>5} {'file':>8} {'greedy':>8} {'optimal':>8} {'rewrit.':>8}  (KiB)  "
          f"{'f/opt':>6} {'f/rew':>6} {'opt s':>6} {'rew s':>6}  optimal?  rewritten?")
    ratios: dict[str, list[tuple[float, float]]] = {"irregular": [], "shipped": []}
    for kind, wl in graphs(args.seeds):
        if args.only and not any(o in wl.name for o in args.only):
            continue
        g = memory_graph(wl)
        file, greedy = file_schedule(g), greedy_schedule(g)
        best = optimal_schedule(g, time_limit=args.time_limit)
        rw, rewritten = rewrite_for_memory(wl, time_limit=args.time_limit, baseline=best)

        def status(s):
            return "proven" if s.proven_optimal else f"gap {100 * s.gap:.1f}%"
        r_opt, r_rew = file.peak_bytes / best.peak_bytes, file.peak_bytes / rewritten.peak_bytes
        ratios[kind].append((r_opt, r_rew))
        print(f"{wl.name:24} {len(g.units):5d} {kib(file.peak_bytes):>8} {kib(greedy.peak_bytes):>8} "
              f"{kib(best.peak_bytes):>8} {kib(rewritten.peak_bytes):>8}         {r_opt:6.2f} {r_rew:6.2f} "
              f"{best.seconds:6.1f} {rewritten.seconds:6.1f}  {status(best):9} {status(rewritten)} "
              f"({len(rw.rewritten)} rewrites)", flush=True)
    for kind, rows in ratios.items():
        if rows:
            g_opt = math.exp(sum(math.log(a) for a, _ in rows) / len(rows))
            g_rew = math.exp(sum(math.log(b) for _, b in rows) / len(rows))
            print(f"geomean file/optimal, {kind} ({len(rows)} graphs): {g_opt:.2f}x (SERENITY: 1.68x with DP)")
            print(f"geomean file/rewritten, {kind} ({len(rows)} graphs): {g_rew:.2f}x (SERENITY: 1.86x with rewriting)")


if __name__ == "__main__":
    main()
