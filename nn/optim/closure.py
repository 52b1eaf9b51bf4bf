"""The methods that evaluate the loss several times per step: `step(closure)`.

`ClosureOptimizer` is their base (state is one JSON dict for the whole parameter vector, checked
entry by entry on loading, and a step that fails changes nothing); `LBFGS` and
`ConjugateGradient` pick each step's length with the one strong-Wolfe line search of
`nn.optim.linesearch`.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable, Iterable, Sequence
from numbers import Real
from typing import Any

from autodiff import Value, is_grad_enabled
from nn._checks import (check_bool, check_choice, check_int, check_non_negative, check_number,
                        check_seed)
from nn._checks import grad_of as _grad_of  # the one reader of p.grad in nn
from nn.optim.base import Optimizer, _check_params
from nn.optim.linesearch import dot, strong_wolfe

__all__ = ["ClosureOptimizer", "LBFGS", "ConjugateGradient", "CG_BETAS", "cg_beta"]


# The first-order optimizers (nn.optim.first_order) take one gradient per step. The ones here
# evaluate the loss several times per step (at trial points of a line search, or at every member
# of a population), so `step` takes a function that computes it, as torch.optim.LBFGS does:
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
    try:
        return float(loss)
    except OverflowError:  # an int past the largest float (10**400, say)
        raise OverflowError(f"{owner}: the closure returned an int too large for a float "
                            f"(about 10**{int(loss.bit_length() * math.log10(2))}); "
                            "return the loss as a Value or a float") from None


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
    #: None, or a `time.monotonic()` time after which a step gives up: the long loops of a step
    #: that run between two closure calls (CMA-ES's n^2 and n^3 updates) check it and raise
    #: TimeoutError, with the parameters and the state as they were. A caller that must
    #: answer in time (the playground's server) sets it; the closure can check it too.
    deadline: float | None = None

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
        # The fresh optimizer also recomputes what depends on the hyper-parameters (CMA-ES's
        # weights and rates, for one).
        where, checked, initial_lr = self._checked_header(state_dict, self.params)
        state = state_dict["state"]
        if not isinstance(state, dict):
            raise ValueError(f"{where}: state must be a dict, got {state!r:.80}")
        unknown = sorted(set(state) - set(self.state_keys))
        if unknown:
            raise ValueError(f"{where}: unknown state entries {unknown}")
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
        if state and self._whole_state:
            missing = [k for k in self.state_keys if k not in state]
            if missing:
                raise ValueError(f"{where}: the state lacks {missing}")
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
    #: True where a step starts from a whole state or from none (every entry of `state_keys`).
    _whole_state: bool = False


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
    or t from the strong-Wolfe line search of `nn.optim.linesearch` when
    line_search_fn="strong_wolfe".
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
        x = x + t * d                   t from the strong-Wolfe line search of nn.optim.linesearch

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
