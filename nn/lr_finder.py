"""The learning-rate range test: grow the learning rate step by step and watch the loss.

`lr_range_test` trains for a few dozen steps while the learning rate grows geometrically from
very small to very large, and records the loss after each step. The one idea: while the rate is
too small the loss barely moves, in a good range it falls fast, and past the stability limit it
blows up; a good rate sits well before the blow-up (Leslie Smith's range test, 2015/2017). The
probe trains a real model, so by default it puts every weight, gradient and optimizer state
back as it found them: the test tells you a rate, it does not train your model.

    >>> from autodiff import Value
    >>> from nn.optim import SGD
    >>> w = Value(5.0)
    >>> opt = SGD([w], lr=0.1)
    >>> result = lr_range_test(opt, lambda: 10 * w * w, start_lr=1e-4, end_lr=1.0, steps=40)
    >>> result.suggestion < 2 / 20 < result.lrs[-1]   # curvature 20: stable below lr = 0.1
    True
    >>> w.data, opt.lr                                 # nothing changed
    (5.0, 0.1)
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any

from autodiff import Value
from nn.optim import Optimizer

__all__ = ["LRRangeResult", "lr_range_test"]


@dataclass
class LRRangeResult:
    """What a range test saw.

    `losses[k]` is the loss measured right after the step taken with learning rate `lrs[k]`;
    `smoothed` is their running average (the same as `losses` with `smoothing=0`). `start_loss`
    is the loss before the first step. `lr_at_min` is the rate of the lowest smoothed loss and
    `suggestion` is ten times smaller: at the minimum the steps are already close to too large,
    so the usual rule of thumb backs off by an order of magnitude. `diverged` says whether the
    test stopped early because the loss blew up (or became NaN/inf).
    """

    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    start_loss: float
    lr_at_min: float
    suggestion: float
    diverged: bool
    stopped_at: int | None = field(default=None)

    def __repr__(self) -> str:
        end = f"diverged at lr {self.lrs[-1]:.3g}" if self.diverged else "did not diverge"
        return (f"LRRangeResult({len(self.lrs)} steps, lr {self.lrs[0]:.3g} -> "
                f"{self.lrs[-1]:.3g}, {end}; lowest loss at lr {self.lr_at_min:.3g}, "
                f"suggestion {self.suggestion:.3g})")


def _positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"lr_range_test: {name} must be a number, got "
                        f"{type(value).__name__}: {value!r}")
    value = float(value)
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"lr_range_test: {name} must be a positive finite number, got {value!r}")
    return value


def lr_range_test(
    optimizer: Optimizer,
    loss_fn: Callable[[], Value],
    *,
    start_lr: float = 1e-5,
    end_lr: float = 10.0,
    steps: int = 100,
    smoothing: float = 0.0,
    divergence: float = 4.0,
    restore: bool = True,
) -> LRRangeResult:
    """Train with a learning rate growing from `start_lr` to `end_lr`; return the losses seen.

    `loss_fn()` computes the loss of the current weights as a Value (a forward pass); it is
    called `steps + 1` times, once before the first step and once after each. For mini-batch
    training let it take the next batch, drawn from a seeded generator, so the test repeats.
    Step k uses `lr = start_lr * (end_lr / start_lr) ** (k / (steps - 1))`, so the rates are
    evenly spread on a log axis. The test stops early once the (smoothed) loss exceeds
    `divergence` times the lowest one seen, or is not finite.

    `smoothing` in [0, 1) averages the losses (an exponential moving average with bias
    correction, weight `smoothing` on the past), which helps with noisy mini-batch losses.

    With `restore=True` (the default) every parameter's `.data` and `.grad`, the optimizer's
    state (momentum buffers, Adam's averages, ...) and its `lr` are put back afterwards, also
    when `loss_fn` raises: only the parameters the optimizer holds are restored, so leave
    nothing trainable outside it. `restore=False` keeps the weights where the test left them.
    """
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"lr_range_test: optimizer must be an nn.optim optimizer, got "
                        f"{type(optimizer).__name__}: {optimizer!r}")
    if not callable(loss_fn):
        raise TypeError(f"lr_range_test: loss_fn must be a function returning the loss, got "
                        f"{type(loss_fn).__name__}: {loss_fn!r}")
    start_lr = _positive("start_lr", start_lr)
    end_lr = _positive("end_lr", end_lr)
    if not end_lr > start_lr:
        raise ValueError(f"lr_range_test: end_lr must be larger than start_lr, got "
                         f"start_lr={start_lr!r}, end_lr={end_lr!r}")
    if isinstance(steps, bool) or not isinstance(steps, Integral) or steps < 2:
        raise ValueError(f"lr_range_test: steps must be an integer >= 2, got {steps!r}")
    if isinstance(smoothing, bool) or not isinstance(smoothing, Real) or not 0 <= smoothing < 1:
        raise ValueError(f"lr_range_test: smoothing must be a number in [0, 1), got {smoothing!r}")
    if isinstance(divergence, bool) or not isinstance(divergence, Real) or not divergence > 1:
        raise ValueError(f"lr_range_test: divergence must be a number > 1, got {divergence!r}")

    params = optimizer.params
    saved = ([p.data for p in params], [p.grad for p in params],
             copy.deepcopy(optimizer.state_dict()), optimizer.lr)

    def loss_now() -> float:
        optimizer.zero_grad()
        loss = loss_fn()
        if not isinstance(loss, Value):
            raise TypeError(f"lr_range_test: loss_fn must return a Value (the loss), got "
                            f"{type(loss).__name__}: {loss!r}")
        loss.backward()
        return float(loss.data)

    lrs: list[float] = []
    losses: list[float] = []
    smoothed: list[float] = []
    diverged = False
    try:
        start_loss = loss_now()
        average, best = 0.0, math.inf
        for k in range(int(steps)):
            lr = start_lr * (end_lr / start_lr) ** (k / (steps - 1))
            optimizer.lr = lr
            optimizer.step()
            loss = loss_now()
            lrs.append(lr)
            losses.append(loss)
            average = smoothing * average + (1 - smoothing) * loss
            smooth = average / (1 - smoothing ** (k + 1))  # bias correction: average starts at 0
            smoothed.append(smooth)
            if not math.isfinite(smooth) or smooth > divergence * best:
                diverged = True
                break
            best = min(best, smooth)
    finally:
        if restore:
            datas, grads, state, lr = saved
            for p, data, g in zip(params, datas, grads):
                p.data, p.grad = data, g
            optimizer.load_state_dict(state)
            optimizer.lr = lr

    finite = [(s, i) for i, s in enumerate(smoothed) if math.isfinite(s)]
    lowest = min(finite)[1] if finite else 0
    return LRRangeResult(lrs=lrs, losses=losses, smoothed=smoothed, start_loss=start_loss,
                         lr_at_min=lrs[lowest], suggestion=lrs[lowest] / 10, diverged=diverged,
                         stopped_at=len(lrs) - 1 if diverged else None)
