"""Losses: hand-computed values and gradients, batches, errors, and parity with torch (float64)."""

from __future__ import annotations

import math
import random

import pytest

import autodiff
from autodiff import Value, gradcheck
from nn.layers import MLP
from nn.losses import (accuracy, bce_with_logits, binary_cross_entropy, cross_entropy, hinge,
                       l2_penalty, mse)


def values(*xs):
    return [Value(x) for x in xs]


# ---- hand-computed values and gradients -------------------------------------------------------


def test_mse_single_and_batch():
    p = Value(2.5)
    loss = mse(p, 2.0)
    loss.backward()
    assert loss.data == 0.25 and p.grad == 1.0  # (0.5)^2, 2 * 0.5
    ps = values(1.0, 2.0, 3.0)
    loss = mse(ps, [1.0, 1.0, 1.0])
    loss.backward()
    assert loss.data == pytest.approx(5 / 3, abs=1e-15)
    assert [p.grad for p in ps] == pytest.approx([0.0, 2 / 3, 4 / 3], abs=1e-15)
    assert mse(ps, [1.0, 1.0, 1.0], reduction="sum").data == pytest.approx(5.0, abs=1e-15)


def test_hinge_is_micrograds_max_margin_loss():
    ps = values(0.5, -2.0, 0.3)
    loss = hinge(ps, [1, -1, -1])
    loss.backward()
    # relu(1 - 0.5) = 0.5, relu(1 - 2) = 0, relu(1 + 0.3) = 1.3; mean = 1.8 / 3
    assert loss.data == pytest.approx(0.6, abs=1e-15)
    assert [p.grad for p in ps] == pytest.approx([-1 / 3, 0.0, 1 / 3], abs=1e-15)
    # the same number as micrograd's own expression
    same = sum((1 + -y * s).relu() for s, y in zip(values(0.5, -2.0, 0.3), [1, -1, -1])) / 3
    assert loss.data == pytest.approx(same.data, abs=1e-15)


def test_binary_cross_entropy_values_and_clamp():
    p = Value(0.8)
    loss = binary_cross_entropy(p, 1.0)
    loss.backward()
    assert loss.data == pytest.approx(-math.log(0.8), abs=1e-15)
    assert p.grad == pytest.approx(-1 / 0.8, abs=1e-12)
    q = Value(0.25)
    loss = binary_cross_entropy(q, 0.5)  # soft target: -(0.5 log 0.25 + 0.5 log 0.75)
    loss.backward()
    assert loss.data == pytest.approx(-(0.5 * math.log(0.25) + 0.5 * math.log(0.75)), abs=1e-15)
    assert q.grad == pytest.approx((0.25 - 0.5) / (0.25 * 0.75), abs=1e-12)
    # log is clamped at -100, as in torch: p = 0 or 1 gives 100 when wrong and 0 when right
    assert binary_cross_entropy(Value(0.0), 1.0).data == 100.0
    assert binary_cross_entropy(Value(1.0), 0.0).data == 100.0
    assert binary_cross_entropy(Value(0.0), 0.0).data == 0.0
    assert binary_cross_entropy(Value(1.0), 1.0).data == 0.0


def test_binary_cross_entropy_gradient_at_the_ends():
    # At p = 0 with target 0 the loss is -log(1 - p), whose slope is 1; with target 1 it is the
    # clamped constant 100, whose slope is 0. (torch's backward gives 0 and -1e12 here.)
    for p, t, slope in [(0.0, 0.0, 1.0), (0.0, 1.0, 0.0), (1.0, 1.0, -1.0), (1.0, 0.0, 0.0)]:
        v = Value(p)
        binary_cross_entropy(v, t).backward()
        assert v.grad == slope


def test_bce_with_logits_values_gradients_and_extremes():
    x = Value(0.0)
    loss = bce_with_logits(x, 1.0)
    loss.backward()
    assert loss.data == pytest.approx(math.log(2.0), abs=1e-15)
    assert x.grad == pytest.approx(-0.5, abs=1e-15)  # sigmoid(0) - 1, also exactly at 0
    for logit, t in [(2.0, 0.25), (-3.0, 1.0), (0.7, 0.0)]:
        x = Value(logit)
        loss = bce_with_logits(x, t)
        loss.backward()
        s = 1 / (1 + math.exp(-logit))
        assert loss.data == pytest.approx(-(t * math.log(s) + (1 - t) * math.log(1 - s)),
                                          abs=1e-12)
        assert x.grad == pytest.approx(s - t, abs=1e-12)
    # huge logits neither overflow nor lose the answer
    big, small = Value(1000.0), Value(-1000.0)
    assert bce_with_logits(big, 1.0).data == 0.0
    loss = bce_with_logits(small, 1.0)
    loss.backward()
    assert loss.data == pytest.approx(1000.0, abs=1e-9) and small.grad == pytest.approx(-1.0)


def test_cross_entropy_values_and_softmax_gradient():
    z = values(1.0, 2.0, 3.0)
    loss = cross_entropy(z, 2)
    loss.backward()
    total = math.exp(1) + math.exp(2) + math.exp(3)
    assert loss.data == pytest.approx(math.log(total) - 3, abs=1e-14)
    softmax = [math.exp(v) / total for v in (1, 2, 3)]
    assert [v.grad for v in z] == pytest.approx([softmax[0], softmax[1], softmax[2] - 1],
                                                abs=1e-14)
    # large logits: log-sum-exp subtracts the max, so nothing overflows
    z = values(1000.0, 0.0, -1000.0)
    assert cross_entropy(z, 1).data == pytest.approx(1000.0, abs=1e-9)
    assert cross_entropy(z, 0).data == pytest.approx(0.0, abs=1e-12)


def test_cross_entropy_batch_is_the_mean():
    a, b = values(0.1, 0.9), values(2.0, -1.0)
    batch = cross_entropy([a, b], [1, 1])
    each = (cross_entropy(a, 1).data + cross_entropy(b, 1).data) / 2
    assert batch.data == pytest.approx(each, abs=1e-15)
    assert cross_entropy([a, b], [1, 1], reduction="sum").data == pytest.approx(2 * each)


def test_l2_penalty():
    ps = values(1.0, -2.0)
    pen = l2_penalty(ps, alpha=0.5)
    pen.backward()
    assert pen.data == 2.5 and [p.grad for p in ps] == [1.0, -2.0]  # alpha * 2 p
    model = MLP(2, [3, 1], seed=0)
    expected = 1e-4 * sum(p.data ** 2 for p in model.parameters())
    assert l2_penalty(model, 1e-4).data == pytest.approx(expected, abs=1e-15)
    inner = [v for v in autodiff.topological_order(l2_penalty(model)) if v.parents]
    assert len(inner) == 2  # one dot node and the scaling


def test_accuracy():
    assert accuracy(values(0.5, -0.1, 2.0), [1, -1, -1]) == pytest.approx(2 / 3)
    assert accuracy([0.7, 0.2], [1, 0], threshold=0.5) == 1.0
    assert accuracy([values(0.1, 0.5, 0.2), [3.0, 1.0, 0.0]], [1, 2]) == 0.5


@pytest.mark.parametrize("f, x, t", [
    (lambda x: bce_with_logits(x, 0.3), 0.8, None),
    (lambda x: bce_with_logits(x, 1.0), -0.4, None),
    (lambda x: binary_cross_entropy(x, 0.3), 0.6, None),
    (lambda x: mse(x, 0.5), 1.5, None),
    (lambda x, y: cross_entropy([x, y, Value(0.2)], 0), 0.3, -0.6),
])
def test_losses_differentiate_twice(f, x, t):
    # built from autodiff ops only, so second derivatives come for free
    args = (x,) if t is None else (x, t)
    assert gradcheck(f, *args, order=2)


# ---- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize("call, message", [
    (lambda: hinge(Value(0.5), 0), "hinge() needs labels -1 or +1, got 0"),
    (lambda: binary_cross_entropy(Value(1.5), 1.0), "needs probabilities in [0, 1], got 1.5"),
    (lambda: binary_cross_entropy(Value(0.5), 2.0), "needs targets in [0, 1], got 2.0"),
    (lambda: bce_with_logits(Value(0.5), -1), "needs targets in [0, 1], got -1"),
    (lambda: cross_entropy(values(1.0, 2.0), 2), "needs a class index in 0..1, got 2"),
    (lambda: cross_entropy(values(1.0, 2.0), 0.5), "needs a class index in 0..1, got 0.5"),
    (lambda: mse(values(1.0, 2.0), [1.0]), "mse() got 2 predictions but 1 targets"),
    (lambda: mse([], []), "mse() got an empty batch"),
    (lambda: mse(values(1.0), [1.0], reduction="max"), "reduction must be 'mean' or 'sum'"),
])
def test_bad_inputs_raise_value_error(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)


def test_single_prediction_with_list_target_is_a_type_error():
    with pytest.raises(TypeError, match="one prediction but a list of targets"):
        mse(Value(1.0), [1.0, 2.0])
    with pytest.raises(TypeError, match="list of predictions but a single target"):
        mse(values(1.0, 2.0), 1.0)


# ---- parity with torch.nn.functional in float64 -----------------------------------------------


def _both(ours_fn, torch_fn, preds, targets, torch):
    """Run our loss and torch's on the same numbers; return (our value, grads), (torch's)."""
    vs = [Value(p) for p in preds]
    loss = ours_fn(vs, targets)
    loss.backward()
    tp = torch.tensor(preds, dtype=torch.float64, requires_grad=True)
    tl = torch_fn(tp)
    tl.backward()
    return (loss.data, [v.grad for v in vs]), (tl.item(), tp.grad.tolist())


def _close(ours, theirs):
    assert ours[0] == pytest.approx(theirs[0], rel=1e-9, abs=1e-9)
    assert ours[1] == pytest.approx(theirs[1], rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_parity_with_torch_binary_losses(reduction):
    torch = pytest.importorskip("torch", reason="torch is not installed")
    F = torch.nn.functional
    rng = random.Random(0)
    logits = [rng.uniform(-6, 6) for _ in range(7)] + [0.0, 40.0, -40.0, 700.0, -700.0]
    targets = [rng.random() for _ in logits[:-4]] + [1.0, 0.0, 1.0, 0.0]
    t = torch.tensor(targets, dtype=torch.float64)
    _close(*_both(lambda v, y: bce_with_logits(v, y, reduction=reduction),
                  lambda x: F.binary_cross_entropy_with_logits(x, t, reduction=reduction),
                  logits, targets, torch))
    probs = [rng.uniform(0.01, 0.99) for _ in range(8)] + [0.0, 1.0, 0.0, 1.0]
    hard = [float(rng.random() < 0.5) for _ in range(8)] + [0.0, 1.0, 1.0, 0.0]
    th = torch.tensor(hard, dtype=torch.float64)
    ours, theirs = _both(lambda v, y: binary_cross_entropy(v, y, reduction=reduction),
                         lambda x: F.binary_cross_entropy(x, th, reduction=reduction),
                         probs, hard, torch)
    # Values agree everywhere, the clamped ends included. Gradients agree inside (0, 1); at
    # exactly 0 or 1 torch's backward uses (p - t) / max(p (1 - p), 1e-12) and we use the
    # derivative of the clamped function (see test_binary_cross_entropy_gradient_at_the_ends).
    _close((ours[0], ours[1][:8]), (theirs[0], theirs[1][:8]))
    preds = [rng.uniform(-3, 3) for _ in range(9)]
    goal = [rng.uniform(-3, 3) for _ in range(9)]
    tg = torch.tensor(goal, dtype=torch.float64)
    _close(*_both(lambda v, y: mse(v, y, reduction=reduction),
                  lambda x: F.mse_loss(x, tg, reduction=reduction), preds, goal, torch))
    scores = [rng.uniform(-2, 2) for _ in range(9)]
    signs = [rng.choice([-1, 1]) for _ in range(9)]
    ts = torch.tensor(signs, dtype=torch.float64)
    # hinge is micrograd's relu(1 - y s); torch's functional form of it is relu as well
    _close(*_both(lambda v, y: hinge(v, y, reduction=reduction),
                  lambda x: getattr(F.relu(1 - ts * x), reduction)(), scores, signs, torch))


@pytest.mark.parametrize("scale", [1.0, 50.0, 800.0])
def test_parity_with_torch_cross_entropy(scale):
    torch = pytest.importorskip("torch", reason="torch is not installed")
    rng = random.Random(int(scale))
    rows = [[scale * rng.uniform(-1, 1) for _ in range(4)] for _ in range(5)]
    classes = [rng.randrange(4) for _ in rows]
    vs = [[Value(z) for z in row] for row in rows]
    loss = cross_entropy(vs, classes)
    loss.backward()
    tz = torch.tensor(rows, dtype=torch.float64, requires_grad=True)
    tl = torch.nn.functional.cross_entropy(tz, torch.tensor(classes))
    tl.backward()
    assert loss.data == pytest.approx(tl.item(), rel=1e-9, abs=1e-9)
    ours = [v.grad for row in vs for v in row]
    assert ours == pytest.approx(tz.grad.flatten().tolist(), rel=1e-9, abs=1e-9)


# ---- no silent bad input ---------------------------------------------------------------------


@pytest.mark.parametrize("call, error, message", [
    (lambda: l2_penalty(values(1.0, 2.0), alpha=-1.0), ValueError,
     "l2_penalty(): invalid alpha=-1.0, it must be a finite number >= 0"),
    (lambda: l2_penalty(values(1.0), alpha=math.nan), ValueError, "invalid alpha=nan"),
    (lambda: l2_penalty(values(1.0), alpha="1e-4"), TypeError,
     "l2_penalty(): alpha must be a number, got str"),
    (lambda: l2_penalty([1.0, 2.0]), TypeError,
     "l2_penalty(): params[0] must be a Value, got float: 1.0"),
    (lambda: l2_penalty(Value(1.0)), TypeError, "needs a model or a list of Values, got Value"),
    (lambda: mse(Value(1.0), "1"), TypeError, "mse() needs number targets, got str: '1'"),
    (lambda: mse(Value(1.0), True), TypeError, "mse() needs number targets, got bool"),
    (lambda: mse("12", [1.0, 2.0]), TypeError,
     "mse() needs a prediction (a Value or a number) or a list of them, got str"),
    (lambda: mse({"a": 1.0}, [1.0]), TypeError, "mse() needs a prediction"),
    (lambda: hinge([Value(1.0), "x"], [1, -1]), TypeError,
     "hinge() needs predictions that are Values or numbers, got str: 'x'"),
    (lambda: hinge(True, 1), TypeError, "hinge() needs a prediction (a Value or a number)"),
    (lambda: cross_entropy([Value(1.0), None], 0), TypeError,
     "cross_entropy() needs predictions that are Values or numbers, got NoneType"),
    (lambda: cross_entropy({"a": 1.0, "b": 2.0}, 0), TypeError,
     "cross_entropy() needs a list of class scores (logits), got dict"),
    (lambda: accuracy([0.5], [1], threshold="0"), TypeError,
     "accuracy(): threshold must be a number, got str"),
    (lambda: accuracy([0.5], [1], threshold=math.nan), ValueError,
     "accuracy(): invalid threshold=nan, it must be a finite number"),
    (lambda: accuracy(["0.5"], [1]), TypeError, "accuracy(): pred[0] must be a number, got str"),
    (lambda: accuracy([0.5, 0.2], [1, "a"]), TypeError, "accuracy(): target[1] must be a number"),
    (lambda: accuracy(Value(0.5), [1]), TypeError, "accuracy(): pred must be a list, got Value"),
])
def test_bad_arguments_are_clear_errors(call, error, message):
    with pytest.raises(error) as info:
        call()
    assert message in str(info.value)


def test_nan_predictions_are_never_right():
    nan = float("nan")
    assert accuracy([nan, nan, 1.0], [1, -1, 1]) == pytest.approx(1 / 3)
    assert accuracy([[nan, 0.0], [0.0, 1.0]], [0, 1]) == 0.5


def test_mse_target_may_be_a_value_and_gets_a_gradient():
    p, t = Value(3.0), Value(1.0)
    mse(p, t).backward()
    assert (p.grad, t.grad) == (4.0, -4.0)
