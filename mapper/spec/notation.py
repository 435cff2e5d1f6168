"""One notation for layers and hardware capabilities: tensor expressions with affine indices.

    O[n,k,p,q] += I[n,c,2*p+r-3,2*q+s-3] * W[k,c,r,s]     # multiply-accumulate (a stride-2 conv)
    O[n,c,p,q] max= I[n,c,2*p+r,2*q+s]                   # max-reduction (pooling)
    Z[i] = relu(X[i] + Y[i])                             # element-wise

The parser is a small recursive-descent one (never `eval`; tokens in `mapper.spec.tokens`). Capability
cycle formulas (`m + 64`, `cdiv(m, 32) * 4`) are the other language, in `mapper.spec.formula`.

    >>> e = parse_tensor_expr("C[m,n] += A[m,k] * B[k,n]")
    >>> e.dims, e.reduction_dims, e.is_mac
    (('m', 'n', 'k'), ('k',), True)

Semantics (shared by the reference and the simulator): every computation happens in the output
tensor's dtype, except that an integer output whose inputs are wider (a requantisation reads int32
and writes int8) computes in the inputs' common type and then converts; `+=` sums over the
reduction dims (the dims absent from the output), `max=` takes the maximum, `=` is element-wise
and has no reduction dims. An index outside a tensor's shape reads the identity of the update (0 for
`+=` and `=`, the dtype's minimum for `max=`): that is padding.
Functions: relu, sigmoid, tanh, exp, neg, abs, round (half to even), max, min, clip(x, lo, hi),
shr(x, n) (arithmetic shift right by a constant n, rounding half up: (x + 2**(n-1)) >> n), pow(x, c);
`/` divides (floating-point outputs only).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from mapper.spec.tokens import NotationError, Parser, Token

# --------------------------------------------------------------------------------------------------
# Tensor expressions

@dataclass(frozen=True)
class Affine:
    """An affine index: sum(coefficient * dim) + constant. Terms keep their first-appearance order."""

    terms: tuple[tuple[str, int], ...]
    const: int = 0

    @property
    def dims(self) -> tuple[str, ...]:
        return tuple(d for d, _ in self.terms)

    def coeff(self, dim: str) -> int:
        return dict(self.terms).get(dim, 0)

    @property
    def single_dim(self) -> str | None:
        """The dim when the index is exactly one dim (coefficient 1, no constant)."""
        return self.terms[0][0] if len(self.terms) == 1 and self.terms[0][1] == 1 and not self.const else None

    def bounds(self, extents: dict[str, int]) -> tuple[int, int]:
        """Smallest and largest value of the index over the dims' ranges [0, extent)."""
        lo = hi = self.const
        for d, c in self.terms:
            span = c * (extents[d] - 1)
            lo, hi = lo + min(0, span), hi + max(0, span)
        return lo, hi

    def __str__(self) -> str:
        parts = []
        for d, c in self.terms:
            term = d if abs(c) == 1 else f"{abs(c)}*{d}"
            parts.append(("-" if c < 0 else "+") + term)
        if self.const or not parts:
            parts.append(("-" if self.const < 0 else "+") + str(abs(self.const)))
        text = "".join(parts)
        return text[1:] if text.startswith("+") else text


@dataclass(frozen=True)
class Access:
    tensor: str
    indices: tuple[Affine, ...]

    @property
    def dims(self) -> tuple[str, ...]:
        return _unique(d for idx in self.indices for d in idx.dims)

    def __str__(self) -> str:
        return f"{self.tensor}[{','.join(map(str, self.indices))}]"


@dataclass(frozen=True)
class Const:
    value: int | float

    def __str__(self) -> str:
        return str(self.value)


@dataclass(frozen=True)
class Imm:
    """An instruction immediate of a capability (a bare name such as `s` in `shr(X[i], s)`): it matches
    any constant of a layer. Layer expressions have none."""

    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Call:
    fn: str
    args: tuple[Expr, ...]

    def __str__(self) -> str:
        return f"{self.fn}({', '.join(map(str, self.args))})"


@dataclass(frozen=True)
class BinOp:
    op: str  # '+', '-', '*', '/'
    lhs: Expr
    rhs: Expr

    def __str__(self) -> str:
        return f"({self.lhs} {self.op} {self.rhs})"


Expr = Access | Const | Imm | Call | BinOp

UNARY_FUNCTIONS = ("relu", "sigmoid", "tanh", "exp", "neg", "abs", "round")
BINARY_FUNCTIONS = ("max", "min", "shr", "pow")
TRANSCENDENTAL = frozenset({"sigmoid", "tanh", "exp", "pow"})
# Functions whose second argument must be a constant (or, in a capability, an immediate).
CONSTANT_ARGUMENTS = {"clip": (1, 2), "shr": (1,), "pow": (1,)}
UPDATES = ("+=", "max=", "=")


@dataclass(frozen=True)
class TensorExpr:
    """`output update rhs`, e.g. O[n,k,p,q] += I[...] * W[...]. Build it with `parse_tensor_expr`."""

    output: Access
    update: str  # one of UPDATES
    rhs: Expr
    text: str

    def __hash__(self) -> int:  # the fields' hash, worked out once: expressions key many caches
        return self._hash

    @cached_property
    def _hash(self) -> int:
        return hash((self.output, self.update, self.rhs, self.text))

    @cached_property
    def accesses(self) -> tuple[Access, ...]:
        """Every input access in order of appearance (a tensor may be read at several offsets)."""
        return tuple(_walk_accesses(self.rhs))

    @cached_property
    def inputs(self) -> tuple[str, ...]:
        """Input tensor names, in order of first appearance."""
        return _unique(a.tensor for a in self.accesses)

    @property
    def tensors(self) -> tuple[str, ...]:
        return (*self.inputs, self.output.tensor) if self.output.tensor not in self.inputs else self.inputs

    @cached_property
    def dims(self) -> tuple[str, ...]:
        """Output dims first (in output order), then the others in order of first appearance."""
        return _unique([*self.output.dims, *(d for a in self.accesses for d in a.dims)])

    @property
    def reduction_dims(self) -> tuple[str, ...]:
        return tuple(d for d in self.dims if d not in self.output.dims)

    @cached_property
    def is_mac(self) -> bool:
        """A multiply-accumulate: `+=` with a product of exactly two accesses."""
        r = self.rhs
        return (self.update == "+=" and isinstance(r, BinOp) and r.op == "*"
                and isinstance(r.lhs, Access) and isinstance(r.rhs, Access))

    @property
    def kind(self) -> str:
        """'multiply-accumulate', 'sum-reduction', 'max-reduction' or 'element-wise'."""
        if self.is_mac:
            return "multiply-accumulate"
        return {"+=": "sum-reduction", "max=": "max-reduction", "=": "element-wise"}[self.update]

    @cached_property
    def functions(self) -> frozenset[str]:
        """Element operations used on the right-hand side: function names and '+', '-', '*', '/'."""
        return frozenset(_walk_functions(self.rhs))

    def access_of(self, tensor: str) -> Access:
        if tensor == self.output.tensor:
            return self.output
        return next(a for a in self.accesses if a.tensor == tensor)

    def __str__(self) -> str:
        return self.text


def _unique(items) -> tuple:
    return tuple(dict.fromkeys(items))


def walk(e: Expr):
    """Every node of an element expression, depth first, left to right."""
    yield e
    for child in e.args if isinstance(e, Call) else (e.lhs, e.rhs) if isinstance(e, BinOp) else ():
        yield from walk(child)


def _walk_accesses(e: Expr):
    return (node for node in walk(e) if isinstance(node, Access))


def _walk_functions(e: Expr):
    for node in walk(e):
        if isinstance(node, Call):
            yield node.fn
        elif isinstance(node, BinOp):
            yield node.op


def parse_tensor_expr(text: str, immediates: bool = False) -> TensorExpr:
    """Parse `OUT[dims] (+=|max=|=) rhs`; raise `NotationError` naming what was expected and where.

    With `immediates` (capability expressions), a bare name is an instruction immediate (`Imm`).

    >>> str(parse_tensor_expr("Z[i] = clip(shr(X[i], s), lo, hi)", immediates=True).rhs)
    'clip(shr(X[i], s), lo, hi)'
    """
    if not isinstance(text, str):
        raise NotationError("expected an expression string", str(text), 1)
    p = Parser(text)
    p.immediates = immediates
    out_tok = p.tok
    output = _parse_access(p, p.name("an output tensor name"))
    if p.tok.kind == "op" and p.tok.text in ("+=", "="):
        update = p.tok.text
        p.i += 1
    elif p.tok.text == "max" and p.peek().text == "=":
        update, p.i = "max=", p.i + 2
    else:
        raise p.fail("'+=', 'max=' or '='")
    rhs = _parse_sum(p)
    if p.tok.kind != "end":
        raise p.fail("an operator or the end of the expression")
    expr = TensorExpr(output, update, rhs, text.strip())
    _check_tensor_expr(expr, p, out_tok)
    return expr


def _check_tensor_expr(e: TensorExpr, p: Parser, out_tok: Token) -> None:
    seen = set()
    for idx in e.output.indices:
        d = idx.single_dim
        if d is None:
            raise NotationError(f"output index '{idx}' must be a single dim", p.text, out_tok.column)
        if d in seen:
            raise NotationError(f"output dim '{d}' repeats", p.text, out_tok.column)
        seen.add(d)
    if not e.accesses:
        raise NotationError("the right-hand side reads no tensor", p.text, out_tok.column)
    if e.output.tensor in e.inputs:
        raise NotationError(f"output tensor '{e.output.tensor}' is also read", p.text, out_tok.column)
    ranks: dict[str, int] = {}
    for a in e.accesses:
        if ranks.setdefault(a.tensor, len(a.indices)) != len(a.indices):
            raise NotationError(f"tensor '{a.tensor}' is indexed with different ranks", p.text, 1)
    if e.update == "=" and e.reduction_dims:
        dims = ", ".join(e.reduction_dims)
        raise NotationError(f"'=' cannot reduce over {dims}: use '+=' or 'max='", p.text, out_tok.column)


def _parse_access(p: Parser, name: Token) -> Access:
    p.expect("[", f"'[' after tensor '{name.text}'")
    indices = [_parse_affine(p)]
    while p.accept(","):
        indices.append(_parse_affine(p))
    p.expect("]", "',' or ']'")
    return Access(name.text, tuple(indices))


def _parse_affine(p: Parser) -> Affine:
    coeffs: dict[str, int] = {}
    const = 0
    sign = -1 if p.accept("-") else 1
    while True:
        c, dim = _parse_affine_term(p)
        if dim is None:
            const += sign * c
        else:
            coeffs[dim] = coeffs.get(dim, 0) + sign * c
        if p.accept("+"):
            sign = 1
        elif p.accept("-"):
            sign = -1
        else:
            break
    return Affine(tuple((d, c) for d, c in coeffs.items() if c), const)


def _parse_affine_term(p: Parser) -> tuple[int, str | None]:
    """INT, NAME, or a product of them with at most one NAME: (coefficient, dim or None)."""
    coeff, dim = 1, None
    while True:
        tok = p.tok
        if tok.kind == "number":
            coeff *= p.integer("an integer index coefficient")
        elif tok.kind == "name":
            if dim is not None:
                raise NotationError("an index must be affine (dim times dim)", p.text, tok.column)
            dim = tok.text
            p.i += 1
        else:
            raise p.fail("an index (a dim, an integer or a product of them)")
        if not p.accept("*"):
            return coeff, dim


def _parse_sum(p: Parser) -> Expr:
    e = _parse_product(p)
    while p.tok.kind == "op" and p.tok.text in "+-":
        op = p.tok.text
        p.i += 1
        e = BinOp(op, e, _parse_product(p))
    return e


def _parse_product(p: Parser) -> Expr:
    e = _parse_unary(p)
    while p.tok.kind == "op" and p.tok.text in ("*", "/"):
        op = p.tok.text
        p.i += 1
        e = BinOp(op, e, _parse_unary(p))
    return e


def _parse_unary(p: Parser) -> Expr:
    if p.accept("-"):
        operand = _parse_unary(p)
        return Const(-operand.value) if isinstance(operand, Const) else Call("neg", (operand,))
    return _parse_primary(p)


def _parse_primary(p: Parser) -> Expr:
    tok = p.tok
    if tok.kind == "number":
        p.i += 1
        is_float = any(ch in tok.text for ch in ".eE")
        return Const(float(tok.text) if is_float else int(tok.text))
    if p.accept("("):
        e = _parse_sum(p)
        p.expect(")", "')'")
        return e
    if tok.kind != "name":
        raise p.fail("a tensor access, a number, a function call or '('")
    p.i += 1
    if p.tok.text == "[":
        return _parse_access(p, tok)
    if p.tok.text != "(":
        if p.immediates:
            return Imm(tok.text)
        raise p.fail(f"'[' (tensor access) or '(' (function call) after '{tok.text}'")
    fn = tok.text
    if fn not in (*UNARY_FUNCTIONS, *BINARY_FUNCTIONS, "clip"):
        known = ", ".join((*UNARY_FUNCTIONS, *BINARY_FUNCTIONS, "clip"))
        raise NotationError(f"unknown function '{fn}' (known: {known})", p.text, tok.column)
    p.expect("(")
    args = [_parse_sum(p)]
    while p.accept(","):
        args.append(_parse_sum(p))
    p.expect(")", "',' or ')'")
    arity = 1 if fn in UNARY_FUNCTIONS else (2 if fn in BINARY_FUNCTIONS else 3)
    if len(args) != arity:
        raise NotationError(f"{fn}() takes {arity} argument(s), got {len(args)}", p.text, tok.column)
    for k in CONSTANT_ARGUMENTS.get(fn, ()):
        if not isinstance(args[k], Const | Imm):
            what = "clip(x, lo, hi) needs constant bounds" if fn == "clip" else \
                f"argument {k + 1} of {fn}() must be a constant"
            raise NotationError(what, p.text, tok.column)
    if fn == "shr" and isinstance(args[1], Const) and not (isinstance(args[1].value, int) and args[1].value >= 0):
        raise NotationError("shr(x, n) shifts by an integer n >= 0", p.text, tok.column)
    return Call(fn, tuple(args))
