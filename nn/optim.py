"""Optimizers: what to do with a gradient once `backward()` has computed it.

Every optimizer here answers one question: given each parameter's `.grad`, how far should its
`.data` move? The plainest answer is `p.data -= lr * p.grad` (SGD); the others keep a little
memory per parameter (a running average of past gradients, or of their squares) and use it to
choose a better step. The classes go in order of growing complexity, and each one with a
namesake in `torch.optim` (SGD to Adagrad, LBFGS) computes the same numbers as it (same argument
names, defaults and formulas).

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
Each one also takes `maximize=True`, as in torch.optim: it then starts from -g instead of g
and climbs the function. A step reads (and checks) every gradient before it moves any weight,
so a bad `.grad` stops it with nothing changed.

The methods after them (`LBFGS`, `ConjugateGradient`, `CMAES`, `EvolutionStrategy`, all
`ClosureOptimizer`s) evaluate the loss several times per step, so their `step(closure)` takes a
function that computes it, as `torch.optim.LBFGS` does; CMA-ES and the evolution strategy need
only the loss's value, never a gradient.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable, Iterable, Sequence
from numbers import Real
from typing import Any

from autodiff import Value, is_grad_enabled, no_grad
from nn._checks import (check_betas, check_bool, check_choice, check_int, check_non_negative,
                        check_number, check_seed)
from nn._checks import grad_of as _grad_of  # the one reader of p.grad in nn
from nn.linesearch import dot, strong_wolfe
from nn.torch_bridge import optimizer_from_torch, optimizer_to_torch  # torch only when called

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "clip_grad_norm",
           "ClosureOptimizer", "LBFGS", "ConjugateGradient", "CMAES", "EvolutionStrategy"]



def _div(a: float, b: float) -> float:
    """a / b with IEEE results where Python raises: 0/0 is nan and x/0 is +-inf, as in torch.

    Only reachable with eps=0 and a zero denominator; an update must never stop half-way.
    """
    try:
        return a / b
    except ZeroDivisionError:
        return math.nan if a == 0 or a != a else math.copysign(math.inf, a) * math.copysign(1, b)


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
# (TORCH_NAMESAKES, defined after the classes, names the ones the bridge may build or read)


def to_torch(opt: Optimizer, torch_params: Any) -> Any:
    """The torch.optim optimizer that continues where `opt` stands: same settings and state.

        torch_opt = nn.optim.to_torch(opt, model.to_torch().parameters())

    Details and errors: `nn.torch_bridge.optimizer_to_torch`.
    """
    return optimizer_to_torch(opt, torch_params, TORCH_NAMESAKES)


def from_torch(torch_opt: Any, params: Iterable[Value]) -> Optimizer:
    """The chainrule optimizer that continues where a torch.optim one stands (the way back).

        opt = nn.optim.from_torch(torch_opt, model.parameters())

    Details and errors: `nn.torch_bridge.optimizer_from_torch`.
    """
    return optimizer_from_torch(torch_opt, params, TORCH_NAMESAKES)


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
        self._lr = check_non_negative(self.name, "learning rate lr", value)

    def zero_grad(self) -> None:
        """Set every parameter's gradient to 0, because `backward()` adds to `.grad`."""
        for p in self.params:
            p.grad = 0.0

    def step(self) -> None:
        """Update every parameter's `.data` from its `.grad`."""
        raise NotImplementedError

    def _gradients(self) -> list[float]:
        """Every parameter's gradient as a float, negated when `maximize` is set.

        All are read (and checked) before any parameter changes, so a bad `.grad` stops the
        step before it starts instead of half-way through the parameters.
        """
        grads = [_grad_of(p, self.name, i) for i, p in enumerate(self.params)]
        if getattr(self, "maximize", False):
            return [-g for g in grads]  # climb: the step of -f, exactly as torch.optim
        return grads

    def _state_keys(self) -> dict[str, str] | None:
        """The per-parameter state a step keeps: {key: "int" | "number" | "non-negative"}.

        `load_state_dict` checks a saved state against it; None (the default for a subclass
        that does not say) checks only that the values are finite numbers.
        """
        return None

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume training, as plain JSON-serialisable data."""
        return {
            "optimizer": self.name,
            "hyperparams": {name: getattr(self, name) for name in self.hyperparams},
            "initial_lr": self.initial_lr,
            "state": [dict(s) for s in self.state],
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore hyper-parameters and per-parameter state saved by `state_dict()`.

        Everything is checked before anything changes: a missing field, an unknown or invalid
        hyper-parameter, or a state entry of the wrong shape raises a ValueError (TypeError for
        a wrong type) naming it, and the optimizer is left exactly as it was.
        """
        where = f"{self.name}.load_state_dict"
        if not isinstance(state_dict, dict) or state_dict.get("optimizer") != self.name:
            found = state_dict.get("optimizer") if isinstance(state_dict, dict) else state_dict
            raise ValueError(f"{where}: expected the state of a {self.name}, got {found!r}")
        for key in ("hyperparams", "state"):
            if key not in state_dict:
                raise ValueError(f"{where}: the {key!r} field is missing (a state_dict() has "
                                 "'optimizer', 'hyperparams', 'initial_lr' and 'state')")
        hyperparams = state_dict["hyperparams"]
        if not isinstance(hyperparams, dict):
            raise ValueError(f"{where}: 'hyperparams' must be a dict, got {hyperparams!r}")
        unknown = [name for name in hyperparams if name not in self.hyperparams]
        if unknown:
            raise ValueError(f"{where}: unknown hyper-parameter {unknown[0]!r}; {self.name} has "
                             f"{', '.join(self.hyperparams)}")
        # Building a fresh optimizer from the saved hyper-parameters checks them with the same
        # rules and messages as the constructor (and turns JSON lists back into tuples).
        checked = type(self)(self.params, **hyperparams)
        initial_lr = state_dict.get("initial_lr")
        if initial_lr is not None:
            initial_lr = check_non_negative(where, "initial_lr", initial_lr)
        state = state_dict["state"]
        if not isinstance(state, list) or len(state) != len(self.params):
            size = len(state) if isinstance(state, list) else type(state).__name__
            raise ValueError(f"{where}: the state has {size} parameters, "
                             f"this optimizer has {len(self.params)}")
        keys = checked._state_keys()
        restored = [_checked_state(where, i, s, keys) for i, s in enumerate(state)]
        # Only now, with every check passed, change anything.
        for name in self.hyperparams:
            setattr(self, name, getattr(checked, name))
        self.initial_lr = initial_lr
        self.state = restored

    def __repr__(self) -> str:
        args = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.hyperparams)
        return f"{self.name}({len(self.params)} params, {args})"


def _checked_state(where: str, i: int, s: Any, keys: dict[str, str] | None) -> dict[str, Any]:
    """A copy of one parameter's saved state, or a ValueError saying what is wrong with it."""
    if not isinstance(s, dict):
        raise ValueError(f"{where}: state[{i}] must be a dict of numbers, got {s!r}")
    if keys is not None and s and set(s) != set(keys):
        raise ValueError(f"{where}: state[{i}] has the keys {sorted(s)}, but with these "
                         f"hyper-parameters a step keeps {sorted(keys)} (or nothing yet)")
    out: dict[str, Any] = {}
    for key, value in s.items():
        kind = keys[key] if keys is not None else "number"
        name = f"state[{i}][{key!r}]"
        if kind == "int":
            out[key] = check_int(where, name, value, 1)
        elif kind == "non-negative":
            out[key] = check_non_negative(where, name, value)
        else:
            out[key] = check_number(where, name, value, finite=True)
    return out


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
            p.data -= step_size * _div(m, denom)  # (0/0 only when eps = 0 and v = 0)


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
                                                  + _div(g, avg))
                p.data -= self.lr * buf
            else:
                p.data -= self.lr * _div(g, avg)


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
            p.data -= clr * _div(g, math.sqrt(s) + self.eps)


#: The optimizers with a torch.optim namesake of the same numbers: what `to_torch` and
#: `from_torch` can carry across (exactly these classes, not subclasses).
TORCH_NAMESAKES: tuple[type[Optimizer], ...] = (SGD, Adam, AdamW, RMSprop, Adagrad)


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
    max_norm = check_number("clip_grad_norm", "max_norm", max_norm)
    if not max_norm >= 0:  # a negative limit would flip every gradient; NaN limits nothing
        raise ValueError(f"clip_grad_norm: max_norm must be >= 0, got {max_norm!r}")
    norm_type = check_number("clip_grad_norm", "norm_type", norm_type)
    if not norm_type > 0:
        raise ValueError(f"clip_grad_norm: norm_type must be > 0, got {norm_type!r}")
    grads = [_grad_of(p, "clip_grad_norm", i) for i, p in enumerate(params)]
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


# ==== Methods that take a closure ================================================================
#
# The optimizers above take one gradient per step. The ones below evaluate the loss several
# times per step (at trial points of a line search, or at every member of a population), so
# `step` takes a function that computes it, as torch.optim.LBFGS does:
#
#     def closure():
#         opt.zero_grad()
#         loss = loss_fn(model)      # a Value
#         loss.backward()            # gradient methods only; gradient-free ones may skip it
#         return loss
#     opt.step(closure)              # returns the loss of the first evaluation
#
# Their state is one dict for the whole parameter vector (a search direction, a history of
# steps, a covariance matrix), not one dict per parameter; it is still plain JSON.


def _check_seed_or_none(owner: str, seed: Any) -> int | None:
    """An int seed, or None for a generator seeded from the operating system."""
    return None if seed is None else check_seed(owner, seed)


def _loss_value(owner: str, loss: Any) -> float:
    """The float a closure's result stands for: a Value's data, or the number itself."""
    if isinstance(loss, Value):
        return loss.data
    if isinstance(loss, bool) or not isinstance(loss, Real):
        raise TypeError(f"{owner}: the closure must return the loss as a Value or a number, "
                        f"got {type(loss).__name__}: {loss!r}")
    return float(loss)


def _rng_state(rng: random.Random) -> list:
    """A random.Random's state as JSON-friendly lists (random.setstate wants tuples back)."""
    version, internal, gauss_next = rng.getstate()
    return [version, list(internal), gauss_next]


def _set_rng_state(rng: random.Random, state: list) -> None:
    version, internal, gauss_next = state
    rng.setstate((version, tuple(internal), gauss_next))


class ClosureOptimizer(Optimizer):
    """Base class of the optimizers whose `step(closure)` evaluates the loss itself.

    `state` is a single dict of JSON data (numbers and lists) for the whole parameter vector.
    With `maximize=True` every method climbs instead: it works on minus the loss (and minus the
    gradient) internally, and the closure still returns the loss itself.
    """

    #: The keys a state saved by `state_dict()` may hold (checked by `load_state_dict`).
    state_keys: tuple[str, ...] = ()

    def __init__(self, params: Iterable[Value], lr: float | None, maximize: bool) -> None:
        self.params = _check_params(self.name, params)
        if lr is not None:
            self.lr = lr
        self.initial_lr = None
        self.maximize = check_bool(self.name, "maximize", maximize)
        self.state: dict[str, Any] = {}  # type: ignore[assignment]

    def _closure(self, closure: Any) -> Callable[[], Any]:
        if closure is None:
            raise TypeError(
                f"{self.name}.step() needs a closure: it evaluates the loss several times per "
                "step. Pass a function that clears the gradients, computes the loss, calls "
                "loss.backward() and returns the loss: opt.step(closure)")
        if not callable(closure):
            raise TypeError(f"{self.name}.step(closure): the closure must be callable, got "
                            f"{type(closure).__name__}: {closure!r}")
        return closure

    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        raise NotImplementedError

    def _all_or_nothing(self, run: Callable[[Callable[[], Any]], Any],
                        closure: Callable[[], Any]) -> Any:
        """run(closure), but if it raises (the closure failed, say), the parameters and the
        state are put back as they were: a failed step changes nothing and the next can run."""
        x, state = self._get_x(), copy.deepcopy(self.state)
        try:
            return run(closure)
        except BaseException:
            self._set_x(x)
            self.state = state
            raise

    # ---- the parameters as one flat vector of floats ----

    def _get_x(self) -> list[float]:
        return [p.data for p in self.params]

    def _set_x(self, x: Sequence[float]) -> None:
        for p, xi in zip(self.params, x):
            p.data = xi

    def _add_to_x(self, t: float, d: Sequence[float]) -> None:
        """x = x + t d, parameter by parameter."""
        for p, di in zip(self.params, d):
            p.data += t * di

    # ---- saving and resuming ----

    def state_dict(self) -> dict[str, Any]:
        """Hyper-parameters and the state, as plain JSON data (a deep copy)."""
        return {
            "optimizer": self.name,
            "hyperparams": {name: getattr(self, name) for name in self.hyperparams},
            "initial_lr": self.initial_lr,
            "state": copy.deepcopy(self.state),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what `state_dict()` saved; nothing changes if the check fails."""
        where = f"{self.name}.load_state_dict"
        if not isinstance(state_dict, dict) or state_dict.get("optimizer") != self.name:
            found = state_dict.get("optimizer") if isinstance(state_dict, dict) else state_dict
            raise ValueError(f"{where}: expected the state of a {self.name}, got {found!r}")
        state = state_dict.get("state")
        if not isinstance(state, dict):
            raise ValueError(f"{where}: state must be a dict, got {state!r:.80}")
        unknown = sorted(set(state) - set(self.state_keys))
        if unknown:
            raise ValueError(f"{where}: unknown state entries {unknown}")
        hyperparams = state_dict.get("hyperparams")
        if not isinstance(hyperparams, dict):
            raise ValueError(f"{where}: 'hyperparams' must be a dict of "
                             f"{', '.join(self.hyperparams)}, got {hyperparams!r:.80}")
        unknown = [name for name in hyperparams if name not in self.hyperparams]
        if unknown:
            raise ValueError(f"{where}: unknown hyper-parameter {unknown[0]!r}; {self.name} has "
                             f"{', '.join(self.hyperparams)}")
        initial_lr = state_dict.get("initial_lr")
        if initial_lr is not None:
            initial_lr = check_non_negative(where, "initial_lr", initial_lr)
        # A fresh optimizer from the saved hyper-parameters checks them as the constructor does,
        # and recomputes what depends on them (CMA-ES's weights and rates, for one).
        checked = type(self)(self.params, **hyperparams)
        checked._check_state(where, state)
        vars(self).update({k: v for k, v in vars(checked).items() if k not in ("params", "state")})
        self.initial_lr = initial_lr
        self.state = copy.deepcopy(state)

    def _check_state(self, where: str, state: dict[str, Any]) -> None:
        """Check every entry of a saved `state` against `_state_kinds`, and that the entries a
        step needs are all there: a state that loads is one the next step can run on."""
        n = len(self.params)
        for key, value in state.items():
            _check_entry(where, key, value, self._state_kinds[key], n)
        if state and self._complete_after is not None and state.get(self._complete_after[0]):
            missing = [k for k in self._complete_after[1] if k not in state]
            if missing:
                raise ValueError(f"{where}: state[{self._complete_after[0]!r}] is "
                                 f"{state[self._complete_after[0]]!r} but the state lacks "
                                 f"{missing}, which a step needs from then on")

    #: What each state entry holds (see `_check_entry`).
    _state_kinds: dict[str, str] = {}
    #: (entry, keys): once `entry` is non-zero, a step reads every one of `keys`.
    _complete_after: tuple[str, tuple[str, ...]] | None = None


def _is_number(x: Any) -> bool:
    return isinstance(x, Real) and not isinstance(x, bool)


def _check_entry(where: str, key: str, value: Any, kind: str, n: int) -> None:
    """One saved state entry of a closure optimizer, or a ValueError naming it. Kinds:

    count (an int >= 0), number (finite), positive (> 0), non-negative (>= 0), loss (any
    number), loss? (or None), vector (n numbers), vector? (or None), positive-vector, vectors
    (a list of vectors), numbers, numbers? (a list of numbers, or of numbers and None),
    matrix (n x n), rng.
    """
    name = f"state[{key!r}]"
    bad = None
    if kind == "count":
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
            bad = "an int >= 0"
    elif kind in ("number", "positive", "non-negative"):
        if not (_is_number(value) and math.isfinite(value) and (
                kind == "number" or value > 0 or value == 0 and kind == "non-negative")):
            bad = "a finite number" + {"number": "", "positive": " > 0",
                                       "non-negative": " >= 0"}[kind]
    elif kind in ("loss", "loss?"):
        if not (_is_number(value) or value is None and kind == "loss?"):
            bad = "a number (a loss)" + (" or None" if kind == "loss?" else "")
    elif kind in ("vector", "vector?", "positive-vector"):
        if not (value is None and kind == "vector?" or isinstance(value, list) and len(value) == n
                and all(map(_is_number, value))
                and (kind != "positive-vector" or all(v > 0 for v in value))):
            bad = (f"a list of {n} numbers (one per parameter)"
                   + (", each > 0" if kind == "positive-vector" else ""))
    elif kind == "vectors":
        if not (isinstance(value, list) and all(
                isinstance(v, list) and len(v) == n and all(map(_is_number, v)) for v in value)):
            bad = f"a list of lists of {n} numbers (one per parameter)"
    elif kind in ("numbers", "numbers?"):
        if not (isinstance(value, list) and all(
                _is_number(v) or v is None and kind == "numbers?" for v in value)):
            bad = "a list of numbers" + (" (or None)" if kind == "numbers?" else "")
    elif kind == "matrix":
        if not (isinstance(value, list) and len(value) == n and all(
                isinstance(r, list) and len(r) == n and all(map(_is_number, r)) for r in value)):
            bad = f"a {n}x{n} matrix"
    elif kind == "rng":
        try:
            _set_rng_state(random.Random(), value)
        except (TypeError, ValueError, OverflowError):
            bad = "the state of a random.Random (as state_dict() saves it)"
    else:
        raise AssertionError(f"unknown state kind {kind!r}")
    if bad is not None:
        raise ValueError(f"{where}: {name} must be {bad}, got {value!r:.80}")


class LBFGS(ClosureOptimizer):
    """L-BFGS: quasi-Newton steps from the last few changes of the gradient.

        opt = LBFGS(model.parameters(), line_search_fn="strong_wolfe")
        def closure():
            opt.zero_grad(); loss = loss_fn(model); loss.backward(); return loss
        opt.step(closure)

    Newton's method steps by -H^-1 g, with H the matrix of second derivatives. L-BFGS never
    forms H: each iteration keeps the step s = x_new - x_old and the change of the gradient
    y = g_new - g_old (together they show the curvature along s, since y ~ H s), and the
    "two-loop recursion" turns the last `history_size` pairs into d ~ -H^-1 g (Nocedal & Wright,
    algorithm 7.4):

        q = -g
        for i = newest .. oldest:  a_i = rho_i s_i . q;   q = q - a_i y_i     (rho_i = 1 / y_i.s_i)
        r = H_diag q                                      (H_diag = y.s / y.y of the newest pair)
        for i = oldest .. newest:  b_i = rho_i y_i . r;   r = r + (a_i - b_i) s_i
        d = r

    A pair is kept only if y.s > 1e-10 (the curvature along s is positive). The step is
    x = x + t d with t = lr, except on the very first iteration (t = lr * min(1, 1/sum|g|)),
    or t from the strong-Wolfe line search of `nn.linesearch` when line_search_fn="strong_wolfe".
    One `step(closure)` runs up to `max_iter` iterations and `max_eval` evaluations, stopping
    early when max |g| <= tolerance_grad or the loss or the step change less than
    tolerance_change. Arguments, defaults and numbers are torch.optim.LBFGS's (2.13).
    """

    hyperparams = ("lr", "max_iter", "max_eval", "tolerance_grad", "tolerance_change",
                   "history_size", "line_search_fn", "maximize")
    state_keys = ("func_evals", "n_iter", "d", "t", "old_dirs", "old_stps", "ro", "H_diag",
                  "prev_flat_grad", "prev_loss", "al")
    _state_kinds = {"func_evals": "count", "n_iter": "count", "d": "vector", "t": "number",
                    "old_dirs": "vectors", "old_stps": "vectors", "ro": "numbers",
                    "H_diag": "non-negative", "prev_flat_grad": "vector", "prev_loss": "loss",
                    "al": "numbers?"}
    _complete_after = ("n_iter", ("d", "t", "old_dirs", "old_stps", "ro", "H_diag",
                                  "prev_flat_grad", "prev_loss"))

    def _check_state(self, where: str, state: dict[str, Any]) -> None:
        super()._check_state(where, state)
        pairs = [len(state[k]) for k in ("old_dirs", "old_stps", "ro") if k in state]
        if len(set(pairs)) > 1 or pairs and pairs[0] > self.history_size:
            raise ValueError(f"{where}: state['old_dirs'], ['old_stps'] and ['ro'] must have "
                             f"one length, at most history_size={self.history_size}, got "
                             f"{pairs}")
        if "al" in state and pairs and len(state["al"]) < pairs[0]:
            raise ValueError(f"{where}: state['al'] has {len(state['al'])} entries, fewer "
                             f"than the {pairs[0]} history pairs")

    def __init__(self, params: Iterable[Value], lr: float = 1, max_iter: int = 20,
                 max_eval: int | None = None, tolerance_grad: float = 1e-7,
                 tolerance_change: float = 1e-9, history_size: int = 100,
                 line_search_fn: str | None = None, maximize: bool = False) -> None:
        super().__init__(params, lr, maximize)
        name = self.name
        self.max_iter = check_int(name, "max_iter", max_iter, 1)
        # torch's default: a quarter more evaluations than iterations.
        self.max_eval = (self.max_iter * 5 // 4 if max_eval is None
                         else check_int(name, "max_eval", max_eval, 1))
        self.tolerance_grad = check_non_negative(name, "tolerance_grad", tolerance_grad)
        self.tolerance_change = check_non_negative(name, "tolerance_change", tolerance_change)
        self.history_size = check_int(name, "history_size", history_size, 1)
        if line_search_fn not in (None, "strong_wolfe"):
            raise ValueError(f"{name}: line_search_fn must be None or 'strong_wolfe', got "
                             f"{line_search_fn!r}")
        self.line_search_fn = line_search_fn

    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """Up to `max_iter` L-BFGS iterations; returns the closure's first result."""
        closure = self._closure(closure)
        return self._all_or_nothing(self._lbfgs_step, closure)

    def _lbfgs_step(self, closure: Callable[[], Any]) -> Any:
        evaluate = _gradient_evaluator(self, closure)
        state = self.state
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        orig_loss, loss, flat_grad = evaluate()
        current_evals = 1
        state["func_evals"] += 1
        if max(abs(gi) for gi in flat_grad) <= self.tolerance_grad:
            return orig_loss  # already at a stationary point

        d, t = state.get("d"), state.get("t")
        old_dirs, old_stps, ro = state.get("old_dirs"), state.get("old_stps"), state.get("ro")
        H_diag = state.get("H_diag")
        prev_flat_grad, prev_loss = state.get("prev_flat_grad"), state.get("prev_loss")

        n_iter, opt_cond = 0, False
        while n_iter < self.max_iter:
            n_iter += 1
            state["n_iter"] += 1

            # -- the direction: steepest descent at first, then the two-loop recursion --
            if state["n_iter"] == 1:
                d = [-gi for gi in flat_grad]
                old_dirs, old_stps, ro, H_diag = [], [], [], 1.0
            else:
                y = [a - b for a, b in zip(flat_grad, prev_flat_grad)]
                s = [di * t for di in d]
                ys = dot(y, s)
                if ys > 1e-10:  # positive curvature along s: remember the pair
                    if len(old_dirs) == self.history_size:
                        old_dirs.pop(0)
                        old_stps.pop(0)
                        ro.pop(0)
                    old_dirs.append(y)
                    old_stps.append(s)
                    ro.append(1.0 / ys)
                    yy = dot(y, y)  # > 0 unless y is so small that its square underflows
                    H_diag = ys / yy if yy > 0 else H_diag  # scale of the initial inverse Hessian
                if "al" not in state:
                    state["al"] = [None] * self.history_size
                al = state["al"]
                q = [-gi for gi in flat_grad]
                for i in range(len(old_dirs) - 1, -1, -1):
                    al[i] = dot(old_stps[i], q) * ro[i]
                    q = [qj - al[i] * yj for qj, yj in zip(q, old_dirs[i])]
                r = [qj * H_diag for qj in q]
                for i in range(len(old_dirs)):
                    be_i = dot(old_dirs[i], r) * ro[i]
                    r = [rj + (al[i] - be_i) * sj for rj, sj in zip(r, old_stps[i])]
                d = r
            prev_flat_grad = list(flat_grad)
            prev_loss = loss

            # -- the step length --
            if state["n_iter"] == 1:
                t = min(1.0, 1.0 / sum(abs(gi) for gi in flat_grad)) * self.lr
            else:
                t = self.lr
            gtd = dot(flat_grad, d)  # slope along d; it must go downhill
            if gtd > -self.tolerance_change or not gtd < 0:  # (a zero or NaN slope stops too)
                break

            ls_func_evals = 0
            if self.line_search_fn == "strong_wolfe":
                x_init = self._get_x()
                loss, flat_grad, t, ls_func_evals = strong_wolfe(
                    _line(self, evaluate, x_init, d), d, t, loss, flat_grad, gtd,
                    max_ls=self.max_eval - current_evals)
                self._add_to_x(t, d)
                opt_cond = max(abs(gi) for gi in flat_grad) <= self.tolerance_grad
            else:
                self._add_to_x(t, d)  # a fixed step of length lr
                if n_iter != self.max_iter:  # the last iteration's loss is not needed
                    _, loss, flat_grad = evaluate()
                    opt_cond = max(abs(gi) for gi in flat_grad) <= self.tolerance_grad
                    ls_func_evals = 1
            current_evals += ls_func_evals
            state["func_evals"] += ls_func_evals

            # -- stop? --
            if n_iter == self.max_iter or current_evals >= self.max_eval:
                break
            if opt_cond:  # the gradient vanished
                break
            if max(abs(di * t) for di in d) <= self.tolerance_change:  # the step vanished
                break
            if abs(loss - prev_loss) < self.tolerance_change:  # the loss stopped changing
                break

        state.update(d=d, t=t, old_dirs=old_dirs, old_stps=old_stps, ro=ro, H_diag=H_diag,
                     prev_flat_grad=prev_flat_grad, prev_loss=prev_loss)
        return orig_loss


def _gradient_evaluator(opt: ClosureOptimizer,
                        closure: Callable[[], Any]) -> Callable[[], tuple[Any, float, list]]:
    """A function that runs the closure and returns (its result, f, gradient as a list).

    With `maximize`, f and the gradient are negated: the methods always minimise.
    """
    if not is_grad_enabled():
        raise RuntimeError(f"{opt.name}.step(closure) needs gradients, but it was called inside "
                           "no_grad(): call it outside, so that loss.backward() computes them")
    sign = -1.0 if opt.maximize else 1.0

    def evaluate() -> tuple[Any, float, list[float]]:
        result = closure()
        f = _loss_value(opt.name, result)
        return result, sign * f, [sign * _grad_of(p, opt.name, i)
                                  for i, p in enumerate(opt.params)]

    return evaluate


def _line(opt: ClosureOptimizer, evaluate: Callable, x: list[float],
          d: list[float]) -> Callable[[float], tuple[float, list[float]]]:
    """phi(t) for the line search: the loss and gradient at x + t d (x is restored after)."""
    def phi(t: float) -> tuple[float, list[float]]:
        opt._add_to_x(t, d)
        try:
            _, f, g = evaluate()
        finally:  # back to x, even when the closure raised
            opt._set_x(x)
        return f, g

    return phi


#: The conjugate-gradient beta formulas: d_new = -g + beta * d, with y = g - g_prev.
CG_BETAS = {
    "FR": "g.g / g_prev.g_prev",             # Fletcher & Reeves (1964)
    "PR": "g.y / g_prev.g_prev",             # Polak & Ribiere (1969), Polyak (1969)
    "PR+": "max(0, g.y / g_prev.g_prev)",    # PR clipped at 0: restarts by itself (Powell 1986)
    "HS": "g.y / d.y",                       # Hestenes & Stiefel (1952)
    "DY": "g.g / d.y",                       # Dai & Yuan (1999)
}


def cg_beta(formula: str, g: Sequence[float], g_prev: Sequence[float],
            d: Sequence[float]) -> float:
    """beta for the next conjugate direction -g + beta * d (see `CG_BETAS`).

    A zero denominator gives 0 (a restart along -g) instead of a division error.
    """
    y = [a - b for a, b in zip(g, g_prev)]
    if formula == "FR":
        num, den = dot(g, g), dot(g_prev, g_prev)
    elif formula in ("PR", "PR+"):
        num, den = dot(g, y), dot(g_prev, g_prev)
    elif formula == "HS":
        num, den = dot(g, y), dot(d, y)
    elif formula == "DY":
        num, den = dot(g, g), dot(d, y)
    else:
        raise ValueError(f"cg_beta: unknown formula {formula!r}; choose from {list(CG_BETAS)}")
    beta = num / den if den != 0 else 0.0
    return max(beta, 0.0) if formula == "PR+" else beta


class ConjugateGradient(ClosureOptimizer):
    """Nonlinear conjugate gradients: each direction mixes the gradient with the last direction.

        opt = ConjugateGradient(model.parameters(), beta="PR+")
        def closure():
            opt.zero_grad(); loss = loss_fn(model); loss.backward(); return loss
        opt.step(closure)

    Steepest descent zig-zags across a narrow valley, because each new direction -g is
    perpendicular to the last one. Conjugate gradients keep part of the last direction:

        d = -g                          on the first iteration and at every restart
        d = -g + beta * d_prev          otherwise; beta from `beta` (see CG_BETAS)
        x = x + t * d                   t from the strong-Wolfe line search of nn.linesearch

    On a quadratic with exact line searches all the betas agree, every direction is conjugate
    to the previous ones (d_i . A d_j = 0), and the minimum of an n-dimensional quadratic is
    reached in at most n iterations. On other losses the formulas differ: FR can stall with
    tiny steps, PR+ restarts by itself when beta would go negative. The method also restarts
    (d = -g) when d is not a descent direction (g . d >= 0) and every `restart_every`
    iterations (default: the number of parameters). The first trial step of each line search
    is min(lr, 2.02 (f - f_prev) / (g . d)), which expects the same decrease as the last
    iteration (Nocedal & Wright, eq. 3.60; scipy's choice too), and lr * min(1, 1/sum|g|) on
    the very first iteration. `max_iter`, `max_eval`, `tolerance_grad` and `tolerance_change`
    work as in LBFGS; c1 and c2 are the line search's Wolfe constants (scipy's CG uses 1e-4 and
    0.4; c2 < 1/2 keeps FR's directions downhill).
    """

    hyperparams = ("beta", "lr", "max_iter", "max_eval", "tolerance_grad", "tolerance_change",
                   "restart_every", "c1", "c2", "maximize")
    state_keys = ("func_evals", "n_iter", "restarts", "since_restart", "d", "t",
                  "prev_flat_grad", "prev_loss")
    _state_kinds = {"func_evals": "count", "n_iter": "count", "restarts": "count",
                    "since_restart": "count", "d": "vector", "t": "number",
                    "prev_flat_grad": "vector", "prev_loss": "loss"}
    _complete_after = ("n_iter", ("restarts", "since_restart", "d", "t", "prev_flat_grad",
                                  "prev_loss"))

    def __init__(self, params: Iterable[Value], beta: str = "PR+", lr: float = 1,
                 max_iter: int = 20, max_eval: int | None = None, tolerance_grad: float = 1e-7,
                 tolerance_change: float = 1e-9, restart_every: int | None = None,
                 c1: float = 1e-4, c2: float = 0.4, maximize: bool = False) -> None:
        super().__init__(params, lr, maximize)
        name = self.name
        self.beta = check_choice(name, "beta", beta, CG_BETAS)
        self.max_iter = check_int(name, "max_iter", max_iter, 1)
        self.max_eval = (self.max_iter * 5 // 4 if max_eval is None
                         else check_int(name, "max_eval", max_eval, 1))
        self.tolerance_grad = check_non_negative(name, "tolerance_grad", tolerance_grad)
        self.tolerance_change = check_non_negative(name, "tolerance_change", tolerance_change)
        self.restart_every = (len(self.params) if restart_every is None
                              else check_int(name, "restart_every", restart_every, 1))
        self.c1 = check_number(name, "c1", c1)
        self.c2 = check_number(name, "c2", c2)
        if not 0 < self.c1 < self.c2 < 1:
            raise ValueError(f"{name}: the Wolfe constants need 0 < c1 < c2 < 1, got "
                             f"c1={self.c1!r}, c2={self.c2!r}")

    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """Up to `max_iter` CG iterations; returns the closure's first result."""
        closure = self._closure(closure)
        return self._all_or_nothing(self._cg_step, closure)

    def _cg_step(self, closure: Callable[[], Any]) -> Any:
        evaluate = _gradient_evaluator(self, closure)
        state = self.state
        for key in ("func_evals", "n_iter", "restarts", "since_restart"):
            state.setdefault(key, 0)

        orig_loss, loss, flat_grad = evaluate()
        current_evals = 1
        state["func_evals"] += 1
        if max(abs(gi) for gi in flat_grad) <= self.tolerance_grad:
            return orig_loss

        d, t = state.get("d"), state.get("t")
        prev_flat_grad, prev_loss = state.get("prev_flat_grad"), state.get("prev_loss")
        n_iter = 0
        while n_iter < self.max_iter:
            n_iter += 1
            state["n_iter"] += 1

            # -- the direction --
            restart = state["n_iter"] == 1 or state["since_restart"] >= self.restart_every
            if not restart:
                beta = cg_beta(self.beta, flat_grad, prev_flat_grad, d)
                d = [-gi + beta * di for gi, di in zip(flat_grad, d)]
                restart = dot(flat_grad, d) >= 0  # not downhill: start again from -g
            if restart:
                d = [-gi for gi in flat_grad]
                state["since_restart"] = 0
                state["restarts"] += 1
            state["since_restart"] += 1
            gtd = dot(flat_grad, d)
            if gtd > -self.tolerance_change or not gtd < 0:  # (a zero or NaN slope stops too)
                break

            # -- the first trial step, then the line search --
            if state["n_iter"] == 1:
                t = min(1.0, 1.0 / sum(abs(gi) for gi in flat_grad)) * self.lr
            else:
                guess = 2.02 * (loss - prev_loss) / gtd
                t = min(self.lr, guess) if guess > 0 else self.lr
            prev_flat_grad, prev_loss = list(flat_grad), loss
            x_init = self._get_x()
            loss, flat_grad, t, ls_evals = strong_wolfe(
                _line(self, evaluate, x_init, d), d, t, loss, flat_grad, gtd, c1=self.c1,
                c2=self.c2, tolerance_change=self.tolerance_change,
                max_ls=self.max_eval - current_evals)
            self._add_to_x(t, d)
            current_evals += ls_evals
            state["func_evals"] += ls_evals

            # -- stop? --
            if n_iter == self.max_iter or current_evals >= self.max_eval:
                break
            if max(abs(gi) for gi in flat_grad) <= self.tolerance_grad:
                break
            if max(abs(di * t) for di in d) <= self.tolerance_change:
                break
            if abs(loss - prev_loss) < self.tolerance_change:
                break

        state.update(d=d, t=t, prev_flat_grad=prev_flat_grad, prev_loss=prev_loss)
        return orig_loss


def symmetric_eigen(a: list[list[float]],
                    sweeps: int = 50) -> tuple[list[float], list[list[float]]]:
    """Eigenvalues and eigenvectors of a symmetric matrix, by cyclic Jacobi rotations.

    Returns (values, vectors) with `vectors[i][k]` the i-th entry of the k-th eigenvector (the
    columns of B in A = B diag(values) B^T). Each rotation in the (p, q) plane zeroes a[p][q];
    sweeping over all pairs until the off-diagonal entries vanish leaves the eigenvalues on the
    diagonal and the product of the rotations in B (Golub & Van Loan, section 8.5). Slower than
    LAPACK, but a dozen lines, exact to rounding, and enough for CMA-ES's matrices.
    """
    n = len(a)
    a = [row[:] for row in a]
    v = [[1.0 if i == j else 0.0 for j in range(n)] for i in range(n)]
    for _ in range(sweeps):
        off = sum(a[i][j] ** 2 for i in range(n) for j in range(i + 1, n))
        if off <= 1e-30 * sum(a[i][i] ** 2 for i in range(n)):
            break
        for p in range(n - 1):
            for q in range(p + 1, n):
                if a[p][q] == 0.0:
                    continue
                # The angle that zeroes a[p][q]: t = tan(angle) solves t^2 + 2 theta t - 1 = 0.
                theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q])
                t = math.copysign(1.0, theta) / (abs(theta) + math.hypot(theta, 1.0))
                c = 1.0 / math.hypot(t, 1.0)
                s = t * c
                for k in range(n):  # A J: columns p and q
                    akp, akq = a[k][p], a[k][q]
                    a[k][p], a[k][q] = c * akp - s * akq, s * akp + c * akq
                for k in range(n):  # J^T (A J): rows p and q
                    apk, aqk = a[p][k], a[q][k]
                    a[p][k], a[q][k] = c * apk - s * aqk, s * apk + c * aqk
                for k in range(n):  # B J: the eigenvectors
                    vkp, vkq = v[k][p], v[k][q]
                    v[k][p], v[k][q] = c * vkp - s * vkq, s * vkp + c * vkq
    return [a[i][i] for i in range(n)], v


def _evaluate_value(opt: ClosureOptimizer, closure: Callable[[], Any]) -> Callable[[], tuple]:
    """For gradient-free methods: run the closure under no_grad; return (result, f to minimise)."""
    sign = -1.0 if opt.maximize else 1.0

    def evaluate() -> tuple[Any, float]:
        with no_grad():  # only the value is used, so no graph is built (and it is faster)
            result = closure()
        return result, sign * _loss_value(opt.name, result)

    return evaluate


class CMAES(ClosureOptimizer):
    """CMA-ES: sample a population from a Gaussian, move and reshape it toward the best.

        opt = CMAES(model.parameters(), sigma0=0.5, seed=0)
        def closure():
            return loss_fn(model)        # only the value is used: no backward needed
        opt.step(closure)                # one generation; the parameters hold the new mean

    The covariance matrix adaptation evolution strategy (Hansen, "The CMA Evolution Strategy: A
    Tutorial", 2016) keeps a Gaussian N(m, sigma^2 C) over the parameter vector. One `step` is
    one generation of lambda = `popsize` candidates (default 4 + floor(3 ln n)):

        x_k = m + sigma * B D z_k,  z_k ~ N(0, I)      sample (C = B D^2 B^T, eigen-decomposed)
        m  = sum_i w_i x_(i)                           the mean moves to the weighted best mu
        ps = (1 - cs) ps + sqrt(cs (2 - cs) mueff) C^-1/2 (m - m_old) / sigma
        pc = (1 - cc) pc + h_sig sqrt(cc (2 - cc) mueff) (m - m_old) / sigma
        C  = (1 - c1a - cmu) C + c1 pc pc^T + cmu sum_i w_i y_(i) y_(i)^T   (rank-one, rank-mu)
        sigma = sigma * exp((cs / damps) (|ps| / E|N(0, I)| - 1))

    with x_(i) the i-th best candidate and y_(i) = (x_(i) - m_old) / sigma. The evolution paths
    ps and pc remember where the mean has been going: a long ps (steps in the same direction)
    grows sigma, a short one shrinks it; pc teaches C the direction of progress. Every constant
    is the tutorial's default, computed in `__init__` from n and lambda, with the comment of its
    formula. It only evaluates the loss, under `no_grad()`, so it minimises losses without a
    useful gradient too (an accuracy, a step function). `state["best_loss"]` and
    `state["best_x"]` keep the best candidate seen; `seed` makes runs reproducible.
    """

    hyperparams = ("sigma0", "popsize", "seed", "maximize")
    state_keys = ("generation", "func_evals", "sigma", "pc", "ps", "C", "B", "D",
                  "eigen_evals", "rng", "best_loss", "best_x")
    _state_kinds = {"generation": "count", "func_evals": "count", "sigma": "positive",
                    "pc": "vector", "ps": "vector", "C": "matrix", "B": "matrix",
                    "D": "positive-vector", "eigen_evals": "count", "rng": "rng",
                    "best_loss": "loss?", "best_x": "vector?"}

    def __init__(self, params: Iterable[Value], sigma0: float = 0.5,
                 popsize: int | None = None, seed: int | None = None,
                 maximize: bool = False) -> None:
        super().__init__(params, None, maximize)
        name = self.name
        self.sigma0 = check_number(name, "sigma0", sigma0, finite=True)
        if not self.sigma0 > 0:
            raise ValueError(f"{name}: invalid sigma0={sigma0!r}, it must be a positive number")
        n = len(self.params)
        self.popsize = (4 + int(3 * math.log(n)) if popsize is None
                        else check_int(name, "popsize", popsize, 2))
        self.seed = _check_seed_or_none(name, seed)
        self._rng = random.Random(self.seed)

        # The strategy's constants, from Hansen's tutorial, table 1 (n = dimension).
        lam = self.popsize
        self.mu = lam // 2                                   # parents: the best half
        raw = [math.log((lam + 1) / 2) - math.log(i + 1) for i in range(self.mu)]
        self.weights = [w / sum(raw) for w in raw]           # w_1 > w_2 > ... > 0, sum 1
        self.mueff = 1 / sum(w * w for w in self.weights)    # variance-effective mu
        mueff = self.mueff
        self.cc = (4 + mueff / n) / (n + 4 + 2 * mueff / n)  # time constant of pc
        self.cs = (mueff + 2) / (n + mueff + 5)              # time constant of ps
        self.c1 = 2 / ((n + 1.3) ** 2 + mueff)               # learning rate, rank-one update
        self.cmu = min(1 - self.c1,                          # learning rate, rank-mu update
                       2 * (mueff - 2 + 1 / mueff) / ((n + 2) ** 2 + mueff))
        self.damps = (1 + 2 * max(0.0, math.sqrt((mueff - 1) / (n + 1)) - 1)  # damping of
                      + self.cs)                                             # sigma's update
        self.chi_n = math.sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n * n))  # E|N(0, I)|

    @property
    def lr(self) -> float:  # type: ignore[override]
        raise AttributeError("CMAES has no learning rate: its step size sigma adapts itself "
                             "(sigma0 sets where it starts)")

    def _check_state(self, where: str, state: dict[str, Any]) -> None:
        super()._check_state(where, state)
        missing = [k for k in self.state_keys if k not in state]
        if state and missing:  # a step starts from a whole state or from none
            raise ValueError(f"{where}: the state lacks {missing}")

    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """One generation: `popsize` evaluations, then the parameters hold the new mean."""
        closure = self._closure(closure)
        evaluate = _evaluate_value(self, closure)
        n, lam, mu, w = len(self.params), self.popsize, self.mu, self.weights
        # The state changes only once the whole generation has been evaluated.
        state = dict(self.state) or dict(
            generation=0, func_evals=0, sigma=self.sigma0, pc=[0.0] * n, ps=[0.0] * n,
            C=_identity(n), B=_identity(n), D=[1.0] * n, eigen_evals=0, best_loss=None,
            best_x=None, rng=_rng_state(random.Random(self.seed)))
        _set_rng_state(self._rng, state["rng"])
        sigma, B, D, C = state["sigma"], state["B"], state["D"], state["C"]
        mean = self._get_x()

        # Sample lambda candidates x_k = m + sigma * B D z_k and evaluate them.
        candidates, first = [], None
        try:
            for _ in range(lam):
                z = [self._rng.gauss(0.0, 1.0) for _ in range(n)]
                dz = [Dj * zj for Dj, zj in zip(D, z)]
                y = [sum(B[i][j] * dz[j] for j in range(n)) for i in range(n)]  # ~ N(0, C)
                x = [mi + sigma * yi for mi, yi in zip(mean, y)]
                self._set_x(x)
                result, f = evaluate()
                first = result if first is None else first
                candidates.append((f, x, y))
        except BaseException:
            self._set_x(mean)  # a failing closure leaves the parameters where they were
            raise
        if all(f != f for f, _, _ in candidates):
            self._set_x(mean)
            raise _all_nan(self.name, lam)
        for f, x, _ in candidates:
            if state["best_loss"] is None or _rank(f) < _rank(state["best_loss"]):
                state["best_loss"], state["best_x"] = f, x
        state["func_evals"] += lam
        # Best first (stable: ties keep sampling order; a NaN loss ranks last).
        candidates.sort(key=lambda c: _rank(c[0]))
        best = candidates[:mu]

        # m = sum w_i x_(i): the new mean; y_w = (m - m_old) / sigma, the step it took.
        new_mean = [sum(w[i] * best[i][1][j] for i in range(mu)) for j in range(n)]
        y_w = [sum(w[i] * best[i][2][j] for i in range(mu)) for j in range(n)]
        self._set_x(new_mean)

        # ps = (1 - cs) ps + sqrt(cs (2 - cs) mueff) C^-1/2 y_w, with C^-1/2 = B D^-1 B^T.
        bty = [sum(B[i][k] * y_w[i] for i in range(n)) for k in range(n)]
        c_inv_sqrt_y = [sum(B[i][k] * bty[k] / D[k] for k in range(n)) for i in range(n)]
        a = math.sqrt(self.cs * (2 - self.cs) * self.mueff)
        ps = [(1 - self.cs) * pi + a * ci for pi, ci in zip(state["ps"], c_inv_sqrt_y)]
        ps_norm = math.sqrt(dot(ps, ps))
        # h_sig stalls pc while |ps| is large (sigma about to grow), so C does not over-stretch.
        generation = state["generation"] + 1
        h_sig = (ps_norm / math.sqrt(1 - (1 - self.cs) ** (2 * generation)) / self.chi_n
                 < 1.4 + 2 / (n + 1))
        # pc = (1 - cc) pc + h_sig sqrt(cc (2 - cc) mueff) y_w
        b = math.sqrt(self.cc * (2 - self.cc) * self.mueff) if h_sig else 0.0
        pc = [(1 - self.cc) * pi + b * yi for pi, yi in zip(state["pc"], y_w)]

        # C = (1 - c1a - cmu) C + c1 pc pc^T + cmu sum_i w_i y_(i) y_(i)^T
        c1, cmu = self.c1, self.cmu
        c1a = c1 * (1 - (1 - h_sig) * self.cc * (2 - self.cc))  # makes up for a stalled pc
        decay = 1 - c1a - cmu  # sum(w) = 1
        ys = [best[i][2] for i in range(mu)]
        C = [[decay * C[r][s] + c1 * pc[r] * pc[s]
              + cmu * sum(w[i] * ys[i][r] * ys[i][s] for i in range(mu))
              for s in range(n)] for r in range(n)]

        # sigma = sigma exp((cs / damps) (|ps| / E|N(0, I)| - 1)), the exponent capped at 1
        # as in purecma, against a blow-up in the first generations.
        sigma *= math.exp(min(1.0, (self.cs / self.damps) * (ps_norm / self.chi_n - 1)))

        # C = B D^2 B^T again, but only every few generations: the eigen-decomposition costs
        # n^3 and C changes slowly (the "lazy" update: purecma's gap of 0.5 lambda / (c1 + cmu)
        # / n evaluations, which keeps the cost O(n^2) per candidate).
        if state["func_evals"] - state["eigen_evals"] > 0.5 * lam / (c1 + cmu) / n:
            eigenvalues, B = symmetric_eigen(C)
            D = [math.sqrt(max(ev, 1e-300)) for ev in eigenvalues]  # C is positive definite
            state["eigen_evals"] = state["func_evals"]
        state.update(generation=generation, sigma=sigma, pc=pc, ps=ps, C=C, B=B, D=D,
                     rng=_rng_state(self._rng))
        self.state = state
        return first


def _identity(n: int) -> list[list[float]]:
    return [[1.0 if i == j else 0.0 for j in range(n)] for i in range(n)]


def _rank(f: float) -> tuple[bool, float]:
    """A loss as a sort key: numbers in order, then NaN (a failed evaluation ranks last).

    sorted() is no order with NaN among the keys: one NaN would scramble all the others.
    """
    return (f != f, f if f == f else 0.0)


def _all_nan(owner: str, count: int) -> FloatingPointError:
    return FloatingPointError(
        f"{owner}.step: the closure returned nan for every one of the {count} evaluations, so "
        "there is nothing to rank; nothing was changed")


def centered_ranks(values: Sequence[float]) -> list[float]:
    """Each value's rank, scaled to [-0.5, 0.5]: the smallest gets -0.5, the largest 0.5.

    Only the order of the losses counts, so one huge outlier cannot dominate the estimate
    (Salimans et al. 2017, section 2.2). Ties keep their order of appearance; NaN ranks last.
    """
    n = len(values)
    order = sorted(range(n), key=lambda i: _rank(values[i]))
    ranks = [0.0] * n
    for rank, i in enumerate(order):
        ranks[i] = rank / (n - 1) - 0.5 if n > 1 else 0.0
    return ranks


class EvolutionStrategy(ClosureOptimizer):
    """The evolution strategy of Salimans et al. (2017): a gradient estimated from the loss alone.

        opt = EvolutionStrategy(model.parameters(), sigma=0.1, popsize=50, lr=0.01, seed=0)
        def closure():
            return loss_fn(model)        # only the value is used: no backward needed
        opt.step(closure)

    Blur the loss with Gaussian noise: f_sigma(x) = E[f(x + sigma eps)], eps ~ N(0, I). Its
    gradient needs no derivative of f, only samples (the log-likelihood trick):

        grad f_sigma(x) = E[f(x + sigma eps) eps] / sigma

    One `step` estimates it from popsize / 2 antithetic pairs (eps and -eps, which cancels the
    noise of the constant part of f), with the losses replaced by their centered ranks u in
    [-0.5, 0.5] (only the order counts):

        g = 1 / (popsize sigma) sum_k (u(x + sigma eps_k) - u(x - sigma eps_k)) eps_k

    and feeds g to an Adam step (torch's formulas, with lr, betas and eps as in `Adam`). The
    closure is evaluated under `no_grad()`, so the method also works on losses without a
    gradient, such as the accuracy; `seed` makes runs reproducible.
    """

    hyperparams = ("lr", "sigma", "popsize", "seed", "betas", "eps", "maximize")
    state_keys = ("step", "func_evals", "exp_avg", "exp_avg_sq", "rng")
    _state_kinds = {"step": "count", "func_evals": "count", "exp_avg": "vector",
                    "exp_avg_sq": "vector", "rng": "rng"}

    def _check_state(self, where: str, state: dict[str, Any]) -> None:
        super()._check_state(where, state)
        missing = [k for k in self.state_keys if k not in state]
        if state and missing:  # a step starts from a whole state or from none
            raise ValueError(f"{where}: the state lacks {missing}")
        if any(v < 0 for v in state.get("exp_avg_sq", ())):
            raise ValueError(f"{where}: state['exp_avg_sq'] must hold numbers >= 0, got "
                             f"{state['exp_avg_sq']!r:.80}")

    def __init__(self, params: Iterable[Value], sigma: float = 0.1, popsize: int = 50,
                 lr: float = 0.01, seed: int | None = None,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 maximize: bool = False) -> None:
        super().__init__(params, lr, maximize)
        name = self.name
        self.sigma = check_number(name, "sigma", sigma, finite=True)
        if not self.sigma > 0:
            raise ValueError(f"{name}: invalid sigma={sigma!r}, it must be a positive number")
        self.popsize = check_int(name, "popsize", popsize, 2)
        if self.popsize % 2:
            raise ValueError(f"{name}: popsize must be even (antithetic pairs), got {popsize!r}")
        self.seed = _check_seed_or_none(name, seed)
        self._rng = random.Random(self.seed)
        self.betas = check_betas(name, betas)
        self.eps = check_non_negative(name, "eps", eps)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """popsize evaluations around the parameters, then one Adam step on the estimate."""
        closure = self._closure(closure)
        evaluate = _evaluate_value(self, closure)
        n, sigma = len(self.params), self.sigma
        # The state changes only once the whole population has been evaluated.
        state = dict(self.state) or dict(step=0, func_evals=0, exp_avg=[0.0] * n,
                                         exp_avg_sq=[0.0] * n,
                                         rng=_rng_state(random.Random(self.seed)))
        _set_rng_state(self._rng, state["rng"])
        x = self._get_x()

        # Antithetic pairs: evaluate x + sigma eps and x - sigma eps with the same eps.
        noise, losses, first = [], [], None
        try:
            for _ in range(self.popsize // 2):
                e = [self._rng.gauss(0.0, 1.0) for _ in range(n)]
                for sign in (1.0, -1.0):
                    self._set_x([xi + sign * sigma * ei for xi, ei in zip(x, e)])
                    result, f = evaluate()
                    first = result if first is None else first
                    losses.append(f)
                noise.append(e)
        finally:
            self._set_x(x)  # back to the centre (also when the closure raised)
        if all(f != f for f in losses):
            raise _all_nan(self.name, self.popsize)
        state["func_evals"] += self.popsize

        # g = 1 / (popsize sigma) sum_k (u_k+ - u_k-) eps_k, with u the centered ranks.
        u = centered_ranks(losses)
        scale = 1.0 / (self.popsize * sigma)
        g = [scale * sum((u[2 * k] - u[2 * k + 1]) * noise[k][j] for k in range(len(noise)))
             for j in range(n)]

        # Adam on the estimate (the same update as the Adam class, for one whole vector).
        beta1, beta2 = self.betas
        state["step"] += 1
        t = state["step"]
        m = state["exp_avg"] = [beta1 * mj + (1 - beta1) * gj
                                for mj, gj in zip(state["exp_avg"], g)]
        v = state["exp_avg_sq"] = [beta2 * vj + (1 - beta2) * gj * gj
                                   for vj, gj in zip(state["exp_avg_sq"], g)]
        step_size = self.lr / (1 - beta1 ** t)
        bias2 = math.sqrt(1 - beta2 ** t)
        for p, mj, vj in zip(self.params, m, v):
            p.data -= step_size * mj / (math.sqrt(vj) / bias2 + self.eps)
        state["rng"] = _rng_state(self._rng)
        self.state = state
        return first
