"""`Surface`: update rules racing on a 2-D loss you can see, every step of every run recorded.

Two weights (x, y) and a test function f(x, y) of `nn.testfunctions` make the smallest training
problem there is: the loss is a landscape you can draw, and each optimizer's path over it shows
what its update rule does. The one idea to understand: the two weights are ordinary Values and
each run is an ordinary `nn.optim` optimizer stepping them, so a point of a path is exactly
where that optimizer's own step put the weights (SGD's first step is `start - lr * grad`, to
the last bit), and what the page draws besides (the line search's trial points, the populations
of CMA-ES, the evolution strategy and the genetic algorithm, CMA-ES's covariance ellipse) is what
the optimizer actually evaluated.

    >>> from nn.playground import Surface
    >>> s = Surface("rosenbrock", ["sgd:lr=0.001", "adam:lr=0.1"], start=(-1.2, 1.0))
    >>> s.step(3)
    >>> [len(p) for p in s.paths], s.paths[0][0]
    ([4, 4], (-1.2, 1.0))
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Sequence
from typing import Any

from autodiff import Value, is_grad_enabled
from nn import testfunctions
from nn.optim import CMAES, EvolutionStrategy, GeneticAlgorithm
from nn.playground.runs import MAX_RUNS, check_run, parse_runs
from nn.playground.settings import OPTIMIZERS, optimizer_settings

__all__ = ["Surface", "SURFACE_RUN_KEYS", "DEFAULT_RUNS", "surface_from_query", "options"]

#: What a run on a surface may set besides its optimizer's own hyper-parameters.
SURFACE_RUN_KEYS = ("optimizer", "lr")
#: The runs a surface starts with when none are given: plain, heavy-ball, adaptive, quasi-Newton.
DEFAULT_RUNS = ("sgd:lr=0.001,sgd:lr=0.001:momentum=0.9,adam:lr=0.05,"
                "lbfgs:max_iter=5:line_search_fn=strong_wolfe")
#: The optimizers whose trial points are a population: they evaluate f, never its gradient, at
#: many points a step (a generation), and move to the best of them or to their weighted mean.
POPULATION_METHODS = (CMAES, EvolutionStrategy, GeneticAlgorithm)
#: The most steps one surface keeps (a path longer than this is not worth a request).
MAX_STEPS = 5000


class _Run:
    """One optimizer on the two weights, with everything its steps evaluated."""

    def __init__(self, function: testfunctions.TestFunction, settings: dict[str, Any],
                 start: tuple[float, float], seed: int) -> None:
        self.function, self.settings = function, settings
        self.x, self.y = Value(start[0], label="x"), Value(start[1], label="y")
        entry = OPTIMIZERS[settings["optimizer"]]
        cls = entry.cls
        wants = inspect.signature(cls.__init__).parameters
        options = {k: tuple(v) if isinstance(v, list) else None if v == "none" else v
                   for k, v in settings.items() if k in optimizer_settings(settings["optimizer"])}
        if "lr" in wants and "lr" in settings:
            options["lr"] = settings["lr"]
        if "seed" in wants:
            options["seed"] = seed
        self.optimizer = cls([self.x, self.y], **options)
        self.closure = entry.needs_closure
        # What its trial points are: a generation's population, or a line search's points.
        self.trial_kind = ("population" if isinstance(self.optimizer, POPULATION_METHODS)
                           else "line_search" if self.closure else None)
        self.path: list[tuple[float, float]] = [(float(start[0]), float(start[1]))]
        self.losses: list[float] = [float(function(*start))]
        self.gradient: list[tuple[float, float]] = [_gradient(function, start)]
        self.trials: list[list[tuple[float, float]]] = [[]]
        self.ellipses: list[dict[str, Any] | None] = [None]
        self.evaluations, self.gradients = [0], [0]
        self.stopped: str | None = None

    def _evaluate(self) -> Value:
        """The closure: f at the weights, with its backward pass when gradients are on."""
        self._trial.append((self.x.data, self.y.data))
        self._evaluations += 1
        self.optimizer.zero_grad()
        loss = self.function(self.x, self.y)
        if is_grad_enabled():
            loss.backward()
            self._gradients += 1
        return loss

    def step(self) -> None:
        if self.stopped:
            return
        self._trial: list[tuple[float, float]] = []
        self._evaluations = self._gradients = 0
        ellipse = _ellipse(self.optimizer)  # the distribution this generation is drawn from
        try:
            if self.closure:
                self.optimizer.step(self._evaluate)
            else:
                self._evaluate()
                self.optimizer.step()
            point = (self.x.data, self.y.data)
            loss = float(self.function(*point))
            if not all(math.isfinite(v) for v in (*point, loss)):
                raise ArithmeticError(f"the weights reached {point}")
        except (ArithmeticError, ValueError) as error:
            self.stopped = (f"diverged at step {len(self.path)} ({error}); lower the learning "
                            "rate")
            return
        self.path.append(point)
        self.losses.append(loss)
        self.gradient.append(_gradient(self.function, point))
        # SGD and the like evaluate only where they stand: no trial points worth drawing.
        self.trials.append(self._trial if self.closure else [])
        self.ellipses.append(ellipse)
        self.evaluations.append(self.evaluations[-1] + self._evaluations)
        self.gradients.append(self.gradients[-1] + self._gradients)


def _gradient(function: testfunctions.TestFunction,
              point: Sequence[float]) -> tuple[float, float]:
    x, y = Value(point[0]), Value(point[1])
    try:
        function(x, y).backward()
    except (ArithmeticError, ValueError):
        return (math.nan, math.nan)
    return (float(x.grad), float(y.grad))


def _ellipse(optimizer: Any) -> dict[str, Any] | None:
    """CMA-ES's sampling distribution N(m, sigma^2 C) as its one-sigma ellipse: centre, the two
    radii along C's eigenvectors, and the angle of the first (radians)."""
    state = getattr(optimizer, "state", None)
    if type(optimizer).__name__ != "CMAES":
        return None
    mean = [p.data for p in optimizer.params]
    if not state:  # before the first generation: sigma0 times the identity
        sigma, C = optimizer.sigma0, [[1.0, 0.0], [0.0, 1.0]]
    else:
        sigma, C = state["sigma"], state["C"]
    a, b, c = C[0][0], C[0][1], C[1][1]
    # eigenvalues of [[a, b], [b, c]] and the angle of the first eigenvector
    mid, half = (a + c) / 2, math.hypot((a - c) / 2, b)
    l1, l2 = mid + half, max(mid - half, 0.0)
    angle = 0.5 * math.atan2(2 * b, a - c)
    return {"centre": mean, "radii": [sigma * math.sqrt(l1), sigma * math.sqrt(l2)],
            "angle": angle, "sigma": sigma}


class Surface:
    """Several optimizers from one `start` on the test function `function` (see
    `nn.testfunctions`: "rosenbrock", "saddle", "quadratic" with `condition`, "beale",
    "himmelblau", "rastrigin").

    `runs` is a list of runs (dicts such as `{"optimizer": "adam", "lr": 0.05}`, an
    optimizer's name, or the URL text "sgd:lr=0.001,adam:lr=0.05"); `seed` seeds CMA-ES, the
    evolution strategy and the genetic algorithm. After `step(count)`, `paths[i]` is run i's
    list of (x, y) points (the first is `start`), `losses[i]` the values of f there,
    `evaluations[i]` and `gradients[i]` how many values and gradients of f run i had computed
    at each point.
    A run that diverges stops (its message in `stopped[i]`); the others go on.
    """

    def __init__(self, function: str = "rosenbrock", runs: Any = DEFAULT_RUNS,
                 start: Sequence[float] | None = None, seed: int = 0,
                 condition: float = 10.0) -> None:
        if not isinstance(function, str):
            raise TypeError(f"Surface: function must be a name such as 'rosenbrock', got "
                            f"{function!r}")
        self.function = testfunctions.get(function, condition)
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**31:
            raise ValueError(f"Surface: seed must be a whole number >= 0, got {seed!r}")
        self.seed = seed
        if start is None:
            start = self.function.start
        if isinstance(start, (str, bytes)) or not isinstance(start, Sequence) or len(start) != 2 \
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                           and math.isfinite(v) for v in start):
            raise ValueError(f"Surface: start must be two finite numbers (x, y), got {start!r}")
        self.start = (float(start[0]), float(start[1]))
        if isinstance(runs, str):
            runs = parse_runs(runs, SURFACE_RUN_KEYS)
        elif not isinstance(runs, Sequence) or not runs:
            raise ValueError(f"Surface: runs must be a list of runs, got {runs!r}")
        if len(runs) > MAX_RUNS:
            raise ValueError(f"Surface: at most {MAX_RUNS} runs, got {len(runs)}")
        self.settings = [check_run(r, SURFACE_RUN_KEYS, i + 1) for i, r in enumerate(runs)]
        self._runs = [_Run(self.function, s, self.start, seed) for s in self.settings]
        self.step_count = 0

    # -- stepping

    def step(self, count: int = 1, time_limit: float | None = None) -> None:
        """`count` steps of every run that has not stopped; with `time_limit` (seconds), no
        step starts once it has passed (the first always does), as in `Session.step`."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"Surface.step: count must be a whole number >= 1, got {count!r}")
        count = min(count, MAX_STEPS - self.step_count)
        deadline = None if time_limit is None else time.monotonic() + time_limit
        for done in range(count):
            if done and deadline is not None and time.monotonic() >= deadline:
                return
            for run in self._runs:
                run.step()
            self.step_count += 1

    # -- what it recorded

    @property
    def paths(self) -> list[list[tuple[float, float]]]:
        return [r.path for r in self._runs]

    @property
    def losses(self) -> list[list[float]]:
        return [r.losses for r in self._runs]

    @property
    def evaluations(self) -> list[list[int]]:
        return [r.evaluations for r in self._runs]

    @property
    def gradients(self) -> list[list[int]]:
        return [r.gradients for r in self._runs]

    @property
    def stopped(self) -> list[str | None]:
        return [r.stopped for r in self._runs]

    def trials(self, run: int) -> list[list[tuple[float, float]]]:
        """Where run `run`'s closure evaluated f during each step (L-BFGS's and CG's line
        searches; the populations of CMA-ES, the ES and the genetic algorithm, one generation a
        step); entry k belongs to step k."""
        return self._runs[run].trials

    # -- what the page draws

    def contours(self, grid: int = 90, levels: int = 14) -> dict[str, Any]:
        """f over a grid x grid raster of the window (rows top first) and the contour levels
        to draw: evenly spaced, or evenly spaced in log(f - min + 1) for steep functions."""
        x0, x1, y0, y1 = self.function.extent
        values = []
        for j in range(grid):
            y = y1 - (y1 - y0) * j / (grid - 1)
            for i in range(grid):
                x = x0 + (x1 - x0) * i / (grid - 1)
                values.append(float(self.function(x, y)))
        lo, hi = min(values), max(values)
        if self.function.log_scale:
            top = math.log1p(hi - lo)
            marks = [lo + math.expm1(top * (k + 0.5) / levels) for k in range(levels)]
        else:
            marks = [lo + (hi - lo) * (k + 0.5) / levels for k in range(levels)]
        return {"grid": grid, "values": values, "levels": marks, "low": lo, "high": hi,
                "log_scale": self.function.log_scale}

    def frame(self, since: int = 0, contours: bool = True) -> dict[str, Any]:
        """Everything the surface page draws, JSON-ready; points from step `since` on."""
        since = max(0, min(int(since), self.step_count))
        runs = []
        for i, (run, settings) in enumerate(zip(self._runs, self.settings)):
            runs.append({
                "index": i, "settings": settings, "stopped": run.stopped,
                "trial_kind": run.trial_kind,
                "path": [list(p) for p in run.path[since:]],
                "losses": run.losses[since:],
                "gradient": [list(g) for g in run.gradient[since:]],
                "trials": [[list(t) for t in ts] for ts in run.trials[since:]],
                "ellipses": run.ellipses[since:],
                "evaluations": run.evaluations[since:], "gradients": run.gradients[since:],
            })
        frame = {"function": self.function.describe(), "start": list(self.start),
                 "step_count": self.step_count, "since": since, "runs": runs}
        if contours:
            frame["contours"] = self.contours()
        return frame

    def __repr__(self) -> str:
        names = ", ".join(s["optimizer"] for s in self.settings)
        return f"Surface({self.function.name}, runs: {names}; step {self.step_count})"


def _float(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {text!r}")
    return value


def surface_from_query(query: dict[str, str]) -> Surface:
    """A surface from a page's URL: `surface=rosenbrock&runs=sgd:lr=0.001,adam:lr=0.05`, with
    `start=x,y`, `seed` and (for the quadratic) `condition` if given. Unknown keys are refused."""
    query = dict(query)
    function = query.pop("surface", "rosenbrock")
    runs = query.pop("runs", DEFAULT_RUNS) or DEFAULT_RUNS
    start = None
    if "start" in query:
        parts = query.pop("start").split(",")
        if len(parts) != 2:
            raise ValueError(f"start must be two numbers x,y, got {','.join(parts)!r}")
        start = (_float("start", parts[0]), _float("start", parts[1]))
    seed_text = query.pop("seed", "0")
    try:
        seed = int(seed_text)
    except ValueError:
        raise ValueError(f"seed must be a whole number, got {seed_text!r}") from None
    condition = _float("condition", query.pop("condition", "10"))
    if query:
        raise ValueError(f"unknown setting {next(iter(query))!r} for a surface; it takes "
                         "surface, runs, start, seed and condition")
    return Surface(function, runs, start=start, seed=seed, condition=condition)


def options() -> dict[str, Any]:
    """What the surface page offers: the functions, and the runs it starts with."""
    return {"functions": {name: f.describe() for name, f in testfunctions.FUNCTIONS.items()},
            "default_runs": DEFAULT_RUNS}
