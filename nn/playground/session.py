"""`Session`: one playground run (data, model, optimizer, schedule) that trains step by step.

A Session is what the playground page drives and what a notebook can drive by hand: build it
from named settings, call `step()`, read `train_loss`, `accuracy`, `history`. The one idea to
understand: every setting is a keyword argument with a whitelist (its type, its range or its
choices), so the same names work in Python (`Session(hidden=[8, 8], lr=0.1)`), in the page's URL
(`?hidden=8,8&lr=0.1`) and in the HTTP API, and a request can never make the server run anything
but these settings. The page only draws what `frame()` returns, so its numbers are the Session's.

    >>> s = Session(dataset="moons", n=100, hidden=[4], optimizer="sgd", lr=0.1, seed=0)
    >>> s.step_count, len(s.history)
    (0, 1)
    >>> first = s.train_loss
    >>> s.step(3)
    >>> s.step_count, s.train_loss < first
    (3, True)
"""

from __future__ import annotations

import base64
import contextlib
import inspect
import math
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from numbers import Integral, Real
from typing import Any

from autodiff import Value, is_grad_enabled, no_grad, topological_order
from autodiff.viz.render import can_render, render_svg
from nn import data as datasets
from nn import losses, optim, schedules
from nn.layers import ACTIVATIONS, INITS, MLP
from nn.plots import grad_flow_stats

__all__ = ["Session", "SETTINGS", "OPTIMIZERS", "LOSSES", "SCHEDULES", "parse_settings",
           "options"]

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
#: The most Values a step-through page shows (autodiff.to_html's own default limit).
STEP_THROUGH_MAX = 500


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
        "two_class_losses": [name for name, (_, style) in LOSSES.items() if style != "index"],
    }


def _needs_closure(cls: type) -> bool:
    """Whether `cls.step` takes a closure that recomputes the loss (L-BFGS, CMA-ES style)."""
    return "closure" in inspect.signature(cls.step).parameters


def _has_lr(cls: type) -> bool:
    """Whether the optimizer has a learning rate (CMA-ES, say, has a step size sigma0)."""
    return "lr" in inspect.signature(cls.__init__).parameters


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


# ---- the session ---------------------------------------------------------------------------------


class Diverged(ValueError):
    """A step whose loss is not a finite number: nothing was updated."""


class StepTooLong(ValueError):
    """A step that outlasted its time limit: it was undone, nothing was updated."""


class DotMissing(RuntimeError):
    """Drawing a graph needs Graphviz's `dot` program, and it is not installed."""


def _need_dot() -> None:
    if not can_render():  # the dot program, or a renderer installed (the browser build's)
        raise DotMissing("Looking inside draws graphs with Graphviz's dot program, which is not "
                         "installed here (Debian/Ubuntu: apt-get install graphviz; macOS: brew "
                         "install graphviz); everything else in the playground works without it")


class Session:
    """A training run with named settings; `step()` is exactly one optimizer step.

    Data: `dataset` (any of nn.data.DATASETS) with `n` points and `noise` (None: the dataset's
    own), the last `test_fraction` of them held out. Model: `MLP(2, hidden + [outputs])` with
    `activation` in the hidden layers, `init` and `seed`; one output for the two-class losses
    (hinge, bce, mse), one per class for cross_entropy. Training: `loss` on a batch of
    `batch_size` points (None: the whole training set) plus `l2 * sum(w^2)`, minimised by
    `optimizer` (the lower-case name of any nn.optim class) with learning rate `lr` and its other
    hyper-parameters as keywords (`momentum=0.9`, `betas=(0.9, 0.99)`); `schedule` is "none",
    "step" (lr *= gamma every decay_steps), "exponential" (lr *= gamma each step), "cosine"
    (to 0 over decay_steps) or "linear" (to gamma * lr over decay_steps).

    After every step the session evaluates the data loss (without the L2 term) and the accuracy
    on the whole training and test sets at the new weights: `train_loss`, `test_loss`,
    `accuracy`, `test_accuracy`, and one entry of `history` per step (entry 0 is the start).
    Batches come from the session's own generator, so the same settings give the same numbers.
    """

    def __init__(self, dataset: str = "moons", n: int = 200, noise: float | None = None,
                 test_fraction: float = 0.2, seed: int = 0, hidden: Sequence[int] = (8, 8),
                 activation: str = "relu", init: str = "uniform", loss: str = "hinge",
                 optimizer: str = "sgd", lr: float = 0.1, schedule: str = "none",
                 decay_steps: int = 100, gamma: float = 0.1, batch_size: int | None = None,
                 l2: float = 0.0, **optimizer_options: Any) -> None:
        given = dict(dataset=dataset, n=n, noise=noise, test_fraction=test_fraction, seed=seed,
                     hidden=list(hidden) if isinstance(hidden, tuple) else hidden,
                     activation=activation, init=init, loss=loss, optimizer=optimizer, lr=lr,
                     schedule=schedule, decay_steps=decay_steps, gamma=gamma,
                     batch_size=batch_size, l2=l2, **optimizer_options)
        self._lock = threading.RLock()
        self.run = 0  # counts rebuilds, so a page can tell a fresh run from more steps
        self.settings: dict[str, Any] = self._checked(given)
        self._build()

    # -- settings

    def _checked(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """All settings checked and completed with defaults, or a clear error."""
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
        self._make_optimizer(settings, [Value(0.0)])
        return settings

    def update(self, **changes: Any) -> bool:
        """Change settings. Returns True when the session was rebuilt from step 0.

        The optimizer, its hyper-parameters, lr, the schedule, batch_size and l2 apply from the
        next step on: a new optimizer starts with empty state, and a new lr or schedule starts
        the schedule again from that lr; the weights carry on. Any other change (data, model,
        loss, seed) starts a fresh run. A bad value raises and changes nothing.
        """
        with self._lock:
            merged = dict(self.settings)
            if "optimizer" in changes and changes["optimizer"] != merged["optimizer"]:
                # The old optimizer's hyper-parameters do not carry over to another class.
                for key in optimizer_settings(merged["optimizer"]):
                    merged.pop(key, None)
            if "dataset" in changes and "noise" not in changes:
                merged["noise"] = None  # the new dataset's own noise
            merged.update(changes)
            new = self._checked(merged)
            changed = {k for k in new if new[k] != self.settings.get(k)}
            old, self.settings = self.settings, new
            if not changed:
                return False
            if any(not (SETTINGS[k].live if k in SETTINGS else True) for k in changed):
                self._build()
                return True
            if changed & ({"optimizer"} | set(optimizer_settings(new["optimizer"]))) \
                    or old["optimizer"] != new["optimizer"]:
                self.optimizer = self._make_optimizer(new, self.model.parameters())
                self._make_schedule()
            elif changed & {"lr", "schedule", "decay_steps", "gamma"} \
                    and _has_lr(type(self.optimizer)):
                self.optimizer.lr = new["lr"]
                self.optimizer.initial_lr = None
                self._make_schedule()
            self.version += 1
            return False

    def reset(self) -> None:
        """Start again from step 0 with the same settings (same data, same initial weights)."""
        with self._lock:
            self._build()

    # -- building

    def _build(self) -> None:
        s = self.settings
        make = datasets.DATASETS[s["dataset"]]
        noise_name = "std" if "std" in inspect.signature(make).parameters else "noise"
        X, classes = make(s["n"], seed=s["seed"], **{noise_name: s["noise"]})
        self.classes = len(set(classes))
        self.loss_fn, style = LOSSES[s["loss"]]
        targets = {"pm1": [2 * c - 1 for c in classes], "01": list(classes),
                   "index": list(classes)}[style]
        outputs = self.classes if style == "index" else 1
        n_test = round(s["n"] * s["test_fraction"])
        n_train = s["n"] - n_test
        # The points come shuffled, so the last ones are a fair test set.
        self.X_train, self.X_test = X[:n_train], X[n_train:]
        self.y_train, self.y_test = targets[:n_train], targets[n_train:]
        self.labels_train, self.labels_test = classes[:n_train], classes[n_train:]
        self.model = MLP(2, [*s["hidden"], outputs], activation=s["activation"],
                         init=s["init"], seed=s["seed"])
        self.optimizer = self._make_optimizer(s, self.model.parameters())
        self._make_schedule()
        self._batches = random.Random(f"batches {s['seed']}")
        self._order: list[int] = []
        self.step_count = 0
        self.last_step_loss: float | None = None
        self.last_step_gradient_free = False  # CMA-ES, the ES: their closure runs under no_grad
        self.history: list[dict[str, Any]] = []
        self.run += 1
        self.version = 0
        self._extent = _extent(X)
        self._evaluate()

    @staticmethod
    def _make_optimizer(s: Mapping[str, Any], params: list[Value]) -> optim.Optimizer:
        cls = OPTIMIZERS[s["optimizer"]]
        extra = {k: tuple(s[k]) if isinstance(s[k], list) else None if s[k] == "none" else s[k]
                 for k in optimizer_settings(s["optimizer"]) if k in s}
        if _has_lr(cls):
            extra["lr"] = s["lr"]
        if "seed" in inspect.signature(cls.__init__).parameters:
            extra["seed"] = s["seed"]
        return cls(params, **extra)

    def _make_schedule(self) -> None:
        s, opt = self.settings, self.optimizer
        kind, steps, gamma = s["schedule"], s["decay_steps"], s["gamma"]
        self.schedule = {
            "none": lambda: None,
            "step": lambda: schedules.StepLR(opt, step_size=steps, gamma=gamma),
            "exponential": lambda: schedules.ExponentialLR(opt, gamma=gamma),
            "cosine": lambda: schedules.CosineAnnealingLR(opt, T_max=steps),
            "linear": lambda: schedules.LinearLR(opt, start_factor=1.0, end_factor=gamma,
                                                 total_iters=steps),
        }[kind]()

    # -- training

    def _next_batch(self) -> list[int]:
        size = self.settings["batch_size"]
        n = len(self.X_train)
        if size is None:
            return list(range(n))
        if len(self._order) < size:  # a new epoch: the points in a fresh random order
            self._order = list(range(n))
            self._batches.shuffle(self._order)
        batch, self._order = self._order[:size], self._order[size:]
        return batch

    def _objective(self, batch: list[int]) -> Value:
        """The loss of the batch, plus the L2 penalty when l2 > 0: what the optimizer minimises."""
        scores = [self.model(self.X_train[i]) for i in batch]
        loss = self.loss_fn(scores, [self.y_train[i] for i in batch])
        l2 = self.settings["l2"]
        return loss + losses.l2_penalty(self.model, l2) if l2 else loss

    def step(self, count: int = 1, time_limit: float | None = None) -> None:
        """`count` optimizer steps (each: zero_grad, forward, backward, step, schedule).

        With `time_limit` (seconds), no step starts once it has passed (the first always
        does), and a step that takes the loss more often than that allows (L-BFGS with
        max_iter=1000 on many points, say) is undone and raises StepTooLong naming the settings
        that make it long (`step_count` says how many steps were taken).
        """
        count = _int_in("step count", count, 1, None)
        if time_limit is not None:
            time_limit = _float_in("time_limit", time_limit, 0.0, None)
        deadline = None if time_limit is None else time.monotonic() + time_limit
        with self._lock:
            for done in range(count):
                if done and deadline is not None and time.monotonic() >= deadline:
                    return
                self._step_once(deadline, time_limit)

    def _too_long(self, time_limit: float) -> StepTooLong:
        opt = self.settings["optimizer"]
        extra = {k: self.settings[k] for k in optimizer_settings(opt)
                 if k in self.settings and k in ("max_iter", "popsize", "history_size")}
        shown = ", ".join(f"{k}={v}" for k, v in {
            "n": self.settings["n"], "hidden": ",".join(map(str, self.settings["hidden"])),
            "batch_size": self.settings["batch_size"] or "full", **extra}.items())
        return StepTooLong(
            f"one {opt} step takes more than {time_limit:g} s with these settings ({shown}): "
            "it computes the loss many times per step; lower max_iter or popsize, the number "
            "of points n, or the hidden layers (nothing was changed)")

    def _step_once(self, deadline: float | None = None, time_limit: float = 0.0) -> None:
        order, shuffled = list(self._order), self._batches.getstate()
        batch = self._next_batch()
        opt = self.optimizer
        try:
            if _needs_closure(type(opt)):
                graded: list[bool] = []

                def closure() -> Value:
                    graded.append(is_grad_enabled())
                    if deadline is not None and time.monotonic() >= deadline:
                        # The step is undone: its batch comes again.
                        self._order = order
                        self._batches.setstate(shuffled)
                        raise self._too_long(time_limit)
                    opt.zero_grad()
                    loss = self._objective(batch)
                    loss.backward()
                    return loss

                loss = opt.step(closure)
                gradient_free = not any(graded)
            else:
                gradient_free = False
                opt.zero_grad()
                loss = self._objective(batch)
                loss.backward()
                if not math.isfinite(loss.data):
                    raise ArithmeticError(f"the loss is {loss.data!r}")
                opt.step()
        except (ArithmeticError, ValueError) as error:
            if not isinstance(error, ArithmeticError) and "math domain" not in str(error):
                raise
            advice = (f"lower the learning rate (lr={self.settings['lr']:g})"
                      if _has_lr(type(opt)) else "try a smaller step size")
            raise Diverged(f"step {self.step_count + 1}: training diverged ({error}); {advice} "
                           "and press Reset") from None
        if self.schedule is not None:
            self.schedule.step()
        self.step_count += 1
        self.last_step_loss = float(loss.data if isinstance(loss, Value) else loss)
        self.last_step_gradient_free = gradient_free
        self.version += 1
        self._evaluate()

    def _evaluate(self) -> None:
        with no_grad():
            train = [self.model(x) for x in self.X_train]
            test = [self.model(x) for x in self.X_test]
            self.train_loss = self._loss_of(train, self.y_train)
            self.accuracy = losses.accuracy(train, self.y_train)
            if test:
                self.test_loss = self._loss_of(test, self.y_test)
                self.test_accuracy: float | None = losses.accuracy(test, self.y_test)
            else:
                self.test_loss, self.test_accuracy = None, None
        self.history.append({"step": self.step_count, "train_loss": self.train_loss,
                             "test_loss": self.test_loss, "train_accuracy": self.accuracy,
                             "test_accuracy": self.test_accuracy, "lr": _lr_of(self.optimizer)})

    def _loss_of(self, scores: list, targets: list) -> float:
        """The data loss as a float; inf when weights have grown so large that it overflows
        (the next step then reports that training diverged)."""
        try:
            return float(self.loss_fn(scores, targets).data)
        except ArithmeticError:
            return math.inf

    # -- looking inside

    def point(self, index: int) -> tuple[list[float], Any, str]:
        """Point `index` of the whole dataset (training points first, then the test points):
        (x, target, its name such as "training point 5" or "test point 0")."""
        n_train = len(self.X_train)
        index = _int_in("point", index, 0, n_train + len(self.X_test) - 1)
        if index < n_train:
            return self.X_train[index], self.y_train[index], f"training point {index}"
        return (self.X_test[index - n_train], self.y_test[index - n_train],
                f"test point {index - n_train}")

    def point_loss(self, index: int) -> Value:
        """The loss of one point as a fresh graph (the L2 term left out), labelled `loss`."""
        x, target, _ = self.point(index)
        loss = self.loss_fn(self.model(x), target)
        loss.label = "loss"
        return loss

    def worst_point(self) -> int:
        """The training point with the largest loss now (near or across the boundary): its
        graph has gradients worth looking at, where a point beyond the margin has none."""
        with self._lock, no_grad():
            losses_now = [self.loss_fn(self.model(x), t).data
                          for x, t in zip(self.X_train, self.y_train)]
        return max(range(len(losses_now)), key=lambda i: (losses_now[i], -i))

    def neuron_graph(self, neuron: str, index: int | None = None) -> dict[str, Any]:
        """The drawing of point `index`'s loss after its backward pass, one box per neuron.

        Returns {"svg", "title", "neuron", "point"}; without `index`, the worst point is
        drawn. The training gradients on the weights are put back afterwards, so the network
        view keeps showing the last step's gradients.
        """
        names = {name for name, _ in self.model.named_modules() if name.count(".") == 3}
        if neuron not in names:
            raise ValueError(f"neuron: no neuron {neuron!r} in this model; names look like "
                             "layers.0.neurons.3")
        from autodiff import to_dot

        _need_dot()
        with self._lock:
            index = self.worst_point() if index is None else index
            x, target, which = self.point(index)
            title = (f"loss of {which}: x = ({x[0]:.3g}, {x[1]:.3g}), target "
                     f"{target}, after {self.step_count} steps; {neuron} highlighted")
            with self._own_grads():
                loss = self.point_loss(index)
                loss.backward()
                # Past ~150 Values, draw_dot draws one box per neuron (the view to click into).
                svg = render_svg(to_dot(loss, model=self.model, title=title))
        return {"svg": svg, "title": title, "neuron": neuron, "point": index}

    def step_through(self, index: int) -> str:
        """The HTML step-through of backprop (autodiff.to_html) for point `index`'s loss."""
        from autodiff import to_html

        _need_dot()
        with self._lock:
            x, target, which = self.point(index)
            title = (f"Backprop of the loss of {which} (x = ({x[0]:.3g}, "
                     f"{x[1]:.3g}), target {target}) after {self.step_count} steps")
            with self._own_grads():
                loss = self.point_loss(index)
                size = len(topological_order(loss))
                if size > STEP_THROUGH_MAX:
                    raise ValueError(
                        f"point: the loss of one point has {size:,} Values in this network, too "
                        f"many to step through one by one (at most {STEP_THROUGH_MAX}); use "
                        "fewer or narrower hidden layers, or look at the neuron graph instead")
                return to_html(loss, model=self.model, title=title)

    @contextlib.contextmanager
    def _own_grads(self) -> Iterator[None]:
        """A context in which gradients may be computed without losing the training ones."""
        params = self.model.parameters()
        grads = [p.grad for p in params]
        for p in params:  # backward() adds onto .grad: start this graph's gradients from zero
            p.grad = 0.0
        try:
            yield
        finally:
            for p, g in zip(params, grads):
                p.grad = g

    # -- what the page draws

    def frame(self, since: int = 0, run: int | None = None, grid: int = 40) -> dict[str, Any]:
        """Everything the page draws, as JSON-ready data.

        `since` is how many history entries the caller already has from run `run`; only the
        newer ones are sent (all of them, with the points, when the run changed).
        """
        with self._lock:
            fresh = run != self.run
            since = 0 if fresh else max(0, min(int(since), len(self.history)))
            try:
                stats = grad_flow_stats(self.model, self.X_train)
            except ArithmeticError:  # diverged weights: report without the dead neurons
                stats = grad_flow_stats(self.model)
            frame: dict[str, Any] = {
                "run": self.run,
                "version": self.version,
                "step_count": self.step_count,
                "settings": dict(self.settings),
                "lr": _lr_of(self.optimizer),
                "train_loss": _number(self.train_loss),
                "train_loss_repr": repr(self.train_loss),
                "test_loss": _number(self.test_loss),
                "test_loss_repr": repr(self.test_loss),
                "accuracy": self.accuracy,
                "gradient_free": self.last_step_gradient_free,
                "test_accuracy": self.test_accuracy,
                "history_start": since,
                "history": [{k: _number(v) for k, v in h.items()}
                            for h in self.history[since:]],
                "boundary": None,
                "network": None,
                "grad_flow": [{"name": s["name"], "mean": _number(s["mean"]),
                               "max": _number(s["max"]), "vanishing": s["vanishing"],
                               "dead": s["dead"], "no_grad": s["no_grad"]} for s in stats],
            }
            if fresh:
                frame["points"] = {
                    "train": [[x[0], x[1], c] for x, c in zip(self.X_train, self.labels_train)],
                    "test": [[x[0], x[1], c] for x, c in zip(self.X_test, self.labels_test)],
                    "classes": self.classes,
                    "extent": self._extent,
                }
            frame["boundary"], frame["network"] = self._pictures(grid, stats)
        return frame

    def _pictures(self, grid: int, stats: list[dict]) -> tuple[dict, dict]:
        """The decision boundary over a grid x grid raster of the plane and each neuron's
        output over a half-resolution raster, from one float forward pass of the grid."""
        x0, x1, y0, y1 = self._extent
        xs = [x0 + (x1 - x0) * (i + 0.5) / grid for i in range(grid)]
        ys = [y1 - (y1 - y0) * (j + 0.5) / grid for j in range(grid)]  # top row first
        col_x = [x for _ in ys for x in xs]
        col_y = [y for y in ys for _ in xs]
        thumb = [j * grid + i for j in range(0, grid, 2) for i in range(0, grid, 2)]
        dead = {name for s in stats for name in (s["dead"] or [])}
        layers_out = []
        h = [col_x, col_y]
        inputs = [{"name": name, "picture": _bytes([c[k] for k in thumb], 1.0, True),
                   "scale": 1.0} for name, c in (("x1", col_x), ("x2", col_y))]
        for index, layer in enumerate(self.model.layers):
            act = layer.activation
            cols, neurons = [], []
            for j, neuron in enumerate(layer.neurons):
                s = [neuron.b.data] * len(col_x)
                for w, c in zip(neuron.w, h):
                    wd = w.data
                    s = [a + wd * b for a, b in zip(s, c)]
                out = _activate(act, s)
                cols.append(out)
                name = f"layers.{index}.neurons.{j}"
                pic = [out[k] for k in thumb]
                scale = max((abs(v) for v in pic if math.isfinite(v)), default=0.0) or 1.0
                neurons.append({
                    "name": name,
                    "w": [_number(w.data) for w in neuron.w], "b": _number(neuron.b.data),
                    "gw": [_number(_grad(w)) for w in neuron.w], "gb": _number(_grad(neuron.b)),
                    "dead": name in dead, "activation": act,
                    "picture": _bytes(pic, scale, True), "scale": scale,
                })
            layers_out.append({"name": f"layers.{index}", "neurons": neurons})
            h = cols
        if len(h) == 1:
            boundary = {"kind": "score", "grid": grid,
                        "values": _bytes([math.tanh(v) if math.isfinite(v) else 0.0
                                          for v in h[0]], 1.0, True)}
        else:
            best, confidence = [], []
            for row in zip(*h):
                if not all(math.isfinite(v) for v in row):
                    best.append(0)
                    confidence.append(0.0)
                    continue
                top = max(row)
                weights = [math.exp(v - top) for v in row]
                k = row.index(top)
                best.append(k)
                confidence.append(weights[k] / sum(weights))
            boundary = {"kind": "classes", "grid": grid, "classes": len(h),
                        "values": base64.b64encode(bytes(best)).decode("ascii"),
                        "confidence": _bytes(confidence, 1.0, False)}
        return boundary, {"inputs": inputs, "layers": layers_out}

    def __repr__(self) -> str:
        s = self.settings
        return (f"Session({s['dataset']}, hidden={s['hidden']}, {s['optimizer']} "
                f"lr={_lr_of(self.optimizer)}; step {self.step_count}, "
                f"train loss {self.train_loss:.4g}, accuracy {self.accuracy:.0%})")


# ---- helpers -------------------------------------------------------------------------------------


def _extent(X: list[list[float]]) -> list[float]:
    """The plane shown: the points' bounding box with a margin, as [x0, x1, y0, y1]."""
    lo = [min(p[k] for p in X) for k in (0, 1)]
    hi = [max(p[k] for p in X) for k in (0, 1)]
    pad = [0.15 * max(hi[k] - lo[k], 1e-6) for k in (0, 1)]
    return [lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1]]


def _activate(act: str, s: list[float]) -> list[float]:
    """The activations of nn.layers on a list of floats (the same functions as autodiff's)."""
    if act == "relu":
        return [v if v > 0 else 0.0 for v in s]
    if act == "tanh":
        return [math.tanh(v) for v in s]
    if act == "sigmoid":
        return [0.5 * (1.0 + math.tanh(0.5 * v)) for v in s]
    return s


def _bytes(values: list[float], scale: float, signed: bool) -> str:
    """Values quantised to one byte each (base64): v / scale in [-1, 1] (signed) or [0, 1]."""
    out = bytearray()
    for v in values:
        t = v / scale if math.isfinite(v) else 0.0
        t = max(-1.0, min(1.0, t))
        out.append(round(127.5 + 127.5 * t) if signed else round(255 * max(t, 0.0)))
    return base64.b64encode(bytes(out)).decode("ascii")


def _number(v: Any) -> Any:
    """JSON has no NaN or infinity: those become None (the *_repr fields keep the text)."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _grad(p: Value) -> float:
    g = p.grad
    return g.data if isinstance(g, Value) else float(g)
