"""Grad mode and anomaly mode: the two switches that say what an operation does right now.

In grad mode (the default) every operation on Values records its inputs, building the graph that
`backward()` walks; inside `no_grad()` it only computes a number. In anomaly mode
(`detect_anomaly()`) every operation also checks its result, and backward every gradient, for
NaN. The one idea: both switches live in a single context variable, so each thread (and each
asyncio task) has its own, and the context managers keep no state of their own: one `no_grad()`
object can be entered again, nested, used as a decorator and shared between threads.

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
from collections.abc import Callable
from contextvars import ContextVar

# The mode is one small int, read once per operation: a bit per switch.
RECORD = 1  # operations record their inputs (grad mode)
ANOMALY = 2  # operations and backward passes check for NaN (anomaly mode)

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


class _anomaly_checks_off(_Switch):  # noqa: N801
    """Anomaly mode's backward step checks a rule's shares itself, and reports them better than
    the checks of the arithmetic a rule records with `create_graph`; this turns the latter off."""

    _off = ANOMALY
