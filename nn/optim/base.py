"""The base of every optimizer: parameters in a fixed order, a learning rate, per-parameter state.

`Optimizer` holds what all of them share (the checked parameter list, `lr`, `zero_grad`, a
`state_dict` of plain JSON and the all-or-nothing `load_state_dict`); a subclass adds its
hyper-parameters and one `step()`. `clip_grad_norm` sits here too: it works on any optimizer's
gradients between `backward()` and `step()`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from autodiff import Value
from nn._checks import check_int, check_non_negative, check_number
from nn._checks import grad_of as _grad_of  # the one reader of p.grad in nn

__all__ = ["Optimizer", "clip_grad_norm", "to_torch", "from_torch", "TORCH_DOORS"]


def ieee_div(a: float, b: float) -> float:
    """a / b with IEEE results where Python raises: 0/0 is nan and x/0 is +-inf, as in torch.

    The update rules share it (a helper of this package, not in `__all__`). Only reachable
    with eps=0 and a zero denominator; an update must never stop half-way.
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
        that does not say) checks only that the values are numbers. NaN and inf are numbers
        here: a step that met a NaN gradient leaves them, and its own state must reload.
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
        where, checked, initial_lr = self._checked_header(state_dict, self.params)
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

    def _checked_header(self, state_dict: Any, target: Any) -> tuple[str, Optimizer,
                                                                    float | None]:
        """What every `load_state_dict` checks first: that `state_dict` is this optimizer's,
        with 'hyperparams' and 'state'; returns (where, an optimizer of this class built on
        `target` from the saved hyper-parameters, initial_lr). Building it checks them with the
        constructor's own rules and messages (and turns JSON lists back into tuples)."""
        where = f"{self.name}.load_state_dict"
        if not isinstance(state_dict, dict) or state_dict.get("optimizer") != self.name:
            found = state_dict.get("optimizer") if isinstance(state_dict, dict) else state_dict
            raise ValueError(f"{where}: expected the state of a {self.name}, got {found!r:.80}")
        for key in ("hyperparams", "state"):
            if key not in state_dict:
                raise ValueError(f"{where}: the {key!r} field is missing (a state_dict() has "
                                 "'optimizer', 'hyperparams', 'initial_lr' and 'state')")
        hyperparams = state_dict["hyperparams"]
        if not isinstance(hyperparams, dict):
            raise ValueError(f"{where}: 'hyperparams' must be a dict of "
                             f"{', '.join(self.hyperparams)}, got {hyperparams!r:.80}")
        unknown = [name for name in hyperparams if name not in self.hyperparams]
        if unknown:
            raise ValueError(f"{where}: unknown hyper-parameter {unknown[0]!r}; {self.name} has "
                             f"{', '.join(self.hyperparams)}")
        checked = type(self)(target, **hyperparams)
        initial_lr = state_dict.get("initial_lr")
        if initial_lr is not None:
            initial_lr = check_non_negative(where, "initial_lr", initial_lr)
        return where, checked, initial_lr

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
        else:  # NaN and inf load: a step that met a NaN gradient leaves them (torch reloads them)
            out[key] = check_number(where, name, value)
            if kind == "non-negative" and out[key] < 0:
                raise ValueError(f"{where}: invalid {name}={value!r}, it must be >= 0 (or NaN "
                                 "or inf, which a step that met them leaves)")
    return out


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


# ---- the doors to torch.optim --------------------------------------------------------------------

#: The work behind `to_torch` and `from_torch`, handed in by nn.torch_bridge when it is imported
#: (`import nn` imports it). The bridge builds on this package, so this package names it nowhere.
TORCH_DOORS: dict[str, Callable] = {}


def to_torch(opt: Optimizer, torch_params: Any) -> Any:
    """The torch.optim optimizer that continues where `opt` stands: same settings and state.

        torch_opt = nn.optim.to_torch(opt, model.to_torch().parameters())

    Details and errors: `nn.torch_bridge.optimizer_to_torch`.
    """
    return _torch_door("to_torch")(opt, torch_params)


def from_torch(torch_opt: Any, params: Iterable[Value]) -> Optimizer:
    """The chainrule optimizer that continues where a torch.optim one stands (the way back).

        opt = nn.optim.from_torch(torch_opt, model.parameters())

    Details and errors: `nn.torch_bridge.optimizer_from_torch`.
    """
    return _torch_door("from_torch")(torch_opt, params)


def _torch_door(name: str) -> Callable:
    try:
        return TORCH_DOORS[name]
    except KeyError:
        raise ImportError(f"nn.optim.{name} is the work of nn.torch_bridge, which is not "
                          "imported; import nn (or nn.torch_bridge) first") from None
