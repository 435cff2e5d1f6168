"""The op library: templates that turn a few parameters into tensor expressions.

A template is a plain function from validated parameters to one or more `Proto` layers (a GRU cell
is five). Every expression is built as text and read by the one parser of `mapper.spec.notation`, so a
template cannot produce anything a user could not have written as `expr:`.

    >>> protos, slots = expand("conv2d", {"C": 3, "K": 8, "H": 9, "W": 9, "R": 3, "stride": 2, "pad": 1})
    >>> protos[0].expr
    'O[n,k,p,q] += I[n,c,2*p+r-1,2*q+s-1] * W[k,c,r,s]'
    >>> protos[0].dims["p"], slots
    (5, {'I': (('', 'I'),)})
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from mapper.spec.dtypes import DTYPES


class TemplateError(ValueError):
    """A parameter problem: `param` names the offending parameter (None for the whole set)."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class Proto:
    """A layer as a template produces it, before naming and wiring.

    `suffix` distinguishes the layers of a multi-layer template ('' names the template's result);
    `shapes` declares input tensor shapes where they differ from the indexed range (padding, slices);
    `internal` wires an operand to another proto of the same template, by suffix.
    """

    expr: str
    dims: dict[str, int]
    dtypes: dict[str, str]
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    suffix: str = ""
    internal: dict[str, str] = field(default_factory=dict)


# Activation slots: slot name -> the (suffix, operand) pairs it feeds. `inputs:` fills them in order.
Slots = dict[str, tuple[tuple[str, str], ...]]


@dataclass(frozen=True)
class Param:
    kind: str  # 'int' (>= 1), 'nat' (>= 0), 'num', 'pair' (int or [h, w]), 'pads', 'shape', 'dtype', 'bool', 'act'
    default: object = None  # None: required
    doc: str = ""


@dataclass(frozen=True)
class Template:
    name: str
    doc: str
    params: dict[str, Param]
    build: Callable[[dict], tuple[list[Proto], Slots]]


# --------------------------------------------------------------------------------------------------
# Helpers

def affine(*terms: tuple[int, str], const: int = 0) -> str:
    """Index text for sum(coeff*dim) + const, e.g. affine((2, 'p'), (1, 'r'), const=-1) == '2*p+r-1'."""
    out = ""
    for coeff, dim in terms:
        if coeff == 0:
            continue
        text = dim if abs(coeff) == 1 else f"{abs(coeff)}*{dim}"
        out += ("-" if coeff < 0 else "+") + text
    if const or not out:
        out += ("-" if const < 0 else "+") + str(abs(const))
    return out.lstrip("+")


def _access(tensor: str, indices: list[str]) -> str:
    return f"{tensor}[{','.join(indices)}]"


def _out_size(size: int, kernel: int, stride: int, dilation: int, pad_total: int, what: str) -> int:
    out = (size + pad_total - dilation * (kernel - 1) - 1) // stride + 1
    if out < 1:
        raise TemplateError(f"the {what} output size is {out}: the kernel (with dilation) does not fit "
                            f"the padded input")
    return out


def _spatial(p: dict, dims_in=("H", "W"), kernel=("R", "S")):
    """Output sizes and the two input index strings of a 2-D window op."""
    (sh, sw), (dh, dw) = p["stride"], p.get("dilation", (1, 1))
    top, left, bottom, right = p["pad"]
    R, S = p[kernel[0]], p[kernel[1]]
    P = _out_size(p[dims_in[0]], R, sh, dh, top + bottom, "height")
    Q = _out_size(p[dims_in[1]], S, sw, dw, left + right, "width")
    h_idx = affine((sh, "p"), (dh, "r"), const=-top)
    w_idx = affine((sw, "q"), (dw, "s"), const=-left)
    return P, Q, h_idx, w_idx


def _window_params(**extra: Param) -> dict[str, Param]:
    return {
        "N": Param("int", 1, "batch"), "C": Param("int", doc="input channels"),
        "H": Param("int", doc="input height"), "W": Param("int", doc="input width"),
        "R": Param("int", doc="kernel height"), "S": Param("int", 0, "kernel width (default R)"),
        "stride": Param("pair", 1, "stride, or [height, width]"),
        "pad": Param("pads", 0, "zero padding: n, [h, w] or [top, left, bottom, right]"),
        **extra,
    }


def _fill_s(p: dict) -> dict:
    return {**p, "S": p["S"] or p["R"]}


# --------------------------------------------------------------------------------------------------
# Templates

def conv2d(p: dict) -> tuple[list[Proto], Slots]:
    p = _fill_s(p)
    N, C, K, G = p["N"], p["C"], p["K"], p["groups"]
    if C % G or K % G:
        raise TemplateError(f"groups={G} must divide C={C} and K={K}", "groups")
    P, Q, h, w = _spatial(p)
    dims = {"n": N, "k": K // G, "p": P, "q": Q, "c": C // G, "r": p["R"], "s": p["S"]}
    if G == 1:
        expr = (f"O[n,k,p,q] += {_access('I', ['n', 'c', h, w])} * W[k,c,r,s]")
        shapes = {"I": (N, C, p["H"], p["W"])}
    else:  # grouped: the 5-D views [N,G,C/G,H,W] and [N,G,K/G,P,Q] have the 4-D tensors' layout
        dims = {"n": N, "g": G, **{d: v for d, v in dims.items() if d != "n"}}
        expr = f"O[n,g,k,p,q] += {_access('I', ['n', 'g', 'c', h, w])} * W[g,k,c,r,s]"
        shapes = {"I": (N, G, C // G, p["H"], p["W"])}
    dtypes = {"I": p["dtype"], "W": p["dtype"], "O": p["acc_dtype"]}
    return [Proto(expr, dims, dtypes, shapes)], {"I": (("", "I"),)}


def depthwise_conv2d(p: dict) -> tuple[list[Proto], Slots]:
    p = _fill_s(p)
    P, Q, h, w = _spatial(p)
    dims = {"n": p["N"], "c": p["C"], "p": P, "q": Q, "r": p["R"], "s": p["S"]}
    expr = f"O[n,c,p,q] += {_access('I', ['n', 'c', h, w])} * W[c,r,s]"
    dtypes = {"I": p["dtype"], "W": p["dtype"], "O": p["acc_dtype"]}
    return [Proto(expr, dims, dtypes, {"I": (p["N"], p["C"], p["H"], p["W"])})], {"I": (("", "I"),)}


def gemm(p: dict) -> tuple[list[Proto], Slots]:
    a = "A[k,m]" if p["transpose_a"] else "A[m,k]"
    b = "B[n,k]" if p["transpose_b"] else "B[k,n]"
    dims = {"m": p["M"], "n": p["N"], "k": p["K"]}
    dtypes = {"A": p["dtype"], "B": p["dtype"], "C": p["acc_dtype"]}
    return [Proto(f"C[m,n] += {a} * {b}", dims, dtypes)], {"A": (("", "A"),)}


def batched_matmul(p: dict) -> tuple[list[Proto], Slots]:
    b = "B[b,n,k]" if p["transpose_b"] else "B[b,k,n]"
    dims = {"b": p["B"], "m": p["M"], "n": p["N"], "k": p["K"]}
    dtypes = {"A": p["dtype"], "B": p["dtype"], "C": p["acc_dtype"]}
    return [Proto(f"C[b,m,n] += A[b,m,k] * {b}", dims, dtypes)], {"A": (("", "A"),), "B": (("", "B"),)}


def max_pool2d(p: dict) -> tuple[list[Proto], Slots]:
    p = _fill_s({**p, "stride": p["stride"] or (p["R"], p["S"] or p["R"])})
    P, Q, h, w = _spatial(p)
    dims = {"n": p["N"], "c": p["C"], "p": P, "q": Q, "r": p["R"], "s": p["S"]}
    expr = f"O[n,c,p,q] max= {_access('I', ['n', 'c', h, w])}"
    shapes = {"I": (p["N"], p["C"], p["H"], p["W"])}
    return [Proto(expr, dims, {"I": p["dtype"], "O": p["dtype"]}, shapes)], {"I": (("", "I"),)}


def avg_pool2d(p: dict) -> tuple[list[Proto], Slots]:
    """Integer dtypes: the window sum in acc_dtype (the 1/(R*S) scale belongs to requantization, as in
    int8 accelerators); float dtypes: the mean, padding counted in the divisor."""
    p = _fill_s({**p, "stride": p["stride"] or (p["R"], p["S"] or p["R"])})
    P, Q, h, w = _spatial(p)
    dims = {"n": p["N"], "c": p["C"], "p": P, "q": Q, "r": p["R"], "s": p["S"]}
    is_float = p["dtype"].startswith("float")
    scale = f" * {1.0 / (p['R'] * p['S'])!r}" if is_float else ""
    expr = f"O[n,c,p,q] += {_access('I', ['n', 'c', h, w])}{scale}"
    out = p["dtype"] if is_float else p["acc_dtype"]
    shapes = {"I": (p["N"], p["C"], p["H"], p["W"])}
    return [Proto(expr, dims, {"I": p["dtype"], "O": out}, shapes)], {"I": (("", "I"),)}


_SHAPE_DIMS = {1: ["i"], 2: ["m", "n"], 3: ["c", "h", "w"], 4: ["n", "c", "h", "w"]}


def _shape_dims(shape: tuple[int, ...]) -> list[str]:
    return _SHAPE_DIMS.get(len(shape), [f"d{i}" for i in range(len(shape))])


def _unary(fn: str) -> Callable[[dict], tuple[list[Proto], Slots]]:
    def build(p: dict) -> tuple[list[Proto], Slots]:
        names = _shape_dims(p["shape"])
        x = _access("X", names)
        dims = dict(zip(names, p["shape"], strict=True))
        return [Proto(f"{_access('Z', names)} = {fn}({x})", dims, {"X": p["dtype"], "Z": p["dtype"]})], \
            {"X": (("", "X"),)}
    build.__doc__ = f"Z = {fn}(X), element-wise over `shape`."
    return build


def _binary(op: str) -> Callable[[dict], tuple[list[Proto], Slots]]:
    def build(p: dict) -> tuple[list[Proto], Slots]:
        names = _shape_dims(p["shape"])
        rhs = f"{_access('X', names)} {op} {_access('Y', names)}"
        if p["activation"] != "none":
            rhs = f"{p['activation']}({rhs})"
        dims = dict(zip(names, p["shape"], strict=True))
        dtypes = {"X": p["dtype"], "Y": p["dtype"], "Z": p["dtype"]}
        return [Proto(f"{_access('Z', names)} = {rhs}", dims, dtypes)], {"X": (("", "X"),), "Y": (("", "Y"),)}
    build.__doc__ = f"Z = X {op} Y, element-wise over `shape`, with an optional fused activation."
    return build


def _conversion(p: dict, rhs: Callable[[str, str], str]) -> tuple[list[Proto], Slots]:
    """Z = rhs(X, lower bound) element-wise over `shape`, from `dtype` to `out_dtype`; the lower bound
    is 0 with `activation: relu`, else the output type's minimum (integer outputs)."""
    names = _shape_dims(p["shape"])
    lo = "0" if p.get("activation") == "relu" else \
        (str(int(np.iinfo(p["out_dtype"]).min)) if np.dtype(p["out_dtype"]).kind in "iu" else "")
    dims = dict(zip(names, p["shape"], strict=True))
    expr = f"{_access('Z', names)} = {rhs(_access('X', names), lo)}"
    return [Proto(expr, dims, {"X": p["dtype"], "Z": p["out_dtype"]})], {"X": (("", "X"),)}


def requant(p: dict) -> tuple[list[Proto], Slots]:
    """Z = clip(shr(X, shift), lo, hi): an accumulator requantised to a narrower integer type (shift
    right with rounding, then saturation; `activation: relu` clips at 0)."""
    hi = int(np.iinfo(p["out_dtype"]).max)
    return _conversion(p, lambda x, lo: f"clip(shr({x}, {p['shift']}), {lo}, {hi})")


def dequant(p: dict) -> tuple[list[Proto], Slots]:
    """Z = X * scale: integers (an accumulator) to real values (a float dtype)."""
    return _conversion(p, lambda x, lo: f"{x} * {float(p['scale'])!r}")


def quant(p: dict) -> tuple[list[Proto], Slots]:
    """Z = clip(round(X * scale), lo, hi): real values to an integer type (half to even, saturating;
    `activation: relu` clips at 0)."""
    hi = int(np.iinfo(p["out_dtype"]).max)
    return _conversion(p, lambda x, lo: f"clip(round({x} * {float(p['scale'])!r}), {lo}, {hi})")


def gru_cell(p: dict) -> tuple[list[Proto], Slots]:
    """One GRU time step as five layers (gate order r, z, n as in cuDNN and DeepBench):

        gx = x·Wx, gh = h·Wh                      (GEMMs, [B, 3H] in acc_dtype)
        rz = sigmoid(gx[:, :2H] + gh[:, :2H])     (r and z)
        n  = tanh(gx[:, 2H:] + r * gh[:, 2H:])
        h' = n + z * (h - n)                     (= (1 - z) * n + z * h)
    """
    B, H, X, dt, acc, fl = p["batch"], p["hidden"], p["input"] or p["hidden"], p["dtype"], p["acc_dtype"], \
        p["float_dtype"]
    gate = {"b": B, "j": 3 * H}
    protos = [
        Proto("GX[b,j] += X[b,i] * WX[i,j]", {**gate, "i": X}, {"X": dt, "WX": dt, "GX": acc}, suffix=".gx"),
        Proto("GH[b,j] += HP[b,i] * WH[i,j]", {**gate, "i": H}, {"HP": dt, "WH": dt, "GH": acc}, suffix=".gh"),
        Proto("RZ[b,j] = sigmoid(GX[b,j] + GH[b,j])", {"b": B, "j": 2 * H},
              {"GX": acc, "GH": acc, "RZ": fl}, {"GX": (B, 3 * H), "GH": (B, 3 * H)}, ".rz",
              {"GX": ".gx", "GH": ".gh"}),
        Proto(f"N[b,j] = tanh(GX[b,j+{2 * H}] + RZ[b,j] * GH[b,j+{2 * H}])", {"b": B, "j": H},
              {"GX": acc, "RZ": fl, "GH": acc, "N": fl},
              {"GX": (B, 3 * H), "GH": (B, 3 * H), "RZ": (B, 2 * H)}, ".n",
              {"GX": ".gx", "RZ": ".rz", "GH": ".gh"}),
        Proto(f"HN[b,j] = N[b,j] + RZ[b,j+{H}] * (HP[b,j] - N[b,j])", {"b": B, "j": H},
              {"N": fl, "RZ": fl, "HP": dt, "HN": fl}, {"RZ": (B, 2 * H)}, "",
              {"N": ".n", "RZ": ".rz"}),
    ]
    return protos, {"x": ((".gx", "X"),), "h": ((".gh", "HP"), ("", "HP"))}


def softmax(p: dict) -> tuple[list[Proto], Slots]:
    """Softmax over the last axis of an [M, N] input, as four layers:

        max: M[m] max= X[m,n]                      (in the input dtype)
        exp: E[m,n] = exp((X[m,n] - M[m]) * scale)  (float)
        sum: S[m] += E[m,n]                        (float)
             Z[m,n] = E[m,n] / S[m]                (float: the probabilities)

    `scale` is the real value of one input unit (the input's quantisation step): exp() of raw int8
    or int32 logits would saturate, so the differences are scaled first (for float inputs, 1.0).
    """
    if not p["scale"] > 0:
        raise TemplateError("expected a scale > 0", "scale")
    dt, fl, scale = p["dtype"], p["float_dtype"], float(p["scale"])
    if not fl.startswith("float"):
        raise TemplateError("expected a floating-point dtype", "float_dtype")
    dims = {"m": p["M"], "n": p["N"]}
    protos = [
        Proto("M[m] max= X[m,n]", dims, {"X": dt, "M": dt}, suffix=".max"),
        Proto(f"E[m,n] = exp((X[m,n] - M[m]) * {scale!r})", dims, {"X": dt, "M": dt, "E": fl}, suffix=".exp",
              internal={"M": ".max"}),
        Proto("S[m] += E[m,n]", dims, {"E": fl, "S": fl}, suffix=".sum", internal={"E": ".exp"}),
        Proto("Z[m,n] = E[m,n] / S[m]", dims, {"E": fl, "S": fl, "Z": fl}, internal={"E": ".exp", "S": ".sum"}),
    ]
    return protos, {"X": ((".max", "X"), (".exp", "X"))}


def lrn(p: dict) -> tuple[list[Proto], Slots]:
    """Local response normalisation across channels (ONNX LRN) of an NCHW input, as layers:

        sq:  Q[n,c,h,w] = X[n,c,h,w] * X[n,c,h,w]               (acc_dtype; a float input stays float)
        sum: S[n,c,h,w] += Q[n,c+r-(size-1)//2,h,w]  over r < size (channels outside read 0)
        den: D[n,c,h,w] = pow(bias + alpha/size * S[n,c,h,w], beta)   (float)
        div: Z[n,c,h,w] = X[n,c,h,w] / D[n,c,h,w]                    (float)
             Y[n,c,h,w] = clip(round(Z[n,c,h,w] * q), -128, 127)     (int8; integer inputs only)

    For an integer input the result is requantised to int8 by the last layer; since bias >= 1 makes
    D >= 1, |Z| <= |X| and q = 1 keeps the input's scale. A float input ends at `div` (the result).
    """
    shape = p["shape"]
    if len(shape) != 4:
        raise TemplateError(f"expected an NCHW shape of 4 extents, got {len(shape)}", "shape")
    for name in ("alpha", "beta"):
        if not p[name] > 0:
            raise TemplateError(f"expected {name} > 0", name)
    dt, fl, size = p["dtype"], p["float_dtype"], p["size"]
    if not fl.startswith("float"):
        raise TemplateError("expected a floating-point dtype", "float_dtype")
    acc = dt if dt.startswith("float") else p["acc_dtype"]
    dims = dict(zip("nchw", shape, strict=True))
    lo, coeff = (size - 1) // 2, float(p["alpha"]) / size
    quantise = not dt.startswith("float")
    div = ".div" if quantise else ""
    protos = [
        Proto("Q[n,c,h,w] = X[n,c,h,w] * X[n,c,h,w]", dims, {"X": dt, "Q": acc}, suffix=".sq"),
        Proto(f"S[n,c,h,w] += Q[n,{affine((1, 'c'), (1, 'r'), const=-lo)},h,w]", {**dims, "r": size},
              {"Q": acc, "S": acc}, {"Q": tuple(shape)}, ".sum", {"Q": ".sq"}),
        Proto(f"D[n,c,h,w] = pow({float(p['bias'])!r} + {coeff!r} * S[n,c,h,w], {float(p['beta'])!r})", dims,
              {"S": acc, "D": fl}, suffix=".den", internal={"S": ".sum"}),
        Proto("Z[n,c,h,w] = X[n,c,h,w] / D[n,c,h,w]", dims, {"X": dt, "D": fl, "Z": fl}, suffix=div,
              internal={"D": ".den"}),
    ]
    if quantise:
        protos.append(Proto(f"Y[n,c,h,w] = clip(round(Z[n,c,h,w] * {p['q']}), -128, 127)", dims,
                            {"Z": fl, "Y": "int8"}, internal={"Z": div}))
    return protos, {"X": ((".sq", "X"), (div, "X"))}


_MAC = {"dtype": Param("dtype", "int8", "input and weight dtype"),
        "acc_dtype": Param("dtype", "int32", "accumulator (output) dtype"),
        "activation": Param("act", "none", "epilogue activation, applied where the accumulator is "
                                           "requantised for the next layer (none or relu)")}
_ELEM = {"shape": Param("shape", doc="tensor shape, e.g. [1, 64, 56, 56]"),
         "dtype": Param("dtype", "int8", "dtype of inputs and output")}

TEMPLATES: dict[str, Template] = {t.name: t for t in [
    Template("conv2d", "2-D convolution, NCHW / KCRS, with stride, padding, dilation and groups", {
        **_window_params(K=Param("int", doc="output channels"),
                         dilation=Param("pair", 1, "dilation, or [height, width]"),
                         groups=Param("int", 1, "channel groups (C and K divisible by it)")),
        **_MAC}, conv2d),
    Template("depthwise_conv2d", "depthwise 2-D convolution: one RxS filter per channel", {
        **_window_params(dilation=Param("pair", 1, "dilation, or [height, width]")), **_MAC},
        depthwise_conv2d),
    Template("gemm", "C[M,N] += A[M,K] * B[K,N] (B is the weight)", {
        "M": Param("int"), "N": Param("int"), "K": Param("int"),
        "transpose_a": Param("bool", False, "A is stored [K, M]"),
        "transpose_b": Param("bool", False, "B is stored [N, K]"), **_MAC}, gemm),
    Template("batched_matmul", "C[b,M,N] += A[b,M,K] * B[b,K,N], both operands activations", {
        "B": Param("int", doc="batch (e.g. attention heads)"), "M": Param("int"), "N": Param("int"),
        "K": Param("int"), "transpose_b": Param("bool", False, "B is stored [b, N, K] (Q·K^T)"), **_MAC},
        batched_matmul),
    Template("max_pool2d", "2-D max pooling (padding reads the dtype's minimum)", {
        **_window_params(stride=Param("pair", 0, "stride (default: the window)")),
        "dtype": Param("dtype", "int8")}, max_pool2d),
    Template("avg_pool2d", "2-D average pooling (integer dtypes: the window sum, see docs)", {
        **_window_params(stride=Param("pair", 0, "stride (default: the window)")),
        "dtype": Param("dtype", "int8"), "acc_dtype": Param("dtype", "int32")}, avg_pool2d),
    *(Template(fn, f"element-wise {fn}", {**_ELEM, "dtype": Param("dtype", dt, "dtype of input and output")},
               _unary(fn)) for fn, dt in (("relu", "int8"), ("sigmoid", "float32"), ("tanh", "float32"))),
    *(Template(name, f"element-wise {name}", {
        **_ELEM, "activation": Param("act", "none", "fused activation: none or relu")}, _binary(op))
      for name, op in (("add", "+"), ("mul", "*"))),
    Template("requant", "requantisation: Z = clip(shr(X, shift), lo, hi) (rounding shift, saturation)", {
        "shape": Param("shape", doc="tensor shape"), "shift": Param("nat", 0, "right shift (rounding half up)"),
        "dtype": Param("dtype", "int32", "input (accumulator) dtype"),
        "out_dtype": Param("dtype", "int8", "output dtype (an integer type)"),
        "activation": Param("act", "none", "relu: clip at 0")}, requant),
    Template("dequant", "dequantisation: Z = X * scale (an integer tensor to a float one)", {
        "shape": Param("shape", doc="tensor shape"), "scale": Param("num", 1.0, "real value of one input unit"),
        "dtype": Param("dtype", "int32", "input dtype"), "out_dtype": Param("dtype", "float32", "output dtype")},
        dequant),
    Template("quant", "quantisation: Z = clip(round(X * scale), lo, hi) (a float tensor to an integer one)", {
        "shape": Param("shape", doc="tensor shape"), "scale": Param("num", 1.0, "output units per real unit"),
        "dtype": Param("dtype", "float32", "input dtype"), "out_dtype": Param("dtype", "int8", "output dtype"),
        "activation": Param("act", "none", "relu: clip at 0")}, quant),
    Template("gru_cell", "one GRU step: 2 GEMMs and 3 element-wise layers", {
        "batch": Param("int"), "hidden": Param("int"), "input": Param("int", 0, "input size (default hidden)"),
        "dtype": Param("dtype", "int8", "GEMM input dtype"), "acc_dtype": Param("dtype", "int32"),
        "float_dtype": Param("dtype", "float32", "dtype of the gate arithmetic")}, gru_cell),
    Template("softmax", "softmax over the last axis of [M, N]: 4 layers (max, exp, sum, divide)", {
        "M": Param("int", doc="rows"), "N": Param("int", doc="the normalised axis"),
        "scale": Param("num", 0.0625, "real value of one input unit (1/16: int8 logits span +-8)"),
        "dtype": Param("dtype", "int8", "input dtype"), "float_dtype": Param("dtype", "float32")}, softmax),
    Template("lrn", "local response normalisation across channels (ONNX LRN): 4-5 layers", {
        "shape": Param("shape", doc="NCHW shape"), "size": Param("int", doc="channels in a window"),
        "alpha": Param("num", 0.0001), "beta": Param("num", 0.75), "bias": Param("num", 1.0),
        "dtype": Param("dtype", "int8", "input dtype (integer: the result is requantised to int8)"),
        "acc_dtype": Param("dtype", "int32", "dtype of the squares and their sums"),
        "float_dtype": Param("dtype", "float32"), "q": Param("int", 1, "integer scale of the int8 result")},
        lrn),
]}


def normalize(kind: str, value: object) -> object:
    """Check one parameter value against its kind; raise TemplateError(expected ...) if it does not fit."""
    def is_int(v):
        return isinstance(v, int) and not isinstance(v, bool)

    if kind == "int":
        if is_int(value) and value >= 1:
            return value
        raise TemplateError("expected a positive integer")
    if kind == "nat":
        if is_int(value) and value >= 0:
            return value
        raise TemplateError("expected an integer >= 0")
    if kind == "pair":
        if is_int(value) and value >= 1:
            return (value, value)
        if isinstance(value, list) and len(value) == 2 and all(is_int(v) and v >= 1 for v in value):
            return tuple(value)
        raise TemplateError("expected a positive integer or a list [height, width] of them")
    if kind == "pads":
        if is_int(value) and value >= 0:
            return (value,) * 4
        if isinstance(value, list) and all(is_int(v) and v >= 0 for v in value) and len(value) in (2, 4):
            return tuple(value) * 2 if len(value) == 2 else tuple(value)
        raise TemplateError("expected an integer >= 0, [h, w] or [top, left, bottom, right]")
    if kind == "shape":
        if isinstance(value, list) and value and all(is_int(v) and v >= 1 for v in value):
            return tuple(value)
        raise TemplateError("expected a non-empty list of positive integers")
    if kind == "dtype":
        if isinstance(value, str) and value in DTYPES:
            return value
        raise TemplateError(f"expected a dtype ({', '.join(DTYPES)})")
    if kind == "bool":
        if isinstance(value, bool):
            return value
        raise TemplateError("expected true or false")
    if kind == "num":
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return value
        raise TemplateError("expected a number")
    if kind == "act":
        if value in ("none", "relu"):
            return value
        raise TemplateError("expected none or relu")
    raise AssertionError(kind)


def expand(op: str, params: dict[str, object]) -> tuple[list[Proto], Slots]:
    """The protos and activation slots of template `op` with `params` (plain values)."""
    template = TEMPLATES[op]
    values = {}
    for name, spec in template.params.items():
        if name in params:
            try:
                values[name] = normalize(spec.kind, params[name])
            except TemplateError as exc:
                raise TemplateError(str(exc), name) from None
        elif spec.default is None:
            raise TemplateError(f"missing required parameter '{name}' ({spec.doc or spec.kind})")
        else:
            values[name] = spec.default if spec.kind != "pair" or not spec.default else (spec.default,) * 2
            if spec.kind == "pads":
                values[name] = (spec.default,) * 4
    protos, slots = template.build(values)
    for proto in protos:  # keep dims bounded: a product beyond 2**62 would overflow NumPy's int64
        if math.prod(proto.dims.values()) > 2**62:
            raise TemplateError("the layer's iteration space exceeds 2**62 points")
    return protos, slots
