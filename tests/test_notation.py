"""The tensor-expression parser and the cycle-formula language."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapper.spec.formula import parse_arith
from mapper.spec.notation import Affine, NotationError, parse_tensor_expr

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


# --------------------------------------------------------------------------------------------------
# Requantisation and float arithmetic: shr, round, pow, '/', immediates, the compute dtype

def test_shr_rounds_half_up_like_integer_arithmetic() -> None:
    import numpy as np

    from sim.reference import evaluate

    rng = np.random.default_rng(1)
    x = rng.integers(-2**30, 2**30, size=500).astype(np.int32)
    for n in (0, 1, 5, 12):
        e = parse_tensor_expr(f"Z[i] = shr(X[i], {n})")
        got = evaluate(e, {"i": 500}, {"X": x}, np.int32)
        want = [(int(v) + ((1 << n) >> 1)) >> n for v in x]  # Python ints: floor shift, no overflow
        assert got.tolist() == want


def test_requantisation_computes_in_the_wide_type_then_saturates() -> None:
    import numpy as np

    from sim.reference import evaluate

    e = parse_tensor_expr("Z[i] = clip(shr(X[i], 4), -128, 127)")
    x = np.array([-100000, -2056, -8, 7, 8, 2040, 2041, 100000], np.int32)
    got = evaluate(e, {"i": 8}, {"X": x}, np.int8)
    assert got.dtype == np.int8
    assert got.tolist() == [-128, -128, 0, 0, 1, 127, 127, 127]  # computed in int8 it would wrap first


def test_float_division_pow_and_round() -> None:
    import numpy as np

    from sim.reference import evaluate

    e = parse_tensor_expr("Z[m,n] = pow(E[m,n], 2) / S[m]")
    a = np.array([[1.0, 2.0, 3.0]], np.float32)
    got = evaluate(e, {"m": 1, "n": 3}, {"E": a, "S": np.array([2.0], np.float32)}, np.float32)
    assert np.allclose(got, a ** 2 / 2)
    r = parse_tensor_expr("Z[i] = clip(round(X[i] * 10.0), -128, 127)")
    got = evaluate(r, {"i": 3}, {"X": np.array([0.25, -0.35, 50.0], np.float32)}, np.int8)
    assert got.tolist() == [2, -4, 127]  # rint: half to even


@pytest.mark.parametrize("text, problem", [
    ("Z[i] = X[i] / Y[i]", "'/' needs a floating-point output"),
    ("Z[i] = pow(X[i], 2)", "pow() needs a floating-point output"),
])
def test_float_only_operations_need_a_float_output(text, problem) -> None:
    from mapper.spec.dtypes import expr_dtype_problem

    assert problem in expr_dtype_problem(parse_tensor_expr(text), "int32")
    assert expr_dtype_problem(parse_tensor_expr("Z[i] = shr(X[i], 2)"), "float32") == \
        "shr() needs an integer output dtype"


def test_immediates_only_in_capabilities_and_they_match_any_constant() -> None:
    from mapper.mapping.binding import bind
    from mapper.spec.acg import load_acg
    from mapper.spec.workload import template_layer

    with pytest.raises(NotationError, match="after 's'"):
        parse_tensor_expr("Z[i] = shr(X[i], s)")
    cap = parse_tensor_expr("Z[i] = clip(shr(X[i], s), lo, hi)", immediates=True)
    assert str(cap.rhs) == "clip(shr(X[i], s), lo, hi)"
    for shift, act in ((3, "none"), (11, "relu")):
        layer = template_layer("requant", {"shape": [1, 64, 7, 7], "shift": shift, "activation": act})
        assert {b.capability for b in bind(layer, load_acg("genesys"))} == {"vrequant"}
    with pytest.raises(NotationError, match="shr"):
        parse_tensor_expr("Z[i] = shr(X[i], Y[i])")
