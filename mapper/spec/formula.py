"""Cycle formulas of capabilities: a safe integer language over the capability's dims.

    >>> parse_arith("cdiv(m, 32) + 4").evaluate({"m": 100})
    8
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from mapper.spec.tokens import NotationError, Parser

ARITH_FUNCTIONS = {"cdiv": 2, "max": None, "min": None}


@dataclass(frozen=True)
class Arith:
    """An integer formula over names: +, -, *, // (floor), cdiv(a, b) (ceiling), max(...), min(...).

    `evaluate` works on Python ints and, element-wise, on NumPy integer arrays.
    """

    op: str  # 'num', 'name', '+', '-', '*', '//', 'neg', 'cdiv', 'max', 'min'
    args: tuple = ()
    value: int | str | None = None
    text: str = ""

    @cached_property
    def names(self) -> frozenset[str]:
        if self.op == "name":
            return frozenset([self.value])
        return frozenset().union(*(a.names for a in self.args))

    def evaluate(self, env: dict):
        op = self.op
        if op == "num":
            return self.value
        if op == "name":
            return env[self.value]
        vals = [a.evaluate(env) for a in self.args]
        if op == "+":
            return vals[0] + vals[1]
        if op == "-":
            return vals[0] - vals[1]
        if op == "*":
            return vals[0] * vals[1]
        if op == "neg":
            return -vals[0]
        if op in ("//", "cdiv") and np.any(np.asarray(vals[1]) == 0):
            raise ZeroDivisionError(f"division by zero in '{self.text}'")
        if op == "//":
            return vals[0] // vals[1]
        if op == "cdiv":
            return -(-vals[0] // vals[1])
        pick = (max if op == "max" else min) if all(isinstance(v, int) for v in vals) else None
        if pick:
            return pick(vals)
        return (np.maximum if op == "max" else np.minimum).reduce(np.broadcast_arrays(*vals))

    def __str__(self) -> str:
        return self.text


def parse_arith(text: str | int) -> Arith:
    """Parse an integer formula; an int is a constant formula."""
    if isinstance(text, int) and not isinstance(text, bool):
        return Arith("num", value=text, text=str(text))
    if not isinstance(text, str):
        raise NotationError("expected a formula string or an integer", str(text), 1)
    p = Parser(text)
    e = _arith_sum(p)
    if p.tok.kind != "end":
        raise p.fail("an operator (+ - * //) or the end of the formula")
    return _with_text(e, text.strip())


def _with_text(e: Arith, text: str) -> Arith:
    return Arith(e.op, e.args, e.value, text)


def _arith_sum(p: Parser) -> Arith:
    e = _arith_product(p)
    while p.tok.kind == "op" and p.tok.text in ("+", "-"):
        op = p.tok.text
        p.i += 1
        e = Arith(op, (e, _arith_product(p)))
    return e


def _arith_product(p: Parser) -> Arith:
    e = _arith_unary(p)
    while p.tok.kind == "op" and p.tok.text in ("*", "//", "/"):
        if p.tok.text == "/":
            raise NotationError("'/' is not integer division: use '//' (floor) or cdiv(a, b) (ceiling)",
                                p.text, p.tok.column)
        op = p.tok.text
        p.i += 1
        e = Arith(op, (e, _arith_unary(p)))
    return e


def _arith_unary(p: Parser) -> Arith:
    if p.accept("-"):
        return Arith("neg", (_arith_unary(p),))
    tok = p.tok
    if tok.kind == "number":
        return Arith("num", value=p.integer("an integer"))
    if p.accept("("):
        e = _arith_sum(p)
        p.expect(")", "')'")
        return e
    if tok.kind != "name":
        raise p.fail("a number, a name, a function call or '('")
    p.i += 1
    if not p.accept("("):
        return Arith("name", value=tok.text)
    if tok.text not in ARITH_FUNCTIONS:
        raise NotationError(f"unknown function '{tok.text}' (known: cdiv, max, min)", p.text, tok.column)
    args = [_arith_sum(p)]
    while p.accept(","):
        args.append(_arith_sum(p))
    p.expect(")", "',' or ')'")
    arity = ARITH_FUNCTIONS[tok.text]
    if (arity and len(args) != arity) or len(args) < 2:
        raise NotationError(f"{tok.text}() takes {arity or 'at least 2'} arguments", p.text, tok.column)
    return Arith(tok.text, tuple(args))
