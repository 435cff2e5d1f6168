"""The tensor-expression parser and the cycle-formula language."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapper.notation import Affine, NotationError, parse_arith, parse_tensor_expr

DIMS = ["m", "n", "k", "p", "q", "r", "s"]

affines = st.builds(
    lambda terms, const: Affine(tuple((d, c) for d, c in dict(terms).items() if c), const),
    st.lists(st.tuples(st.sampled_from(DIMS), st.integers(-4, 4)), max_size=3),
    st.integers(-9, 9),
)


@settings(max_examples=200, deadline=None)
@given(indices=st.lists(affines, min_size=1, max_size=4))
def test_affine_indices_round_trip(indices) -> None:
    text = f"O[z] += A[{','.join(map(str, indices))}] * B[z]"
    expr = parse_tensor_expr(text)
    assert expr.accesses[0].indices == tuple(indices)
    assert parse_tensor_expr(str(expr)).accesses == expr.accesses


def test_conv_expression_structure() -> None:
    e = parse_tensor_expr("O[n,k,p,q] += I[n,c,2*p+r-3,2*q+s-3] * W[k,c,r,s]")
    assert e.dims == ("n", "k", "p", "q", "c", "r", "s")
    assert e.reduction_dims == ("c", "r", "s")
    assert e.is_mac and e.inputs == ("I", "W") and e.update == "+="
    h = e.accesses[0].indices[2]
    assert (h.coeff("p"), h.coeff("r"), h.const) == (2, 1, -3)
    assert h.bounds({"p": 4, "r": 3}) == (-3, 5)


@pytest.mark.parametrize("text, update, functions", [
    ("O[n,c,p,q] max= I[n,c,2*p+r,2*q+s]", "max=", set()),
    ("Z[i] = relu(X[i] + Y[i])", "=", {"relu", "+"}),
    ("Z[i] = clip(X[i], 0, 6)", "=", {"clip"}),
    ("Z[i] = max(X[i], Y[i]) - min(X[i], 0)", "=", {"max", "min", "-"}),
    ("Z[i] = -sigmoid(X[i]) * 0.5 + tanh(exp(abs(neg(X[i]))))", "=",
     {"neg", "sigmoid", "*", "+", "tanh", "exp", "abs"}),
    ("N[b,j] = tanh(GX[b,j+1024] + RZ[b,j] * GH[b,j+1024])", "=", {"tanh", "+", "*"}),
])
def test_element_expressions(text: str, update: str, functions: set) -> None:
    e = parse_tensor_expr(text)
    assert e.update == update and set(e.functions) == functions and not e.is_mac


@pytest.mark.parametrize("text, expected, column", [
    ("O[n] += ", "expected a tensor access", 9),
    ("O[n,k += A[n]", "expected ',' or ']'", 7),
    ("O[n] += foo(A[n])", "unknown function 'foo'", 9),
    ("O[2*n] += A[n]", "must be a single dim", 1),
    ("O[n] = A[n,k]", "'=' cannot reduce over k", 1),
    ("O[n] += A[n*k]", "must be affine", 13),
    ("O[n] += A[n] $", "unexpected character '$'", 14),
    ("O[n] *= A[n]", "expected '+=', 'max=' or '='", 6),
    ("O[n] += A[n] * O[n]", "is also read", 1),
    ("O[n] += clip(A[n], B[n], 3)", "constant bounds", 9),
    ("O[n] += relu(A[n], 1)", "takes 1 argument", 9),
    ("O[n] += A[n] A[n]", "an operator or the end", 14),
])
def test_syntax_errors_name_the_column(text: str, expected: str, column: int) -> None:
    with pytest.raises(NotationError) as info:
        parse_tensor_expr(text)
    assert expected in str(info.value)
    assert info.value.column == column, str(info.value)


# --- cycle formulas: the parser's evaluation equals a direct evaluation of the generated tree ---------

def _formulas(depth: int = 3):
    leaf = st.one_of(st.integers(0, 50).map(lambda v: (str(v), lambda env, v=v: v)),
                     st.sampled_from(["m", "n", "k"]).map(lambda d: (d, lambda env, d=d: env[d])))
    if depth == 0:
        return leaf

    def combine(op, a, b):
        (ta, fa), (tb, fb) = a, b
        if op == "+":
            return f"({ta} + {tb})", lambda env: fa(env) + fb(env)
        if op == "-":
            return f"({ta} - {tb})", lambda env: fa(env) - fb(env)
        if op == "*":
            return f"({ta} * {tb})", lambda env: fa(env) * fb(env)
        if op == "//":
            return f"({ta} // max({tb}, 1))", lambda env: fa(env) // max(fb(env), 1)
        if op == "cdiv":
            return f"cdiv({ta}, max({tb}, 1))", lambda env: -(-fa(env) // max(fb(env), 1))
        if op == "max":
            return f"max({ta}, {tb})", lambda env: max(fa(env), fb(env))
        return f"min({ta}, {tb})", lambda env: min(fa(env), fb(env))

    sub = _formulas(depth - 1)
    return st.one_of(leaf, st.builds(combine, st.sampled_from(["+", "-", "*", "//", "cdiv", "max", "min"]),
                                     sub, sub))


@settings(max_examples=200, deadline=None)
@given(formula=_formulas(), env=st.fixed_dictionaries({d: st.integers(1, 300) for d in "mnk"}))
def test_formula_evaluation_matches_direct(formula, env) -> None:
    text, direct = formula
    assert parse_arith(text).evaluate(env) == direct(env)


def test_formula_vectorised_and_errors() -> None:
    import numpy as np

    f = parse_arith("cdiv(m, 32) * 4 + max(m, 8)")
    assert f.names == {"m"}
    assert f.evaluate({"m": np.array([1, 40])}).tolist() == [12, 48]
    assert parse_arith(64).evaluate({}) == 64
    for bad, words in [("m / 2", "use '//'"), ("m +", "got the end"), ("foo(m)", "unknown function"),
                       ("cdiv(m)", "takes 2 arguments"), ("m m", "or the end")]:
        with pytest.raises(NotationError, match=words.replace("(", r"\(")):
            parse_arith(bad)
    with pytest.raises(ZeroDivisionError):
        parse_arith("m // (n - n)").evaluate({"m": 1, "n": 2})
