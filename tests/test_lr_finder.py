"""The learning-rate range test: the rates it tries, what it finds, and that it leaves no trace."""

from __future__ import annotations

import math
import random

import pytest

from autodiff import Value
from nn.data import make_moons
from nn.layers import MLP
from nn.losses import hinge
from nn.lr_finder import lr_range_test
from nn.optim import SGD, Adam, RMSprop


def quadratic(curvature: float):
    w = Value(3.0)
    return w, (lambda: 0.5 * curvature * (w - 1) ** 2)


def test_rates_grow_geometrically_and_losses_follow_each_step():
    w, loss = quadratic(1.0)
    opt = SGD([w], lr=0.5)
    result = lr_range_test(opt, loss, start_lr=1e-3, end_lr=1e-1, steps=5, restore=False)
    assert result.lrs == pytest.approx([1e-3, 10 ** -2.5, 1e-2, 10 ** -1.5, 1e-1], rel=1e-12)
    # Replay the same five steps by hand: each loss is measured right after its step.
    v = 3.0
    expected = []
    for lr in result.lrs:
        v -= lr * (v - 1)
        expected.append(0.5 * (v - 1) ** 2)
    assert result.losses == pytest.approx(expected, rel=1e-12)
    assert result.start_loss == 2.0 and not result.diverged and result.stopped_at is None
    assert result.smoothed == result.losses  # smoothing=0: no averaging
    assert w.data == pytest.approx(v, rel=1e-12)  # restore=False kept the trained weight


@pytest.mark.parametrize("curvature", [2.0, 20.0, 200.0])
def test_finds_the_stability_limit_of_a_quadratic(curvature):
    """Gradient descent on curvature c is stable only for lr < 2 / c: the test must see that."""
    w, loss = quadratic(curvature)
    result = lr_range_test(SGD([w], lr=1.0), loss, start_lr=1e-5, end_lr=10.0, steps=120)
    limit = 2 / curvature
    assert result.diverged
    assert result.lrs[-1] > limit, "it stops only after passing the limit"
    assert all(lr < 1.5 * limit for lr in result.lrs), "and a few rates after it (x1.12 each)"
    assert result.lr_at_min < limit and result.suggestion == result.lr_at_min / 10
    assert result.losses[result.stopped_at] > 4 * min(result.losses)


def test_does_not_diverge_when_the_range_is_safe():
    w, loss = quadratic(1.0)
    result = lr_range_test(SGD([w], lr=1.0), loss, start_lr=1e-3, end_lr=1.0, steps=30)
    assert not result.diverged and len(result.lrs) == len(result.losses) == 30
    assert result.lr_at_min == result.lrs[-1]  # the loss only falls


@pytest.mark.parametrize("make_opt", [
    lambda ps: SGD(ps, lr=0.05, momentum=0.9),
    lambda ps: Adam(ps, lr=0.01),
    lambda ps: RMSprop(ps, lr=0.01, momentum=0.5),
], ids=["momentum", "adam", "rmsprop"])
def test_restores_weights_gradients_and_optimizer_state(make_opt):
    X, y = make_moons(24, noise=0.1, seed=0, labels="pm1")
    model = MLP(2, [6, 1], seed=0)
    opt = make_opt(model.parameters())
    for _ in range(3):  # some real state first: momentum buffers, Adam's averages
        opt.zero_grad()
        hinge([model(x) for x in X], y).backward()
        opt.step()
    weights, grads = model.state_dict(), [p.grad for p in model.parameters()]
    state, lr = opt.state_dict(), opt.lr
    result = lr_range_test(opt, lambda: hinge([model(x) for x in X], y),
                           start_lr=1e-4, end_lr=10.0, steps=25)
    assert len(result.lrs) >= 2
    assert model.state_dict() == weights
    assert [p.grad for p in model.parameters()] == grads
    assert opt.state_dict() == state and opt.lr == lr
    # And training afterwards is exactly what it would have been without the test.
    twin = MLP(2, [6, 1], seed=0)
    twin.load_state_dict(weights)
    twin_opt = make_opt(twin.parameters())
    twin_opt.load_state_dict(state)
    for m, o in ((model, opt), (twin, twin_opt)):
        o.zero_grad()
        hinge([m(x) for x in X], y).backward()
        o.step()
    assert model.state_dict() == twin.state_dict()


def test_restores_even_when_the_loss_function_fails():
    w = Value(2.0)
    opt = SGD([w], lr=0.3, momentum=0.9)
    calls = []

    def loss():
        calls.append(1)
        if len(calls) == 4:
            raise RuntimeError("data loader broke")
        return w * w

    with pytest.raises(RuntimeError, match="data loader broke"):
        lr_range_test(opt, loss, steps=10)
    assert w.data == 2.0 and opt.lr == 0.3 and opt.state == [{}]


def test_seeded_minibatches_repeat_exactly():
    X, y = make_moons(40, noise=0.2, seed=1, labels="pm1")

    def run():
        model = MLP(2, [8, 1], seed=2)
        opt = SGD(model.parameters(), lr=0.1)
        batches = random.Random(0)

        def loss():
            idx = batches.sample(range(len(X)), 8)
            return hinge([model(X[i]) for i in idx], [y[i] for i in idx])

        return lr_range_test(opt, loss, start_lr=1e-3, end_lr=30.0, steps=40, smoothing=0.8)

    first, second = run(), run()
    assert first.losses == second.losses and first.lrs == second.lrs
    assert first.smoothed != first.losses  # smoothing averaged the noisy losses
    # Bias-corrected average: the first smoothed value is the first loss itself.
    assert first.smoothed[0] == pytest.approx(first.losses[0], rel=1e-12)


def test_stops_on_nan_or_inf():
    w = Value(1.0)
    result = lr_range_test(SGD([w], lr=0.1), lambda: (w * 1e200) * (w * 1e200),
                           start_lr=1e-3, end_lr=1.0, steps=10)
    assert result.diverged and not math.isfinite(result.losses[-1])


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(start_lr=0.0), ValueError, "start_lr must be a positive finite number, got 0.0"),
    (dict(start_lr=-1e-3), ValueError, "start_lr"),
    (dict(end_lr=float("inf")), ValueError, "end_lr"),
    (dict(start_lr="0.1"), TypeError, "start_lr must be a number, got str"),
    (dict(start_lr=1.0, end_lr=0.1), ValueError, "end_lr must be larger than start_lr"),
    (dict(steps=1), ValueError, "steps must be an integer >= 2, got 1"),
    (dict(steps=10.0), ValueError, "steps"),
    (dict(smoothing=1.0), ValueError, "smoothing must be a number in [0, 1)"),
    (dict(divergence=1.0), ValueError, "divergence must be a number > 1"),
])
def test_bad_arguments_are_named(kwargs, error, words):
    w = Value(1.0)
    opt = SGD([w], lr=0.1)
    with pytest.raises(error, match=words.replace("[", r"\[").replace("(", r"\(")
                       .replace(")", r"\)")):
        lr_range_test(opt, lambda: w * w, **kwargs)
    assert w.data == 1.0 and opt.lr == 0.1


def test_bad_optimizer_or_loss_function():
    w = Value(1.0)
    with pytest.raises(TypeError, match="optimizer must be an nn.optim optimizer, got list"):
        lr_range_test([w], lambda: w * w)
    opt = SGD([w], lr=0.1)
    with pytest.raises(TypeError, match="loss_fn must be a function"):
        lr_range_test(opt, w * w)
    with pytest.raises(TypeError, match="loss_fn must return a Value .the loss., got float: 1.0"):
        lr_range_test(opt, lambda: 1.0)
    assert w.data == 1.0 and opt.lr == 0.1
