"""`Session`: one playground run (data, model, optimizer, schedule) that trains step by step.

A Session is what the playground page drives and what a notebook can drive by hand: build it
from named settings (checked by `nn.playground.settings`), call `step()`, read `train_loss`,
`accuracy`, `history`, and look inside one point's loss. The one idea to understand: the page
only draws what `frame()` returns (`nn.playground.frame`), so its numbers are the Session's.

    >>> s = Session(dataset="moons", n=100, hidden=[4], optimizer="sgd", lr=0.1, seed=0)
    >>> s.step_count, len(s.history)
    (0, 1)
    >>> first = s.train_loss
    >>> s.step(3)
    >>> s.step_count, s.train_loss < first
    (3, True)
"""

from __future__ import annotations

import contextlib
import inspect
import math
import random
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from autodiff import Value, is_grad_enabled, no_grad, topological_order
from autodiff.viz.render import can_render, render_svg
from nn import data as datasets
from nn import losses, schedules
from nn.layers import MLP
from nn.optim.registry import resolve as resolve_optimizer
from nn.playground.features import features_of
from nn.playground.frame import build_frame, plane_extent
from nn.playground.objective import CompileError, loss_of_scores, penalty_of, shared_objective
from nn.playground.settings import (LOSSES, OPTIMIZERS, SETTINGS, float_in, has_lr, int_in,
                                    lr_of, make_optimizer, needs_closure, optimizer_settings,
                                    resolve_settings, start_lr)

__all__ = ["Session", "Diverged", "StepTooLong", "DotMissing", "need_dot"]

#: The most Values a step-through page shows (autodiff.to_html's own default limit).
STEP_THROUGH_MAX = 500


class Diverged(ValueError):
    """A step whose loss is not a finite number: nothing was updated."""


class StepTooLong(ValueError):
    """A step that outlasted its time limit: it was undone, nothing was updated."""


class DotMissing(RuntimeError):
    """Drawing a graph needs Graphviz's `dot` program, and it is not installed."""


def _registered_name(name: Any) -> Any:
    """The optimizer's registered name for `name` (an old one, say); unknown names as they are
    (the settings' check names them)."""
    try:
        return resolve_optimizer(name)[0]
    except (ValueError, TypeError):
        return name


def need_dot() -> None:
    """Raise DotMissing (saying what to install) unless graphs can be drawn here."""
    if not can_render():  # the dot program, or a renderer installed (the browser build's)
        raise DotMissing("Looking inside draws graphs with Graphviz's dot program, which is not "
                         "installed here (Debian/Ubuntu: apt-get install graphviz; macOS: brew "
                         "install graphviz); everything else in the playground works without it")


class Session:
    """A training run with named settings; `step()` is exactly one optimizer step.

    Data: `dataset` (any of nn.data.DATASETS) with `n` points and `noise` (None: the dataset's
    own), the last `test_fraction` of them held out. Model: `MLP(len(features), hidden +
    [outputs])` with `activation` in the hidden layers, `init` and `seed`, fed the input
    `features` of each point (["x1", "x2"]: its coordinates; see nn.playground.features); one
    output for the two-class losses (hinge, bce, mse), one per class for cross_entropy.
    Training: `loss` on a batch of `batch_size` points (None: the whole training set) plus
    `l2 * sum(w^2)` and `l1 * sum(|w|)` over every parameter, minimised by
    `optimizer` (a name of nn.optim's registry: "adam", "conjugate_gradient", ...) with
    learning rate `lr` and its other hyper-parameters as keywords (`momentum=0.9`,
    `betas=(0.9, 0.99)`); `schedule` is "none", "step" (lr *= gamma every decay_steps),
    "exponential" (lr *= gamma each step), "cosine" (to 0 over decay_steps) or "linear" (to
    gamma * lr over decay_steps).

    After every step the session evaluates the data loss (without the L2 term) and the accuracy
    on the whole training and test sets at the new weights: `train_loss`, `test_loss`,
    `accuracy`, `test_accuracy`, and one entry of `history` per step (entry 0 is the start).
    `evaluations` counts the forward passes of the objective so far and `gradients` its
    backward passes (full-batch SGD: one each per step; L-BFGS and CG: every point of their
    line searches; CMA-ES and the ES: a population of evaluations and no gradient), `seconds`
    the wall-clock time spent in the steps (`times`: its value at each entry of `history`):
    the three clocks a `Race` can compare runs by.
    Batches come from the session's own generator, so the same settings give the same numbers.

    Full-batch steps run on `autodiff.compile` (see `nn.playground.objective`): the same numbers
    as the eager engine, bit for bit, many times faster. `compiled=False` keeps the eager
    engine; a session that cannot compile (minibatches, a network too large to trace) runs
    eagerly and says why in `compile_note`.

    The history stays bounded: once it holds `max_history` entries, every other one is dropped
    (the history then keeps every 2nd step, then every 4th, ..., and always the newest) and
    `history_thinned` counts up, so a long run keeps between max_history / 2 and max_history
    entries evenly spread over all its steps: the curves look the same (the page draws about
    300 points of them anyway), and memory and frames stay small.
    """

    #: The most history entries a session keeps before thinning them (see the class docstring).
    max_history = 4000

    def __init__(self, dataset: str = "moons", n: int = 200, noise: float | None = None,
                 test_fraction: float = 0.2, seed: int = 0,
                 features: Sequence[str] = ("x1", "x2"), hidden: Sequence[int] = (8, 8),
                 activation: str = "relu", init: str = "uniform", loss: str = "hinge",
                 optimizer: str = "sgd", lr: float = 0.1, schedule: str = "none",
                 decay_steps: int = 100, gamma: float = 0.1, batch_size: int | None = None,
                 l2: float = 0.0, l1: float = 0.0, *, compiled: bool = True,
                 **optimizer_options: Any) -> None:
        if not isinstance(compiled, bool):
            raise TypeError(f"Session: compiled must be True or False, got {compiled!r}")
        #: Whether full-batch steps run on `autodiff.compile` (the same numbers, bit for bit,
        #: many times faster); `compile_note` says why a session runs eagerly after all.
        self.compiled = compiled
        self.compile_note: str | None = None
        given = dict(dataset=dataset, n=n, noise=noise, test_fraction=test_fraction, seed=seed,
                     features=list(features) if isinstance(features, tuple) else features,
                     hidden=list(hidden) if isinstance(hidden, tuple) else hidden,
                     activation=activation, init=init, loss=loss, optimizer=optimizer, lr=lr,
                     schedule=schedule, decay_steps=decay_steps, gamma=gamma,
                     batch_size=batch_size, l2=l2, l1=l1, **optimizer_options)
        self._lock = threading.RLock()
        self.run = 0  # counts rebuilds, so a page can tell a fresh run from more steps
        #: What the last resolution of the settings changed and why (see `resolve_settings`):
        #: a three-class dataset took cross_entropy, an old optimizer name its name now, ...
        self.adjusted: list[dict[str, Any]]
        self.settings: dict[str, Any]
        self.settings, self.adjusted = resolve_settings(given)
        self._build()

    # -- settings

    def update(self, **changes: Any) -> bool:
        """Change settings. Returns True when the session was rebuilt from step 0.

        The optimizer, its hyper-parameters, lr, the schedule, batch_size and l2 apply from the
        next step on: a new optimizer starts with empty state, and a new lr or schedule starts
        the schedule again from that lr; the weights carry on. A new optimizer without a new
        `lr` starts at its own starting lr (`settings.start_lr`). Optimizer and lr changes leave
        a mark in `marks` at the step they apply from. Any other change (data, model, loss,
        seed) starts a fresh run. A bad value raises and changes nothing. The settings' rules
        apply as at construction (a three-class dataset takes cross_entropy, ...), and
        `adjusted` says what they changed.
        """
        with self._lock:
            merged = dict(self.settings)
            if "optimizer" in changes and _registered_name(changes["optimizer"]) \
                    != merged["optimizer"]:
                # The old optimizer's hyper-parameters do not carry over to another class,
                # nor does its learning rate (Adam's 0.05 would crawl with SGD).
                for key in optimizer_settings(merged["optimizer"]):
                    merged.pop(key, None)
                name = _registered_name(changes["optimizer"])
                if "lr" not in changes and name in OPTIMIZERS:
                    lr = start_lr(name)
                    if lr is not None:
                        merged["lr"] = lr
            if "dataset" in changes and "noise" not in changes:
                merged["noise"] = None  # the new dataset's own noise
            merged.update(changes)
            new, adjusted = resolve_settings(merged)
            # Only what this update changed is news (not the rules applied at construction).
            self.adjusted = [a for a in adjusted if a["setting"] in changes
                             or new[a["setting"]] != self.settings.get(a["setting"])]
            changed = {k for k in new if new[k] != self.settings.get(k)}
            old, self.settings = self.settings, new
            if not changed:
                return False
            if any(not (SETTINGS[k].live if k in SETTINGS else True) for k in changed):
                self._build()
                return True
            lr_too = has_lr(OPTIMIZERS[new["optimizer"]].cls)
            if "optimizer" in changed or "lr" in changed and lr_too:
                lr = f"lr {new['lr']:g}" if lr_too else ""
                self.marks.append({"step": self.step_count, "text": (
                    f"{new['optimizer']} {lr}" if "optimizer" in changed else lr).strip()})
            if changed & ({"optimizer"} | set(optimizer_settings(new["optimizer"]))) \
                    or old["optimizer"] != new["optimizer"]:
                self.optimizer = make_optimizer(new, self.model.parameters(), self.model)
                self._make_schedule()
            elif changed & {"lr", "schedule", "decay_steps", "gamma"} \
                    and has_lr(type(self.optimizer)):
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
        # The points come shuffled, so the last ones are a fair test set. The plane's points
        # are drawn; the network sees their input features (the points themselves by default).
        self.points_train, self.points_test = X[:n_train], X[n_train:]
        inputs = X if s["features"] == ["x1", "x2"] else [features_of(s["features"], p)
                                                           for p in X]
        self.X_train, self.X_test = inputs[:n_train], inputs[n_train:]
        self.y_train, self.y_test = targets[:n_train], targets[n_train:]
        self.labels_train, self.labels_test = classes[:n_train], classes[n_train:]
        self.model = MLP(len(s["features"]), [*s["hidden"], outputs],
                         activation=s["activation"], init=s["init"], seed=s["seed"])
        self.optimizer = make_optimizer(s, self.model.parameters(), self.model)
        self._make_schedule()
        self._batches = random.Random(f"batches {s['seed']}")
        self._order: list[int] = []
        self.step_count = 0
        # The fair clocks of a race: forward passes of the objective, backward passes, and
        # seconds spent stepping (wall clock, so it depends on the machine and its load).
        self.evaluations = 0
        self.gradients = 0
        self.seconds = 0.0
        self.times: list[float] = []  # `seconds` at each entry of history
        self.last_step_loss: float | None = None
        self.last_batch: list[int] = []  # the training points of the last step, by index
        self.last_step_gradient_free = False  # CMA-ES, the ES: their closure runs under no_grad
        self.history: list[dict[str, Any]] = []
        #: Where the optimizer or lr changed mid-run: {"step", "text"}, drawn on the curves.
        self.marks: list[dict[str, Any]] = []
        #: Why the last step was refused as diverged (None once a step succeeds).
        self.diverged: str | None = None
        self.history_thinned = 0  # how often this run's history was thinned
        self._history_stride = 1  # the history keeps the steps that are multiples of this
        self.run += 1
        self.version = 0
        self.extent = plane_extent(X)  # the plane the page shows: [x0, x1, y0, y1]
        self._compile_failed: tuple | None = None
        self._evaluate()

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

    def _shared_objective(self) -> Any:
        """The compiled full-batch objective this session shares with its twins, or None
        (eager: compiled=False, minibatches, or a network too large to trace)."""
        s = self.settings
        if not self.compiled:
            return None
        if s["batch_size"] is not None:
            self.compile_note = ("minibatches run eagerly: each batch has targets of its own, "
                                 "and a trace per batch costs more than it saves")
            return None
        key = (s["dataset"], s["n"], s["noise"], s["test_fraction"], s["seed"],
               tuple(s["features"]), tuple(s["hidden"]), s["activation"], s["loss"], s["l2"],
               s["l1"])
        if key == self._compile_failed:
            return None
        try:
            shared = shared_objective(key, s["hidden"], len(self.model.layers[-1].neurons),
                                      s["activation"], self.loss_fn, s["l2"],
                                      nin=len(s["features"]), l1=s["l1"])
        except CompileError as error:
            self._compile_failed = key
            self.compile_note = f"runs eagerly: the objective cannot be compiled ({error})"
            return None
        self.compile_note = None
        return shared

    def _objective_backward(self, batch: list[int]) -> Value:
        """`loss = self._objective(batch); loss.backward()`, compiled when it can be: the
        same loss and the same gradients in `.grad`, bit for bit."""
        shared = self._shared_objective()
        if shared is None:
            loss = self._objective(batch)
            loss.backward()
            return loss
        return Value(shared.backward(self.model.parameters(), self.X_train, self.y_train))

    def _objective_value(self, batch: list[int]) -> Value:
        """The objective under no_grad (what CMA-ES and the ES evaluate): in compiled mode
        from the model's float evaluation (`layer_outputs`) of all the batch's points at once,
        the same number."""
        if not self.compiled:
            return self._objective(batch)
        loss = Value(self._data_loss(self._scores([self.X_train[i] for i in batch]),
                                     [self.y_train[i] for i in batch], raw=True))
        l2, l1 = self.settings["l2"], self.settings["l1"]
        return loss + penalty_of(self.model, l2, l1) if l2 or l1 else loss

    def _objective(self, batch: list[int]) -> Value:
        """The loss of the batch plus its penalties (`penalty_of`: l2 * sum(w^2) + l1 * sum(|w|),
        when l2 or l1 > 0): what the optimizer minimises."""
        scores = [self.model(self.X_train[i]) for i in batch]
        loss = self.loss_fn(scores, [self.y_train[i] for i in batch])
        l2, l1 = self.settings["l2"], self.settings["l1"]
        return loss + penalty_of(self.model, l2, l1) if l2 or l1 else loss

    def step(self, count: int = 1, time_limit: float | None = None) -> None:
        """`count` optimizer steps (each: zero_grad, forward, backward, step, schedule).

        With `time_limit` (seconds), no step starts once it has passed (the first always
        does), and a step that takes the loss more often than that allows (L-BFGS with
        max_iter=1000 on many points, say) is undone and raises StepTooLong naming the settings
        that make it long (`step_count` says how many steps were taken).
        """
        count = int_in("step count", count, 1, None)
        if time_limit is not None:
            time_limit = float_in("time_limit", time_limit, 0.0, None)
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
        started = time.perf_counter()
        order, shuffled = list(self._order), self._batches.getstate()
        batch = self._next_batch()
        opt = self.optimizer
        try:
            if needs_closure(type(opt)):
                graded: list[bool] = []

                def closure() -> Value:
                    graded.append(is_grad_enabled())  # one evaluation; a gradient if True
                    if deadline is not None and time.monotonic() >= deadline:
                        # The step is undone: its batch comes again.
                        self._order = order
                        self._batches.setstate(shuffled)
                        raise self._too_long(time_limit)
                    opt.zero_grad()
                    if not is_grad_enabled():  # a gradient-free method: the value alone
                        return self._objective_value(batch)
                    return self._objective_backward(batch)

                # The optimizer checks the deadline inside its own long loops too (CMA-ES's
                # covariance update and eigen-decomposition run between two closure calls).
                opt.deadline = deadline
                try:
                    loss = opt.step(closure)
                except TimeoutError:
                    self._order = order  # the step is undone: its batch comes again
                    self._batches.setstate(shuffled)
                    raise self._too_long(time_limit) from None
                finally:
                    opt.deadline = None
                gradient_free = not any(graded)
                evaluations, gradients = len(graded), sum(graded)
            else:
                gradient_free = False
                evaluations = gradients = 1
                opt.zero_grad()
                loss = self._objective_backward(batch)
                if not math.isfinite(loss.data):
                    raise ArithmeticError(f"the loss is {loss.data!r}")
                opt.step()
        except (ArithmeticError, ValueError) as error:
            if not isinstance(error, ArithmeticError) and "math domain" not in str(error):
                raise
            advice = (f"lower the learning rate (lr={self.settings['lr']:g})"
                      if has_lr(type(opt)) else "try a smaller step size")
            self.diverged = (f"step {self.step_count + 1}: training diverged ({error}); "
                             f"{advice} and press Reset")
            raise Diverged(self.diverged) from None
        if self.schedule is not None:
            self.schedule.step()
        self.step_count += 1
        self.diverged = None
        self.evaluations += evaluations
        self.gradients += gradients
        self.last_batch = batch
        self.last_step_loss = float(loss.data if isinstance(loss, Value) else loss)
        self.last_step_gradient_free = gradient_free
        self.version += 1
        self.seconds += time.perf_counter() - started  # training only, not the views
        self._evaluate()

    def _scores(self, X: list[list[float]]) -> list:
        """`[model(x) for x in X]` under no_grad as plain floats (a list of class scores per
        point when the model has several outputs), all points at once: the model's one float
        evaluation (`MLP.layer_outputs`)."""
        if not X:
            return []
        outs = self.model.layer_outputs(X)[-1]
        return outs[0] if len(outs) == 1 else [list(row) for row in zip(*outs)]

    def _data_loss(self, scores: list, targets: list, raw: bool = False) -> float:
        """The data loss of float `scores` as a float: in compiled mode through a trace of the
        loss alone, eagerly on constant Values otherwise (the same number either way). With
        `raw`, an overflow raises (training notices it) instead of giving inf (for a view)."""
        try:
            if self.compiled:
                return loss_of_scores(self.settings["loss"], self.loss_fn, scores, targets)
            with no_grad():
                values = [[Value(v) for v in p] if isinstance(p, list) else Value(p)
                          for p in scores]
                return float(self.loss_fn(values, targets).data)
        except ArithmeticError:
            if raw:
                raise
            return math.inf

    def evaluation_point(self) -> contextlib.AbstractContextManager[None]:
        """A context in which the model holds the weights to evaluate and draw: the averaged
        point x of a Schedule-Free optimizer (its `evaluating()`; the training point y comes
        back bit for bit afterwards), the weights themselves for every other optimizer."""
        evaluating = getattr(self.optimizer, "evaluating", None)
        return evaluating() if evaluating is not None else contextlib.nullcontext()

    def _evaluate(self) -> None:
        with self.evaluation_point():
            train = self._scores(self.X_train)
            test = self._scores(self.X_test)
        self.train_loss = self._data_loss(train, self.y_train)
        self.accuracy = losses.accuracy(train, self.y_train)
        if test:
            self.test_loss = self._data_loss(test, self.y_test)
            self.test_accuracy: float | None = losses.accuracy(test, self.y_test)
        else:
            self.test_loss, self.test_accuracy = None, None
        self.history.append({"step": self.step_count, "train_loss": self.train_loss,
                             "test_loss": self.test_loss, "train_accuracy": self.accuracy,
                             "test_accuracy": self.test_accuracy, "lr": lr_of(self.optimizer),
                             "evaluations": self.evaluations, "gradients": self.gradients})
        # apart from history, which the same settings reproduce exactly: the clock does not
        self.times.append(self.seconds)
        # The history holds the steps that are multiples of a stride, plus the newest step
        # (`times` keeps its entries alongside).
        if len(self.history) >= 2 and self.history[-2]["step"] % self._history_stride:
            del self.history[-2]  # the newest until now, between two multiples of the stride
            del self.times[-2]
        if len(self.history) > self.max_history:
            # Double the stride: every other entry goes, the same curve at half the density,
            # evenly spaced in steps as the page's own thinning to ~300 drawn points is.
            self._history_stride *= 2
            last = len(self.history) - 1
            kept = [i for i, h in enumerate(self.history)
                    if h["step"] % self._history_stride == 0 or i == last]
            self.history = [self.history[i] for i in kept]
            self.times = [self.times[i] for i in kept]
            self.history_thinned += 1

    # -- looking inside

    def point(self, index: int) -> tuple[list[float], Any, str]:
        """Point `index` of the whole dataset (training points first, then the test points):
        (x, target, its name such as "training point 5" or "test point 0"); x is what the
        network sees of it (its input features), `plane_point(index)` where it is drawn."""
        n_train = len(self.X_train)
        index = int_in("point", index, 0, n_train + len(self.X_test) - 1)
        if index < n_train:
            return self.X_train[index], self.y_train[index], f"training point {index}"
        return (self.X_test[index - n_train], self.y_test[index - n_train],
                f"test point {index - n_train}")

    def plane_point(self, index: int) -> list[float]:
        """Where point `index` lies on the plane (x1, x2), whatever the input features."""
        n_train = len(self.points_train)
        index = int_in("point", index, 0, n_train + len(self.points_test) - 1)
        return (self.points_train[index] if index < n_train
                else self.points_test[index - n_train])

    def point_loss(self, index: int) -> Value:
        """The loss of one point as a fresh graph (the L2 term left out), labelled `loss`."""
        x, target, _ = self.point(index)
        loss = self.loss_fn(self.model(x), target)
        loss.label = "loss"
        return loss

    def worst_point(self) -> int:
        """The training point with the largest loss now (near or across the boundary): its
        graph has gradients worth looking at, where a point beyond the margin has none."""
        with self._lock, no_grad(), self.evaluation_point():
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

        need_dot()
        with self._lock, self.evaluation_point():
            index = self.worst_point() if index is None else index
            _, target, which = self.point(index)
            x = self.plane_point(index)
            title = (f"loss of {which}: x = ({x[0]:.3g}, {x[1]:.3g}), target "
                     f"{target}, after {self.step_count} steps; {neuron} highlighted")
            with self._own_grads():
                loss = self.point_loss(index)
                loss.backward()
                # Past ~150 Values, draw_dot draws one box per neuron (the view to click into).
                svg = render_svg(to_dot(loss, model=self.model, title=title))
            point_loss = float(loss.data)
            worst = self.worst_point()
            why = self._why_zero(point_loss, index) if point_loss == 0 else None
        return {"svg": svg, "title": title, "neuron": neuron, "point": index,
                "loss": point_loss if math.isfinite(point_loss) else None,
                "loss_repr": repr(point_loss), "worst": worst, "zero_why": why}

    def _why_zero(self, point_loss: float, index: int) -> str:
        """Why every gradient of a point's loss graph is 0: that loss is 0 (said per loss)."""
        _, target, which = self.point(index)
        if self.settings["loss"] == "hinge":
            with no_grad():
                score = self.model(self.point(index)[0]).data
            return (f"The loss of {which} is 0, so every gradient here is 0: hinge loss "
                    f"max(0, 1 - y*s) with y = {target} and score s = {score:.3g} has y*s = "
                    f"{target * score:.3g} >= 1, beyond the margin. A point classified right "
                    "with room to spare teaches this step nothing.")
        return (f"The loss of {which} is exactly 0 in floating point, so every gradient here "
                "is 0: the point is fitted as well as the numbers can tell.")

    def step_through(self, index: int) -> str:
        """The HTML step-through of backprop (autodiff.to_html) for point `index`'s loss."""
        from autodiff import to_html

        need_dot()
        with self._lock, self.evaluation_point():
            _, target, which = self.point(index)
            x = self.plane_point(index)
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

    def frame(self, since: int = 0, run: int | None = None, grid: int = 40,
              thinned: int | None = None) -> dict[str, Any]:
        """Everything the page draws, as JSON-ready data (see `nn.playground.frame`).

        `since` is how many history entries the caller already has from run `run`; only the
        newer ones are sent (all of them, with the points, when the run changed).
        """
        with self._lock, self.evaluation_point():
            return build_frame(self, since, run, grid, thinned)

    def __repr__(self) -> str:
        s = self.settings
        return (f"Session({s['dataset']}, hidden={s['hidden']}, {s['optimizer']} "
                f"lr={lr_of(self.optimizer)}; step {self.step_count}, "
                f"train loss {self.train_loss:.4g}, accuracy {self.accuracy:.0%})")

