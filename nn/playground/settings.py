"""The playground's settings: every name a run can be given, its default, its limits, its text.

One whitelist serves Python, the page's URL and the HTTP API: each `Setting` has a kind, a
default and its range or choices, so `Session(hidden=[8, 8], lr=0.1)`, `?hidden=8,8&lr=0.1` and
an API request all pass through the same checks, and a request can never make the server run
anything but these settings. An optimizer's own hyper-parameters are read from its signature.

    >>> parse_settings({"hidden": "8,8", "lr": "0.1"})
    {'hidden': [8, 8], 'lr': 0.1}

The rules that tie settings together are decided here, once, and the page only shows them:
`resolve_settings` completes and checks a set of settings, makes it consistent (a dataset of
three classes takes cross_entropy; an optimizer without a learning rate has no schedule; an old
optimizer name becomes its name now) and says what it changed and why.

    >>> settings, changes = resolve_settings({"dataset": "spirals", "loss": "hinge"})
    >>> settings["loss"]
    'cross_entropy'
    >>> print(changes[0]["message"])
    loss: cross_entropy instead of 'hinge': spirals has 3 classes, and hinge scores two
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
from nn.optim.evolutionary import CROSSOVERS, SELECTIONS
from nn.optim.registry import ALIASES, OPTIMIZERS
from nn.optim.registry import resolve as resolve_optimizer
from nn.playground.features import FEATURES

__all__ = ["Setting", "SETTINGS", "OPTIMIZERS", "LOSSES", "SCHEDULES", "optimizer_settings",
           "parse_settings", "resolve_settings", "check_settings", "inactive_settings",
           "make_optimizer", "options", "needs_closure", "has_lr", "lr_of", "int_in", "float_in",
           "dataset_classes", "dataset_noise", "start_lr"]


# ---- what can be chosen --------------------------------------------------------------------------


# The optimizers are nn.optim's registry (nn.optim.registry.OPTIMIZERS): one name each, the same
# in the demo, the URL and the API; old names (cg, conjugategradient, ...) are aliases.

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


def dataset_noise(name: str) -> float:
    """The dataset's own default noise (blobs call it std)."""
    params = inspect.signature(datasets.DATASETS[name]).parameters
    return float(params["std" if "std" in params else "noise"].default)


def dataset_classes(name: str) -> int:
    return len(set(datasets.DATASETS[name](30, seed=0)[1]))


# ---- settings: one whitelist for Python, the URL and the API ------------------------------------


class Setting:
    """One named setting: its kind, default, limits or choices, and whether it applies mid-run.

    `live` settings (the optimizer and what feeds it) change a running session; the others
    (data, model) rebuild it from step 0.
    """

    def __init__(self, name: str, kind: str, default: Any, help: str, *, live: bool = False,
                 low: float | None = None, high: float | None = None,
                 choices: Sequence[str] | Mapping[str, Any] = ()) -> None:
        self.name, self.kind, self.default, self.help = name, kind, default, help
        self.live, self.low, self.high = live, low, high
        # A table (a dict) stays live: an entry added to it later is a choice at once.
        self.choices = choices if isinstance(choices, Mapping) else tuple(choices)

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
            return [int_in(name, v, 1, MAX_WIDTH) for v in value]
        if self.kind == "batch":
            return None if value is None else int_in(name, value, 1, MAX_POINTS)
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
            return int_in(name, value, self.low, self.high)
        if self.kind == "float":
            return float_in(name, value, self.low, self.high)
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
            choices=ACTIVATIONS),
    Setting("init", "choice", "uniform", "initial weights (see nn.layers.INITS)",
            choices=list(INITS)),
    Setting("loss", "choice", "hinge", "the loss", choices=list(LOSSES)),
    Setting("optimizer", "choice", "sgd", "the optimizer (nn.optim's registry)",
            live=True, choices=OPTIMIZERS),
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
    ("conjugate_gradient", "beta"): tuple(getattr(optim, "CG_BETAS", ())),
    ("genetic_algorithm", "selection"): tuple(SELECTIONS),
    ("genetic_algorithm", "crossover"): tuple(CROSSOVERS),
    ("muon", "adjust_lr_fn"): ("none", "original", "match_rms_adamw"),
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
    cls = OPTIMIZERS[name].cls
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
        super().__init__(name, kind, default, f"{OPTIMIZERS[owner].cls.__name__}'s {name}",
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
            return int_in(name, value, 0, MAX_OPTIMIZER_INT)
        if self.kind == "float":
            return float_in(name, value, None, None)
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) \
                or len(value) != len(self.default):
            raise TypeError(f"{name} must be {len(self.default)} numbers, got {value!r}")
        return [float_in(f"{name}[{i}]", v, None, None) for i, v in enumerate(value)]

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


def parse_settings(query: Mapping[str, str], optimizer: str | None = None,
                   problems: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Settings from URL text (`{"hidden": "8,8", "lr": "0.1"}`), checked, ready for Session.

    Unknown names are refused, so a typo is reported instead of silently ignored. `optimizer`
    is the one whose hyper-parameters are allowed when the query names none (a running
    session's); by default SGD's. An optimizer's old name (cg, es, ...) is understood.

    With a `problems` list (a link being opened), a bad entry is not an error: it is left out,
    so the default stands in for it alone, and a note naming it is appended to `problems`.
    """
    optimizer = query.get("optimizer", optimizer or SETTINGS["optimizer"].default)
    try:
        name, _ = resolve_optimizer(optimizer.strip() if isinstance(optimizer, str) else optimizer)
    except ValueError as error:
        if problems is None:
            raise
        problems.append(_dropped("optimizer", optimizer, str(error)))
        query = {k: v for k, v in query.items() if k != "optimizer"}
        name = SETTINGS["optimizer"].default
    extra = optimizer_settings(name)
    out: dict[str, Any] = {}
    for key, text in query.items():
        try:
            spec = SETTINGS.get(key) or extra.get(key)
            if spec is None:
                others = [k for o in OPTIMIZERS if o != name for k in optimizer_settings(o)]
                hint = (f"; it belongs to another optimizer, not {name}" if key in others
                        else f"; known settings: {', '.join([*SETTINGS, *extra])}")
                raise ValueError(f"unknown setting {key!r}{hint}")
            if not isinstance(text, str):
                raise TypeError(f"{key} must be given as text in a URL, got {text!r}")
            if key == "optimizer":
                resolve_optimizer(text.strip())
                out[key] = text.strip()  # an old name stays one until resolve_settings
            else:
                out[key] = spec.parse(text)
        except (ValueError, TypeError) as error:
            if problems is None:
                raise
            problems.append(_dropped(key, text, str(error)))
    return out


def _dropped(key: str, text: Any, why: str) -> dict[str, Any]:
    return {"setting": key, "was": text, "now": None, "why": why,
            "message": f"{why} (the link's {key} was left out: the default stands)"}


def options() -> dict[str, Any]:
    """Everything the page needs to build its settings form (and nothing it could run)."""
    return {
        "settings": [s.describe() for s in SETTINGS.values()],
        "optimizers": {name: {"class": entry.cls.__name__,
                              "settings": [s.describe() for s in optimizer_settings(name).values()],
                              "closure": needs_closure(entry.cls), "lr": has_lr(entry.cls)}
                       for name, entry in OPTIMIZERS.items()},
        "aliases": {alias: target for alias, (target, _) in ALIASES.items()},
        "datasets": {name: {"noise": dataset_noise(name), "classes": dataset_classes(name)}
                     for name in datasets.DATASETS},
        "features": {name: label for name, (label, _) in FEATURES.items()},
        "limits": {"layers": MAX_LAYERS, "width": MAX_WIDTH},
    }


def needs_closure(cls: type) -> bool:
    """Whether `cls.step` takes a closure that recomputes the loss (L-BFGS, CMA-ES style)."""
    return "closure" in inspect.signature(cls.step).parameters


def has_lr(cls: type) -> bool:
    """Whether the optimizer has a learning rate (CMA-ES, say, has a step size sigma0)."""
    return "lr" in inspect.signature(cls.__init__).parameters


def start_lr(name: str) -> float | None:
    """The learning rate optimizer `name` starts with when a running session switches to it
    (an lr tuned for another rule rarely suits this one): the registry's starting lr, the one
    that trains the demo's network; None for an optimizer without a learning rate."""
    entry = OPTIMIZERS[name]
    return float(entry.lr) if has_lr(entry.cls) else None


def lr_of(opt: optim.Optimizer) -> float | None:
    return opt.lr if has_lr(type(opt)) else None


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


def int_in(name: str, value: Any, low: float | None, high: float | None) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be a whole number, got {value!r}")
    value = int(value)  # compared as an int: a huge one must not overflow a float
    if low is not None and value < low or high is not None and value > high:
        raise ValueError(f"{name} must be between {low:g} and {high:g}, got {value!r}")
    return value


def float_in(name: str, value: Any, low: float | None, high: float | None) -> Any:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if low is not None and value < low or high is not None and value > high:
        raise ValueError(f"{name} must be between {low:g} and {high:g}, got {value!r}")
    return float(value)


# ---- a whole set of settings, and the optimizer it names ----------------------------------------


def check_settings(given: Mapping[str, Any]) -> dict[str, Any]:
    """All settings checked, completed and made consistent (`resolve_settings` without the
    list of what it changed): what Session(...) and Session.update(...) are given goes here."""
    return resolve_settings(given)[0]


def resolve_settings(given: Mapping[str, Any], problems: list[dict[str, Any]] | None = None
                     ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the settings, what was changed and why): `given` checked, completed with defaults and
    made consistent. THE place where settings' rules are decided; the page only shows them.

    The rules: an old optimizer name becomes its name now, with the hyper-parameters it implies
    where `given` names none ("momentum" is sgd with momentum 0.9); a dataset of more than two
    classes takes cross_entropy (the other losses score two classes); an optimizer without a
    learning rate (CMA-ES) has no schedule; a batch as big as the training set is the full batch.
    Each change is a dict {"setting", "was", "now", "why", "message"}.

    A bad value (or an unknown name) raises a ValueError or TypeError naming it; with a
    `problems` list it is left out instead (its default stands) and noted there and in the
    changes.
    """
    given = dict(given)
    changes: list[dict[str, Any]] = []

    def change(key: str, was: Any, now: Any, why: str) -> None:
        changes.append({"setting": key, "was": was, "now": now, "why": why,
                        "message": f"{key}: {now} instead of {was!r}: {why}"})

    def refuse(key: str, was: Any, error: Exception) -> None:
        if problems is None:
            raise error
        note = _dropped(key, was, str(error))
        problems.append(note)
        changes.append(note)

    asked = given.get("optimizer", SETTINGS["optimizer"].default)
    try:
        optimizer, implied = resolve_optimizer(asked)
    except ValueError as error:
        refuse("optimizer", asked, error)
        optimizer, implied = SETTINGS["optimizer"].default, {}
    if optimizer != asked and "optimizer" in given and optimizer == resolve_optimizer(asked)[0]:
        said = ", ".join(f"{k}={v}" for k, v in implied.items() if k != "lr")
        change("optimizer", asked, optimizer,
               f"{asked!r} means {optimizer} with {said}" if said
               else f"{asked!r} is the old name of {optimizer}")
        for key, value in implied.items():
            given.setdefault(key, value)
    given["optimizer"] = optimizer
    extra = optimizer_settings(optimizer)
    settings: dict[str, Any] = {}
    for key, value in list(given.items()):
        spec = SETTINGS.get(key) or extra.get(key)
        try:
            if spec is None:
                raise ValueError(f"Session: unknown setting {key!r} (for optimizer "
                                 f"{optimizer!r}: {', '.join(extra) or 'only lr'})")
            if key == "noise" and value is None:
                continue
            settings[key] = spec.check(list(value) if isinstance(value, tuple) else value)
        except (ValueError, TypeError) as error:
            refuse(key, value, error)
    for key, spec in [*SETTINGS.items(), *extra.items()]:
        settings.setdefault(key, spec.default)
    if settings["noise"] is None:
        settings["noise"] = dataset_noise(settings["dataset"])
    settings = {key: settings[key] for key in [*SETTINGS, *extra]}  # one order everywhere

    classes = dataset_classes(settings["dataset"])
    if classes > 2 and LOSSES[settings["loss"]][1] != "index":
        change("loss", settings["loss"], "cross_entropy",
               f"{settings['dataset']} has {classes} classes, and {settings['loss']} scores two")
        settings["loss"] = "cross_entropy"
    n_test = round(settings["n"] * settings["test_fraction"])
    if settings["n"] - n_test < 2:
        error = ValueError(f"test_fraction: {settings['test_fraction']!r} of n={settings['n']}"
                           " leaves fewer than 2 training points")
        refuse("test_fraction", settings["test_fraction"], error)
        settings["test_fraction"] = SETTINGS["test_fraction"].default
        n_test = round(settings["n"] * settings["test_fraction"])
    cls = OPTIMIZERS[optimizer].cls
    if settings["schedule"] != "none" and not has_lr(cls):
        change("schedule", settings["schedule"], "none",
               f"{cls.__name__} has no learning rate to schedule")
        settings["schedule"] = "none"
    if settings["batch_size"] is not None and settings["batch_size"] > settings["n"] - n_test:
        change("batch_size", settings["batch_size"], "full",
               f"the training set has only {settings['n'] - n_test} points")
        settings["batch_size"] = None
    # The optimizer class checks its own hyper-parameters, with its own messages.
    try:
        make_optimizer(settings, [Value(0.0)])
    except (ValueError, TypeError):
        if problems is None:
            raise
        for key in extra:  # leave out the values the class refuses, each one alone
            alone = {**settings, **{k: spec.default for k, spec in extra.items() if k != key}}
            try:
                make_optimizer(alone, [Value(0.0)])
            except (ValueError, TypeError) as error:
                refuse(key, settings[key], error)
                settings[key] = extra[key].default
        make_optimizer(settings, [Value(0.0)])
    return settings, changes


def inactive_settings(settings: Mapping[str, Any]) -> dict[str, str]:
    """{setting: why it has no effect now}: what the page greys out (it decides nothing)."""
    off: dict[str, str] = {}
    cls = OPTIMIZERS[settings["optimizer"]].cls
    if not has_lr(cls):
        why = f"{cls.__name__} has no learning rate"
        off.update(lr=why, schedule=why, decay_steps=why, gamma=why)
    elif settings["schedule"] == "none":
        off.update(decay_steps="no schedule", gamma="no schedule")
    elif settings["schedule"] == "exponential":
        off["decay_steps"] = "the exponential schedule decays every step"
    return off


def make_optimizer(s: Mapping[str, Any], params: list[Value],
                   model: Any = None) -> optim.Optimizer:
    """The optimizer that settings `s` name, on `params`, with its hyper-parameters from `s`.

    A rule that sees whole matrices (Muon, Adafactor) gets `model`'s weight matrices instead
    of the flat `params`, when a model is given.
    """
    cls = OPTIMIZERS[s["optimizer"]].cls
    if model is not None and issubclass(cls, optim.MatrixOptimizer):
        params = optim.matrices(model)
    extra = {k: tuple(s[k]) if isinstance(s[k], list) else None if s[k] == "none" else s[k]
             for k in optimizer_settings(s["optimizer"]) if k in s}
    if has_lr(cls):
        extra["lr"] = s["lr"]
    if "seed" in inspect.signature(cls.__init__).parameters:
        extra["seed"] = s["seed"]
    return cls(params, **extra)
