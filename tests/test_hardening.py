"""Exact numbers at the edges, NaN that shows, safe threads: the reproducers of the hardening issue.

Each test starts from a reproducer that once gave a wrong number (or a bare crash) and checks
the number torch gives, or the error that names the op. Where torch is installed, the edge cases
are also compared with it directly.
"""

import math
import random
import sys
import threading

import pytest

import autodiff
from autodiff import Value, grad, gradients, no_grad, ops
from test_ops import DOMAINS

try:
    import torch
except ImportError:  # the torch comparisons below skip, saying why
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed (the test extra)")
NAN, INF = math.nan, math.inf


def grads_of(f, *xs):
    """(value, gradients) of f at xs through backward()."""
    vs = [Value(x) for x in xs]
    out = f(*vs)
    out.backward()
    return out.data, [v.grad for v in vs]


def torch_grads_of(f, *xs):
    ts = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in xs]
    out = f(*ts)
    out.backward()
    return out.item(), [t.grad.item() for t in ts]


def same(a, b) -> bool:
    """Equal as floats, NaN equal to NaN."""
    return a == b or (a != a and b != b)


# ---- 1. maximum, minimum, clamp are exact, with torch's gradients at ties and bounds ----------


def test_maximum_minimum_clamp_reproducers():
    assert autodiff.maximum(Value(1.0), -1e17).data == 1.0
    assert autodiff.clamp(Value(0.5), float("-inf"), 1.0).data == 0.5
    assert autodiff.clamp(Value(1e-20), -1.0, 1.0).data == 1e-20


def test_maximum_and_minimum_return_an_input_exactly_at_any_scale():
    rng = random.Random(0)
    for _ in range(2000):
        x = rng.uniform(-1, 1) * 10 ** rng.randint(-300, 300)
        y = rng.uniform(-1, 1) * 10 ** rng.randint(-300, 300)
        assert autodiff.maximum(Value(x), Value(y)).data == max(x, y)
        assert autodiff.minimum(Value(x), y).data == min(x, y)
        low, high = sorted((x, y))
        z = rng.uniform(-1, 1) * 10 ** rng.randint(-300, 300)
        assert autodiff.clamp(Value(z), low, high).data == min(max(z, low), high)


MAX_MIN_CASES = [(1.0, 1.0), (0.0, -0.0), (2.0, 1.0), (1.0, 2.0), (NAN, 1.0), (1.0, NAN)]


@pytest.mark.parametrize("name", ["maximum", "minimum"])
@pytest.mark.parametrize("x, y", MAX_MIN_CASES)
def test_maximum_minimum_gradients_follow_torch(name, x, y):
    ours = grads_of(getattr(autodiff, name), x, y)
    if name == "maximum":
        expected = {(1.0, 1.0): [0.5, 0.5], (2.0, 1.0): [1.0, 0.0], (1.0, 2.0): [0.0, 1.0]}
    else:
        expected = {(1.0, 1.0): [0.5, 0.5], (2.0, 1.0): [0.0, 1.0], (1.0, 2.0): [1.0, 0.0]}
    if (x, y) in expected:
        assert ours[1] == expected[(x, y)]
    if torch is not None:
        theirs = torch_grads_of(getattr(torch, name), x, y)
        assert same(ours[0], theirs[0]) and all(map(same, ours[1], theirs[1])), (ours, theirs)


CLAMP_CASES = [
    (0.5, 0.0, 1.0), (0.0, 0.0, 1.0), (1.0, 0.0, 1.0), (-1.0, 0.0, 1.0), (2.0, 0.0, 1.0),
    (0.5, 1.0, 0.0), (NAN, 0.0, 1.0), (0.5, NAN, 1.0), (0.5, 0.0, NAN), (0.5, -INF, 1.0),
    (2.0, 1.0, 1.0), (1.0, 1.0, 1.0), (-0.0, 0.0, 1.0),
]


@pytest.mark.parametrize("x, low, high", CLAMP_CASES)
def test_clamp_values_and_gradients_follow_torch(x, low, high):
    ours = grads_of(autodiff.clamp, x, low, high)
    if 0.0 < x < 1.0 and (low, high) == (0.0, 1.0):
        assert ours == (x, [1.0, 0.0, 0.0])
    if (x, low, high) in [(0.0, 0.0, 1.0), (1.0, 0.0, 1.0)]:  # a bound counts as inside
        assert ours[1][0] == 1.0
    if torch is not None:
        theirs = torch_grads_of(torch.clamp, x, low, high)
        assert same(ours[0], theirs[0]) and all(map(same, ours[1], theirs[1])), (ours, theirs)


def test_clamp_with_plain_number_bounds_gives_the_gradient_to_x():
    x = Value(1.0)
    autodiff.clamp(x, 0.0, 1.0).backward()
    assert x.grad == 1.0
    x = Value(3.0)
    autodiff.clamp(x, high=1.0).backward()
    assert x.grad == 0.0


# ---- 2. NaN propagates through every op ------------------------------------------------------


NAN_CASES = [
    pytest.param(name, point, position, id=f"{name}{point}@{position}")
    for name, (_, points) in DOMAINS.items()
    for point in points[:1]
    for position in range(len(point))
]


@pytest.mark.parametrize("name, point, position", NAN_CASES)
def test_nan_in_any_input_of_any_primitive_gives_nan(name, point, position):
    inputs = [Value(x) for x in point]
    inputs[position] = Value(NAN)
    out = ops.apply(ops.PRIMITIVES[name], *inputs)
    assert math.isnan(out.data), f"{name} with NaN input {position} gave {out.data}"


def test_nan_reproducers_relu_and_a_model():
    assert math.isnan(Value(NAN).relu().data)
    nn = pytest.importorskip("nn")
    model = nn.MLP(2, [4, 1], seed=0)
    score = model([NAN, 1.0])
    assert math.isnan(score.data)
    assert math.isnan(nn.losses.hinge([score], [1]).data)


def test_relu_abs_gradients_at_nan_and_zero_follow_torch():
    for f, tf in [(autodiff.relu, torch and torch.relu), (autodiff.abs, torch and torch.abs)]:
        for x in (NAN, 0.0, -0.0, -1.0, 2.0):
            ours = grads_of(f, x)
            if torch is not None:
                theirs = torch_grads_of(tf, x)
                assert same(ours[0], theirs[0]), (x, ours, theirs)
                assert same(ours[1][0], theirs[1][0]), (x, ours, theirs)
                assert math.copysign(1, ours[0]) == math.copysign(1, theirs[0])


def test_a_zero_derivative_stays_zero_even_for_an_infinite_upstream():
    # relu'(x) = 0 for x < 0: an inf gradient arriving there must not become inf * 0 = nan
    x = Value(-1.0)
    (x.relu() * INF).backward()
    assert x.grad == 0.0


# ---- 3. pow and sqrt at 0 ---------------------------------------------------------------------


def test_pow_at_zero_reproducers():
    x = Value(0.0)
    (x**1 + x**0).backward()
    assert x.grad == 1.0
    assert grad(grad(grad(lambda x: x**2)))(0.0) == 0.0
    x, y = Value(0.0), Value(0.0)
    (x**y).backward()
    assert (x.grad, y.grad) == (0.0, 0.0)


def test_sqrt_derivative_at_zero_is_inf_as_in_torch():
    x = Value(0.0)
    x.sqrt().backward()
    assert x.grad == INF


POW_EDGES = [(0.0, 0.0), (0.0, 1.0), (0.0, 0.5), (0.0, 2.0), (0.0, 3.0), (-2.0, 3.0), (-2.0, 2.0),
             (2.0, -1.0), (1.0, NAN), (NAN, 0.0), (0.5, 0.0)]


@needs_torch
@pytest.mark.parametrize("x, y", POW_EDGES)
def test_pow_gradients_at_the_edges_follow_torch(x, y):
    ours = grads_of(lambda a, b: a**b, x, y)
    theirs = torch_grads_of(torch.pow, x, y)
    assert same(ours[0], theirs[0])
    assert same(ours[1][0], theirs[1][0]), (ours, theirs)
    if x < 0:  # torch gives nan for d/dy at a negative base; chainrule gives 0 (see POW)
        assert math.isnan(theirs[1][1]) and ours[1][1] == 0.0
    else:
        assert same(ours[1][1], theirs[1][1]), (ours, theirs)


# ---- 4. division is one correctly rounded operation ---------------------------------------------


def test_division_is_exact():
    assert (Value(49.0) / 49).data == 1.0
    rng = random.Random(4)
    for _ in range(5000):
        a, b = rng.uniform(-100, 100), rng.uniform(-100, 100)
        assert (Value(a) / Value(b)).data == a / b
        assert (a / Value(b)).data == a / b
    assert autodiff.div(1.0, 3.0) == 1.0 / 3.0
    assert ops.PRIMITIVES["div"].symbol == "/"


def test_d_x_over_x_is_zero_even_where_x_squared_underflows():
    x = Value(1e-298)
    (x / x).backward()
    assert x.grad == 0.0


@needs_torch
@pytest.mark.parametrize("a, b", [(1.0, 3.0), (1e-298, 1e-298), (-5.0, 1e-160), (1e300, 1e-10)])
def test_division_gradients_follow_torch(a, b):
    ours = grads_of(lambda x, y: x / y, a, b)
    theirs = torch_grads_of(torch.div, a, b)
    assert same(ours[0], theirs[0])
    for o, t in zip(ours[1], theirs[1]):
        assert o == pytest.approx(t, rel=1e-15) or same(o, t)


# ---- 5. log1p and softplus; bce_with_logits keeps tiny losses ----------------------------------


def test_log1p_and_softplus_keep_tiny_values_and_never_overflow():
    assert autodiff.log1p(Value(1e-20)).data == 1e-20
    assert autodiff.softplus(Value(-40.0)).data == pytest.approx(math.exp(-40.0), rel=1e-15)
    assert autodiff.softplus(Value(1000.0)).data == 1000.0
    assert autodiff.softplus(Value(-1000.0)).data == 0.0
    x = Value(-800.0)
    autodiff.softplus(x).backward()
    assert x.grad == 0.0
    with pytest.raises(ValueError, match=r"log1p\(\) needs an input greater than -1, got -1.0"):
        autodiff.log1p(Value(-1.0))


def test_bce_with_logits_keeps_the_tiny_loss_of_a_confident_right_answer():
    nn = pytest.importorskip("nn")
    loss = nn.losses.bce_with_logits(Value(40.0), 1.0)
    assert loss.data == pytest.approx(math.log1p(math.exp(-40.0)), rel=1e-12)
    assert loss.data > 0
    for x, t in [(40.0, 0.0), (-40.0, 1.0), (-40.0, 0.0), (0.3, 0.7)]:
        expected = max(x, 0) - x * t + math.log1p(math.exp(-abs(x)))
        assert nn.losses.bce_with_logits(Value(x), t).data == pytest.approx(expected, rel=1e-12)


# ---- 6. no_grad is reusable, re-entrant and shareable --------------------------------------------


def test_one_no_grad_object_nested_and_reused():
    w = Value(2.0)
    off = no_grad()
    with off:
        with off:
            assert not autodiff.is_grad_enabled()
        assert not autodiff.is_grad_enabled()
    assert autodiff.is_grad_enabled()
    with off:
        pass
    y = w * 3
    y.backward()
    assert y.parents and w.grad == 3.0


def test_one_no_grad_object_shared_by_threads():
    off = no_grad()
    barrier = threading.Barrier(4)
    results = []

    def worker(k):
        with off:
            barrier.wait(5)  # all four threads inside the same object at once
            inside = autodiff.is_grad_enabled()
            barrier.wait(5)
        v = Value(float(k))
        (v * v).backward()
        results.append((inside, autodiff.is_grad_enabled(), v.grad == 2.0 * k))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [(False, True, True)] * 4
    assert autodiff.is_grad_enabled()


def test_no_grad_decorates_with_and_without_parentheses():
    @no_grad
    def bare(v):
        return v * 2

    @no_grad()
    def called(v):
        return v * 2

    assert bare(Value(1.0)).parents == () == called(Value(1.0)).parents
    assert bare.__name__ == "bare" and autodiff.is_grad_enabled()


def test_enable_grad_inside_no_grad_and_exiting_unentered_is_an_error():
    with no_grad():
        with autodiff.enable_grad():
            assert (Value(1.0) * 2).parents
        assert not (Value(1.0) * 2).parents
    with pytest.raises(RuntimeError, match="exited without being entered"):
        no_grad().__exit__(None, None, None)


# ---- 7. concurrent backward passes through a shared interior node -------------------------------


def test_concurrent_backward_passes_add_up_like_sequential_ones():
    # Integer-valued gradients: every order of the additions gives the same float, so concurrent
    # and sequential passes can be compared exactly.
    w = [Value(float(i + 1)) for i in range(20)]
    shared = autodiff.sum([wi * wi for wi in w])  # an interior node both kinds of root use
    roots = [shared * float(k + 1) + w[k] * 3.0 for k in range(8)]

    for r in roots:
        r.backward()
    sequential = [x.grad for x in w]
    for x in w:
        x.grad = 0.0

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        for _ in range(3):
            threads = [threading.Thread(target=r.backward) for r in roots]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    finally:
        sys.setswitchinterval(old)
    assert [x.grad for x in w] == [3 * g for g in sequential]


# ---- 9. bad input to the engine's public entries -------------------------------------------------


BAD_INPUT = [
    (lambda: Value(1.0).backward(create_graph="no"), TypeError, r"create_graph.*'no'"),
    (lambda: autodiff.backward(3.0), TypeError, r"backward\(root\) needs a Value, got float"),
    (lambda: gradients(Value(1.0) * 2, "x"), TypeError, r"gradients\(wrt=...\).*str"),
    (lambda: gradients(Value(1.0) * 2, [1.0]), TypeError, r"wrt\[0\] is a float"),
    (lambda: gradients("loss", [Value(1.0)]), TypeError, r"gradients\(root\).*str"),
    (lambda: gradients(Value(1.0), [Value(1.0)], create_graph=1), TypeError, r"create_graph"),
    (lambda: grad(3.0), TypeError, r"grad\(f\) needs a function"),
    (lambda: grad(abs, argnums="0"), TypeError, r"argnums"),
    (lambda: grad(abs, argnums=True), TypeError, r"argnums"),
    (lambda: grad(abs, argnums=()), TypeError, r"argnums"),
    (lambda: grad(lambda x: x, argnums=(0, 0))(1.0), ValueError, r"argnums.*twice"),
    (lambda: grad(lambda x: x, argnums=1)(1.0), TypeError, r"called with 1 arguments"),
    (lambda: grad(lambda x: x)("1.0"), TypeError, r"argument 0 needs a number or a Value"),
    (lambda: grad(lambda x: x)(True), TypeError, r"argument 0 needs a number or a Value"),
    (lambda: autodiff.gradcheck(3, 1.0), TypeError, r"gradcheck\(f\) needs a function"),
    (lambda: autodiff.gradcheck(lambda x: x, "1"), TypeError, r"input 0 needs a number"),
    (lambda: autodiff.gradcheck(lambda x: x, 1.0, order=True), ValueError, r"order 1 or 2"),
    (lambda: autodiff.gradcheck(lambda x: x, 1.0, eps=0), ValueError, r"eps=.*positive"),
    (lambda: autodiff.gradcheck(lambda x: x, 1.0, atol=-1), ValueError, r"atol=.*non-negative"),
    (lambda: autodiff.gradcheck(lambda x: x, 1.0, rtol="1"), TypeError, r"rtol=.*real number"),
    (lambda: Value(True), TypeError, r"Value\(\) needs an int or float, got bool"),
    (lambda: Value(1.0, label=3), TypeError, r"Value\(label=...\) needs a str, got int"),
    (lambda: autodiff.topological_order(3.0), TypeError, r"topological_order\(root\).*float"),
    (lambda: autodiff.local_grads(3.0), TypeError, r"local_grads\(node\).*float"),
    (lambda: autodiff.local_grads(Value(1.0) * 2, "1"), TypeError, r"upstream.*str"),
    (lambda: autodiff.sum(5), TypeError, r"sum\(values\) needs an iterable"),
    (lambda: autodiff.sum("abc"), TypeError, r"sum\(values\) needs an iterable"),
    (lambda: autodiff.dot(1, [2]), TypeError, r"dot\(ws\) needs an iterable"),
    (lambda: autodiff.relu(True), TypeError, r"relu\(\) needs a number or a Value, got bool"),
    (lambda: no_grad()(3), TypeError, r"no_grad\(\) decorates a function"),
    (lambda: no_grad(3), TypeError, r"no_grad\(\) decorates a function"),
    (lambda: grad(lambda x: x > 0)(1.0), TypeError, r"f must return a Value or a number, got bool"),
    (lambda: autodiff.topological_order(Value(1.0), stop=5), TypeError, r"stop=.*set of Values"),
]


@pytest.mark.parametrize("action, error, message", BAD_INPUT)
def test_bad_input_to_the_engine_is_a_clear_error(action, error, message):
    with pytest.raises(error, match=message):
        action()


def test_a_failed_backward_leaves_every_grad_as_it_was():
    a = Value(2.0)
    b = a * 3
    b.backward()
    assert a.grad == 3.0

    def broken(g, out, x):
        """d/dx broken x = a rule that raises"""
        raise ArithmeticError("this rule fails")

    bad = ops.Primitive("broken", lambda x: x, broken)
    root = ops.apply(bad, b) + a
    with pytest.raises(ArithmeticError):
        root.backward()
    assert (a.grad, b.grad, root.grad) == (3.0, 1.0, 0.0)


def test_x_to_the_x_keeps_its_second_derivative_where_the_exponent_is_zero():
    # f(x) = (e^x) ** x = e^(x^2): f''(0) = 2. A rule that gives d/dx u^v a constant 0 at v = 0
    # (as torch's `where` does) loses the v-derivative of that share and finds 1.
    f = lambda x: autodiff.exp(x) ** ops.identity(x)  # noqa: E731
    assert grad(grad(f))(0.0) == 2.0
    assert grad(grad(f))(0.5) == pytest.approx((2 + 4 * 0.25) * math.exp(0.25), rel=1e-12)


def test_an_int_too_large_for_a_float_is_an_error_naming_the_op():
    # float(10**400) raises a bare "int too large to convert to float", naming nothing.
    with pytest.raises(OverflowError, match=r"Value\(\).*too large for a float"):
        Value(10**400)
    with pytest.raises(OverflowError, match=r"mul\(\).*too large for a float"):
        Value(1.0) * 10**400
    with pytest.raises(OverflowError, match=r"exp\(\).*too large for a float"):
        autodiff.exp(-(10**5000))  # more digits than Python will print: the size is named


@needs_torch
@pytest.mark.parametrize("f, tf", [(lambda x: x.sqrt(), torch.sqrt if torch else None),
                                   (lambda x: x**0.5, lambda t: t**0.5),
                                   (lambda x: x**0.25, lambda t: t**0.25)])
def test_second_derivative_at_zero_of_a_root_is_minus_inf_as_in_torch(f, tf):
    # The first derivative at 0 was the constant g * inf, so the second came out 0: a
    # wrong number (d^2/dx^2 sqrt x = -1 / (4 x^1.5) is -inf at 0), where torch gives -inf.
    t = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    (d1,) = torch.autograd.grad(tf(t), t, create_graph=True)
    (d2,) = torch.autograd.grad(d1, t)
    assert grad(f)(0.0) == d1.item() == INF
    assert grad(grad(f))(0.0) == d2.item() == -INF
