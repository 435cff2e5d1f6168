"""How the expert mappings in this folder were drafted: the textbook dataflow of each target, written
as rules, with tile sizes "as large as fits" (checked with `check_legal`, never scored with the cost
model: these are the hand-tuned baseline, not a search). The YAML files are the artifact; this script
re-drafts them after a format change.

    python experiments/expert/draft.py            # rewrites experiments/expert/{genesys,hvx_like}/*.yaml

genesys (32x32 weight-stationary systolic array, 64 KiB IBUF, 512 KiB WBUF, 256 KiB OBUF, SIMD lanes):
  conv / gemm / bmm -> mvmul, weight-stationary: output channels on the array columns (n), input
  channels on its rows (k; a 3-channel stem folds the filter width in, c*s = 21 rows), output pixels
  stream as rows of A (m). On chip: the largest output tile (full rows first) whose int32 partial sums
  fit OBUF double-buffered, then the largest input-channel chunk that fits IBUF; the chunk and the
  filter taps loop inside the tile so partial sums never leave OBUF within a chunk. Off chip:
  output-channel tiles outermost, then pixel tiles, input-channel chunks innermost (OBUF keeps the tile).
  depthwise / pool / add -> the SIMD unit, one channel per lane, rows streamed through VMEM1/VMEM2.
hvx_like (HVX-style vector DSP: 8 MiB VTCM, 4 KiB of vector registers, 128 B of scalar registers):
  conv / gemm / bmm -> vrmpy with a scalar operand, as Hexagon NN's convolutions: 32 output channels
  in the int32 lanes, 4 input channels per instruction, the 4 input bytes broadcast from a scalar
  register; a 32-channel weight block of a channel chunk stays in vector registers while output pixels
  stream (weight-stationary in registers); the layer (or its largest output-channel slab) is staged in
  VTCM, double-buffered.
  depthwise -> vrmpy, 32 channels in lanes and the 3 taps of a filter row in the 4-byte dot product;
  pool / add -> the 128-lane byte instructions, channels in lanes (NHWC), as the library's kernels.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mapper.mapping.binding import Binding, bind  # noqa: E402
from mapper.mapping.mapping import (  # noqa: E402
    Mapping,
    acg_digest,
    bare_layer,
    check_legal,
    greedy_mapping,
    mapping_to_yaml,
)
from mapper.spec.acg import ACG, load_acg  # noqa: E402
from mapper.spec.workload import Layer, load_workload  # noqa: E402

HERE = Path(__file__).resolve().parent


def divisors(n: int, descending: bool = True) -> list[int]:
    return sorted((d for d in range(1, n + 1) if n % d == 0), reverse=descending)


def binding_for(layer: Layer, acg: ACG, cap: str, dims: dict[str, str], tensors: dict[str, str]) -> Binding:
    for b in bind(layer, acg):
        if b.capability == cap and {d: e for d, e in b.dims if e} == dims and dict(b.tensors) == tensors:
            return b
    raise SystemExit(f"{layer.name} on {acg.name}: no binding {cap} {dims} {tensors}")


def assemble(layer: Layer, acg: ACG, b: Binding, spatial: dict[str, int], inner: list[list[tuple[str, int]]],
             outer: list[str], placement: dict[str, tuple[str, ...]]) -> Mapping:
    """Level 0 gets what the spatial extents and the inner levels leave of every dim, in `outer` order."""
    covered = {d: spatial.get(d, 1) * math.prod(f for lv in inner for x, f in lv if x == d) for d in layer.dims}
    order = outer + [d for d in layer.dims if d not in outer]
    level0 = [(d, math.ceil(layer.dims[d] / covered[d])) for d in order if math.ceil(layer.dims[d] / covered[d]) > 1]
    loops = (tuple(level0), *(tuple((d, f) for d, f in lv if f > 1) for lv in inner))
    double = tuple((t, s) for t, p in placement.items() for s in p[1:] if acg.storages[s].double_buffer)
    return Mapping(acg.name, acg_digest(acg), bare_layer(layer), b, tuple(placement.items()), loops,
                   tuple((d, s) for d, s in spatial.items() if s > 1), double)


def operands(layer: Layer) -> tuple[str, str, str]:
    """(output, activation, weight) tensors of a MAC layer."""
    return ("O", "I", "W") if "c" in layer.dims else ("C", "A", "B")


def roles(layer: Layer) -> tuple[str, str, list[str], list[str], list[str]]:
    """(output-channel dim, reduction dim, pixel dims, filter taps, batch dims) of a MAC layer."""
    if "c" in layer.dims:  # conv
        return "k", "c", ["p", "q"], ["r", "s"], ["n"]
    return "n", "k", ["m"], [], ["b"] if "b" in layer.dims else []


def pixel_tiles(layer: Layer, pix: list[str]):
    """Output pixel tiles, largest first, full rows first."""
    if len(pix) == 1:
        yield from ({pix[0]: t} for t in divisors(layer.dims[pix[0]]))
        return
    p, q = pix
    for t in divisors(layer.dims[p]):
        yield {p: t, q: layer.dims[q]}
    for t in divisors(layer.dims[q])[1:]:
        yield {p: 1, q: t}


# --------------------------------------------------------------------------------------------------

def genesys_array(layer: Layer, acg: ACG) -> tuple[Mapping, str]:
    out, red, pix, taps, batch = roles(layer)
    fold = layer.dims[red] < 32 and "s" in layer.dims  # few input channels: fold the filter width into rows
    dims = {out: "n", red: "k", **{d: "m" for d in pix if layer.dims[d] > 1}, **({"s": "k"} if fold else {})}
    tensors = dict(zip(operands(layer), ("C", "A", "B"), strict=True))
    b = binding_for(layer, acg, "mvmul", dims, tensors)
    placement = {t: b.paths[t][0] for t in layer.tensors}
    rows = layer.dims[red] * (layer.dims["s"] if fold else 1)
    base = {out: min(32, layer.dims[out]), red: min(32, layer.dims[red]), **({"s": layer.dims["s"]} if fold else {})}
    chunks = divisors(math.ceil(layer.dims[red] / base[red]))
    taps_inner = [(t, layer.dims[t]) for t in taps if not (fold and t == "s")]

    def candidates():
        for tile in pixel_tiles(layer, pix):
            for chunk in chunks:
                yield assemble(layer, acg, b, {**base, **tile}, [[(red, chunk), *taps_inner]],
                               [*batch, out, *pix, red], placement), tile, chunk
    m, tile, chunk = next((c for c in candidates() if not check_legal(c[0], acg)), (None, None, None))
    if m is None:
        raise SystemExit(f"{layer.name}: nothing fits")
    pixels = math.prod(tile.values())
    why = (f"weight-stationary on the 32x32 array: {out} ({layer.dims[out]}) on the columns, "
           f"{'c*s = ' + str(rows) if fold else red + ' (' + str(layer.dims[red]) + ')'} on the rows; "
           f"a {' x '.join(f'{d}={v}' for d, v in tile.items())} output tile ({pixels} rows of A per "
           f"instruction) is the largest whose int32 sums fit OBUF double-buffered; the input-channel chunk "
           f"{chunk * base[red]} is the largest that then fits IBUF; chunk{' and taps' if taps_inner else ''} loop "
           f"on chip so sums stay in OBUF; off chip: {out} tiles, pixel tiles, then channel chunks.")
    return m, why


def genesys_simd(layer: Layer, acg: ACG) -> tuple[Mapping, str]:
    cap, tensors = {"depthwise": ("vmac", {"O": "Z", "I": "X", "W": "Y"}), "pool": ("vmax_acc", {"O": "Z", "I": "X"}),
                    "add": ("vadd_relu", {"Z": "Z", "X": "X", "Y": "Y"})}[kind(layer)]
    b = binding_for(layer, acg, cap, {"c": "i"}, tensors)
    m = greedy_mapping(layer, b, acg)
    why = (f"the SIMD unit's {cap}, one channel per lane (32 lanes); every other dim loops, rows streamed "
           "through the vector memories with the largest tiles that fit, double-buffered.")
    return m, why


def hvx_mac(layer: Layer, acg: ACG) -> tuple[Mapping, str]:
    out, red, pix, taps, batch = roles(layer)
    output, act, weight = operands(layer)
    b = binding_for(layer, acg, "vrmpy_scalar", {out: "i", red: "j"}, {output: "C", act: "B", weight: "A"})
    placement = {output: ("DRAM", "VTCM", "VRF"), act: ("DRAM", "VTCM", "SRF"), weight: ("DRAM", "VTCM", "VRF")}
    base = {out: min(32, layer.dims[out]), red: min(4, layer.dims[red])}
    ochunks = [32 * d for d in divisors(math.ceil(layer.dims[out] / 32))]
    rchunks = divisors(math.ceil(layer.dims[red] / base[red]))
    last = pix[-1]
    row_tiles = divisors(layer.dims[last])
    best = None
    # The filter taps run in registers; a filter too large for them leaves its rows (r) to level 1.
    for split in ([], taps[:1]) if taps else ([],):
        taps_inner = [(t, layer.dims[t]) for t in taps if t not in split]
        for slab in ochunks:  # VTCM: the largest output-channel slab that fits (whole layer when it does)
            for chunk in rchunks:  # VRF: the largest weight block, then the longest pixel run
                for run in row_tiles:
                    m = assemble(layer, acg, b, base,
                                 [[(out, slab // 32), (red, math.ceil(layer.dims[red] / base[red] / chunk)),
                                   *((t, layer.dims[t]) for t in split),
                                   *((d, layer.dims[d]) for d in pix[:-1]), (last, layer.dims[last] // run)],
                                  [(last, run), (red, chunk), *taps_inner]],
                                 [*batch, out, *pix, red], placement)
                    if not check_legal(m, acg):
                        best = (m, slab, chunk, run)
                        break
                if best:
                    break
            if best:
                break
        if best:
            break
    m, slab, chunk, run = best
    why = (f"vrmpy with a scalar operand: 32 {out} in the int32 lanes, 4 {red} per instruction broadcast from "
           f"a scalar register; a {out}-slab of {slab} is staged in VTCM (double-buffered); in registers, a "
           f"32 x {chunk * base[red]} weight block{' (all taps)' if taps else ''} stays while runs of {run} "
           f"output {'pixels' if taps else 'rows'} stream (weight-stationary in registers, partial sums back "
           "to VTCM between channel chunks).")
    return m, why


def hvx_vector(layer: Layer, acg: ACG) -> tuple[Mapping, str]:
    if kind(layer) == "depthwise":
        b = binding_for(layer, acg, "vrmpy", {"c": "i", "s": "j"}, {"O": "C", "I": "A", "W": "B"})
        what = "vrmpy: 32 channels in the int32 lanes, the 3 taps of a filter row in the 4-byte dot product"
    elif kind(layer) == "pool":
        b = binding_for(layer, acg, "vmaxb_acc", {"c": "i", "q": "i"}, {"O": "Z", "I": "X"})
        what = "vmaxb_acc: 64 channels x 2 output columns in the 128 byte lanes (NHWC), window taps loop"
    else:
        b = binding_for(layer, acg, "vaddb_relu", {"c": "i"}, {"Z": "Z", "X": "X", "Y": "Y"})
        what = "vaddb_relu: 128 channels in the byte lanes (NHWC)"
    m = greedy_mapping(layer, b, acg)
    return m, what + "; tiles as large as VTCM and the vector registers hold, staged through VTCM."


def kind(layer: Layer) -> str:
    text = str(layer.expr)
    if "max=" in text:
        return "pool"
    if "relu" in text:
        return "add"
    if "W[c,r,s]" in text:
        return "depthwise"
    return "mac"


def draft(acg_name: str) -> None:
    acg = load_acg(acg_name)
    folder = HERE / acg.name
    folder.mkdir(exist_ok=True)
    for layer in load_workload("covenant14").layers:
        if acg.name == "genesys":
            m, why = (genesys_array if kind(layer) == "mac" else genesys_simd)(layer, acg)
        else:
            m, why = (hvx_mac if kind(layer) == "mac" else hvx_vector)(layer, acg)
        assert not check_legal(m, acg), (layer.name, check_legal(m, acg))
        m = Mapping(m.acg, m.acg_digest, m.layer, m.binding, m.placement, m.loops, m.spatial, m.double_buffer,
                    workload="covenant14")
        words, lines, line = why.split(), [], "# Rationale:"
        for w in words:
            if len(line) + len(w) > 110:
                lines.append(line)
                line = "#  "
            line += " " + w
        lines.append(line)
        header = f"# Expert (hand-tuned) mapping of {layer.name} on {acg.name}; drafted by draft.py's rules.\n"
        (folder / f"{layer.name}.yaml").write_text(header + "\n".join(lines) + "\n" + mapping_to_yaml(m))
        print(f"{acg.name}/{layer.name}.yaml")


if __name__ == "__main__":
    for name in ("genesys", "hvx_like"):
        draft(name)
