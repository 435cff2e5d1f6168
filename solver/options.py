"""Typed strategy options: each strategy declares a frozen dataclass whose fields are made with `option`
(a default, and a range or the allowed choices); `parse_options` turns user text (the CLI's
`--option steps=5000`) or YAML values into an instance, or raises `OptionError` naming the option and
the allowed ones.

    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Demo:
    ...     steps: int = option(100, 1, 1000, "proposals")
    ...     greedy: bool = option(False)
    >>> parse_options("demo", Demo, {"steps": "50", "greedy": "yes"})
    Demo(steps=50, greedy=True)
    >>> parse_options("demo", Demo, {"step": "5"})
    Traceback (most recent call last):
    ...
    solver.options.OptionError: strategy demo has no option 'step' (options: steps=1..1000, greedy=true|false)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

TRUE, FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


class OptionError(ValueError):
    """A strategy option the user got wrong: one line naming the option and the allowed ones."""


def option(default: Any, low: float | None = None, high: float | None = None, help: str = "",
           choices: tuple[str, ...] = ()) -> Any:
    """A dataclass field of a strategy's options: its default, its inclusive range (numbers) or its
    allowed values (strings), and a short help text."""
    return dataclasses.field(default=default, metadata={"low": low, "high": high, "help": help,
                                                        "choices": choices})


def describe(f: dataclasses.Field) -> str:
    """`name=range` of one option, as the error messages and `covenant map --help` show it."""
    meta, kind = f.metadata, _kind(f)
    if kind is bool:
        return f"{f.name}=true|false"
    if meta.get("choices"):
        return f"{f.name}={'|'.join(meta['choices'])}"
    low, high = meta.get("low"), meta.get("high")
    return f"{f.name}={'' if low is None else _fmt(low)}..{'' if high is None else _fmt(high)}"


def allowed(options_type: type) -> str:
    """The options, the strategy's own first (then those it shares with others, from a base class)."""
    own = vars(options_type).get("__annotations__", {})
    fields = sorted(dataclasses.fields(options_type), key=lambda f: f.name not in own)
    return ", ".join(describe(f) for f in fields) or "none"


def parse_options(strategy: str, options_type: type, given: Mapping[str, Any]) -> Any:
    """An `options_type` instance with `given` (text or typed values) over the defaults."""
    fields = {f.name: f for f in dataclasses.fields(options_type)}
    values = {}
    for name, raw in given.items():
        if name not in fields:
            raise OptionError(f"strategy {strategy} has no option '{name}' (options: {allowed(options_type)})")
        values[name] = coerce(strategy, fields[name], raw, options_type)
    return options_type(**values)


def coerce(strategy: str, f: dataclasses.Field, raw: Any, options_type: type) -> Any:
    """`raw` (a string from the command line or a YAML scalar) as the option's type, within range."""
    kind, meta = _kind(f), f.metadata
    value = _typed(kind, raw)
    ok = value is not None
    if ok and kind in (int, float):
        ok = math.isfinite(value) and (meta.get("low") is None or value >= meta["low"]) and \
            (meta.get("high") is None or value <= meta["high"])
    if ok and meta.get("choices"):
        ok = value in meta["choices"]
    if not ok:
        raise OptionError(f"option {f.name}={raw!s} of strategy {strategy}: expected {describe(f).split('=', 1)[1]} "
                          f"(options: {allowed(options_type)})")
    return value


def _typed(kind: type, raw: Any) -> Any:
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        return True if text in TRUE else False if text in FALSE else None
    if isinstance(raw, bool):
        return None
    if kind is int:
        if isinstance(raw, int):
            return raw
        text = str(raw).strip().replace("_", "")
        return int(text) if text.lstrip("+-").isdigit() and len(text) < 20 else None
    if kind is float:
        if isinstance(raw, int | float):
            return float(raw)
        try:
            return float(str(raw))
        except ValueError:
            return None
    return raw if isinstance(raw, str) and raw else None


def _kind(f: dataclasses.Field) -> type:
    """The option's Python type (annotations are strings under `from __future__ import annotations`)."""
    names = {"int": int, "float": float, "bool": bool, "str": str}
    return names.get(f.type, f.type) if isinstance(f.type, str) else f.type


def _fmt(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def non_default(options: Any) -> tuple[tuple[str, Any], ...]:
    """The options that differ from their defaults, by name: what a result's content key includes
    (so results computed before a strategy had options keep their keys)."""
    return tuple((f.name, getattr(options, f.name)) for f in dataclasses.fields(options)
                 if getattr(options, f.name) != f.default)
