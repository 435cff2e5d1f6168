"""Run ZigZag's own API on one accelerator and one model and print one JSON document (for
bench/zigzag_compare.py, which runs this file with the Python of an environment holding zigzag-dse:
`pip install covenant[compare]` or a separate venv). Imports only ZigZag and the standard library.

    python bench/zigzag_worker.py HARDWARE.yaml MAPPING.yaml MODEL.onnx [--opt latency] [--lpf-limit 6]
        [--output-bits N]

`--output-bits N` sets the final output precision of every Conv/Gemm layer (`O_final`) to N bits;
ZigZag's ONNX front end otherwise gives final outputs the activation precision (8 bits, the same
attribute as the inputs'). Partial sums (`O`) keep ZigZag's 16 bits: its example arrays' per-PE
output registers hold 16 bits (32-bit partial sums leave the layers no mapping). With 32, ZigZag
writes what a covenant MAC layer writes (its int32 accumulators): the like-for-like comparison.

The document: {"zigzag": version, "seconds": wall time of the API call, "cpu_seconds": its CPU
time, "latency": total cycles,
"energy_pj": total, "layers": [{"name", "type", "macs", "latency", "energy_pj", "ideal_cycles",
"spatial_mapping"}]}, one entry per layer ZigZag evaluates (its MAC layers), in its order.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import io
import json
import logging
import math
import os
import sys
import tempfile
import time

import onnx
import onnx.utils
from zigzag.api import get_hardware_performance_zigzag
from zigzag.parser.onnx.conv_parser import ConvParser
from zigzag.parser.onnx.gemm_parser import GemmParser


def cut_model(path: str, layers: int, folder: str) -> str:
    """The model up to the output of its `layers`-th MAC node (only shapes matter: weights may be absent)."""
    model = onnx.load(path, load_external_data=False)
    graph = model.graph
    macs = [n for n in graph.node if n.op_type in ("Conv", "Gemm", "MatMul")]
    last = macs[min(layers, len(macs)) - 1]
    inputs = [i.name for i in graph.input if i.name not in {x.name for x in graph.initializer}]
    cut = onnx.utils.Extractor(onnx.shape_inference.infer_shapes(model)).extract_model(inputs, [last.output[0]])
    out = os.path.join(folder, f"cut_{layers}_{os.path.basename(path)}")
    onnx.save(cut, out)
    return out


def set_output_bits(parser: type, bits: int) -> None:
    """Make `parser` (a ZigZag ONNX operator parser) give its layers `bits`-bit outputs."""
    original = parser.get_layer_node_user_format

    def user_format(self, *args, **kwargs):
        data = original(self, *args, **kwargs)
        data["operand_precision"]["O_final"] = bits
        return data

    parser.get_layer_node_user_format = user_format


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("hardware")
    parser.add_argument("mapping")
    parser.add_argument("model")
    parser.add_argument("--opt", default="latency", choices=("latency", "energy", "EDP"))
    parser.add_argument("--lpf-limit", type=int, default=6, help="ZigZag's LOMA loop-prime-factor limit (default 6)")
    parser.add_argument("--layers", type=int, help="only the model up to its N-th Conv/Gemm/MatMul node")
    parser.add_argument("--scratch", default=".", help="with --layers: the folder for the cut model")
    parser.add_argument("--output-bits", type=int, help="every Conv/Gemm layer's output precision (default: "
                        "ZigZag's, the activation precision: 8)")
    args = parser.parse_args()
    if args.output_bits:
        for op_parser in (ConvParser, GemmParser):
            set_output_bits(op_parser, args.output_bits)
    model = cut_model(args.model, args.layers, args.scratch) if args.layers else args.model
    logging.disable(logging.CRITICAL)  # ZigZag logs every layer at INFO; the JSON goes to stdout alone
    with tempfile.TemporaryDirectory() as dump, contextlib.redirect_stdout(io.StringIO()):
        start, cpu = time.perf_counter(), time.process_time()
        energy, latency, cmes = get_hardware_performance_zigzag(
            model, args.hardware, args.mapping, opt=args.opt, dump_folder=dump, lpf_limit=args.lpf_limit,
            loma_show_progress_bar=False)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    layers = []
    for cme, _extra in cmes[0][1]:
        sizes = {str(d): int(s) for d, s in cme.layer.layer_dim_sizes.items()}
        layers.append({"name": cme.layer.name, "type": str(cme.layer.type), "macs": math.prod(sizes.values()),
                       "dims": sizes, "latency": float(cme.latency_total2), "energy_pj": float(cme.energy_total),
                       "ideal_cycles": float(cme.ideal_cycle), "spatial_mapping": str(cme.layer.spatial_mapping)})
    json.dump({"zigzag": importlib.metadata.version("zigzag-dse"), "output_bits": args.output_bits or 8,
               "seconds": seconds, "cpu_seconds": cpu,
               "latency": float(latency), "energy_pj": float(energy), "layers": layers}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
