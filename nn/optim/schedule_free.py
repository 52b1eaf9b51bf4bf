"""Schedule-Free optimizers: no learning-rate schedule, because the weights are averaged instead.

A decaying schedule (cosine, linear) makes the last steps small so that the weights settle; it
must know in advance when training ends. Schedule-Free (Defazio et al., 2024, "The Road Less
Scheduled") keeps the step size constant and averages instead. It keeps three sequences:

    z   the plain SGD (or Adam) iterate, which takes the steps:  z = z - lr * g(y)
    x   the running average of the z's:  x = (1 - c) x + c z,  c = weight_t / sum of weights
    y   where the gradient is taken, between the two:  y = (1 - beta) z + beta x

The model holds y while training (`train()`) and x when evaluated (`eval()`): x is an average
of many iterates, so the noise of the single steps cancels in it, as the small final steps of a
schedule would have made it settle; it is the point to evaluate, save and ship. Only y and z
are stored: x is recovered from them when needed. The classes compute the numbers of the
`schedulefree` package (its names, arguments and defaults), except that they start in train
mode: before the first step the sequences coincide, so `train()` would change nothing then.

    >>> from autodiff import Value
    >>> w = Value(1.0)
    >>> opt = SGDScheduleFree([w], lr=0.1)
    >>> for _ in range(20):
    ...     opt.zero_grad(); (w * w).backward(); opt.step()
    >>> opt.eval()                       # the model now holds the average x: evaluate here
    >>> abs(w.data) < 0.1
    True
    >>> opt.train()                      # back to y before the next step

`evaluating()` is the two calls as a context that also puts y back bit for bit: a view that
evaluates the model between steps (the playground's) then changes nothing of the training.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator
from typing import Any

from autodiff import Value
from nn._checks import check_betas, check_bool, check_int, check_non_negative, check_number
from nn.optim.base import Optimizer, ieee_div

__all__ = ["SGDScheduleFree", "AdamWScheduleFree"]


def _lerp(a: float, b: float, w: float) -> float:
    """a + w (b - a), written as torch's lerp is, so that w = 1 gives exactly b."""
    return a + w * (b - a) if abs(w) < 0.5 else b - (b - a) * (1 - w)


class _ScheduleFree(Optimizer):
    """What both rules share: the averaging weights, and the train/eval switch.

    Besides the per-parameter state (z, and Adam's v), the whole run keeps four numbers, saved
    by `state_dict()` under "averaging": k (steps taken), weight_sum, lr_max and train_mode.
    """

    def __init__(self, params: Iterable[Value], lr: float, weight_decay: float,
                 warmup_steps: int, r: float, weight_lr_power: float, maximize: bool) -> None:
        super().__init__(params, lr)
        name = self.name
        self.weight_decay = check_non_negative(name, "weight_decay", weight_decay)
        self.warmup_steps = check_int(name, "warmup_steps", warmup_steps, 0)
        self.r = check_non_negative(name, "r", r)
        self.weight_lr_power = check_non_negative(name, "weight_lr_power", weight_lr_power)
        self.maximize = check_bool(name, "maximize", maximize)
        self.k, self.weight_sum, self.lr_max, self.train_mode = 0, 0.0, -1.0, True

    def _beta(self) -> float:
        """The interpolation constant of y between z and x (momentum, or beta1)."""
        raise NotImplementedError

    def eval(self) -> None:
        """Put x (the average: the point to evaluate) into the parameters."""
        if self.train_mode:
            beta = self._beta()
            for p, state in zip(self.params, self.state):
                if "z" in state:  # x = (y - (1 - beta) z) / beta
                    p.data = _lerp(p.data, state["z"], 1 - 1 / beta)
            self.train_mode = False

    def train(self) -> None:
        """Put y (where the next gradient is taken) back into the parameters."""
        if not self.train_mode:
            beta = self._beta()
            for p, state in zip(self.params, self.state):
                if "z" in state:  # y = (1 - beta) z + beta x
                    p.data = _lerp(p.data, state["z"], 1 - beta)
            self.train_mode = True

    @contextlib.contextmanager
    def evaluating(self) -> Iterator[None]:
        """A context in which the parameters hold x (as after `eval()`); on leaving, they hold
        y again exactly as before, to the last bit (`train()` alone recomputes y from x and z,
        which may round differently), so evaluating the model between steps never changes
        the training.

            with opt.evaluating():
                test_loss = evaluate(model)  # at the averaged point x
        """
        if not self.train_mode:  # already in eval mode: x is there, and stays
            yield
            return
        held = [p.data for p in self.params]
        self.eval()
        try:
            yield
        finally:
            self.train()
            for p, y in zip(self.params, held):
                p.data = y

    def _averaging_weight(self) -> tuple[float, float]:
        """This step's learning rate (after warm-up) and c, the weight of z in the average x.

        The k-th iterate weighs (k + 1)^r * lr_max^weight_lr_power: with r = 0 and no warm-up
        all weigh the same and x is the plain mean of the z's.
        """
        if not self.train_mode:
            raise RuntimeError(f"{self.name}.step: the optimizer is in eval mode (the parameters "
                               "hold the average x); call opt.train() before training on")
        k = self.k
        lr = self.lr * ((k + 1) / self.warmup_steps if k < self.warmup_steps else 1.0)
        self.lr_max = max(lr, self.lr_max)
        weight = (k + 1) ** self.r * self.lr_max ** self.weight_lr_power
        self.weight_sum += weight
        c = weight / self.weight_sum if self.weight_sum != 0 else 0.0
        self.k = k + 1
        return lr, c

    def state_dict(self) -> dict[str, Any]:
        sd = super().state_dict()
        sd["averaging"] = {"k": self.k, "weight_sum": self.weight_sum, "lr_max": self.lr_max,
                           "train_mode": self.train_mode}
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        where = f"{self.name}.load_state_dict"
        saved = state_dict.get("averaging") if isinstance(state_dict, dict) else None
        if not isinstance(saved, dict) or set(saved) != {"k", "weight_sum", "lr_max",
                                                          "train_mode"}:
            raise ValueError(f"{where}: 'averaging' must be a dict of k, weight_sum, lr_max "
                             f"and train_mode, got {saved!r:.80}")
        k = check_int(where, "averaging['k']", saved["k"], 0)
        weight_sum = check_non_negative(where, "averaging['weight_sum']", saved["weight_sum"])
        lr_max = check_number(where, "averaging['lr_max']", saved["lr_max"], finite=True)
        train_mode = check_bool(where, "averaging['train_mode']", saved["train_mode"])
        super().load_state_dict(state_dict)  # checks the rest; raises before changing anything
        self.k, self.weight_sum, self.lr_max, self.train_mode = k, weight_sum, lr_max, train_mode


class SGDScheduleFree(_ScheduleFree):
    """Schedule-Free SGD: SGD steps on z, the model at an average x, gradients at y between.

        opt = SGDScheduleFree(model.parameters(), lr=1.0, momentum=0.9)
        opt.zero_grad(); loss.backward(); opt.step()
        opt.eval(); evaluate(model); opt.train()

    Update for each parameter (the model holds y; z starts at y), with c from the averaging
    weights (see the module docstring) and lr after the linear warm-up of `warmup_steps`:

        g = g + weight_decay * y                          (if weight_decay; at y)
        y = (1 - c) y + c z                               (x moved toward z, seen from y)
        y = y + lr (momentum (1 - c) - 1) g
        z = z - lr g                                      (the plain SGD step)

    The two lines on y move it to (1 - momentum) z_new + momentum x_new without storing x.
    """

    hyperparams = ("lr", "momentum", "weight_decay", "warmup_steps", "r", "weight_lr_power",
                   "maximize")

    def __init__(self, params: Iterable[Value], lr: float = 1.0, momentum: float = 0.9,
                 weight_decay: float = 0.0, warmup_steps: int = 0, r: float = 0.0,
                 weight_lr_power: float = 2.0, *, maximize: bool = False) -> None:
        super().__init__(params, lr, weight_decay, warmup_steps, r, weight_lr_power, maximize)
        self.momentum = check_number(self.name, "momentum", momentum)
        if not 0 < self.momentum < 1:
            raise ValueError(f"{self.name}: invalid momentum={self.momentum!r}, it must be in "
                             "(0, 1)")

    def _beta(self) -> float:
        return self.momentum

    def _state_keys(self) -> dict[str, str] | None:
        return {"z": "number"}

    def step(self) -> None:
        grads = self._gradients()
        lr, c = self._averaging_weight()
        for p, g, state in zip(self.params, grads, self.state):
            if not state:
                state["z"] = p.data
            if self.weight_decay != 0:
                g = g + self.weight_decay * p.data
            p.data = _lerp(p.data, state["z"], c)
            p.data += lr * (self.momentum * (1 - c) - 1) * g
            state["z"] -= lr * g


class AdamWScheduleFree(_ScheduleFree):
    """Schedule-Free AdamW: the same averaging, with Adam's scaled gradient in the steps.

        opt = AdamWScheduleFree(model.parameters(), lr=0.0025, warmup_steps=10)
        opt.zero_grad(); loss.backward(); opt.step()
        opt.eval(); evaluate(model); opt.train()

    Update for each parameter at step t = k + 1 (v starts at 0, z at y):

        v = beta2 * v + (1 - beta2) * g^2
        u = g / (sqrt(v / (1 - beta2^t)) + eps)           (Adam's step without its momentum)
        u = u + weight_decay * y                          (if weight_decay; at y)
        y = (1 - c) y + c z
        y = y + lr (beta1 (1 - c) - 1) u
        z = z - lr u

    beta1 plays the role of SGDScheduleFree's momentum: the averaging replaces Adam's m.
    """

    hyperparams = ("lr", "betas", "eps", "weight_decay", "warmup_steps", "r", "weight_lr_power",
                   "maximize")

    def __init__(self, params: Iterable[Value], lr: float = 0.0025,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, warmup_steps: int = 0, r: float = 0.0,
                 weight_lr_power: float = 2.0, *, maximize: bool = False) -> None:
        super().__init__(params, lr, weight_decay, warmup_steps, r, weight_lr_power, maximize)
        self.betas = check_betas(self.name, betas)
        if self.betas[0] == 0:
            raise ValueError(f"{self.name}: invalid betas[0]=0.0, eval() divides by it")
        self.eps = check_non_negative(self.name, "eps", eps)

    def _beta(self) -> float:
        return self.betas[0]

    def _state_keys(self) -> dict[str, str] | None:
        return {"z": "number", "exp_avg_sq": "non-negative"}

    def step(self) -> None:
        beta1, beta2 = self.betas
        grads = self._gradients()
        bias2 = 1 - beta2 ** (self.k + 1)
        lr, c = self._averaging_weight()
        for p, g, state in zip(self.params, grads, self.state):
            if not state:
                state.update(z=p.data, exp_avg_sq=0.0)
            v = state["exp_avg_sq"] = beta2 * state["exp_avg_sq"] + (1 - beta2) * g * g
            u = ieee_div(g, math.sqrt(v / bias2) + self.eps)
            if self.weight_decay != 0:
                u = u + self.weight_decay * p.data
            p.data = _lerp(p.data, state["z"], c)
            p.data += lr * (beta1 * (1 - c) - 1) * u
            state["z"] -= lr * u
