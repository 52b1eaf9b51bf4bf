"""Every primitive of the op table: forward against the float reference, gradients to order 2.

The tests are parametrised over `autodiff.ops.PRIMITIVES`, so a primitive cannot be added to the
table without a domain entry here, and therefore without a gradient check.
"""

import math

import pytest

import autodiff
from autodiff import Value, gradcheck, ops

# name -> (reference float function, points inside the domain where it is smooth)
DOMAINS = {
    "add": (lambda x, y: x + y, [(0.3, -1.7), (2.0, 5.5)]),
    "mul": (lambda x, y: x * y, [(0.3, -1.7), (-2.0, -0.25)]),
    "neg": (lambda x: -x, [(0.3,), (-4.0,)]),
    "reciprocal": (lambda x: 1 / x, [(0.3,), (-2.5,)]),
    "pow": (math.pow, [(1.7, 2.0), (0.5, -1.5), (2.0, 0.3)]),  # x > 0: smooth in both
    "exp": (math.exp, [(0.3,), (-2.0,), (3.5,)]),
    "log": (math.log, [(0.3,), (7.0,)]),
    "sqrt": (math.sqrt, [(0.3,), (9.0,)]),
    "tanh": (math.tanh, [(0.3,), (-1.2,), (2.5,)]),
    "sigmoid": (lambda x: 1 / (1 + math.exp(-x)), [(0.3,), (-1.2,), (4.0,)]),
    "relu": (lambda x: max(x, 0.0), [(0.3,), (-1.2,)]),
    "abs": (math.fabs, [(0.3,), (-1.2,)]),
    "sin": (math.sin, [(0.3,), (2.0,)]),
    "cos": (math.cos, [(0.3,), (-2.0,)]),
    "sum": (lambda *xs: math.fsum(xs), [(0.3, -1.2, 2.0), (1.5,)]),
    "dot": (
        lambda *xs: math.fsum(w * x for w, x in zip(xs[: len(xs) // 2], xs[len(xs) // 2 :])),
        [(0.3, -1.2, 2.0, 0.5), (1.5, -2.0)],
    ),
    "logsumexp": (
        lambda *xs: math.log(math.fsum(math.exp(x) for x in xs)),
        [(0.3, -1.2, 2.0), (1.5,), (-0.5, 0.5)],
    ),
    "identity": (lambda x: x, [(0.3,)]),
    "div": (lambda x, y: x / y, [(0.3, -1.7), (2.0, 5.5), (-4.0, 0.25)]),
    "log1p": (math.log1p, [(0.3,), (-0.5,), (1e-3,)]),
    "softplus": (lambda x: math.log1p(math.exp(x)), [(0.3,), (-2.0,), (5.0,)]),
    "maximum": (max, [(0.3, -1.7), (-2.0, 1.5)]),
    "minimum": (min, [(0.3, -1.7), (-2.0, 1.5)]),
    # inside, below and above the bounds (smooth away from them)
    "clamp": (
        lambda x, lo, hi: min(max(x, lo), hi),
        [(0.3, -1.0, 1.0), (-2.0, -1.0, 1.0), (2.0, -1.0, 1.0)],
    ),
}

PRIMITIVES = list(ops.PRIMITIVES.values())
CASES = [
    pytest.param(prim, point, id=f"{prim.name}{point}")
    for prim in PRIMITIVES
    for point in DOMAINS.get(prim.name, (None, [()]))[1]
]


def test_every_primitive_has_a_domain_entry():
    missing = sorted(set(ops.PRIMITIVES) - set(DOMAINS))
    assert not missing, (
        f"primitives without a domain entry (so without a gradient check): {missing}"
    )


def test_domain_table_names_only_real_primitives():
    assert not set(DOMAINS) - set(ops.PRIMITIVES)


@pytest.mark.parametrize("prim, point", CASES)
def test_forward_on_floats_equals_reference(prim, point):
    reference = DOMAINS[prim.name][0]
    assert ops.apply(prim, *point) == pytest.approx(reference(*point), rel=1e-15, abs=1e-15)


@pytest.mark.parametrize("prim, point", CASES)
def test_forward_on_values_builds_one_node(prim, point):
    inputs = [Value(x) for x in point]
    out = ops.apply(prim, *inputs)
    assert isinstance(out, Value)
    assert out.op == prim.name
    assert out.parents == tuple(inputs)
    assert out.data == ops.apply(prim, *point)


@pytest.mark.parametrize("prim, point", CASES)
@pytest.mark.parametrize("order", [1, 2])
def test_gradcheck(prim, point, order):
    assert gradcheck(lambda *xs: ops.apply(prim, *xs), *point, order=order)


@pytest.mark.parametrize("prim", PRIMITIVES, ids=lambda p: p.name)
def test_rule_has_a_maths_docstring(prim):
    assert prim.vjp.__doc__ and "d/d" in prim.vjp.__doc__


@pytest.mark.parametrize(
    "name, method",
    [(n, n) for n in ["relu", "tanh", "sigmoid", "exp", "log", "sqrt", "sin", "cos"]],
)
def test_methods_and_functions_agree(name, method):
    x = 0.7
    function = getattr(autodiff, name)
    assert isinstance(function(x), float)
    value = getattr(Value(x), method)()
    assert value.data == function(x)
    assert value.op == name


@pytest.mark.parametrize(
    "build, expected",
    [
        (lambda a, b: a - b, 2.0 - 5.0),
        (lambda a, b: a / b, 2.0 / 5.0),
        (lambda a, b: autodiff.maximum(a, b), 5.0),
        (lambda a, b: autodiff.minimum(a, b), 2.0),
        (lambda a, b: autodiff.clamp(a, 2.5, 4.0) + b, 2.5 + 5.0),
        (lambda a, b: 2**a + b**a, 4.0 + 25.0),
    ],
)
def test_composites_forward(build, expected):
    assert build(Value(2.0), Value(5.0)).data == pytest.approx(expected)


@pytest.mark.parametrize(
    "f, point",
    [
        (lambda a, b: a - b, (2.0, 5.0)),
        (lambda a, b: a / b, (2.0, -5.0)),
        (lambda a, b: autodiff.maximum(a, b) * a, (2.0, 5.0)),
        (lambda a, b: autodiff.minimum(a, b) * b, (2.0, 5.0)),
        (lambda a, b: 2**a + b**a, (1.5, 3.0)),
        (lambda a, b: a**3 + b**-2, (-1.5, -0.5)),  # negative base, constant integer exponent
        (lambda a, b: (a * b).sigmoid().log() + (a / b).sin(), (0.7, -1.3)),
    ],
)
def test_composites_gradcheck(f, point):
    assert gradcheck(f, *point, order=2)


def test_n_ary_nodes_are_single_nodes():
    xs = [Value(float(i)) for i in range(10)]
    ws = [Value(0.5) for _ in range(10)]
    total = autodiff.sum(xs)
    assert total.op == "sum" and len(total.parents) == 10 and total.data == 45.0
    d = autodiff.dot(ws, xs)
    assert d.op == "dot" and len(d.parents) == 20 and d.data == 22.5
    d.backward()
    assert [w.grad for w in ws] == [float(i) for i in range(10)]
    assert [x.grad for x in xs] == [0.5] * 10


def test_n_ary_on_plain_numbers_returns_floats():
    assert autodiff.sum([1, 2.5, 3]) == 6.5
    assert autodiff.dot([1, 2], [3, 4]) == 11.0


def test_dot_needs_equal_lengths():
    with pytest.raises(
        ValueError, match=r"dot\(\) needs two sequences of equal length, got 2 and 3"
    ):
        autodiff.dot([Value(1.0), Value(2.0)], [1.0, 2.0, 3.0])


def test_numerically_stable_saturating_functions():
    for x, expected in [(1000.0, 1.0), (-1000.0, 0.0)]:
        s = Value(x).sigmoid()
        s.backward()
        assert s.data == expected
    for x, expected in [(1000.0, 1.0), (-1000.0, -1.0)]:
        v = Value(x)
        t = v.tanh()
        t.backward()
        assert t.data == expected and v.grad == 0.0
    v = Value(-1000.0)
    v.sigmoid().backward()
    assert v.grad == 0.0
    # away from saturation the derivative is the textbook one
    v = Value(2.0)
    v.sigmoid().backward()
    s = 1 / (1 + math.exp(-2.0))
    assert v.grad == pytest.approx(s * (1 - s), rel=1e-15)


def test_third_derivative_of_tanh_matches_closed_form():
    d3 = autodiff.grad(autodiff.grad(autodiff.grad(autodiff.tanh)))
    for x in (-1.3, 0.0, 0.5, 2.0):
        t = math.tanh(x)
        assert d3(x) == pytest.approx(-2 * (1 - t * t) * (1 - 3 * t * t), rel=1e-12, abs=1e-14)


def test_a_node_op_is_its_primitive_and_reads_as_its_name():
    import json

    a, b = Value(2.0), Value(3.0)
    c = a * b
    assert c.op is ops.PRIMITIVES["mul"] and c.op == "mul" and ops.PRIMITIVES[c.op] is c.op
    assert f"{c.op}" == "mul" and json.dumps(c.op) == '"mul"' and c.op.name == "mul"
    assert c.op.symbol == "*" and c.op.forward(2.0, 3.0) == 6.0
    assert c.op.vjp(1.0, 6.0, 2.0, 3.0) == (3.0, 2.0)
    assert a.op == "" and not a.op and a.parents == ()
    with autodiff.no_grad():
        assert (a * b).op == ""


@pytest.mark.parametrize("name, symbol", [("div", "/"), ("add", "+"), ("mul", "*"),
                                          ("pow", "**"), ("maximum", ""), ("softplus", "")])
def test_each_primitive_declares_how_it_is_written(name, symbol):
    assert ops.PRIMITIVES[name].symbol == symbol


def test_logsumexp_is_one_node_with_the_softmax_as_gradient():
    zs = [Value(1.0), Value(2.0), Value(3.0)]
    out = autodiff.logsumexp(zs)
    assert out.op == "logsumexp" and out.parents == tuple(zs)
    out.backward()
    total = math.fsum(math.exp(z) for z in (1.0, 2.0, 3.0))
    for z in zs:
        assert z.grad == pytest.approx(math.exp(z.data) / total, rel=1e-15)
    assert autodiff.logsumexp([1, 2.5]) == pytest.approx(math.log(math.e + math.exp(2.5)))
    assert isinstance(autodiff.logsumexp([1, 2.5]), float)


def test_logsumexp_does_not_overflow_or_lose_small_terms():
    # e^1000 overflows a float; the shifted forward and the rule e^(x - out) never exponentiate
    # a positive number.
    big = [Value(1000.0), Value(1000.0)]
    out = autodiff.logsumexp(big)
    out.backward()
    assert out.data == pytest.approx(1000.0 + math.log(2.0), rel=1e-15)
    assert [b.grad for b in big] == [pytest.approx(0.5, rel=1e-12)] * 2
    assert autodiff.logsumexp([-1000.0, -1000.0]) == pytest.approx(-1000.0 + math.log(2.0))
    assert autodiff.logsumexp([0.0, -40.0]) == pytest.approx(math.log1p(math.exp(-40.0)),
                                                             rel=1e-15, abs=0)
    assert autodiff.logsumexp([7.25]) == 7.25  # one input: itself, exactly


@pytest.mark.parametrize("inputs, expected, grads", [
    # torch.logsumexp's numbers (tests/test_torch_parity.py checks them against torch itself)
    ((math.inf, 1.0), math.inf, (math.nan, 0.0)),
    ((-math.inf, -math.inf), -math.inf, (math.nan, math.nan)),
    ((math.nan, 1.0), math.nan, (math.nan, math.nan)),
    ((-math.inf, 1.0), 1.0, (0.0, 1.0)),
    ((math.inf, -math.inf), math.inf, (math.nan, 0.0)),
])
def test_logsumexp_at_the_edges(inputs, expected, grads):
    xs = [Value(x) for x in inputs]
    out = autodiff.logsumexp(xs)
    out.backward()
    assert out.data == expected or (math.isnan(out.data) and math.isnan(expected))
    for x, want in zip(xs, grads):
        assert x.grad == want or (math.isnan(x.grad) and math.isnan(want))


@pytest.mark.parametrize("bad, error, message", [
    ([], ValueError, r"logsumexp\(\) needs at least one value, got an empty sequence"),
    (Value(1.0), TypeError, r"logsumexp\(values\) needs an iterable of numbers or Values"),
    (3.0, TypeError, r"logsumexp\(values\) needs an iterable .* got float: 3.0"),
    ("ab", TypeError, r"logsumexp\(values\) needs an iterable .* got str"),
    ([Value(1.0), "x"], TypeError, r"logsumexp\(\)"),
])
def test_logsumexp_bad_input(bad, error, message):
    with pytest.raises(error, match=message):
        autodiff.logsumexp(bad)


def test_logsumexp_forward_alone_refuses_no_inputs():
    with pytest.raises(ValueError, match=r"logsumexp\(\) needs at least one input"):
        ops.PRIMITIVES["logsumexp"].forward()
