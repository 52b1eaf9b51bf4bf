"""Optimizers: what to do with a gradient once `backward()` has computed it.

Every optimizer here answers one question: given each parameter's `.grad`, how far should its
`.data` move? The plainest answer is `p.data -= lr * p.grad` (SGD); the others keep a little
memory per parameter (a running average of past gradients, or of their squares) and use it to
choose a better step. The classes go in order of growing complexity, and each one computes the
same numbers as its namesake in `torch.optim` (same argument names, defaults and formulas).

The loop is always the same three lines:

    >>> from autodiff import Value
    >>> w = Value(3.0)
    >>> opt = SGD([w], lr=0.1)
    >>> for _ in range(2):
    ...     opt.zero_grad()          # forget the previous gradient
    ...     loss = w * w             # forward
    ...     loss.backward()          # w.grad = d loss / d w = 2 w
    ...     opt.step()               # w.data -= 0.1 * w.grad
    >>> round(w.data, 6)             # 3 -> 2.4 -> 1.92
    1.92

Optimizers work on plain floats: an update changes `p.data` in place and builds no graph.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Real
from typing import Any

from autodiff import Value

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "clip_grad_norm"]


def _grad_of(p: Value) -> float:
    """The gradient of `p` as a float (after `backward(create_graph=True)` it is a Value)."""
    g = p.grad
    return g.data if isinstance(g, Value) else float(g)


def _check_number(owner: str, name: str, value: Any) -> float:
    """Raise TypeError unless `value` is a real number; return it as a float."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{owner}: {name} must be a number, got {type(value).__name__}: {value!r}")
    return float(value)


def _check_non_negative(owner: str, name: str, value: Any) -> float:
    value = _check_number(owner, name, value)
    # `not value >= 0` also rejects NaN.
    if not value >= 0.0:
        raise ValueError(f"{owner}: invalid {name}={value!r}, it must be >= 0")
    return value


def _check_params(owner: str, params: Any, allow_empty: bool = False) -> list[Value]:
    """Turn `params` into a list of distinct leaf Values, keeping the order the caller gave."""
    if isinstance(params, Value):
        raise TypeError(f"{owner}: params must be an iterable of Values, got a single Value; "
                        "wrap it in a list: [v]")
    if isinstance(params, (set, frozenset)):
        # A set's order can change from run to run, and the state is stored by position.
        raise TypeError(f"{owner}: params must be an ordered collection (a list), not a set: "
                        "the state of each parameter is stored by its position")
    try:
        params = list(params)
    except TypeError:
        raise TypeError(f"{owner}: params must be an iterable of Values, "
                        f"got {type(params).__name__}") from None
    if not params and not allow_empty:
        raise ValueError(f"{owner}: got an empty parameter list")
    seen: dict[int, int] = {}
    for i, p in enumerate(params):
        if not isinstance(p, Value):
            raise TypeError(f"{owner}: params[{i}] must be a Value, "
                            f"got {type(p).__name__}: {p!r}")
        if p.parents:
            # Changing the data of a computed node would not change what it was computed from.
            raise ValueError(f"{owner}: params[{i}] was computed by {p.op!r}; only leaf Values "
                             "(weights you created, not results of operations) can be optimized")
        if id(p) in seen:
            raise ValueError(f"{owner}: params[{i}] is the same Value as params[{seen[id(p)]}]; "
                             "each parameter must appear only once")
        seen[id(p)] = i
    return params


# ---- to and from torch.optim: doors to nn/torch_bridge.py, which imports torch only when called


def to_torch(opt: Optimizer, torch_params: Any) -> Any:
    """The torch.optim optimizer that continues where `opt` stands: same settings and state.

        torch_opt = nn.optim.to_torch(opt, model.to_torch().parameters())

    Details and errors: `nn.torch_bridge.optimizer_to_torch`.
    """
    from nn.torch_bridge import optimizer_to_torch

    return optimizer_to_torch(opt, torch_params)


def from_torch(torch_opt: Any, params: Iterable[Value]) -> Optimizer:
    """The chainrule optimizer that continues where a torch.optim one stands (the way back).

        opt = nn.optim.from_torch(torch_opt, model.parameters())

    Details and errors: `nn.torch_bridge.optimizer_from_torch`.
    """
    from nn.torch_bridge import optimizer_from_torch

    return optimizer_from_torch(torch_opt, params)


class Optimizer:
    """Base class: holds the parameters, the learning rate and per-parameter state.

    `params` is fixed at construction, in the order given; `state[i]` is a dict of floats for
    `params[i]` (empty until the first step). A subclass lists its hyper-parameters in
    `hyperparams` and implements `step()`.
    """

    hyperparams: tuple[str, ...] = ("lr",)

    def __init__(self, params: Iterable[Value], lr: float) -> None:
        self.params: list[Value] = _check_params(self.name, params)
        self.lr = lr  # validated by the property below
        self.state: list[dict[str, float]] = [{} for _ in self.params]
        # Set by a learning-rate schedule the first time one is attached (torch's initial_lr).
        self.initial_lr: float | None = None

    @property
    def name(self) -> str:
        return type(self).__name__

    @property
    def lr(self) -> float:
        """The learning rate; you (or a schedule) may change it between steps."""
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        self._lr = _check_non_negative(self.name, "learning rate lr", value)

    def zero_grad(self) -> None:
        """Set every parameter's gradient to 0, because `backward()` adds to `.grad`."""
        for p in self.params:
            p.grad = 0.0

    def step(self) -> None:
        """Update every parameter's `.data` from its `.grad`."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume training, as plain JSON-serialisable data."""
        return {
            "optimizer": self.name,
            "hyperparams": {name: getattr(self, name) for name in self.hyperparams},
            "initial_lr": self.initial_lr,
            "state": [dict(s) for s in self.state],
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore hyper-parameters and per-parameter state saved by `state_dict()`."""
        where = f"{self.name}.load_state_dict"
        if not isinstance(state_dict, dict) or state_dict.get("optimizer") != self.name:
            found = state_dict.get("optimizer") if isinstance(state_dict, dict) else state_dict
            raise ValueError(f"{where}: expected the state of a {self.name}, got {found!r}")
        state = state_dict["state"]
        if len(state) != len(self.params):
            raise ValueError(f"{where}: the state has {len(state)} parameters, "
                             f"this optimizer has {len(self.params)}")
        for i, s in enumerate(state):
            if not isinstance(s, dict) or not all(isinstance(v, Real) for v in s.values()):
                raise ValueError(f"{where}: state[{i}] must be a dict of numbers, got {s!r}")
        # Building a fresh optimizer from the saved hyper-parameters checks them with the same
        # rules and messages as the constructor (and turns JSON lists back into tuples).
        checked = type(self)(self.params, **state_dict["hyperparams"])
        for name in self.hyperparams:
            setattr(self, name, getattr(checked, name))
        self.initial_lr = state_dict.get("initial_lr")
        self.state = [dict(s) for s in state]

    def __repr__(self) -> str:
        args = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.hyperparams)
        return f"{self.name}({len(self.params)} params, {args})"


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
    """

    hyperparams = ("lr", "momentum", "dampening", "weight_decay", "nesterov")

    def __init__(self, params: Iterable[Value], lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False) -> None:
        super().__init__(params, lr)
        self.momentum = _check_non_negative("SGD", "momentum", momentum)
        self.dampening = _check_number("SGD", "dampening", dampening)
        self.weight_decay = _check_non_negative("SGD", "weight_decay", weight_decay)
        self.nesterov = bool(nesterov)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("SGD: nesterov=True needs momentum > 0 and dampening = 0, got "
                             f"momentum={self.momentum!r}, dampening={self.dampening!r}")

    def step(self) -> None:
        for p, state in zip(self.params, self.state):
            g = _grad_of(p)
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

    hyperparams = ("lr", "betas", "eps", "weight_decay", "amsgrad", "decoupled_weight_decay")

    def __init__(self, params: Iterable[Value], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False,
                 decoupled_weight_decay: bool = False) -> None:
        super().__init__(params, lr)
        name = self.name
        if isinstance(betas, (str, bytes)) or not hasattr(betas, "__len__") or len(betas) != 2:
            raise TypeError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
        beta1 = _check_number(name, "betas[0]", betas[0])
        beta2 = _check_number(name, "betas[1]", betas[1])
        for i, beta in enumerate((beta1, beta2)):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"{name}: invalid betas[{i}]={beta!r}, it must be in [0, 1)")
        self.betas = (beta1, beta2)
        self.eps = _check_non_negative(name, "eps", eps)
        self.weight_decay = _check_non_negative(name, "weight_decay", weight_decay)
        self.amsgrad = bool(amsgrad)
        self.decoupled_weight_decay = bool(decoupled_weight_decay)

    def step(self) -> None:
        beta1, beta2 = self.betas
        for p, state in zip(self.params, self.state):
            g = _grad_of(p)
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
            p.data -= step_size * m / denom


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

    hyperparams = ("lr", "betas", "eps", "weight_decay", "amsgrad")

    def __init__(self, params: Iterable[Value], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, decoupled_weight_decay=True)


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

    hyperparams = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered")

    def __init__(self, params: Iterable[Value], lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0,
                 centered: bool = False) -> None:
        super().__init__(params, lr)
        self.alpha = _check_non_negative("RMSprop", "alpha", alpha)
        self.eps = _check_non_negative("RMSprop", "eps", eps)
        self.weight_decay = _check_non_negative("RMSprop", "weight_decay", weight_decay)
        self.momentum = _check_non_negative("RMSprop", "momentum", momentum)
        self.centered = bool(centered)

    def step(self) -> None:
        alpha = self.alpha
        for p, state in zip(self.params, self.state):
            g = _grad_of(p)
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
                buf = state["momentum_buffer"] = self.momentum * state["momentum_buffer"] + g / avg
                p.data -= self.lr * buf
            else:
                p.data -= self.lr * g / avg


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

    hyperparams = ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps")

    def __init__(self, params: Iterable[Value], lr: float = 1e-2, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10) -> None:
        super().__init__(params, lr)
        self.lr_decay = _check_non_negative("Adagrad", "lr_decay", lr_decay)
        self.weight_decay = _check_non_negative("Adagrad", "weight_decay", weight_decay)
        self.initial_accumulator_value = _check_non_negative(
            "Adagrad", "initial_accumulator_value", initial_accumulator_value)
        self.eps = _check_non_negative("Adagrad", "eps", eps)

    def step(self) -> None:
        for p, state in zip(self.params, self.state):
            g = _grad_of(p)
            if not state:
                state.update(step=0, sum=self.initial_accumulator_value)
            state["step"] += 1
            if self.weight_decay != 0:
                g = g + self.weight_decay * p.data
            clr = self.lr / (1 + (state["step"] - 1) * self.lr_decay)
            s = state["sum"] = state["sum"] + g * g
            p.data -= clr * g / (math.sqrt(s) + self.eps)


def clip_grad_norm(params: Iterable[Value], max_norm: float, norm_type: float = 2.0) -> float:
    """Scale all gradients down together so that their joint norm is at most `max_norm`.

        loss.backward()
        clip_grad_norm(model.parameters(), max_norm=1.0)
        opt.step()

    The norm is taken over all gradients as one vector, (sum |g|^norm_type)^(1/norm_type), or
    max |g| for `norm_type=float("inf")`. When it exceeds `max_norm`, every gradient is multiplied
    by max_norm / (norm + 1e-6); the direction of the step is kept, only its length shrinks.
    Returns the norm before clipping.
    """
    params = _check_params("clip_grad_norm", params, allow_empty=True)
    max_norm = _check_number("clip_grad_norm", "max_norm", max_norm)
    norm_type = _check_number("clip_grad_norm", "norm_type", norm_type)
    if not norm_type > 0:
        raise ValueError(f"clip_grad_norm: norm_type must be > 0, got {norm_type!r}")
    grads = [_grad_of(p) for p in params]
    if not grads:
        return 0.0
    if norm_type == math.inf:
        total = max(abs(g) for g in grads)
    else:
        total = sum(abs(g) ** norm_type for g in grads) ** (1.0 / norm_type)
    scale = max_norm / (total + 1e-6)
    if scale < 1.0:
        for p, g in zip(params, grads):
            p.grad = g * scale
    return total
