"""More first-order rules: the rest of torch.optim's element-wise family, and Lion.

Each class here updates every parameter from its own gradient and a few numbers of memory, like
Adam; they differ in what they remember and how they turn it into a step. NAdam, RAdam,
Adamax, Adadelta, Rprop and ASGD compute the numbers of their torch.optim namesakes (torch 2.13:
same arguments, defaults and formulas); Lion computes those of the `lion-pytorch` package.

    >>> from autodiff import Value
    >>> w = Value(3.0)
    >>> opt = Lion([w], lr=0.5)
    >>> for _ in range(3):
    ...     opt.zero_grad(); (w * w).backward(); opt.step()   # each step moves w by exactly lr
    >>> w.data
    1.5
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from autodiff import Value
from nn._checks import check_betas, check_bool, check_non_negative, check_number
from nn.optim.base import Optimizer, ieee_div

__all__ = ["NAdam", "RAdam", "Adamax", "Adadelta", "Rprop", "ASGD", "Lion", "TORCH_NAMESAKES"]


def _sign(x: float) -> float:
    """-1, 0 or 1 (and nan for nan), as torch.sign."""
    return (x > 0) - (x < 0) if x == x else x


class NAdam(Optimizer):
    """NAdam: Adam whose momentum looks one step ahead (Nesterov's idea), on a warming schedule.

        opt = NAdam(model.parameters(), lr=2e-3)
        opt.zero_grad(); loss.backward(); opt.step()
        print(opt.state[0]["mu_product"])

    Update for each parameter p with gradient g at step t = 1, 2, ... (m, v start at 0, the
    product of the momentum factors P at 1):

        g = g + weight_decay * p               (if weight_decay; p = p * (1 - lr wd) if decoupled)
        mu_t = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay))      (the momentum warms up)
        P = P * mu_t
        m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g^2
        d = sqrt(v / (1 - beta2^t)) + eps
        p = p - lr (1 - mu_t) / (1 - P) * g / d - lr mu_{t+1} / (1 - P mu_{t+1}) * m / d

    The last line is Adam's step with the momentum already applied once more: the gradient
    and the average are weighted as they will be after the next step.
    """

    hyperparams = ("lr", "betas", "eps", "weight_decay", "momentum_decay",
                   "decoupled_weight_decay", "maximize")

    def __init__(self, params: Iterable[Value], lr: float = 2e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False, *, maximize: bool = False) -> None:
        super().__init__(params, lr)
        name = self.name
        self.betas = check_betas(name, betas)
        self.eps = check_non_negative(name, "eps", eps)
        self.weight_decay = check_non_negative(name, "weight_decay", weight_decay)
        self.momentum_decay = check_non_negative(name, "momentum_decay", momentum_decay)
        self.decoupled_weight_decay = check_bool(name, "decoupled_weight_decay",
                                                 decoupled_weight_decay)
        self.maximize = check_bool(name, "maximize", maximize)

    def _state_keys(self) -> dict[str, str] | None:
        return {"step": "int", "exp_avg": "number", "exp_avg_sq": "non-negative",
                "mu_product": "number"}

    def step(self) -> None:
        beta1, beta2 = self.betas
        for p, g, state in zip(self.params, self._gradients(), self.state):
            if not state:
                state.update(step=0, exp_avg=0.0, exp_avg_sq=0.0, mu_product=1.0)
            state["step"] += 1
            t = state["step"]
            if self.weight_decay != 0:
                if self.decoupled_weight_decay:
                    p.data *= 1 - self.lr * self.weight_decay
                else:
                    g = g + self.weight_decay * p.data
            mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * self.momentum_decay))
            mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * self.momentum_decay))
            product = state["mu_product"] = state["mu_product"] * mu
            m = state["exp_avg"] = beta1 * state["exp_avg"] + (1 - beta1) * g
            v = state["exp_avg_sq"] = beta2 * state["exp_avg_sq"] + (1 - beta2) * g * g
            denom = math.sqrt(v / (1 - beta2 ** t)) + self.eps
            p.data += -self.lr * (1.0 - mu) / (1.0 - product) * ieee_div(g, denom)
            p.data += -self.lr * mu_next / (1.0 - product * mu_next) * ieee_div(m, denom)


class RAdam(Optimizer):
    """RAdam: Adam that walks like SGD with momentum until its variance estimate is reliable.

        opt = RAdam(model.parameters(), lr=1e-3)
        opt.zero_grad(); loss.backward(); opt.step()
        print(opt.state[0]["step"])

    Update for each parameter p with gradient g at step t = 1, 2, ... (m, v start at 0):

        g = g + weight_decay * p               (if weight_decay; p = p * (1 - lr wd) if decoupled)
        m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g^2
        rho_inf = 2 / (1 - beta2) - 1;  rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t)
        if rho_t > 5:   r = sqrt((rho_t - 4)(rho_t - 2) rho_inf
                                 / ((rho_inf - 4)(rho_inf - 2) rho_t))
                        p = p - lr * m / (1 - beta1^t) * sqrt(1 - beta2^t) / (sqrt(v) + eps) * r
        else:           p = p - lr * m / (1 - beta1^t)        (too few squares yet: no division)

    rho_t is how many gradients the average of squares effectively holds; the rectifier r < 1
    shrinks the adaptive step while that number is small. It replaces a warm-up schedule.
    """

    hyperparams = ("lr", "betas", "eps", "weight_decay", "decoupled_weight_decay", "maximize")

    def __init__(self, params: Iterable[Value], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, decoupled_weight_decay: bool = False, *,
                 maximize: bool = False) -> None:
        super().__init__(params, lr)
        name = self.name
        self.betas = check_betas(name, betas)
        self.eps = check_non_negative(name, "eps", eps)
        self.weight_decay = check_non_negative(name, "weight_decay", weight_decay)
        self.decoupled_weight_decay = check_bool(name, "decoupled_weight_decay",
                                                 decoupled_weight_decay)
        self.maximize = check_bool(name, "maximize", maximize)

    def _state_keys(self) -> dict[str, str] | None:
        return {"step": "int", "exp_avg": "number", "exp_avg_sq": "non-negative"}

    def step(self) -> None:
        beta1, beta2 = self.betas
        rho_inf = 2 / (1 - beta2) - 1
        for p, g, state in zip(self.params, self._gradients(), self.state):
            if not state:
                state.update(step=0, exp_avg=0.0, exp_avg_sq=0.0)
            state["step"] += 1
            t = state["step"]
            if self.weight_decay != 0:
                if self.decoupled_weight_decay:
                    p.data *= 1 - self.lr * self.weight_decay
                else:
                    g = g + self.weight_decay * p.data
            m = state["exp_avg"] = beta1 * state["exp_avg"] + (1 - beta1) * g
            v = state["exp_avg_sq"] = beta2 * state["exp_avg_sq"] + (1 - beta2) * g * g
            bias1, bias2 = 1 - beta1 ** t, 1 - beta2 ** t
            rho_t = rho_inf - 2 * t * beta2 ** t / bias2
            if rho_t > 5.0:
                rect = ((rho_t - 4) * (rho_t - 2) * rho_inf
                        / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
                adaptive = ieee_div(bias2 ** 0.5, math.sqrt(v) + self.eps)
                p.data -= m / bias1 * self.lr * adaptive * rect
            else:
                p.data -= m / bias1 * self.lr


class Adamax(Optimizer):
    """Adamax: Adam with the root mean square replaced by a decaying maximum of |g|.

        opt = Adamax(model.parameters(), lr=2e-3)
        opt.zero_grad(); loss.backward(); opt.step()
        print(opt.state[0]["exp_inf"])

    Update for each parameter p with gradient g at step t = 1, 2, ... (m, u start at 0):

        g = g + weight_decay * p                          (if weight_decay)
        m = beta1 * m + (1 - beta1) * g
        u = max(beta2 * u, |g| + eps)                     (the infinity norm of the history)
        p = p - lr / (1 - beta1^t) * m / u

    u needs no bias correction: a maximum does not start too small the way an average does.
    """

    hyperparams = ("lr", "betas", "eps", "weight_decay", "maximize")

    def __init__(self, params: Iterable[Value], lr: float = 2e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, *, maximize: bool = False) -> None:
        super().__init__(params, lr)
        name = self.name
        self.betas = check_betas(name, betas)
        self.eps = check_non_negative(name, "eps", eps)
        self.weight_decay = check_non_negative(name, "weight_decay", weight_decay)
        self.maximize = check_bool(name, "maximize", maximize)

    def _state_keys(self) -> dict[str, str] | None:
        return {"step": "int", "exp_avg": "number", "exp_inf": "non-negative"}

    def step(self) -> None:
        beta1, beta2 = self.betas
        for p, g, state in zip(self.params, self._gradients(), self.state):
            if not state:
                state.update(step=0, exp_avg=0.0, exp_inf=0.0)
            state["step"] += 1
            if self.weight_decay != 0:
                g = g + self.weight_decay * p.data
            m = state["exp_avg"] = beta1 * state["exp_avg"] + (1 - beta1) * g
            u = state["exp_inf"] = max(beta2 * state["exp_inf"], abs(g) + self.eps)
            p.data -= self.lr / (1 - beta1 ** state["step"]) * ieee_div(m, u)


class Adadelta(Optimizer):
    """Adadelta: a step whose units are those of p, from the average size of past steps.

        opt = Adadelta(model.parameters(), lr=1.0)
        opt.zero_grad(); loss.backward(); opt.step()
        print(opt.state[0]["acc_delta"])

    Update for each parameter p with gradient g (v, a start at 0):

        g = g + weight_decay * p                          (if weight_decay)
        v = rho * v + (1 - rho) * g^2                     (average square gradient)
        delta = sqrt(a + eps) / sqrt(v + eps) * g         (RMS of past steps / RMS of gradients)
        a = rho * a + (1 - rho) * delta^2                 (average square step)
        p = p - lr * delta

    The ratio of the two root mean squares acts as a per-weight learning rate that Adadelta
    finds for itself; lr = 1 (the default) uses it as it is.
    """

    hyperparams = ("lr", "rho", "eps", "weight_decay", "maximize")

    def __init__(self, params: Iterable[Value], lr: float = 1.0, rho: float = 0.9,
                 eps: float = 1e-6, weight_decay: float = 0.0, *,
                 maximize: bool = False) -> None:
        super().__init__(params, lr)
        name = self.name
        self.rho = check_non_negative(name, "rho", rho)
        if self.rho > 1:
            raise ValueError(f"{name}: invalid rho={self.rho!r}, it must be in [0, 1]")
        self.eps = check_non_negative(name, "eps", eps)
        self.weight_decay = check_non_negative(name, "weight_decay", weight_decay)
        self.maximize = check_bool(name, "maximize", maximize)

    def _state_keys(self) -> dict[str, str] | None:
        return {"step": "int", "square_avg": "non-negative", "acc_delta": "non-negative"}

    def step(self) -> None:
        rho = self.rho
        for p, g, state in zip(self.params, self._gradients(), self.state):
            if not state:
                state.update(step=0, square_avg=0.0, acc_delta=0.0)
            state["step"] += 1
            if self.weight_decay != 0:
                g = g + self.weight_decay * p.data
            v = state["square_avg"] = rho * state["square_avg"] + (1 - rho) * g * g
            delta = ieee_div(math.sqrt(state["acc_delta"] + self.eps), math.sqrt(v + self.eps)) * g
            state["acc_delta"] = rho * state["acc_delta"] + (1 - rho) * delta * delta
            p.data -= self.lr * delta


class Rprop(Optimizer):
    """Rprop: only the sign of the gradient counts; each weight's step size adapts by itself.

        opt = Rprop(model.parameters(), lr=1e-2)
        opt.zero_grad(); loss.backward(); opt.step()
        print(opt.state[0]["step_size"])

    Update for each parameter p with gradient g (the previous gradient g_prev starts at 0, the
    step size s at lr):

        g_prev * g > 0:  s = min(s * etas[1], step_sizes[1])     (same sign again: speed up)
        g_prev * g < 0:  s = max(s * etas[0], step_sizes[0]); g = 0   (overshot: slow down,
                                                                        and skip this step)
        p = p - sign(g) * s;  g_prev = g

    Meant for full-batch training: with noisy mini-batch gradients the signs flip at random.
    """

    hyperparams = ("lr", "etas", "step_sizes", "maximize")

    def __init__(self, params: Iterable[Value], lr: float = 1e-2,
                 etas: tuple[float, float] = (0.5, 1.2),
                 step_sizes: tuple[float, float] = (1e-6, 50), *,
                 maximize: bool = False) -> None:
        super().__init__(params, lr)
        name = self.name
        self.etas = _pair(name, "etas", etas)
        if not 0.0 < self.etas[0] < 1.0 < self.etas[1]:
            raise ValueError(f"{name}: invalid etas={self.etas!r}, they must satisfy "
                             "0 < etas[0] < 1 < etas[1]")
        self.step_sizes = _pair(name, "step_sizes", step_sizes)
        if not 0.0 <= self.step_sizes[0] <= self.step_sizes[1]:
            raise ValueError(f"{name}: invalid step_sizes={self.step_sizes!r}, they must "
                             "satisfy 0 <= step_sizes[0] <= step_sizes[1]")
        self.maximize = check_bool(name, "maximize", maximize)

    def _state_keys(self) -> dict[str, str] | None:
        return {"step": "int", "prev": "number", "step_size": "non-negative"}

    def step(self) -> None:
        eta_minus, eta_plus = self.etas
        smallest, largest = self.step_sizes
        for p, g, state in zip(self.params, self._gradients(), self.state):
            if not state:
                state.update(step=0, prev=0.0, step_size=self.lr)
            state["step"] += 1
            agree = _sign(g * state["prev"])
            factor = eta_plus if agree > 0 else eta_minus if agree < 0 else 1.0
            s = state["step_size"] = min(max(state["step_size"] * factor, smallest), largest)
            if agree < 0:
                g = 0.0  # the last step jumped over a minimum: wait one step
            p.data -= _sign(g) * s
            state["prev"] = g


class ASGD(Optimizer):
    """ASGD: SGD with a decaying step that also keeps a running average of the weights.

        opt = ASGD(model.parameters(), lr=1e-2, t0=100)
        opt.zero_grad(); loss.backward(); opt.step()
        print(opt.state[0]["ax"])        # the averaged weight

    Update for each parameter p with gradient g at step t = 1, 2, ... (eta starts at lr, mu at
    1, the average ax at 0):

        g = g + weight_decay * p                          (if weight_decay)
        p = p * (1 - lambd * eta) - eta * g
        ax = ax + mu * (p - ax)                           (ax = p while mu = 1)
        eta = lr / (1 + lambd * lr * t)^alpha;  mu = 1 / max(1, t - t0)

    Averaging starts after t0 steps: from then on ax is the mean of the weights since, which
    is less noisy than the last weight (Polyak and Juditsky's averaging). The step itself uses
    p, never ax; read ax to evaluate the averaged model.
    """

    hyperparams = ("lr", "lambd", "alpha", "t0", "weight_decay", "maximize")

    def __init__(self, params: Iterable[Value], lr: float = 1e-2, lambd: float = 1e-4,
                 alpha: float = 0.75, t0: float = 1e6, weight_decay: float = 0.0, *,
                 maximize: bool = False) -> None:
        super().__init__(params, lr)
        name = self.name
        self.lambd = check_number(name, "lambd", lambd, finite=True)
        self.alpha = check_number(name, "alpha", alpha, finite=True)
        self.t0 = check_number(name, "t0", t0, finite=True)
        self.weight_decay = check_non_negative(name, "weight_decay", weight_decay)
        self.maximize = check_bool(name, "maximize", maximize)

    def _state_keys(self) -> dict[str, str] | None:
        return {"step": "int", "eta": "number", "mu": "number", "ax": "number"}

    def step(self) -> None:
        for p, g, state in zip(self.params, self._gradients(), self.state):
            if not state:
                state.update(step=0, eta=self.lr, mu=1.0, ax=0.0)
            state["step"] += 1
            t, eta, mu = state["step"], state["eta"], state["mu"]
            if self.weight_decay != 0:
                g = g + self.weight_decay * p.data
            p.data *= 1 - self.lambd * eta  # decay
            p.data -= eta * g               # the SGD step
            if mu != 1:
                state["ax"] += (p.data - state["ax"]) * mu
            else:
                state["ax"] = p.data
            state["eta"] = self.lr / ((1 + self.lambd * self.lr * t) ** self.alpha)
            state["mu"] = 1 / max(1, t - self.t0)


class Lion(Optimizer):
    """Lion: step by the sign of a momentum; every weight moves by exactly lr.

        opt = Lion(model.parameters(), lr=1e-4, weight_decay=1.0)
        opt.zero_grad(); loss.backward(); opt.step()
        print(opt.state[0]["exp_avg"])

    Update for each parameter p with gradient g (m starts at 0):

        p = p * (1 - lr * weight_decay)                   (decoupled, as AdamW)
        c = beta1 * m + (1 - beta1) * g                   (where to look: a blend of m and g)
        p = p - lr * sign(c)
        m = beta2 * m + (1 - beta2) * g                   (a slower average to remember)

    With `decoupled_weight_decay=True` the decay no longer scales with the size of lr:
    p = p * (1 - lr / lr0 * weight_decay), lr0 being the lr the optimizer was made with, so
    weight_decay is the fraction taken off per step (as lion-pytorch's option of that name;
    a schedule that lowers lr lowers the decay in proportion).

    Sign-SGD with momentum, found by a program search (Chen et al., 2023, "Symbolic Discovery
    of Optimization Algorithms"): only the direction of each coordinate counts, so the update
    has the same size for every weight. Its lr is typically 3-10 times smaller than AdamW's,
    its weight_decay as much larger. Equal to the `lion-pytorch` package's Lion.
    """

    hyperparams = ("lr", "betas", "weight_decay", "decoupled_weight_decay", "maximize")

    def __init__(self, params: Iterable[Value], lr: float = 1e-4,
                 betas: tuple[float, float] = (0.9, 0.99), weight_decay: float = 0.0,
                 decoupled_weight_decay: bool = False, *, maximize: bool = False) -> None:
        super().__init__(params, lr)
        name = self.name
        self.betas = check_betas(name, betas)
        self.weight_decay = check_non_negative(name, "weight_decay", weight_decay)
        self.decoupled_weight_decay = check_bool(name, "decoupled_weight_decay",
                                                 decoupled_weight_decay)
        if self.decoupled_weight_decay and self.lr == 0:
            raise ValueError(f"{name}: decoupled_weight_decay divides by lr, got lr=0.0")
        self.maximize = check_bool(name, "maximize", maximize)
        self.lr0 = self.lr  # what decoupled_weight_decay divides by (saved by state_dict)

    def _state_keys(self) -> dict[str, str] | None:
        return {"exp_avg": "number"}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "lr0": self.lr0}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        where = f"{self.name}.load_state_dict"
        lr0 = state_dict.get("lr0") if isinstance(state_dict, dict) else None
        lr0 = check_number(where, "lr0", lr0, finite=True) if lr0 is not None else None
        if lr0 is not None and lr0 <= 0:
            raise ValueError(f"{where}: lr0 must be positive, got {lr0!r}")
        super().load_state_dict(state_dict)  # checks the rest; raises before changing anything
        self.lr0 = self.lr if lr0 is None else lr0

    def step(self) -> None:
        beta1, beta2 = self.betas
        decay = (self.weight_decay / self.lr0 if self.decoupled_weight_decay
                 else self.weight_decay)
        for p, g, state in zip(self.params, self._gradients(), self.state):
            m = state.get("exp_avg", 0.0)
            p.data *= 1.0 - self.lr * decay
            p.data -= self.lr * _sign(beta1 * m + (1 - beta1) * g)
            state["exp_avg"] = beta2 * m + (1 - beta2) * g


def _pair(owner: str, name: str, value: object) -> tuple[float, float]:
    """A pair of finite numbers, as a tuple (JSON brings lists back)."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise TypeError(f"{owner}: {name} must be a pair of numbers, got {value!r}")
    return (check_number(owner, f"{name}[0]", value[0], finite=True),
            check_number(owner, f"{name}[1]", value[1], finite=True))


#: The classes here with a torch.optim namesake of the same numbers and state per weight (Lion's
#: reference is the lion-pytorch package, not torch.optim).
TORCH_NAMESAKES: tuple[type[Optimizer], ...] = (NAdam, RAdam, Adamax, Adadelta, Rprop, ASGD)
