"""Numbers at the edges: pow at subnormal and infinite bases, abs of NaN, binary cross-entropy
of tiny probabilities, optimizers that met a NaN, closures that return absurd numbers.

Each test is a reproducer that once gave a wrong number, a hidden NaN or a bare crash; where
torch is installed the numbers are compared with torch float64 directly.
"""

import math

import pytest

from autodiff import Value, grad
from nn.losses import binary_cross_entropy
from nn.optim import LBFGS, SGD, Adagrad, Adam, AdamW, ConjugateGradient, RMSprop

try:
    import torch
except ImportError:  # the torch comparisons skip, saying why
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed (the test extra)")
NAN, INF = math.nan, math.inf
SUBNORMALS = [1e-310, -1e-310, 5e-324]


def grads_of(f, *xs):
    vs = [Value(x) for x in xs]
    out = f(*vs)
    out.backward()
    return out.data, [v.grad for v in vs]


def same(a, b):
    return a == b or (math.isnan(a) and math.isnan(b))


# ---- pow ----------------------------------------------------------------------------------


@pytest.mark.parametrize("x", SUBNORMALS)
def test_x_to_the_zero_has_derivative_zero_at_subnormal_x(x):
    # d/dx x^0 = 0 everywhere; at a subnormal x the formula 0 * x^-1 would be 0 * inf = nan.
    assert grads_of(lambda v: v ** 0, x) == (1.0, [0.0])
    assert grads_of(lambda v, y: v ** y, x, 0.0)[1][0] == 0.0
    # Higher derivatives pass through x ** 0 too: d2/dx2 x = 0, d3/dx3 x^2 = 0, d2/dx2 x^2 = 2.
    assert grad(grad(lambda v: v ** 1))(x) == 0.0
    assert grad(grad(grad(lambda v: v ** 2)))(x) == 0.0
    assert grad(grad(lambda v: v ** 2))(x) == 2.0


@pytest.mark.parametrize("y, value, slope", [(-2.5, 0.0, 0.0), (2.5, INF, INF), (-3.0, -0.0, 0.0),
                                             (3.0, -INF, INF), (0.25, INF, 0.0)])
def test_minus_infinity_to_a_fractional_power_is_torchs_number(y, value, slope):
    out, (dx,) = grads_of(lambda v: v ** y, -INF)
    assert same(out, value) and math.copysign(1, out) == math.copysign(1, value)
    assert same(dx, slope)


def test_a_finite_negative_base_to_a_fraction_still_names_pow():
    with pytest.raises(ValueError, match=r"pow\(\) of a negative base"):
        Value(-2.0) ** 2.5


@needs_torch
@pytest.mark.parametrize("x", [*SUBNORMALS, INF, -INF, NAN, 0.0])
@pytest.mark.parametrize("y", [0.0, 1.0, 2.0, 3.0, -1.0, -2.5, 0.5, 1.5, 2.5])
def test_pow_at_subnormal_infinite_and_nan_bases_matches_torch(x, y):
    if (x == 0 and y < 0) or (-INF < x < 0 and not float(y).is_integer()):
        return  # errors named by pow(), tested elsewhere
    if x == -INF and y in (0.5, 1.5):
        return  # torch computes x ** 0.5 as sqrt(x): nan at -inf; IEEE pow (and chainrule): inf
    ours = grads_of(lambda v: v ** y, x)
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    out = t ** y
    out.backward()
    assert same(ours[0], out.item()), (x, y, ours, out.item())
    theirs = t.grad.item()
    assert same(ours[1][0], theirs) or ours[1][0] == pytest.approx(theirs, rel=1e-14), (
        x, y, ours, theirs)


# ---- abs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("f", [lambda v: 1 / abs(v), lambda v: abs(v) * INF,
                               lambda v: abs(v) * NAN, lambda v: abs(v) * -INF])
@pytest.mark.parametrize("x", [NAN, 0.0, -0.0])
def test_abs_never_turns_a_nan_into_a_number(f, x):
    if x == 0 and f.__code__.co_code == (lambda v: 1 / abs(v)).__code__.co_code:
        return  # 1 / 0 is a ZeroDivisionError, not a NaN
    _, (dx,) = grads_of(f, x)
    assert math.isnan(dx)
    if torch is not None:
        t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        f(t).backward()
        assert math.isnan(t.grad.item())


def test_abs_at_nan_and_zero_with_a_finite_upstream_is_torchs_zero():
    assert grads_of(abs, NAN)[1] == [0.0]
    assert grads_of(abs, 0.0)[1] == [0.0]
    assert grads_of(lambda v: abs(v) * 3.0, NAN)[1] == [0.0]


# ---- binary cross-entropy -----------------------------------------------------------------


@pytest.mark.parametrize("p", [1e-13, 1e-50, 1e-200, 3e-17])
def test_bce_of_a_tiny_probability_against_target_zero_is_p(p):
    # -log(1 - p) = p + p^2/2 + ...: equal to p in floating point for these p.
    loss = binary_cross_entropy(Value(p), 0.0)
    assert loss.data == pytest.approx(p, rel=1e-12) and loss.data > 0


@pytest.mark.parametrize("p", [1e-50, 1e-200, 1e-300])
def test_bce_below_the_log_floor_keeps_the_true_gradient(p):
    v = Value(p)
    loss = binary_cross_entropy(v, 1.0)
    loss.backward()
    assert loss.data == 100.0  # the value is clamped at -log(e^-100), as torch's
    assert v.grad == pytest.approx(-1 / p, rel=1e-12)  # the slope is not: d/dp -log p = -1/p


def test_bce_at_exactly_zero_and_one_stays_finite():
    for p, t in ((0.0, 1.0), (1.0, 0.0)):
        v = Value(p)
        loss = binary_cross_entropy(v, t)
        loss.backward()
        assert loss.data == 100.0 and v.grad == 0.0


# ---- optimizers after a NaN, closures with absurd numbers ---------------------------------

FIRST_ORDER = [(SGD, {"momentum": 0.9}), (SGD, {"momentum": 0.9, "nesterov": True}), (Adam, {}),
               (Adam, {"amsgrad": True}), (AdamW, {}), (RMSprop, {"centered": True,
                                                                  "momentum": 0.5}),
               (Adagrad, {})]


@pytest.mark.parametrize("cls, kwargs", FIRST_ORDER)
def test_an_optimizer_reloads_its_own_state_after_a_nan_step(cls, kwargs):
    params = [Value(1.0), Value(2.0)]
    opt = cls(params, lr=0.1, **kwargs)
    params[0].grad, params[1].grad = NAN, 1.0
    opt.step()
    saved = opt.state_dict()
    assert any(isinstance(v, float) and math.isnan(v) for s in saved["state"] for v in s.values())
    again = cls(params, lr=0.1, **kwargs)
    again.load_state_dict(saved)
    assert repr(again.state) == repr(opt.state)


@pytest.mark.parametrize("cls", [LBFGS, ConjugateGradient])
def test_a_closure_optimizer_reloads_its_own_state_after_a_nan_loss(cls):
    x = Value(1.0)
    opt = cls([x], max_iter=3)
    calls = []

    def closure():
        opt.zero_grad()
        calls.append(1)
        loss = (x - 3) ** 2 if len(calls) < 3 else x * NAN
        loss.backward()
        return loss

    opt.step(closure)
    cls([x], max_iter=3).load_state_dict(opt.state_dict())


def test_a_negative_entry_is_still_refused():
    opt = Adam([Value(1.0)], lr=0.1)
    with pytest.raises(ValueError, match=r"exp_avg_sq'\]=-1.0, it must be >= 0"):
        opt.load_state_dict({"optimizer": "Adam", "hyperparams": {"lr": 0.1}, "initial_lr": None,
                             "state": [{"step": 1, "exp_avg": 0.0, "exp_avg_sq": -1.0}]})


@pytest.mark.parametrize("cls", [LBFGS, ConjugateGradient])
def test_a_closure_returning_a_huge_int_gets_an_error_naming_the_optimizer(cls):
    x = Value(1.0)
    opt = cls([x])
    with pytest.raises(OverflowError, match=rf"{cls.__name__}: the closure returned an int too "
                                            r"large for a float \(about 10\*\*400\)"):
        opt.step(lambda: 10 ** 400)
    assert x.data == 1.0
