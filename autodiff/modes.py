"""Grad mode, anomaly mode and tracing: the switches that say what an operation does right now.

In grad mode (the default) every operation on Values records its inputs, building the graph that
`backward()` walks; inside `no_grad()` it only computes a number. In anomaly mode
(`detect_anomaly()`) every operation also checks its result, and backward every gradient, for
NaN. While tracing (`tracing(record)`, what `autodiff.compile` does on its first call) every
operation also reports to a `TraceRecord` what a trace cannot see in the graph: comparisons of
Values, the Values made, numbers read out of Values, forwards that raised. The one idea: the
switches live in a single context variable, so each thread (and each asyncio task) has its own,
and the context managers keep no state of their own: one `no_grad()` object can be entered
again, nested, used as a decorator and shared between threads.

    >>> from autodiff import Value, is_grad_enabled, no_grad
    >>> w = Value(1.0)
    >>> off = no_grad()
    >>> with off:
    ...     with off:               # the same object, nested
    ...         pass
    ...     y = w * 2               # still off: the inner exit restored the outer state
    >>> y.parents, is_grad_enabled()
    ((), True)
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field

# The mode is one small int, read once per operation: a bit per switch.
RECORD = 1  # operations record their inputs (grad mode)
ANOMALY = 2  # operations and backward passes check for NaN (anomaly mode)
TRACE = 4  # operations report to the trace being recorded (autodiff.compile)

#: The current mode of this thread or task (`MODE.get()`); change it only with the switches below.
MODE: ContextVar[int] = ContextVar("autodiff_mode", default=RECORD)
# The modes to go back to, innermost last: entering a switch pushes, leaving it pops.
_saved: ContextVar[tuple[int, ...]] = ContextVar("autodiff_saved_modes", default=())


def is_grad_enabled() -> bool:
    """False inside `no_grad()`."""
    return bool(MODE.get() & RECORD)


def is_anomaly_enabled() -> bool:
    """True inside `detect_anomaly()`."""
    return bool(MODE.get() & ANOMALY)


def is_tracing() -> bool:
    """True inside `tracing(record)`."""
    return bool(MODE.get() & TRACE)


class _Switch:
    """A context manager (and decorator) that turns mode bits on or off until it exits."""

    _on = 0  # bits set on entry
    _off = 0  # bits cleared on entry

    def __new__(cls, func: Callable | None = None):
        # No state: the previous mode is kept per thread, not here. `@no_grad` without
        # parentheses decorates at once, as torch's does.
        switch = super().__new__(cls)
        return switch if func is None else switch(func)

    def __enter__(self) -> None:
        current = MODE.get()
        if current & TRACE and self._off & RECORD:
            note_read("no_grad() was entered")
        _saved.set(_saved.get() + (current,))
        MODE.set((current | self._on) & ~self._off)

    def __exit__(self, *exc) -> None:
        saved = _saved.get()
        if not saved:
            raise RuntimeError(f"{type(self).__name__}() exited without being entered")
        MODE.set(saved[-1])
        _saved.set(saved[:-1])

    def __call__(self, func: Callable) -> Callable:
        if not callable(func):
            raise TypeError(
                f"{type(self).__name__}() decorates a function, got {type(func).__name__}"
            )

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with self:
                return func(*args, **kwargs)

        return wrapper


class no_grad(_Switch):  # noqa: N801 - used like a function, as torch.no_grad
    """Context manager (or decorator) in which operations record no graph.

    Use it for evaluation and for updating parameters, where no gradient is wanted:

        >>> from autodiff import Value, no_grad
        >>> w = Value(1.0)
        >>> with no_grad():
        ...     y = w * 2
        >>> y.parents
        ()
    """

    _off = RECORD


class enable_grad(_Switch):  # noqa: N801
    """Context manager (or decorator) in which operations record a graph, even inside no_grad().

    `backward(create_graph=True)` and `grad()` use it: the gradient graph they build is wanted
    whatever the caller's mode.
    """

    _on = RECORD


class detect_anomaly(_Switch):  # noqa: N801
    """Context manager (or decorator) that finds where a NaN first appears, as torch's does.

    Inside it, an operation whose result is NaN from inputs that are not raises `AnomalyError`
    naming the operation, its inputs and their values; so does a backward step that produces a
    NaN gradient, naming also the node whose gradient went bad; and so does a backward pass that
    finds a node's inputs changed since its forward pass (a weight updated before `backward()`).
    Outside it, none of this costs anything: operations read the same mode they always read.

        >>> from autodiff import Value, detect_anomaly
        >>> x = Value(float("inf"), label="x")
        >>> with detect_anomaly():
        ...     y = x * 0
        Traceback (most recent call last):
            ...
        autodiff.anomaly.AnomalyError: mul produced nan from x = inf, leaf = 0.0
    """

    _on = ANOMALY


class anomaly_checks_off(_Switch):  # noqa: N801
    """Anomaly mode's backward step checks a rule's shares itself, and reports them better than
    the checks of the arithmetic a rule records with `create_graph`; this turns the latter off."""

    _off = ANOMALY


# ---- tracing -----------------------------------------------------------------------------------


@dataclass
class TraceRecord:
    """What one tracing run saw that the graph does not show; filled by the engine in TRACE mode.

    - `events`: in the order they happened, `Compared(value, op, other, outcome)` for each
      comparison of a Value (a Python `if` on it decides which graph is built) and
      `Raised(op, inputs, error)` for each forward that raised (the function may catch it and
      build another graph).
    - `made`: the ids of the Values made while tracing (by operations or by `Value(...)`);
      every other Value in the graph existed before and is read, not recomputed.
    - `reads`: a number taken out of a Value (`float(v)`, `v.detach()`, `no_grad()`), said in
      words with where it happened; a trace cannot follow such a number.
    """

    events: list = field(default_factory=list)
    made: set = field(default_factory=set)
    reads: list = field(default_factory=list)


@dataclass(frozen=True)
class Compared:
    """`value op other` gave `outcome` while tracing."""

    value: object
    op: str
    other: object
    outcome: bool


@dataclass(frozen=True)
class Raised:
    """The forward of `op` on `inputs` raised `error` while tracing."""

    op: object
    inputs: tuple
    error: type


#: The record of the trace being made in this thread or task (None when not tracing).
RECORDING: ContextVar[TraceRecord | None] = ContextVar("autodiff_trace_record", default=None)


class tracing:  # noqa: N801 - used like a function, as the other switches
    """Context manager: operations inside it report to `record` (TRACE mode), in this thread.

        >>> from autodiff import Value
        >>> record = TraceRecord()
        >>> x = Value(2.0)
        >>> with tracing(record):
        ...     y = x * 3 if x > 0 else -x
        >>> record.events
        [Compared(value=Value(data=2.0, grad=0.0), op='>', other=0, outcome=True)]
    """

    def __init__(self, record: TraceRecord) -> None:
        if not isinstance(record, TraceRecord):
            raise TypeError(f"tracing() needs a TraceRecord, got {type(record).__name__}")
        self.record = record
        self._tokens: list = []

    def __enter__(self) -> TraceRecord:
        self._tokens.append((MODE.set(MODE.get() | TRACE), RECORDING.set(self.record)))
        return self.record

    def __exit__(self, *exc) -> None:
        mode_token, record_token = self._tokens.pop()
        RECORDING.reset(record_token)
        MODE.reset(mode_token)


def note_made(value) -> None:
    """TRACE mode: `value` was made now."""
    record = RECORDING.get()
    if record is not None:
        record.made.add(id(value))


def note_compared(value, op: str, other, outcome: bool) -> None:
    """TRACE mode: a comparison of a Value gave `outcome`."""
    record = RECORDING.get()
    if record is not None:
        record.events.append(Compared(value, op, other, outcome))


def note_raised(op, inputs: tuple, error: BaseException) -> None:
    """TRACE mode: the forward of `op` raised `error`."""
    record = RECORDING.get()
    if record is not None:
        record.events.append(Raised(op, inputs, type(error)))


def note_read(what: str) -> None:
    """TRACE mode: a number was read out of a Value; `what` says how (the caller's caller is
    named as where)."""
    record = RECORDING.get()
    if record is not None:
        caller = sys._getframe(2)
        record.reads.append(f"{what} ({caller.f_code.co_filename}:{caller.f_lineno})")
