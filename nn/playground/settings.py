"""The playground's settings: every name a run can be given, its default, its limits, its text.

One whitelist serves Python, the page's URL and the HTTP API: each `Setting` has a kind, a
default and its range or choices, so `Session(hidden=[8, 8], lr=0.1)`, `?hidden=8,8&lr=0.1` and
an API request all pass through the same checks, and a request can never make the server run
anything but these settings. An optimizer's own hyper-parameters are read from its signature.

    >>> parse_settings({"hidden": "8,8", "lr": "0.1"})
    {'hidden': [8, 8], 'lr': 0.1}
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from numbers import Integral, Real
from typing import Any

from autodiff import Value
from nn import data as datasets
from nn import losses, optim
from nn.layers import ACTIVATIONS, INITS
from nn.playground.features import FEATURES

__all__ = ["Setting", "SETTINGS", "OPTIMIZERS", "LOSSES", "SCHEDULES", "optimizer_settings",
           "parse_settings", "check_settings", "make_optimizer", "options", "start_lr"]


# ---- what can be chosen --------------------------------------------------------------------------


def _buildable(cls: Any) -> bool:
    """An optimizer class that needs nothing but the parameters (not a base class such as
    Optimizer, whose lr has no default)."""
    if not (isinstance(cls, type) and issubclass(cls, optim.Optimizer)):
        return False
    params = list(inspect.signature(cls.__init__).parameters.values())[2:]
    return all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
               for p in params)


#: Every optimizer class of nn.optim, by its lower-case name ("sgd", "adam", ...). Found, not
#: listed, so an optimizer added to nn.optim appears in the playground without a change here.
OPTIMIZERS: dict[str, type[optim.Optimizer]] = {
    cls.__name__.lower(): cls
    for cls in (getattr(optim, name) for name in optim.__all__) if _buildable(cls)
}

#: Losses: name -> (function, label style of the targets, whether one output suffices).
#: "hinge" and "mse" train one score against -1/+1, "bce" one logit against 0/1 (two classes
#: only); "cross_entropy" gives the model one output per class and works for any dataset.
LOSSES: dict[str, tuple[Callable, str]] = {
    "hinge": (losses.hinge, "pm1"),
    "bce": (losses.bce_with_logits, "01"),
    "mse": (losses.mse, "pm1"),
    "cross_entropy": (losses.cross_entropy, "index"),
}

#: Learning-rate schedules, each built from `decay_steps` and `gamma` (see Session).
SCHEDULES = ("none", "step", "exponential", "cosine", "linear")

#: Sizes the playground accepts (the page must stay live and a request cheap).
MAX_POINTS = 1000
MAX_LAYERS = 6
MAX_WIDTH = 16
#: The largest integer hyper-parameter of an optimizer (max_iter, popsize, ...).
MAX_OPTIMIZER_INT = 1000


def _dataset_noise(name: str) -> float:
    """The dataset's own default noise (blobs call it std)."""
    params = inspect.signature(datasets.DATASETS[name]).parameters
    return float(params["std" if "std" in params else "noise"].default)


def _dataset_classes(name: str) -> int:
    return len(set(datasets.DATASETS[name](30, seed=0)[1]))


# ---- settings: one whitelist for Python, the URL and the API ------------------------------------


class Setting:
    """One named setting: its kind, default, limits or choices, and whether it applies mid-run.

    `live` settings (the optimizer and what feeds it) change a running session; the others
    (data, model) rebuild it from step 0.
    """

    def __init__(self, name: str, kind: str, default: Any, help: str, *, live: bool = False,
                 low: float | None = None, high: float | None = None,
                 choices: Sequence[str] = ()) -> None:
        self.name, self.kind, self.default, self.help = name, kind, default, help
        self.live, self.low, self.high, self.choices = live, low, high, tuple(choices)

    def check(self, value: Any) -> Any:
        """`value` in canonical form, or a ValueError / TypeError that names the setting."""
        name = self.name
        if self.kind == "choice":
            if not isinstance(value, str) or value not in self.choices:
                raise ValueError(f"{name}: unknown choice {value!r}; choose one of "
                                 f"{', '.join(self.choices)}")
            return value
        if self.kind == "sizes":
            if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
                raise TypeError(f"{name} must be a list of layer widths such as [8, 8], "
                                f"got {value!r}")
            if len(value) > MAX_LAYERS:
                raise ValueError(f"{name}: at most {MAX_LAYERS} hidden layers, got {len(value)}")
            return [_int_in(name, v, 1, MAX_WIDTH) for v in value]
        if self.kind == "batch":
            return None if value is None else _int_in(name, value, 1, MAX_POINTS)
        if self.kind == "features":
            if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
                raise TypeError(f"{name} must be a list of input features such as "
                                f"['x1', 'x2'], got {value!r}")
            unknown = [v for v in value if v not in self.choices]
            if unknown:
                raise ValueError(f"{name}: unknown feature {unknown[0]!r}; choose from "
                                 f"{', '.join(self.choices)}")
            if not value:
                raise ValueError(f"{name}: the network needs at least one input feature")
            return [v for v in self.choices if v in value]  # one order, each feature once
        if self.kind == "int":
            return _int_in(name, value, self.low, self.high)
        if self.kind == "float":
            return _float_in(name, value, self.low, self.high)
        raise AssertionError(self.kind)

    def parse(self, text: str) -> Any:
        """The setting from its URL text ("8,8", "0.1", "full", ...), checked."""
        if self.kind == "sizes":
            parts = [p.strip() for p in text.split(",") if p.strip()]
            return self.check([_parse_int(self.name, p) for p in parts])
        if self.kind == "features":
            return self.check([p.strip() for p in text.split(",") if p.strip()])
        if self.kind == "batch":
            return None if text.strip() in ("", "full") else self.check(
                _parse_int(self.name, text))
        if self.kind == "int":
            return self.check(_parse_int(self.name, text))
        if self.kind == "float":
            return self.check(_parse_float(self.name, text))
        return self.check(text.strip())

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "default": self.default, "help": self.help,
                "live": self.live, "low": self.low, "high": self.high,
                "choices": list(self.choices)}


#: The settings every session has, in the order the page shows them. The optimizer's own
#: hyper-parameters (momentum, betas, ...) come on top, from its class (see `optimizer_settings`).
SETTINGS: dict[str, Setting] = {s.name: s for s in [
    Setting("dataset", "choice", "moons", "the toy dataset", choices=list(datasets.DATASETS)),
    Setting("n", "int", 200, "number of points (train + test)", low=4, high=MAX_POINTS),
    Setting("noise", "float", None, "noise of the dataset (default: the dataset's own)",
            low=0.0, high=2.0),
    Setting("test_fraction", "float", 0.2, "share of the points held out as the test set",
            low=0.0, high=0.9),
    Setting("seed", "int", 0, "seed of the data, the initial weights and the batches",
            low=0, high=2**31 - 1),
    Setting("features", "features", ["x1", "x2"], "the network's inputs: the point's x1 and "
            "x2, and x1sq, x2sq, x1x2, sinx1, sinx2 on request", choices=list(FEATURES)),
    Setting("hidden", "sizes", [8, 8], "widths of the hidden layers"),
    Setting("activation", "choice", "relu", "activation of the hidden layers",
            choices=[a for a in ACTIVATIONS if a != "linear"] + ["linear"]),
    Setting("init", "choice", "uniform", "initial weights (see nn.layers.INITS)",
            choices=list(INITS)),
    Setting("loss", "choice", "hinge", "the loss", choices=list(LOSSES)),
    Setting("optimizer", "choice", "sgd", "the optimizer (every class of nn.optim)",
            live=True, choices=list(OPTIMIZERS)),
    Setting("lr", "float", 0.1, "learning rate", live=True, low=0.0, high=100.0),
    Setting("schedule", "choice", "none", "learning-rate schedule", live=True,
            choices=SCHEDULES),
    Setting("decay_steps", "int", 100, "steps of the schedule (step size, T_max, warm-down)",
            live=True, low=1, high=1_000_000),
    Setting("gamma", "float", 0.1, "lr factor: per decay (step, exponential), at the end "
            "(linear)", live=True, low=0.0, high=1.0),
    Setting("batch_size", "batch", None, "points per step (full: the whole training set)",
            live=True),
    Setting("l2", "float", 0.0, "strength alpha of the L2 penalty alpha * sum(w^2)", live=True,
            low=0.0, high=10.0),
    Setting("l1", "float", 0.0, "strength lambda of the L1 penalty lambda * sum(|w|)",
            live=True, low=0.0, high=10.0),
]}


#: Hyper-parameters that are words, with every choice (a whitelist; "none" stands for None).
WORD_CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("lbfgs", "line_search_fn"): ("none", "strong_wolfe"),
    ("conjugategradient", "beta"): tuple(getattr(optim, "CG_BETAS", ())),
}

# lr is a setting of its own; seed is the session's (so a random search is reproducible);
# maximize would climb the loss.
_NOT_OFFERED = {"lr", "seed", "maximize"}


def optimizer_settings(name: str) -> dict[str, Setting]:
    """The hyper-parameters of optimizer `name` other than lr, as Settings from its signature.

    Numbers, flags and pairs of numbers (Adam's betas) are offered, with the class's defaults;
    anything else (a None default, a string) keeps its default. The class itself checks the
    values it is given.
    """
    cls = OPTIMIZERS[name]
    found = {}
    for p in list(inspect.signature(cls.__init__).parameters.values())[2:]:
        d = p.default
        if p.name in _NOT_OFFERED or d is p.empty:
            continue
        words = WORD_CHOICES.get((name, p.name))
        if words:
            found[p.name] = _OptimizerSetting(p.name, "choice", "none" if d is None else d, name,
                                              words)
            continue
        if isinstance(d, bool):
            kind = "bool"
        elif isinstance(d, Integral):
            kind = "int"
        elif isinstance(d, Real):
            kind = "float"
        elif isinstance(d, tuple) and d and all(isinstance(v, Real) for v in d):
            kind = "floats"
        else:
            continue
        found[p.name] = _OptimizerSetting(p.name, kind, d, name)
    return found


class _OptimizerSetting(Setting):
    """A hyper-parameter of one optimizer class; the class validates the value's meaning."""

    def __init__(self, name: str, kind: str, default: Any, owner: str,
                 choices: Sequence[str] = ()) -> None:
        default = list(default) if kind == "floats" else default
        super().__init__(name, kind, default, f"{OPTIMIZERS[owner].__name__}'s {name}",
                         live=True, choices=choices)

    def check(self, value: Any) -> Any:
        name = self.name
        if self.kind == "choice":
            return super().check("none" if value is None else value)
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise TypeError(f"{name} must be true or false, got {value!r}")
            return value
        if self.kind == "int":  # iterations, a population, a history: bounded, so a step ends
            return _int_in(name, value, 0, MAX_OPTIMIZER_INT)
        if self.kind == "float":
            return _float_in(name, value, None, None)
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) \
                or len(value) != len(self.default):
            raise TypeError(f"{name} must be {len(self.default)} numbers, got {value!r}")
        return [_float_in(f"{name}[{i}]", v, None, None) for i, v in enumerate(value)]

    def parse(self, text: str) -> Any:
        if self.kind == "choice":
            return self.check(text.strip())
        if self.kind == "bool":
            word = text.strip().lower()
            if word not in ("true", "false", "1", "0"):
                raise ValueError(f"{self.name} must be true or false, got {text!r}")
            return word in ("true", "1")
        if self.kind == "int":
            return self.check(_parse_int(self.name, text))
        if self.kind == "float":
            return self.check(_parse_float(self.name, text))
        return self.check([_parse_float(self.name, p) for p in text.split(",")])


def parse_settings(query: Mapping[str, str], optimizer: str | None = None) -> dict[str, Any]:
    """Settings from URL text (`{"hidden": "8,8", "lr": "0.1"}`), checked, ready for Session.

    Unknown names are refused, so a typo is reported instead of silently ignored. `optimizer`
    is the one whose hyper-parameters are allowed when the query names none (a running
    session's); by default SGD's.
    """
    optimizer = query.get("optimizer", optimizer or SETTINGS["optimizer"].default)
    optimizer = SETTINGS["optimizer"].parse(optimizer)
    extra = optimizer_settings(optimizer)
    out: dict[str, Any] = {}
    for key, text in query.items():
        spec = SETTINGS.get(key) or extra.get(key)
        if spec is None:
            others = [k for o in OPTIMIZERS if o != optimizer for k in optimizer_settings(o)]
            hint = (f"; it belongs to another optimizer, not {optimizer}" if key in others
                    else f"; known settings: {', '.join([*SETTINGS, *extra])}")
            raise ValueError(f"unknown setting {key!r}{hint}")
        if not isinstance(text, str):
            raise TypeError(f"{key} must be given as text in a URL, got {text!r}")
        out[key] = spec.parse(text)
    return out


def options() -> dict[str, Any]:
    """Everything the page needs to build its settings form (and nothing it could run)."""
    return {
        "settings": [s.describe() for s in SETTINGS.values()],
        "optimizers": {name: {"class": cls.__name__,
                              "settings": [s.describe() for s in optimizer_settings(name).values()],
                              "closure": _needs_closure(cls), "lr": _has_lr(cls)}
                       for name, cls in OPTIMIZERS.items()},
        "datasets": {name: {"noise": _dataset_noise(name), "classes": _dataset_classes(name)}
                     for name in datasets.DATASETS},
        "features": {name: label for name, (label, _) in FEATURES.items()},
        "limits": {"layers": MAX_LAYERS, "width": MAX_WIDTH},
        "two_class_losses": [name for name, (_, style) in LOSSES.items() if style != "index"],
    }


def _needs_closure(cls: type) -> bool:
    """Whether `cls.step` takes a closure that recomputes the loss (L-BFGS, CMA-ES style)."""
    return "closure" in inspect.signature(cls.step).parameters


def _has_lr(cls: type) -> bool:
    """Whether the optimizer has a learning rate (CMA-ES, say, has a step size sigma0)."""
    return "lr" in inspect.signature(cls.__init__).parameters


def start_lr(name: str) -> float | None:
    """The learning rate optimizer `name` starts with when a running session switches to it
    (an lr tuned for another rule rarely suits this one): its own default; None without lr."""
    param = inspect.signature(OPTIMIZERS[name].__init__).parameters.get("lr")
    return None if param is None or param.default is param.empty else float(param.default)


def _lr_of(opt: optim.Optimizer) -> float | None:
    return opt.lr if _has_lr(type(opt)) else None


def _parse_int(name: str, text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {text!r}") from None


def _parse_float(name: str, text: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise ValueError(f"{name} must be a number, got {text!r}") from None


def _int_in(name: str, value: Any, low: float | None, high: float | None) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be a whole number, got {value!r}")
    value = int(value)  # compared as an int: a huge one must not overflow a float
    if low is not None and value < low or high is not None and value > high:
        raise ValueError(f"{name} must be between {low:g} and {high:g}, got {value!r}")
    return value


def _float_in(name: str, value: Any, low: float | None, high: float | None) -> Any:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if low is not None and value < low or high is not None and value > high:
        raise ValueError(f"{name} must be between {low:g} and {high:g}, got {value!r}")
    return float(value)


# ---- a whole set of settings, and the optimizer it names ----------------------------------------


def check_settings(given: Mapping[str, Any]) -> dict[str, Any]:
    """All settings checked and completed with defaults (a Session's `settings`), or a clear
    error naming the setting; what Session(...) and Session.update(...) are given goes here."""
    optimizer = SETTINGS["optimizer"].check(given.get("optimizer", "sgd"))
    extra = optimizer_settings(optimizer)
    settings: dict[str, Any] = {}
    for key, value in given.items():
        spec = SETTINGS.get(key) or extra.get(key)
        if spec is None:
            raise ValueError(f"Session: unknown setting {key!r} (for optimizer "
                             f"{optimizer!r}: {', '.join(extra) or 'only lr'})")
        if key == "noise" and value is None:
            continue
        settings[key] = spec.check(list(value) if isinstance(value, tuple) else value)
    for key, spec in [*SETTINGS.items(), *extra.items()]:
        settings.setdefault(key, spec.default)
    if settings["noise"] is None:
        settings["noise"] = _dataset_noise(settings["dataset"])
    settings = {key: settings[key] for key in [*SETTINGS, *extra]}  # one order everywhere
    classes = _dataset_classes(settings["dataset"])
    if classes > 2 and LOSSES[settings["loss"]][1] != "index":
        raise ValueError(f"loss: {settings['loss']!r} needs two classes, and "
                         f"{settings['dataset']} has {classes}; use cross_entropy")
    n_test = round(settings["n"] * settings["test_fraction"])
    if settings["n"] - n_test < 2:
        raise ValueError(f"test_fraction: {settings['test_fraction']!r} of n={settings['n']}"
                         " leaves fewer than 2 training points")
    if settings["schedule"] != "none" and not _has_lr(OPTIMIZERS[optimizer]):
        raise ValueError(f"schedule: {OPTIMIZERS[optimizer].__name__} has no learning rate "
                         "to schedule; use schedule=none")
    if settings["batch_size"] is not None and settings["batch_size"] > settings["n"] - n_test:
        settings["batch_size"] = None  # a batch as big as the training set is the full batch
    # The optimizer class checks its own hyper-parameters, with its own messages.
    make_optimizer(settings, [Value(0.0)])
    return settings


def make_optimizer(s: Mapping[str, Any], params: list[Value]) -> optim.Optimizer:
    """The optimizer that settings `s` name, on `params`, with its hyper-parameters from `s`."""
    cls = OPTIMIZERS[s["optimizer"]]
    extra = {k: tuple(s[k]) if isinstance(s[k], list) else None if s[k] == "none" else s[k]
             for k in optimizer_settings(s["optimizer"]) if k in s}
    if _has_lr(cls):
        extra["lr"] = s["lr"]
    if "seed" in inspect.signature(cls.__init__).parameters:
        extra["seed"] = s["seed"]
    return cls(params, **extra)
