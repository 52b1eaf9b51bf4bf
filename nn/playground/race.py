"""`Race`: several optimizers training the same network from the same start, side by side.

A race is a list of `Session`s that share the data, the model and the seed, and differ in how
they update the weights (the optimizer, its learning rate and options, the schedule, the batch
size, L2). The one idea to understand: a race adds nothing to the training. `race.runs[i]` is
an ordinary Session; its numbers are bit for bit those of that Session run alone, and every run
starts from the same initial weights and draws the same batches because those come from the
shared seed. What the race adds is a fair clock: it can advance the runs by steps, by
evaluations of the loss, or by seconds, and the three clocks give different winners (an L-BFGS
step costs many evaluations; a CMA-ES generation costs a population and no gradient at all).

    >>> from nn.playground import Race
    >>> race = Race(["sgd:lr=0.1", "adam:lr=0.01"], n=60, hidden=[4], seed=1)
    >>> race.step(3)
    >>> [s.step_count for s in race.runs], [s.evaluations for s in race.runs]
    ([3, 3], [3, 3])
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from nn.optim.registry import resolve as resolve_optimizer
from nn.playground.runs import (MAX_RUNS, RUN_KEYS, check_run, parse_runs, runs_text,
                                 value_text)
from nn.playground.frame import json_ready, picture_boundary
from nn.playground.session import Diverged, Session, StepTooLong
from nn.playground.settings import SETTINGS, optimizer_settings, parse_settings

__all__ = ["Race", "CLOCKS", "MAX_RUNS", "race_from_query"]

#: The axes a race can be advanced and plotted by.
CLOCKS = ("steps", "evaluations", "seconds")
#: At most this many steps of one run per call of `step` (a clock that barely moves, such as
#: a converged L-BFGS by seconds, cannot make a call run away).
MAX_STEPS_PER_CALL = 1000
#: The most points of a run's path through weight space that a race keeps for the landscape;
#: past that every other point goes (the start and the newest stay), so a race that plays for
#: hours holds a path of bounded size, as a session's history is.
MAX_PATH = 2000


def _clock(session: Session, by: str) -> float:
    if by == "steps":
        return session.step_count
    if by == "evaluations":
        return session.evaluations
    return session.seconds


class Race:
    """Runs of the same network from the same start; see the module docstring.

    `runs` is a list of runs, each a dict of the settings that may differ per run (optimizer,
    lr, the optimizer's own options, schedule, decay_steps, gamma, batch_size, l2), an
    optimizer's name, or the whole list as URL text ("sgd:lr=0.1,adam:lr=0.01"). `common` are
    the shared settings of `Session` (dataset, n, noise, test_fraction, seed, hidden,
    activation, init, loss), and may also give a run setting's default for every run.
    """

    def __init__(self, runs: Any, **common: Any) -> None:
        if isinstance(runs, str):
            runs = parse_runs(runs)
        if isinstance(runs, (str, bytes)) or not isinstance(runs, Sequence) or not runs:
            raise ValueError(f"Race: runs must be a non-empty list of runs, got {runs!r}")
        if len(runs) > MAX_RUNS:
            raise ValueError(f"Race: at most {MAX_RUNS} runs, got {len(runs)}")
        unknown = [k for k in common if k not in SETTINGS and k != "compiled"]
        if unknown:
            raise ValueError(f"Race: {unknown[0]!r} is not a common setting; an optimizer's "
                             "own options go in its run, such as {'optimizer': 'sgd', "
                             "'momentum': 0.9}")
        self.common = dict(common)
        self._lock = threading.RLock()
        self.runs: list[Session] = []
        self.ids: list[int] = []  # each run's number for good: its colour on the page
        self.stopped: list[str | None] = []
        self.marks: list[dict[str, Any]] = []
        self._weights: list[list[list[float]]] = []
        # each run's settings as the user set them (defaults left out): what its link keeps
        self._given: list[dict[str, Any]] = []
        self._next_id = 0
        for i, run in enumerate(runs):
            self.add(run, _number=i + 1)

    # -- the runs

    def _session(self, settings: Mapping[str, Any]) -> Session:
        return Session(**{**self.common, **settings})

    def add(self, run: Mapping[str, Any] | str, *, _number: int | None = None) -> int:
        """Add a run (starting from step 0, from the same initial weights); returns its
        index. The race then advances it first, until it has caught up."""
        with self._lock:
            if len(self.runs) >= MAX_RUNS:
                raise ValueError(f"Race: at most {MAX_RUNS} runs")
            given = check_run(run, RUN_KEYS, _number or len(self.runs) + 1)
            session = self._session(given)
            if self.runs and _weights(session) != self._weights[0][0]:
                raise AssertionError("Race: a run started from other weights")  # cannot happen
            self.runs.append(session)
            self.ids.append(self._next_id)
            self._next_id += 1
            self.stopped.append(None)
            self._weights.append([_weights(session)])
            self._given.append(given)
            return len(self.runs) - 1

    def remove(self, index: int) -> None:
        """Remove run `index` (the others keep their numbers and colours)."""
        with self._lock:
            self._check_index(index)
            if len(self.runs) == 1:
                raise ValueError("Race: the last run cannot be removed")
            for items in (self.runs, self.ids, self.stopped, self._weights, self._given):
                del items[index]

    def _check_index(self, index: Any) -> int:
        if isinstance(index, bool) or not isinstance(index, int) \
                or not 0 <= index < len(self.runs):
            raise ValueError(f"Race: run must be between 0 and {len(self.runs) - 1}, got "
                             f"{index!r}")
        return index

    def index_of(self, run_id: int) -> int:
        """The index now of the run numbered `run_id` (numbers stay; indices shift)."""
        if run_id not in self.ids:
            raise ValueError(f"Race: no run {run_id!r}; the runs are {self.ids}")
        return self.ids.index(run_id)

    def parse_changes(self, index: int, query: Mapping[str, str]) -> dict[str, Any]:
        """Changes for run `index` from URL text ({"lr": "0.01"}), checked."""
        optimizer = self.runs[self._check_index(index)].settings["optimizer"]
        return parse_settings(query, optimizer)

    def settings(self, index: int) -> dict[str, Any]:
        """The settings run `index` has of its own (its optimizer, lr, options, ...)."""
        s = self.runs[self._check_index(index)].settings
        own = [*RUN_KEYS, *optimizer_settings(s["optimizer"])]
        return {k: s[k] for k in own if k in s}

    def link(self) -> dict[str, str]:
        """The race's URL query: the common settings given and each run's settings as set
        (`runs=sgd:lr=0.1,...`), defaults included when the user wrote them, so a shared link
        means the same race even if a default changes."""
        query = {k: value_text(v) for k, v in self.common.items()
                 if k != "compiled" and v is not None}
        query["runs"] = runs_text(self._given)
        return query

    def update(self, index: int, **changes: Any) -> None:
        """Change run `index` mid-race (its lr, its optimizer, ...; the weights carry on), and
        mark the change where it happened, on every clock."""
        with self._lock:
            session = self.runs[self._check_index(index)]
            # an old name (cg, momentum) is understood: Session.update resolves it
            name = resolve_optimizer(changes.get("optimizer", session.settings["optimizer"]))[0]
            extra = optimizer_settings(name)
            for key in changes:
                if key not in RUN_KEYS and key not in extra:
                    raise ValueError(f"Race.update: {key!r} cannot change per run mid-race; a "
                                     f"run changes {', '.join(RUN_KEYS)} or its optimizer's "
                                     "options")
            before = self.settings(index)
            session.update(**changes)
            after = self.settings(index)
            changed = {k: v for k, v in after.items()
                       if before.get(k) != v and (k in changes or k in before)}
            # The link keeps what was set before and still holds, what was set now, and what
            # the change itself set (the lr a new optimizer starts with).
            kept = {k: v for k, v in self._given[index].items() if after.get(k) == v}
            self._given[index] = {**kept, **{k: after[k] for k in changes if k in after},
                                  **changed, "optimizer": after["optimizer"]}
            if changed:
                self.stopped[index] = None  # a lower lr may well rescue a diverged run
                self.marks.append({"run": self.ids[index], "step": session.step_count,
                                   "evaluations": session.evaluations,
                                   "seconds": session.seconds, "changes": changed})

    def reset(self) -> None:
        """Every run back to step 0 (the same initial weights again)."""
        with self._lock:
            for i, session in enumerate(self.runs):
                session.reset()
                self.stopped[i] = None
                self._weights[i] = [_weights(session)]
            self.marks = []

    # -- racing

    def step(self, count: float = 1, by: str = "steps",
             time_limit: float | None = None) -> None:
        """Advance the race by `count` on the clock `by` ("steps", "evaluations" or "seconds").

        The runs are kept level: the one furthest behind on that clock moves `count` on, and
        every other run takes whole steps until it has reached the same point (a run already
        past it waits). By steps, every run takes `count` steps.

        With `time_limit` (seconds), as in `Session.step`: no run's step starts once it has
        passed (the first always does), so the runs may be left a step apart; a step that
        alone outlasts it is undone and raises StepTooLong when nothing else was done.
        """
        deadline = None if time_limit is None else time.monotonic() + time_limit
        if by not in CLOCKS:
            raise ValueError(f"Race.step: by must be one of {', '.join(CLOCKS)}, got {by!r}")
        if isinstance(count, bool) or not isinstance(count, (int, float)) \
                or not math.isfinite(count) or count <= 0:
            raise ValueError(f"Race.step: count must be a positive number, got {count!r}")
        if by == "steps" and count != int(count):
            raise ValueError(f"Race.step: count must be a whole number of steps, got {count!r}")
        with self._lock:
            active = [i for i in range(len(self.runs)) if not self.stopped[i]]
            if not active:
                return
            target = min(_clock(self.runs[i], by) for i in active) + count
            # The run furthest behind on the clock steps next, so a time limit that stops the
            # race part way leaves the runs at most a step apart.
            taken = dict.fromkeys(active, 0)
            started = False
            while True:
                behind = [i for i in taken if taken[i] < MAX_STEPS_PER_CALL
                          and _clock(self.runs[i], by) < target]
                if not behind:
                    return
                i = min(behind, key=lambda j: (_clock(self.runs[j], by), j))
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0 and started:
                    return
                try:
                    stepped = self._step_run(i, None if left is None else max(left, 0.0))
                except StepTooLong:
                    if started:  # the limit came during this step: what was done stays
                        return
                    raise
                started = True
                taken[i] += 1
                if not stepped:
                    del taken[i]

    def play(self, budget_seconds: float, count: float = 1, by: str = "steps",
             limit: int = 100, time_limit: float | None = None) -> None:
        """`step(count, by)` again and again until `budget_seconds` have passed (at least
        once, at most `limit` times): what the page asks for while it plays. `time_limit`
        bounds the whole call as in `step`."""
        started = time.perf_counter()
        for turn in range(limit):
            left = None if time_limit is None else time_limit - (time.perf_counter() - started)
            try:
                self.step(count, by, None if left is None else max(left, 0.0))
            except StepTooLong:
                if turn:  # earlier turns stand
                    break
                raise
            elapsed = time.perf_counter() - started
            if elapsed >= budget_seconds or all(self.stopped) \
                    or (time_limit is not None and elapsed >= time_limit):
                break

    def _step_run(self, i: int, time_limit: float | None = None) -> bool:
        try:
            self.runs[i].step(time_limit=time_limit)
        except Diverged as error:
            self.stopped[i] = str(error)
            return False
        path = self._weights[i]
        path.append(_weights(self.runs[i]))
        if len(path) > MAX_PATH:
            self._weights[i] = path[::2] if len(path) % 2 else [*path[::2], path[-1]]
        return True

    def history(self, index: int, by: str = "steps") -> tuple[list[float], list[float]]:
        """Run `index`'s training loss against the clock `by`: (x values, losses)."""
        if by not in CLOCKS:
            raise ValueError(f"Race.history: by must be one of {', '.join(CLOCKS)}, got {by!r}")
        session = self.runs[self._check_index(index)]
        h = session.history
        xs = session.times if by == "seconds" else [e[{"steps": "step"}.get(by, by)] for e in h]
        return list(xs), [e["train_loss"] for e in h]

    def leader(self, by: str = "steps") -> int:
        """The index of the run with the lowest training loss now."""
        return min(range(len(self.runs)), key=lambda i: (
            not math.isfinite(self.runs[i].train_loss), self.runs[i].train_loss, i))

    # -- the network's own landscape

    def landscape(self, grid: int = 21, span: float = 1.0, seed: int = 0) -> dict[str, Any]:
        """The training loss on the plane through the initial weights spanned by two random
        directions, normalised per neuron as in Li et al. (2018), with each run's path
        projected onto that plane.

        Each direction draws a Gaussian number per weight and rescales each neuron's share (its
        weights and bias) to the norm of that neuron's initial weights, so a unit along an axis
        changes every neuron by its own size. Returns {"alphas", "betas", "loss" (rows of
        betas, columns of alphas), "paths": {run id: [[a, b], ...]}, "directions"}; a path's
        points are the
        least-squares coordinates of its weights in the plane, so a path that leaves the plane
        is drawn where it projects.
        """
        if isinstance(grid, bool) or not isinstance(grid, int) or not 3 <= grid <= 61:
            raise ValueError(f"Race.landscape: grid must be between 3 and 61, got {grid!r}")
        if not isinstance(span, (int, float)) or not 0 < span <= 100:
            raise ValueError(f"Race.landscape: span must be in (0, 100], got {span!r}")
        with self._lock:
            session = self.runs[0]
            start = self._weights[0][0]
            rng = random.Random(f"landscape {seed}")
            shapes = [len(n.w) + 1 for layer in session.model.layers for n in layer.neurons]
            directions = []
            for _ in range(2):
                d, at = [], 0
                for size in shapes:
                    part = [rng.gauss(0.0, 1.0) for _ in range(size)]
                    norm_w = math.sqrt(sum(v * v for v in start[at:at + size]))
                    norm_d = math.sqrt(sum(v * v for v in part)) or 1.0
                    d.extend(v * norm_w / norm_d for v in part)
                    at += size
                directions.append(d)
            d1, d2 = directions
            axis = [span * (2 * k / (grid - 1) - 1) for k in range(grid)]
            losses = []
            for b in reversed(axis):  # top row first
                row = []
                for a in axis:
                    w = [s + a * u + b * v for s, u, v in zip(start, d1, d2)]
                    row.append(_loss_at(session, w))
                losses.append(row)
            # least squares: [a, b] = (D^T D)^-1 D^T (w - start)
            g11, g12, g22 = _dot(d1, d1), _dot(d1, d2), _dot(d2, d2)
            det = g11 * g22 - g12 * g12
            paths = {}
            for run_id, weights in zip(self.ids, self._weights):
                path = []
                for w in weights:
                    r = [wi - si for wi, si in zip(w, start)]
                    p1, p2 = _dot(d1, r), _dot(d2, r)
                    path.append([(g22 * p1 - g12 * p2) / det, (g11 * p2 - g12 * p1) / det])
                paths[run_id] = path
            return {"alphas": axis, "betas": list(reversed(axis)), "loss": losses,
                    "paths": paths, "directions": [d1, d2]}

    # -- what the page draws

    def frame(self, since: Mapping[int, Any] | None = None, grid: int = 40) -> dict[str, Any]:
        """Everything the race page draws, JSON-ready. `since` maps a run's id to how many of
        its history entries the page already has, or to (that many, the run's
        `history_thinned` when the page's copy was made): a run whose history was thinned
        since then sends it all again (`history_start` 0)."""
        since = dict(since or {})
        with self._lock:
            runs = []
            for i, session in enumerate(self.runs):
                run_id = self.ids[i]
                have, thinned = since.get(run_id, 0), None
                if isinstance(have, tuple):
                    have, thinned = have
                stale = thinned is not None and thinned != session.history_thinned
                have = 0 if stale else max(0, min(int(have), len(session.history)))
                f = _run_frame(session, have, grid)
                runs.append({
                    "id": run_id, "index": i, "settings": self.settings(i),
                    "stopped": self.stopped[i], "step_count": session.step_count,
                    "evaluations": session.evaluations, "gradients": session.gradients,
                    "seconds": session.seconds, "compile_note": session.compile_note,
                    "history_thinned": session.history_thinned,
                    **{k: f[k] for k in ("train_loss", "train_loss_repr", "test_loss",
                                         "test_loss_repr", "accuracy", "test_accuracy", "lr",
                                         "history_start", "history", "boundary")},
                })
                for entry, seconds in zip(runs[-1]["history"], session.times[have:]):
                    entry["seconds"] = seconds
            first = self.runs[0]
            return json_ready({
                "common": {k: first.settings[k] for k in SETTINGS if k not in RUN_KEYS},
                "runs": runs, "marks": list(self.marks), "link": self.link(),
                "points": {
                    "train": [[x[0], x[1], c]
                              for x, c in zip(first.points_train, first.labels_train)],
                    "test": [[x[0], x[1], c]
                             for x, c in zip(first.points_test, first.labels_test)],
                    "classes": first.classes, "extent": first.extent},
            })

    def __repr__(self) -> str:
        return "Race(" + "; ".join(
            f"{s.settings['optimizer']} step {s.step_count} loss {s.train_loss:.4g}"
            for s in self.runs) + ")"


def _run_frame(session: Session, since: int, grid: int) -> dict[str, Any]:
    """What a run card draws: its numbers, its new history and its decision boundary (the
    network's pictures and gradient flow belong to the one-session page)."""
    with session._lock:
        with session.evaluation_point():  # Schedule-Free: drawn at the averaged point x
            boundary = picture_boundary(session.model, session.extent, grid,
                                        session.settings["features"])
        return {"train_loss": session.train_loss,
                "train_loss_repr": repr(session.train_loss),
                "test_loss": session.test_loss,
                "test_loss_repr": repr(session.test_loss),
                "accuracy": session.accuracy, "test_accuracy": session.test_accuracy,
                "lr": session.history[-1]["lr"], "history_start": since,
                "history": [dict(h) for h in session.history[since:]],
                "boundary": boundary}


def race_from_query(query: Mapping[str, str]) -> Race:
    """A race from a page's URL: `runs=sgd:lr=0.1,adam:lr=0.01` and the common settings."""
    query = dict(query)
    runs = parse_runs(query.pop("runs", ""))
    query.pop("by", None)  # the page's clock, not a setting
    common = parse_settings(query)
    for key in RUN_KEYS:  # a run's settings come from its run (or the Session defaults)
        common.pop(key, None)
    return Race(runs, **common)


def _weights(session: Session) -> list[float]:
    with session.evaluation_point():  # Schedule-Free: the averaged point x, as drawn
        return [p.data for p in session.model.parameters()]


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(x * y for x, y in zip(a, b))


def _loss_at(session: Session, weights: Sequence[float]) -> float:
    """The data loss of the session's training set at `weights` (its own weights put back)."""
    params = session.model.parameters()
    kept = [p.data for p in params]
    try:
        for p, w in zip(params, weights):
            p.data = w
        try:
            value = session._data_loss(session._scores(session.X_train), session.y_train)
        except ValueError:  # a math domain error far from the start
            value = math.inf
    finally:
        for p, w in zip(params, kept):
            p.data = w
    return value if math.isfinite(value) else math.inf
