"""Matrix rules: optimizers that update a layer's whole weight matrix at once.

SGD, Adam and their family treat every weight on its own. Muon and Adafactor look at a layer's
weights as the matrix they are (one row per neuron, one column per input, as torch's
`Linear.weight`): Muon orthogonalises the matrix of a step, Adafactor keeps one second-moment
number per row and one per column instead of one per weight. So their `params` are matrices
of Values (lists of rows); `matrices(model)` hands out a model's own, in torch's order (each
layer's weight matrix, then its bias vector):

    >>> from nn import MLP
    >>> model = MLP(2, [3, 1], seed=0)
    >>> [shape_of(item) for item in matrices(model)]
    [(3, 2), (3,), (1, 3), (1,)]
    >>> opt = Adafactor(matrices(model), lr=0.01)
    >>> len(opt.params) == len(model.parameters())     # every weight, each once
    True

A single Value and a list of Values (a vector) are accepted where torch accepts a 0-d or 1-d
tensor (Adafactor: unfactored, as torch does) and refused with a message where torch refuses
one (Muon: only matrices).
"""

from __future__ import annotations

import copy
import math
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from autodiff import Value
from nn._checks import check_bool, check_choice, check_int, check_non_negative, check_number
from nn._checks import grad_of as _grad_of
from nn.optim.base import Optimizer, _check_params, ieee_div

__all__ = ["MatrixOptimizer", "Muon", "Adafactor", "matrices", "shape_of", "newton_schulz"]

Matrix = list[list[float]]


def matrices(model: Any) -> list[Any]:
    """A model's parameters as torch holds them: per layer its weight matrix (one row per
    neuron), then its bias vector. Works for an MLP, a Layer and a Neuron."""
    layers = getattr(model, "layers", None)
    if layers is None:
        layers = [model] if hasattr(model, "neurons") else None
    if layers is None and hasattr(model, "w") and hasattr(model, "b"):
        return [[list(model.w)], [model.b]]  # a Neuron: a 1 x nin matrix and one bias
    if layers is None:
        raise TypeError(f"matrices(): expected an MLP, a Layer or a Neuron, got "
                        f"{type(model).__name__}")
    items: list[Any] = []
    for layer in layers:
        items.append([list(n.w) for n in layer.neurons])
        items.append([n.b for n in layer.neurons])
    return items


def shape_of(item: Any) -> tuple[int, ...]:
    """() for a Value, (n,) for a list of Values, (rows, cols) for a list of rows."""
    if isinstance(item, Value):
        return ()
    if isinstance(item, (list, tuple)) and item and all(isinstance(v, Value) for v in item):
        return (len(item),)
    if (isinstance(item, (list, tuple)) and item
            and all(isinstance(r, (list, tuple)) and r for r in item)
            and len({len(r) for r in item}) == 1
            and all(isinstance(v, Value) for r in item for v in r)):
        return (len(item), len(item[0]))
    raise TypeError(f"expected a Value, a list of Values or a matrix (a list of equally long "
                    f"rows of Values), got {item!r:.80}")


def _flat(item: Any, shape: tuple[int, ...]) -> list[Value]:
    if len(shape) == 0:
        return [item]
    if len(shape) == 1:
        return list(item)
    return [v for row in item for v in row]


def _rows(flat: Sequence[float], shape: tuple[int, ...]) -> Any:
    """A flat list of numbers in the item's shape: a number, a list, or a list of rows."""
    if len(shape) == 0:
        return flat[0]
    if len(shape) == 1:
        return list(flat)
    cols = shape[1]
    return [list(flat[r * cols:(r + 1) * cols]) for r in range(shape[0])]


def _lerp(a: float, b: float, w: float) -> float:
    """a + w (b - a), written as torch's lerp is, so that w = 1 gives exactly b."""
    return a + w * (b - a) if abs(w) < 0.5 else b - (b - a) * (1 - w)


def _matmul(a: Matrix, b: Matrix) -> Matrix:
    bt = list(zip(*b))
    return [[math.fsum(x * y for x, y in zip(row, col)) for col in bt] for row in a]


def _transpose(a: Matrix) -> Matrix:
    return [list(col) for col in zip(*a)]


def newton_schulz(g: Matrix, coefficients: Sequence[float] = (3.4445, -4.7750, 2.0315),
                  steps: int = 5, eps: float = 1e-7) -> Matrix:
    """Orthogonalise g: about U V^T for g = U S V^T (every singular value pushed toward 1).

    X = g / |g|_F (all singular values now in [0, 1]); then `steps` times

        A = X X^T;  X = a X + (b A + c A A) X

    which maps each singular value s to a s + b s^3 + c s^5, a polynomial that pushes small
    ones up fast and leaves the result roughly between 0.7 and 1.2 (the coefficients trade
    exactness for speed). torch's Muon runs it in bfloat16; this one runs in float64.
    """
    a, b, c = coefficients
    wide = len(g) <= len(g[0])
    x = [list(r) for r in g] if wide else _transpose(g)  # X X^T is then the smaller product
    norm = math.sqrt(math.fsum(v * v for r in x for v in r))
    x = [[v / max(norm, eps) for v in r] for r in x]
    for _ in range(steps):
        gram = _matmul(x, _transpose(x))
        poly = [[b * gij + c * aij for gij, aij in zip(gr, ar)]
                for gr, ar in zip(gram, _matmul(gram, gram))]
        x = [[a * xij + pij for xij, pij in zip(xr, pr)] for xr, pr in zip(x, _matmul(poly, x))]
    return x if wide else _transpose(x)


class MatrixOptimizer(Optimizer):
    """Base of the rules that see whole matrices: `params` is a list of items (matrices of
    Values, vectors of Values or single Values), and `state[k]` belongs to item k.

    `self.params` is the flat list of every Value (for zero_grad and the playground), in item
    order; `self.shapes[k]` is item k's shape. State entries are numbers, lists and lists of
    rows, shaped as `_state_shapes` says, and saved as JSON by `state_dict()`.
    """

    #: Shapes the rule accepts: 0, 1 and/or 2 dimensions.
    dims: tuple[int, ...] = (0, 1, 2)

    def __init__(self, params: Iterable[Any], lr: float) -> None:
        name = self.name
        if isinstance(params, Value) or isinstance(params, (set, frozenset)):
            raise TypeError(f"{name}: params must be a list of matrices of Values (see "
                            f"nn.optim.matrices(model)), got {type(params).__name__}")
        items = list(params)
        if not items:
            raise ValueError(f"{name}: got an empty parameter list")
        self.items = items  # as given: the matrices, for load_state_dict's check
        self.shapes: list[tuple[int, ...]] = []
        flat: list[Value] = []
        for k, item in enumerate(items):
            try:
                shape = shape_of(item)
            except TypeError as error:
                raise TypeError(f"{name}: params[{k}]: {error}") from None
            if len(shape) not in self.dims:
                raise ValueError(self._refuse(k, shape))
            self.shapes.append(shape)
            flat.extend(_flat(item, shape))
        self.params = _check_params(name, flat)
        self.lr = lr
        self.initial_lr: float | None = None
        self.state: list[dict[str, Any]] = [{} for _ in items]  # type: ignore[assignment]

    def _refuse(self, k: int, shape: tuple[int, ...]) -> str:
        what = "a single Value" if not shape else f"a vector of {shape[0]} Values"
        return f"{self.name}: params[{k}] is {what}; {self.name} updates matrices only"

    def _items(self) -> list[tuple[tuple[int, ...], list[Value], list[float]]]:
        """(shape, its Values, their gradients) per item, all gradients read before any
        weight changes (negated with maximize)."""
        sign = -1.0 if getattr(self, "maximize", False) else 1.0
        grads = [sign * _grad_of(p, self.name, i) for i, p in enumerate(self.params)]
        out, start = [], 0
        for shape in self.shapes:
            size = math.prod(shape)
            out.append((shape, self.params[start:start + size], grads[start:start + size]))
            start += size
        return out

    def _state_shapes(self, shape: tuple[int, ...]) -> dict[str, Any]:
        """{key: "int" | a shape} of the state a step keeps for an item of this shape."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        sd = super().state_dict()
        sd["state"] = copy.deepcopy(self.state)
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what `state_dict()` saved; everything is checked before anything changes."""
        # the fresh optimizer is built on the same matrices
        where, checked, initial_lr = self._checked_header(state_dict, self.items)
        state = state_dict["state"]
        if not isinstance(state, list) or len(state) != len(self.shapes):
            size = len(state) if isinstance(state, list) else type(state).__name__
            raise ValueError(f"{where}: the state has {size} entries, this optimizer has "
                             f"{len(self.shapes)} matrices")
        restored = [_checked_item_state(where, k, s, self._state_shapes(shape))
                    for k, (s, shape) in enumerate(zip(state, self.shapes))]
        for name in self.hyperparams:  # only now, with every check passed, change anything
            setattr(self, name, getattr(checked, name))
        self.initial_lr = initial_lr
        self.state = restored


def _checked_item_state(where: str, k: int, s: Any, shapes: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(s, dict):
        raise ValueError(f"{where}: state[{k}] must be a dict, got {s!r:.80}")
    if s and set(s) != set(shapes):
        raise ValueError(f"{where}: state[{k}] has the keys {sorted(s)}, a step keeps "
                         f"{sorted(shapes)} (or nothing yet)")
    out = {}
    for key, value in s.items():
        shape = shapes[key]
        name = f"state[{k}][{key!r}]"
        if shape == "int":
            out[key] = check_int(where, name, value, 1)
            continue
        numbers = _numbers(value, shape)
        if numbers is None:
            raise ValueError(f"{where}: {name} must be finite numbers of shape {shape}, got "
                             f"{value!r:.80}")
        out[key] = _rows(numbers, shape)
    return out


def _numbers(value: Any, shape: tuple[int, ...]) -> list[float] | None:
    """The finite numbers of `value` in the given shape, flat, or None if it does not fit."""
    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    if len(shape) == 0:
        return [float(value)] if number(value) else None
    if not isinstance(value, list) or len(value) != shape[0]:
        return None
    if len(shape) == 1:
        return [float(v) for v in value] if all(map(number, value)) else None
    if not all(isinstance(r, list) and len(r) == shape[1] and all(map(number, r))
               for r in value):
        return None
    return [float(v) for r in value for v in r]


class Muon(MatrixOptimizer):
    """Muon: momentum, then the step matrix orthogonalised (every direction the same size).

        opt = Muon(matrices(model), lr=0.02)      # weight matrices; biases get AdamW
        opt.zero_grad(); loss.backward(); opt.step()
        print(opt.state[0]["momentum_buffer"])

    Update for each weight matrix W with gradient matrix G (B starts at 0):

        B = momentum * B + (1 - momentum) * G
        U = (1 - momentum) * G + momentum * B             (nesterov; else U = B)
        O = newton_schulz(U)                              (about U's polar factor: U = P S Q^T
                                                           becomes P Q^T, singular values ~1)
        W = W * (1 - lr * weight_decay)
        W = W - lr * sqrt(max(1, rows / cols)) * O        (adjust_lr_fn "original"; or
                                                           0.2 sqrt(max(rows, cols)) for
                                                           "match_rms_adamw")

    A gradient matrix is usually dominated by a few directions (its largest singular values);
    orthogonalising it gives the rare directions the same step as the dominant ones. torch's
    Muon (2.13) runs Newton-Schulz in bfloat16; this one in float64, and it equals torch's own
    iteration run in float64 (to 1e-9).

    Orthogonalising needs a matrix. torch's Muon refuses anything else and its documentation
    says to give the biases to AdamW; here `others="adamw"` (the default) does that inside
    Muon, with Muon's lr and weight_decay and AdamW's betas (0.9, 0.999) and eps 1e-8, so that
    `Muon(matrices(model))` trains a whole network. `others="refuse"` refuses them, as torch.
    """

    hyperparams = ("lr", "weight_decay", "momentum", "nesterov", "ns_coefficients", "eps",
                   "ns_steps", "adjust_lr_fn", "others")

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, weight_decay: float = 0.1,
                 momentum: float = 0.95, nesterov: bool = True,
                 ns_coefficients: tuple[float, float, float] = (3.4445, -4.7750, 2.0315),
                 eps: float = 1e-7, ns_steps: int = 5, adjust_lr_fn: str | None = None,
                 others: str = "adamw") -> None:
        self.others = check_choice("Muon", "others", others, ("adamw", "refuse"))
        super().__init__(params, lr)
        name = self.name
        self.weight_decay = check_non_negative(name, "weight_decay", weight_decay)
        self.momentum = check_non_negative(name, "momentum", momentum)
        self.nesterov = check_bool(name, "nesterov", nesterov)
        if (isinstance(ns_coefficients, (str, bytes)) or not hasattr(ns_coefficients, "__len__")
                or len(ns_coefficients) != 3):
            raise TypeError(f"{name}: ns_coefficients must be three numbers (a, b, c), got "
                            f"{ns_coefficients!r}")
        self.ns_coefficients = tuple(check_number(name, f"ns_coefficients[{i}]", c, finite=True)
                                     for i, c in enumerate(ns_coefficients))
        self.eps = check_non_negative(name, "eps", eps)
        self.ns_steps = check_int(name, "ns_steps", ns_steps, 0)
        if self.ns_steps >= 100:
            raise ValueError(f"{name}: invalid ns_steps={ns_steps!r}, it must be < 100")
        self.adjust_lr_fn = (None if adjust_lr_fn is None else
                             check_choice(name, "adjust_lr_fn", adjust_lr_fn,
                                          ("original", "match_rms_adamw")))

    @property
    def dims(self) -> tuple[int, ...]:  # type: ignore[override]
        return (0, 1, 2) if self.others == "adamw" else (2,)

    def _refuse(self, k: int, shape: tuple[int, ...]) -> str:
        what = "a single Value" if not shape else f"a vector of {shape[0]} Values"
        return (f"Muon: params[{k}] is {what}; with others='refuse' Muon updates weight "
                "matrices only (as torch's): give biases and other parameters to another "
                "optimizer, e.g. AdamW, or let others='adamw' do that")

    def _state_shapes(self, shape: tuple[int, ...]) -> dict[str, Any]:
        if len(shape) == 2:
            return {"momentum_buffer": shape}
        return {"step": "int", "exp_avg": shape, "exp_avg_sq": shape}  # AdamW's

    def step(self) -> None:
        mom = self.momentum
        for (shape, values, grads), state in zip(self._items(), self.state):
            if len(shape) < 2:
                self._adamw(values, grads, state, shape)
                continue
            rows, cols = shape
            g = _rows(grads, shape)
            buf = state.get("momentum_buffer") or [[0.0] * cols for _ in range(rows)]
            buf = [[_lerp(b, gi, 1 - mom) for b, gi in zip(br, gr)] for br, gr in zip(buf, g)]
            state["momentum_buffer"] = buf
            if self.nesterov:
                update = [[_lerp(gi, b, mom) for gi, b in zip(gr, br)] for gr, br in zip(g, buf)]
            else:
                update = buf
            o = newton_schulz(update, self.ns_coefficients, self.ns_steps, self.eps)
            if self.adjust_lr_fn in (None, "original"):
                adjusted = self.lr * math.sqrt(max(1, rows / cols))
            else:
                adjusted = self.lr * 0.2 * math.sqrt(max(rows, cols))
            for p, oij in zip(values, (v for r in o for v in r)):
                p.data *= 1 - self.lr * self.weight_decay
                p.data -= adjusted * oij

    def _adamw(self, values: list[Value], grads: list[float], state: dict[str, Any],
               shape: tuple[int, ...]) -> None:
        """A bias or a single weight: AdamW's step (see nn.optim.AdamW), with Muon's lr."""
        beta1, beta2, eps = 0.9, 0.999, 1e-8
        if not state:
            state.update(step=0, exp_avg=_rows([0.0] * len(values), shape),
                         exp_avg_sq=_rows([0.0] * len(values), shape))
        state["step"] += 1
        t = state["step"]
        ms = state["exp_avg"] if shape else [state["exp_avg"]]
        vs = state["exp_avg_sq"] if shape else [state["exp_avg_sq"]]
        new_m, new_v = [], []
        for p, g, m, v in zip(values, grads, ms, vs):
            p.data *= 1 - self.lr * self.weight_decay
            m = beta1 * m + (1 - beta1) * g
            v = beta2 * v + (1 - beta2) * g * g
            denom = math.sqrt(v) / math.sqrt(1 - beta2 ** t) + eps
            p.data -= self.lr / (1 - beta1 ** t) * ieee_div(m, denom)
            new_m.append(m)
            new_v.append(v)
        state["exp_avg"], state["exp_avg_sq"] = _rows(new_m, shape), _rows(new_v, shape)


class Adafactor(MatrixOptimizer):
    """Adafactor: Adam's second moment for a matrix kept as one number per row and per column.

        opt = Adafactor(matrices(model), lr=1e-2)
        opt.zero_grad(); loss.backward(); opt.step()
        print(opt.state[0]["row_var"], opt.state[0]["col_var"])

    Update for each item P (a matrix, a vector or one Value) with gradient G at step t:

        beta2_t = 1 - t^beta2_decay;  rho = min(lr, 1 / sqrt(t))
        alpha = max(eps2, rms(P)) * rho                   (steps relative to P's size)
        P = P * (1 - lr * weight_decay)
        matrix:  R = beta2_t R + (1 - beta2_t) mean_j G_ij^2      (one number per row)
                 C = beta2_t C + (1 - beta2_t) mean_i G_ij^2      (one per column)
                 V_ij = R_i C_j / max(mean(R), eps1)              (rank-one estimate of v)
        else:    V = beta2_t V + (1 - beta2_t) G^2                (as Adam, unfactored)
        U = G / sqrt(max(V, eps1^2));  P = P - alpha / max(1, rms(U) / d) * U

    An n x m matrix keeps n + m numbers instead of n m. rms(x) = sqrt(mean of x^2); eps1 None
    means the float64 machine epsilon. No momentum. torch 2.13's Adafactor, number for number.
    """

    hyperparams = ("lr", "beta2_decay", "eps", "d", "weight_decay", "maximize")

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, beta2_decay: float = -0.8,
                 eps: tuple[float | None, float] = (None, 1e-3), d: float = 1.0,
                 weight_decay: float = 0.0, *, maximize: bool = False) -> None:
        super().__init__(params, lr)
        name = self.name
        self.beta2_decay = check_number(name, "beta2_decay", beta2_decay, finite=True)
        if self.beta2_decay > 0:
            raise ValueError(f"{name}: invalid beta2_decay={beta2_decay!r}, it must be <= 0")
        if isinstance(eps, (str, bytes)) or not hasattr(eps, "__len__") or len(eps) != 2:
            raise TypeError(f"{name}: eps must be a pair (eps1 or None, eps2), got {eps!r}")
        self.eps = (None if eps[0] is None else check_non_negative(name, "eps[0]", eps[0]),
                    check_non_negative(name, "eps[1]", eps[1]))
        self.d = check_number(name, "d", d, finite=True)
        if self.d < 1:
            raise ValueError(f"{name}: invalid d={d!r}, the clipping threshold must be >= 1")
        self.weight_decay = check_non_negative(name, "weight_decay", weight_decay)
        self.maximize = check_bool(name, "maximize", maximize)

    def _state_shapes(self, shape: tuple[int, ...]) -> dict[str, Any]:
        if len(shape) == 2:
            return {"step": "int", "row_var": (shape[0],), "col_var": (shape[1],)}
        return {"step": "int", "variance": shape}

    def step(self) -> None:
        eps1 = sys.float_info.epsilon if self.eps[0] is None else self.eps[0]
        eps2 = self.eps[1]
        for (shape, values, g), state in zip(self._items(), self.state):
            if not state:
                state.update({key: 0 if kind == "int" else _rows([0.0] * math.prod(kind), kind)
                              for key, kind in self._state_shapes(shape).items()})
            state["step"] += 1
            t = float(state["step"])
            w = t ** self.beta2_decay  # 1 - beta2_t: the weight of the new squares
            rho = min(self.lr, 1 / t ** 0.5)
            p = [v.data for v in values]
            alpha = max(eps2, _rms(p)) * rho
            if self.weight_decay != 0:
                p = [x * (1 - self.lr * self.weight_decay) for x in p]
            if len(shape) == 2:
                rows, cols = shape
                sq = [gi * gi for gi in g]
                row_mean = [math.fsum(sq[r * cols:(r + 1) * cols]) / cols for r in range(rows)]
                col_mean = [math.fsum(sq[c::cols]) / rows for c in range(cols)]
                r_var = state["row_var"] = [_lerp(a, b, w) for a, b in
                                            zip(state["row_var"], row_mean)]
                c_var = state["col_var"] = [_lerp(a, b, w) for a, b in
                                            zip(state["col_var"], col_mean)]
                scale = max(math.fsum(r_var) / rows, eps1)
                var = [ri * cj / scale for ri in r_var for cj in c_var]
            else:
                old = state["variance"] if shape else [state["variance"]]
                var = [_lerp(a, gi * gi, w) for a, gi in zip(old, g)]
                state["variance"] = _rows(var, shape)
            update = [ieee_div(gi, math.sqrt(max(vi, eps1 * eps1))) for gi, vi in zip(g, var)]
            step = alpha / max(1.0, _rms(update) / self.d)
            for v, x, u in zip(values, p, update):
                v.data = x - step * u


def _rms(xs: Sequence[float]) -> float:
    """sqrt(mean of x^2): the typical size of an entry."""
    return math.sqrt(math.fsum(x * x for x in xs)) / math.sqrt(len(xs))
