"""The first-order optimizers: one gradient per step, a little memory per parameter.

SGD, Adam, AdamW, RMSprop and Adagrad, in order of growing complexity; each computes the same
numbers as its namesake in `torch.optim` (same argument names, defaults and formulas), which is
why `to_torch` and `from_torch` can carry any of them across with its state.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from autodiff import Value
from nn._checks import check_betas, check_bool, check_non_negative, check_number
from nn.optim.base import Optimizer, ieee_div

__all__ = ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "TORCH_NAMESAKES"]


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with momentum and weight decay.

        opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
        opt.zero_grad(); loss.backward(); opt.step()
        print(opt.lr)

    Update for each parameter p with gradient g (momentum buffer b, kept per parameter):

        g = g + weight_decay * p                          (if weight_decay)
        b = g on the first step, then momentum * b + (1 - dampening) * g
        g = g + momentum * b if nesterov else b           (if momentum)
        p = p - lr * g

    With `maximize=True` every optimizer here starts from -g instead of g, so it climbs the
    function instead of descending it (torch.optim's `maximize`).
    """

    hyperparams = ("lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize")

    def __init__(self, params: Iterable[Value], lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False, *, maximize: bool = False) -> None:
        super().__init__(params, lr)
        self.momentum = check_non_negative("SGD", "momentum", momentum)
        self.dampening = check_number("SGD", "dampening", dampening, finite=True)
        self.weight_decay = check_non_negative("SGD", "weight_decay", weight_decay)
        self.nesterov = check_bool("SGD", "nesterov", nesterov)
        self.maximize = check_bool("SGD", "maximize", maximize)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("SGD: nesterov=True needs momentum > 0 and dampening = 0, got "
                             f"momentum={self.momentum!r}, dampening={self.dampening!r}")

    def _state_keys(self) -> dict[str, str] | None:
        return {"momentum_buffer": "number"} if self.momentum != 0 else {}

    def step(self) -> None:
        for p, g, state in zip(self.params, self._gradients(), self.state):
            if self.weight_decay != 0:
                g = g + self.weight_decay * p.data  # the gradient of (wd / 2) * p^2
            if self.momentum != 0:
                if "momentum_buffer" not in state:
                    buf = g  # first step: the buffer starts as the gradient, undampened
                else:
                    buf = self.momentum * state["momentum_buffer"] + (1 - self.dampening) * g
                state["momentum_buffer"] = buf
                g = g + self.momentum * buf if self.nesterov else buf
            p.data -= self.lr * g  # the whole idea: p.data -= lr * p.grad


class Adam(Optimizer):
    """Adam: a step from running averages of the gradient and of its square.

        opt = Adam(model.parameters(), lr=1e-3)
        opt.zero_grad(); loss.backward(); opt.step()
        print(opt.state[0]["exp_avg"])

    Update for each parameter p with gradient g at step t = 1, 2, ... (m, v kept per parameter,
    both starting at 0):

        g = g + weight_decay * p                          (if weight_decay, not decoupled)
        p = p * (1 - lr * weight_decay)                   (if weight_decay, decoupled: AdamW)
        m = beta1 * m + (1 - beta1) * g                   (average gradient: the direction)
        v = beta2 * v + (1 - beta2) * g^2                 (average square: the scale)
        v_max = max(v_max, v); use v_max for v            (if amsgrad)
        p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    m and v start at 0, so early averages are too small; dividing by 1 - beta^t (the "bias
    correction") undoes that. Note that eps is added after the bias correction of sqrt(v).
    """

    hyperparams = ("lr", "betas", "eps", "weight_decay", "amsgrad", "decoupled_weight_decay",
                   "maximize")

    def __init__(self, params: Iterable[Value], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False,
                 decoupled_weight_decay: bool = False, *, maximize: bool = False) -> None:
        super().__init__(params, lr)
        name = self.name
        self.betas = check_betas(name, betas)
        self.eps = check_non_negative(name, "eps", eps)
        self.weight_decay = check_non_negative(name, "weight_decay", weight_decay)
        self.amsgrad = check_bool(name, "amsgrad", amsgrad)
        self.decoupled_weight_decay = check_bool(name, "decoupled_weight_decay",
                                                 decoupled_weight_decay)
        self.maximize = check_bool(name, "maximize", maximize)

    def _state_keys(self) -> dict[str, str] | None:
        keys = {"step": "int", "exp_avg": "number", "exp_avg_sq": "non-negative"}
        if self.amsgrad:
            keys["max_exp_avg_sq"] = "non-negative"
        return keys

    def step(self) -> None:
        beta1, beta2 = self.betas
        for p, g, state in zip(self.params, self._gradients(), self.state):
            if not state:
                state.update(step=0, exp_avg=0.0, exp_avg_sq=0.0)
                if self.amsgrad:
                    state["max_exp_avg_sq"] = 0.0
            state["step"] += 1
            t = state["step"]
            if self.weight_decay != 0:
                if self.decoupled_weight_decay:
                    p.data *= 1 - self.lr * self.weight_decay  # shrink p itself (AdamW)
                else:
                    g = g + self.weight_decay * p.data  # add to the gradient (L2 penalty)
            m = state["exp_avg"] = beta1 * state["exp_avg"] + (1 - beta1) * g
            v = state["exp_avg_sq"] = beta2 * state["exp_avg_sq"] + (1 - beta2) * g * g
            if self.amsgrad:
                v = state["max_exp_avg_sq"] = max(state["max_exp_avg_sq"], v)
            step_size = self.lr / (1 - beta1 ** t)
            denom = math.sqrt(v) / math.sqrt(1 - beta2 ** t) + self.eps
            p.data -= step_size * ieee_div(m, denom)  # (0/0 only when eps = 0 and v = 0)


class AdamW(Adam):
    """Adam with decoupled weight decay: p shrinks by lr * weight_decay * p at every step.

        opt = AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
        opt.zero_grad(); loss.backward(); opt.step()
        print(opt.weight_decay)

    Update: first p = p * (1 - lr * weight_decay), then exactly Adam's step without weight
    decay in the gradient. Adam with weight_decay adds weight_decay * p to g, which the division
    by sqrt(v) then rescales; AdamW keeps the decay out of the averages, so every weight decays
    at the same rate whatever its gradient history.
    """

    hyperparams = ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize")

    def __init__(self, params: Iterable[Value], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, decoupled_weight_decay=True, maximize=maximize)


class RMSprop(Optimizer):
    """RMSprop: divide the gradient by the root of a running average of its square.

        opt = RMSprop(model.parameters(), lr=1e-2)
        opt.zero_grad(); loss.backward(); opt.step()
        print(opt.state[0]["square_avg"])

    Update for each parameter p with gradient g (v, g_avg, b kept per parameter, start at 0):

        g = g + weight_decay * p                          (if weight_decay)
        v = alpha * v + (1 - alpha) * g^2
        g_avg = alpha * g_avg + (1 - alpha) * g           (if centered)
        avg = sqrt(v - g_avg^2) + eps if centered else sqrt(v) + eps
        b = momentum * b + g / avg; p = p - lr * b        (if momentum > 0)
        p = p - lr * g / avg                              (otherwise)

    Weights with large gradients take smaller steps and the reverse; `centered` divides by an
    estimate of the gradient's standard deviation instead of its root mean square.
    """

    hyperparams = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered", "maximize")

    def __init__(self, params: Iterable[Value], lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0,
                 centered: bool = False, *, maximize: bool = False) -> None:
        super().__init__(params, lr)
        self.alpha = check_non_negative("RMSprop", "alpha", alpha)
        if self.alpha > 1:
            # torch accepts it, but then the average of squares can turn negative and the
            # step is nan: refuse it here.
            raise ValueError(f"RMSprop: invalid alpha={self.alpha!r}, it must be in [0, 1]")
        self.eps = check_non_negative("RMSprop", "eps", eps)
        self.weight_decay = check_non_negative("RMSprop", "weight_decay", weight_decay)
        self.momentum = check_non_negative("RMSprop", "momentum", momentum)
        self.centered = check_bool("RMSprop", "centered", centered)
        self.maximize = check_bool("RMSprop", "maximize", maximize)

    def _state_keys(self) -> dict[str, str] | None:
        keys = {"step": "int", "square_avg": "non-negative"}
        if self.momentum > 0:
            keys["momentum_buffer"] = "number"
        if self.centered:
            keys["grad_avg"] = "number"
        return keys

    def step(self) -> None:
        alpha = self.alpha
        for p, g, state in zip(self.params, self._gradients(), self.state):
            if not state:
                state.update(step=0, square_avg=0.0)
                if self.momentum > 0:
                    state["momentum_buffer"] = 0.0
                if self.centered:
                    state["grad_avg"] = 0.0
            state["step"] += 1
            if self.weight_decay != 0:
                g = g + self.weight_decay * p.data
            v = state["square_avg"] = alpha * state["square_avg"] + (1 - alpha) * g * g
            if self.centered:
                g_avg = state["grad_avg"] = alpha * state["grad_avg"] + (1 - alpha) * g
                # v - g_avg^2 is a variance, >= 0 in exact arithmetic; max() guards rounding.
                avg = math.sqrt(max(v - g_avg * g_avg, 0.0)) + self.eps
            else:
                avg = math.sqrt(v) + self.eps
            if self.momentum > 0:
                buf = state["momentum_buffer"] = (self.momentum * state["momentum_buffer"]
                                                  + ieee_div(g, avg))
                p.data -= self.lr * buf
            else:
                p.data -= self.lr * ieee_div(g, avg)


class Adagrad(Optimizer):
    """Adagrad: divide the gradient by the root of the sum of all its past squares.

        opt = Adagrad(model.parameters(), lr=1e-2)
        opt.zero_grad(); loss.backward(); opt.step()
        print(opt.state[0]["sum"])

    Update for each parameter p with gradient g at step t = 1, 2, ... (s kept per parameter,
    starting at initial_accumulator_value):

        g = g + weight_decay * p                          (if weight_decay)
        clr = lr / (1 + (t - 1) * lr_decay)               (the decayed learning rate)
        s = s + g^2
        p = p - clr * g / (sqrt(s) + eps)

    The sum only grows, so every weight's step keeps shrinking; weights that saw large gradients
    slow down first.
    """

    hyperparams = ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps",
                   "maximize")

    def __init__(self, params: Iterable[Value], lr: float = 1e-2, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10, *, maximize: bool = False) -> None:
        super().__init__(params, lr)
        self.lr_decay = check_non_negative("Adagrad", "lr_decay", lr_decay)
        self.weight_decay = check_non_negative("Adagrad", "weight_decay", weight_decay)
        self.initial_accumulator_value = check_non_negative(
            "Adagrad", "initial_accumulator_value", initial_accumulator_value)
        self.eps = check_non_negative("Adagrad", "eps", eps)
        self.maximize = check_bool("Adagrad", "maximize", maximize)

    def _state_keys(self) -> dict[str, str] | None:
        return {"step": "int", "sum": "non-negative"}

    def step(self) -> None:
        for p, g, state in zip(self.params, self._gradients(), self.state):
            if not state:
                state.update(step=0, sum=self.initial_accumulator_value)
            state["step"] += 1
            if self.weight_decay != 0:
                g = g + self.weight_decay * p.data
            clr = self.lr / (1 + (state["step"] - 1) * self.lr_decay)
            s = state["sum"] = state["sum"] + g * g
            p.data -= clr * ieee_div(g, math.sqrt(s) + self.eps)


#: The optimizers with a torch.optim namesake of the same numbers: what `to_torch` and
#: `from_torch` can carry across (exactly these classes, not subclasses).
TORCH_NAMESAKES: tuple[type[Optimizer], ...] = (SGD, Adam, AdamW, RMSprop, Adagrad)
