"""The strong-Wolfe line search on kinks, flat pieces and unbounded directions.

abs, maximum, clamp, a linear loss and a ReLU network break the cubic interpolation's
assumptions (equal points, zero curvature, no minimum along the line). The search must then
bisect, stop, and still hand back a point no higher than where it started, so that LBFGS and
ConjugateGradient never crash and never climb.
"""

import math
import random

import pytest

import autodiff
from autodiff import Value
from nn.data import make_moons
from nn.optim.linesearch import cubic_interpolate, strong_wolfe
from nn.optim import LBFGS, ConjugateGradient


def test_cubic_interpolate_at_equal_points_bisects():
    assert cubic_interpolate(1.0, 2.0, -1.0, 1.0, 2.0, -1.0) == 1.0
    assert cubic_interpolate(1.0, 2.0, -1.0, 1.0, 2.0, -1.0, bounds=(1.0, 3.0)) == 2.0


def test_cubic_interpolate_on_a_straight_line_goes_to_the_downhill_end():
    # phi(t) = -t: no curvature, so the cubic's minimiser is at +infinity, clipped to the bound.
    assert cubic_interpolate(0.0, 0.0, -1.0, 1.0, -1.0, -1.0) == 1.0
    assert cubic_interpolate(0.0, 0.0, -1.0, 1.0, -1.0, -1.0, bounds=(1.01, 10.0)) == 10.0
    # A flat line: no side is downhill, so bisect.
    assert cubic_interpolate(0.0, 5.0, 0.0, 2.0, 5.0, 0.0) == 1.0


@pytest.mark.parametrize("values", [(0.0, math.inf, -1.0, 1.0, 0.0, -1.0),
                                    (0.0, 0.0, -1.0, 1.0, math.nan, math.nan)])
def test_cubic_interpolate_with_a_non_finite_value_bisects(values):
    assert cubic_interpolate(*values) == 0.5


def test_strong_wolfe_on_an_unbounded_direction_stops_with_a_lower_finite_point():
    # phi(t) = -t goes down forever: the search walks outward, then stops after max_ls.
    f_new, g_new, t, evals = strong_wolfe(lambda t: (-t, [-1.0]), [1.0], 1.0, 0.0, [-1.0],
                                          -1.0, max_ls=10)
    assert evals <= 1 + 10  # the first trial, then at most max_ls more (torch counts so too)
    assert math.isfinite(t) and t > 1.0 and f_new == -t and g_new == [-1.0]


def test_strong_wolfe_backs_off_from_points_that_are_not_finite():
    # phi(t) = -log(1 - t) on t < 1, a pole at t = 1 and NaN beyond it; the first trial is 5.
    def phi(t):
        if t >= 1:
            return (math.inf if t == 1 else math.nan), [math.nan]
        return -math.log1p(-t), [1 / (1 - t)]

    def phi_reversed(t):  # go downhill: phi(t) = log(1 - t) is -inf at 1; start along d = 1
        f, g = phi(t)
        return -f, [-gi for gi in g]

    f_new, g_new, t, evals = strong_wolfe(phi_reversed, [1.0], 5.0, 0.0, [-1.0], -1.0)
    assert 0 < t < 1 and math.isfinite(f_new) and f_new < 0 and all(map(math.isfinite, g_new))


# ---- LBFGS and CG on losses with kinks -----------------------------------------------------

X, Y = make_moons(10, noise=0.1, seed=2)


def relu_net_loss(params):
    """The mean squared error of a 2-4-1 ReLU network whose parameters are `params`."""
    total = Value(0.0)
    for x, y in zip(X, Y):
        hidden = [autodiff.dot(params[3 * j:3 * j + 2], x) + params[3 * j + 2] for j in range(4)]
        hidden = [h.relu() for h in hidden]
        total = total + (autodiff.dot(params[12:16], hidden) + params[16] - (2 * y - 1)) ** 2
    return total / len(X)


LOSSES = {
    # name: (loss of a list of Values, number of parameters, bounded below?)
    "abs": (lambda p: abs(p[0]) + abs(p[1] - 1), 2, True),
    "maximum": (lambda p: autodiff.maximum(p[0], p[1]), 2, False),
    "maximum-bounded": (lambda p: autodiff.maximum(p[0] * p[0], abs(p[1])) + abs(p[0] + p[1]),
                        2, True),
    "clamp": (lambda p: abs(autodiff.clamp(p[0] - 1, -2, 2)) + abs(autodiff.clamp(p[1], -2, 2)),
              2, True),
    "linear": (lambda p: 2 * p[0] - p[1], 2, False),
    "relu-net": (relu_net_loss, 17, True),
}
METHODS = {
    "LBFGS": lambda ps: LBFGS(ps, line_search_fn="strong_wolfe", max_iter=5),
    "CG": lambda ps: ConjugateGradient(ps, max_iter=5),
}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("loss_name", LOSSES)
def test_line_search_methods_never_crash_nor_climb_on_kinks(method, loss_name):
    loss_fn, n, bounded = LOSSES[loss_name]
    for seed in range(4):
        rng = random.Random(seed)
        params = [Value(rng.uniform(-1.5, 1.5)) for _ in range(n)]
        opt = METHODS[method](params)

        def closure(opt=opt, params=params):
            opt.zero_grad()
            loss = loss_fn(params)
            loss.backward()
            return loss

        first = loss_fn(params).data
        losses = [first]
        for _ in range(4):
            opt.step(closure)
            losses.append(loss_fn(params).data)
        assert all(map(math.isfinite, losses)), losses
        assert all(b <= a for a, b in zip(losses, losses[1:])), losses  # never climbs
        assert losses[-1] < first, losses  # and it moved downhill
        if not bounded:  # an unbounded loss keeps falling at every step
            assert all(b < a for a, b in zip(losses, losses[1:])), losses
