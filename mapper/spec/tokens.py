"""The tokenizer and parser state shared by the two small languages of the project: tensor
expressions (`mapper.spec.notation`) and cycle formulas (`mapper.spec.formula`). Never `eval`.

    >>> [t.text for t in tokenize("C[m,n] += A[m,k]")][:4]
    ['C', '[', 'm', ',']
"""

from __future__ import annotations

import re
from dataclasses import dataclass


class NotationError(ValueError):
    """A syntax or semantic error in an expression, with the 1-based column it was found at."""

    def __init__(self, message: str, text: str, column: int):
        self.message, self.text, self.column = message, text, column
        super().__init__(f"{message} at column {column} of '{text}'")


TOKEN_RE = re.compile(
    r"\s*(?:(?P<number>\d+\.\d*(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+|\d+)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>\+=|//|[-+*/=\[\](),]))"
)


@dataclass(frozen=True)
class Token:
    kind: str  # number, name, op, end
    text: str
    column: int


def tokenize(text: str) -> list[Token]:
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = TOKEN_RE.match(text, pos)
        if not m or m.end() == pos:
            col = pos + 1 + (len(text[pos:]) - len(text[pos:].lstrip()))
            raise NotationError(f"unexpected character {text[col - 1]!r}", text, col)
        kind = m.lastgroup
        tokens.append(Token(kind, m.group(kind), m.start(kind) + 1))
        pos = m.end()
    tokens.append(Token("end", "", len(text) + 1))
    return tokens


class Parser:
    def __init__(self, text: str):
        self.text, self.tokens, self.i = text, tokenize(text), 0
        self.immediates = False

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def peek(self, k: int = 1) -> Token:
        return self.tokens[min(self.i + k, len(self.tokens) - 1)]

    def fail(self, expected: str, tok: Token | None = None) -> NotationError:
        tok = tok or self.tok
        got = "the end" if tok.kind == "end" else f"'{tok.text}'"
        return NotationError(f"expected {expected}, got {got}", self.text, tok.column)

    def accept(self, text: str) -> bool:
        if self.tok.kind in ("op", "name") and self.tok.text == text:
            self.i += 1
            return True
        return False

    def expect(self, text: str, what: str | None = None) -> Token:
        tok = self.tok
        if not self.accept(text):
            raise self.fail(what or f"'{text}'")
        return tok

    def name(self, what: str) -> Token:
        tok = self.tok
        if tok.kind != "name":
            raise self.fail(what)
        self.i += 1
        return tok

    def integer(self, what: str) -> int:
        tok = self.tok
        if tok.kind != "number" or not tok.text.isdigit():
            raise self.fail(what)
        self.i += 1
        return int(tok.text)
