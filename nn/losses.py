"""Loss functions: one number that says how wrong the model is, built from `autodiff` ops.

Every loss here is an ordinary expression of `Value` operations (`log`, `exp`, `relu`,
`autodiff.sum`, ...), so it brings no derivative rule of its own: backward differentiates it
like any other expression, and a drawn graph shows exactly how the loss was computed. The one
idea to understand is numerical stability: `log(sigmoid(x))` or `log(sum(exp(z)))` overflow or
lose every digit for large inputs, so the classification losses are written in the rearranged,
stable forms PyTorch uses, and give the same numbers and gradients as `torch.nn.functional`.

Batches: each loss takes either one prediction and its target, or a list of predictions and a
list of targets of the same length; for a list it returns the mean over the items (as
`reduction="mean"` in PyTorch), or their sum with `reduction="sum"`.

    >>> from autodiff import Value
    >>> round(mse(Value(2.5), 2.0).data, 4)
    0.25
    >>> round(hinge([Value(0.5), Value(-2.0)], [1, -1]).data, 4)     # mean of 0.5 and 0
    0.25
    >>> round(cross_entropy([Value(1.0), Value(2.0), Value(3.0)], 2).data, 4)
    0.4076
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from numbers import Real
from typing import Any

import autodiff
from autodiff import Value
from nn._checks import check_non_negative, check_number

__all__ = ["mse", "hinge", "binary_cross_entropy", "bce_with_logits", "cross_entropy",
           "l2_penalty", "l1_penalty", "accuracy"]

Scalar = Value | float

# log(p) is clamped at -100, as torch.nn.functional.binary_cross_entropy does, so a probability
# of exactly 0 or 1 gives a large finite loss instead of an error.
_LOG_FLOOR = -100.0


def mse(pred: Scalar | Sequence[Scalar], target: float | Sequence[float], *,
        reduction: str = "mean") -> Value:
    """Squared error `(pred - target)^2`, averaged over a batch. A target may be a Value (then
    the loss also differentiates with respect to it, as torch's does)."""

    def one(p: Scalar, t: Any) -> Value:
        if isinstance(t, bool) or not isinstance(t, (Value, Real)):
            raise TypeError(f"mse() needs number targets, got {type(t).__name__}: {t!r}")
        return (p - t) ** 2

    return _reduce("mse", pred, target, reduction, one)


def hinge(score: Scalar | Sequence[Scalar], label: int | Sequence[int], *,
          reduction: str = "mean") -> Value:
    """Max-margin loss `relu(1 - label * score)` for labels -1 and +1 (micrograd's demo loss).

    Zero once a point is on the right side of the boundary with a margin of at least 1; the
    gradient pushes only the points that are wrong or too close.
    """

    def one(s: Scalar, y: Any) -> Value:
        if isinstance(y, bool) or y not in (-1, 1):
            raise ValueError(f"hinge() needs labels -1 or +1, got {y!r}")
        return autodiff.relu(1 - y * _value(s))

    return _reduce("hinge", score, label, reduction, one)


def binary_cross_entropy(prob: Scalar | Sequence[Scalar], target: float | Sequence[float], *,
                         reduction: str = "mean") -> Value:
    """`-(t log p + (1 - t) log(1 - p))` for a probability `p` in [0, 1] and a target in [0, 1].

    log(1 - p) is computed as log1p(-p), exact for tiny p (p = 1e-13, t = 0 gives 1e-13, where
    log(1 - p) would be off by 3e-4 relative). Each log is clamped at -100, as in PyTorch, so
    p = 0 or 1 gives a finite loss; below the clamp the gradient is still the true one, -t / p
    (and (1 - t) / (1 - p)), so a confidently wrong prediction keeps being pushed back. At
    exactly p = 0 or 1, where the log has no derivative, the clamped term is a constant (torch's
    backward uses a capped shortcut formula there and differs). Prefer `bce_with_logits` on the
    raw score: it is exact where a sigmoid has already rounded to 0 or 1.
    """

    def one(p: Scalar, t: Any) -> Value:
        p = _value(p)
        if not 0.0 <= p.data <= 1.0:
            raise ValueError(f"binary_cross_entropy() needs probabilities in [0, 1], "
                             f"got {p.data!r}")
        t = _target("binary_cross_entropy", t, low=0.0, high=1.0)
        log_p = _clamped(autodiff.log(p)) if p > 0 else Value(_LOG_FLOOR)
        log_1mp = _clamped(autodiff.log1p(-p)) if p < 1 else Value(_LOG_FLOOR)
        return -(t * log_p + (1 - t) * log_1mp)

    return _reduce("binary_cross_entropy", prob, target, reduction, one)


def bce_with_logits(logit: Scalar | Sequence[Scalar], target: float | Sequence[float], *,
                    reduction: str = "mean") -> Value:
    """Binary cross-entropy of `sigmoid(logit)`, computed stably from the logit itself.

    With x the logit and t the target, the loss `-(t log s(x) + (1-t) log(1 - s(x)))` equals
    `x - t x + log(1 + e^-x)` and also `-t x + log(1 + e^x)`. The first form is used for x >= 0
    and the second for x < 0, so the log term is always small: `autodiff.softplus` computes it in
    the log1p form, which keeps it even where `1 + e^-40` would round to 1 (x = 40, t = 1 gives
    4.2e-18, not 0). Both forms are the same function, so the gradient, `sigmoid(x) - t`, is
    exact everywhere.
    """

    def one(x: Scalar, t: Any) -> Value:
        x = _value(x)
        t = _target("bce_with_logits", t, low=0.0, high=1.0)
        if x >= 0:  # a comparison of Values, so a compiled loss keeps it as a guard
            return x - t * x + autodiff.softplus(-x)
        return -t * x + autodiff.softplus(x)

    return _reduce("bce_with_logits", logit, target, reduction, one)


def cross_entropy(logits: Sequence[Scalar] | Sequence[Sequence[Scalar]],
                  target: int | Sequence[int], *, reduction: str = "mean") -> Value:
    """Softmax cross-entropy for one of several classes: `log(sum_j e^z_j) - z_target`.

    `logits` is one list of class scores with an integer class index `target`, or a list of such
    lists with a list of indices. The log-sum-exp is one `autodiff.logsumexp` node, computed
    without overflow (it subtracts the largest score inside its float forward). Its gradient is
    `softmax(z) - onehot(target)`.
    """
    _check_reduction("cross_entropy", reduction)
    if isinstance(target, (Real, Value)) and not isinstance(target, bool):
        return _cross_entropy_one(logits, target)
    if isinstance(logits, (Value, Real)) or not isinstance(target, Sequence):
        raise TypeError("cross_entropy() takes a list of logits and a class index, or a list of "
                        f"such lists and a list of indices; got target {target!r}")
    logits = list(logits)
    if len(logits) != len(target):
        raise ValueError(f"cross_entropy() got {len(logits)} predictions but {len(target)} "
                         "targets")
    return _mean_or_sum("cross_entropy", [_cross_entropy_one(z, t)
                                          for z, t in zip(logits, target)], reduction)


def l2_penalty(params: Any, alpha: float = 1.0) -> Value:
    """`alpha * sum(p^2)` over a model's parameters (or any list of Values): weight decay.

    Built as one `dot(params, params)` node, so the whole penalty adds two nodes to the graph;
    its gradient on each parameter is `2 alpha p`. `alpha` is a finite number >= 0: a negative
    one would reward large weights.
    """
    alpha = check_non_negative("l2_penalty()", "alpha", alpha)
    params = _penalty_params("l2_penalty", params)
    return alpha * autodiff.dot(params, params)


def _penalty_params(owner: str, params: Any) -> list[Value]:
    """A penalty's parameters as a list: a model's `parameters()`, or a non-empty iterable of
    Values (a single Value, a string or a mapping is refused, naming `owner`)."""
    if hasattr(params, "parameters"):
        params = params.parameters()
    if isinstance(params, (Value, str, bytes, Mapping)) or not isinstance(params, Iterable):
        raise TypeError(f"{owner}() needs a model or a list of Values, got "
                        f"{type(params).__name__}")
    params = list(params)
    if not params:
        raise ValueError(f"{owner}() got no parameters")
    for i, p in enumerate(params):
        if not isinstance(p, Value):
            raise TypeError(f"{owner}(): params[{i}] must be a Value, "
                            f"got {type(p).__name__}: {p!r}")
    return params


def l1_penalty(params: Any, alpha: float = 1.0) -> Value:
    """`alpha * sum(|p|)` over a model's parameters (or any list of Values): the lasso penalty.

    One `abs` node per parameter and one `sum` node; its gradient on each parameter is
    `alpha * sign(p)` (0 at p = 0), so it pulls every weight towards 0 by the same amount and
    leaves many exactly at 0, where L2 only shrinks them. `alpha` is a finite number >= 0.
    """
    alpha = check_non_negative("l1_penalty()", "alpha", alpha)
    params = _penalty_params("l1_penalty", params)
    return alpha * autodiff.sum([abs(p) for p in params])


def accuracy(pred: Sequence[Any], target: Sequence[Any], threshold: float = 0.0) -> float:
    """Fraction of correct predictions, for the kinds of output the losses above take.

    A prediction that is a list of class scores is right when its largest score is at the
    target index. A single score is right when it is on the target's side of `threshold`
    (targets -1/+1 or 0/1; use threshold 0.5 for probabilities). A NaN score is never right,
    so a model that went NaN shows it here too.
    """
    threshold = check_number("accuracy()", "threshold", threshold, finite=True)
    for name, items in (("pred", pred), ("target", target)):
        if isinstance(items, (Value, str, bytes, Mapping)) or not isinstance(items, Iterable):
            raise TypeError(f"accuracy(): {name} must be a list, got {type(items).__name__}")
    pred, target = list(pred), list(target)
    if len(pred) != len(target) or not pred:
        raise ValueError(f"accuracy() needs equally many predictions and targets, got "
                         f"{len(pred)} and {len(target)}")
    right = 0
    for i, (p, t) in enumerate(zip(pred, target)):
        check_number("accuracy()", f"target[{i}]", _data(t))
        if isinstance(p, (list, tuple)):
            scores = [check_number("accuracy()", f"pred[{i}]", _data(z)) for z in p]
            if not any(math.isnan(z) for z in scores):
                right += scores.index(max(scores)) == t
        else:
            score = check_number("accuracy()", f"pred[{i}]", _data(p))
            if not math.isnan(score):
                right += (score > threshold) == (_data(t) > 0)
    return right / len(pred)


# ---- helpers -------------------------------------------------------------------------------------


def _data(x: Any) -> Any:
    return x.data if isinstance(x, Value) else x


def _value(x: Any) -> Value:
    return x if isinstance(x, Value) else Value(x)


def _target(loss: str, t: Any, low: float, high: float) -> float:
    if isinstance(t, Value):
        t = t.data  # targets are data, not something to differentiate
    if isinstance(t, bool) or not isinstance(t, Real) or not low <= t <= high:
        raise ValueError(f"{loss}() needs targets in [{low:g}, {high:g}], got {t!r}")
    return float(t)


def _clamped(log_p: Value) -> Value:
    """max(log p, -100) in value, as torch; below the floor the log's own derivatives still flow
    (log p - log p is exactly 0, so the value is exactly the floor)."""
    return log_p if log_p >= _LOG_FLOOR else (log_p - log_p.detach()) + _LOG_FLOOR


def _cross_entropy_one(logits: Any, target: Any) -> Value:
    if isinstance(logits, (Value, Real)):
        raise TypeError("cross_entropy() needs a list of class scores (logits), got a single "
                        f"{type(logits).__name__}")
    if isinstance(logits, (str, bytes, Mapping)):
        raise TypeError("cross_entropy() needs a list of class scores (logits), got "
                        f"{type(logits).__name__}")
    for v in logits:
        _check_pred("cross_entropy", v)
    z = [_value(v) for v in logits]
    if isinstance(target, Value):
        target = target.data
    if isinstance(target, bool) or not isinstance(target, Real) or target != int(target) \
            or not 0 <= target < len(z):
        raise ValueError(f"cross_entropy() needs a class index in 0..{len(z) - 1}, got {target!r}")
    # One logsumexp node: its float forward shifts by the largest score, so no exp overflows,
    # and its rule is the softmax. No max is taken in the graph, so nothing compares Values (a
    # compiled loss has no guard to retrace on) and no gradient flows through a shift.
    return autodiff.logsumexp(z) - z[int(target)]


def _check_pred(loss: str, p: Any) -> None:
    if isinstance(p, bool) or not isinstance(p, (Value, Real)):
        raise TypeError(f"{loss}() needs predictions that are Values or numbers, "
                        f"got {type(p).__name__}: {p!r}")


def _reduce(loss: str, pred: Any, target: Any, reduction: str, one) -> Value:
    _check_reduction(loss, reduction)
    if isinstance(pred, (Value, Real)) and not isinstance(pred, bool):
        if isinstance(target, Iterable) and not isinstance(target, str):
            raise TypeError(f"{loss}() got one prediction but a list of targets")
        return _value(one(pred, target))
    if isinstance(pred, (str, bytes, Mapping)) or not isinstance(pred, Iterable):
        raise TypeError(f"{loss}() needs a prediction (a Value or a number) or a list of them, "
                        f"got {type(pred).__name__}: {pred!r}")
    pred = list(pred)
    for p in pred:
        _check_pred(loss, p)
    if isinstance(target, (Value, Real)) or not isinstance(target, Iterable):
        raise TypeError(f"{loss}() got a list of predictions but a single target {target!r}")
    target = list(target)
    if len(pred) != len(target):
        raise ValueError(f"{loss}() got {len(pred)} predictions but {len(target)} targets")
    return _mean_or_sum(loss, [one(p, t) for p, t in zip(pred, target)], reduction)


def _mean_or_sum(loss: str, items: list, reduction: str) -> Value:
    if not items:
        raise ValueError(f"{loss}() got an empty batch")
    if reduction == "sum":
        return _value(autodiff.sum(items))
    _check_reduction(loss, reduction)
    return _value(autodiff.sum(items) * (1.0 / len(items)))


def _check_reduction(loss: str, reduction: Any) -> None:
    if reduction not in ("mean", "sum"):
        raise ValueError(f"{loss}(): reduction must be 'mean' or 'sum', got {reduction!r}")
