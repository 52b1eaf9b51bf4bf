"""Learning-rate schedules: change the optimizer's `lr` as training goes on.

A schedule owns no weights and no gradients; all it does is set `optimizer.lr` once per epoch
(or per step, as you choose), usually large early to make progress and small late to settle.
Call `sched.step()` after `opt.step()`; the numbers equal `torch.optim.lr_scheduler`'s.

    >>> from autodiff import Value
    >>> from nn.optim import SGD
    >>> opt = SGD([Value(1.0)], lr=0.1)
    >>> sched = StepLR(opt, step_size=2, gamma=0.5)
    >>> lrs = []
    >>> for epoch in range(6):
    ...     lrs.append(opt.lr)   # ... train one epoch with this lr: opt.step() ...
    ...     sched.step()
    >>> lrs
    [0.1, 0.1, 0.05, 0.05, 0.025, 0.025]

The one idea: like PyTorch, most schedules here are *chainable*: each step computes the new lr
from the current `optimizer.lr` (multiply by gamma, ...) rather than from scratch, so a change
you make to `opt.lr` by hand carries on. Each docstring also gives the closed form, which is
what you get when nobody else touches the lr.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from nn._checks import check_int, check_non_negative, check_number
from nn.optim import Optimizer

__all__ = [
    "LRScheduler",
    "StepLR",
    "MultiStepLR",
    "ExponentialLR",
    "CosineAnnealingLR",
    "LinearLR",
    "LambdaLR",
]


class LRScheduler:
    """Base class: remembers the epoch and the starting lr, and sets `optimizer.lr` each step.

    `last_epoch=-1` (the default) starts a fresh schedule: the optimizer's current lr becomes
    `base_lr` (kept in `optimizer.initial_lr`) and the lr for epoch 0 is set at once. A larger
    `last_epoch` continues a schedule from that epoch; it needs `optimizer.initial_lr`, which
    the optimizer's `load_state_dict` restores. To resume from a file, build the optimizer and
    the schedule as at the start, then load both states.
    """

    # Names of the settings a subclass saves in state_dict() (besides the epoch and lrs).
    settings: tuple[str, ...] = ()

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{self.name}: optimizer must be an nn.optim.Optimizer, "
                            f"got {type(optimizer).__name__}")
        last_epoch = check_int(self.name, "last_epoch", last_epoch, -1)
        if last_epoch == -1:
            if optimizer.initial_lr is None:
                optimizer.initial_lr = optimizer.lr
        elif optimizer.initial_lr is None:
            raise ValueError(f"{self.name}: last_epoch={last_epoch} resumes a schedule, which "
                             "needs optimizer.initial_lr; load the optimizer's saved state first")
        self.optimizer = optimizer
        self.base_lr: float = optimizer.initial_lr
        self.last_epoch = last_epoch
        # The first step moves to the starting epoch and sets its lr; `_initial` lets get_lr()
        # tell that step apart (torch does the same).
        self._initial = True
        self.step()
        self._initial = False

    @property
    def name(self) -> str:
        return type(self).__name__

    def get_lr(self) -> float:
        """The lr for epoch `self.last_epoch`, computed from the current `optimizer.lr`."""
        raise NotImplementedError

    def step(self) -> None:
        """Move to the next epoch and set `optimizer.lr` for it.

        If the new lr is refused (LambdaLR's function raised or returned a bad factor), the
        schedule stays at its epoch and the optimizer keeps its lr.
        """
        self.last_epoch += 1
        try:
            self.optimizer.lr = self.get_lr()
        except BaseException:
            self.last_epoch -= 1
            raise
        self._last_lr = self.optimizer.lr

    def get_last_lr(self) -> list[float]:
        """The lr set by the last step, as a one-element list (torch: one per param group)."""
        return [self._last_lr]

    def state_dict(self) -> dict[str, Any]:
        """The schedule's position and settings, as plain JSON-serialisable data."""
        state = {"schedule": self.name, "last_epoch": self.last_epoch, "base_lr": self.base_lr,
                 "last_lr": self._last_lr}
        state.update({name: getattr(self, name) for name in self.settings})
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what `state_dict()` saved (the optimizer's lr comes from its own state)."""
        where = f"{self.name}.load_state_dict"
        if not isinstance(state_dict, dict) or state_dict.get("schedule") != self.name:
            found = state_dict.get("schedule") if isinstance(state_dict, dict) else state_dict
            raise ValueError(f"{where}: expected the state of a {self.name}, got {found!r}")
        for key in ("last_epoch", "base_lr", "last_lr", *self.settings):
            if key not in state_dict:
                raise ValueError(f"{where}: the {key!r} field is missing")
        # Check everything first, assign after: a bad state leaves the schedule as it was.
        checked = {
            "last_epoch": check_int(where, "last_epoch", state_dict["last_epoch"], 0),
            "base_lr": check_non_negative(where, "base_lr", state_dict["base_lr"]),
            "_last_lr": check_non_negative(where, "last_lr", state_dict["last_lr"]),
        }
        for name in self.settings:
            # Check each saved setting against the kind of value it replaces.
            value, current = state_dict[name], getattr(self, name)
            if isinstance(current, list):
                if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
                    raise TypeError(f"{where}: {name} must be a list of ints, got {value!r}")
                value = sorted(check_int(where, f"{name}[{i}]", m, 0)
                               for i, m in enumerate(value))
            elif isinstance(current, int):
                value = check_int(where, name, value, 1)
            else:
                value = check_non_negative(where, name, value)
            checked[name] = value
        for name, value in checked.items():
            setattr(self, name, value)

    def __repr__(self) -> str:
        args = "".join(f", {name}={getattr(self, name)!r}" for name in self.settings)
        return f"{self.name}(last_epoch={self.last_epoch}{args})"


class StepLR(LRScheduler):
    """Multiply the lr by `gamma` every `step_size` epochs.

        opt = SGD(params, lr=0.1)
        sched = StepLR(opt, step_size=30, gamma=0.1)
        for epoch in range(100): train(...); sched.step()

    Closed form: lr = base_lr * gamma ** (epoch // step_size).
    """

    settings = ("step_size", "gamma")

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        self.step_size = check_int("StepLR", "step_size", step_size, 1)
        self.gamma = check_non_negative("StepLR", "gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> float:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self.optimizer.lr
        return self.optimizer.lr * self.gamma


class MultiStepLR(LRScheduler):
    """Multiply the lr by `gamma` at each epoch listed in `milestones`.

        opt = SGD(params, lr=0.1)
        sched = MultiStepLR(opt, milestones=[30, 80], gamma=0.1)
        for epoch in range(100): train(...); sched.step()

    Closed form: lr = base_lr * gamma ** (number of milestones <= epoch). A milestone listed
    twice counts twice.
    """

    settings = ("milestones", "gamma")

    def __init__(self, optimizer: Optimizer, milestones: Iterable[int], gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        if isinstance(milestones, (str, bytes)) or not isinstance(milestones, Iterable):
            raise TypeError(f"MultiStepLR: milestones must be a list of ints, got {milestones!r}")
        # Kept sorted, as a list (JSON has no Counter); a repeated milestone stays repeated.
        self.milestones = sorted(
            check_int("MultiStepLR", "milestone", m, 0) for m in milestones)
        self.gamma = check_non_negative("MultiStepLR", "gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> float:
        times = Counter(self.milestones)[self.last_epoch]
        if times == 0:
            return self.optimizer.lr
        return self.optimizer.lr * self.gamma ** times


class ExponentialLR(LRScheduler):
    """Multiply the lr by `gamma` every epoch.

        opt = SGD(params, lr=0.1)
        sched = ExponentialLR(opt, gamma=0.95)
        for epoch in range(100): train(...); sched.step()

    Closed form: lr = base_lr * gamma ** epoch.
    """

    settings = ("gamma",)

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = check_non_negative("ExponentialLR", "gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> float:
        if self._initial:
            return self.optimizer.lr
        return self.optimizer.lr * self.gamma


class CosineAnnealingLR(LRScheduler):
    """Follow half a cosine from base_lr down to `eta_min` over `T_max` epochs.

        opt = SGD(params, lr=0.1)
        sched = CosineAnnealingLR(opt, T_max=50, eta_min=1e-4)
        for epoch in range(50): train(...); sched.step()

    Closed form: lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2.
    Past T_max the cosine carries on, so the lr climbs back up over the next T_max epochs.
    """

    settings = ("T_max", "eta_min")

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0,
                 last_epoch: int = -1) -> None:
        self.T_max = check_int("CosineAnnealingLR", "T_max", T_max, 1)
        self.eta_min = check_non_negative("CosineAnnealingLR", "eta_min", eta_min)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> float:
        lr, epoch, T, eta_min = self.optimizer.lr, self.last_epoch, self.T_max, self.eta_min
        if self._initial:
            return lr
        if (epoch - 1 - T) % (2 * T) == 0:
            # Just past the bottom of the cosine, where the ratio below would divide by 0:
            # add the first rise of the curve instead.
            return lr + (self.base_lr - eta_min) * (1 - math.cos(math.pi / T)) / 2
        # Chainable form of the closed form: (lr - eta_min) scales by the ratio of successive
        # (1 + cos) terms, which gives the same numbers when nobody else changes the lr.
        ratio = (1 + math.cos(math.pi * epoch / T)) / (1 + math.cos(math.pi * (epoch - 1) / T))
        return ratio * (lr - eta_min) + eta_min


class LinearLR(LRScheduler):
    """Warm-up: scale the lr linearly from start_factor * base_lr to end_factor * base_lr.

        opt = SGD(params, lr=0.1)
        sched = LinearLR(opt, start_factor=0.1, total_iters=10)   # 0.01, 0.019, ... 0.1
        for step in range(100): train(...); sched.step()

    Closed form: lr = base_lr * (start_factor + (end_factor - start_factor)
    * min(epoch, total_iters) / total_iters); after total_iters epochs the lr stays put.
    """

    settings = ("start_factor", "end_factor", "total_iters")

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3,
                 end_factor: float = 1.0, total_iters: int = 5, last_epoch: int = -1) -> None:
        self.start_factor = check_number("LinearLR", "start_factor", start_factor)
        self.end_factor = check_number("LinearLR", "end_factor", end_factor)
        if not 0.0 < self.start_factor <= 1.0:
            raise ValueError(f"LinearLR: invalid start_factor={self.start_factor!r}, "
                             "it must be in (0, 1]")
        if not 0.0 <= self.end_factor <= 1.0:
            raise ValueError(f"LinearLR: invalid end_factor={self.end_factor!r}, "
                             "it must be in [0, 1]")
        self.total_iters = check_int("LinearLR", "total_iters", total_iters, 1)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> float:
        lr, epoch = self.optimizer.lr, self.last_epoch
        if epoch == 0:
            return lr * self.start_factor
        if self._initial or epoch > self.total_iters:
            return lr
        # Chainable form: the ratio of this epoch's factor to the previous one.
        slope = self.end_factor - self.start_factor
        return lr * (1.0 + slope / (self.total_iters * self.start_factor + (epoch - 1) * slope))


class LambdaLR(LRScheduler):
    """Set the lr to base_lr times a factor your function computes from the epoch.

        opt = SGD(params, lr=0.1)
        sched = LambdaLR(opt, lr_lambda=lambda epoch: 0.95 ** epoch)
        for epoch in range(100): train(...); sched.step()

    lr = base_lr * lr_lambda(epoch). Not chainable: the factor always multiplies base_lr.
    state_dict() cannot save the function; pass the same one when you resume.
    """

    def __init__(self, optimizer: Optimizer, lr_lambda: Callable[[int], float],
                 last_epoch: int = -1) -> None:
        if not callable(lr_lambda):
            raise TypeError(f"LambdaLR: lr_lambda must be a function of the epoch, "
                            f"got {type(lr_lambda).__name__}: {lr_lambda!r}")
        self.lr_lambda = lr_lambda
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> float:
        factor = self.lr_lambda(self.last_epoch)
        return self.base_lr * check_non_negative("LambdaLR", f"lr_lambda({self.last_epoch})",
                                                 factor)
